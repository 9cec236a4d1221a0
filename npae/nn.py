"""npae.nn: layers that hold parameters; the math is one call into npae.functional.

Modules work like PyTorch's: assigning a Parameter or a Module to an attribute registers it,
``parameters()``/``named_parameters()`` walk the tree, ``state_dict()`` maps dotted names to
arrays, and the default initialisation is PyTorch's (weight and bias uniform in
+-1/sqrt(fan_in)), so the same seed-free experiment behaves comparably in both.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

import npae.functional as F
from npae.engine.dispatch import as_array, normalize_device, to_device
from npae.engine.random import generator
from npae.engine.shapes import check_nonnegative, check_positive, pair, scale_factor_pair
from npae.engine.tensor import Tensor
from npae.engine.threads import blas_limited


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (requires_grad=True)."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _uniform(shape, bound, dtype=np.float32):
    return Parameter(generator().uniform(-bound, bound, size=shape).astype(dtype))


# Layers check their arguments when they are made, not at their first forward: a wrong layer
# in a model fails where it is written.
def _count(layer: str, name: str, value) -> int:
    """A positive int (a number of features or channels)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _sizes(layer: str, **named) -> None:
    """Window arguments: kernel_size, stride, dilation positive; padding, output_padding >= 0."""
    for name, value in named.items():
        if value is None:
            continue
        hw = pair(value, name, layer)
        if name in ("padding", "output_padding"):
            check_nonnegative(layer, name, hw)
        else:
            check_positive(layer, name, hw)


class Module:
    """Base class of every layer and model. Subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        # a reassigned parameter or module keeps its place (Sequential runs in that order)
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        with blas_limited():  # one thread pool on the cores (npae/engine/threads.py)
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ------------------------------------------------------------------ the tree
    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) pairs, each parameter once, in registration order."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter (and its gradient) to ``device``, 'cpu' or 'cuda', in place, as
        PyTorch does: optimizers holding these parameters keep working, and their state follows
        on the next step. Returns the module."""
        device = normalize_device(device)
        for p in self.parameters():
            p.data = to_device(p.data, device)
            if p.grad is not None:
                p.grad = to_device(p.grad, device)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> OrderedDict:
        """Dotted parameter names -> copies of their arrays."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays into the parameters, checking names and shapes first (nothing is changed
        unless everything matches); values are cast to each parameter's dtype and land on its
        device."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict and (missing or unexpected):
            if missing:
                problems.append(f"missing keys {missing}")
            if unexpected:
                problems.append(f"unexpected keys {unexpected}")
        for name, p in own.items():
            if name in state and np.shape(state[name]) != p.shape:
                problems.append(
                    f"{name}: shape {tuple(np.shape(state[name]))} in the state dict, "
                    f"{p.shape} in the model"
                )
        if problems:
            raise ValueError(
                f"load_state_dict for {type(self).__name__}: " + "; ".join(problems)
            )
        for name, p in own.items():
            if name in state:
                value = to_device(as_array(state[name]), p.device)
                p.data = value.astype(p.dtype, copy=True)
        return self

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                body = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {body}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


# ---------------------------------------------------------------------- layers with parameters
class Linear(Module):
    """y = x W^T + b; W (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = _count("Linear", "in_features", in_features)
        self.out_features = _count("Linear", "out_features", out_features)
        bound = 1 / math.sqrt(in_features)
        self.weight = _uniform((out_features, in_features), bound)
        self.bias = _uniform((out_features,), bound) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels, kH, kW)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True):
        super().__init__()
        _sizes("Conv2d", kernel_size=kernel_size, stride=stride, padding=padding,
               dilation=dilation)
        kh, kw = pair(kernel_size, "kernel_size", "Conv2d")
        self.in_channels = _count("Conv2d", "in_channels", in_channels)
        self.out_channels = _count("Conv2d", "out_channels", out_channels)
        self.kernel_size, self.stride, self.padding, self.dilation = (kh, kw), stride, padding, \
            dilation
        bound = 1 / math.sqrt(in_channels * kh * kw)
        self.weight = _uniform((out_channels, in_channels, kh, kw), bound)
        self.bias = _uniform((out_channels,), bound) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}"


class ConvTranspose2d(Module):
    """2-D transposed convolution; weight (in_channels, out_channels, kH, kW).

    PyTorch's initialisation takes fan_in from weight.shape[1] * kH * kW (out_channels here),
    and so do we. ``forward(x, output_size=None)`` may pick the output size.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True):
        super().__init__()
        _sizes("ConvTranspose2d", kernel_size=kernel_size, stride=stride, padding=padding,
               output_padding=output_padding, dilation=dilation)
        op_, s_, d_ = (pair(v, n, "ConvTranspose2d") for n, v in (
            ("output_padding", output_padding), ("stride", stride), ("dilation", dilation)))
        if any(o >= max(s, d) for o, s, d in zip(op_, s_, d_, strict=True)):
            raise ValueError(
                f"ConvTranspose2d: output_padding {output_padding} must be smaller than stride "
                f"{stride} or dilation {dilation} (it picks one of the output sizes a strided "
                f"convolution maps onto one input size; it does not add zeros)")
        kh, kw = pair(kernel_size, "kernel_size", "ConvTranspose2d")
        self.in_channels = _count("ConvTranspose2d", "in_channels", in_channels)
        self.out_channels = _count("ConvTranspose2d", "out_channels", out_channels)
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.output_padding, self.dilation = output_padding, dilation
        bound = 1 / math.sqrt(out_channels * kh * kw)
        self.weight = _uniform((in_channels, out_channels, kh, kw), bound)
        self.bias = _uniform((out_channels,), bound) if bias else None

    def forward(self, x, output_size=None):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, dilation=self.dilation,
                                  output_size=output_size)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}, " \
               f"output_padding={self.output_padding}"


# ---------------------------------------------------------------------- parameter-free layers
class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        _sizes("MaxPool2d", kernel_size=kernel_size, stride=stride, padding=padding,
               dilation=dilation)
        k, p_ = pair(kernel_size, "kernel_size", "MaxPool2d"), pair(padding, "padding", "MaxPool2d")
        if any(p > k // 2 for p, k in zip(p_, k, strict=True)):
            raise ValueError(f"MaxPool2d: padding {padding} must be at most half the kernel size "
                             f"{kernel_size}")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, " \
               f"return_indices={self.return_indices}"


class MaxUnpool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        _sizes("MaxUnpool2d", kernel_size=kernel_size, stride=stride, padding=padding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, indices, output_size=None):
        return F.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}"


class Upsample(Module):
    def __init__(self, size=None, scale_factor=None, mode="nearest"):
        super().__init__()
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is implemented, got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        if size is not None:
            _sizes("Upsample", size=size)
        else:
            scale_factor_pair("Upsample", scale_factor)
        self.size, self.scale_factor, self.mode = size, scale_factor, mode

    def forward(self, x):
        return F.upsample_nearest2d(x, scale_factor=self.scale_factor, size=self.size)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return f"{what}, mode='{self.mode}'"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """Flatten dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        shape = x.shape
        start = self.start_dim % len(shape)
        end = self.end_dim % len(shape)
        return x.reshape(shape[:start] + (-1,) + shape[end + 1:])


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``: (N, 784) -> (N, 1, 28, 28)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        shape = x.shape
        d = self.dim % len(shape)
        if int(np.prod(self.unflattened_size)) != shape[d]:
            raise ValueError(
                f"Unflatten: dimension {self.dim} has size {shape[d]}, which cannot be split "
                f"into {self.unflattened_size}"
            )
        return x.reshape(shape[:d] + self.unflattened_size + shape[d + 1:])


class Sequential(Module):
    """Modules applied in order: ``Sequential(m0, m1, ...)`` names them "0", "1", ...;
    ``Sequential(OrderedDict([("conv", m0), ("act", m1)]))`` gives them names (as in PyTorch).

    Only modules: a function such as ``F.relu`` goes in as its layer, ``nn.ReLU()``. Each layer
    takes one tensor, so a layer that returns several values (``MaxPool2d(...,
    return_indices=True)``) cannot feed the next one here: write a Module whose forward
    unpacks them.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            named = list(modules[0].items())
            where = "entry"
        else:
            named = [(str(i), m) for i, m in enumerate(modules)]
            where = "position"
        for position, (name, m) in enumerate(named):
            label = f"{where} {position}" + (f" ({name!r})" if where == "entry" else "")
            if not isinstance(name, str) or not name.isidentifier() and not name.isdigit():
                raise TypeError(f"Sequential: the name of {label} must be a string usable as "
                                f"an attribute name, got {name!r}")
            if not isinstance(m, Module):
                hint = ("; use its layer instead (e.g. nn.ReLU() for F.relu)"
                        if callable(m) else "")
                raise TypeError(f"Sequential: {label} is a {type(m).__name__}, not an "
                                f"nn.Module{hint}")
            setattr(self, name, m)

    def forward(self, x):
        for position, (name, m) in enumerate(self._modules.items()):
            if isinstance(x, (tuple, list)):
                before = list(self._modules.items())[position - 1]
                raise TypeError(
                    f"Sequential: layer {before[0]!r} ({type(before[1]).__name__}) returned a "
                    f"{type(x).__name__} of {len(x)} values, but layer {name!r} "
                    f"({type(m).__name__}) takes one tensor; unpack them in a Module's forward "
                    f"(e.g. y, indices = pool(x))"
                )
            x = m(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(OrderedDict(list(self._modules.items())[i]))
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
