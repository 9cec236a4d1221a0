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
    """Restore a state from get_state (ValueError for anything that is not one)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    kind = getattr(np.random, name, None) if isinstance(name, str) else None
    if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
        raise ValueError(f"not a NumPy generator state (bit_generator {name!r})")
    bit_generator = kind()
    bit_generator.state = state
    global _generator
    _generator = np.random.Generator(bit_generator)
