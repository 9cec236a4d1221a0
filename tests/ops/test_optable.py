"""Generic tests over the op table: every op against its reference, its gradients against finite
differences, and its bad inputs against clear errors; and the table against npae's registry of
ops (npae/tools/registry.py), which names each op's function and reference."""

import os

import numpy as np
import pytest
import reference as R
from hypothesis import given, settings
from optable import OPS

import npae
from npae import Tensor
from npae.engine.function import Function
from npae.tools import registry

GRAD_RTOL, GRAD_ATOL = 1e-6, 1e-8

# Convolutions have two kernel paths (batched im2col + GEMM, one image at a time) picked by
# shape; the small shapes drawn here would always pick one, so the conv entries run once with
# each path forced.
CASES = [pytest.param(info, method, id=f"{info.name}-{method}" if method else info.name)
         for info in OPS
         for method in (("im2col", "image") if info.name.startswith("conv") else (None,))]


@pytest.fixture
def force_conv_path(monkeypatch):
    from npae.kernels import conv2d as conv_module
    from npae.kernels.cuda import conv2d as gpu_conv_module

    def force(method):
        if method is not None:
            # the CPU kernels' path choice and their GPU twins'
            monkeypatch.setattr(conv_module, "_method", lambda requested, use_image: method)
            monkeypatch.setattr(gpu_conv_module, "_use_image",
                                lambda requested, *shape: method == "image")

    return force


def _as(value, dtype):
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(dtype)
    return value


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("info, method", CASES)
def test_forward_matches_reference(info, method, dtype, force_conv_path):
    force_conv_path(method)

    @given(info.cases)
    def check(case):
        inputs = [_as(v, dtype) for v in case.inputs]
        out = info.fn(*[Tensor(v) if isinstance(v, np.ndarray) else v for v in inputs],
                      **case.params)
        # the reference sees the same (rounded) inputs, so only the op's own arithmetic counts
        expected = info.ref(*[_as(v, np.float64) for v in inputs], **case.params)
        assert out.dtype == dtype
        assert out.shape == expected.shape
        if dtype == np.float64:
            np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_allclose(out.data, expected, rtol=info.rtol32, atol=info.atol32)

    check()


@pytest.mark.parametrize("info, method", CASES)
def test_gradcheck(info, method, force_conv_path):
    force_conv_path(method)

    @given(info.cases if info.grad_cases is None else info.grad_cases)
    def check(case):
        inputs = [
            Tensor(v, requires_grad=i not in info.constant_inputs)
            if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating) else v
            for i, v in enumerate(case.inputs)
        ]
        # central differences in float64 with eps 1e-6 err by about eps^2 * f''' and 1e-16 / eps
        # of rounding: 1e-6 relative is what they allow, so that is what is asked
        assert npae.gradcheck(lambda *args: info.fn(*args, **case.params), inputs,
                              atol=GRAD_ATOL, rtol=GRAD_RTOL)

    check()


# second order costs a full Jacobian of the first-order gradient per example: fewer examples,
# and one per op under the CUDA simulator (every GPU thread runs as Python there; the second
# order calls the same kernels as the first, which that lane checks more widely)
GRADGRAD_EXAMPLES = 1 if os.environ.get("NPAE_TEST_KERNELS") == "cuda" else 12


@pytest.mark.parametrize("info, method", CASES)
def test_gradgradcheck(info, method, force_conv_path):
    """Every op's gradient is itself differentiable (its backward_graph), and right: the
    backward of the backward against finite differences of the first-order gradient."""
    force_conv_path(method)

    @settings(max_examples=min(settings().max_examples, GRADGRAD_EXAMPLES))
    @given(info.cases if info.grad_cases is None else info.grad_cases)
    def check(case):
        inputs = [
            Tensor(v, requires_grad=i not in info.constant_inputs)
            if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating) else v
            for i, v in enumerate(case.inputs)
        ]
        assert npae.gradgradcheck(lambda *args: info.fn(*args, **case.params), inputs,
                                  atol=GRAD_ATOL, rtol=GRAD_RTOL)

    check()


@pytest.mark.parametrize("info", [op for op in OPS if op.errors], ids=repr)
def test_bad_inputs_raise_clear_errors(info):
    for err in info.errors:
        args = [Tensor(v) if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)
                else v for v in err.inputs]
        with pytest.raises(err.error) as raised:
            info.fn(*args, **err.params)
        message = str(raised.value)
        for fragment in err.says:
            assert fragment in message, f"{info.name}: {fragment!r} not in {message!r}"


def test_every_functional_op_is_in_the_table():
    import npae.functional as F

    covered = {op.fn.__name__ for op in OPS}
    elementwise = {"exp", "log", "sqrt", "clip"}  # tested in test_tensor.py
    assert set(F.__all__) - elementwise <= covered
    assert all(getattr(F, op.fn.__name__) is op.fn for op in OPS)


def test_every_registry_op_with_a_public_function_is_in_the_table():
    """Adding an op to npae/tools/registry.py asks for its entry here (and im2col, a kernel
    with no public function, is tested with the kernels)."""
    public = [op.name for op in registry.OPS if op.functional is not None]
    assert sorted(public) == sorted(info.name for info in OPS)
    assert len({info.name for info in OPS}) == len(OPS)


@pytest.mark.parametrize("op", registry.OPS, ids=lambda op: op.name)
def test_every_registry_op_names_a_reference_and_its_function(op):
    reference = getattr(R, op.reference, None)
    assert callable(reference), f"{op.name}: tests/reference.py has no {op.reference}"
    assert issubclass(op.function, Function)
    if op.functional is not None:
        # one op, one file: the Function lives beside the public function that runs it
        assert op.function.__module__ == op.functional.__module__
