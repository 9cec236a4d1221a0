"""The operations the article's models use, at batch 128, with their work counted.

``flops`` and ``bytes`` are the least any implementation must do: the multiply-adds of the
definition (2 FLOPs each) and one read of every input plus one write of every output. The
forward+backward pass computes the input gradient and the weight gradient too (each costs as
much arithmetic as the forward), reading the upstream gradient and the saved inputs.
"""

from dataclasses import dataclass, field

F32 = 4
I64 = 8


@dataclass
class OpCase:
    name: str
    op: str  # npae.functional / PyTorch functional name
    x: tuple  # input shape (for max_unpool2d: the pooled values' shape)
    w: tuple | None = None
    params: dict = field(default_factory=dict)

    @property
    def out_shape(self):
        n, c, h, w = self.x if len(self.x) == 4 else (self.x[0], 0, 0, 0)
        p = self.params
        if self.op == "conv2d":
            k, s, pad = self.w[2], p.get("stride", 1), p.get("padding", 0)
            o = (h + 2 * pad - k) // s + 1
            return (n, self.w[0], o, (w + 2 * pad - k) // s + 1)
        if self.op == "conv_transpose2d":
            k, s, pad, op = self.w[2], p.get("stride", 1), p.get("padding", 0), \
                p.get("output_padding", 0)
            return (n, self.w[1], (h - 1) * s - 2 * pad + k + op, (w - 1) * s - 2 * pad + k + op)
        if self.op == "max_pool2d":
            k = p["kernel_size"]
            return (n, c, h // k, w // k)
        if self.op == "max_unpool2d":
            k = p["kernel_size"]
            return (n, c, h * k, w * k)
        if self.op == "upsample_nearest2d":
            s = p["scale_factor"]
            return (n, c, h * s, w * s)
        if self.op == "linear_ae":
            return self.x
        raise ValueError(self.op)

    def flops(self, backward: bool) -> float:
        out = _size(self.out_shape)
        if self.op == "conv2d":
            f = 2.0 * out * self.w[1] * self.w[2] * self.w[3]
        elif self.op == "conv_transpose2d":
            f = 2.0 * _size(self.x) * self.w[1] * self.w[2] * self.w[3]
        elif self.op == "linear_ae":
            f = 2.0 * self.x[0] * 2 * 784 * 32
        else:
            return 0.0  # data movement only
        return 3 * f if backward else f

    def bytes(self, backward: bool) -> float:
        x, y = _size(self.x) * F32, _size(self.out_shape) * F32
        w = _size(self.w) * F32 if self.w else 0
        if self.op == "linear_ae":
            w, mid = 2 * 784 * 32 * F32, self.x[0] * 32 * F32
            fwd = x + w + 2 * mid + y
            return fwd + (y + w + x + 2 * mid + x + w) if backward else fwd
        idx = 0
        if self.op == "max_pool2d":
            idx = _size(self.out_shape) * I64
        elif self.op == "max_unpool2d":
            idx = _size(self.x) * I64
        fwd = x + w + y + idx
        if not backward:
            return fwd
        # backward: read gy (and idx, or x and w), write gx (and gw)
        return fwd + y + idx + x + (2 * w + x if w else 0)


def _size(shape):
    n = 1
    for d in shape or ():
        n *= d
    return n


def op_cases(batch=128):
    n = batch
    return [
        OpCase("conv2d 1->16 3x3 p1, 28x28", "conv2d", (n, 1, 28, 28), (16, 1, 3, 3),
               dict(stride=1, padding=1)),
        OpCase("conv2d 16->4 3x3 p1, 14x14", "conv2d", (n, 16, 14, 14), (4, 16, 3, 3),
               dict(stride=1, padding=1)),
        OpCase("conv2d 16->32 3x3 s2 p1, 28x28", "conv2d", (n, 16, 28, 28), (32, 16, 3, 3),
               dict(stride=2, padding=1)),
        OpCase("conv_transpose2d 4->16 2x2 s2, 7x7", "conv_transpose2d", (n, 4, 7, 7),
               (4, 16, 2, 2), dict(stride=2, padding=0, output_padding=0)),
        OpCase("conv_transpose2d 16->1 2x2 s2, 14x14", "conv_transpose2d", (n, 16, 14, 14),
               (16, 1, 2, 2), dict(stride=2, padding=0, output_padding=0)),
        OpCase("conv_transpose2d 32->16 3x3 s2 p1 op1, 14x14", "conv_transpose2d",
               (n, 32, 14, 14), (32, 16, 3, 3), dict(stride=2, padding=1, output_padding=1)),
        OpCase("max_pool2d 2x2 + indices, 16x28x28", "max_pool2d", (n, 16, 28, 28), None,
               dict(kernel_size=2, stride=2)),
        OpCase("max_unpool2d 2x2, 16x14x14", "max_unpool2d", (n, 16, 14, 14), None,
               dict(kernel_size=2, stride=2)),
        OpCase("upsample nearest x2, 4x7x7", "upsample_nearest2d", (n, 4, 7, 7), None,
               dict(scale_factor=2)),
        OpCase("upsample nearest x2, 16x14x14", "upsample_nearest2d", (n, 16, 14, 14), None,
               dict(scale_factor=2)),
        OpCase("linear 784->32 ReLU ->784", "linear_ae", (n, 784), None, {}),
    ]
