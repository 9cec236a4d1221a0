"""One framework timing one case, in processes of its own: the harness's unit of measurement.

The harness (benchmarks/harness.py) runs this file as a script, once per (framework, case,
round); pyperf's Runner then works as usual: this process is pyperf's manager, which spawns a
worker process (this file again, with ``--worker``) that builds the case, calls it twice untimed
(Numba loads or compiles its kernels on the first call, PyTorch allocates its pools), and then
computes ``--warmups`` values it throws away and ``--values`` values it keeps, each timing
``--loops`` calls. With ``--loops 0`` pyperf first spawns one more worker that calibrates the
loops (doubling them until one value takes ``--min-time``). The run goes to the ``--output``
JSON file, with the framework, its version and the thread settings in its metadata.

    python benchmarks/worker.py --framework npae --kind train --case linear --batch 20 \
        --threads 2 --processes 1 --values 3 --copy-env --output linear.json

It is run as a script rather than with ``python -m npae.benchmarks.worker`` so that pyperf's
manager process, which only spawns the worker and collects its run, starts without importing
npae (a third of a second per process, hundreds of processes per bench).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # run as a script: its folder (benchmarks/) is not a place to import top-level modules from
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != _here]

import pyperf  # noqa: E402

FRAMEWORKS = ("npae", "torch")
WAIT_VARIABLES = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
PASSES = ("fwd", "fwd+bwd")


def benchmark_name(kind: str, case: str, batch: int, pass_: str | None) -> str:
    """pyperf's name for a case: the same for both frameworks, so that ``python -m pyperf
    compare_to npae.json torch.json`` pairs them."""
    if kind == "op":
        return f"{case} {pass_} (batch {batch})"
    return f"train {case} (batch {batch})"


def _case_args(cmd: list, args) -> None:
    # pyperf's manager re-runs this script for its workers with pyperf's own options only:
    # add ours
    cmd.extend(["--framework", args.framework, "--kind", args.kind, "--case", args.case,
                "--batch", str(args.batch), "--threads", str(args.threads)])
    if args.pass_:
        cmd.extend(["--pass", args.pass_])


def build(framework: str, kind: str, case: str, batch: int, pass_: str | None, threads: int):
    """(call, metadata): a zero-argument callable running the case once, its setup done."""
    # how idle OpenMP threads wait, as the environment says (the harness passes the user's)
    metadata = {"framework": framework, "threads": threads,
                **{key: os.environ.get(key, "unset") for key in WAIT_VARIABLES}}
    if framework == "torch":
        import torch
        from npae.benchmarks import torch_side

        torch_side.set_threads(threads)
        metadata["framework_version"] = str(torch.__version__)
    else:
        import npae
        from npae.engine import threads as npae_threads

        metadata["framework_version"] = npae.__version__
        if not any(key in os.environ for key in WAIT_VARIABLES):
            # npae starts Numba's pool with a short spin of its own then (threads.start_pool)
            metadata["npae_pool_GOMP_SPINCOUNT"] = npae_threads.SPIN_COUNT
    from npae.benchmarks import npae_side
    from npae.benchmarks.cases import op_cases

    if kind == "op":
        by_name = {c.name: c for c in op_cases(batch)}
        if case not in by_name:
            raise SystemExit(f"worker: no op case {case!r}; the cases are: {', '.join(by_name)}")
        c = by_name[case]
        if framework == "torch":
            calls = torch_side.op(c.op, c.x, c.w, dict(c.params))
        else:
            calls = npae_side.op(c)
        call = calls[PASSES.index(pass_)]
    elif framework == "torch":
        call = torch_side.train_step(case, batch)
    else:
        call = npae_side.train_step(case, batch)
    for _ in range(2):  # untimed: Numba's kernels load (or compile) on the first call
        call()
    if framework == "npae":
        import numba

        try:
            metadata["numba_threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel ran
            pass
    return call, metadata


def _timer(call):
    def time_loops(loops):
        t0 = time.perf_counter()
        for _ in range(loops):
            call()
        return time.perf_counter() - t0

    return time_loops


def main(argv=None) -> None:
    runner = pyperf.Runner(add_cmdline_args=_case_args, processes=1, values=3, warmups=1)
    p = runner.argparser
    p.add_argument("--framework", choices=FRAMEWORKS, required=True)
    p.add_argument("--kind", choices=("op", "train"), required=True)
    p.add_argument("--case", required=True,
                   help="an op case's name (benchmarks/cases.py) or a model's name")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--pass", dest="pass_", choices=PASSES, help="for --kind op")
    p.add_argument("--threads", type=int, required=True,
                   help="PyTorch's threads (the harness sets OMP_NUM_THREADS and "
                        "NUMBA_NUM_THREADS for both frameworks in the environment)")
    args = runner.parse_args(argv)
    if args.kind == "op" and args.pass_ is None:
        p.error("--kind op needs --pass fwd or --pass fwd+bwd")
    name = benchmark_name(args.kind, args.case, args.batch, args.pass_)
    if not args.worker:
        # the manager only spawns workers and collects their runs: no setup here
        runner.bench_time_func(name, _timer(None))
        return
    call, metadata = build(args.framework, args.kind, args.case, args.batch, args.pass_,
                           args.threads)
    runner.bench_time_func(name, _timer(call), metadata=metadata)


if __name__ == "__main__":
    main()
