"""The sections of ``npae bench`` that time npae alone, run by the suite in one fresh process
with the thread settings of the framework comparisons:

- **roofline**: float32 GEMM GFLOP/s (NumPy matmul of a large square) and memory copy
  bandwidth, the floor the op table divides by;
- **numpy**: each op case, npae against the plain-NumPy formulation a user would write
  (numpy_ops.py), forward and forward+backward;
- **scaling**: npae's forward+backward of a convolution and a transposed convolution against
  batch size and image side.

Here one process, with the calls interleaved (each repetition runs every implementation once,
in turn, so a drifting clock or a neighbour's load hits all alike), is fair enough, unlike for
npae against PyTorch (benchmarks/harness.py): the NumPy formulation brings no runtime of its
own. It runs on NumPy and its BLAS, which npae itself calls, under the same thread settings; no
second OpenMP pool competes with Numba's. What remains is OpenBLAS's idle threads spinning for a
while after the NumPy side's matrix products, into npae's next call (npae/engine/threads.py):
if anything, that tilts the comparison against npae.

    python -m npae.benchmarks.npae_only --sections roofline numpy --out npae-only.json --quick
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import npae_side, numpy_side
from .cases import OpCase, op_cases
from .timing import interleaved, summary

PASSES = ("fwd", "fwd+bwd")


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


def numpy_against_npae(names, quick: bool, batch: int = 128, log=print) -> list:
    """For the op cases named (all when empty) and both passes: npae's and the NumPy
    formulation's median and interquartile range, interleaved, and NumPy time / npae time."""
    cases = [c for c in op_cases(batch) if not names or c.name in names]
    rows = []
    for case in cases:
        impls = {"npae": npae_side.op(case), "numpy": numpy_side.op(case)}
        for k, label in enumerate(PASSES):
            times = interleaved({name: fns[k] for name, fns in impls.items()},
                                7 if quick else 25)
            stats = {name: summary(t) for name, t in times.items()}
            rows.append({"op": case.name, "pass": label, "batch": batch, "times": stats,
                         "numpy_over_npae": stats["numpy"]["median_s"]
                         / stats["npae"]["median_s"]})
        log(f"  NumPy/npae {case.name}: "
            + ", ".join(f"{r['pass']} {r['numpy_over_npae']:.2f}" for r in rows[-2:]))
    return rows


SCALING_OPS = [
    # (label, op, channels in -> out, kernel, stride, padding)
    ("conv2d 16->16 3x3 p1", "conv2d", (16, 16, 3), dict(stride=1, padding=1)),
    ("conv_transpose2d 16->16 2x2 s2", "conv_transpose2d", (16, 16, 2),
     dict(stride=2, padding=0, output_padding=0)),
]


def scaling(quick: bool, log=print) -> list:
    """npae forward+backward time against batch size (28x28) and against image side (batch 4):
    the cost should grow in proportion to the work, with no cliff where the kernels change path
    or start splitting the batch (and rows) into chunks of columns."""
    from npae.kernels import conv2d_plan

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


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m npae.benchmarks.npae_only",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=["roofline", "numpy", "scaling"],
                        required=True)
    parser.add_argument("--ops", nargs="*", default=[],
                        help="op cases for the numpy section, by name (default: all)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True, help="JSON file for the results")
    args = parser.parse_args(argv)
    result = {}
    if "roofline" in args.sections:
        result["roofline"] = roofline(args.quick)
    if "numpy" in args.sections:
        result["numpy"] = numpy_against_npae(args.ops, args.quick)
    if "scaling" in args.sections:
        result["scaling"] = scaling(args.quick)
    result["numba_threading_layer"] = _threading_layer()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
