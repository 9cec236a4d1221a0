"""npae's benchmark suite: ``npae bench`` or ``python -m benchmarks``.

What it measures:

1. a roofline, in a fresh process: float32 GEMM GFLOP/s and memory copy bandwidth;
2. each operation of the article's models at batch 128, forward and forward+backward: npae
   against PyTorch CPU (when installed), each framework in fresh processes, in alternating
   rounds (benchmarks/harness.py); npae against its plain-NumPy formulation in one process
   (benchmarks/npae_only.py); and time / floor, where
   floor = max(FLOPs / GEMM rate, minimum bytes / bandwidth);
3. training throughput (images/s, forward + backward + Adam) of every model at batch 20 and 128,
   npae against the same architecture in PyTorch, as in 2;
4. scaling: npae's forward+backward of a convolution and a transposed convolution against
   batch size and image side, in a fresh process;
5. JIT: process start to the first trained batch, with an empty Numba cache (everything
   compiles) and with a warm one.

``--device cuda`` (benchmarks/gpu.py) still times npae and PyTorch in one process.

Results: the tables on the terminal, ``benchmarks/results/<date>-<host>.json`` (every number
and the machine), the pyperf files of every run in ``<date>-<host>-pyperf/``, and the plots
``<date>-<host>-ops.png`` and ``<date>-<host>-scaling.png``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from npae.models import names as model_names

from . import harness, torch_side
from .cases import op_cases
from .harness import Case, Settings
from .npae_only import SCALING_OPS

NOT_INSTALLED = "not installed (pip install -e '.[bench]')"

# The A/A cases (each framework against itself, two processes per round) when --aa is 'some':
# one op, a large and a small training step
AA_CASES = (
    Case("op", "conv2d 1->16 3x3 p1, 28x28", 128, "fwd+bwd"),
    Case("train", "conv-transpose", 128),
    Case("train", "linear", 20),
)
# --quick: a fresh process costs 1.5 s (npae) to 3.5 s (PyTorch: its import, and torch.optim
# loading torch._dynamo), and a case takes 12 (22 for an A/A case). These (the A/A cases, one
# more op and `linear` at batch 128) took 7 minutes on the shared 2-core VM with `vae` too; 6
# without it
QUICK_OPS = ("conv2d 1->16 3x3 p1, 28x28", "linear 784->32 ReLU ->784")
QUICK_TRAIN = (("linear", 20), ("linear", 128), ("conv-transpose", 128))


def op_table(quick: bool, batch: int = 128) -> list:
    passes = ("fwd+bwd",) if quick else ("fwd", "fwd+bwd")
    return [Case("op", c.name, batch, p) for c in op_cases(batch)
            if not quick or c.name in QUICK_OPS for p in passes]


def train_table(quick: bool) -> list:
    return [Case("train", name, batch) for name in model_names() for batch in (20, 128)
            if not quick or (name, batch) in QUICK_TRAIN]


def measuring(quick: bool, threads: int, rounds: int) -> Settings:
    """Values per process and their length: --quick keeps 3 values of 50 ms, the full run 5 of
    100 ms (pyperf's default length); one warm-up value either way."""
    if quick:
        return Settings(threads=threads, rounds=rounds, values=3, min_time=0.05)
    return Settings(threads=threads, rounds=rounds, values=5, min_time=0.1)


# ----------------------------------------------------------------------------- children
def npae_only(sections, quick, env, ops=()) -> dict:
    """Run npae_only.py's sections in a fresh process; its log lines go straight to the
    terminal."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "npae-only.json"
        cmd = [sys.executable, "-m", "npae.benchmarks.npae_only", "--sections", *sections,
               "--out", str(out)] + (["--quick"] if quick else [])
        if ops:
            cmd += ["--ops", *ops]
        subprocess.run(cmd, env=env, check=True)
        return json.loads(out.read_text())


_JIT_PROBE = r"""
import time
t0 = time.perf_counter()
import numpy as np, npae
from npae import models, optim
from npae.engine.tensor import Tensor
npae.manual_seed(0)
m = models.create("conv-transpose")
opt = optim.Adam(m.parameters(), lr=1e-3)
x = Tensor(np.random.default_rng(0).random((128, 1, 28, 28)).astype(np.float32))
opt.zero_grad(); m.loss(x, x).backward(); opt.step()
print(time.perf_counter() - t0)
"""


def bench_jit(env, log) -> dict:
    """Cold: a private, empty Numba cache (every kernel the first batch needs compiles).
    Warm: the same cache again. Each time from process start (interpreter included)."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(env, NUMBA_CACHE_DIR=cache)
        for label in ("cold_cache", "warm_cache"):
            t0 = time.perf_counter()
            inner = float(subprocess.run([sys.executable, "-c", _JIT_PROBE], env=env, check=True,
                                         capture_output=True, text=True).stdout.split()[-1])
            out[label] = {"process_to_first_batch_s": time.perf_counter() - t0,
                          "import_to_first_batch_s": inner}
    log(f"JIT: process start to first trained batch (conv-transpose, batch 128): "
        f"cold cache {out['cold_cache']['process_to_first_batch_s']:.1f} s, "
        f"warm cache {out['warm_cache']['process_to_first_batch_s']:.2f} s")
    return out


# ----------------------------------------------------------------------------- the rows
def op_extras(row, roof, numpy_rows) -> dict:
    """What an op row adds to the harness's numbers: work, floor, time / floor, NumPy / npae."""
    case = {c.name: c for c in op_cases(row["batch"])}[row["name"]]
    backward = row["pass"] == "fwd+bwd"
    flops, nbytes = case.flops(backward), case.bytes(backward)
    out = {"flops": flops, "bytes": nbytes}
    if roof:
        out["floor_s"] = max(flops / (roof["gemm_gflops"] * 1e9),
                             nbytes / (roof["bandwidth_gbs"] * 1e9))
        npae_t = (row["summary"] or {}).get("median_s", {}).get("npae")
        if npae_t:
            out["npae_over_floor"] = npae_t["median"] / out["floor_s"]
    for r in numpy_rows or ():
        if (r["op"], r["pass"], r["batch"]) == (row["name"], row["pass"], row["batch"]):
            out["numpy_over_npae"] = r["numpy_over_npae"]
    return out


def train_extras(row) -> dict:
    times = (row["summary"] or {}).get("median_s", {})
    return {"images_per_s": {fw: row["batch"] / t["median"] for fw, t in times.items() if t}}


# ----------------------------------------------------------------------------- printing
def _ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def _ratio(s):
    """'median [min-max]' of a spread, or '-'."""
    if not s:
        return "-"
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def _flag(row, fw):
    # '!' after a time pyperf's checks call shaky (listed under the table)
    return "!" if any(harness.is_serious(w) for w in row["pyperf_warnings"].get(fw, ())) else " "


def _time_cell(row, fw, with_torch, fmt):
    if fw == "torch" and not with_torch:
        return "not installed"
    t = row["summary"]["median_s"].get(fw) if row["summary"] else None
    return fmt(t["median"]) + _flag(row, fw) if t else "-"


# the time columns end with a space where a '!' may follow a number
OP_COLUMNS = f"{'operation':46}{'pass':9}{'npae ms ':>10}{'PyTorch ms ':>14}" \
             f"{'torch/npae [min-max]':>23}{'NumPy/npae':>12}{'npae/floor':>12}"


def op_line(row, with_torch, extras):
    numpy_ratio = extras.get("numpy_over_npae")
    floor = extras.get("npae_over_floor")
    return (f"{row['name']:46}{row['pass']:9}{_time_cell(row, 'npae', True, _ms):>10}"
            f"{_time_cell(row, 'torch', with_torch, _ms):>14}"
            f"{_ratio(row['summary'].get('torch_over_npae')):>23}"
            f"{f'{numpy_ratio:.2f}' if numpy_ratio else '-':>12}"
            f"{f'{floor:.1f}' if floor else '-':>12}")


TRAIN_COLUMNS = f"{'model':16}{'batch':>6}{'npae img/s ':>13}{'PyTorch img/s ':>16}" \
                f"{'torch/npae [min-max]':>23}"


def train_line(row, with_torch):
    def ips(t):
        return f"{row['batch'] / t:,.0f}"

    return (f"{row['name']:16}{row['batch']:>6}{_time_cell(row, 'npae', True, ips):>13}"
            f"{_time_cell(row, 'torch', with_torch, ips):>16}"
            f"{_ratio(row['summary'].get('torch_over_npae')):>23}")


def table_notes(rows, frameworks, folder) -> list:
    """The lines under a table: the A/A cases, and pyperf's warnings (the first of each
    framework and case; the JSON and ``python -m pyperf check FILE`` have them all)."""
    lines = []
    aa = [r for r in rows if r["aa"] and r["summary"]]
    if aa:
        lines.append("A/A, each framework against itself: its second process's time / its "
                     "first's in the same round, median [min-max]")
        for r in aa:
            lines.append(f"  {r['label']:50}" + "".join(
                f"  {fw} {_ratio(r['summary']['aa'].get(fw)):19}" for fw in frameworks).rstrip())
    shaky = [(fw, r["label"], [w for w in ws if harness.is_serious(w)])
             for r in rows for fw, ws in r["pyperf_warnings"].items()]
    shaky = [s for s in shaky if s[2]]
    if shaky:
        lines.append(f"! pyperf says these may be unstable (pyperf files: {folder}):")
        lines += [f"  {fw:6}{label}: {ws[0]}" + (f" (+{len(ws) - 1} more)" if len(ws) > 1 else "")
                  for fw, label, ws in shaky]
    return lines


def machine(threads) -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import pyperf

    import npae

    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "threads": threads,
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "npae": npae.__version__,
            "pyperf": pyperf.__version__, "torch": _torch_version(),
            # as the user set them (None: unset), passed on to every benchmark process
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT")}


def _torch_version():
    # from the installed package's metadata: this process never imports PyTorch
    if not torch_side.available():
        return None
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def plot_ops(rows, path):
    """Bars of NumPy time / npae and PyTorch time / npae per op (the latter with min-max error
    bars over the rounds); None when there is neither."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    numpy_ratios = [r.get("numpy_over_npae") for r in rows]
    torch_ratios = [(r["summary"] or {}).get("torch_over_npae") for r in rows]
    if not (all(numpy_ratios) or all(torch_ratios)):
        return None
    labels = [f"{r['name']}\n{r['pass']}" for r in rows]
    fig = Figure(figsize=(10, 0.45 * len(rows) + 1.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    y = np.arange(len(rows))
    if all(numpy_ratios):
        ax.barh(y - 0.2, numpy_ratios, height=0.4, label="NumPy time / npae (one process)")
    if all(torch_ratios):
        med = np.array([s["median"] for s in torch_ratios])
        err = np.array([[s["median"] - s["min"] for s in torch_ratios],
                        [s["max"] - s["median"] for s in torch_ratios]])
        ax.barh(y + 0.2, med, height=0.4, xerr=err, capsize=2,
                label="PyTorch time / npae (fresh processes; bars: min-max over rounds)")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio (> 1: npae is faster)")
    ax.set_title(f"npae against NumPy and PyTorch, batch {rows[0]['batch']}")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8)  # below: no bar runs under it
    fig.savefig(path, dpi=110)
    return path


def plot_scaling(rows, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, axis, xlabel in ((axes[0], "batch", "batch size (28x28 images)"),
                             (axes[1], "side", "image side (batch 4)")):
        for i, (label, *_rest) in enumerate(SCALING_OPS):
            pts = [r for r in rows if r["op"] == label and r["axis"] == axis]
            x = [r["value"] for r in pts]
            ax.plot(x, [r["median_s"] * 1e3 for r in pts], marker="o", color=f"C{i}",
                    label=label)
            # the straight line a cost proportional to the work would follow, through the
            # largest point
            last = pts[-1]
            ax.plot(x, [last["median_s"] * 1e3 * r["flops"] / last["flops"] for r in pts],
                    ls=":", color=f"C{i}", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("forward+backward time (ms)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, title="dotted: proportional to work", title_fontsize=8)
    fig.suptitle("npae: time grows with the work (log-log)")
    fig.savefig(path, dpi=110)
    return path


def write_json(path: Path, data) -> None:
    """Replace ``path`` atomically: a reader (or an interruption) sees the old file or the new."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- main
def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="npae bench",
        description="Time npae's operations and training against PyTorch (each framework in "
                    "fresh processes, in rounds alternating the order, with A/A runs beside) "
                    "and against its own NumPy formulation; benchmarks/README.md explains "
                    "the numbers.")
    parser.add_argument("--quick", action="store_true",
                        help="5 cases instead of 36, shorter values (about 6 minutes on 2 cores)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for Numba, PyTorch and BLAS (default: all cores)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="processes per framework and case, alternating the order "
                             "(default 5)")
    parser.add_argument("--aa", choices=["some", "all"], default="some",
                        help="A/A runs (each framework against itself) for a few cases "
                             "(default) or for every case (twice the processes)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["ops", "train", "scaling", "jit"],
                        help="sections to leave out")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for the JSON, the pyperf files and the plots "
                             "(default benchmarks/results)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: the op table and training throughput on a GPU (CuPy arrays), "
                             "against PyTorch CUDA when installed (benchmarks/gpu.py; one "
                             "process, calls interleaved)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        from . import gpu

        return gpu.main(args)

    with_torch = torch_side.available()
    frameworks = ("npae", "torch") if with_torch else ("npae",)
    settings = measuring(args.quick, args.threads, args.rounds)
    env = harness.child_environment(args.threads)
    print(f"npae bench: {'quick' if args.quick else 'full'} mode, {args.threads} threads, "
          f"{args.rounds} rounds, PyTorch "
          + (f"v{_torch_version()}" if with_torch else NOT_INSTALLED))
    if args.rounds < 5:
        print(f"warning: {args.rounds} rounds give a min-max range that says little; "
              "5 or more is the default", file=sys.stderr)

    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-{platform.node() or 'host'}"
    path = results / f"{stem}.json"
    folder = results / f"{stem}-pyperf"
    shutil.rmtree(folder, ignore_errors=True)  # this run's pyperf files only, not an old run's
    folder.mkdir()
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "quick": args.quick, "interrupted": False,
              "settings": {"threads": args.threads, "rounds": args.rounds,
                           "values": settings.values, "warmups": settings.warmups,
                           "min_time_s": settings.min_time, "aa": args.aa,
                           "frameworks": list(frameworks)},
              "machine": machine(args.threads), "pyperf_folder": str(folder)}
    started = time.perf_counter()

    def save():
        result["wall_s"] = time.perf_counter() - started
        write_json(path, result)

    ops, train = op_table(args.quick), train_table(args.quick)
    aa = set(ops + train) if args.aa == "all" else set(AA_CASES)
    try:
        sections = ["roofline"] + (["numpy"] if "ops" not in args.skip else [])
        print("roofline" + (" and npae against its NumPy formulation" if len(sections) > 1
                            else "") + ": one fresh process")
        child = npae_only(sections, args.quick, env, ops=sorted({c.name for c in ops}))
        roof = result["roofline"] = child["roofline"]
        result["numpy"] = child.get("numpy")
        result["machine"]["numba_threading_layer"] = child["numba_threading_layer"]
        print(f"roofline: GEMM {roof['gemm_gflops']:.1f} GFLOP/s (float32 {roof['gemm_n']}^2), "
              f"copy bandwidth {roof['bandwidth_gbs']:.1f} GB/s")
        save()
        header = (f"npae and PyTorch each in fresh processes, {args.rounds} rounds alternating "
                  f"the order (benchmarks/README.md)\n  torch/npae: PyTorch's time / npae's, "
                  f"paired within each round (above 1: npae is faster), median [min-max] over "
                  f"rounds")
        if "ops" not in args.skip:
            print(f"\noperations at batch 128, ms per call (median over rounds): {header}\n"
                  f"  NumPy/npae: npae's NumPy formulation, timed with npae in one process; "
                  f"npae/floor: npae's time over the roofline's floor\n{OP_COLUMNS}")

            def saved_ops(rows):
                result["ops"] = rows
                save()

            rows = harness.run_table(
                ops, frameworks, settings, folder / "ops", aa, env, saved=saved_ops,
                line=lambda row: op_line(row, with_torch, op_extras(row, roof, result["numpy"])))
            for row in rows:
                row.update(op_extras(row, roof, result["numpy"]))
            save()
            for line in table_notes(rows, frameworks, folder / "ops"):
                print(line)
        if "train" not in args.skip:
            print(f"\ntraining throughput, images/s of one Adam step (median over rounds): "
                  f"{header}\n{TRAIN_COLUMNS}")

            def saved_train(rows):
                result["training"] = rows
                save()

            rows = harness.run_table(train, frameworks, settings, folder / "train", aa, env,
                                     saved=saved_train,
                                     line=lambda row: train_line(row, with_torch))
            for row in rows:
                row.update(train_extras(row))
            save()
            for line in table_notes(rows, frameworks, folder / "train"):
                print(line)
        if not with_torch and {"ops", "train"} - set(args.skip):
            print(f"PyTorch: {NOT_INSTALLED}")
        if "scaling" not in args.skip:
            print()
            result["scaling"] = npae_only(["scaling"], args.quick, env)["scaling"]
            save()
        if "jit" not in args.skip:
            result["jit"] = bench_jit(env, print)
            save()
    except KeyboardInterrupt:
        result["interrupted"] = True
        save()
        print(f"\ninterrupted: the finished runs are in {path} and {folder}", file=sys.stderr)
        return 130
    except harness.WorkerError as error:
        save()
        print(f"\nnpae bench: {error}", file=sys.stderr)
        return 1

    print(f"\nresults: {path}")
    if result.get("ops") or result.get("training"):
        print(f"pyperf:  {folder} (python -m pyperf stats FILE, compare_to A B)")
    if result.get("ops") and plot_ops(result["ops"], results / f"{stem}-ops.png"):
        print(f"plot:    {results / f'{stem}-ops.png'}")
    if result.get("scaling"):
        print(f"plot:    {plot_scaling(result['scaling'], results / f'{stem}-scaling.png')}")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    return 0
