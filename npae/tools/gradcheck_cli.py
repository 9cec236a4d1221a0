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

``order=2`` (``--order 2``) checks the second derivatives instead: the op's first-order
gradient J^T v, computed with create_graph=True, is itself a function of the inputs and of v,
and the same comparison runs on it (``npae.gradgradcheck``). Its planted bug is the kind only
this check sees: a backward whose values are right but which hands its gradient back as a
constant, as if it did not depend on the inputs or on v; the first-order check passes it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from npae.engine.function import Function
from npae.engine.gradcheck import GradcheckError, gradcheck, gradgradcheck, vjp_function
from npae.engine.tensor import Tensor, enable_grad, no_grad
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
    out = case.fn(*args)
    if out.requires_grad:  # else fn's output depends on none of them: every gradient is zero
        out.backward(v)
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


class _ConstantGradient(Function):
    """fn as one op whose first-order gradient is right but whose backward_graph returns that
    gradient as a constant: --order 2's planted bug (right in value, wrong as a function)."""

    @staticmethod
    def forward(ctx, *arrays, fn):
        ctx.fn = fn
        ctx.save_for_backward(*arrays)
        with no_grad():
            return fn(*[Tensor(a) for a in arrays]).data

    @staticmethod
    def backward(ctx, grad):
        args = [Tensor(a, requires_grad=True) for a in ctx.saved_tensors]
        with enable_grad():
            ctx.fn(*args).backward(grad)
        return tuple(np.zeros_like(a.data) if a.grad is None else a.grad for a in args)

    @staticmethod
    def backward_graph(ctx, grad):
        # the planted bug: the values of backward, cut from the graph
        return tuple(Tensor(g) for g in _ConstantGradient.backward(ctx, grad.data))


def second_order_case(case: Case, s: GradcheckSettings, plant_bug: bool) -> Case:
    """The case --order 2 checks: (inputs, v) -> J^T v, flattened (npae.gradgradcheck's map)."""
    fn = case.fn
    if plant_bug:
        def fn(*args):
            return _ConstantGradient.apply(*args, fn=case.fn)
    values = [np.array(v, dtype=np.float64) for v in case.inputs]
    with no_grad():
        y = fn(*[Tensor(v) for v in values])
    v = np.random.default_rng(s.seed + 2).standard_normal(y.shape)
    n = len(values)
    g = vjp_function(fn, n, list(range(n)), [x.size for x in values])
    return Case(g, values + [v], list(case.names) + ["grad_out"], case.about,
                "the backward's values are right, but its gradient comes back as a constant, "
                "as if it depended neither on the inputs nor on the output gradient")


def run(op: str, s: GradcheckSettings, plant_bug: bool = False, out=print,
        order: int = 1) -> bool:
    """Print the comparison and npae.gradcheck's verdict; True when everything passed.
    order=2: the same for the second derivatives (npae.gradgradcheck)."""
    if order not in (1, 2):
        raise ValueError(f"--order must be 1 or 2, got {order}")
    if order == 2:
        return _run_second_order(op, s, plant_bug, out)
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


def _run_second_order(op: str, s: GradcheckSettings, plant_bug: bool, out) -> bool:
    first = build(op, s, False)
    case = second_order_case(first, s, plant_bug)
    shapes = ", ".join(f"{n} {tuple(np.shape(v))}" for n, v in zip(first.names, first.inputs,
                                                                      strict=True))
    for line in (f"npae gradcheck {op} --order 2: {shapes}; {first.about}.",
                 "Second derivatives: the first-order gradient g = J^T v (v: a random output "
                 "gradient, grad_out), computed with create_graph=True, is differentiated again "
                 "(every op's backward_graph) and compared with central differences of g, in "
                 f"float64 with eps {s.eps:g}; an element passes when |analytic - numeric| <= "
                 f"{s.atol:g} + {s.rtol:g} * |numeric|."):
        out("\n".join(textwrap.wrap(line, WIDTH)))
    if plant_bug:
        out("\n".join(textwrap.wrap(f"PLANTED BUG (this run only; the real op is untouched): "
                                    f"{case.bug}. The first-order check passes it:", WIDTH)))
        try:
            gradcheck(first.fn, first.inputs, eps=s.eps, atol=s.atol, rtol=s.rtol)
            gradcheck(lambda *a: _ConstantGradient.apply(*a, fn=first.fn), first.inputs,
                      eps=s.eps, atol=s.atol, rtol=s.rtol)
            out("  npae.gradcheck on the planted op: passed (its values are right)")
        except GradcheckError as err:
            out(f"  npae.gradcheck on the planted op: failed ({err})")
    out("")
    out("analytic (backward of the backward, for a random weighting of g) vs numeric:")
    try:
        reports = compare(case, s)
    except RuntimeError as err:  # an op with no backward_graph: no number, a reason
        if "differentiable once only" not in str(err):
            raise
        out("\n".join(textwrap.wrap(f"not twice differentiable: {err}", WIDTH)))
        out(f"gradcheck {op} --order 2: NOT SUPPORTED")
        return False
    out(f"  {'input':<9}{'shape':<14}{'max abs':>9}{'max rel':>9}  {'worst element':<14}"
        f"{'analytic':>14}{'numeric':>14}  verdict")
    ok = True
    for r in reports:
        passed = r.ratio <= 1.0
        ok &= passed
        out(f"  {r.name:<9}{str(r.shape):<14}{r.max_abs:>9.1e}{r.max_rel:>9.1e}  "
            f"{str(r.worst):<14}{r.analytic:>14.7g}{r.numeric:>14.7g}  "
            f"{'ok' if passed else 'FAIL'}")
    out("")
    fn = first.fn if not plant_bug else (lambda *a: _ConstantGradient.apply(*a, fn=first.fn))
    try:
        gradgradcheck(fn, first.inputs, eps=s.eps, atol=s.atol, rtol=s.rtol, seed=s.seed)
        out("npae.gradgradcheck (full Jacobian of g, entry by entry): passed")
    except GradcheckError as err:
        ok = False
        out("\n".join(textwrap.wrap(f"npae.gradgradcheck: FAILED: {err}", WIDTH)))
    if ok:
        out(f"gradcheck {op} --order 2: PASSED")
    else:
        out(f"gradcheck {op} --order 2: FAILED" + (
            " (as planted: right values, wrong as a function; only the second-order check "
            "sees it)" if plant_bug else ""))
    return ok
