"""The reverse-mode walk: ``Tensor.backward`` and ``npae.grad`` come here.

The walk visits the recorded nodes in reverse topological order with an explicit stack (no
recursion: a 100,000-op chain is fine), hands each node the gradient of its outputs once all of
them are summed, and frees that gradient as soon as the node has used it.

Two modes:

* first order (``create_graph=False``, what training uses): gradients are plain arrays and each
  node's ``Function.backward`` runs on arrays. Nothing is recorded.
* ``create_graph=True``: gradients are Tensors, and each node's ``Function.backward_graph``
  computes them with npae operations, which record a graph of their own, so the gradients can
  be differentiated again (Hessian-vector products, gradient penalties, ``gradgradcheck``). A
  Function without ``backward_graph`` still gives its gradient, as a value that raises when a
  later backward needs its derivative (``OnceDifferentiable``).

``npae.grad`` uses the same walk with ``targets``: the gradients of those tensors are returned
instead of being accumulated into the leaves' ``.grad``, and only the part of the graph that
leads to them is walked.
"""

from __future__ import annotations

import numpy as np

from npae.engine import profiler
from npae.engine.dispatch import as_array
from npae.engine.function import Function, Node
from npae.engine.tensor import FLOAT_DTYPES, Tensor, enable_grad


def accumulate_leaf(t: Tensor, grad) -> None:
    """t.grad += grad. An array is copied the first time, so that no two leaves (x + y hands
    both the same array) share one buffer that an optimizer might later update in place. A
    Tensor (create_graph=True) is kept as it is, graph and all, as in PyTorch."""
    if isinstance(grad, Tensor):
        t.grad = grad if t.grad is None else grad + t.grad
    else:
        t.grad = grad.copy() if t.grad is None else t.grad + grad


def _topological_order(roots: list[Node]) -> list[Node]:
    """Nodes reachable from roots, each after every node it consumes (iterative post-order)."""
    order = []
    seen = set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for t in node.inputs:
            if t is not None and t._node is not None and id(t._node) not in seen:
                stack.append((t._node, False))
    return order


def _leading_to(order: list[Node], targets: dict) -> set[int]:
    """ids of the nodes whose backward can reach a target (an input of theirs is one, or an
    input's node leads to one): the rest of the graph need not be walked."""
    needed = set()
    for node in order:  # inputs' nodes come first
        if any(t is not None and (target_key(t) in targets or
                                  (t._node is not None and id(t._node) in needed))
               for t in node.inputs):
            needed.add(id(node))
    return needed


def target_key(t: Tensor):
    """How the walk recognises a tensor given to npae.grad: a leaf by itself, any other tensor
    by the node and output slot it came from."""
    return id(t) if t._node is None else (id(t._node), t._index)


def run_backward(roots, retain_graph: bool, create_graph: bool = False, targets=None):
    """Walk back from ``roots``, a list of (tensor, gradient) pairs.

    targets: None to accumulate into every leaf's ``.grad``; else a dict from ``target_key``
    to None, filled with each target's gradient (and no ``.grad`` is touched).
    """
    pending = {}
    root_nodes = []
    for t, grad in roots:
        if t._node is None:
            _deliver(t, grad, targets)
            continue
        slots = pending.setdefault(id(t._node), [None] * len(t._node.outputs_meta))
        slots[t._index] = grad if slots[t._index] is None else slots[t._index] + grad
        root_nodes.append(t._node)
    if not root_nodes:
        return
    order = _topological_order(root_nodes)
    needed = None if targets is None else _leading_to(order, targets)
    rec = profiler.active  # None unless npae's profiler is recording
    for node in reversed(order):
        grads = pending.pop(id(node), None)  # popped: freed once this node has used it
        if grads is None:
            continue
        if targets is not None:
            for k, g in enumerate(grads):
                if (id(node), k) in targets and g is not None:
                    targets[(id(node), k)] = g
            if id(node) not in needed:
                continue
        for k, (shape, dtype, xp) in enumerate(node.outputs_meta):
            if grads[k] is None and dtype in FLOAT_DTYPES:
                zeros = xp.zeros(shape, dtype)
                grads[k] = Tensor(zeros) if create_graph else zeros
        name = node.function.__name__
        if node.ctx is None:
            raise RuntimeError(
                f"backward through {name} a second time: its saved arrays were freed by the "
                f"first backward; pass retain_graph=True to the first one to keep them"
            )
        node.check_saved_versions()
        if create_graph:
            in_grads = _graph_backward(node, grads)
        else:
            in_grads = (node.function.backward(node.ctx, *grads) if rec is None
                        else rec.backward(node, grads))
        if not retain_graph:
            node.ctx = None  # free the saved activations now, not when the graph is dropped
            node.saved_versions = ()  # and the inputs they were checked against
            node.values = ()
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) != len(node.inputs):
            raise RuntimeError(
                f"{name}.backward returned {len(in_grads)} gradients for "
                f"{len(node.inputs)} inputs (return None for inputs without one)"
            )
        for i, (t, g) in enumerate(zip(node.inputs, in_grads, strict=True)):
            if t is None or g is None:
                continue
            g = _as_gradient(g, create_graph)
            if g.shape != t.shape:
                raise RuntimeError(
                    f"{name}.backward returned a gradient of shape {g.shape} for input {i} "
                    f"of shape {t.shape}"
                )
            if g.dtype != t.dtype:
                g = cast(g, t.dtype) if create_graph else g.astype(t.dtype, copy=False)
            if t._node is None:
                _deliver(t, g, targets)
                continue
            slots = pending.setdefault(id(t._node), [None] * len(t._node.outputs_meta))
            slots[t._index] = g if slots[t._index] is None else slots[t._index] + g


def cast(g: Tensor, dtype) -> Tensor:
    from npae.ops.unary import cast as cast_op  # the ops import the engine, not the reverse

    return cast_op(g, dtype)


def _as_gradient(g, create_graph):
    """A gradient a backward returned, as the walk carries it: an array (first order) or a
    Tensor (create_graph=True; an array there is a constant)."""
    if create_graph:
        return g if isinstance(g, Tensor) else Tensor(as_array(g))
    return as_array(g.data if isinstance(g, Tensor) else g)


def _deliver(t: Tensor, grad, targets) -> None:
    """A leaf's gradient: into its .grad, or, for npae.grad, into its target slot."""
    if targets is None:
        accumulate_leaf(t, grad)
    elif id(t) in targets:
        previous = targets[id(t)]
        targets[id(t)] = grad if previous is None else previous + grad


def _graph_backward(node: Node, grads):
    """One node's backward with create_graph=True: its Function's backward_graph, recorded."""
    fn = node.function
    ctx = node.ctx
    ctx._node = node
    ctx.inputs = tuple(t if t is not None else (Tensor(v) if _is_float_array(v) else v)
                       for t, v in zip(node.inputs, node.values, strict=True))
    try:
        with enable_grad():
            if getattr(fn, "backward_graph", None) is not None:
                return fn.backward_graph(ctx, *grads)
            # no backward_graph: the first-order value, marked as not differentiable again
            values = fn.backward(ctx, *(g.data if isinstance(g, Tensor) else g for g in grads))
            if not isinstance(values, tuple):
                values = (values,)
            depends = tuple(g for g in grads if isinstance(g, Tensor)) + tuple(
                t for t in node.inputs if t is not None)
            return tuple(None if v is None else
                         OnceDifferentiable.apply(*depends, value=as_array(v), name=fn.__name__)
                         for v in values)
    finally:
        ctx._node = None
        ctx.inputs = None


def _is_float_array(v) -> bool:
    return hasattr(v, "dtype") and hasattr(v, "shape") and np.dtype(v.dtype) in FLOAT_DTYPES


class OnceDifferentiable(Function):
    """A gradient computed by a Function that has no ``backward_graph``: its value is right,
    but a backward through it (a second derivative) raises instead of returning a wrong
    number."""

    @staticmethod
    def forward(ctx, *depends, value, name):
        ctx.name = name
        return value

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            f"{ctx.name} is differentiable once only: it has no backward_graph, so the gradient "
            f"it computed under create_graph=True cannot be differentiated again. Give "
            f"{ctx.name} a backward_graph(ctx, *grads) written with npae operations on Tensors "
            f"(see npae.Function) to take second derivatives through it"
        )
