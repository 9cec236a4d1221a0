"""The options of ``npae explain`` and ``npae gradcheck``, once.

``OpSettings`` holds what both commands share: the op's geometry, named as in npae.functional,
and the seed (npae/cli.py parses them with one function, ``_op_options``). Each command adds only
its own options in a subclass. None means the op's default (PyTorch's where it has one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OpSettings:
    """The options both commands share; every field is a flag of the same name on the command
    line (``output_padding`` is ``--output-padding``)."""

    input: tuple[int, int] | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    scale: float = 2.0
    seed: int = 0


@dataclass
class ExplainSettings(OpSettings):
    """``npae explain``'s own options: the numbers to use, and whether to print the matrix."""

    values: list[float] | None = None
    weights: list[float] | None = None
    matrix: bool = False


@dataclass
class GradcheckSettings(OpSettings):
    """``npae gradcheck``'s own options: the batch and channel sizes, and the tolerances (the
    last three have no flag)."""

    batch: int = 2
    channels: int = 2
    out_channels: int = 3
    eps: float = 1e-6
    atol: float = 1e-5
    rtol: float = 1e-3
