"""Second derivatives of conv2d and conv_transpose2d (create_graph=True), in float64.

Their backward_graph builds the gradients from Conv2dBilinear, conv2d's three bilinear maps
(convolution, input gradient = transposed convolution, weight gradient) as one op whose
gradients are its other maps.
Shapes are small enough for gradgradcheck's full Jacobian: every element is checked.
"""

import os

import numpy as np
import pytest

import npae
import npae.functional as F
from npae import Tensor
from npae.engine.shapes import conv2d_geometry
from npae.ops.conv2d_bilinear import Conv2dBilinear

# Under the CUDA simulator (make test-cuda-sim) every GPU thread runs as Python and one
# full-Jacobian check takes half a minute: the GPU twins get one strided case of each op there
# (with bias), the CPU every case.
SIMULATED = os.environ.get("NPAE_TEST_KERNELS") == "cuda"
BIAS = [pytest.param(True, id="bias")] + ([] if SIMULATED else [pytest.param(False, id="no-bias")])
ROLES = ["w"] if SIMULATED else ["w", "x", "y"]


def _cases(names, simulated):
    """Every case on the CPU; under the simulator, the one named."""
    return [simulated] if SIMULATED else list(names)


# (x shape, weight shape, params): stride 1 and 2, padding, dilation 2, non-square everything
CONV2D = {
    "plain": ((1, 2, 4, 4), (2, 2, 2, 2), {}),
    "stride2-pad1": ((2, 1, 5, 4), (2, 1, 3, 3), {"stride": 2, "padding": 1}),
    "dilation2": ((1, 2, 5, 5), (1, 2, 2, 2), {"dilation": 2}),
    # rows and columns the stride never reaches get zero gradients at every order
    "non-square": ((1, 1, 6, 5), (2, 1, 3, 2), {"stride": (2, 1), "padding": (0, 1)}),
}

# x is (N, Cin, H, W), the weight (Cin, Cout, kH, kW)
CONV_TRANSPOSE2D = {
    "plain": ((1, 2, 3, 3), (2, 2, 2, 2), {}),
    "stride2-pad1-outpad1": ((1, 2, 3, 2), (2, 1, 3, 3),
                             {"stride": 2, "padding": 1, "output_padding": 1}),
    # output_padding may reach the dilation: the extra row is one the convolution never reads
    "dilation2-outpad1": ((1, 1, 3, 3), (1, 2, 2, 2), {"dilation": 2, "output_padding": 1}),
    "non-square": ((2, 1, 2, 3), (1, 2, 3, 2), {"stride": (2, 1), "padding": (1, 0)}),
}


def _same_as_first_order(fn, inputs, seed=3):
    """gradgradcheck differentiates the create_graph=True gradient, so it cannot see that
    gradient's own value go wrong: pin it to the first-order backward's."""
    v = None
    results = []
    for create_graph in (False, True):
        args = [Tensor(a, requires_grad=True) for a in inputs]
        y = fn(*args)
        if v is None:
            v = np.random.default_rng(seed).standard_normal(y.shape)
        results.append(npae.grad(y, args, grad_outputs=v, create_graph=create_graph))
    for i, (a, b) in enumerate(zip(*results, strict=True)):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=1e-12,
                                   err_msg=f"input {i}")


def _inputs(x_shape, w_shape, bias_size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    return [x, w] + ([rng.standard_normal(bias_size)] if bias_size else [])


@pytest.mark.parametrize("bias", BIAS)
@pytest.mark.parametrize("name", _cases(CONV2D, "stride2-pad1"))
def test_conv2d_gradgradcheck(name, bias):
    xs, ws, prm = CONV2D[name]
    inputs = _inputs(xs, ws, ws[0] if bias else 0)
    fn = lambda x, w, b=None: F.conv2d(x, w, b, **prm)  # noqa: E731
    _same_as_first_order(fn, inputs)
    assert npae.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("bias", BIAS)
@pytest.mark.parametrize("name", _cases(CONV_TRANSPOSE2D, "stride2-pad1-outpad1"))
def test_conv_transpose2d_gradgradcheck(name, bias):
    xs, ws, prm = CONV_TRANSPOSE2D[name]
    inputs = _inputs(xs, ws, ws[1] if bias else 0)
    fn = lambda x, w, b=None: F.conv_transpose2d(x, w, b, **prm)  # noqa: E731
    _same_as_first_order(fn, inputs)
    assert npae.gradgradcheck(fn, inputs)


BILINEAR = {"plain": (1, 0, 1), "stride2-pad1": (2, 1, 1), "dilation2": ((1, 2), 1, 2)}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", _cases(BILINEAR, "stride2-pad1"))
def test_bilinear_maps_gradgradcheck(name, role):
    # conv2d's three maps on their own (role "w" is the weight gradient, "x" the input
    # gradient, "y" the convolution): their backward (first order) and backward_graph
    stride, padding, dilation = BILINEAR[name]
    rng = np.random.default_rng(1)
    hw = (5, 4)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    g = conv2d_geometry("conv2d", hw, (2, 3), pair(stride), pair(padding), pair(dilation))
    arrays = {"x": rng.standard_normal((2, 1, *hw)), "w": rng.standard_normal((2, 1, 2, 3)),
              "y": rng.standard_normal((2, 2, g.oh, g.ow))}
    inputs = [arrays[r] for r in "xwy" if r != role]
    fn = lambda a, b: Conv2dBilinear.apply(a, b, geom=g, role=role, hw=hw)  # noqa: E731
    assert fn(*inputs).shape == arrays[role].shape
    assert npae.gradcheck(fn, inputs)
    _same_as_first_order(fn, inputs)
    assert npae.gradgradcheck(fn, inputs)


def test_create_graph_gradient_equals_first_order():
    # a larger case than the gradgradchecks', with both kernel paths' shapes in reach
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal((2, 3, 7, 6))
    w0 = rng.standard_normal((4, 3, 3, 2))
    b0 = rng.standard_normal(4)
    v = rng.standard_normal((2, 4, 4, 6))  # y's shape: (7 + 2 - 3)//2 + 1 = 4, 6 + 2 - 2 = 6

    def grads(create_graph):
        x, w, b = (Tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2))
        return x, w, npae.grad(y, (x, w, b), grad_outputs=v, create_graph=create_graph)

    _, _, first = grads(False)
    x, w, second = grads(True)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-12, atol=1e-12)
    # gx depends on w and gw on x: both recorded, and a second backward goes through them
    gx, gw, gb = second
    assert gx.requires_grad and gw.requires_grad and not gb.requires_grad
    hw, hx = npae.grad((gx * gx).sum() + (gw * gw).sum(), (w, x))
    assert hw.shape == w0.shape and hx.shape == x0.shape
