"""The npae explain / shapes / gradcheck commands: output, exit codes, errors for bad input."""

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

import npae
import npae.functional as F
from npae.cli import build_parser, main, op_settings
from npae.tools.gradcheck_cli import build, compare, run
from npae.tools.registry import EXPLAINED_NAMES as OPS
from npae.tools.settings import ExplainSettings, GradcheckSettings, OpSettings

SMALL = GradcheckSettings(batch=1, channels=1, out_channels=2)


def _main(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------ explain
def test_explain_the_article_examples(capsys):
    code, out, _ = _main(capsys, "explain", "conv2d", "--input", "4x4", "--kernel", "3",
                         "--stride", "1", "--padding", "1")
    assert code == 0 and "output shape: 4x4" in out
    assert out.rstrip().splitlines()[-1].startswith("check: ")
    code, out, _ = _main(capsys, "explain", "conv2d", "--input", "4x4", "--kernel", "3",
                         "--stride", "2", "--padding", "1")
    assert code == 0 and "output shape: 2x2" in out


def test_explain_values_matrix_and_png(capsys, tmp_path):
    png = tmp_path / "t.png"
    code, out, _ = _main(capsys, "explain", "conv-transpose2d", "--input", "2x2", "--kernel",
                         "3", "--stride", "2", "--values", "1,2,3,4", "--weights",
                         "1 1 1 1 1 1 1 1 1", "--matrix", "--png", str(png))
    assert code == 0
    assert "y[2,2] = 1*1 + 2*1 + 3*1 + 4*1 = 10" in out
    assert "M equals the transpose of conv2d's matrix exactly" in out
    assert f"figure: {png}" in out and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv,message", [
    (["--input", "4x"], "argument --input: expected a size HxW like 4x4"),
    (["--input", "0x4"], "sizes must be positive"),
    (["--stride", "two"], "argument --stride"),
    (["--values", "1,a"], "expected numbers separated by commas or spaces"),
])
def test_explain_rejects_malformed_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "conv2d", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_explain_unknown_op_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "avg-pool2d"])
    assert exit_.value.code == 2
    assert "invalid choice: 'avg-pool2d'" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["conv2d", "--input", "2x2", "--kernel", "5"],
     "conv2d: kernel 5x5 (dilated extent 5x5, dilation 1x1) is larger than the padded input 2x2"),
    (["conv-transpose2d", "--stride", "2", "--output-padding", "2"],
     "output_padding 2x2 must be smaller than stride 2x2"),
    (["max-pool2d", "--kernel", "2", "--padding", "2"], "padding 2x2 must be at most half"),
    (["conv2d", "--input", "2x2", "--kernel", "1", "--values", "1,2,3"],
     "--values gives 3 numbers but 2x2 needs 4"),
    (["conv2d", "--input", "8x8", "--matrix"], "--matrix writes the op as a dense matrix"),
])
def test_explain_impossible_settings_exit_1_with_the_reason(capsys, argv, message):
    code, out, err = _main(capsys, "explain", *argv)
    assert code == 1 and err.startswith("npae: error: ") and message in err


def test_explain_exits_1_when_its_check_fails(capsys, monkeypatch):
    real = F.upsample_nearest2d
    monkeypatch.setattr(F, "upsample_nearest2d",
                        lambda x, **kw: npae.Tensor(real(x, **kw).data * 2))
    code, out, _ = _main(capsys, "explain", "upsample-nearest2d", "--values", "1,2,3,4")
    assert code == 1 and "check FAILED" in out


def test_python_m_npae_explain_runs():
    run_ = subprocess.run([sys.executable, "-m", "npae", "explain", "max-unpool2d"],
                          capture_output=True, text=True, timeout=120)
    assert run_.returncode == 0, run_.stderr
    assert "output shape: 4x4" in run_.stdout


# ------------------------------------------------------------------------------ both commands
@pytest.mark.parametrize("command", ["explain", "gradcheck"])
def test_the_commands_offer_the_explained_ops_of_the_registry(command, capsys):
    for op in OPS:
        assert build_parser().parse_args([command, op]).op == op
    with pytest.raises(SystemExit):  # in the registry, but for the op table only
        build_parser().parse_args([command, "relu"])
    assert "invalid choice: 'relu'" in capsys.readouterr().err


@pytest.mark.parametrize("command,cls,flagless", [
    ("explain", ExplainSettings, set()),
    ("gradcheck", GradcheckSettings, {"eps", "atol", "rtol"}),
])
def test_every_setting_has_its_option(command, cls, flagless):
    """op_settings fills each field from the option of the same name: a renamed option would
    leave its field at the default without a word, so check that every field has one."""
    args = build_parser().parse_args([command, "conv2d"])
    names = {f.name for f in fields(cls)}
    assert {f.name for f in fields(OpSettings)} <= names
    assert {n for n in names if not hasattr(args, n)} == flagless
    args = build_parser().parse_args([command, "conv2d", "--input", "3x5", "--seed", "7",
                                      "--output-padding", "1"])
    s = op_settings(cls, args)
    assert isinstance(s, cls) and (s.input, s.seed, s.output_padding) == ((3, 5), 7, (1, 1))


# ------------------------------------------------------------------------------ shapes
def test_shapes_layers(capsys):
    code, out, _ = _main(capsys, "shapes", "--layers", "conv:16:3:1:1,pool:2,conv:4:3:1:1,pool:2")
    assert code == 0
    assert "  4  pool:2         -> 4 x 7x7" in out
    assert "7 comes from input size 14 or 15" in out


def test_shapes_model(capsys):
    code, out, _ = _main(capsys, "shapes", "conv-strided")
    assert code == 0 and "output: 1 x 28x28" in out
    assert "(padding, output_padding) = (1, 1) turn 7 into 14" in out


@pytest.mark.parametrize("argv,message", [
    (["--input", "2x2", "--layers", "pool:3"],
     "layer 1 (pool:3): output size 0x0 is not positive: out = floor((in + 2*padding"),
    (["--layers", "pool:2", "conv-transpose"], "give a model name or --layers (one of them)"),
    ([], "give a model name or --layers"),
    (["--layers", "blur:3"], "unknown layer 'blur:3'"),
    (["vae"], "give its layers with --layers"),
    (["nope"], "unknown model 'nope'"),
])
def test_shapes_errors_exit_1(capsys, argv, message):
    code, out, err = _main(capsys, "shapes", *argv)
    assert code == 1 and message in err


# ------------------------------------------------------------------------------ gradcheck
@pytest.mark.parametrize("op", OPS)
def test_gradcheck_passes_every_op_and_fails_every_planted_bug(op):
    lines = []
    assert run(op, SMALL, out=lines.append)
    text = "\n".join(lines)
    assert f"gradcheck {op}: PASSED" in text and "npae.gradcheck (full Jacobian" in text
    lines.clear()
    assert not run(op, SMALL, plant_bug=True, out=lines.append)
    text = "\n".join(lines)
    assert "PLANTED BUG" in text and "FAIL" in text and f"gradcheck {op}: FAILED" in text
    # the planted bug lived in a subclass: the real op still passes afterwards
    case = build(op, SMALL)
    assert npae.gradcheck(case.fn, case.inputs)


def test_gradcheck_report_names_the_input_the_bug_is_in():
    reports = compare(build("conv2d", SMALL, plant_bug=True), SMALL)
    verdict = {r.name: r.ratio <= 1 for r in reports}
    assert verdict == {"input": True, "weight": False, "bias": True}
    good = compare(build("conv2d", SMALL), SMALL)
    assert all(r.max_abs < 1e-6 and r.max_rel < 1e-4 for r in good)
    worst = reports[1]
    # the worst element is the one furthest outside the tolerance atol + rtol*|numeric|
    assert worst.ratio > 1 and abs(worst.analytic - worst.numeric) <= worst.max_abs
    assert worst.ratio == pytest.approx(abs(worst.analytic - worst.numeric)
                                        / (SMALL.atol + SMALL.rtol * abs(worst.numeric)))


def test_gradcheck_cli_exit_codes(capsys):
    code, out, _ = _main(capsys, "gradcheck", "max-pool2d", "--batch", "1", "--channels", "1")
    assert code == 0 and "max abs" in out and "worst element" in out
    code, out, _ = _main(capsys, "gradcheck", "max-pool2d", "--batch", "1", "--channels", "1",
                         "--plant-bug")
    assert code == 1 and "as planted" in out


def test_gradcheck_cli_options_reach_the_op(capsys):
    code, out, _ = _main(capsys, "gradcheck", "conv-transpose2d", "--input", "2x3", "--kernel",
                         "3", "--stride", "2", "--padding", "1", "--output-padding", "1",
                         "--batch", "1", "--channels", "1", "--out-channels", "1")
    assert code == 0
    # (2-1)*2 - 2 + 2 + 1 + 1 = 4, (3-1)*2 - 2 + 2 + 1 + 1 = 6
    assert "-> output (1, 1, 4, 6)" in " ".join(out.split())


def test_gradcheck_bad_settings(capsys):
    code, _, err = _main(capsys, "gradcheck", "conv2d", "--batch", "0")
    assert code == 1 and "--batch, --channels and --out-channels must be >= 1" in err
    code, _, err = _main(capsys, "gradcheck", "conv2d", "--input", "2x2", "--kernel", "3")
    assert code == 1 and "larger than the padded input 2x2" in err


def test_gradcheck_inputs_are_float64():
    case = build("max-pool2d", SMALL)
    assert all(np.asarray(v).dtype == np.float64 for v in case.inputs)


# --- explain: what it refuses, and NaN in the input ---------------------------------------------

def test_explain_agrees_with_the_kernel_on_nan_and_infinity(capsys):
    # the case: the self-check compared NaN with != and reported check FAILED
    assert main(["explain", "max-pool2d", "--input", "2x2", "--values", "nan,inf,1,2"]) == 0
    out = capsys.readouterr().out
    assert "check FAILED" not in out and "-> max nan at (0,0)" in out
    assert main(["explain", "upsample-nearest2d", "--values", "nan,1,-inf,2"]) == 0


def test_the_explain_check_still_fails_when_a_nan_disagrees(monkeypatch):
    from npae.tools.explain.layout import check_line

    assert check_line("x", [np.nan, 1.0], [np.nan, 1.0], "k")[1]
    assert not check_line("x", [np.nan, 1.0], [0.0, 1.0], "k")[1]
    assert not check_line("x", [np.inf, 1.0], [-np.inf, 1.0], "k")[1]
    assert not check_line("x", [1.0, 2.0], [1.0, 2.5], "k")[1]


@pytest.mark.parametrize("argv, says", [
    (["upsample-nearest2d", "--scale", "10000"], "an output of 20000x20000 is larger than an "
                                                 "explanation shows (at most 64 pixels a side"),
    (["upsample-nearest2d", "--scale", "1e9"], "an output of 2000000000x2000000000"),
    (["conv2d", "--input", "100x4"], "an input of 100x4 is larger than an explanation shows"),
    (["conv2d", "--padding", "5000"], "a padding of 5000x5000 is larger"),
    (["conv-transpose2d", "--stride", "64"], "an output of 67x67 is larger"),
])
def test_explain_refuses_sizes_no_explanation_can_show_at_once(capsys, argv, says):
    # --scale 1e9 used to hang and --scale 10000 to take 7.4 GB
    assert main(["explain", *argv]) == 1
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_explain_png_naming_a_folder_is_one_line(capsys, tmp_path):
    assert main(["explain", "conv2d", "--png", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("npae: error: ") and "Is a directory" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["--layers", "conv:0:3"], "layer 'conv:0:3': the channel count must be a positive int, "
                               "got '0'"),
    (["--layers", "conv:-4:3"], "the channel count must be a positive int, got '-4'"),
    (["--layers", "tconv:0:3"], "the channel count must be a positive int, got '0'"),
    (["--layers", "flatten,linear:0"], "the feature count must be a positive int, got '0'"),
    (["--layers", "flatten,unflatten:1:0:784"], "unflatten:C:H:W takes three positive ints"),
    (["--layers", "up:1e12"], "layer 1 (up:1e12): an output of 28000000000000x28000000000000 "
                              "pixels per channel (float32) would need"),
])
def test_shapes_refuses_impossible_layers_in_one_line(capsys, argv, message):
    # conv:0:3 and negative channels used to print shapes; up:1e12 raised a raw MemoryError
    code, _, err = _main(capsys, "shapes", *argv)
    assert code == 1 and message in err and err.count("\n") == 1


def test_shapes_refuses_zero_input_channels(capsys):
    with pytest.raises(SystemExit):
        main(["shapes", "--channels", "0", "--layers", "relu"])
    assert "expected a positive int, got '0'" in capsys.readouterr().err
