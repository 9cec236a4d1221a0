"""Function, the base class of every operation, and Context, what forward leaves for backward.

``Function.apply`` unwraps Tensors, runs forward on plain arrays (timed while npae's profiler,
npae/engine/profiler.py, is recording) and, when a gradient will be needed, records one ``Node``
that npae/engine/backward.py later walks.
"""

from __future__ import annotations

from npae.engine import profiler
from npae.engine.dispatch import (
    array_module,
    as_array,
    check_same_device,
    device_of,
    is_array,
    to_device,
)
from npae.engine.tensor import FLOAT_DTYPES, Tensor, _check_float, is_grad_enabled


class Context:
    """What forward leaves for backward.

    ``save_for_backward(*arrays)`` / ``saved_tensors`` keep arrays; any other attribute may be
    set freely. ``needs_input_grad[i]`` says whether input i wants a gradient, so backward can
    skip work nobody asked for.

    Inside ``backward_graph`` (create_graph=True) two more things are there: ``ctx.inputs``,
    the inputs as Tensors (the caller's own Tensors where they require grad, so derivatives flow
    back to them; other arrays wrapped as constants; other values as they were), and
    ``ctx.output(array, k=0)``, which turns a saved output array back into output k of this
    operation, so that a backward that uses the output (sigmoid's y * (1 - y)) is differentiated
    through it.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()
        self.inputs = None
        self._node = None

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays

    def output(self, array, k: int = 0) -> Tensor:
        """Output k of this operation as a Tensor of the graph (only inside backward_graph)."""
        if self._node is None:
            raise RuntimeError("ctx.output() is for backward_graph, under create_graph=True")
        t = Tensor(array, requires_grad=True)
        t._node = self._node
        t._index = k
        return t


class Node:
    """One recorded application of a Function."""

    __slots__ = ("function", "ctx", "inputs", "values", "outputs_meta", "saved_versions")

    def __init__(self, function, ctx, inputs, outputs_meta, saved_versions=(), values=()):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # the input Tensors (None for constants)
        self.values = values  # every input as forward received it (backward_graph's constants)
        self.outputs_meta = outputs_meta  # (shape, dtype, array module) per output: fills
        # a missing gradient with zeros on the output's device
        self.saved_versions = saved_versions  # (position, Tensor, its _version when saved)

    def check_saved_versions(self) -> None:
        """Raise if an input whose array forward saved was changed in place since."""
        for i, t, version in self.saved_versions:
            if t._version != version:
                raise RuntimeError(
                    f"{self.function.__name__}.backward: input {i} (shape {t.shape}, "
                    f"{t.dtype}) was saved for backward at version {version} but is now at "
                    f"version {t._version}: it was modified in place (an optimizer step?) after "
                    f"the forward pass, so this gradient would be wrong. Run the forward pass "
                    f"again after the update, or call backward before it."
                )


def _root(array):
    """The array that owns the memory a view looks at."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _saved_inputs(inputs, saved) -> tuple:
    """(position, Tensor, version) for every Tensor input whose memory forward saved."""
    if not saved:
        return ()
    roots = {id(_root(a)) for a in saved if a is not None}
    return tuple((i, v, v._version) for i, v in enumerate(inputs)
                 if isinstance(v, Tensor) and id(_root(v.data)) in roots)


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

    That is enough for first derivatives. For second ones (``create_graph=True``,
    ``npae.gradgradcheck``), add ``backward_graph``: the same gradients, computed from Tensors
    with npae operations, so that they are recorded and can be differentiated again::

            @staticmethod
            def backward_graph(ctx, grad):
                (x,) = ctx.inputs          # the input as a Tensor of the graph
                return (3 * x ** 2 * grad,)

    Use ``ctx.inputs`` (not the saved arrays) for anything the gradient depends on, and
    ``ctx.output(saved_y)`` for an output. An op without ``backward_graph`` still works under
    create_graph=True, but a second backward through its gradient raises a RuntimeError that
    names it, rather than return a wrong number.
    """

    backward_graph = None  # (ctx, *grad Tensors) -> gradient Tensors: see above

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
            if isinstance(value, (tuple, list)) and any(isinstance(v, Tensor) for v in value):
                raise TypeError(
                    f"{cls.__name__}: input {i} is a {type(value).__name__} of {len(value)} "
                    f"values, not a tensor (a layer that returns several values, such as "
                    f"MaxPool2d(return_indices=True), must be unpacked first: y, idx = pool(x))"
                )
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
        rec = profiler.active  # None unless npae's profiler is recording
        out = (cls.forward(ctx, *arrays, **params) if rec is None
               else rec.forward(cls, ctx, arrays, params))
        multiple = isinstance(out, tuple)
        outs = out if multiple else (out,)
        owners = None  # {root array id: input Tensor}, built only when an output is a view
        tensors = []
        for k, array in enumerate(outs):
            array = as_array(array)
            differentiable = record and array.dtype in FLOAT_DTYPES
            t = Tensor(array, requires_grad=differentiable)
            t._index = k
            if array.base is not None:  # perhaps a view of an input (reshape, slicing)
                if owners is None:
                    owners = {id(_root(v.data)): v for v in inputs if isinstance(v, Tensor)}
                owner = owners.get(id(_root(array)))
                if owner is not None:  # one memory, one count
                    t._version_counter = owner._shared_counter()
            tensors.append(t)
        if record:
            meta = tuple((t.shape, t.dtype, array_module(t.data)) for t in tensors)
            inputs_kept = tuple(v if isinstance(v, Tensor) and v.requires_grad else None
                                for v in inputs)
            node = Node(cls, ctx, inputs_kept, meta, _saved_inputs(inputs, ctx.saved_tensors),
                        tuple(arrays))
            for t in tensors:
                if t.requires_grad:
                    t._node = node
        return tuple(tensors) if multiple else tensors[0]


class ToDevice(Function):
    """A copy to another device; its gradient is copied back."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = device_of(x)
        return to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return (to_device(grad, ctx.source),)
