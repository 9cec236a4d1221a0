"""The op table: one entry per public operation, driving the generic tests (in the spirit of
PyTorch's OpInfo).

Each entry names an op of npae's registry (npae/tools/registry.py), which says the op's function
of npae.functional and the name of its slow reference in tests/reference.py; the entry adds
what only the tests need: a hypothesis strategy that draws valid cases, tolerances for float32,
and inputs that must raise (and, where the reference takes its parameters differently from the
op, how to call it). Generic tests (tests/ops/test_optable.py) then check, for every entry:
forward == reference in float32 and float64, gradcheck in float64, and every error input; and
that every op of the registry with a public function has an entry here.

Max ops get tie-free inputs by construction (a permutation of evenly spaced values, spaced far
wider than the finite-difference step), so the argmax is unique and gradcheck is meaningful.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import reference as R
from hypothesis import assume
from hypothesis import strategies as st

from npae.tools import registry


@dataclass
class Case:
    """Positional inputs (float arrays, int index arrays or None) and keyword parameters."""

    inputs: tuple
    params: dict = field(default_factory=dict)

    def __repr__(self):
        shapes = [getattr(v, "shape", v) for v in self.inputs]
        return f"Case(inputs={shapes}, params={self.params})"


@dataclass
class ErrorCase:
    inputs: tuple
    params: dict
    error: type
    says: tuple  # substrings the message must contain (the shapes and numbers involved)


@dataclass
class OpInfo:
    name: str  # the op's name in npae's registry, which gives fn and ref
    cases: Any  # hypothesis strategy of Case
    rtol32: float = 1e-5
    atol32: float = 1e-5
    errors: list = field(default_factory=list)
    constant_inputs: tuple = ()  # float inputs that are not differentiated (a loss weight)
    # when the reference takes the parameters differently: call_ref(ref, *inputs, **params)
    call_ref: Callable | None = None
    # cases for gradcheck when ``cases`` reaches points where finite differences cannot work
    # (a kink, the edge of the domain); None: the same cases
    grad_cases: Any = None
    fn: Callable = field(init=False)  # npae.functional op: fn(*inputs, **params) -> Tensor
    ref: Callable = field(init=False)  # reference: ref(*inputs, **params) -> float64 array

    def __post_init__(self):
        op = registry.get(self.name)
        self.fn = op.functional
        reference = getattr(R, op.reference)
        self.ref = reference if self.call_ref is None else partial(self.call_ref, reference)

    def __repr__(self):
        return self.name


def _seeded(draw):
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _fits(k, p, d):
    """Smallest input size for which the dilated kernel fits inside the padded input."""
    return max(1, d * (k - 1) + 1 - 2 * p)


# ------------------------------------------------------------------------------ conv2d
@st.composite
def conv2d_cases(draw):
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h = draw(st.integers(_fits(kh, ph, dh), _fits(kh, ph, dh) + 5))
    w = draw(st.integers(_fits(kw, pw, dw), _fits(kw, pw, dw) + 5))
    rng = _seeded(draw)
    b = rng.standard_normal(o) if draw(st.booleans()) else None
    return Case(
        (rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, kh, kw)), b),
        dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw)),
    )


# ------------------------------------------------------------------------------ conv_transpose2d
@st.composite
def conv_transpose2d_cases(draw):
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    hw = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    for a in range(2):  # the output must be at least 1x1
        assume((hw[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 >= 1)
    rng = _seeded(draw)
    b = rng.standard_normal(cout) if draw(st.booleans()) else None
    return Case(
        (rng.standard_normal((n, cin, *hw)), rng.standard_normal((cin, cout, *k)), b),
        dict(stride=s, padding=p, output_padding=op, dilation=d),
    )


# ------------------------------------------------------------------------------ max_pool2d
def tie_free(rng, shape):
    """Distinct values in [-1, 1), 2/size apart: no window ever holds a tie."""
    size = int(np.prod(shape))
    return (rng.permutation(size).astype(np.float64) * (2.0 / size) - 1.0).reshape(shape)


def _windows_hit_input(n, k, s, p, d, out):
    return all(any(0 <= o * s - p + t * d < n for t in range(k)) for o in range(out))


def _pool_out(n, k, s, p, d, ceil_mode):
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= n + p else out


@st.composite
def pool_geometry(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ceil_mode = draw(st.booleans())
    hw = tuple(draw(st.integers(_fits(k[a], p[a], d[a]), _fits(k[a], p[a], d[a]) + 5))
               for a in range(2))
    out = tuple(_pool_out(hw[a], k[a], s[a], p[a], d[a], ceil_mode) for a in range(2))
    for a in range(2):
        assume(out[a] >= 1 and _windows_hit_input(hw[a], k[a], s[a], p[a], d[a], out[a]))
    return hw, dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)


@st.composite
def max_pool2d_cases(draw):
    hw, params = draw(pool_geometry())
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return Case((tie_free(_seeded(draw), (n, c, *hw)),), params)


def _max_pool2d_ref(ref, x, kernel_size, stride, padding, dilation, ceil_mode):
    return ref(x, kernel_size, stride, padding, dilation, ceil_mode)[0]  # values, not indices


# ------------------------------------------------------------------------------ max_unpool2d
@st.composite
def max_unpool2d_cases(draw):
    """Indices come from pooling a tie-free input with the reference, so they are realistic:
    with stride < kernel, overlapping windows repeat an index (summed by our policy)."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, k[0])), draw(st.integers(1, k[1])))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    hw = tuple(draw(st.integers(max(1, k[a] - 2 * p[a]), max(1, k[a] - 2 * p[a]) + 5))
               for a in range(2))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = _seeded(draw)
    _, idx = R.max_pool2d_ref(tie_free(rng, (n, c, *hw)), k, s, p)
    for a in range(2):
        default = (idx.shape[2 + a] - 1) * s[a] - 2 * p[a] + k[a]
        assume(default - s[a] < hw[a] < default + s[a])
    x = rng.standard_normal(idx.shape)
    return Case((x, idx), dict(kernel_size=k, stride=s, padding=p, output_size=hw))


def _max_unpool2d_ref(ref, x, idx, kernel_size, stride, padding, output_size):
    return ref(x, idx, output_size)


# ------------------------------------------------------------------------------ upsample
@st.composite
def upsample_cases(draw):
    hw = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["int", "float", "pair", "size"]))
    factors = st.sampled_from([0.5, 1.0, 1.5, 1.7, 2.0, 2.5, 3.0])
    if kind == "int":
        params = dict(scale_factor=draw(st.integers(1, 3)))
    elif kind == "float":
        params = dict(scale_factor=draw(factors))
    elif kind == "pair":
        params = dict(scale_factor=(draw(factors), draw(factors)))
    else:
        params = dict(size=(draw(st.integers(1, 9)), draw(st.integers(1, 9))))
    if "scale_factor" in params:
        sf = params["scale_factor"]
        sf = (sf, sf) if not isinstance(sf, tuple) else sf
        assume(all(np.floor(hw[a] * sf[a]) >= 1 for a in range(2)))
    return Case((_seeded(draw).standard_normal((n, c, *hw)),), params)


@st.composite
def interpolate_cases(draw):
    """upsample's cases through F.interpolate, PyTorch's entry point: mode='nearest'."""
    case = draw(upsample_cases())
    return Case(case.inputs, dict(case.params, mode="nearest"))


def _interpolate_ref(ref, x, scale_factor=None, size=None, mode="nearest"):
    return _upsample_ref(ref, x, scale_factor, size)


def _upsample_ref(ref, x, scale_factor=None, size=None):
    h, w = x.shape[2:]
    if size is not None:
        return ref(x, size)
    sf = scale_factor if isinstance(scale_factor, tuple) else (scale_factor, scale_factor)
    sf = (float(sf[0]), float(sf[1]))
    return ref(x, (int(np.floor(h * sf[0])), int(np.floor(w * sf[1]))), sf)


# ------------------------------------------------------------------------------ dense ops
@st.composite
def linear_cases(draw):
    rng = _seeded(draw)
    lead = draw(st.sampled_from([(), (3,), (2, 3)]))
    fin, fout = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    b = rng.standard_normal(fout) if draw(st.booleans()) else None
    return Case((rng.standard_normal((*lead, fin)), rng.standard_normal((fout, fin)), b))


@st.composite
def away_from_zero(draw):
    """Inputs at least 0.1 from 0, where relu-like kinks sit."""
    rng = _seeded(draw)
    shape = draw(st.sampled_from([(5,), (2, 3), (2, 1, 3, 2)]))
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 3.0, size=shape)


_NO_PARAMS = st.just({})
_SLOPES = st.fixed_dictionaries({"negative_slope": st.sampled_from([0.01, 0.2])})


@st.composite
def unary_cases(draw, params=_NO_PARAMS):
    return Case((draw(away_from_zero()),), draw(params))


@st.composite
def with_edges(draw, edges, base):
    """``base``'s input with a few elements replaced by the documented edge values: the
    kink at 0, saturation at +-1e3."""
    case = draw(base)
    x = case.inputs[0].copy()
    rng = _seeded(draw)
    picks = rng.random(x.shape) < 0.5
    x[picks] = rng.choice(edges, size=int(picks.sum()))
    return Case((x, *case.inputs[1:]), case.params)


_reductions = st.sampled_from(["mean", "sum", "none"])


@st.composite
def loss_cases(draw, kind):
    rng = _seeded(draw)
    shape = draw(st.sampled_from([(4,), (2, 3), (2, 1, 2, 2)]))
    if kind == "mse":
        x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    elif kind == "bce":
        x, t = rng.uniform(0.05, 0.95, shape), rng.uniform(0, 1, shape)
    elif kind == "bce-edges":  # probabilities of exactly 0 and 1: the log clamp at -100
        x = rng.choice([0.0, 1.0, 0.5, 0.25], size=shape)
        t = rng.choice([0.0, 1.0, 0.3], size=shape)
    else:
        x, t = 3 * rng.standard_normal(shape), rng.uniform(0, 1, shape)
    inputs = (x, t)
    if kind != "mse":  # bce, bce-edges and logits take a weight
        inputs += (rng.uniform(0.5, 2, shape) if draw(st.booleans()) else None,)
    return Case(inputs, dict(reduction=draw(_reductions)))


def _f(shape, dtype=np.float32):
    return np.zeros(shape, dtype)


OPS = [
    OpInfo(
        "conv2d", conv2d_cases(), rtol32=1e-4, atol32=1e-4,
        errors=[
            ErrorCase((_f((3, 28, 28)), _f((4, 3, 3, 3))), {}, ValueError, ("(3, 28, 28)",)),
            ErrorCase((_f((1, 3, 8, 8)), _f((4, 16, 3, 3))), {}, ValueError,
                      ("3 channels", "16", "(4, 16, 3, 3)")),
            ErrorCase((_f((1, 1, 2, 2)), _f((1, 1, 5, 5))), dict(padding=1), ValueError,
                      ("5x5", "4x4", "2x2")),
            ErrorCase((_f((1, 1, 8, 8)), _f((1, 1, 3, 3))), dict(padding=-1), ValueError,
                      ("padding", "-1")),
            ErrorCase((_f((1, 1, 8, 8)), _f((1, 1, 3, 3))), dict(stride=0), ValueError,
                      ("stride",)),
            ErrorCase((_f((1, 1, 8, 8)), _f((2, 1, 3, 3)), _f((3,))), {}, ValueError,
                      ("bias", "(2,)", "(3,)")),
            ErrorCase((_f((1, 1, 8, 8)), np.zeros((1, 1, 3, 3), np.int64)), {}, TypeError,
                      ("int64",)),
            ErrorCase((_f((1, 1, 8, 8), np.float16), _f((1, 1, 3, 3), np.float16)), {},
                      TypeError, ("float16",)),
        ],
    ),
    OpInfo(
        "conv-transpose2d", conv_transpose2d_cases(), rtol32=1e-4, atol32=1e-4,
        errors=[
            ErrorCase((_f((4, 7, 7)), _f((4, 16, 2, 2))), {}, ValueError, ("(4, 7, 7)",)),
            ErrorCase((_f((1, 8, 7, 7)), _f((4, 16, 2, 2))), {}, ValueError,
                      ("8 channels", "(4, 16, 2, 2)")),
            ErrorCase((_f((1, 1, 4, 4)), _f((1, 1, 3, 3))), dict(stride=2, output_padding=2),
                      ValueError, ("output_padding", "2x2")),
            ErrorCase((_f((1, 1, 4, 4)), _f((1, 1, 3, 3))), dict(stride=2, output_size=(20, 20)),
                      ValueError, ("20x20", "9..10")),
            ErrorCase((_f((1, 1, 4, 4)), _f((1, 1, 3, 3))), dict(padding=-2), ValueError,
                      ("padding", "-2")),
            ErrorCase((_f((1, 1, 1, 1)), _f((1, 1, 1, 1))), dict(padding=1), ValueError,
                      ("not positive", "-1")),
        ],
    ),
    OpInfo(
        "max-pool2d", max_pool2d_cases(), rtol32=0, atol32=1e-7, call_ref=_max_pool2d_ref,
        errors=[
            ErrorCase((_f((16, 28, 28)), 2), {}, ValueError, ("(16, 28, 28)",)),
            ErrorCase((_f((1, 1, 8, 8)), 2), dict(padding=2), ValueError, ("padding", "2x2")),
            ErrorCase((_f((1, 1, 8, 8)), 2), dict(padding=-1), ValueError, ("padding", "-1")),
            ErrorCase((_f((1, 1, 1, 1)), 3), {}, ValueError, ("3x3", "1x1")),
        ],
    ),
    OpInfo(
        "max-unpool2d", max_unpool2d_cases(), rtol32=1e-6, atol32=1e-6,
        call_ref=_max_unpool2d_ref,
        errors=[
            ErrorCase((_f((1, 1, 2, 2)), np.array([[[[0, 1], [2, 16]]]])), dict(kernel_size=2),
                      ValueError, ("16", "4x4", "0..15")),
            ErrorCase((_f((1, 1, 2, 2)), np.array([[[[0, 1], [2, -1]]]])), dict(kernel_size=2),
                      ValueError, ("-1", "out of range")),
            ErrorCase((_f((1, 1, 2, 2)), np.zeros((1, 1, 2, 3), np.int64)), dict(kernel_size=2),
                      ValueError, ("(1, 1, 2, 3)", "(1, 1, 2, 2)")),
            ErrorCase((_f((1, 1, 2, 2)), np.zeros((1, 1, 2, 2))), dict(kernel_size=2), TypeError,
                      ("float64", "integer")),
            ErrorCase((_f((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64)),
                      dict(kernel_size=2, output_size=(6, 6)), ValueError, ("6x6", "2", "6")),
            ErrorCase((_f((2, 2)), np.zeros((2, 2), np.int64)), dict(kernel_size=2), ValueError,
                      ("(2, 2)",)),
        ],
    ),
    OpInfo(
        "upsample-nearest2d", upsample_cases(), rtol32=0, atol32=1e-7, call_ref=_upsample_ref,
        errors=[
            ErrorCase((_f((1, 1, 2, 2)),), dict(scale_factor=2, size=4), ValueError,
                      ("exactly one",)),
            ErrorCase((_f((1, 1, 2, 2)),), {}, ValueError, ("exactly one",)),
            ErrorCase((_f((1, 1, 2, 2)),), dict(scale_factor=0), ValueError, ("scale_factor",)),
            ErrorCase((_f((1, 1, 2, 2)),), dict(scale_factor=0.2), ValueError, ("0x0", "2x2")),
            ErrorCase((_f((4, 7, 7)),), dict(scale_factor=2), ValueError, ("(4, 7, 7)",)),
        ],
    ),
    OpInfo(
        "interpolate", interpolate_cases(), rtol32=0, atol32=1e-7, call_ref=_interpolate_ref,
        errors=[
            ErrorCase((_f((1, 1, 2, 2)),), dict(scale_factor=2, mode="bilinear"), ValueError,
                      ("only mode='nearest'", "'bilinear'")),
            ErrorCase((_f((1, 1, 2, 2)),), dict(mode="nearest"), ValueError, ("exactly one",)),
        ],
    ),
    OpInfo(
        "linear", linear_cases(), rtol32=1e-5, atol32=1e-5,
        errors=[
            ErrorCase((_f((2, 784)), _f((32, 780))), {}, ValueError, ("784", "(32, 780)")),
            ErrorCase((_f((2, 4)), _f((3, 4)), _f((4,))), {}, ValueError, ("(3,)", "(4,)")),
        ],
    ),
    OpInfo("relu", with_edges([0.0, -0.0], unary_cases()), atol32=0, rtol32=0,
           grad_cases=unary_cases(),
           errors=[ErrorCase((np.ones(3, np.float16),), {}, TypeError, ("float16",)),
                   ErrorCase((np.ones(3, np.int64),), {}, TypeError, ("int64",))]),
    OpInfo("leaky-relu",
           with_edges([0.0, -0.0], unary_cases(_SLOPES)), grad_cases=unary_cases(_SLOPES)),
    OpInfo("sigmoid", with_edges([1e3, -1e3, 40.0, -40.0], unary_cases())),
    OpInfo("tanh", with_edges([1e3, -1e3, 20.0, -20.0], unary_cases())),
    OpInfo(
        "mse-loss", loss_cases("mse"),
        errors=[
            ErrorCase((_f((2, 3)), _f((2, 3))), dict(reduction="avg"), ValueError, ("'avg'",)),
            ErrorCase((_f((2, 3)), _f((3, 2))), {}, ValueError, ("(3, 2)", "(2, 3)")),
        ],
    ),
    OpInfo(
        "binary-cross-entropy", st.one_of(loss_cases("bce"), loss_cases("bce-edges")),
        constant_inputs=(2,), grad_cases=loss_cases("bce"),
        errors=[
            ErrorCase((np.full(3, 1.5, np.float32), _f(3)), {}, ValueError, ("[0, 1]", "1.5")),
            ErrorCase((_f((2, 3)), _f((2, 2))), {}, ValueError, ("(2, 2)", "(2, 3)")),
        ],
    ),
    OpInfo(
        "binary-cross-entropy-with-logits", loss_cases("logits"), constant_inputs=(2,),
        errors=[
            ErrorCase((_f((2, 3)), _f((2, 3))), dict(reduction=None), ValueError,
                      ("reduction",)),
        ],
    ),
]

OPS_BY_NAME = {op.name: op for op in OPS}
