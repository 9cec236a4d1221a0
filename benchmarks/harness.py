"""npae against PyTorch, each framework in processes of its own: every framework comparison of
``npae bench`` (the op table and the training throughput) runs here.

Why not one process: timed in one process, npae's Numba kernels and PyTorch each run an OpenMP
thread pool, and OpenBLAS a third, on the same cores; whichever pool has just finished spins on
the cores the next call needs. On this 2-core machine that made PyTorch's `linear` training step
ten times slower than it runs on its own. So each (framework, case) runs in fresh processes, with
the same thread settings (``child_environment``), one after the other, never two at once.

For each case (an op and pass at batch 128, or one training step of a model at a batch size):

    round 1:  npae   torch  [npae   torch]     bracketed: the second processes of the A/A cases
    round 2:  torch  npae   [torch  npae ]
    round 3:  npae   torch  ...

Each entry is one pyperf run (benchmarks/worker.py: pyperf's manager and one worker process; the
first run of each framework also spawns pyperf's loop calibration). The worker's values are the
time per call, each over enough calls to take ``min_time``; a process's time is the median of
its values. Per case this gives:

- each framework's time: the median over rounds of its processes' times;
- the ratio torch time / npae time, taken within each round (the two processes ran one after
  the other, so a slow minute of a shared machine hits both), as the median over rounds with
  the smallest and largest;
- for the A/A cases, each framework against itself: the second process's time over the first's
  in the same round, in the same form. It shows how far a ratio strays when nothing differs.

Every run is appended to a pyperf JSON file per (framework, case), so ``python -m pyperf stats``,
``check`` and ``compare_to`` work on them. Files are replaced atomically after each run: an
interrupted benchmark leaves every finished run on disk.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyperf

from .worker import FRAMEWORKS, benchmark_name

WORKER = Path(__file__).resolve().parent / "worker.py"

# one thread count for every pool either framework may start: OpenMP (Numba's and PyTorch's),
# OpenBLAS (NumPy's and npae's GEMMs), MKL; PyTorch also gets torch.set_num_threads in its worker.
# How idle OpenMP threads wait (GOMP_SPINCOUNT, OMP_WAIT_POLICY) is the user's to set: it passes
# through as it is, and the harness sets neither
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


class WorkerError(RuntimeError):
    """A pyperf run failed; the message holds the end of its output."""


@dataclass(frozen=True)
class Case:
    """One row of a table: an op and pass (``kind='op'``) or a model's training step."""

    kind: str  # "op" or "train"
    name: str  # the op case's name (benchmarks/cases.py) or the model's (npae.models.names())
    batch: int
    pass_: str | None = None  # "fwd" or "fwd+bwd", for ops

    @property
    def label(self) -> str:
        return benchmark_name(self.kind, self.name, self.batch, self.pass_)

    @property
    def slug(self) -> str:
        """The case as a file name: ``op-b128-conv2d-1-16-3x3-p1-28x28-fwd+bwd``."""
        text = f"{self.kind}-b{self.batch}-{self.name}" + (f"-{self.pass_}" if self.pass_ else "")
        return re.sub(r"[^a-z0-9+]+", "-", text.lower()).strip("-")

    def worker_args(self) -> list:
        args = ["--kind", self.kind, "--case", self.name, "--batch", str(self.batch)]
        return args + (["--pass", self.pass_] if self.pass_ else [])


@dataclass(frozen=True)
class Settings:
    """How much to measure: ``rounds`` processes per framework and case, each keeping
    ``values`` values after ``warmups``, each value at least ``min_time`` seconds of calls."""

    threads: int
    rounds: int = 5
    values: int = 3
    warmups: int = 1
    min_time: float = 0.1
    timeout_s: int = 900  # one pyperf worker; a hung one stops the bench with an error


# ------------------------------------------------------------------------------ environment
def child_environment(threads: int, environ=None) -> dict:
    """The environment of every benchmark process: ``environ`` (default os.environ, which
    ``import npae`` leaves as it was) with the thread counts set to ``threads``."""
    env = dict(os.environ if environ is None else environ)
    for key in THREAD_VARIABLES:
        env[key] = str(threads)
    return env


# ----------------------------------------------------------------------------- the schedule
def round_order(r: int, frameworks) -> list:
    """Round r (from 0) runs the frameworks in the given order, round r + 1 in reverse."""
    order = list(frameworks)
    return order if r % 2 == 0 else order[::-1]


def schedule(r: int, frameworks, aa: bool) -> list:
    """The processes of round r: (framework, again), ``again`` for an A/A case's second one."""
    order = round_order(r, frameworks)
    return [(fw, False) for fw in order] + ([(fw, True) for fw in order] if aa else [])


# ------------------------------------------------------------------------------ the numbers
def spread(values) -> dict | None:
    """Median, smallest, largest and count of ``values``; None when there are none."""
    values = list(values)
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def summarise(rounds: list, frameworks=FRAMEWORKS) -> dict:
    """A case's numbers from its rounds, each ``{"median_s": {fw: s}, "aa_median_s": {fw: s}}``
    holding the process medians measured so far (an interrupted round may lack some).

    - ``median_s[fw]``: spread over rounds of fw's process medians;
    - ``torch_over_npae``: spread of torch / npae, paired within each round that has both;
    - ``aa[fw]``: spread of the A/A ratio, fw's second process over its first, per round.
    """
    out = {"median_s": {}, "aa": {}}
    for fw in frameworks:
        out["median_s"][fw] = spread(r["median_s"][fw] for r in rounds if fw in r["median_s"])
        out["aa"][fw] = spread(r["aa_median_s"][fw] / r["median_s"][fw] for r in rounds
                               if fw in r["aa_median_s"] and fw in r["median_s"])
    if {"npae", "torch"} <= set(frameworks):
        paired = [r["median_s"] for r in rounds if {"npae", "torch"} <= r["median_s"].keys()]
        out["torch_over_npae"] = spread(t["torch"] / t["npae"] for t in paired)
    return out


def process_time(bench) -> tuple:
    """(median of the values, loops per value) of the one run with values in ``bench`` (a pyperf
    run of one process; a calibration run beside it has none)."""
    runs = [run for run in bench.get_runs() if run.values]
    if len(runs) != 1:
        raise WorkerError(f"{bench.get_name()}: expected one run with values, got {len(runs)}")
    return statistics.median(runs[0].values), runs[0].get_loops()


# ------------------------------------------------------------------------------ pyperf files
def pyperf_path(folder: Path, framework: str, case: Case, again: bool = False) -> Path:
    """``<folder>/<framework>/<case>.json``; the A/A cases' second processes in ``.aa.json``."""
    return Path(folder) / framework / (case.slug + (".aa" if again else "") + ".json")


def merge_into(path: Path, bench) -> None:
    """Append ``bench``'s runs to the pyperf file ``path``, atomically (a temporary file, then
    a rename): an interruption leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        suite = pyperf.BenchmarkSuite.load(str(path))
        suite.add_runs(bench)
    else:
        suite = pyperf.BenchmarkSuite([bench])
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    suite.dump(str(tmp))
    os.replace(tmp, path)


def pyperf_warnings(path: Path) -> list:
    """pyperf's stability checks on every run in ``path`` (what ``python -m pyperf check``
    prints), one line per warning."""
    # the function pyperf's own `check` command and Runner print with (not in its documented
    # API; tests/test_bench.py notices if it goes)
    from pyperf._cli import format_checks

    bench = pyperf.Benchmark.load(str(path))
    return [line[2:] for line in format_checks(bench) if line.startswith("* ")]


def is_serious(warning: str) -> bool:
    """pyperf warns 'Not enough samples' for any benchmark with few processes (ours: one per
    round); the others (spread, outliers, short values) say a number is shaky."""
    return not warning.startswith("Not enough samples")


# ------------------------------------------------------------------------------ running
def run_once(case: Case, framework: str, settings: Settings, loops: int, env: dict,
             scratch: Path):
    """One pyperf run of ``framework`` on ``case`` in fresh processes; returns its Benchmark.
    ``loops`` 0 lets pyperf calibrate them first (one more process)."""
    fd, name = tempfile.mkstemp(suffix=".json", prefix=f"{framework}-", dir=scratch)
    os.close(fd)
    out = Path(name)
    out.unlink()  # pyperf refuses to overwrite an --output file
    cmd = [sys.executable, str(WORKER), "--framework", framework, *case.worker_args(),
           "--threads", str(settings.threads), "--processes", "1",
           "--values", str(settings.values), "--warmups", str(settings.warmups),
           "--loops", str(loops), "--min-time", str(settings.min_time),
           "--timeout", str(settings.timeout_s),
           # pyperf hands its workers only PATH, HOME and the locale unless told: ours need
           # the thread settings, and the rest of the user's environment as any program gets it
           "--copy-env", "--quiet", "--output", str(out)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise WorkerError(f"{framework}, {case.label}: the pyperf run failed "
                              f"(exit {proc.returncode}):\n{tail}\ncommand: {' '.join(cmd)}")
        return pyperf.Benchmark.load(str(out))
    finally:
        out.unlink(missing_ok=True)


def new_row(case: Case, frameworks, aa: bool) -> dict:
    """A case's record, JSON-ready, filled in by ``run_case``."""
    return {"kind": case.kind, "name": case.name, "batch": case.batch, "pass": case.pass_,
            "label": case.label, "frameworks": list(frameworks), "aa": aa, "rounds": [],
            "loops": {}, "pyperf": {}, "pyperf_warnings": {}, "summary": None}


def run_case(case: Case, frameworks, settings: Settings, folder: Path, aa: bool, env: dict,
             row=None, after=lambda: None, started=lambda text: None) -> dict:
    """Every round of one case, filling ``row`` (default a new one) in place: each process's
    median as it comes, the summary so far, the pyperf files, and at the end pyperf's warnings.
    ``started`` hears what runs next; ``after`` is called once each process is recorded."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    row = new_row(case, frameworks, aa) if row is None else row
    loops = {fw: 0 for fw in frameworks}  # 0: the first run of each calibrates them
    for r in range(settings.rounds):
        entry = {"round": r + 1, "order": round_order(r, frameworks), "median_s": {},
                 "aa_median_s": {}}
        row["rounds"].append(entry)
        for fw, again in schedule(r, frameworks, aa):
            started(f"{case.label}: round {r + 1}/{settings.rounds}, {fw}"
                    + (" (A/A)" if again else ""))
            bench = run_once(case, fw, settings, loops[fw], env, folder)
            median, loops[fw] = process_time(bench)
            path = pyperf_path(folder, fw, case, again)
            merge_into(path, bench)
            row["loops"][fw] = loops[fw]
            row["pyperf"].setdefault(fw, {})["aa" if again else "runs"] = str(path)
            (entry["aa_median_s"] if again else entry["median_s"])[fw] = median
            row["summary"] = summarise(row["rounds"], frameworks)
            after()
    for fw, paths in row["pyperf"].items():
        row["pyperf_warnings"][fw] = pyperf_warnings(Path(paths["runs"]))
    return row


def run_table(cases, frameworks, settings: Settings, folder: Path, aa_cases, env: dict,
              saved=lambda rows: None, line=None, printed=None) -> list:
    """Every case in turn, all its rounds before the next case, under a progress bar (on a
    terminal). ``saved`` gets the rows so far (the unfinished one included) after every
    process; when a case is done, ``printed(line(row))`` (default: tqdm.write, above the bar)."""
    from tqdm import tqdm

    printed = tqdm.write if printed is None else printed
    rows = []
    total = sum(settings.rounds * len(frameworks) * (2 if c in aa_cases else 1) for c in cases)
    with tqdm(total=total, unit="run", leave=False, dynamic_ncols=True, disable=None) as bar:
        def after():
            bar.update(1)
            saved(rows)

        for case in cases:
            row = new_row(case, frameworks, case in aa_cases)
            rows.append(row)
            run_case(case, frameworks, settings, folder, case in aa_cases, env, row=row,
                     after=after, started=bar.set_description_str)
            saved(rows)
            if line is not None:
                printed(line(row))
    return rows
