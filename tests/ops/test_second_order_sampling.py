"""Second derivatives of the sampling ops: max_pool2d, max_unpool2d, upsample_nearest2d.

Each backward is a linear map of the output gradient (a scatter-add at the saved indices, a
gather at them, a sum over copies), recorded under create_graph=True as an op whose own
gradient is its transpose. Checked in float64 with npae.gradgradcheck on every op and on each
helper Function directly; the max ops get tie-free inputs (optable.tie_free: values 2/size
apart, far wider than the 1e-6 difference step), plus one input with deliberate ties that pins
where the create_graph gradient goes. Small shapes: the full Jacobian is used throughout.
"""

import os

import numpy as np
import pytest
from optable import tie_free

import npae
import npae.functional as F
from npae import Tensor
from npae.engine.shapes import upsample_nearest2d_plan
from npae.ops.max_unpool2d import GatherAtIndices, MaxUnpool2d
from npae.ops.upsample_nearest2d import SumCopies, UpsampleNearest2d

# make test-cuda-sim runs this file on the GPU twins under Numba's simulator, where every GPU
# thread runs as Python (all of it took 5 minutes there): the first two settings of each list
# prove the routing; the CPU kernels get all of them
SIM = os.environ.get("NPAE_TEST_KERNELS") == "cuda"


def _some(settings):
    return settings[:2] if SIM else settings


# (input H x W, kernel, stride, padding, dilation, ceil_mode)
POOLS = [
    ((4, 4), 2, 2, 0, 1, False),
    ((4, 5), 2, 1, 0, 1, False),  # overlapping windows, stride 1
    ((5, 5), 3, 2, 0, 1, False),  # overlapping: neighbours share a row and a column
    ((5, 6), 3, 2, 1, 1, False),
    ((4, 4), 3, 1, 1, 1, False),
    ((6, 6), 2, 2, 1, 2, False),  # dilation
    ((5, 5), 2, 2, 0, 1, True),  # ceil_mode: a last, partial window
    ((6, 7), 3, 2, 1, 1, True),
]

# (input H x W, upsample_nearest2d's keyword arguments)
UPSAMPLES = [
    ((2, 3), {"scale_factor": 2}),
    ((2, 2), {"scale_factor": (2, 3)}),
    ((2, 3), {"scale_factor": 1.5}),
    ((2, 3), {"size": (5, 7)}),  # non-integer ratios: copies repeat unevenly
    ((3, 4), {"size": (4, 3)}),  # one axis shrinks: some pixels have no copy at all
]


def _pool_id(p):
    hw, k, s, pad, d, ceil = p
    return f"{hw[0]}x{hw[1]}-k{k}s{s}p{pad}d{d}" + ("-ceil" if ceil else "")


def _pooled(p, seed=0):
    """A tie-free input for setting p, and its pooled values and indices (no graph)."""
    hw, k, s, pad, d, ceil = p
    x = tie_free(np.random.default_rng(seed), (1, 2, *hw))
    y, idx = F.max_pool2d(Tensor(x), k, s, pad, d, ceil, return_indices=True)
    return x, y.data, idx.data


# ------------------------------------------------------------------------------ gradgradcheck
@pytest.mark.parametrize("p", _some(POOLS), ids=_pool_id)
def test_max_pool2d_gradgradcheck(p):
    hw, k, s, pad, d, ceil = p
    x, _, _ = _pooled(p)
    assert npae.gradgradcheck(lambda t: F.max_pool2d(t, k, s, pad, d, ceil), [x])


# max_unpool2d has no dilation, and its default size undoes a pooling without ceil_mode
UNPOOLS = [p for p in POOLS if p[4] == 1 and not p[5]]


@pytest.mark.parametrize("p", _some(UNPOOLS), ids=_pool_id)
def test_max_unpool2d_gradgradcheck(p):
    hw, k, s, pad, _, _ = p
    _, y, idx = _pooled(p)
    values = np.random.default_rng(1).standard_normal(y.shape)
    assert npae.gradgradcheck(
        lambda t: F.max_unpool2d(t, idx, k, s, pad, output_size=hw), [values])


@pytest.mark.parametrize("hw, kw", _some(UPSAMPLES), ids=lambda v: str(v))
def test_upsample_nearest2d_gradgradcheck(hw, kw):
    x = np.random.default_rng(2).standard_normal((1, 2, *hw))
    assert npae.gradgradcheck(lambda t: F.upsample_nearest2d(t, **kw), [x])


# ------------------------------------------------------------------------------ the helpers
def test_gather_at_indices_checks_with_duplicate_indices():
    p = ((5, 5), 3, 2, 0, 1, False)
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the centre is in all four windows and the maximum of each
    _, idx = F.max_pool2d(Tensor(x), 3, 2, return_indices=True)
    idx = idx.data
    assert (idx == 12).all()  # four positions gather, and so scatter back, at one index
    gy = np.random.default_rng(3).standard_normal((1, 1, 5, 5))
    assert npae.gradcheck(lambda t: GatherAtIndices.apply(t, idx), [gy])
    assert npae.gradgradcheck(lambda t: GatherAtIndices.apply(t, idx), [gy])
    _, _, idx = _pooled(p)  # (1, 2, 2, 2) indices into 5x5 planes, neighbours sharing some
    assert len(np.unique(idx[0, 0])) < 4
    gy = np.random.default_rng(3).standard_normal((1, 2, 5, 5))
    assert npae.gradgradcheck(lambda t: GatherAtIndices.apply(t, idx), [gy])


def test_max_unpool2d_function_checks_with_duplicate_indices():
    idx = np.array([[[[12, 12], [3, 12]]]])
    x = np.random.default_rng(4).standard_normal((1, 1, 2, 2))
    assert npae.gradcheck(lambda t: MaxUnpool2d.apply(t, idx, oh=4, ow=4), [x])
    assert npae.gradgradcheck(lambda t: MaxUnpool2d.apply(t, idx, oh=4, ow=4), [x])


def _plan(hw, kw, part=slice(0, 2)):
    """upsample_nearest2d's plan (oh, ow, rows, cols), or the part of it asked for."""
    return upsample_nearest2d_plan("test", hw, kw.get("scale_factor"), kw.get("size"))[part]


@pytest.mark.parametrize("hw, kw", _some(UPSAMPLES), ids=lambda v: str(v))
def test_sum_copies_checks(hw, kw):
    oh, ow, rows, cols = _plan(hw, kw, slice(None))
    gy = np.random.default_rng(5).standard_normal((1, 2, oh, ow))

    def fn(t):
        return SumCopies.apply(t, rows=rows, cols=cols, h=hw[0], w=hw[1])

    assert npae.gradcheck(fn, [gy])
    assert npae.gradgradcheck(fn, [gy])
    # and it is the upsample's transpose: <U x, g> = <x, S g>
    x = np.random.default_rng(6).standard_normal((1, 2, *hw))
    up = UpsampleNearest2d.apply(Tensor(x), rows=rows, cols=cols).data
    assert np.isclose(np.vdot(up, gy), np.vdot(x, fn(Tensor(gy)).data), rtol=1e-12)


# ------------------------------------------------------------------------------ create_graph
def _grads(fn, x, v, create_graph):
    """fn's input gradient for output gradient v: .grad after backward, or npae.grad."""
    t = Tensor(x, requires_grad=True)
    y = fn(t)
    if not create_graph:
        y.backward(v)
        return t.grad
    # v requires grad: these gradients depend on v alone (not on x), so that is what records
    (g,) = npae.grad(y, t, grad_outputs=Tensor(v, requires_grad=True), create_graph=True)
    assert g.requires_grad  # recorded, so it can be differentiated again
    return g.data


CASES = (
    [(f"max_pool2d-{_pool_id(p)}", _pooled(p)[0],
      lambda t, p=p: F.max_pool2d(t, *p[1:])) for p in _some(POOLS)]
    + [(f"upsample-{hw}-{kw}", np.random.default_rng(7).standard_normal((1, 2, *hw)),
        lambda t, kw=kw: F.upsample_nearest2d(t, **kw)) for hw, kw in _some(UPSAMPLES)]
    + [(f"max_unpool2d-{_pool_id(p)}",
        np.random.default_rng(8).standard_normal(_pooled(p)[1].shape),
        lambda t, p=p: F.max_unpool2d(t, _pooled(p)[2], *p[1:4], output_size=p[0]))
       for p in _some(UNPOOLS)]
    # the helpers too: gradgradcheck differentiates the create_graph gradient but cannot see
    # whether it equals the first-order one, so a wrong helper backward_graph shows up here
    + [("GatherAtIndices", np.random.default_rng(8).standard_normal((1, 2, 5, 5)),
        lambda t: GatherAtIndices.apply(t, _pooled(POOLS[2])[2])),
       ("MaxUnpool2d", np.random.default_rng(8).standard_normal((1, 1, 2, 2)),
        lambda t: MaxUnpool2d.apply(t, np.array([[[[12, 12], [3, 12]]]]), oh=4, ow=4))]
    + [(f"SumCopies-{hw}-{kw}", np.random.default_rng(7).standard_normal((1, 2, *_plan(hw, kw))),
        lambda t, hw=hw, kw=kw: SumCopies.apply(t, rows=_plan(hw, kw, 2), cols=_plan(hw, kw, 3),
                                                h=hw[0], w=hw[1]))
       for hw, kw in _some(UPSAMPLES)]
)


@pytest.mark.parametrize("name, x, fn", CASES, ids=[c[0] for c in CASES])
def test_create_graph_gradient_equals_first_order(name, x, fn):
    with npae.no_grad():
        shape = fn(Tensor(x)).shape
    v = np.random.default_rng(9).standard_normal(shape)
    # the same kernels run either way, so the numbers are identical, not merely close
    np.testing.assert_array_equal(_grads(fn, x, v, True), _grads(fn, x, v, False))


def test_max_pool2d_overlapping_windows_sum_at_a_shared_index_in_both_orders():
    x = np.random.default_rng(10).uniform(0, 1, (1, 1, 5, 5))
    x[0, 0, 2, 2] = 2.0  # every 3x3 stride-2 window holds the centre, and it is their maximum
    t = Tensor(x, requires_grad=True)
    v = Tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), requires_grad=True)
    (g,) = npae.grad(F.max_pool2d(t, 3, 2), t, grad_outputs=v, create_graph=True)
    expected = np.zeros_like(x)
    expected[0, 0, 2, 2] = 10.0  # 1 + 2 + 3 + 4, like the first-order scatter-add
    np.testing.assert_array_equal(g.data, expected)
    u = np.random.default_rng(11).standard_normal(x.shape)
    (gv,) = npae.grad((g * Tensor(u)).sum(), v)
    np.testing.assert_array_equal(gv.data, np.full((1, 1, 2, 2), u[0, 0, 2, 2]))


# ------------------------------------------------------------------------------ ties
def test_max_pool2d_ties_route_the_create_graph_gradient_to_the_saved_index():
    # window 0 holds 3 twice (scan positions 1 and 2), window 1 holds 2 three times,
    # window 2 is all 5s: the first maximum in scan order wins each, as the forward documents
    x = np.array([[[[1.0, 3.0, 2.0, 2.0, 5.0, 5.0],
                    [3.0, 0.0, 2.0, 1.0, 5.0, 5.0]]]])
    y, idx = F.max_pool2d(Tensor(x), 2, return_indices=True)
    assert idx.data.ravel().tolist() == [1, 2, 4]
    t = Tensor(x, requires_grad=True)
    v = Tensor(np.array([[[[10.0, 20.0, 30.0]]]]), requires_grad=True)
    (g,) = npae.grad(F.max_pool2d(t, 2), t, grad_outputs=v, create_graph=True)
    expected = np.zeros_like(x)
    expected[0, 0, 0, [1, 2, 4]] = [10.0, 20.0, 30.0]  # all of it there, none split to a twin
    np.testing.assert_array_equal(g.data, expected)
    np.testing.assert_array_equal(g.data, _grads(lambda s: F.max_pool2d(s, 2), x, v.data, False))
    # the second derivative: along v it reads u at exactly the saved indices; along x it is
    # zero (the indices are constants)
    u = np.arange(12.0).reshape(x.shape) + 1.0
    gv, gx = npae.grad((g * Tensor(u)).sum(), [v, t], allow_unused=True)
    np.testing.assert_array_equal(gv.data, [[[[2.0, 3.0, 5.0]]]])
    assert gx is None or not np.any(gx.data)
