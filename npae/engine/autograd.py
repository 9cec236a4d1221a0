"""``npae.grad``: gradients returned rather than accumulated, as ``torch.autograd.grad``."""

from __future__ import annotations

from npae.engine.backward import run_backward, target_key
from npae.engine.tensor import Tensor, initial_gradient


def _as_tuple(value, what):
    if isinstance(value, Tensor):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, Tensor) for v in value):
        return tuple(value)
    raise TypeError(f"npae.grad: {what} must be a Tensor or a sequence of Tensors, "
                    f"got {type(value).__name__}")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned as a tuple.

    Like ``torch.autograd.grad``: sum over outputs of d(output)/d(input) . grad_output, for
    each input (a leaf or any tensor of the graph). Nothing is accumulated into any ``.grad``.

    grad_outputs: one per output (None for a single-element output: ones); arrays or Tensors.
    create_graph: record the backward computation, so the returned gradients are Tensors that
        can be differentiated again (Hessian-vector products, gradient penalties); without it
        they are Tensors that require no grad.
    retain_graph: keep the graph's saved arrays for another backward (default: create_graph).
    allow_unused: return None for an input the outputs do not depend on, instead of raising.

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> (g,) = grad((x ** 3).sum(), x, create_graph=True)   # 3 x^2
    >>> grad(g.sum(), x)[0].data                            # 6 x
    array([ 6., 12.], dtype=float32)
    """
    outputs = _as_tuple(outputs, "outputs")
    inputs = _as_tuple(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, (tuple, list)):
        grad_outputs = tuple(grad_outputs)
    else:
        grad_outputs = (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"npae.grad: {len(grad_outputs)} grad_outputs for {len(outputs)} "
                         f"outputs (give one per output, None for a single-element one)")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"npae.grad: input {i} (shape {t.shape}) does not require grad")
    retain_graph = create_graph if retain_graph is None else retain_graph
    roots = [(o, initial_gradient(f"npae.grad (output {k})", o, g, create_graph))
             for k, (o, g) in enumerate(zip(outputs, grad_outputs, strict=True))]
    targets = {target_key(t): None for t in inputs}
    from npae.engine.threads import blas_limited

    with blas_limited():
        run_backward(roots, retain_graph, create_graph, targets)
    result = []
    for i, t in enumerate(inputs):
        g = targets[target_key(t)]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"npae.grad: input {i} (shape {t.shape}) was not used to compute the "
                    f"outputs; pass allow_unused=True to get None for it"
                )
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else Tensor(g))
    return tuple(result)
