"""Tensor: an ndarray with an optional gradient, and the switch that turns recording off.

Every differentiable operation is a ``Function`` (npae/engine/function.py): ``Function.apply``
runs forward on plain arrays and, when a gradient will be needed, records one graph node.
``Tensor.backward`` hands the walk over those nodes to npae/engine/backward.py.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from npae.engine.dispatch import (
    array_module,
    as_array,
    check_same_device,
    device_of,
    is_array,
    normalize_device,
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


@contextmanager
def enable_grad():
    """Record operations inside this block even within ``no_grad`` (the backward walk uses it
    under create_graph=True)."""
    previous = is_grad_enabled()
    _state.grad_enabled = True
    try:
        yield
    finally:
        _state.grad_enabled = previous


class _VersionCounter:
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


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

    ``.data`` is the array itself, shared, not a copy. npae's in-place changes (an optimizer's
    ``step()``) bump the tensor's ``_version``, and ``backward`` refuses to use an array that an
    operation saved and that changed since, as PyTorch does. Writing into ``.data`` yourself
    (``t.data[...] = v``, ``t.data -= lr * g``, or refilling the ndarray a tensor was made
    from) bypasses that check, in npae as in PyTorch: do it only when no graph that used the
    tensor is still waiting for its backward, or the gradients come out wrong without a word.
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
        # Bumped by every in-place change npae makes (an optimizer's step); backward compares it
        # with the value it had when an operation saved this tensor's array. Tensors that are
        # views of one another (reshape, slicing, detach) share one counter, as in PyTorch. A
        # write into ``.data`` itself (``t.data[...] = ...``) does not bump it: see above.
        self._version_counter = None  # made on first need: most tensors are never changed
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
        from npae.engine.function import ToDevice

        return ToDevice.apply(self, device=device)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def item(self):
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (and sharing this tensor's version counter)."""
        t = Tensor(self.data)
        t._version_counter = self._shared_counter()
        return t

    @property
    def _version(self) -> int:
        """How many in-place changes npae has made to this tensor's memory (read-only)."""
        counter = self._version_counter
        return 0 if counter is None else counter.value

    def _bump_version(self) -> None:
        self._shared_counter().value += 1

    def _shared_counter(self) -> _VersionCounter:
        """This tensor's counter, made now if it has none yet, for a view to share."""
        if self._version_counter is None:
            self._version_counter = _VersionCounter()
        return self._version_counter

    # ----------------------------------------------------------------- the engine
    def backward(self, grad=None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) . grad into every leaf's ``.grad``.

        ``grad`` has this tensor's shape; it may be omitted for a single-element tensor (a loss).
        As in PyTorch, each node drops what it saved for backward once used (so a training loop
        holds one graph's activations at a time); ``retain_graph=True`` keeps them for another
        backward pass through the same graph.

        ``create_graph=True`` records the backward computation itself: each leaf's ``.grad`` is
        then a Tensor with a graph of its own (not an ndarray), which can be differentiated
        again, e.g. ``(x.grad * v).sum().backward()`` for a Hessian-vector product.
        ``retain_graph`` defaults to ``create_graph``.
        """
        from npae.engine.backward import run_backward
        from npae.engine.threads import blas_limited

        retain_graph = create_graph if retain_graph is None else retain_graph
        seed = initial_gradient("backward()", self, grad, create_graph)
        with blas_limited():  # one thread pool on the cores (npae/engine/threads.py)
            run_backward([(self, seed)], retain_graph, create_graph)

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


def initial_gradient(what: str, t: Tensor, grad, create_graph: bool):
    """The gradient a backward starts from at t: ones for a single element when grad is None,
    else grad checked against t; a Tensor under create_graph (grad's own graph kept), else an
    array."""
    if not t.requires_grad:
        raise RuntimeError(
            f"{what} on a tensor that does not require grad: no input of the computation "
            f"had requires_grad=True (or it ran under npae.no_grad())"
        )
    if grad is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"{what} without a gradient works only for a single-element output; this "
                f"one has shape {t.shape}: pass the output's gradient, an array of that shape"
            )
        seed = array_module(t.data).ones_like(t.data)
        return Tensor(seed) if create_graph else seed
    array = as_array(grad.data if isinstance(grad, Tensor) else grad)
    check_same_device(what, (t.data, array))
    if array.shape != t.shape:
        raise ValueError(f"{what}: grad has shape {array.shape} but the tensor has shape {t.shape}")
    if create_graph:
        if isinstance(grad, Tensor):
            return grad if grad.dtype == t.dtype else _ops.cast(grad, t.dtype)
        return Tensor(array.astype(t.dtype, copy=False))
    return array.astype(t.dtype, copy=False)


def _pick(numpy_value, torch_value, numpy_name, torch_name, unset=None):
    """Accept either NumPy's or PyTorch's spelling of an argument, not both."""
    if torch_value is None:
        return numpy_value
    if numpy_value is not unset:
        raise TypeError(f"give {numpy_name} or {torch_name}, not both")
    return torch_value


from npae import ops as _ops  # noqa: E402  (the operators need Tensor defined first)
