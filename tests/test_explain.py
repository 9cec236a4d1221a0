"""npae explain: the article's examples, the shown arithmetic against the float64 references
(tests/reference.py, which never imports the kernels), the final check, and its failure."""

import re

import numpy as np
import pytest
import reference as R
from hypothesis import given
from hypothesis import strategies as st

import npae.functional as F
import npae.tools.explain as E
from npae import Tensor
from npae import kernels as K
from npae.engine.function import Function
from npae.tools import registry
from npae.tools.explain import explain, figure
from npae.tools.explain.conv2d import conv_matrix
from npae.tools.registry import EXPLAINED_NAMES as OPS
from npae.tools.settings import ExplainSettings as Settings


def _last_lines(e):
    lines = [x for x in e.lines if x]
    checks = [x for x in lines if x.startswith("check")]
    return lines, checks


def _prose(e):
    """The text with line wraps undone, for phrases that may wrap."""
    return " ".join(e.text.split())


def _numbers(text):
    return [float(v) for v in text.split()]


# ------------------------------------------------------------------------------ the article
def test_conv2d_3x3_stride1_padding1_keeps_4x4():
    e = explain("conv2d", Settings(input=(4, 4), kernel=(3, 3), stride=(1, 1), padding=(1, 1)))
    assert e.ok and e.output_hw == (4, 4)
    assert "output shape: 4x4, the same as the input" in e.text
    assert "height: floor((4 + 2*1 - 1*(3 - 1) - 1) / 1) + 1 = floor(3 / 1) + 1 = 4" in e.text
    assert e.text.count("reads rows") == 16  # one block per output element
    lines, checks = _last_lines(e)
    assert lines[-1] == checks[-1]  # the explanation ends with its check
    assert checks[0] == "check: every sum above matches npae's kernel (F.conv2d) exactly."


def test_conv2d_stride2_gives_2x2():
    e = explain("conv2d", Settings(input=(4, 4), kernel=(3, 3), stride=(2, 2), padding=(1, 1)))
    assert e.ok and e.output_hw == (2, 2)
    assert "output shape: 2x2" in e.text and "4x4 input becomes 2x2" in _prose(e)
    assert "floor(3 / 2) + 1 = 2" in e.text
    # windows start 2 pixels apart: y[0,1] reads columns 1..3
    assert "y[0,1] reads rows -1..1, columns 1..3" in e.text


# ------------------------------------------------------------------------------ arithmetic
def test_conv2d_sums_equal_the_reference_and_the_padding_is_drawn():
    x = np.arange(1, 17, dtype=float)
    k = np.array([1, 0, -1, 2, 0, -2, 1, 0, -1], dtype=float)
    e = explain("conv2d", Settings(input=(4, 4), kernel=(3, 3), padding=(1, 1),
                                   values=list(x), weights=list(k)))
    sums = [float(v) for v in re.findall(r"^    sum: .* = (-?[\d.]+)", e.text, flags=re.M)]
    ref = R.conv2d_ref(x.reshape(1, 1, 4, 4), k.reshape(1, 1, 3, 3), padding=(1, 1))
    assert sums == ref.ravel().tolist()
    # the top row of the padded input is all padding
    assert "  . . . . . .  " in e.text or "  .  .  .  .  .  ." in e.text
    # y[0,0] = 6*0... hand-written: window rows -1..1, cols -1..1 of 1..16; taps (1,1),(1,2),
    # (2,1),(2,2) are real: 1*0 + 2*(-2) + 5*0 + 6*(-1) = -10
    assert "sum: 0 - 4 + 0 - 6 = -10 (padding adds 0)" in e.text


def test_conv_transpose_copies_counts_sums_and_the_checkerboard_flag():
    x = [1.0, 2.0, 3.0, 4.0]
    e = explain("conv-transpose2d", Settings(input=(2, 2), kernel=(3, 3), stride=(2, 2),
                                             values=x, weights=[1.0] * 9))
    assert e.ok and e.output_hw == (5, 5)
    assert "In case of overlapping, the values are summed." in e.text
    # the centre pixel is where all four copies meet
    assert "y[2,2] = 1*1 + 2*1 + 3*1 + 4*1 = 10" in e.text
    count = e.arrays["count"]
    np.testing.assert_array_equal(count[2], [2, 2, 4, 2, 2])
    assert "not divisible by stride 2" in _prose(e) and "checkerboard" in e.text
    assert "upsample-nearest2d, then a stride-1 conv2d" in _prose(e)
    ref = R.conv_transpose2d_ref(np.reshape(x, (1, 1, 2, 2)), np.ones((1, 1, 3, 3)),
                                 stride=(2, 2))
    got = [float(v) for v in re.findall(r"^  y\[\d,\d\] = .* = (-?[\d.]+)$", e.text, flags=re.M)]
    assert got == ref.ravel().tolist()

    even = explain("conv-transpose2d", Settings(input=(2, 2), kernel=(2, 2), stride=(2, 2)))
    assert even.ok and even.output_hw == (4, 4)
    assert "checkerboard" not in even.text.replace("no checkerboard", "")
    assert "divisible by stride 2, so the copies tile the output evenly" in _prose(even)


def test_conv_transpose_with_padding_and_output_padding():
    e = explain("conv-transpose2d", Settings(input=(3, 3), kernel=(3, 3), stride=(2, 2),
                                             padding=(1, 1), output_padding=(1, 1)))
    assert e.ok and e.output_hw == (6, 6)
    assert "output_padding 1x1 adds no zeros" in _prose(e)
    assert "(cropped)" in e.text


def test_max_pool_maxima_and_indices_equal_the_reference():
    e = explain("max-pool2d", Settings(input=(4, 4), kernel=(2, 2), seed=3))
    y, idx = R.max_pool2d_ref(e.arrays["x"][None, None], (2, 2), (2, 2))
    assert e.ok and e.output_hw == (2, 2)
    found = re.findall(r"-> max (\d+) at \((\d),(\d)\), index \d\*4 \+ \d = (\d+)", e.text)
    assert [float(m) for m, *_ in found] == y.ravel().tolist()
    assert [int(i) for *_, i in found] == idx.ravel().tolist()


def test_max_pool_ties_say_the_rule():
    e = explain("max-pool2d", Settings(input=(2, 2), kernel=(2, 2), values=[1, 5, 5, 5]))
    assert e.ok and "index 0*2 + 1 = 1" in e.text
    assert "the first maximum in scan order" in _prose(e)


def test_max_unpool_puts_each_value_back():
    x = [3, 12, 4, 11, 1, 5, 8, 6, 15, 13, 7, 10, 14, 9, 2, 16]
    e = explain("max-unpool2d", Settings(input=(4, 4), kernel=(2, 2), values=x))
    assert e.ok and e.output_hw == (4, 4)
    assert "value 12 (pooled y[0,0]) -> index 1 -> row 1 // 4 = 0, col 1 % 4 = 1" in e.text
    expected = np.zeros(16)
    expected[[1, 3, 8, 15]] = [12, 11, 15, 16]
    np.testing.assert_array_equal(e.arrays["u"].ravel(), expected)


def test_unpool_after_a_flooring_pool_restores_the_input_size():
    e = explain("max-unpool2d", Settings(input=(5, 5), kernel=(2, 2)))
    assert e.ok and e.output_hw == (5, 5)
    assert "the default is 4x4; output_size=5x5 restores" in _prose(e)


@pytest.mark.parametrize("scale", [2.0, 1.5, 3.0])
def test_upsample_sources_equal_the_reference(scale):
    e = explain("upsample-nearest2d", Settings(input=(2, 3), scale=scale))
    x = e.arrays["x"]
    oh, ow = int(2 * scale), int(3 * scale)
    ref = R.upsample_nearest2d_ref(x[None, None], (oh, ow), (scale, scale))
    assert e.ok and e.output_hw == (oh, ow)
    np.testing.assert_array_equal(e.arrays["y"], ref[0, 0])
    rows = _numbers(re.search(r"input row: +([\d ]+)", e.text).group(1))
    assert [x[int(r), 0] for r in rows] == ref[0, 0, :, 0].tolist()


def test_im2col_columns_equal_the_reference():
    e = explain("im2col", Settings(input=(3, 3), kernel=(2, 2), padding=(1, 1)))
    ref = R.im2col_ref(e.arrays["x"][None, None], (2, 2), (1, 1), (1, 1), (1, 1))[0]
    assert e.ok and e.output_hw == (4, 4)
    np.testing.assert_array_equal(e.arrays["cols"], ref)
    result = _numbers(re.search(r"result: +([-\d ]+)", e.text).group(1))
    conv = R.conv2d_ref(e.arrays["x"][None, None], e.arrays["k"][None, None], padding=(1, 1))
    assert result == conv.ravel().tolist()


@pytest.mark.parametrize("op", OPS)
def test_every_op_ends_with_a_passing_check_and_states_its_output_shape(op):
    e = explain(op)
    lines, checks = _last_lines(e)
    assert e.ok and checks and lines[-1] == checks[-1]
    assert all("matches npae's kernel" in c for c in checks)
    shape = f"{e.output_hw[0]}x{e.output_hw[1]}"
    assert re.search(rf"(output|pooled) shape: {shape}\b", e.text) or f"output shape: {shape}" \
        in e.text
    assert max(len(x) for x in e.lines if "  " not in x.lstrip()) <= E.WIDTH


@pytest.mark.parametrize("op", OPS)
def test_the_check_fails_when_the_kernel_disagrees(op, monkeypatch):
    """A check that cannot fail proves nothing: corrupt the op the explanation calls."""
    for name in ("conv2d", "conv_transpose2d", "upsample_nearest2d", "max_unpool2d"):
        real = getattr(F, name)

        def off_by_one(*args, _real=real, **kwargs):
            y = _real(*args, **kwargs)
            return Tensor(y.data + 1.0)

        monkeypatch.setattr(F, name, off_by_one)
    real_pool = F.max_pool2d

    def wrong_pool(*args, **kwargs):
        y, idx = real_pool(*args, **kwargs)
        return Tensor(y.data + 1.0), idx

    monkeypatch.setattr(F, "max_pool2d", wrong_pool)
    if op == "im2col":  # its column matrix comes from the kernel itself
        monkeypatch.setattr(K, "im2col", lambda *a: np.zeros((1, 9, 4)))
    e = explain(op)
    assert not e.ok
    assert "check FAILED" in e.text


# ------------------------------------------------------------------------------ --matrix
def test_matrix_of_transpose_conv_is_exactly_the_transpose_of_convs():
    e = explain("conv-transpose2d", Settings(input=(2, 2), kernel=(3, 3), stride=(2, 2),
                                             matrix=True))
    assert e.ok and "check: M equals the transpose of conv2d's matrix exactly." in e.text


@pytest.mark.parametrize("op", ["conv2d", "max-pool2d", "max-unpool2d", "upsample-nearest2d",
                                "im2col"])
def test_matrix_view_is_checked_against_the_op(op):
    e = explain(op, Settings(matrix=True))
    assert e.ok and "columns: " in e.text
    assert any(c.startswith("check: ") and "@" in c for c in e.lines)


def test_matrix_of_conv_is_banded():
    x = np.arange(16, dtype=float)
    e = explain("conv2d", Settings(input=(4, 4), kernel=(3, 3), matrix=True, values=list(x),
                                   weights=list(range(1, 10))))
    m = conv_matrix(e.arrays["k"], (4, 4), e.arrays["geom"])
    ref = R.conv2d_ref(x.reshape(1, 1, 4, 4), np.arange(1, 10.).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(m @ x, ref.ravel())
    assert "  y[0,0]    1  2  3  .  4  5  6  .  7  8  9  .  .  .  .  ." in e.text


def test_matrix_refuses_a_large_input():
    with pytest.raises(ValueError, match=r"--matrix .* 36x36: keep it to at most"):
        explain("conv2d", Settings(input=(6, 6), kernel=(1, 1), matrix=True))


# ------------------------------------------------------------------------------ bad input
def test_values_must_match_the_input_size():
    with pytest.raises(ValueError, match=r"--values gives 5 numbers but 2x2 needs 4"):
        explain("conv2d", Settings(input=(2, 2), kernel=(1, 1), values=[1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="not a square image"):
        explain("conv2d", Settings(values=[1, 2, 3]))


def test_an_impossible_shape_quotes_the_numbers():
    with pytest.raises(ValueError, match=r"kernel 5x5 .* larger than the padded input 2x2"):
        explain("conv2d", Settings(input=(2, 2), kernel=(5, 5)))


def test_unknown_op():
    with pytest.raises(ValueError, match="choose one of: conv2d, conv-transpose2d"):
        explain("avg-pool2d")


# ------------------------------------------------------------------------------ figures
@pytest.mark.parametrize("op", OPS)
def test_figure_is_a_png(op, tmp_path):
    path = figure(explain(op, Settings(padding=(1, 1)) if op in ("conv2d", "im2col") else None),
                  tmp_path / "sub" / f"{op}.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


# ------------------------------------------------------------------------------ any settings
@given(op=st.sampled_from(OPS), h=st.integers(1, 6), w=st.integers(1, 6),
       k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       op_=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       scale=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]), seed=st.integers(0, 99),
       matrix=st.booleans())
def test_every_valid_setting_explains_and_checks(op, h, w, k, s, p, d, op_, scale, seed, matrix):
    settings = Settings(input=(h, w), kernel=k, stride=s, padding=p, dilation=d,
                        output_padding=op_, scale=scale, seed=seed, matrix=matrix)
    try:
        e = explain(op, settings)
    except ValueError as err:
        # only settings the op itself refuses (or a matrix too wide to print) may fail
        assert op.replace("-", "_") in str(err) or "--matrix" in str(err) or \
            op == "im2col" and "im2col" in str(err), str(err)
        return
    assert e.ok, e.text
    assert f"{e.output_hw[0]}x{e.output_hw[1]}" in e.text


# ------------------------------------------------------------------------------ the registry
@pytest.mark.parametrize("op", registry.EXPLAINED, ids=lambda op: op.name)
def test_each_explained_op_has_its_file_with_every_part(op):
    # the file is named after the op (conv-transpose2d: conv_transpose2d.py), like npae/ops/
    assert op.explainer.__name__ == "npae.tools.explain." + op.name.replace("-", "_")
    assert callable(op.explain) and callable(op.draw) and callable(op.gradcheck_case)
    assert op.page.title.startswith(f"{op.name}: ")
    assert issubclass(op.function, Function)


def test_an_explainer_file_without_its_parts_is_refused():
    import types

    half_done = types.ModuleType("npae.tools.explain.avg_pool2d")
    half_done.explain = lambda s: None
    with pytest.raises(TypeError, match="avg_pool2d lacks draw, gradcheck_case, PAGE"):
        registry.Op("avg-pool2d", None, Function, "avg_pool2d_ref", half_done)


@pytest.mark.parametrize("module", ["npae.tools.explain", "npae.tools.explain.layout",
                                    "npae.tools.shape_solver"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
