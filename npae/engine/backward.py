"""The reverse-mode walk: ``Tensor.backward`` comes here.

The walk visits the recorded nodes in reverse topological order with an explicit stack (no
recursion: a 100,000-op chain is fine), hands each node the gradient of its outputs once all of
them are summed, and frees that gradient as soon as the node has used it.
"""

from __future__ import annotations

import numpy as np

from npae.engine import profiler
from npae.engine.dispatch import as_array
from npae.engine.function import Node
from npae.engine.tensor import FLOAT_DTYPES, Tensor


def accumulate_leaf(t: Tensor, grad: np.ndarray) -> None:
    # A copy, so that no two leaves (x + y hands both the same array) share one buffer that an
    # optimizer might later update in place.
    t.grad = grad.copy() if t.grad is None else t.grad + grad


def _topological_order(root: Node) -> list[Node]:
    """Nodes reachable from root, each after every node it consumes (iterative post-order DFS)."""
    order = []
    seen = set()
    stack = [(root, False)]
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


def run_backward(root: Node, index: int, grad: np.ndarray, retain_graph: bool) -> None:
    order = _topological_order(root)
    pending = {id(root): [None] * len(root.outputs_meta)}
    pending[id(root)][index] = grad
    rec = profiler.active  # None unless npae's profiler is recording
    for node in reversed(order):
        grads = pending.pop(id(node), None)  # popped: freed once this node has used it
        if grads is None:
            continue
        for k, (shape, dtype, xp) in enumerate(node.outputs_meta):
            if grads[k] is None and dtype in FLOAT_DTYPES:
                grads[k] = xp.zeros(shape, dtype)
        name = node.function.__name__
        if node.ctx is None:
            raise RuntimeError(
                f"backward through {name} a second time: its saved arrays were freed by the "
                f"first backward; pass retain_graph=True to the first one to keep them"
            )
        node.check_saved_versions()
        in_grads = (node.function.backward(node.ctx, *grads) if rec is None
                    else rec.backward(node, grads))
        if not retain_graph:
            node.ctx = None  # free the saved activations now, not when the graph is dropped
            node.saved_versions = ()  # and the inputs they were checked against
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
            g = as_array(g.data if isinstance(g, Tensor) else g)
            if g.shape != t.shape:
                raise RuntimeError(
                    f"{name}.backward returned a gradient of shape {g.shape} for input {i} "
                    f"of shape {t.shape}"
                )
            g = g.astype(t.dtype, copy=False)
            if t._node is None:
                accumulate_leaf(t, g)
                continue
            slots = pending.setdefault(id(t._node), [None] * len(t._node.outputs_meta))
            slots[t._index] = g if slots[t._index] is None else slots[t._index] + g
