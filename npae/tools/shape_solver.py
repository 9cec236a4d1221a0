"""``npae shapes``: every intermediate shape of a layer stack, and how a decoder gets back.

A stack is written as comma-separated layers (or taken from a model of npae.models):

    conv:OUT:K[:S[:P[:D]]]      Conv2d to OUT channels, kernel K, stride S (1), padding P (0),
                                dilation D (1)
    pool:K[:S[:P]]              MaxPool2d, stride S (default K), padding P (0)
    tconv:OUT:K[:S[:P[:OP]]]    ConvTranspose2d, stride S (1), padding P (0), output_padding OP
    unpool:K[:S[:P]]            MaxUnpool2d (default output size)
    up:SCALE                    nearest upsampling by SCALE
    relu, sigmoid, tanh, leaky_relu    (shape unchanged)
    flatten, linear:OUT, unflatten:C:H:W

K, S, P, D, OP are an int or HxW (``3x1``). Every size comes from npae/engine/shapes.py, so an
impossible layer fails with the formula and your numbers. Downsampling layers (pooling, strided
convolutions) are paired with the upsampling layers that undo them, innermost first, as in an
autoencoder; for each pair the solver lists the settings that land on the size the encoder
started from, and for each downsampled size the input sizes that lead to it.

    >>> plan = solve("conv:16:3:1:1,pool:2,conv:4:3:1:1,pool:2", (1, 28, 28))
    >>> [step.shape for step in plan.steps]
    [(16, 28, 28), (16, 14, 14), (4, 14, 14), (4, 7, 7)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from npae.engine.shapes import (
    conv2d_geometry,
    conv2d_size_text,
    conv_transpose2d_geometry,
    conv_transpose2d_out,
    conv_transpose2d_size_text,
    parse_hw,
    pool2d_geometry,
    pool2d_size_text,
    unpool2d_size,
    unpool2d_size_text,
    upsample_nearest2d_plan,
    upsample_size_text,
)
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw

ELEMENTWISE = ("relu", "sigmoid", "tanh", "leaky_relu")
DOWN = ("conv", "pool")
UP = ("tconv", "unpool", "up")
GRAMMAR = ("conv:OUT:K[:S[:P[:D]]], pool:K[:S[:P]], tconv:OUT:K[:S[:P[:OP]]], "
           "unpool:K[:S[:P]], up:SCALE, relu, sigmoid, tanh, leaky_relu, flatten, linear:OUT, "
           "unflatten:C:H:W")


@dataclass
class Layer:
    kind: str
    spec: str
    out: int | None = None  # channels (conv, tconv) or features (linear)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    scale: float = 1.0
    shape: tuple[int, ...] = ()  # unflatten's (C, H, W)


@dataclass
class Step:
    index: int
    layer: Layer
    before: tuple[int, ...]
    shape: tuple[int, ...]
    formula: list[str] = field(default_factory=list)  # per axis, or one line for both
    downsamples: bool = False
    sources: list[list[int]] | None = None  # per axis: the input sizes giving this output size


@dataclass
class Match:
    """An upsampling layer and the downsampling layer it undoes."""

    up: Step
    down: Step | None
    target: tuple[int, int] | None
    choices: list[str]
    reaches: bool | None


@dataclass
class Plan:
    input: tuple[int, ...]
    steps: list[Step]
    matches: list[Match]
    undo: list[tuple[Step, list[str]]]  # downsampling layers no decoder layer undoes


# ------------------------------------------------------------------------------ parsing
def _ints(text: str, what: str, spec: str) -> tuple[int, int]:
    try:
        return parse_hw(text)
    except ValueError:
        raise ValueError(f"layer {spec!r}: {what} must be an int or HxW, got {text!r}") from None


def parse_layer(spec: str) -> Layer:
    spec = spec.strip()
    name, *args = spec.split(":")
    name = {"convt": "tconv", "deconv": "tconv", "upsample": "up", "maxpool": "pool",
            "maxunpool": "unpool"}.get(name.lower(), name.lower())
    arity = {"conv": (2, 5), "pool": (1, 3), "tconv": (2, 5), "unpool": (1, 3), "up": (1, 1),
             "linear": (1, 1), "unflatten": (3, 3), "flatten": (0, 0)}
    arity.update({e: (0, 0) for e in ELEMENTWISE})
    if name not in arity:
        raise ValueError(f"unknown layer {spec!r}; layers are: {GRAMMAR}")
    lo, hi = arity[name]
    if not lo <= len(args) <= hi:
        raise ValueError(f"layer {spec!r}: {name} takes {lo}..{hi} numbers after the name "
                         f"({GRAMMAR})")
    layer = Layer(name, spec)
    if name in ("conv", "tconv", "linear"):
        what = "feature" if name == "linear" else "channel"
        try:
            layer.out = int(args[0])
        except ValueError:
            raise ValueError(f"layer {spec!r}: the {what} count must be an int, got "
                             f"{args[0]!r}") from None
        if layer.out < 1:
            raise ValueError(f"layer {spec!r}: the {what} count must be a positive int, got "
                             f"{args[0]!r}")
        args = args[1:]
    if name in ("conv", "tconv", "pool", "unpool"):
        names = ["kernel", "stride", "padding", "dilation" if name == "conv" else
                 "output_padding"]
        values = {n: _ints(a, n, spec) for n, a in zip(names, args, strict=False)}
        layer.kernel = values["kernel"]
        default_stride = layer.kernel if name in ("pool", "unpool") else (1, 1)
        layer.stride = values.get("stride", default_stride)
        layer.padding = values.get("padding", (0, 0))
        layer.dilation = values.get("dilation", (1, 1))
        layer.output_padding = values.get("output_padding", (0, 0))
    elif name == "up":
        try:
            layer.scale = float(args[0])
        except ValueError:
            raise ValueError(f"layer {spec!r}: SCALE must be a number, got {args[0]!r}") from None
    elif name == "unflatten":
        try:
            layer.shape = tuple(int(a) for a in args)
        except ValueError:
            layer.shape = (0,)
        if min(layer.shape) < 1:
            raise ValueError(f"layer {spec!r}: unflatten:C:H:W takes three positive ints")
    return layer


def parse_layers(text: str) -> list[Layer]:
    specs = [s for s in text.split(",") if s.strip()]
    if not specs:
        raise ValueError(f"--layers is empty; give comma-separated layers: {GRAMMAR}")
    return [parse_layer(s) for s in specs]


def layers_from_model(name: str) -> list[Layer]:
    """The layer stack of one of npae.models, in the order its forward applies it, read from
    the model's description (npae/models/architectures.py)."""
    from npae import models, nn
    from npae.models.architectures import build

    stack = models.architecture(name).stack
    if stack is None:
        raise ValueError(f"model {name!r} samples its code in forward and has no plain layer "
                         f"stack; give its layers with --layers")
    # each layer built as the model builds it, so its settings are read as the model has them
    return [_layer_of(build(layer, nn)) for layer in stack]


def _layer_of(m) -> Layer:
    from npae import nn
    from npae.engine.shapes import pair

    def p(v, what):
        return pair(v, what, type(m).__name__)

    if isinstance(m, nn.Conv2d):
        spec = f"conv:{m.out_channels}:{hp(m.kernel_size)}:{hp(p(m.stride, 's'))}:" \
               f"{hp(p(m.padding, 'p'))}"
        return Layer("conv", spec, m.out_channels, m.kernel_size, p(m.stride, "stride"),
                     p(m.padding, "padding"), p(m.dilation, "dilation"))
    if isinstance(m, nn.ConvTranspose2d):
        spec = f"tconv:{m.out_channels}:{hp(m.kernel_size)}:{hp(p(m.stride, 's'))}:" \
               f"{hp(p(m.padding, 'p'))}:{hp(p(m.output_padding, 'op'))}"
        return Layer("tconv", spec, m.out_channels, m.kernel_size, p(m.stride, "stride"),
                     p(m.padding, "padding"), p(m.dilation, "dilation"),
                     p(m.output_padding, "output_padding"))
    if isinstance(m, (nn.MaxPool2d, nn.MaxUnpool2d)):
        kind = "pool" if isinstance(m, nn.MaxPool2d) else "unpool"
        k = p(m.kernel_size, "kernel_size")
        s = k if m.stride is None else p(m.stride, "stride")
        return Layer(kind, f"{kind}:{hp(k)}:{hp(s)}:{hp(p(m.padding, 'p'))}", None, k, s,
                     p(m.padding, "padding"))
    if isinstance(m, nn.Upsample):
        return Layer("up", f"up:{m.scale_factor:g}", scale=float(m.scale_factor))
    if isinstance(m, nn.Linear):
        return Layer("linear", f"linear:{m.out_features}", m.out_features)
    if isinstance(m, nn.Flatten):
        return Layer("flatten", "flatten")
    if isinstance(m, nn.Unflatten):
        return Layer("unflatten", "unflatten:" + ":".join(str(v) for v in m.unflattened_size),
                     shape=m.unflattened_size)
    name = type(m).__name__.lower().replace("leakyrelu", "leaky_relu")
    if name in ELEMENTWISE:
        return Layer(name, name)
    raise ValueError(f"npae shapes does not know the layer {type(m).__name__}")


# ------------------------------------------------------------------------------ one layer
def _apply(layer: Layer, shape: tuple[int, ...], where: str):
    """(output shape, per-axis formula texts) through npae/engine/shapes.py; errors name the
    layer."""
    kind = layer.kind
    if kind in ELEMENTWISE:
        return shape, []
    if kind == "flatten":
        return (math.prod(shape),), []
    if kind == "linear":
        if len(shape) != 1:
            raise ValueError(f"{where}: linear needs a flat input; add flatten before it "
                             f"(the input is {shape})")
        return (layer.out,), []
    if kind == "unflatten":
        if len(shape) != 1 or math.prod(layer.shape) != shape[0]:
            raise ValueError(f"{where}: cannot unflatten {shape} into {layer.shape}")
        return tuple(layer.shape), []
    if len(shape) != 3:
        raise ValueError(f"{where}: needs a (channels, height, width) input, got {shape}; add "
                         f"unflatten:C:H:W before it")
    c, h, w = shape
    op = f"{where} ({layer.spec})"
    if kind == "conv":
        g = conv2d_geometry(op, (h, w), layer.kernel, layer.stride, layer.padding, layer.dilation)
        texts = [conv2d_size_text(n, g.args[a], g.args[2 + a], g.args[4 + a], g.args[6 + a])[0]
                 for a, n in enumerate((h, w))]
        return (layer.out, g.oh, g.ow), texts
    if kind == "pool":
        g = pool2d_geometry(op, (h, w), layer.kernel, layer.stride, layer.padding, (1, 1), False)
        texts = [pool2d_size_text(n, g.args[a], g.args[2 + a], g.args[4 + a], 1)[0]
                 for a, n in enumerate((h, w))]
        return (c, g.oh, g.ow), texts
    if kind == "tconv":
        g, opad = conv_transpose2d_geometry(op, (h, w), layer.kernel, layer.stride, layer.padding,
                                            layer.output_padding, layer.dilation)
        texts = [conv_transpose2d_size_text(n, g.args[a], g.args[2 + a], g.args[4 + a],
                                            g.args[6 + a], opad[a])[0]
                 for a, n in enumerate((h, w))]
        return (layer.out, g.oh, g.ow), texts
    if kind == "unpool":
        oh, ow = unpool2d_size(op, (h, w), layer.kernel, layer.stride, layer.padding)
        texts = [unpool2d_size_text(n, layer.kernel[a], layer.stride[a], layer.padding[a])[0]
                 for a, n in enumerate((h, w))]
        return (c, oh, ow), texts
    if kind == "up":
        oh, ow, _, _ = upsample_nearest2d_plan(op, (h, w), scale_factor=layer.scale)
        return (c, oh, ow), [upsample_size_text(n, layer.scale)[0] for n in (h, w)]
    raise AssertionError(kind)


def _axis_out(layer: Layer, n: int, axis: int) -> int | None:
    """The layer's output size along one axis for input size n, or None if n is impossible."""
    a = axis

    def square(v):
        return (v[a], v[a])

    try:
        if layer.kind == "conv":
            g = conv2d_geometry("", (n, n), square(layer.kernel), square(layer.stride),
                                square(layer.padding), square(layer.dilation))
        else:
            g = pool2d_geometry("", (n, n), square(layer.kernel), square(layer.stride),
                                square(layer.padding), (1, 1), False)
    except ValueError:
        return None
    return g.oh


def sources(layer: Layer, n_in: int, n_out: int, axis: int) -> list[int]:
    """Every input size that this downsampling layer maps to n_out (n_in is one of them)."""
    hi = (n_out + 1) * layer.stride[axis] + layer.dilation[axis] * layer.kernel[axis] + 1
    return [n for n in range(1, max(hi, n_in + 1)) if _axis_out(layer, n, axis) == n_out]


# ------------------------------------------------------------------------------ undoing
def tconv_choices(n_in, target, k, s, d=1) -> list[tuple[int, int]]:
    """(padding, output_padding) pairs with which a transposed convolution of kernel k, stride
    s, dilation d turns n_in into target (output_padding < max(s, d), as shapes.py requires)."""
    full = conv_transpose2d_out(n_in, k, s, 0, d, 0)
    limit = max(s, d)
    # beyond this padding even the largest output_padding leaves no output pixel
    return [(p, op_) for p in range((full + limit) // 2 + 1) for op_ in range(limit)
            if conv_transpose2d_out(n_in, k, s, p, d, op_) == target]


def unpool_choices(n_in, target, k, s, p) -> tuple[int, list[int], bool]:
    """(default size, sizes output_size may pick, whether target is one of them)."""
    default = unpool2d_size("", (n_in, n_in), (k, k), (s, s), (p, p))[0]
    allowed = [v for v in range(default - s + 1, default + s) if v > 0]
    return default, allowed, target in allowed


def _tconv_text(n_in, target, k, s, d, axis_name="") -> str:
    found = tconv_choices(n_in, target, k, s, d)
    if not found:
        return (f"no (padding, output_padding) takes {n_in} to {target} with kernel {k}, stride "
                f"{s}{axis_name}")
    listed = ", ".join(f"({p}, {op_})" for p, op_ in found)
    return (f"kernel {k}, stride {s}: (padding, output_padding) = {listed} turn {n_in} into "
            f"{target}{axis_name}")


def _unpool_text(n_in, target, k, s, p, axis_name="") -> str:
    default, allowed, ok = unpool_choices(n_in, target, k, s, p)
    if target == default:
        return f"unpool:{k}:{s}:{p} gives {default} by default{axis_name}"
    if ok:
        return (f"unpool:{k}:{s}:{p} gives {default} by default; output_size={target} picks "
                f"{target} (allowed: {allowed[0]}..{allowed[-1]}){axis_name}")
    return (f"unpool:{k}:{s}:{p} cannot reach {target} from {n_in}: its output_size must lie in "
            f"{allowed[0]}..{allowed[-1]}{axis_name}")


def _up_text(n_in, target, axis_name="") -> str:
    if target % n_in == 0:
        return f"up:{target // n_in} gives {target}{axis_name}"
    return (f"no integer scale takes {n_in} to {target}; upsample with size={target} "
            f"instead{axis_name}")


def _per_axis(texts_h: list[str], texts_w: list[str]) -> list[str]:
    if texts_h == texts_w:
        return texts_h
    return [t + " (height)" for t in texts_h] + [t + " (width)" for t in texts_w]


def _undo_choices(layer: Layer, n_in: tuple[int, int], target: tuple[int, int]) -> list[str]:
    """What an upsampling layer like ``layer`` needs to turn n_in into target."""
    per = []
    for a in (0, 1):
        k, s, p = layer.kernel[a], layer.stride[a], layer.padding[a]
        if layer.kind == "tconv":
            per.append([_tconv_text(n_in[a], target[a], k, s, layer.dilation[a])])
        elif layer.kind == "unpool":
            per.append([_unpool_text(n_in[a], target[a], k, s, p)])
        else:
            per.append([_up_text(n_in[a], target[a])])
    return _per_axis(*per)


def _mirror_choices(down: Layer, n_in: tuple[int, int], target: tuple[int, int]) -> list[str]:
    """Decoder layers that undo a downsampling layer: the mirrored transposed convolution, the
    unpooling (for a pool), and nearest upsampling."""
    per = []
    for a in (0, 1):
        k, s, p, d = down.kernel[a], down.stride[a], down.padding[a], down.dilation[a]
        texts = ["tconv " + _tconv_text(n_in[a], target[a], k, s, d)]
        if down.kind == "pool":
            texts.append(_unpool_text(n_in[a], target[a], k, s, p))
        texts.append(_up_text(n_in[a], target[a]))
        per.append(texts)
    return _per_axis(*per)


# ------------------------------------------------------------------------------ the stack
def solve(layers, input_shape) -> Plan:
    """Walk ``layers`` (a spec string or a list of Layer) from ``input_shape`` (C, H, W)."""
    if isinstance(layers, str):
        layers = parse_layers(layers)
    shape = tuple(input_shape)
    steps, matches, open_downs = [], [], []
    for i, layer in enumerate(layers, start=1):
        where = f"layer {i}"
        out, texts = _apply(layer, shape, where)
        step = Step(i, layer, shape, out, texts)
        if layer.kind in DOWN and len(out) == 3 and out[1:] != shape[1:] and (
            out[1] < shape[1] or out[2] < shape[2]
        ):
            step.downsamples = True
            step.sources = [sources(layer, shape[1 + a], out[1 + a], a) for a in (0, 1)]
            open_downs.append(step)
        if layer.kind in UP:
            down = open_downs.pop() if open_downs else None
            target = down.before[1:] if down else None
            choices = _undo_choices(layer, shape[1:], target) if target else []
            reaches = None if target is None else tuple(out[1:]) == tuple(target)
            matches.append(Match(step, down, target, choices, reaches))
        steps.append(step)
        shape = out
    undo = [(d, _mirror_choices(d.layer, d.shape[1:], d.before[1:])) for d in reversed(open_downs)]
    return Plan(tuple(input_shape), steps, matches, undo)


def _shape_text(shape) -> str:
    if len(shape) == 3:
        return f"{shape[0]} x {shape[1]}x{shape[2]}"
    return f"{shape[0]} features"


def report(plan: Plan) -> str:
    """The plan as text: shapes, where each downsampled size comes from, how to get back."""
    lines = [f"input: {_shape_text(plan.input)}  (channels x HxW)", ""]
    width = max(len(s.layer.spec) for s in plan.steps)
    for s in plan.steps:
        lines.append(f"{s.index:>3}  {s.layer.spec:<{width}}  -> {_shape_text(s.shape)}")
        if s.formula:
            if s.formula[0] == s.formula[1] and s.before[1] == s.before[2]:
                lines.append(f"{'':>5}{s.formula[0]}   (height and width)")
            else:
                lines.append(f"{'':>5}height: {s.formula[0]}")
                lines.append(f"{'':>5}width:  {s.formula[1]}")
        if s.downsamples:
            for a, name in ((0, "height"), (1, "width")):
                if a == 1 and s.sources[0] == s.sources[1] and s.before[1] == s.before[2]:
                    break
                src = s.sources[a]
                label = "" if s.sources[0] == s.sources[1] and s.before[1] == s.before[2] \
                    else f" ({name})"
                if len(src) == 1:
                    how = f"only from input size {src[0]}"
                elif len(src) == 2:
                    how = f"from input size {src[0]} or {src[1]}"
                else:
                    how = f"from any input size in {src[0]}..{src[-1]}"
                lines.append(f"{'':>5}{s.shape[1 + a]} comes {how}{label} (the floor drops "
                             "the rest)" if len(src) > 1 else f"{'':>5}{s.shape[1 + a]} comes "
                             f"{how}{label}")
    final = plan.steps[-1].shape if plan.steps else plan.input
    lines.append("")
    lines.append(f"output: {_shape_text(final)}")
    if plan.matches:
        lines += ["", "decoder layers and the size each must get back to:"]
        for m in plan.matches:
            s = m.up
            what = (f"undoes layer {m.down.index} ({m.down.layer.spec}, "
                    f"{hw(m.down.before[1:])} -> {hw(m.down.shape[1:])})" if m.down else
                    "no downsampling layer left to undo")
            lines.append(f"  layer {s.index} {s.layer.spec}: {hw(s.before[1:])} -> "
                         f"{hw(s.shape[1:])}; {what}")
            if m.target is None:
                continue
            verdict = "reaches" if m.reaches else "does NOT reach"
            lines.append(f"    target {hw(m.target)}: this layer {verdict} it")
            lines += [f"    - {c}" for c in m.choices]
    if plan.undo:
        lines += ["", "to get back: decoder layers that undo each downsampling layer "
                  "(innermost first):"]
        for d, choices in plan.undo:
            lines.append(f"  layer {d.index} {d.layer.spec}: {hw(d.shape[1:])} -> back to "
                         f"{hw(d.before[1:])}")
            lines += [f"    - {c}" for c in choices]
    if len(plan.input) == 3 and len(final) == 3 and plan.matches and \
            tuple(final[1:]) != tuple(plan.input[1:]):
        lines += ["", f"note: the output {hw(final[1:])} differs from the input "
                  f"{hw(plan.input[1:])}"]
    return "\n".join(lines) + "\n"
