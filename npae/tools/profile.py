"""``npae profile MODEL``: where a training step spends its time, op by op.

``profile(settings)`` trains ``npae.models.create(MODEL)`` with Adam (lr 1e-3) on one fixed
random batch of 28x28 images in [0, 1) (the denoising model gets a noisy copy as its input, as in
training), and

1. measures the roofline on the spot (npae/tools/work.py: float32 GEMM rate, copy bandwidth);
2. runs warm-up steps, not profiled: Numba compiles each kernel on its first call;
3. alternates a plain step (timed as a whole: the step's time without the profiler) with a
   profiled one, ``steps`` times. In a profiled step npae's profiler (npae/engine/profiler.py)
   times every op's forward and backward call, and this module times the optimizer's
   ``zero_grad`` and ``step``, the forward pass (``model.loss``) and the backward pass
   (``loss.backward()``) as wholes. What a pass takes beyond its ops is spent outside them:
   Python, module calls, argument checks, the autodiff bookkeeping (recording nodes, the walk,
   summing and copying gradients) and the allocation it does.

The result (a dict, written as JSON) has one row per op, direction and shapes (calls per step,
ms per step, share of the step, achieved GFLOP/s and GB/s, the roofline floor and time over
floor; npae/tools/work.py counts the work) and the totals; ``table`` prints it and ``plot``
draws one stacked bar per pass. Every time is a mean per profiled step, so the rows, the
optimizer, zero_grad and the time outside the ops add up to the step. ``run(settings)`` is the
command: profile, print the table, write ``<out>/<model>-b<batch>.json`` and ``.png``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import npae
from npae import models, optim
from npae.data import add_noise
from npae.data.fileio import atomic_write, make_writable_folder
from npae.engine import profiler
from npae.engine.profiler import BACKWARD
from npae.engine.tensor import Tensor
from npae.engine.threads import blas_threads
from npae.tools import work as W

LR = 1e-3


@dataclass
class ProfileSettings:
    """What ``npae profile`` takes; every field is the option of the same name."""

    model: str
    batch_size: int = 128
    steps: int = 20
    warmup: int = 3
    threads: int | None = None  # None: leave Numba's and the BLAS's thread counts as they are
    seed: int = 0
    out: str = "runs/profile"
    device: str = "cpu"

    def check(self) -> ProfileSettings:
        models.architecture(self.model)  # ValueError naming the models for an unknown one
        for name in ("batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"profile: {name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"profile: warmup must be at least 0, got {self.warmup}")
        if self.device != "cpu":
            raise ValueError(
                f"profile: --device {self.device} is not supported yet; profile on the CPU. GPU "
                f"kernels run asynchronously, so timing each op there needs a synchronisation "
                f"after every call (which itself changes the timings): not implemented")
        if self.threads is not None:
            import numba

            most = numba.config.NUMBA_NUM_THREADS
            if not 1 <= self.threads <= most:
                raise ValueError(f"profile: --threads must lie in 1..{most} (Numba's thread "
                                 f"pool on this machine), got {self.threads}")
        return self

    @property
    def stem(self) -> str:
        """The output files' name without suffix: conv-transpose-b128."""
        return f"{self.model}-b{self.batch_size}"


# ------------------------------------------------------------------------------ measuring
def _training_step(settings):
    """(model, optimizer, x_in, target) for one fixed batch, seeded."""
    npae.manual_seed(settings.seed)
    model = models.create(settings.model)
    opt = optim.Adam(model.parameters(), lr=LR)
    rng = np.random.default_rng(settings.seed)
    clean = (rng.integers(0, 256, size=(settings.batch_size, 1, 28, 28)) / 256).astype(np.float32)
    noise = models.DEFAULT_NOISE.get(settings.model, 0.0)
    noisy = add_noise(clean, noise, rng) if noise else clean
    return model, opt, Tensor(noisy), Tensor(clean)


def profile(settings: ProfileSettings, progress: bool = True) -> dict:
    """Profile ``settings.steps`` training steps of ``settings.model``; the result as a dict
    (see the module docstring; ``table`` and ``plot`` read it)."""
    from tqdm import tqdm

    settings.check()
    with ExitStack() as stack:
        threads = _use_threads(settings.threads, stack)
        roof = W.roofline()
        model, opt, x_in, target = _training_step(settings)

        def plain_step():
            opt.zero_grad()
            model.loss(x_in, target).backward()
            opt.step()

        bar = tqdm(total=settings.warmup + settings.steps, unit="step", file=sys.stderr,
                   disable=not progress, leave=False, dynamic_ncols=True,
                   desc=f"{settings.model}: warm-up (compiling)")
        with bar:
            start = time.perf_counter()
            for _ in range(settings.warmup):
                plain_step()
                bar.update(1)
            warmup_s = time.perf_counter() - start
            bar.set_description(f"{settings.model}: profiling")
            rec = profiler.Recorder()
            parts = {"zero_grad": [], "forward": [], "backward": [], "optimizer": [], "step": []}
            plain = []
            for _ in range(settings.steps):
                start = time.perf_counter()
                plain_step()
                plain.append(time.perf_counter() - start)
                with rec:
                    t0 = time.perf_counter()
                    opt.zero_grad()
                    t1 = time.perf_counter()
                    loss = model.loss(x_in, target)
                    t2 = time.perf_counter()
                    loss.backward()
                    t3 = time.perf_counter()
                    opt.step()
                    t4 = time.perf_counter()
                for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0),
                                         strict=True):
                    parts[name].append(seconds)
                bar.update(1)
        info = machine(threads)
    return _summarise(settings, rec, parts, plain, roof, info, warmup_s, opt.params)


def _use_threads(threads, stack) -> dict:
    """Set Numba's and the BLAS's thread counts for this run (restored on leaving ``stack``)
    when ``threads`` is given; say what they are."""
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    if threads is not None:
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        stack.callback(numba.set_num_threads, before)
        stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"numba": numba.get_num_threads(), "blas": max(blas) if blas else None}


def op_rows(rec: profiler.Recorder, steps: int, step_seconds: float, roof: dict) -> list[dict]:
    """One dict per op, direction and shapes that ``rec`` holds, the slowest first: calls and ms
    per step (of ``steps``), share of a step of ``step_seconds``, and where npae/tools/work.py
    knows the op its work per call, achieved GFLOP/s and GB/s and the roofline floor (else
    None: your own Function is timed, not counted)."""
    rows = []
    for key, t in rec.ops.items():
        seconds = t.seconds / steps
        row = {"op": key.op, "direction": key.direction,
               "inputs": [_spec_json(s) for s in key.inputs],
               "outputs": [_spec_json(s) for s in key.outputs],
               "shapes": shapes_label(key),
               "calls_per_step": t.calls / steps, "ms_per_step": seconds * 1e3,
               "share": seconds / step_seconds,
               "flops_per_call": None, "bytes_per_call": None, "gflops": None, "gbs": None,
               "floor_ms_per_step": None, "over_floor": None}
        if key.direction == BACKWARD:
            row["grads"] = list(key.grads)
        counted = W.work(key)
        if counted is not None:
            flops, nbytes = counted
            floor = W.floor_seconds(flops, nbytes, roof) * t.calls / steps
            row.update(flops_per_call=flops, bytes_per_call=nbytes,
                       gflops=flops * t.calls / t.seconds / 1e9 if t.seconds else None,
                       gbs=nbytes * t.calls / t.seconds / 1e9 if t.seconds else None,
                       floor_ms_per_step=floor * 1e3,
                       over_floor=seconds / floor if floor else None)
        rows.append(row)
    rows.sort(key=lambda r: -r["ms_per_step"])
    return rows


def _summarise(settings, rec, parts, plain, roof, info, warmup_s, params) -> dict:
    n = settings.steps
    per_step = {name: sum(values) / n for name, values in parts.items()}
    step = per_step["step"]
    rows = op_rows(rec, n, step, roof)

    def ops_ms(direction):
        return sum(r["ms_per_step"] for r in rows if r["direction"] == direction)

    def floor_ms(direction=None):
        return sum(r["floor_ms_per_step"] or 0.0 for r in rows
                   if direction is None or r["direction"] == direction)

    adam_flops, adam_bytes = W.adam_work(params)
    adam_floor = W.floor_seconds(adam_flops, adam_bytes, roof) * 1e3
    fwd, bwd = ops_ms("forward"), ops_ms(BACKWARD)
    totals = {
        "step_ms": step * 1e3,
        "images_per_s": settings.batch_size / step,
        "forward_ops_ms": fwd,
        "backward_ops_ms": bwd,
        "optimizer_ms": per_step["optimizer"] * 1e3,
        "zero_grad_ms": per_step["zero_grad"] * 1e3,
        "outside_forward_ms": per_step["forward"] * 1e3 - fwd,
        "outside_backward_ms": per_step["backward"] * 1e3 - bwd,
        # the rest of the step: from zero_grad to optimizer step there is nothing else, so this
        # is the sum of the two above
        "outside_ms": step * 1e3 - fwd - bwd - (per_step["optimizer"]
                                                + per_step["zero_grad"]) * 1e3,
        "forward_pass_ms": per_step["forward"] * 1e3,
        "backward_pass_ms": per_step["backward"] * 1e3,
        "forward_floor_ms": floor_ms("forward"),
        "backward_floor_ms": floor_ms(BACKWARD),
        "optimizer_floor_ms": adam_floor,
        "floor_ms": floor_ms() + adam_floor,
        "unprofiled_step_ms": sum(plain) / n * 1e3,
    }
    totals["step_over_floor"] = totals["step_ms"] / totals["floor_ms"]
    steps_ms = sorted(s * 1e3 for s in parts["step"])
    return {
        "model": settings.model, "batch_size": settings.batch_size, "steps": n,
        "warmup": settings.warmup, "warmup_s": warmup_s, "seed": settings.seed, "lr": LR,
        "optimizer": "Adam", "device": settings.device,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": info, "roofline": roof, "totals": totals,
        "step_ms_spread": {"median": statistics.median(steps_ms), "min": steps_ms[0],
                           "max": steps_ms[-1]},
        "ops": rows,
    }


def _spec_json(spec):
    return None if spec is None else [list(spec[0]), str(spec[1])]


def shapes_label(key) -> str:
    """'128x1x28x28, 16x1x3x3, 16 -> 128x16x28x28': the forward's array inputs and outputs
    (dtypes other than float32 named)."""

    def one(spec):
        shape, dtype = spec
        text = "x".join(map(str, shape)) if shape else "scalar"
        return text if dtype == np.float32 else f"{text} {dtype}"

    ins = ", ".join(one(s) for s in key.inputs if s is not None)
    outs = ", ".join(one(s) for s in key.outputs if s is not None)
    return f"{ins} -> {outs}"


def machine(threads: dict) -> dict:
    """The CPU, core and thread counts and library versions, for the JSON."""
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        layer = None
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "numba_threads": threads["numba"], "blas_threads": threads["blas"],
            "blas_threads_in_npae": blas_threads(),
            "numba_threading_layer": layer, "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "npae": npae.__version__,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT")}


# ------------------------------------------------------------------------------ the table
_DIRECTION = {"forward": "fwd", BACKWARD: "bwd"}


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


def _floor(ms):
    if ms is None:
        return "-"
    return "<0.001" if 0 < ms < 0.0005 else f"{ms:.3f}"


def table(result: dict) -> str:
    """The result as text: a header, one line per op, then the totals."""
    s, roof, m, t = result, result["roofline"], result["machine"], result["totals"]
    lines = [
        f"npae profile: {s['model']}, batch {s['batch_size']}, {s['optimizer']} (lr {s['lr']:g}),"
        f" {s['steps']} profiled steps after {s['warmup']} warm-up steps "
        f"({s['warmup_s']:.1f} s, any Numba compilation among them: not profiled)",
        f"machine: {m['cpu']}, {m['cores']} cores, Numba {m['numba_threads']} threads, "
        f"BLAS {m['blas_threads_in_npae'] or m['blas_threads'] or '?'} inside npae's passes "
        f"({m['blas_threads'] or '?'} outside)",
        f"roofline, measured now: GEMM {roof['gemm_gflops']:.1f} GFLOP/s (float32, "
        f"{roof['gemm_n']}^2), copy {roof['bandwidth_gbs']:.1f} GB/s; floor = max(FLOPs / GEMM "
        f"rate, bytes / bandwidth)",
        "",
    ]
    width = max([len("shapes (forward)")] + [len(r["shapes"]) for r in s["ops"]])
    name_w = max([len("op")] + [len(r["op"]) for r in s["ops"]])
    head = (f"{'op':{name_w}}  {'pass':4}  {'shapes (forward)':{width}}  {'calls':>5}  "
            f"{'ms/step':>8}  {'step %':>6}  {'GFLOP/s':>7}  {'GB/s':>6}  {'floor ms':>8}  "
            f"{'/floor':>6}")
    lines += [head, "-" * len(head)]
    for r in s["ops"]:
        calls = r["calls_per_step"]
        calls = f"{calls:.0f}" if calls == int(calls) else f"{calls:.1f}"
        lines.append(
            f"{r['op']:{name_w}}  {_DIRECTION[r['direction']]:4}  {r['shapes']:{width}}  "
            f"{calls:>5}  {r['ms_per_step']:8.3f}  {100 * r['share']:6.1f}  "
            f"{_num(r['gflops'], '7.1f'):>7}  {_num(r['gbs'], '6.1f'):>6}  "
            f"{_floor(r['floor_ms_per_step']):>8}  {_num(r['over_floor'], '6.1f'):>6}")
    lines.append("")
    step = t["step_ms"]

    def total(label, ms, floor=None, note=""):
        floor_text = f"   floor {floor:7.3f} ms" if floor is not None else ""
        return f"{label:48} {ms:8.3f} ms  {100 * ms / step:5.1f} %{floor_text}{note}"

    lines += [
        total("forward: the ops above", t["forward_ops_ms"], t["forward_floor_ms"]),
        total("backward: the ops above", t["backward_ops_ms"], t["backward_floor_ms"]),
        total(f"optimizer: {s['optimizer']} step", t["optimizer_ms"], t["optimizer_floor_ms"]),
        total("optimizer: zero_grad", t["zero_grad_ms"]),
        total("outside the ops (Python, autodiff, allocation)", t["outside_ms"]),
        total("  of which in the forward pass", t["outside_forward_ms"]),
        total("  of which in the backward pass", t["outside_backward_ms"]),
        f"{'whole step (mean)':48} {step:8.3f} ms  {t['images_per_s']:,.0f} images/s   "
        f"floor {t['floor_ms']:.3f} ms, step/floor {t['step_over_floor']:.1f}",
        f"{'  steps: median, min, max':48} {s['step_ms_spread']['median']:8.3f} ms  "
        f"({s['step_ms_spread']['min']:.3f} to {s['step_ms_spread']['max']:.3f} ms)",
        f"{'  the same step, not profiled (mean)':48} {t['unprofiled_step_ms']:8.3f} ms  "
        f"(the profiler's own cost is about the difference)",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ the figure
def plot(result: dict, path) -> Path:
    """One horizontal stacked bar per pass (forward, backward, optimizer): a segment per op row
    (one colour per op, labelled where the label fits), then the time outside the ops in grey;
    a thin black bar under each pass is its roofline floor."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    t = result["totals"]
    outside = "outside the ops (Python, autodiff, allocation)"
    bars = [  # (label, [(op, ms)], floor ms)
        ("forward", [(r["op"], r["ms_per_step"]) for r in result["ops"]
                     if r["direction"] == "forward"] + [(outside, t["outside_forward_ms"])],
         t["forward_floor_ms"]),
        ("backward", [(r["op"], r["ms_per_step"]) for r in result["ops"]
                      if r["direction"] == BACKWARD] + [(outside, t["outside_backward_ms"])],
         t["backward_floor_ms"]),
        ("optimizer", [(f"{result['optimizer']} step", t["optimizer_ms"]),
                       ("zero_grad", t["zero_grad_ms"])], t["optimizer_floor_ms"]),
    ]
    names = []  # one colour per op, in order of total time
    for r in result["ops"]:
        if r["op"] not in names:
            names.append(r["op"])
    names += [f"{result['optimizer']} step", "zero_grad"]
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
               "#CCB974", "#64B5CD", "#2F4B7C", "#A05195", "#F95D6A"]
    colours = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    colours[outside] = "#BBBBBB"
    colours["zero_grad"] = "#DDDDDD"

    longest = max(sum(max(ms, 0.0) for _, ms in segs) for _, segs, _ in bars)
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_xlim(0, longest * 1.16)
    labels = []  # (text, segment width in ms, the number alone): shown where they fit
    for y, (_, segs, floor) in enumerate(bars):
        left = 0.0
        for name, ms in segs:
            ms = max(ms, 0.0)  # a clock's rounding can make a tiny remainder negative
            ax.barh(y, ms, left=left, height=0.6, color=colours[name], edgecolor="white",
                    linewidth=0.8)
            short = "outside" if name == outside else name
            labels.append((ax.text(left + ms / 2, y, f"{short}\n{ms:.2f}", ha="center",
                                   va="center", fontsize=7.5), ms, f"{ms:.2f}"))
            left += ms
        ax.text(left + 0.01 * longest, y, f"{left:.2f} ms ({100 * left / t['step_ms']:.0f} %)",
                va="center", fontsize=9)
        # the floor: the least this pass could take, a thin black bar under it
        ax.barh(y + 0.37, floor, height=0.09, color="black")
        ax.text(floor + 0.01 * longest, y + 0.37,
                f"floor {floor:.2f}" if floor >= 0.1 else f"floor {floor:.3f}", va="center",
                fontsize=7)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars])
    ax.invert_yaxis()
    canvas.draw()  # lay out, then drop the labels wider than their segment
    px_per_ms = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]
    renderer = canvas.get_renderer()
    for text, ms, number in labels:
        room = ms * px_per_ms - 6  # pixels, a margin of 3 each side
        if text.get_window_extent(renderer).width > room:
            text.set_text(number)  # the name does not fit: the number alone
            if text.get_window_extent(renderer).width > room:
                text.set_visible(False)
    ax.set_xlabel("ms per training step (mean)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    handles = [Patch(color=colours[n], label=n) for n in names if n in colours]
    handles.append(Patch(color=colours[outside], label=outside))
    handles.append(Patch(color="black", label="roofline floor of the pass (all its ops)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False)
    m = result["machine"]
    ax.set_title(
        f"npae profile: {result['model']}, batch {result['batch_size']}: {t['step_ms']:.2f} ms "
        f"per step ({t['images_per_s']:,.0f} images/s), floor {t['floor_ms']:.2f} ms\n"
        f"{m['cpu']}, {m['numba_threads']} threads; mean of {result['steps']} steps",
        fontsize=10)
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return path


# ------------------------------------------------------------------------------ the command
def run(settings: ProfileSettings, progress: bool = True) -> tuple[dict, Path, Path]:
    """``npae profile``: profile, print the table, write ``<out>/<model>-b<batch>.json`` and
    ``.png``; returns (result, json path, png path)."""
    settings.check()
    out = make_writable_folder(settings.out)  # before the slow part: a bad --out fails at once
    result = profile(settings, progress=progress)
    result["settings"] = asdict(settings)
    print(table(result), end="")
    json_path = out / f"{settings.stem}.json"
    text = json.dumps(result, indent=1) + "\n"
    atomic_write(json_path, lambda f: f.write(text.encode()))
    png_path = plot(result, out / f"{settings.stem}.png")
    print(f"\njson:   {json_path}\nfigure: {png_path}")
    return result, json_path, png_path
