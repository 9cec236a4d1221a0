"""``npae bench --device cuda``: the op table and the training throughput on a GPU.

The same cases as the CPU suite (benchmarks/cases.py, batch 128; the article's models at batch
20 and 128), run by npae on CuPy arrays and by PyTorch on CUDA tensors when PyTorch with CUDA is
installed. GPU calls return before the work is done, so every timed call ends with a device
synchronisation. No roofline, scaling or JIT sections here (those describe the CPU kernels).

Unlike the CPU suite, this one still times npae and PyTorch in one process, calls interleaved
(benchmarks/timing.py): the GPU work runs on the device, but both frameworks' host threads and
allocators share the process; moving it onto the fresh-process harness (harness.py) is to do.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path

import npae
from npae.models import names as model_names

from . import npae_side, torch_side
from .cases import op_cases
from .timing import interleaved, summary


def _synced(fn, sync):
    def call():
        fn()
        sync()
    return call


def _torch_cuda():
    if not torch_side.available():
        return None
    import torch

    return torch if torch.cuda.is_available() else None


def main(args) -> int:
    if not npae.cuda.is_available():
        print("npae bench --device cuda: no usable CUDA GPU here (needs an NVIDIA GPU and CuPy: "
              "pip install -e '.[gpu]')", file=sys.stderr)
        return 2
    import cupy

    def sync_cupy():
        cupy.cuda.Device().synchronize()

    torch = _torch_cuda()
    sync_torch = torch.cuda.synchronize if torch is not None else None
    props = cupy.cuda.runtime.getDeviceProperties(0)
    card = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    print(f"npae bench --device cuda: {card}, CuPy {cupy.__version__}, PyTorch CUDA "
          f"{'v' + torch.__version__ if torch is not None else 'not available'}")
    repeats = 7 if args.quick else 25
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "device": card,
              "quick": args.quick, "ops": [], "training": []}

    if "ops" not in args.skip:
        print(f"\n{'op (batch 128)':<44}{'pass':>8}{'npae ms':>10}{'torch ms':>10}"
              f"{'torch/npae':>11}")
        for case in op_cases(128):
            impls = {"npae": [_synced(f, sync_cupy) for f in npae_side.op(case, device="cuda")]}
            if torch is not None:
                fns = torch_side.op(case.op, case.x, case.w, dict(case.params), device="cuda")
                impls["torch"] = [_synced(f, sync_torch) for f in fns]
            for k, label in ((0, "fwd"), (1, "fwd+bwd")):
                times = interleaved({name: fns[k] for name, fns in impls.items()}, repeats)
                stats = {name: summary(t) for name, t in times.items()}
                row = {"op": case.name, "pass": label, "times": stats}
                npae_ms = stats["npae"]["median_s"] * 1e3
                line = f"{case.name:<44}{label:>8}{npae_ms:>10.3f}"
                if "torch" in stats:
                    row["torch_over_npae"] = stats["torch"]["median_s"] / stats["npae"]["median_s"]
                    torch_ms = stats["torch"]["median_s"] * 1e3
                    line += f"{torch_ms:>10.3f}{row['torch_over_npae']:>11.2f}"
                result["ops"].append(row)
                print(line)

    if "train" not in args.skip:
        print("\ntraining throughput (images/s, one Adam step per batch)")
        for name in model_names():
            for batch in (20, 128):
                steps = {"npae": _synced(npae_side.train_step(name, batch, device="cuda"),
                                         sync_cupy)}
                if torch is not None:
                    steps["torch"] = _synced(torch_side.train_step(name, batch, device="cuda"),
                                             sync_torch)
                times = interleaved(steps, 5 if args.quick else 15, warmup=2)
                ips = {k: batch / summary(t)["median_s"] for k, t in times.items()}
                row = {"model": name, "batch": batch, "images_per_s": ips}
                line = f"{name:<16} batch {batch:>4}  npae {ips['npae']:10,.0f}"
                if "torch" in ips:
                    row["npae_over_torch"] = ips["npae"] / ips["torch"]
                    line += (f"  torch {ips['torch']:10,.0f}"
                             f"  npae/torch {row['npae_over_torch']:5.2f}")
                result["training"].append(row)
                print(line)

    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{datetime.date.today().isoformat()}-{platform.node() or 'host'}-cuda.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {path}")
    return 0
