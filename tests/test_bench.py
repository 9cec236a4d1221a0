"""The benchmark suite's machinery: work counts, timing helpers, and that every column computes
the same thing (a benchmark of different computations would be meaningless). Timings themselves
are never asserted: speed claims come from running the suite, not from unit tests."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyperf
import pytest
from npae.benchmarks import (
    cases,
    harness,
    npae_only,
    npae_side,
    numpy_side,
    suite,
    timing,
    torch_side,
)

import npae
from npae import Tensor, cli, models


def test_conv_work_counts_by_hand():
    case = cases.OpCase("c", "conv2d", (128, 1, 28, 28), (16, 1, 3, 3), dict(stride=1, padding=1))
    assert case.out_shape == (128, 16, 28, 28)
    # 2 FLOPs per multiply-add: every output value sums 1*3*3 products
    assert case.flops(False) == 2 * 128 * 16 * 28 * 28 * 9
    assert case.flops(True) == 3 * case.flops(False)
    x, w, y = 128 * 28 * 28 * 4, 16 * 9 * 4, 128 * 16 * 28 * 28 * 4
    assert case.bytes(False) == x + w + y
    # backward reads gy, x, w and writes gx, gw
    assert case.bytes(True) == (x + w + y) + (y + x + w + x + w)


def test_pool_and_transpose_shapes():
    by_name = {c.op + str(c.x): c for c in cases.op_cases(4)}
    pool = by_name["max_pool2d(4, 16, 28, 28)"]
    assert pool.out_shape == (4, 16, 14, 14)
    assert pool.flops(True) == 0
    assert pool.bytes(False) == 4 * 16 * 28 * 28 * 4 + 4 * 16 * 14 * 14 * (4 + 8)
    t = by_name["conv_transpose2d(4, 32, 14, 14)"]
    assert t.out_shape == (4, 16, 28, 28)  # (14-1)*2 - 2 + 3 + 1


def test_interleaved_runs_every_callable_in_turn():
    order = []
    times = timing.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                               repeats=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    s = timing.summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median_s"] == 3.0 and s["min_s"] == 1.0 and s["runs"] == 5


@pytest.mark.parametrize("case", cases.op_cases(batch=2), ids=lambda c: c.name)
def test_npae_and_numpy_columns_compute_the_same_forward(case):
    npae_fwd, _ = npae_side.op(case)
    numpy_fwd, _ = numpy_side.op(case)
    a, b = npae_fwd().data, numpy_fwd()
    b = b[0] if isinstance(b, tuple) else b  # max_pool2d also returns its indices
    assert a.shape == b.shape == case.out_shape
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_npae_bench_quick_roofline_only(tmp_path, capsys):
    # the roofline runs in a fresh process; fewer than 5 rounds is allowed, with a warning
    assert cli.main(["bench", "--quick", "--rounds", "3", "--skip", "ops", "train", "scaling",
                     "jit", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "roofline: GEMM" in captured.out
    assert "3 rounds" in captured.err
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert result["roofline"]["gemm_gflops"] > 0 and result["roofline"]["bandwidth_gbs"] > 0
    assert {"cpu", "cores", "numpy", "numba", "torch", "pyperf", "GOMP_SPINCOUNT",
            "OMP_WAIT_POLICY"} <= result["machine"].keys()
    assert result["settings"]["rounds"] == 3 and result["interrupted"] is False


def test_npae_bench_refuses_fewer_than_one_round(capsys):
    with pytest.raises(SystemExit) as exited:
        suite.main(["--rounds", "0"])
    assert exited.value.code == 2
    assert "--rounds must be at least 1, got 0" in capsys.readouterr().err


def test_numpy_against_npae_rows_have_every_field():
    lines = []
    rows = npae_only.numpy_against_npae([], quick=True, batch=2, log=lines.append)
    assert len(rows) == 2 * len(cases.op_cases(2)) and len(lines) == len(cases.op_cases(2))
    for row in rows:
        assert row["pass"] in ("fwd", "fwd+bwd")
        assert row["times"]["npae"]["median_s"] > 0 and row["times"]["numpy"]["median_s"] > 0
        assert row["numpy_over_npae"] == pytest.approx(
            row["times"]["numpy"]["median_s"] / row["times"]["npae"]["median_s"])


# ----------------------------------------------------------- the harness: fresh processes
def test_rounds_alternate_the_order_and_aa_cases_run_each_framework_twice():
    fws = ("npae", "torch")
    assert [harness.round_order(r, fws) for r in range(3)] == \
        [["npae", "torch"], ["torch", "npae"], ["npae", "torch"]]
    assert harness.schedule(1, fws, aa=False) == [("torch", False), ("npae", False)]
    assert harness.schedule(1, fws, aa=True) == \
        [("torch", False), ("npae", False), ("torch", True), ("npae", True)]
    assert harness.schedule(0, ("npae",), aa=True) == [("npae", False), ("npae", True)]


def _round(npae_s, torch_s=None, aa=None):
    times = {"npae": npae_s} if torch_s is None else {"npae": npae_s, "torch": torch_s}
    return {"median_s": times, "aa_median_s": aa or {}}


def test_the_ratio_is_paired_within_each_round():
    # per round torch / npae: 3, 1, 4 -> median 3 [1-4]; the medians' ratio would say 8 / 2 = 4
    rounds = [_round(1.0, 3.0), _round(10.0, 10.0), _round(2.0, 8.0)]
    s = harness.summarise(rounds)
    assert s["torch_over_npae"] == {"median": 3.0, "min": 1.0, "max": 4.0, "n": 3}
    assert s["median_s"]["npae"] == {"median": 2.0, "min": 1.0, "max": 10.0, "n": 3}
    assert s["median_s"]["torch"]["median"] == 8.0
    assert s["aa"] == {"npae": None, "torch": None}


def test_an_unfinished_round_counts_for_its_framework_but_not_for_the_ratio():
    rounds = [_round(1.0, 2.0), _round(3.0, 9.0), _round(100.0)]  # interrupted after npae
    s = harness.summarise(rounds)
    assert s["median_s"]["npae"]["n"] == 3 and s["median_s"]["torch"]["n"] == 2
    assert s["torch_over_npae"] == {"median": 2.5, "min": 2.0, "max": 3.0, "n": 2}


def test_aa_is_each_frameworks_second_process_over_its_first_in_the_same_round():
    rounds = [_round(2.0, 4.0, aa={"npae": 2.2, "torch": 3.0}),
              _round(4.0, 4.0, aa={"npae": 3.6, "torch": 4.0}),
              _round(1.0, 1.0, aa={"npae": 1.0})]
    s = harness.summarise(rounds)
    assert s["aa"]["npae"] == pytest.approx({"median": 1.0, "min": 0.9, "max": 1.1, "n": 3})
    assert s["aa"]["torch"] == pytest.approx({"median": 0.875, "min": 0.75, "max": 1.0, "n": 2})


def test_without_torch_there_is_no_ratio():
    s = harness.summarise([_round(1.0), _round(2.0)], frameworks=("npae",))
    assert "torch_over_npae" not in s and set(s["median_s"]) == {"npae"}
    assert harness.spread([]) is None


def test_child_environment_sets_the_threads_and_passes_the_rest_through():
    env = harness.child_environment(3, environ={"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert all(env[k] == "3" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                       "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"))
    # how OpenMP threads wait is the user's to choose: never added, kept when set
    assert "GOMP_SPINCOUNT" not in env and "OMP_WAIT_POLICY" not in env
    env = harness.child_environment(1, environ={"GOMP_SPINCOUNT": "5", "OMP_NUM_THREADS": "8"})
    assert env["GOMP_SPINCOUNT"] == "5" and env["OMP_NUM_THREADS"] == "1"


def test_every_case_has_its_own_file_name_and_the_quick_and_aa_cases_exist():
    full = suite.op_table(quick=False) + suite.train_table(quick=False)
    assert len(full) == 2 * len(cases.op_cases()) + 2 * len(models.names())
    slugs = [c.slug for c in full]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-z0-9+-]+", s) for s in slugs)
    quick = suite.op_table(quick=True) + suite.train_table(quick=True)
    assert set(quick) < set(full)
    assert set(suite.AA_CASES) <= set(quick)


def _bench(name, values, loops=4, calibration=False):
    """A pyperf Benchmark as one worker run makes it (with pyperf's calibration run before it
    when ``calibration``)."""
    runs = [pyperf.Run(values, warmups=[(loops, values[0])], collect_metadata=False,
                       metadata={"name": name, "loops": loops, "unit": "second"})]
    if calibration:
        runs.insert(0, pyperf.Run([], warmups=[(1, values[0]), (loops, values[0])],
                                  collect_metadata=False,
                                  metadata={"name": name, "loops": loops, "unit": "second",
                                            "calibrate_loops": loops}))
    return pyperf.Benchmark(runs)


def test_a_process_time_is_the_median_of_its_values_and_runs_append_to_one_file(tmp_path):
    assert harness.process_time(_bench("b", [3.0, 1.0, 2.0], loops=8, calibration=True)) == \
        (2.0, 8)
    path = tmp_path / "npae" / "case.json"
    harness.merge_into(path, _bench("b", [1.0, 2.0], calibration=True))
    harness.merge_into(path, _bench("b", [4.0, 5.0]))
    bench = pyperf.Benchmark.load(str(path))
    assert bench.get_nrun() == 3 and bench.get_values() == (1.0, 2.0, 4.0, 5.0)
    assert [p.name for p in path.parent.iterdir()] == ["case.json"]  # no temporary left


def test_pyperfs_warnings_reach_the_report(tmp_path):
    path = tmp_path / "case.json"
    harness.merge_into(path, _bench("b", [1.0, 1.0, 3.0]))
    warnings = harness.pyperf_warnings(path)
    assert any("standard deviation" in w for w in warnings)
    assert all(harness.is_serious(w) for w in warnings if "standard deviation" in w)
    steady = tmp_path / "steady.json"
    harness.merge_into(steady, _bench("b", [1.0, 1.0, 1.0]))
    assert not [w for w in harness.pyperf_warnings(steady) if harness.is_serious(w)]


def _fake_runs(monkeypatch, interrupt_at=None):
    """Replace the worker processes with made-up pyperf runs (npae 2 ms, torch 3 ms), and the
    npae-only process with a made-up roofline; KeyboardInterrupt at the ``interrupt_at``-th
    run."""
    calls = []

    def run_once(case, framework, settings, loops, env, scratch):
        calls.append((case, framework, loops))
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        t = {"npae": 2e-3, "torch": 3e-3}[framework]
        return _bench(case.label, [t, t * 1.01, t * 0.99], loops=16, calibration=loops == 0)

    def npae_only(sections, quick, env, ops=()):
        numpy = [{"op": name, "pass": p, "batch": 128, "numpy_over_npae": 3.0}
                 for name in ops for p in ("fwd", "fwd+bwd")]
        return {"roofline": {"gemm_n": 8, "gemm_gflops": 50.0, "bandwidth_gbs": 10.0},
                "numpy": numpy, "numba_threading_layer": "omp"}

    monkeypatch.setattr(harness, "run_once", run_once)
    monkeypatch.setattr(suite, "npae_only", npae_only)
    return calls


@pytest.mark.parametrize("with_torch", [True, False])
def test_bench_tables_from_made_up_runs(tmp_path, capsys, monkeypatch, with_torch):
    calls = _fake_runs(monkeypatch)
    monkeypatch.setattr(torch_side, "available", lambda: with_torch)
    assert suite.main(["--quick", "--skip", "scaling", "jit", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    ops, train = suite.op_table(quick=True), suite.train_table(quick=True)
    fws = 2 if with_torch else 1
    assert len(calls) == 5 * fws * (len(ops) + len(train) + len(suite.AA_CASES))
    # every framework's first run of a case calibrates the loops; later ones reuse them
    first = {}
    for case, fw, loops in calls:
        assert loops == (16 if (case, fw) in first else 0)
        first[(case, fw)] = True
    assert [r["label"] for r in result["ops"]] == [c.label for c in ops]
    row = result["training"][0]
    assert len(row["rounds"]) == 5 and row["loops"]["npae"] == 16
    assert row["images_per_s"]["npae"] == pytest.approx(row["batch"] / 2e-3)
    assert "A/A, each framework against itself" in out
    if with_torch:
        assert row["summary"]["torch_over_npae"]["median"] == pytest.approx(1.5)
        assert "1.50 [" in out
    else:
        assert out.count("not installed") >= len(ops) + len(train)
        assert "pip install -e '.[bench]'" in out
        assert all("torch_over_npae" not in r["summary"] for r in result["training"])
    op = result["ops"][0]
    assert op["npae_over_floor"] > 0 and op["flops"] > 0 and op["numpy_over_npae"] == 3.0
    folder = Path(result["pyperf_folder"])
    assert (folder / "ops" / "npae" / (ops[0].slug + ".json")).exists()
    assert (tmp_path / f"{path.stem}-ops.png").exists()


def test_an_interrupted_bench_keeps_the_finished_cases(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch_side, "available", lambda: True)
    per_case = 5 * 2
    # the first op case (an A/A case: 20 runs), then 3 runs of the next one: npae and torch in
    # round 1, torch in round 2; npae's run in round 2 is interrupted
    calls = _fake_runs(monkeypatch, interrupt_at=2 * per_case + 4)
    assert suite.main(["--quick", "--skip", "scaling", "jit", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    assert result["interrupted"] is True
    done, partial = result["ops"]
    assert done["summary"]["torch_over_npae"]["n"] == 5
    assert partial["summary"]["median_s"]["npae"]["n"] == 1
    assert partial["summary"]["median_s"]["torch"]["n"] == 2
    assert partial["summary"]["torch_over_npae"]["n"] == 1
    runs = pyperf.Benchmark.load(partial["pyperf"]["torch"]["runs"])
    assert len([r for r in runs.get_runs() if r.values]) == 2
    assert len(calls) == 2 * per_case + 4


def test_table_lines_say_what_each_number_is():
    row = {"name": "linear", "batch": 20, "aa": False, "pyperf_warnings": {
        "torch": ["the standard deviation (1 ms) is 30% of the mean (3 ms)"]},
        "summary": harness.summarise([_round(2e-3, 3e-3), _round(2e-3, 4e-3)])}
    line = suite.train_line(row, with_torch=True)
    assert "10,000" in line and "5,714!" in line and "1.75 [1.50-2.00]" in line
    assert "not installed" in suite.train_line(row, with_torch=False)


# ------------------------------------------------ the harness for real: processes and pyperf
@pytest.mark.slow
def test_harness_runs_fresh_pyperf_processes(tmp_path):
    """npae's smallest case in real worker processes: 2 rounds with an A/A run, pyperf files
    that pyperf's own commands read."""
    case = harness.Case("op", "upsample nearest x2, 4x7x7", 2, "fwd")
    settings = harness.Settings(threads=1, rounds=2, values=2, warmups=1, min_time=0.002)
    lines = []
    (row,) = harness.run_table([case], ("npae",), settings, tmp_path, {case},
                               harness.child_environment(1), line=lambda r: r["label"],
                               printed=lines.append)
    assert lines == [case.label]
    assert [sorted(r["median_s"]) for r in row["rounds"]] == [["npae"], ["npae"]]
    assert row["summary"]["aa"]["npae"]["n"] == 2 and row["loops"]["npae"] >= 1
    runs = tmp_path / "npae" / f"{case.slug}.json"
    again = tmp_path / "npae" / f"{case.slug}.aa.json"
    bench = pyperf.Benchmark.load(str(runs))
    assert [len(r.values) for r in bench.get_runs()] == [0, 2, 2]  # calibration, 2 rounds
    meta = bench.get_runs()[1].get_metadata()
    assert meta["framework"] == "npae" and meta["threads"] == 1
    assert bench.get_runs()[1].values[0] > 0
    stats = subprocess.run([sys.executable, "-m", "pyperf", "stats", str(runs)],
                           capture_output=True, text=True, check=True).stdout
    assert "Number of run with values: 2" in stats and "Number of calibration run: 1" in stats
    compared = subprocess.run([sys.executable, "-m", "pyperf", "compare_to", str(runs),
                               str(again)], capture_output=True, text=True, check=True).stdout
    # pyperf pairs the two files' benchmarks; it names the benchmark (the label) when it hides
    # a difference as not significant, and the two files ([slug] -> [slug.aa]) when it shows one
    assert case.label in compared or f"[{case.slug}] " in compared and f"[{case.slug}.aa]" \
        in compared, compared


@pytest.mark.slow
def test_harness_times_torch_in_its_own_processes(tmp_path):
    pytest.importorskip("torch")
    case = harness.Case("op", "upsample nearest x2, 4x7x7", 2, "fwd")
    settings = harness.Settings(threads=1, rounds=1, values=1, warmups=0, min_time=0.002)
    (row,) = harness.run_table([case], ("npae", "torch"), settings, tmp_path, set(),
                               harness.child_environment(1), printed=lambda s: None)
    assert row["summary"]["torch_over_npae"]["n"] == 1
    meta = pyperf.Benchmark.load(row["pyperf"]["torch"]["runs"]).get_runs()[-1].get_metadata()
    assert meta["framework"] == "torch" and meta["threads"] == 1
    assert meta["GOMP_SPINCOUNT"] == os.environ.get("GOMP_SPINCOUNT", "unset")


# ------------------------------------------------------------- the PyTorch twins of the models
# torch_side builds each model with torch.nn; copy_weights moves npae's weights across by name,
# and the training throughput compares the two only if they compute the same thing.
@pytest.mark.parametrize("name", models.names())
def test_torch_twin_has_npae_parameter_names_and_shapes_in_order(name):
    pytest.importorskip("torch")
    npae.manual_seed(0)
    ours = [(k, p.shape) for k, p in models.create(name).named_parameters()]
    theirs = [(k, tuple(p.shape)) for k, p in torch_side.model(name).named_parameters()]
    assert theirs == ours


@pytest.mark.parametrize("name", models.names())
def test_torch_twin_computes_what_npae_computes_on_the_same_weights(name):
    """Forward and backward, in float64 on the same weights: each side's own arithmetic, and
    nothing else, separates the two (the VAE, whose forward samples, through its encoder and
    its decoder)."""
    torch = pytest.importorskip("torch")
    npae.manual_seed(0)
    ours = models.create(name)
    for p in ours.parameters():
        p.data = p.data.astype(np.float64)
    theirs = torch_side.model(name).double()
    torch_side.copy_weights(theirs, ours)
    rng = np.random.default_rng(0)
    x = rng.random((3, 1, 28, 28))
    tol = {"rtol": 1e-10, "atol": 1e-12}
    if name == "vae":
        # forward samples its code (each framework from its own generator): encode x and decode
        # a fixed code, and differentiate the sum of both against every parameter
        z = rng.standard_normal((3, 20))
        mu, logvar = ours.encode(Tensor(x))
        out = ours.decode_logits(Tensor(z))
        t_mu, t_logvar = theirs.encode(torch.from_numpy(x))
        t_out = theirs.decode_logits(torch.from_numpy(z))
        for a, b in ((mu, t_mu), (logvar, t_logvar), (out, t_out)):
            np.testing.assert_allclose(a.data, b.detach().numpy(), **tol)
        (mu.sum() + (logvar * logvar).sum() + (out * out).sum()).backward()
        (t_mu.sum() + (t_logvar * t_logvar).sum() + (t_out * t_out).sum()).backward()
    else:
        np.testing.assert_allclose(ours(Tensor(x)).data,
                                   theirs(torch.from_numpy(x)).detach().numpy(), **tol)
        # the loss, and its gradient for every parameter
        target = rng.random((3, 1, 28, 28))
        loss = ours.loss(Tensor(x), Tensor(target))
        loss.backward()
        torch_loss = theirs.loss(torch.from_numpy(x), torch.from_numpy(target))
        torch_loss.backward()
        np.testing.assert_allclose(loss.item(), torch_loss.item(), **tol)
    grads = {k: p.grad for k, p in theirs.named_parameters()}
    for k, p in ours.named_parameters():
        assert p.grad is not None and grads[k] is not None, k
        np.testing.assert_allclose(p.grad, grads[k].numpy(), err_msg=k, **tol)
