"""npae's benchmark suite: ``npae bench`` or ``python -m benchmarks``.

What it measures, in one process, interleaved (every repetition runs each implementation once,
in turn, so drifting clocks and other load hit all of them alike), after warm-up calls that
also absorb Numba's compilation:

1. a roofline measured on the spot: float32 GEMM GFLOP/s (NumPy matmul on a large square) and
   memory copy bandwidth;
2. each operation of the article's models at batch 128, forward and forward+backward, for npae,
   the plain-NumPy formulation (benchmarks/numpy_ops.py) and PyTorch CPU when installed: the
   median time, its spread (interquartile range), torch/npae and numpy/npae ratios, and
   time / floor, where floor = max(FLOPs / GEMM rate, minimum bytes / bandwidth);
3. training throughput (images/s, forward + backward + Adam) of every model at batch 20 and 128,
   npae against the same architecture in PyTorch;
4. scaling: npae's forward+backward of a convolution and a transposed convolution against
   batch size and image side, with the scratch memory and path the kernels plan;
5. JIT: process start to the first trained batch, with an empty Numba cache (everything
   compiles) and with a warm one.

Results: a table on the terminal, ``benchmarks/results/<date>-<host>.json`` (with the machine:
CPU model, cores, library versions), ``<date>-<host>-ops.png`` (ratio bars per op) and
``<date>-<host>-scaling.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Numba's and PyTorch's OpenMP pools (and NumPy's BLAS threads) alternate here, call by call;
# with GNU OpenMP's default waiting, the idle pool spins on the cores the busy one needs (on 2
# cores that slowed some calls 10x and made the spread larger than the median). Importing npae
# (npae.engine.config) sets its short spin, GOMP_SPINCOUNT, before either pool starts (Numba's
# at the first kernel call, PyTorch's when torch_side first imports torch), so both pools get it;
# the setting is recorded with the results.
from npae.models import names as model_names

from . import npae_side, numpy_side, torch_side
from .cases import op_cases
from .timing import interleaved, summary


# ----------------------------------------------------------------------------- roofline
def roofline(quick: bool) -> dict:
    n = 1024 if quick else 2048
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    gemm = summary(interleaved({"gemm": lambda: a @ b}, 5 if quick else 10)["gemm"])
    size = (16 if quick else 64) * 2**20  # float32 elements
    src = np.ones(size, np.float32)
    dst = np.empty_like(src)
    copy = summary(interleaved({"copy": lambda: np.copyto(dst, src)}, 5 if quick else 10)["copy"])
    return {
        "gemm_n": n,
        "gemm_gflops": 2 * n**3 / gemm["median_s"] / 1e9,
        "copy_bytes": 2 * src.nbytes,
        "bandwidth_gbs": 2 * src.nbytes / copy["median_s"] / 1e9,  # read + write
    }


# ----------------------------------------------------------------------------- sections
def bench_ops(roof, quick, with_torch, log, batch=128) -> list:
    rows = []
    repeats = 7 if quick else 25
    log(op_header(batch))
    for case in op_cases(batch):
        impls = {"npae": npae_side.op(case), "numpy": numpy_side.op(case)}
        if with_torch:
            impls["torch"] = torch_side.op(case.op, case.x, case.w, dict(case.params))
        for k, label in ((0, "fwd"), (1, "fwd+bwd")):
            times = interleaved({name: fns[k] for name, fns in impls.items()}, repeats)
            stats = {name: summary(t) for name, t in times.items()}
            backward = k == 1
            flops, nbytes = case.flops(backward), case.bytes(backward)
            floor = max(flops / (roof["gemm_gflops"] * 1e9), nbytes / (roof["bandwidth_gbs"] * 1e9))
            npae_t = stats["npae"]["median_s"]
            row = {"op": case.name, "pass": label, "flops": flops, "bytes": nbytes,
                   "floor_s": floor, "times": stats, "npae_over_floor": npae_t / floor,
                   "numpy_over_npae": stats["numpy"]["median_s"] / npae_t}
            if "torch" in stats:
                row["torch_over_npae"] = stats["torch"]["median_s"] / npae_t
            rows.append(row)
            log(_op_line(row))
    return rows


def bench_training(quick, with_torch, log) -> list:
    rows = []
    for name in model_names():
        for batch in (20, 128):
            steps = {"npae": npae_side.train_step(name, batch)}
            if with_torch:
                steps["torch"] = torch_side.train_step(name, batch)
            repeats = 5 if quick else 15
            times = interleaved(steps, repeats, warmup=2)
            row = {"model": name, "batch": batch,
                   "images_per_s": {k: batch / summary(t)["median_s"] for k, t in times.items()}}
            if with_torch:
                row["npae_over_torch"] = row["images_per_s"]["npae"] / row["images_per_s"]["torch"]
            rows.append(row)
            log(_train_line(row))
    return rows


SCALING_OPS = [
    # (label, op, channels in -> out, kernel, stride, padding)
    ("conv2d 16->16 3x3 p1", "conv2d", (16, 16, 3), dict(stride=1, padding=1)),
    ("conv_transpose2d 16->16 2x2 s2", "conv_transpose2d", (16, 16, 2),
     dict(stride=2, padding=0, output_padding=0)),
]


def bench_scaling(quick, log) -> list:
    """npae forward+backward time against batch size (28x28) and against image side (batch 4):
    the cost should grow in proportion to the work, with no cliff where the kernels change path
    or start splitting the batch (and rows) into chunks of columns."""
    from npae.kernels import conv2d_plan

    from .cases import OpCase

    batches = [1, 4, 16, 64, 256] if quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    sides = [28, 56, 112] if quick else [28, 56, 112, 224]
    rows = []
    for label, op, (cin, cout, k), params in SCALING_OPS:
        shapes = [("batch", n, (n, cin, 28, 28)) for n in batches] + \
                 [("side", s, (4, cin, s, s)) for s in sides]
        for axis, value, x in shapes:
            w = (cout, cin, k, k) if op == "conv2d" else (cin, cout, k, k)
            case = OpCase(label, op, x, w, params)
            _, fwd_bwd = npae_side.op(case)
            t = summary(interleaved({"npae": fwd_bwd}, 3 if quick else 7, warmup=1)["npae"])
            # the largest buffer the kernels hold, by their own plan (conv2d_plan): one chunk of
            # im2col columns, or one image's columns per thread; this is what the 64 MiB
            # bound limits. conv_transpose2d is conv2d's directions with channels swapped.
            if op == "conv2d":
                conv = (cin, cout, *case.out_shape[2:])
            else:
                conv = (cout, cin, *x[2:])
            s = params["stride"]
            plans = [conv2d_plan(d, x[0], conv[0], conv[1], k, k, s, s, conv[2], conv[3], 4)
                     for d in ("fwd", "bwd_input", "bwd_weight")]
            rows.append({"op": label, "axis": axis, "value": value, "flops": case.flops(True),
                         "median_s": t["median_s"], "iqr_s": t["iqr_s"],
                         "paths": [path for path, _ in plans],
                         "scratch_bytes": max(size for _, size in plans)})
        log(f"scaling {label} (ms, scratch MiB): " + ", ".join(
            f"{r['axis']} {r['value']}: {r['median_s'] * 1e3:.1f} "
            f"({r['scratch_bytes'] / 2**20:.1f})"
            for r in rows if r["op"] == label))
    return rows


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


def bench_jit(log) -> dict:
    """Cold: a private, empty Numba cache (every kernel the first batch needs compiles).
    Warm: the same cache again. Each time from process start (interpreter included)."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
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


# ----------------------------------------------------------------------------- printing
def op_header(batch):
    return (f"{f'operation (batch {batch})':44} {'pass':8}{'npae ms':>15}{'NumPy ms':>15}"
            f"{'PyTorch ms':>15}{'NumPy/npae':>11}{'torch/npae':>11}{'npae/floor':>11}")


def _ms(stats):
    # median, with the interquartile range as the spread
    return f"{stats['median_s'] * 1e3:8.2f} ±{stats['iqr_s'] * 1e3:5.2f}"


def _op_line(row):
    t = row["times"]
    torch_ms = _ms(t["torch"]) if "torch" in t else "-"
    torch_ratio = f"{row['torch_over_npae']:.2f}" if "torch" in t else "-"
    return (f"{row['op']:44} {row['pass']:8}{_ms(t['npae']):>15}{_ms(t['numpy']):>15}"
            f"{torch_ms:>15}{row['numpy_over_npae']:>11.2f}{torch_ratio:>11}"
            f"{row['npae_over_floor']:>11.1f}")


def _train_line(row):
    ips = row["images_per_s"]
    torch_part = (f"torch {ips['torch']:9,.0f} img/s  npae/torch {row['npae_over_torch']:5.2f}"
                  if "torch" in ips else "torch: not installed")
    return f"train {row['model']:15} batch {row['batch']:3}  npae {ips['npae']:9,.0f} img/s  " \
           f"{torch_part}"


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

    import npae

    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "threads": threads,
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "npae": npae.__version__,
            "torch": torch_side.version(), "numba_threading_layer": _threading_layer(),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT")}


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return None


def plot_ops(rows, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [f"{r['op']}\n{r['pass']}" for r in rows]
    fig = Figure(figsize=(10, 0.45 * len(rows) + 1.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["numpy_over_npae"] for r in rows], height=0.4, label="NumPy time / npae")
    if all("torch_over_npae" in r for r in rows):
        ax.barh(y + 0.2, [r["torch_over_npae"] for r in rows], height=0.4,
                label="PyTorch time / npae")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio (> 1: npae is faster)")
    ax.set_title("npae against NumPy and PyTorch, batch 128")
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="npae bench",
                                     description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions and smaller probes (about 20 s on 2 cores)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for Numba and PyTorch (default: all cores)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["ops", "train", "scaling", "jit"],
                        help="sections to leave out")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for the JSON and plots (default benchmarks/results)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: the op table and training throughput on a GPU (CuPy arrays), "
                             "against PyTorch CUDA when installed (benchmarks/gpu.py)")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        from . import gpu

        return gpu.main(args)

    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    with_torch = torch_side.available()
    if with_torch:
        torch_side.set_threads(args.threads)
    print("npae bench: " + ("quick mode" if args.quick else "full mode") + f", {args.threads} "
          f"threads, PyTorch {'v' + torch_side.version() if with_torch else 'not installed'}"
          + ("" if with_torch else " (pip install -e '.[bench]' adds the comparison)"))

    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "quick": args.quick, "machine": machine(args.threads)}
    roof = roofline(args.quick)
    result["roofline"] = roof
    print(f"roofline: GEMM {roof['gemm_gflops']:.1f} GFLOP/s (float32 {roof['gemm_n']}^2), "
          f"copy bandwidth {roof['bandwidth_gbs']:.1f} GB/s")
    if "ops" not in args.skip:
        result["ops"] = bench_ops(roof, args.quick, with_torch, print)
    if "train" not in args.skip:
        result["training"] = bench_training(args.quick, with_torch, print)
    if "scaling" not in args.skip:
        result["scaling"] = bench_scaling(args.quick, print)
    if "jit" not in args.skip:
        result["jit"] = bench_jit(print)

    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today().isoformat()}-{platform.node() or 'host'}"
    path = results / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {path}")
    if result.get("ops"):
        print(f"plot:    {plot_ops(result['ops'], results / f'{stem}-ops.png')}")
    if result.get("scaling"):
        print(f"plot:    {plot_scaling(result['scaling'], results / f'{stem}-scaling.png')}")
    return 0
