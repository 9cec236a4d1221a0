"""``npae explain OP``: an operation worked through by hand, and checked against npae's kernel.

Each explanation runs the real op (``npae.functional``, hence the Numba kernels) on one small
single-channel image, then shows the arithmetic that produces its output: the windows a
convolution reads and their sums, the kernel copies a transposed convolution adds up, the
maxima a pooling keeps and where unpooling puts them back, the source pixel of every upsampled
pixel, the column matrix of im2col. The shown arithmetic is computed here from each op's
definition, independently of the kernels, and every explanation ends with a ``check:`` line that
compares it with the kernel's output (``Explanation.ok`` is False if they differ). Output sizes
come from npae/engine/shapes.py, the one place that holds that arithmetic.

    >>> e = explain("conv2d", ExplainSettings(input=(4, 4), kernel=(3, 3), stride=(2, 2),
    ...                                        padding=(1, 1)))
    >>> e.output_hw, e.ok
    ((2, 2), True)

One file per operation holds everything the tools say about it: its explanation (``explain``),
its figure (``draw``), its ``npae gradcheck`` setup and planted bug (``gradcheck_case``), and
its page in docs/ (``PAGE``); npae/tools/registry.py lists them.

    conv2d.py              windows, products and sums; the banded matrix
    conv_transpose2d.py    scaled kernel copies, their overlap count, the sums; conv2d's transpose
    max_pool2d.py          windows, maxima and their flat indices
    max_unpool2d.py        pooled values put back at their indices
    upsample_nearest2d.py  the source pixel of every output pixel
    im2col.py              windows as columns, the convolution as one product

and what they share:

    layout.py              text: numbers, grids side by side, wrapped prose, matrices, checks
    example.py             the example: its size and numbers, and where each window lies
    drawing.py             the figures: numbered grids, outlined windows, the PNG
"""

from __future__ import annotations

from pathlib import Path

from npae.engine.tensor import no_grad
from npae.tools.explain.example import check_settings
from npae.tools.explain.layout import WIDTH, wrap_prose
from npae.tools.parts import Explanation
from npae.tools.settings import ExplainSettings

__all__ = ["explain", "figure", "Explanation", "ExplainSettings", "WIDTH"]


def explain(op: str, settings: ExplainSettings | None = None) -> Explanation:
    """Work ``op`` (a name in npae.tools.registry.EXPLAINED_NAMES) through by hand on one image;
    see the module docstring."""
    # imported here: the registry imports this package's op files
    from npae.tools.registry import get_explained

    entry = get_explained(op, "explain")
    check_settings(settings or ExplainSettings())
    with no_grad():
        e = entry.explain(settings or ExplainSettings())
    e.op = entry.name
    e.lines = wrap_prose(e.lines)
    return e


def figure(e: Explanation, path) -> Path:
    """Draw explanation ``e`` into the PNG at ``path`` (``npae explain OP --png``); returns the
    path."""
    from npae.tools.registry import get_explained

    return get_explained(e.op, "figure").draw(e, path)
