"""npae's global random generator: parameter initialisation and the VAE's sampling draw from it.

``npae.manual_seed(s)`` makes both reproducible; ``get_state``/``set_state`` let a checkpoint
carry the generator along so a resumed run draws the same numbers it would have drawn.
"""

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed the global generator (like torch.manual_seed) and return it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator() -> np.random.Generator:
    return _generator


def get_state() -> dict:
    """The generator's state: a JSON-serialisable dict."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    global _generator
    _generator = np.random.Generator(bit_generator)
