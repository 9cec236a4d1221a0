"""npae.optim: SGD and Adam with PyTorch's update rules.

Both update parameters in place (``p.data``), skip parameters without a gradient, and expose
``state_dict()``/``load_state_dict()`` (plain arrays and numbers) so checkpoints can resume a run
exactly.
"""

from __future__ import annotations

import math

import numpy as np

from npae.engine.dispatch import (
    array_module,
    contiguous,
    device_of,
    is_array,
    kernels_for,
    to_device,
)
from npae.engine.tensor import Tensor


class Optimizer:
    defaults: dict = {}

    def __init__(self, params, **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        seen = {}
        for i, p in enumerate(self.params):
            if id(p) in seen:
                raise ValueError(
                    f"{type(self).__name__}: parameter {i} (shape {p.shape}) is the same tensor "
                    f"as parameter {seen[id(p)]}; each step would update it twice. Pass each "
                    f"parameter once (model.parameters() already does)"
                )
            seen[id(p)] = i
        for name, value in hyper.items():
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"{type(self).__name__}: {name} must be >= 0, got {value}")
        self.hyper = dict(hyper)
        self.state = [{} for _ in self.params]

    @property
    def lr(self):
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value):
        self.hyper["lr"] = value

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is not None:
                _follow(self.state[i], p.device)
                # a gradient made under create_graph=True is a Tensor: the step uses its value
                grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                self._update(p, grad, self.state[i])
                p._bump_version()  # in place: a graph that saved p must not backward through it

    def _update(self, p, grad, state):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """{'hyper': {...}, 'state': [{name: array or number}, ...]} (one entry per parameter)."""
        return {
            "hyper": dict(self.hyper),
            "state": [{k: (v.copy() if is_array(v) else v) for k, v in s.items()}
                      for s in self.state],
        }

    def load_state_dict(self, state_dict: dict):
        state = state_dict["state"]
        if len(state) != len(self.params):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state for {len(state)} parameters, "
                f"but this optimizer has {len(self.params)}"
            )
        for i, (s, p) in enumerate(zip(state, self.params, strict=True)):
            for k, v in s.items():
                if is_array(v) and v.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: parameter {i} state {k!r} has "
                        f"shape {v.shape}, the parameter {p.shape}"
                    )
        self.hyper.update(state_dict["hyper"])
        # copies on each parameter's device, in its dtype
        self.state = [{k: (to_device(v, p.device).astype(p.dtype, copy=True) if is_array(v) else v)
                       for k, v in s.items()} for s, p in zip(state, self.params, strict=True)]


def _follow(state: dict, device: str) -> None:
    """Move a parameter's state arrays to its device (after Module.to, say)."""
    for k, v in state.items():
        if is_array(v) and device_of(v) != device:
            state[k] = to_device(v, device)


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule:

        g = grad + weight_decay * p
        buf = g (first step), then buf = momentum * buf + (1 - dampening) * g
        g = g + momentum * buf (nesterov) or buf
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay)
        self.nesterov = nesterov

    def _update(self, p, grad, state):
        h = self.hyper
        g = grad
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p.data
        if h["momentum"]:
            if "momentum_buffer" not in state:
                buf = g.astype(p.dtype, copy=True)
            else:
                buf = state["momentum_buffer"]
                buf *= h["momentum"]
                buf += (1 - h["dampening"]) * g
            state["momentum_buffer"] = buf
            g = g + h["momentum"] * buf if self.nesterov else buf
        p.data -= (h["lr"] * g).astype(p.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule, with bias correction:

        g = grad + weight_decay * p           (L2 penalty, as torch.optim.Adam)
        m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    ``fused=True`` (the default) runs each parameter's update as one kernel pass
    (``npae.kernels.adam_step``: every element read and written once, no temporaries);
    ``fused=False`` runs the NumPy lines of ``_update_readable``, the rule as written above.
    Both give the same numbers up to rounding (tests/test_optim.py checks both).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 fused=True):
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        super().__init__(params, lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=weight_decay)
        self.fused = bool(fused)

    def _update(self, p, grad, state):
        h = self.hyper
        if not state:
            state["step"] = 0
            state["exp_avg"] = array_module(p.data).zeros_like(p.data)
            state["exp_avg_sq"] = array_module(p.data).zeros_like(p.data)
        state["step"] += 1
        if not self.fused:
            return self._update_readable(p, grad, state)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if not (p.data.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous
                and m.dtype == p.dtype and v.dtype == p.dtype):
            return self._update_readable(p, grad, state)
        kernels_for(p.data).adam_step(p.data, contiguous(grad, p.dtype), m, v, h["lr"],
                                      h["beta1"], h["beta2"], h["eps"], h["weight_decay"],
                                      state["step"])

    def _update_readable(self, p, grad, state):
        h = self.hyper
        t = state["step"]
        g = grad
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= h["beta1"]
        m += (1 - h["beta1"]) * g
        v *= h["beta2"]
        v += (1 - h["beta2"]) * (g * g)
        bias1 = 1 - h["beta1"] ** t
        bias2 = 1 - h["beta2"] ** t
        step_size = h["lr"] / bias1
        denom = np.sqrt(v) / math.sqrt(bias2) + h["eps"]  # Python floats: p's dtype throughout
        p.data -= step_size * (m / denom)
