"""Every operation npae's tools and tests know, each described once.

An entry (``Op``) gives

    name        the op's name on the command line and in docs/ (``npae explain conv-transpose2d``)
    functional  its function in npae.functional (None for im2col: a kernel, explained but not
                a public op)
    function    the autodiff Function that function runs (npae/ops/)
    reference   the name of its slow float64 loop in tests/reference.py (a name, because npae
                never imports its tests)
    explainer   for the ops the tools work through, its file in npae/tools/explain/, which
                provides everything the tools say about it (EXPLAINER_PARTS): ``explain`` (npae
                explain), ``draw`` (its figure), ``gradcheck_case`` (npae gradcheck, with its
                planted bug) and ``PAGE`` (its page in docs/)

and everything else reads it: ``npae explain`` and ``npae gradcheck`` take their choices and
find their op here (npae/cli.py, npae/tools/explain/__init__.py, npae/tools/gradcheck_cli.py),
``python -m npae.tools.docs`` writes one page per explained op, and the op table of the tests
(tests/optable.py) keys its entries by these names and takes each op's function and reference
from here. An op without an explainer (linear, the activations, the losses) is here for the op
table alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import npae.functional as F
from npae.engine.function import Function
from npae.ops.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from npae.ops.conv2d import Conv2d
from npae.ops.conv_transpose2d import ConvTranspose2d
from npae.ops.linear import Linear
from npae.ops.loss import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, MSELoss
from npae.ops.max_pool2d import MaxPool2d
from npae.ops.max_unpool2d import MaxUnpool2d
from npae.ops.upsample_nearest2d import UpsampleNearest2d
from npae.tools.explain import (
    conv2d,
    conv_transpose2d,
    im2col,
    max_pool2d,
    max_unpool2d,
    upsample_nearest2d,
)

# what an explainer file provides (see Op's properties of the same names)
EXPLAINER_PARTS = ("explain", "draw", "gradcheck_case", "PAGE")


@dataclass(frozen=True)
class Op:
    name: str
    functional: Callable | None
    function: type[Function]
    reference: str
    explainer: ModuleType | None = None

    def __post_init__(self):
        if self.explainer is not None:
            missing = [p for p in EXPLAINER_PARTS if not hasattr(self.explainer, p)]
            if missing:
                raise TypeError(f"{self.explainer.__name__} lacks {', '.join(missing)}: an "
                                f"explainer file provides {', '.join(EXPLAINER_PARTS)}")

    @property
    def explain(self):
        """explain(ExplainSettings) -> Explanation: the op on one image, checked by hand."""
        return self.explainer.explain

    @property
    def draw(self):
        """draw(Explanation, path) -> Path: the explanation's figure."""
        return self.explainer.draw

    @property
    def gradcheck_case(self):
        """gradcheck_case(GradcheckSettings, plant_bug=False) -> Case: what npae gradcheck
        checks, with the planted bug's wrong backward when asked."""
        return self.explainer.gradcheck_case

    @property
    def page(self):
        """The op's page in docs/ (a Page)."""
        return self.explainer.PAGE

    @property
    def explainer_path(self) -> str:
        """The explainer file, as a path in the repository."""
        return self.explainer.__name__.replace(".", "/") + ".py"


OPS = (
    # the ops the tools work through; `npae explain`, `npae gradcheck` and docs/ list them in
    # this order
    Op("conv2d", F.conv2d, Conv2d, "conv2d_ref", conv2d),
    Op("conv-transpose2d", F.conv_transpose2d, ConvTranspose2d, "conv_transpose2d_ref",
       conv_transpose2d),
    Op("max-pool2d", F.max_pool2d, MaxPool2d, "max_pool2d_ref", max_pool2d),
    Op("max-unpool2d", F.max_unpool2d, MaxUnpool2d, "max_unpool2d_ref", max_unpool2d),
    Op("upsample-nearest2d", F.upsample_nearest2d, UpsampleNearest2d, "upsample_nearest2d_ref",
       upsample_nearest2d),
    Op("im2col", None, im2col.Im2col, "im2col_ref", im2col),
    # the ops only the op table checks
    Op("interpolate", F.interpolate, UpsampleNearest2d, "upsample_nearest2d_ref"),
    Op("linear", F.linear, Linear, "linear_ref"),
    Op("relu", F.relu, ReLU, "relu_ref"),
    Op("leaky-relu", F.leaky_relu, LeakyReLU, "leaky_relu_ref"),
    Op("sigmoid", F.sigmoid, Sigmoid, "sigmoid_ref"),
    Op("tanh", F.tanh, Tanh, "tanh_ref"),
    Op("mse-loss", F.mse_loss, MSELoss, "mse_loss_ref"),
    Op("binary-cross-entropy", F.binary_cross_entropy, BinaryCrossEntropy,
       "binary_cross_entropy_ref"),
    Op("binary-cross-entropy-with-logits", F.binary_cross_entropy_with_logits,
       BinaryCrossEntropyWithLogits, "binary_cross_entropy_with_logits_ref"),
)

EXPLAINED = tuple(op for op in OPS if op.explainer is not None)
EXPLAINED_NAMES = tuple(op.name for op in EXPLAINED)


def get(name: str) -> Op:
    """Any op, by its name."""
    for op in OPS:
        if op.name == name:
            return op
    raise KeyError(f"no op {name!r} in npae/tools/registry.py; it has: "
                   f"{', '.join(op.name for op in OPS)}")


def get_explained(name: str, command: str) -> Op:
    """The explained op ``name``; an unknown name is a ValueError that ``command`` heads."""
    for op in EXPLAINED:
        if op.name == name:
            return op
    raise ValueError(f"{command}: unknown operation {name!r}; choose one of: "
                     f"{', '.join(EXPLAINED_NAMES)}")
