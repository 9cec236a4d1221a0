"""Gradient verification: does an op's hand-written backward match its forward?

``gradcheck`` compares the backward pass with central finite differences, in float64:

* small problems: the full Jacobian, entry by entry. Column j of the numeric Jacobian is
  (f(x + eps e_j) - f(x - eps e_j)) / (2 eps); row k of the analytic one is what backward
  returns for a one-hot output gradient e_k.
* large problems: random projections. For a random output weighting v, backward gives
  g = J^T v; it is compared element by element on a sample of input elements
  ((<v, f(x + eps e_j)> - <v, f(x - eps e_j)>) / (2 eps)) and along random directions u
  (<g, u> against (<v, f(x + eps u)> - <v, f(x - eps u)>) / (2 eps)). A wrong factor on the
  whole gradient always shows up; a single wrong element of a large input can hide from both
  (only it and its share of a direction differ), so pin element-level rules on inputs small
  enough for the full Jacobian.

``adjoint_check`` is the dot-product test for linear maps: <A x, y> = <x, A^T y>.
"""

from __future__ import annotations

import numpy as np

from npae.engine.tensor import Tensor


class GradcheckError(AssertionError):
    """A gradient check failed. Attributes say where: ``input_index``, ``element`` (index into
    that input; for the full Jacobian, ``output_element`` too), ``analytic``, ``numeric``."""

    def __init__(self, message, input_index=None, element=None, analytic=None, numeric=None,
                 output_element=None):
        super().__init__(message)
        self.input_index = input_index
        self.element = element
        self.output_element = output_element
        self.analytic = analytic
        self.numeric = numeric


def _prepare(inputs):
    """float64 copies of the inputs, and which of them to differentiate.

    Checked: float Tensors with requires_grad=True and float ndarrays; Tensors with
    requires_grad=False, integer arrays (indices) and other values pass through unchanged.
    """
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = (inputs,)
    values, checked = [], []
    for i, v in enumerate(inputs):
        arr = v.data if isinstance(v, Tensor) else v
        wanted = isinstance(arr, np.ndarray) and np.issubdtype(arr.dtype, np.floating) and (
            not isinstance(v, Tensor) or v.requires_grad
        )
        if wanted:
            values.append(np.array(arr, dtype=np.float64))
            checked.append(i)
        elif isinstance(arr, np.ndarray) and np.issubdtype(arr.dtype, np.floating):
            values.append(np.array(arr, dtype=np.float64))
        else:
            values.append(arr)
    if not checked:
        raise ValueError(
            "gradcheck: no input to differentiate: pass float arrays or Tensors with "
            "requires_grad=True"
        )
    return values, checked


def _call(fn, values, checked):
    args = [Tensor(v, requires_grad=(i in checked)) if isinstance(v, np.ndarray) else v
            for i, v in enumerate(values)]
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise TypeError(
            f"gradcheck: fn returned {out.dtype} from float64 inputs; gradients are checked in "
            f"float64 (float32 rounding alone would fail the check): does fn cast its inputs?"
        )
    return args, out


def _forward(fn, values, checked):
    # with recording on: fn may take gradients itself (a gradient penalty, gradgradcheck's
    # first-order map), which needs the graph of its forward pass
    return _call(fn, values, checked)[1].data


def _analytic(fn, values, checked, v):
    """J^T v for every checked input (zeros where the output does not depend on it)."""
    args, out = _call(fn, values, checked)
    if not out.requires_grad:
        return [np.zeros_like(values[i]) for i in checked]
    out.backward(v, retain_graph=True)
    return [args[i].grad if args[i].grad is not None else np.zeros_like(values[i])
            for i in checked]


def _perturbed(fn, values, checked, i, direction, eps):
    plus = list(values)
    minus = list(values)
    plus[i] = values[i] + eps * direction
    minus[i] = values[i] - eps * direction
    return _forward(fn, plus, checked), _forward(fn, minus, checked)


def _index(flat, shape) -> tuple[int, ...]:
    """A flat position as a tuple of plain ints (NumPy 2 would print np.int64(3))."""
    return tuple(int(v) for v in np.unravel_index(flat, shape))


def _close(a, n, atol, rtol):
    return abs(a - n) <= atol + rtol * abs(n)


def _fail(what, i, shape, where, a, n, atol, rtol, **extra):
    raise GradcheckError(
        f"gradcheck failed for input {i} (shape {shape}) at {what}: analytic {a:.10g}, "
        f"numeric {n:.10g} (|difference| {abs(a - n):.3g} > atol {atol:g} + rtol {rtol:g} * "
        f"|numeric|)",
        input_index=i, element=where, analytic=float(a), numeric=float(n), **extra,
    )


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, *, seed=0, max_jacobian=20_000,
              samples=32, directions=4):
    """Check fn's backward against central differences, in float64. Returns True or raises.

    ``fn(*inputs)`` must return a Tensor. Every float input (an ndarray, or a Tensor with
    requires_grad=True) is differentiated; other inputs pass through unchanged. An entry passes
    when |analytic - numeric| <= atol + rtol * |numeric|.

    When output size x (checked input sizes) is at most ``max_jacobian``, the whole Jacobian is
    compared entry by entry; otherwise ``samples`` random elements of each input and
    ``directions`` random directions, under a random output weighting (``seed`` fixes them).

    Raises GradcheckError naming the input, the element, and both values.

    >>> import npae, numpy as np
    >>> npae.gradcheck(lambda x: (x * x).sum(), [np.array([1.0, 2.0])])
    True
    """
    values, checked = _prepare(inputs)
    rng = np.random.default_rng(seed)
    y = _forward(fn, values, checked)
    in_size = sum(values[i].size for i in checked)
    if y.size * in_size <= max_jacobian:
        _check_full_jacobian(fn, values, checked, y, eps, atol, rtol)
    else:
        _check_projections(fn, values, checked, y, eps, atol, rtol, rng, samples, directions)
    return True


def _check_full_jacobian(fn, values, checked, y, eps, atol, rtol):
    # analytic rows: one backward per output element
    rows = []
    for k in range(y.size):
        onehot = np.zeros(y.size)
        onehot[k] = 1.0
        rows.append([g.ravel() for g in _analytic(fn, values, checked, onehot.reshape(y.shape))])
    for pos, i in enumerate(checked):
        x = values[i]
        for j in range(x.size):
            e = np.zeros(x.size)
            e[j] = 1.0
            f_plus, f_minus = _perturbed(fn, values, checked, i, e.reshape(x.shape), eps)
            column = ((f_plus - f_minus) / (2 * eps)).ravel()
            for k in range(y.size):
                a, n = rows[k][pos][j], column[k]
                if not _close(a, n, atol, rtol):
                    where = _index(j, x.shape)
                    out_where = _index(k, y.shape)
                    _fail(f"element {where} (output element {out_where})", i, x.shape, where,
                          a, n, atol, rtol, output_element=out_where)


def _check_projections(fn, values, checked, y, eps, atol, rtol, rng, samples, directions):
    v = rng.standard_normal(y.shape)
    grads = _analytic(fn, values, checked, v)
    for g, i in zip(grads, checked, strict=True):
        x = values[i]
        picks = rng.choice(x.size, size=min(samples, x.size), replace=False)
        for j in picks:
            e = np.zeros(x.size)
            e[j] = 1.0
            f_plus, f_minus = _perturbed(fn, values, checked, i, e.reshape(x.shape), eps)
            n = np.vdot(v, f_plus - f_minus) / (2 * eps)
            a = g.ravel()[j]
            if not _close(a, n, atol, rtol):
                where = _index(j, x.shape)
                _fail(f"element {where}", i, x.shape, where, a, n, atol, rtol)
        for d in range(directions):
            u = rng.standard_normal(x.shape)
            u /= np.linalg.norm(u)
            f_plus, f_minus = _perturbed(fn, values, checked, i, u, eps)
            n = np.vdot(v, f_plus - f_minus) / (2 * eps)
            a = np.vdot(g, u)
            if not _close(a, n, atol, rtol):
                _fail(f"random direction {d}", i, x.shape, None, a, n, atol, rtol)


def adjoint_check(fn, x, y=None, adjoint=None, rtol=1e-10, seed=0):
    """The dot-product test for a linear map A = fn: <A x, y> must equal <x, A^T y>.

    A^T y is ``adjoint(y)`` when given (e.g. conv2d against conv_transpose2d), else fn's own
    backward with output gradient y. ``x`` is an array (cast to float64); ``y`` defaults to a
    random array of the output's shape. Returns True or raises GradcheckError with both sides.
    Only meaningful for maps linear in x (no bias).
    """
    x = np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64)
    xt = Tensor(x, requires_grad=adjoint is None)
    ax = fn(xt)
    if y is None:
        y = np.random.default_rng(seed).standard_normal(ax.shape)
    y = np.asarray(y.data if isinstance(y, Tensor) else y, dtype=np.float64)
    if y.shape != ax.shape:
        raise ValueError(f"adjoint_check: y has shape {y.shape} but fn(x) has shape {ax.shape}")
    if adjoint is None:
        ax.backward(y)
        aty = xt.grad if xt.grad is not None else np.zeros_like(x)
    else:
        aty = adjoint(Tensor(y)).data
        if aty.shape != x.shape:
            raise ValueError(
                f"adjoint_check: adjoint(y) has shape {aty.shape} but x has shape {x.shape}"
            )
    lhs = float(np.vdot(ax.data, y))
    rhs = float(np.vdot(x, aty))
    scale = np.linalg.norm(ax.data) * np.linalg.norm(y) + np.linalg.norm(x) * np.linalg.norm(aty)
    if abs(lhs - rhs) > rtol * max(scale, np.finfo(np.float64).tiny):
        raise GradcheckError(
            f"adjoint check failed: <A x, y> = {lhs:.17g} but <x, A^T y> = {rhs:.17g} "
            f"(|difference| {abs(lhs - rhs):.3g} > rtol {rtol:g} * {scale:.3g})",
            analytic=rhs, numeric=lhs,
        )
    return True


def vjp_function(fn, n_inputs, wrt, sizes):
    """g(*inputs, v): fn's vector-Jacobian product J^T v with respect to the inputs at
    positions ``wrt`` (of ``sizes`` elements), computed with create_graph=True and flattened
    end to end into one vector, so that it can be differentiated, and checked, like any op."""
    from npae.engine.autograd import grad as grad_of
    from npae.engine.tensor import enable_grad
    from npae.ops.shape import ScatterItem

    total = sum(sizes)

    def first_order(*args):
        args = list(args)
        for i in wrt:  # a constant input still has a gradient: take it, as a value only
            if isinstance(args[i], Tensor) and not args[i].requires_grad:
                args[i] = Tensor(args[i].data, requires_grad=True)
        with enable_grad():  # also under gradcheck's no_grad forward passes
            out = fn(*args[:n_inputs])
            if not out.requires_grad:  # fn ignores every input: g is zero
                return Tensor(np.zeros(total))
            grads = grad_of(out, [args[i] for i in wrt], grad_outputs=args[n_inputs],
                            create_graph=True, allow_unused=True)
            flat = Tensor(np.zeros(total))
            offset = 0
            for g, size in zip(grads, sizes, strict=True):
                if g is not None:  # an input fn does not use: a zero gradient
                    flat = flat + ScatterItem.apply(g.reshape((-1,)), shape=(total,),
                                                    index=slice(offset, offset + size))
                offset += size
            return flat

    return first_order


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, *, seed=0,
                  max_jacobian=20_000, samples=32, directions=4):
    """Check fn's second derivatives: the backward of its backward, in float64.

    The first-order vector-Jacobian product, g(x, v) = J(x)^T v, computed with
    ``create_graph=True``, is itself a function of the inputs and of the output gradient v.
    ``gradcheck`` is run on it: its analytic backward (the second-order one, through every op's
    ``backward_graph``) against central differences of the first-order gradient. As in
    ``gradcheck``, the whole Jacobian for small problems, random projections for large ones.

    grad_outputs: v, an array of fn's output shape (default: random, from ``seed``). It is
    checked too, since g is linear in it (a backward that drops a factor of v fails there).

    Raises GradcheckError naming the input (or "grad_outputs") and the element. An op without
    a ``backward_graph`` (see npae.Function) makes it raise a RuntimeError that names the op:
    its second derivative is not implemented, and no number is returned for it.

    >>> import npae, numpy as np
    >>> npae.gradgradcheck(lambda x: (x * x * x).sum(), [np.array([1.0, 2.0])])
    True
    """
    values, checked = _prepare(inputs)
    y = _forward(fn, values, checked)
    if grad_outputs is None:
        v = np.random.default_rng(seed).standard_normal(y.shape)
    else:
        v = np.array(grad_outputs.data if isinstance(grad_outputs, Tensor) else grad_outputs,
                     dtype=np.float64)
        if v.shape != y.shape:
            raise ValueError(f"gradgradcheck: grad_outputs has shape {v.shape} but fn's output "
                             f"has shape {y.shape}")
    n = len(values)
    first_order = vjp_function(fn, n, checked, [values[i].size for i in checked])
    names = [f"input {i}" for i in range(n)] + ["grad_outputs"]
    args = [Tensor(values[i], requires_grad=True) if i in checked else inputs_value(inputs, i)
            for i in range(n)] + [v]
    # The finite differences below are of the create_graph gradient itself, so a
    # backward_graph that is wrong in value but consistent with its own derivative would pass
    # them: first, its values must be backward's (which gradcheck checks against the forward).
    _check_same_values(first_order(*args).data, _analytic(fn, values, checked, v), values,
                       checked, atol, rtol)
    try:
        return gradcheck(first_order, args, eps=eps, atol=atol, rtol=rtol, seed=seed,
                         max_jacobian=max_jacobian, samples=samples, directions=directions)
    except GradcheckError as e:
        i = e.input_index
        which = names[i] if i is not None else "an input"
        raise GradcheckError(
            f"gradgradcheck failed: the second derivative with respect to {which} disagrees "
            f"with finite differences of the first-order gradient. {e}",
            input_index=i, element=e.element, analytic=e.analytic, numeric=e.numeric,
            output_element=e.output_element,
        ) from None


def _check_same_values(graph, plain, values, checked, atol, rtol):
    """The create_graph gradient (flattened) against the first-order one, element by element."""
    offset = 0
    for g, i in zip(plain, checked, strict=True):
        x = values[i]
        part = graph[offset:offset + x.size]
        offset += x.size
        bad = np.abs(part - g.ravel()) > atol + rtol * np.abs(g.ravel())
        if bad.any():
            j = int(np.argmax(bad))
            where = _index(j, x.shape)
            raise GradcheckError(
                f"gradgradcheck failed for input {i} (shape {x.shape}) at element {where}: the "
                f"gradient under create_graph=True (backward_graph) is {part[j]:.10g} but "
                f"backward gives {g.ravel()[j]:.10g}: the two ways of computing the first "
                f"derivative disagree",
                input_index=i, element=where, analytic=float(part[j]),
                numeric=float(g.ravel()[j]),
            )


def inputs_value(inputs, i):
    """The i-th input as the caller gave it (a lone Tensor or array counts as one input)."""
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = (inputs,)
    return inputs[i]
