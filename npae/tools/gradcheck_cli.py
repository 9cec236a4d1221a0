"""``npae gradcheck OP``: check one op's hand-written backward against finite differences.

The op runs in float64 on small random inputs. For every differentiable input the command
prints the analytic gradient (the op's backward, J^T v for a random output weighting v) next
to the numeric one (central differences of <v, f(x)>, element by element): the largest absolute
and relative error and the worst element. Then it runs ``npae.gradcheck`` itself (the full
Jacobian for these sizes) and exits non-zero if either check fails.

``plant_bug=True`` swaps in a deliberately wrong backward, in a subclass of the op's Function
that only this command uses (the real op is untouched), to show what a failure looks like. What
each op checks, and its planted bug, live in its file in npae/tools/explain/
(``gradcheck_case``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from npae.engine.gradcheck import GradcheckError, gradcheck
from npae.engine.tensor import Tensor, no_grad
from npae.tools.explain.layout import WIDTH
from npae.tools.parts import Case
from npae.tools.registry import get_explained
from npae.tools.settings import GradcheckSettings


def build(op: str, s: GradcheckSettings, plant_bug: bool = False) -> Case:
    """The case of ``op`` (its gradcheck_case, in its file in npae/tools/explain/)."""
    entry = get_explained(op, "gradcheck")
    n, c, o = s.batch, s.channels, s.out_channels
    if min(n, c, o) < 1:
        raise ValueError(f"--batch, --channels and --out-channels must be >= 1, got {n}, {c}, {o}")
    return entry.gradcheck_case(s, plant_bug)


# ------------------------------------------------------------------------------ the report
@dataclass
class InputReport:
    name: str
    shape: tuple
    max_abs: float
    max_rel: float
    worst: tuple
    analytic: float
    numeric: float
    ratio: float  # |a - n| / (atol + rtol*|n|) at the worst element; above 1 fails


def compare(case: Case, s: GradcheckSettings) -> list[InputReport]:
    """Analytic J^T v against central differences of <v, f(x)>, every element of every input."""
    values = [np.array(v, dtype=np.float64) for v in case.inputs]
    with no_grad():
        y = case.fn(*[Tensor(v) for v in values]).data
    v = np.random.default_rng(s.seed + 1).standard_normal(y.shape)
    args = [Tensor(a, requires_grad=True) for a in values]
    case.fn(*args).backward(v)
    reports = []
    for i, (name, x) in enumerate(zip(case.names, values, strict=True)):
        analytic = args[i].grad if args[i].grad is not None else np.zeros_like(x)
        numeric = np.zeros(x.size)
        for j in range(x.size):
            sides = []
            for sign in (1.0, -1.0):
                shifted = [a.copy() for a in values]
                shifted[i].ravel()[j] += sign * s.eps
                with no_grad():
                    sides.append(float(np.vdot(v, case.fn(*[Tensor(a) for a in shifted]).data)))
            numeric[j] = (sides[0] - sides[1]) / (2 * s.eps)
        a = analytic.ravel()
        diff = np.abs(a - numeric)
        size = np.maximum(np.abs(a), np.abs(numeric))
        rel = np.where(size > s.atol, diff / np.maximum(size, 1e-300), 0.0)
        ratio = diff / (s.atol + s.rtol * np.abs(numeric))
        k = int(np.argmax(ratio))
        reports.append(InputReport(name, x.shape, float(diff.max()), float(rel.max()),
                                   tuple(int(t) for t in np.unravel_index(k, x.shape)),
                                   float(a[k]), float(numeric[k]), float(ratio[k])))
    return reports


def run(op: str, s: GradcheckSettings, plant_bug: bool = False, out=print) -> bool:
    """Print the comparison and npae.gradcheck's verdict; True when everything passed."""
    case = build(op, s, plant_bug)
    shapes = ", ".join(f"{n} {tuple(np.shape(v))}" for n, v in zip(case.names, case.inputs,
                                                                      strict=True))
    with no_grad():
        y = case.fn(*[Tensor(np.asarray(v, dtype=np.float64)) for v in case.inputs])
    for line in (f"npae gradcheck {op}: {shapes} -> output {tuple(y.shape)}; {case.about}.",
                 f"float64; numeric gradient by central differences with eps {s.eps:g}; an "
                 f"element passes when |analytic - numeric| <= {s.atol:g} + {s.rtol:g} * "
                 f"|numeric|."):
        out("\n".join(textwrap.wrap(line, WIDTH)))
    if plant_bug:
        out("\n".join(textwrap.wrap(f"PLANTED BUG (this run only; the real op is untouched): "
                                    f"{case.bug}.", WIDTH)))
    out("")
    out("analytic (backward, J^T v for a random output weighting v) vs numeric, every element:")
    reports = compare(case, s)
    header = (f"  {'input':<8}{'shape':<14}{'max abs':>9}{'max rel':>9}  {'worst element':<14}"
              f"{'analytic':>14}{'numeric':>14}  verdict")
    out(header)
    ok = True
    for r in reports:
        passed = r.ratio <= 1.0
        ok &= passed
        out(f"  {r.name:<8}{str(r.shape):<14}{r.max_abs:>9.1e}{r.max_rel:>9.1e}  "
            f"{str(r.worst):<14}{r.analytic:>14.7g}{r.numeric:>14.7g}  "
            f"{'ok' if passed else 'FAIL'}")
    out("  (relative error: |a - n| / max(|a|, |n|), over elements whose gradient exceeds atol;")
    out("  worst element: the one furthest past the tolerance atol + rtol*|numeric|)")
    out("")
    out("Then npae.gradcheck compares the full Jacobian entry by entry: one input element")
    out("against one output element, so its numbers differ from the weighted sums above.")
    try:
        gradcheck(case.fn, case.inputs, eps=s.eps, atol=s.atol, rtol=s.rtol)
        out("npae.gradcheck (full Jacobian, entry by entry): passed")
    except GradcheckError as err:
        ok = False
        name = case.names[err.input_index] if err.input_index is not None else "?"
        out("\n".join(textwrap.wrap(f"npae.gradcheck: FAILED on {name}: {err}", WIDTH)))
    if ok:
        out(f"gradcheck {op}: PASSED")
    else:
        out(f"gradcheck {op}: FAILED" + (" (as planted: this is what a wrong backward looks "
                                         "like)" if plant_bug else ""))
    return ok
