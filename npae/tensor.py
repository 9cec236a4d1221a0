"""Tensor, Function and the reverse-mode engine.

A Tensor wraps an ndarray. Every differentiable operation is a ``Function`` subclass with a
static ``forward(ctx, *arrays, **params)`` and ``backward(ctx, grad)``; ``Function.apply``
unwraps Tensors, runs forward on plain arrays and, when a gradient will be needed, records one
graph node. ``Tensor.backward`` walks those nodes in reverse topological order with an explicit
stack (no recursion: a 100,000-op chain is fine), hands each node the gradient of its outputs
once all of them are summed, and frees that gradient as soon as the node has used it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from npae.backend import (
    array_module,
    as_array,
    check_same_device,
    device_of,
    is_array,
    normalize_device,
    to_device,
    to_host,
)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


@contextmanager
def no_grad():
    """Inside this block operations record no graph (evaluation, optimizer updates)."""
    previous = is_grad_enabled()
    _state.grad_enabled = False
    try:
        yield
    finally:
        _state.grad_enabled = previous


def _check_float(dtype, what: str) -> None:
    if np.dtype(dtype) not in FLOAT_DTYPES:
        raise TypeError(
            f"{what} has dtype {np.dtype(dtype)}, but npae differentiates float32 (training) and "
            f"float64 (gradient checks) only: convert it first, e.g. x.astype(np.float32)"
        )


class Tensor:
    """An ndarray with an optional gradient.

    >>> x = Tensor([[1.0, 2.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([[2., 4.]], dtype=float32)

    Python numbers and lists become float32 (PyTorch's default); an ndarray keeps its dtype,
    so float64 data stays float64 for gradient checking. A CuPy array makes a tensor on the
    'cuda' device; ``.to('cuda')`` and ``.to('cpu')`` move one (see ``npae.cuda``).
    """

    __array_priority__ = 1000  # ndarray op Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        elif not is_array(data):
            # Python numbers and lists default to float32; a NumPy scalar keeps its dtype
            numpy_scalar = isinstance(data, np.generic)
            data = np.asarray(data)
            if data.dtype == np.float64 and not numpy_scalar:
                data = data.astype(np.float32)
        self.data = data
        self.grad = None
        self._node = None
        self._index = 0
        if requires_grad:
            _check_float(data.dtype, "a tensor that requires grad")
        self.requires_grad = bool(requires_grad)

    # ----------------------------------------------------------------- plain attributes
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._node is None)
    device = property(lambda self: device_of(self.data), doc="'cpu' or 'cuda'")

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(to_host(self.data), separator=", ", prefix="Tensor(")
        device = ", device='cuda'" if self.device == "cuda" else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}, dtype={self.dtype}{device}{grad})"

    def numpy(self) -> np.ndarray:
        self._on_host("numpy()")
        return self.data

    def __array__(self, dtype=None, copy=None):
        # np.asarray(tensor) gives the data (not an object array of 0-d Tensors)
        self._on_host("np.asarray(tensor)")
        return self.data if dtype is None else self.data.astype(dtype)

    def _on_host(self, what: str) -> None:
        if self.device != "cpu":
            raise TypeError(
                f"{what} needs a tensor on the 'cpu' device, this one is on '{self.device}': "
                f"call .to('cpu') (or .cpu()) first"
            )

    def to(self, device) -> Tensor:
        """This tensor on ``device`` ('cpu' or 'cuda'); itself when it is there already.

        A tensor that requires grad is copied by a differentiable step, so gradients flow back
        to the original (as in PyTorch). Moving a model is ``Module.to``, which moves its
        parameters in place instead. Without CuPy, ``.to('cuda')`` raises RuntimeError saying
        what to install.
        """
        device = normalize_device(device)
        if device == self.device:
            return self
        return _ToDevice.apply(self, device=device)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def item(self):
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    # ----------------------------------------------------------------- the engine
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) . grad into every leaf's ``.grad``.

        ``grad`` has this tensor's shape; it may be omitted for a single-element tensor (a loss).
        As in PyTorch, each node drops what it saved for backward once used (so a training loop
        holds one graph's activations at a time); ``retain_graph=True`` keeps them for another
        backward pass through the same graph.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the computation "
                "had requires_grad=True (or it ran under npae.no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient works only for a single-element output; this "
                    f"one has shape {self.shape}: pass grad=, an array of that shape"
                )
            grad = array_module(self.data).ones_like(self.data)
        else:
            grad = as_array(grad.data if isinstance(grad, Tensor) else grad)
            check_same_device("backward()", (self.data, grad))
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): grad has shape {grad.shape} but the tensor has shape {self.shape}"
                )
            grad = grad.astype(self.dtype, copy=False)
        if self._node is None:
            _accumulate_leaf(self, grad)
            return
        _run_backward(self._node, self._index, grad, retain_graph)

    # ----------------------------------------------------------------- operators
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def clip(self, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
        return _ops.clip(self, min, max)

    clamp = clip

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        """Sum over ``axis`` (NumPy's name) or ``dim`` (PyTorch's); all axes by default."""
        return _ops.sum(self, _pick(axis, dim, "axis", "dim"),
                        _pick(keepdims, keepdim, "keepdims", "keepdim", unset=False))

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.mean(self, _pick(axis, dim, "axis", "dim"),
                         _pick(keepdims, keepdim, "keepdims", "keepdim", unset=False))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    view = reshape

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        return _ops.permute(self, dims)

    def transpose(self, dim0=None, dim1=None):
        """PyTorch's transpose: swap two dimensions (with none given, reverse them all)."""
        if dim0 is None and dim1 is None:
            return _ops.permute(self, tuple(reversed(range(self.ndim))))
        if dim0 is None or dim1 is None:
            raise TypeError("transpose(dim0, dim1) swaps two dimensions: give both (or neither)")
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return _ops.permute(self, tuple(dims))

    @property
    def T(self):
        return self.transpose()


def _pick(numpy_value, torch_value, numpy_name, torch_name, unset=None):
    """Accept either NumPy's or PyTorch's spelling of an argument, not both."""
    if torch_value is None:
        return numpy_value
    if numpy_value is not unset:
        raise TypeError(f"give {numpy_name} or {torch_name}, not both")
    return torch_value


class Context:
    """What forward leaves for backward.

    ``save_for_backward(*arrays)`` / ``saved_tensors`` keep arrays; any other attribute may be
    set freely. ``needs_input_grad[i]`` says whether input i wants a gradient, so backward can
    skip work nobody asked for.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays


class _Node:
    """One recorded application of a Function."""

    __slots__ = ("function", "ctx", "inputs", "outputs_meta")

    def __init__(self, function, ctx, inputs, outputs_meta):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the input Tensors (None for constants)
        self.outputs_meta = outputs_meta  # (shape, dtype, array module) per output: fills
        # a missing gradient with zeros on the output's device


class Function:
    """Base class of every operation, built-in or yours.

    Subclass it with two static methods and call ``MyOp.apply(*inputs, **params)``::

        class Cube(npae.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, grad):
                (x,) = ctx.saved_tensors
                return (3 * x ** 2 * grad,)

    ``forward`` receives ndarrays (Tensors are unwrapped; other values pass through) and returns
    an ndarray, or a tuple of them. ``backward`` receives one gradient per output (None for an
    integer output) and returns one gradient or None per positional input. Inputs listed in
    ``integer_inputs`` (positions) may be integer arrays and never get a gradient.
    """

    integer_inputs: tuple[int, ...] = ()

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        arrays = []
        needs = []
        for i, value in enumerate(inputs):
            array = value.data if isinstance(value, Tensor) else value
            if is_array(array) and i not in cls.integer_inputs:
                _check_float(array.dtype, f"{cls.__name__}: input {i}")
            arrays.append(array)
            needs.append(isinstance(value, Tensor) and value.requires_grad and
                         i not in cls.integer_inputs)
        # the one place mixed devices are caught: every operation comes through here
        check_same_device(cls.__name__, arrays)
        record = is_grad_enabled() and any(needs)
        ctx = Context(tuple(needs))
        out = cls.forward(ctx, *arrays, **params)
        multiple = isinstance(out, tuple)
        outs = out if multiple else (out,)
        tensors = []
        for k, array in enumerate(outs):
            array = as_array(array)
            differentiable = record and array.dtype in FLOAT_DTYPES
            t = Tensor(array, requires_grad=differentiable)
            t._index = k
            tensors.append(t)
        if record:
            meta = tuple((t.shape, t.dtype, array_module(t.data)) for t in tensors)
            inputs_kept = tuple(v if isinstance(v, Tensor) and v.requires_grad else None
                                for v in inputs)
            node = _Node(cls, ctx, inputs_kept, meta)
            for t in tensors:
                if t.requires_grad:
                    t._node = node
        return tuple(tensors) if multiple else tensors[0]


class _ToDevice(Function):
    """A copy to another device; its gradient is copied back."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = device_of(x)
        return to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return (to_device(grad, ctx.source),)


def _accumulate_leaf(t: Tensor, grad: np.ndarray) -> None:
    # A copy, so that no two leaves (x + y hands both the same array) share one buffer that an
    # optimizer might later update in place.
    t.grad = grad.copy() if t.grad is None else t.grad + grad


def _topological_order(root: _Node) -> list[_Node]:
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


def _run_backward(root: _Node, index: int, grad: np.ndarray, retain_graph: bool) -> None:
    order = _topological_order(root)
    pending = {id(root): [None] * len(root.outputs_meta)}
    pending[id(root)][index] = grad
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
        in_grads = node.function.backward(node.ctx, *grads)
        if not retain_graph:
            node.ctx = None  # free the saved activations now, not when the graph is dropped
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
                _accumulate_leaf(t, g)
                continue
            slots = pending.setdefault(id(t._node), [None] * len(t._node.outputs_meta))
            slots[t._index] = g if slots[t._index] is None else slots[t._index] + g


from npae import ops as _ops  # noqa: E402  (the operators need Tensor defined first)
