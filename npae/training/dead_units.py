"""Dead code units: the channels (or units) of a model's code that are zero for every image.

A small autoencoder's code comes out of a ReLU. If some initial weights leave one of its
channels negative for every input, the ReLU outputs 0 there, its gradient is 0 too, and the
channel never comes back: the decoder is starved of that part of the code. When every channel
dies, the decoder sees the same (zero) code for every image and outputs one constant image;
the test loss then sits at the loss of the mean image (about 0.11 on MNIST). Which seeds do
this is a lottery, the same in any framework; ``npae train`` counts the dead units after every
epoch so that a learner sees it happen instead of guessing from a flat loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npae.data import batches
from npae.engine.tensor import Tensor, no_grad


@dataclass
class DeadUnits:
    dead: list[int]  # the dead channels (conv codes) or units (flat codes), in order
    units: int  # how many the code has
    kind: str  # "channel" or "unit"

    @property
    def count(self) -> int:
        return len(self.dead)

    def message(self, model_name: str) -> str:
        """What a learner should read when some are dead ('' when none are)."""
        if not self.dead:
            return ""
        which = ", ".join(str(d) for d in self.dead)
        plural = "s" if self.units != 1 else ""
        if self.count == self.units:
            effect = ("the decoder sees the same code for every image, so it outputs one "
                      "constant image (the loss stops falling at the mean image's)")
        else:
            effect = (f"the decoder is starved of that part of its code and works from the "
                      f"other {self.units - self.count}")
        return (f"npae: {model_name}: {self.count} of {self.units} code {self.kind}{plural} "
                f"dead (zero for every validation image after the activation: {self.kind} "
                f"{which}); {effect}. A ReLU unit that is negative for every input gets no "
                f"gradient and never recovers. Another --seed, ICNR initialisation (as "
                f"conv-subpixel uses) or a leaky activation avoids it.")


def dead_units(model, images, batch_size=1000) -> DeadUnits | None:
    """The code units of ``model`` (its ``code(x)``) that are exactly 0 for all ``images``; a
    conv code counts a channel as dead only when it is 0 at every position of every image.
    None for a model whose code has no activation that can die (the VAE's Gaussian mean)."""
    if getattr(model, "code_can_die", True) is False or not hasattr(model, "code"):
        return None
    alive = None
    model.eval()
    try:
        with no_grad():
            for (xb,) in batches((images,), batch_size):
                code = model.code(Tensor(xb)).data
                axes = (0,) + tuple(range(2, code.ndim))  # all but the unit/channel axis
                seen = np.any(code != 0, axis=axes)
                alive = seen if alive is None else alive | seen
    finally:
        model.train()
    if alive is None:
        raise ValueError("dead_units: no images")
    kind = "channel" if code.ndim > 2 else "unit"
    return DeadUnits([int(i) for i in np.flatnonzero(~alive)], int(alive.size), kind)
