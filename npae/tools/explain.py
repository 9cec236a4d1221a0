"""``npae explain OP``: an operation worked through by hand, and checked against npae's kernel.

Each explanation runs the real op (``npae.functional``, hence the Numba kernels) on one small
single-channel image, then shows the arithmetic that produces its output: the windows a
convolution reads and their sums, the kernel copies a transposed convolution adds up, the
maxima a pooling keeps and where unpooling puts them back, the source pixel of every upsampled
pixel, the column matrix of im2col. The shown arithmetic is computed here from each op's
definition, independently of the kernels, and every explanation ends with a ``check:`` line that
compares it with the kernel's output (``Explanation.ok`` is False if they differ). Output sizes
come from npae/engine/shapes.py, the one place that holds that arithmetic.

    >>> e = explain("conv2d", Settings(input=(4, 4), kernel=(3, 3), stride=(2, 2), padding=(1, 1)))
    >>> e.output_hw, e.ok
    ((2, 2), True)
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np

import npae.functional as F
from npae import kernels as K
from npae.engine.shapes import (
    FORMULAS,
    conv2d_geometry,
    conv2d_size_text,
    conv_transpose2d_geometry,
    conv_transpose2d_size_text,
    pool2d_geometry,
    pool2d_size_text,
    unpool2d_size,
    unpool2d_size_text,
    upsample_nearest2d_plan,
    upsample_size_text,
)
from npae.engine.shapes import format_hp as hp
from npae.engine.shapes import format_hw as hw
from npae.engine.tensor import Tensor, no_grad
from npae.training.figures import overlap_count

OPS = ("conv2d", "conv-transpose2d", "max-pool2d", "max-unpool2d", "upsample-nearest2d",
       "im2col")

# an explanation lists every output element up to this many; the check always covers all of them
MAX_LISTED = 64
# --matrix prints one column per input pixel: beyond this the matrix is too wide to read
MAX_MATRIX_COLUMNS = 25
MAX_MATRIX_ROWS = 64
WIDTH = 88  # prose and side-by-side grids wrap to stay within this many columns


@dataclass
class Settings:
    """The options of ``npae explain``; None means the op's default (PyTorch's where it has one)."""

    input: tuple[int, int] | None = None
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    output_padding: tuple[int, int] = (0, 0)
    scale: float = 2.0
    seed: int = 0
    values: list[float] | None = None
    weights: list[float] | None = None
    matrix: bool = False


@dataclass
class Explanation:
    """The text, the output size, and whether every check passed; ``arrays`` feeds the figure."""

    op: str
    lines: list[str]
    output_hw: tuple[int, int]
    ok: bool
    arrays: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def explain(op: str, settings: Settings | None = None) -> Explanation:
    """Work ``op`` (one of OPS) through by hand on one image; see the module docstring."""
    if op not in OPS:
        raise ValueError(f"explain: unknown operation {op!r}; choose one of: {', '.join(OPS)}")
    s = settings or Settings()
    with no_grad():
        e = _EXPLAINERS[op](s)
    e.lines = _wrap_prose(e.lines)
    return e


def _wrap_prose(lines) -> list[str]:
    """Wrap long prose lines to WIDTH; grids and matrices (aligned with runs of spaces) stay."""
    out = []
    for line in lines:
        body = line.lstrip(" ")
        if len(line) <= WIDTH or "  " in body or body.startswith("check"):
            out.append(line)
            continue
        indent = line[: len(line) - len(body)]
        out += textwrap.wrap(body, WIDTH, initial_indent=indent,
                             subsequent_indent=indent, break_on_hyphens=False)
    return out


# ------------------------------------------------------------------------------ formatting
def num(v) -> str:
    """A value as a reader writes it: 3, -2, 0.25 (integers without a decimal point)."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"




def _cells(a, blank=None) -> list[list[str]]:
    a = np.asarray(a, dtype=object)
    return [["." if blank is not None and blank[i, j] else
             (a[i, j] if isinstance(a[i, j], str) else num(a[i, j]))
             for j in range(a.shape[1])] for i in range(a.shape[0])]


def grid(a, blank=None, width=None) -> list[str]:
    """Rows of a 2-D array, right-aligned columns; cells where ``blank`` is True show '.'."""
    cells = _cells(a, blank)
    width = width or max((len(c) for row in cells for c in row), default=1)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def side_by_side(blocks, joiners=None, gap=4) -> list[str]:
    """Blocks [(title, lines), ...] next to each other; ``joiners`` (one per gap, e.g. '*' and
    '=') are written between the blocks on their middle row."""
    height = max(len(lines) for _, lines in blocks)
    widths = [max([len(title)] + [len(x) for x in lines]) for title, lines in blocks]
    mid = (height - 1) // 2 + 1  # +1: the title row comes first
    out = []
    for r in range(height + 1):
        parts = []
        for b, ((title, lines), w) in enumerate(zip(blocks, widths, strict=True)):
            cell = title if r == 0 else (lines[r - 1] if r - 1 < len(lines) else "")
            parts.append(cell.ljust(w))
            if b < len(blocks) - 1:
                sym = joiners[b] if joiners and r == mid else ""
                parts.append(sym.center(gap))
        out.append("".join(parts).rstrip())
    return out


def wrapped(blocks, gap=4, indent="  ") -> list[str]:
    """Blocks side by side, as many to a row as fit in WIDTH columns, rows separated by a blank."""
    out, row, used = [], [], 0
    for title, lines in blocks:
        w = max([len(title)] + [len(x) for x in lines])
        if row and used + gap + w > WIDTH - len(indent):
            out += [indent + x for x in side_by_side(row, gap=gap)] + [""]
            row, used = [], 0
        used += (gap if row else 0) + w
        row.append((title, lines))
    if row:
        out += [indent + x for x in side_by_side(row, gap=gap)]
    return out


def indented(lines, indent="  ") -> list[str]:
    return [indent + x for x in lines]


def span(positions) -> str:
    """[-1, 0, 1] -> '-1..1'; [0, 2, 4] -> '0, 2, 4'."""
    p = list(positions)
    if len(p) > 1 and all(b - a == 1 for a, b in zip(p, p[1:], strict=False)):
        return f"{p[0]}..{p[-1]}"
    return ", ".join(str(v) for v in p)


def sum_text(terms) -> str:
    """['3', '-4', '2'] -> '3 - 4 + 2' (terms already formatted)."""
    if not terms:
        return "0"
    out = terms[0]
    for t in terms[1:]:
        out += f" - {t[1:]}" if t.startswith("-") else f" + {t}"
    return out


def product(a, b) -> str:
    """'3*-2' reads badly: '3*(-2)'."""
    sb = num(b)
    return f"{num(a)}*{'(' + sb + ')' if sb.startswith('-') else sb}"


def _max_diff(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _agree(a, b) -> bool:
    """Equal up to float64 rounding of a differently ordered sum (exact for integer values)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    return _max_diff(a, b) <= 1e-12 * scale * max(1, a.size)


def _check_line(what: str, hand, kernel_out, source: str) -> tuple[str, bool]:
    ok = _agree(hand, kernel_out)
    if ok:
        diff = _max_diff(hand, kernel_out)
        how = "exactly" if diff == 0 else f"to {diff:.1e} (float64 rounding)"
        return f"check: {what} matches npae's kernel ({source}) {how}.", True
    return (f"check FAILED: {what} differs from npae's kernel ({source}): largest difference "
            f"{_max_diff(hand, kernel_out):.3g}"), False


# ------------------------------------------------------------------------------ the numbers
def _values(given, shape, what, rng, low, high):
    n = shape[0] * shape[1]
    if given is None:
        return rng.integers(low, high + 1, size=shape).astype(np.float64)
    if len(given) != n:
        raise ValueError(
            f"{what} gives {len(given)} numbers but {hw(shape)} needs {n} (row by row)"
        )
    return np.asarray(given, dtype=np.float64).reshape(shape)


def _input_hw(s: Settings, default: tuple[int, int]) -> tuple[int, int]:
    if s.input is not None:
        return s.input
    if s.values is not None:  # --values alone: a square image if the count allows
        side = int(round(len(s.values) ** 0.5))
        if side * side == len(s.values):
            return side, side
        raise ValueError(f"--values gives {len(s.values)} numbers, not a square image: "
                         f"say its size with --input HxW")
    return default


def _tie_free(s: Settings, shape, rng) -> np.ndarray:
    """Pooling inputs: a shuffled 1..H*W (no ties, so every maximum is unambiguous)."""
    if s.values is not None:
        return _values(s.values, shape, "--values", rng, 0, 0)
    return (rng.permutation(shape[0] * shape[1]) + 1).astype(np.float64).reshape(shape)


def _t(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64)[None, None])


def _too_big_for_matrix(rows, cols, what):
    if cols > MAX_MATRIX_COLUMNS or rows > MAX_MATRIX_ROWS:
        raise ValueError(
            f"--matrix writes the op as a dense matrix with one column per input pixel and one "
            f"row per output pixel; {what} would make it {rows}x{cols}: keep it to at most "
            f"{MAX_MATRIX_ROWS} rows and {MAX_MATRIX_COLUMNS} columns (e.g. --input 4x4)"
        )


def matrix_lines(m, out_hw, in_hw, out_name="y", in_name="x") -> list[str]:
    """A dense matrix with a header of input pixels (flat index) and a label per output pixel."""
    cells = _cells(m, blank=(m == 0))
    width = max(2, max(len(c) for row in cells for c in row), len(str(m.shape[1] - 1)))
    label = [f"{out_name}[{o // out_hw[1]},{o % out_hw[1]}]" for o in range(m.shape[0])]
    lw = max(len(x) for x in label)
    head = " " * lw + "   " + " ".join(str(j).rjust(width) for j in range(m.shape[1]))
    lines = [f"{' ' * lw}   columns: {in_name}'s pixels, flat index (row*{in_hw[1]} + col)",
             head]
    lines += [f"{label[o].rjust(lw)}   " + " ".join(c.rjust(width) for c in cells[o])
              for o in range(m.shape[0])]
    return indented(lines)


def _size_lines(op_key: str, texts, out_hw) -> list[str]:
    return [
        "output size (per axis):",
        f"  {FORMULAS[op_key]}",
        f"  height: {texts[0]}",
        f"  width:  {texts[1]}",
    ]


# ------------------------------------------------------------------------------ conv2d
def _conv_windows(in_hw, g):
    """For output (oy, ox), the input rows and columns of its window (may lie in the padding)."""
    rows = [[oy * g.sh - g.ph + i * g.dh for i in range(g.kh)] for oy in range(g.oh)]
    cols = [[ox * g.sw - g.pw + j * g.dw for j in range(g.kw)] for ox in range(g.ow)]
    return rows, cols


def _padded(x, ph, pw):
    xp = np.zeros((x.shape[0] + 2 * ph, x.shape[1] + 2 * pw))
    xp[ph:ph + x.shape[0], pw:pw + x.shape[1]] = x
    pad = np.ones(xp.shape, dtype=bool)
    pad[ph:ph + x.shape[0], pw:pw + x.shape[1]] = False
    return xp, pad


def _conv_by_hand(x, k, g):
    """Every output element as its window, products and sum, from the definition."""
    h, w = x.shape
    rows, cols = _conv_windows((h, w), g)
    y = np.zeros((g.oh, g.ow))
    items = []
    for oy in range(g.oh):
        for ox in range(g.ow):
            win = np.zeros((g.kh, g.kw))
            pad = np.zeros((g.kh, g.kw), dtype=bool)
            terms, total = [], 0.0
            for i, r in enumerate(rows[oy]):
                for j, c in enumerate(cols[ox]):
                    if 0 <= r < h and 0 <= c < w:
                        win[i, j] = x[r, c]
                        total += x[r, c] * k[i, j]
                        terms.append(num(x[r, c] * k[i, j]))
                    else:
                        pad[i, j] = True
            y[oy, ox] = total
            items.append((oy, ox, rows[oy], cols[ox], win, pad, terms, total))
    return y, items


def _conv_matrix(k, in_hw, g):
    """conv2d as a (oh*ow, h*w) matrix, from the definition: row o holds the kernel weights at
    the columns of the pixels output o reads."""
    h, w = in_hw
    m = np.zeros((g.oh * g.ow, h * w))
    rows, cols = _conv_windows(in_hw, g)
    for oy in range(g.oh):
        for ox in range(g.ow):
            for i, r in enumerate(rows[oy]):
                for j, c in enumerate(cols[ox]):
                    if 0 <= r < h and 0 <= c < w:
                        m[oy * g.ow + ox, r * w + c] += k[i, j]
    return m


def _conv_intro(op, g, in_hw):
    h, w = in_hw
    what = (f"a {g.kh}x{g.kw} kernel slides over the {h}x{w} input with stride {hp((g.sh, g.sw))}"
            f" and padding {hp((g.ph, g.pw))}")
    if max(g.dh, g.dw) > 1:
        what += f", dilation {hp((g.dh, g.dw))} (the kernel's taps are that far apart)"
    return [f"{op}: {what}."]


def _size_verdict(in_hw, out_hw, g) -> str:
    if tuple(out_hw) == tuple(in_hw):
        return (f"output shape: {hw(out_hw)}, the same as the input: a {g.kh}x{g.kw} kernel with "
                f"stride {g.sh} and padding {g.ph} keeps the size")
    if max(g.sh, g.sw) > 1:
        return (f"output shape: {hw(out_hw)}: stride {hp((g.sh, g.sw))} moves the window "
                f"{hp((g.sh, g.sw))} pixels at a time, so the {hw(in_hw)} input becomes "
                f"{hw(out_hw)} (a learned downsampling)")
    return f"output shape: {hw(out_hw)} (input {hw(in_hw)})"


def _explain_conv2d(s: Settings) -> Explanation:
    op = "conv2d"
    in_hw = _input_hw(s, (4, 4))
    kernel = s.kernel or (3, 3)
    stride = s.stride or (1, 1)
    g = conv2d_geometry(op, in_hw, kernel, stride, s.padding, s.dilation)
    rng = np.random.default_rng(s.seed)
    x = _values(s.values, in_hw, "--values", rng, 0, 9)
    k = _values(s.weights, kernel, "--weights", rng, -2, 2)
    y = F.conv2d(_t(x), _t(k), stride=stride, padding=s.padding, dilation=s.dilation).data[0, 0]
    hand, items = _conv_by_hand(x, k, g)

    lines = _conv_intro(op, g, in_hw)
    lines.append("Each output element is the sum of the kernel times the window under it.")
    lines.append("")
    xp, pad = _padded(x, g.ph, g.pw)
    title = (f"input {hw(in_hw)} with padding {hp((g.ph, g.pw))} (. = padding, a zero)"
             if g.ph or g.pw else f"input {hw(in_hw)}")
    lines += wrapped([(title, grid(xp, pad)), (f"kernel {hw(kernel)}", grid(k))])
    lines.append("")
    texts = [conv2d_size_text(in_hw[0], g.kh, g.sh, g.ph, g.dh)[0],
             conv2d_size_text(in_hw[1], g.kw, g.sw, g.pw, g.dw)[0]]
    lines += _size_lines(op, texts, (g.oh, g.ow))
    lines.append(_size_verdict(in_hw, (g.oh, g.ow), g))
    lines.append("")
    lines.append("each output element: the window it reads (input rows and columns; negative "
                 "or too large = padding), times the kernel, summed")
    for n, (oy, ox, rows, cols, win, wpad, terms, total) in enumerate(items):
        if n == MAX_LISTED:
            lines.append(f"  ... ({len(items) - MAX_LISTED} more; the check covers all)")
            break
        prods = win * k
        lines.append(f"y[{oy},{ox}] reads rows {span(rows)}, columns {span(cols)}")
        block = side_by_side([("window", grid(win, wpad)), ("kernel", grid(k)),
                              ("products", grid(prods, wpad))], joiners=["*", "="], gap=5)
        lines += indented(block, "    ")
        note = " (padding adds 0)" if wpad.any() else ""
        lines.append(f"    sum: {sum_text(terms)} = {num(total)}{note}")
    lines.append("")
    lines.append(f"output {hw((g.oh, g.ow))} (npae's kernel):")
    lines += indented(grid(y))
    checks = [_check_line("every sum above", hand, y,
                          "F.conv2d")]
    if y.shape != (g.oh, g.ow):
        checks.append((f"check FAILED: the kernel returned {hw(y.shape)}, the formula says "
                       f"{hw((g.oh, g.ow))}", False))
    if s.matrix:
        lines.append("")
        lines += _conv_matrix_section(x, k, g, in_hw, y, checks)
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation(op, lines, (g.oh, g.ow), all(ok for _, ok in checks),
                       {"x": x, "k": k, "y": y, "geom": g, "items": items})


def _conv_matrix_section(x, k, g, in_hw, y, checks) -> list[str]:
    _too_big_for_matrix(g.oh * g.ow, in_hw[0] * in_hw[1], f"input {hw(in_hw)}")
    m = _conv_matrix(k, in_hw, g)
    lines = [f"as a matrix: y.flat = M @ x.flat, M is {m.shape[0]}x{m.shape[1]} (one row per "
             f"output pixel, one column per input pixel; . = 0)."]
    lines.append("Row o holds the kernel's weights at the pixels output o reads; neighbouring "
                 "rows hold the same weights shifted by the stride: a banded matrix.")
    lines += matrix_lines(m, (g.oh, g.ow), in_hw)
    checks.append(_check_line("M @ x.flat", m @ x.ravel(), y.ravel(), "F.conv2d"))
    return lines


# ------------------------------------------------------------------------------ conv-transpose2d
def _placements(in_hw, g, out_hw):
    """For input pixel (i, j): the kernel taps (a, b) and the output pixels (r, c) they land on."""
    h, w = in_hw
    oh, ow = out_hw
    out = {}
    for i in range(h):
        for j in range(w):
            taps = []
            for a in range(g.kh):
                for b in range(g.kw):
                    r = i * g.sh - g.ph + a * g.dh
                    c = j * g.sw - g.pw + b * g.dw
                    taps.append((a, b, r, c, 0 <= r < oh and 0 <= c < ow))
            out[i, j] = taps
    return out


def _start(var, stride, pad) -> str:
    """'i*2', or 'i*2 - 1' with padding 1."""
    return f"{var}*{stride}" + (f" - {pad}" if pad else "")


def _tconv_matrix(k, in_hw, g, out_hw):
    m = np.zeros((out_hw[0] * out_hw[1], in_hw[0] * in_hw[1]))
    for (i, j), taps in _placements(in_hw, g, out_hw).items():
        for a, b, r, c, inside in taps:
            if inside:
                m[r * out_hw[1] + c, i * in_hw[1] + j] += k[a, b]
    return m


def _explain_conv_transpose2d(s: Settings) -> Explanation:
    op = "conv_transpose2d"
    in_hw = _input_hw(s, (2, 2))
    kernel = s.kernel or (3, 3)
    stride = s.stride or (1, 1)
    g, out_pad = conv_transpose2d_geometry(op, in_hw, kernel, stride, s.padding,
                                           s.output_padding, s.dilation)
    out_hw = (g.oh, g.ow)
    rng = np.random.default_rng(s.seed)
    x = _values(s.values, in_hw, "--values", rng, 1, 4)
    k = _values(s.weights, kernel, "--weights", rng, -2, 2)
    y = F.conv_transpose2d(_t(x), _t(k), stride=stride, padding=s.padding,
                           output_padding=out_pad, dilation=s.dilation).data[0, 0]
    places = _placements(in_hw, g, out_hw)

    lines = [
        f"conv-transpose2d: every input pixel scales a copy of the {hw(kernel)} kernel; the copy "
        f"of x[i,j] starts at output row {_start('i', g.sh, g.ph)}, column "
        f"{_start('j', g.sw, g.pw)} "
        f"(stride {hp(stride)}, padding {hp(s.padding)}, dilation {hp(s.dilation)}).",
        "In case of overlapping, the values are summed.",
        "",
    ]
    lines += wrapped([(f"input {hw(in_hw)}", grid(x)), (f"kernel {hw(kernel)}", grid(k))])
    lines.append("")
    texts = [conv_transpose2d_size_text(in_hw[0], g.kh, g.sh, g.ph, g.dh, out_pad[0])[0],
             conv_transpose2d_size_text(in_hw[1], g.kw, g.sw, g.pw, g.dw, out_pad[1])[0]]
    lines += _size_lines("conv_transpose2d", texts, out_hw)
    if max(out_pad) > 0:
        lines.append(f"  (output_padding {hw(out_pad)} adds no zeros: it picks the larger of the "
                     "sizes a strided convolution maps onto this input size)")
    lines.append(f"output shape: {hw(out_hw)} (input {hw(in_hw)})")
    lines.append("")

    # each input pixel's scaled copy of the kernel, on the output grid
    lines.append("each input pixel's copy of the kernel (x[i,j] * kernel) on the output grid "
                 "(. = not covered):")
    blocks = []
    hand = np.zeros(out_hw)
    count = np.zeros(out_hw, dtype=int)
    terms = {(r, c): [] for r in range(out_hw[0]) for c in range(out_hw[1])}
    for (i, j), taps in places.items():
        copy = np.zeros(out_hw)
        covered = np.zeros(out_hw, dtype=bool)
        cut = False
        for a, b, r, c, inside in taps:
            if inside:
                copy[r, c] += x[i, j] * k[a, b]
                covered[r, c] = True
                hand[r, c] += x[i, j] * k[a, b]
                count[r, c] += 1
                terms[r, c].append(product(x[i, j], k[a, b]))
            else:
                cut = True
        rows = sorted({r for _, _, r, _, _ in taps})
        cols = sorted({c for _, _, _, c, _ in taps})
        title = f"x[{i},{j}]={num(x[i, j])}: rows {span(rows)}, cols {span(cols)}"
        if cut:
            title += " (cropped)"
        blocks.append((title, grid(copy, ~covered)))
    if len(blocks) > MAX_LISTED:
        lines += wrapped(blocks[:MAX_LISTED])
        lines.append(f"  ... ({len(blocks) - MAX_LISTED} more copies; the check covers all)")
    else:
        lines += wrapped(blocks)
    if g.ph or g.pw:
        lines.append(f"  (padding {hp((g.ph, g.pw))} crops that many rows/columns from each "
                     "border of the full grid: parts of copies that fall there are dropped)")
    lines.append("")

    lines.append("overlap count: how many copies land on each output pixel")
    lines += indented(grid(count))
    distinct = sorted(set(count.ravel().tolist()))
    if (g.sh > 1 and g.kh % g.sh) or (g.sw > 1 and g.kw % g.sw):
        lines.append(
            f"  The counts are uneven ({', '.join(str(c) for c in distinct)}): kernel "
            f"{hw(kernel)} is not divisible by stride {hp(stride)}, so some output pixels sum "
            "more copies than their neighbours. This is the cause of checkerboard artifacts. "
            "The usual alternative: upsample-nearest2d, then a stride-1 conv2d (see npae explain "
            "upsample-nearest2d, and the conv-upsample model)."
        )
    elif max(g.sh, g.sw) > 1 and len(distinct) == 1:
        lines.append(f"  Every pixel gets {distinct[0]} cop{'y' if distinct[0] == 1 else 'ies'}:"
                     f" kernel {hw(kernel)} is divisible by stride {hp(stride)}, so the copies "
                     "tile the output evenly (no checkerboard from overlap).")
    lines.append("")

    lines.append("the sums (x[i,j]*w[a,b] for every copy that lands on the pixel):")
    listed = 0
    for (r, c), t in terms.items():
        if listed == MAX_LISTED:
            lines.append(f"  ... ({len(terms) - MAX_LISTED} more; the check covers all)")
            break
        listed += 1
        total = num(hand[r, c])
        lines.append(f"  y[{r},{c}] = {' + '.join(t)} = {total}" if t else
                     f"  y[{r},{c}] = 0 (no copy lands here)")
    lines.append("")
    lines.append(f"output {hw(out_hw)} (npae's kernel):")
    lines += indented(grid(y))
    checks = [
        _check_line("every sum above", hand, y,
                    "F.conv_transpose2d"),
        _check_line("the overlap count map", count, overlap_count(
            {"kernel_size": kernel, "stride": stride, "padding": s.padding,
             "output_padding": out_pad, "dilation": s.dilation}, in_hw),
            "F.conv_transpose2d of ones"),
    ]
    if s.matrix:
        lines.append("")
        lines += _tconv_matrix_section(x, k, g, in_hw, out_hw, y, stride, s, checks, out_pad)
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation("conv-transpose2d", lines, out_hw, all(ok for _, ok in checks),
                       {"x": x, "k": k, "y": y, "geom": g, "count": count, "places": places})


def _tconv_matrix_section(x, k, g, in_hw, out_hw, y, stride, s, checks, out_pad) -> list[str]:
    n_in, n_out = in_hw[0] * in_hw[1], out_hw[0] * out_hw[1]
    _too_big_for_matrix(n_out, n_in, f"input {hw(in_hw)} -> output {hw(out_hw)}")
    _too_big_for_matrix(n_in, n_out, f"the matching conv2d (input {hw(out_hw)})")
    mt = _tconv_matrix(k, in_hw, g, out_hw)
    gc = conv2d_geometry("conv2d", out_hw, g.args[:2], stride, s.padding, s.dilation)
    mc = _conv_matrix(k, out_hw, gc)
    lines = [f"as a matrix: y.flat = M @ x.flat with M {mt.shape[0]}x{mt.shape[1]} (column "
             "j: the copy of the kernel that input pixel j places; . = 0).",
             f"It is the transpose of the {mc.shape[0]}x{mc.shape[1]} matrix of conv2d with the "
             f"same kernel, stride, padding and dilation on a {hw(out_hw)} input:"]
    lines += matrix_lines(mt, out_hw, in_hw)
    lines.append("")
    lines.append(f"conv2d's matrix ({hw(out_hw)} -> {hw((gc.oh, gc.ow))}), for comparison:")
    lines += matrix_lines(mc, (gc.oh, gc.ow), out_hw)
    # conv2d of the output size gives back the input size plus floor(output_padding / stride)
    # rows (and columns): only when output_padding >= stride (possible with dilation) are there
    # extra ones, which the transpose convolution never writes
    keep = np.array([r < in_hw[0] and c < in_hw[1] for r in range(gc.oh) for c in range(gc.ow)])
    same = mc[keep].shape == mt.T.shape and np.array_equal(mc[keep], mt.T)
    if not keep.all():
        lines.append(f"(output_padding {hp(out_pad)} >= stride {hp(stride)}: conv2d gives "
                     f"{hw((gc.oh, gc.ow))}, not {hw(in_hw)}; M is the transpose of its rows for "
                     f"the {hw(in_hw)} outputs y[0..{in_hw[0] - 1},0..{in_hw[1] - 1}].)")
    checks.append(_check_line("M @ x.flat", mt @ x.ravel(), y.ravel(), "F.conv_transpose2d"))
    z = np.random.default_rng(s.seed + 1).integers(-3, 4, size=out_hw).astype(np.float64)
    yc = F.conv2d(_t(z), _t(k), stride=stride, padding=s.padding, dilation=s.dilation).data
    checks.append(_check_line("conv2d's matrix @ a random input", mc @ z.ravel(),
                              yc.ravel(), "F.conv2d"))
    checks.append(("check: M equals the transpose of conv2d's matrix exactly." if same else
                   "check FAILED: M is not the transpose of conv2d's matrix.", same))
    return lines


# ------------------------------------------------------------------------------ pooling
def _pool_by_hand(x, g):
    """Each window's values, its maximum (first one in scan order on ties) and flat index."""
    h, w = x.shape
    rows, cols = _conv_windows((h, w), g)
    y = np.zeros((g.oh, g.ow))
    idx = np.zeros((g.oh, g.ow), dtype=np.int64)
    items = []
    for oy in range(g.oh):
        for ox in range(g.ow):
            best, where = None, None
            win = []
            for r in rows[oy]:
                row = []
                for c in cols[ox]:
                    if 0 <= r < h and 0 <= c < w:
                        row.append(num(x[r, c]))
                        if best is None or x[r, c] > best:
                            best, where = x[r, c], (r, c)
                    else:
                        row.append(".")
                win.append(row)
            y[oy, ox] = best
            idx[oy, ox] = where[0] * w + where[1]
            items.append((oy, ox, rows[oy], cols[ox], win, best, where))
    return y, idx, items


def _pool_setup(s: Settings, op):
    in_hw = _input_hw(s, (4, 4))
    kernel = s.kernel or (2, 2)
    stride = s.stride or kernel
    g = pool2d_geometry(op, in_hw, kernel, stride, s.padding, s.dilation, False)
    x = _tie_free(s, in_hw, np.random.default_rng(s.seed))
    return in_hw, kernel, stride, g, x


def _pool_lines(in_hw, kernel, stride, g, x, y, idx, hand_y, hand_idx, items, op_name,
                shape_label="output shape"):
    w = in_hw[1]
    flat = np.arange(in_hw[0] * in_hw[1]).reshape(in_hw)
    lines = [
        f"{op_name}: each {hw(kernel)} window (stride {hp(stride)}, padding {hp((g.ph, g.pw))}) "
        f"is replaced by its largest value; the position of that value, as a flat index in the "
        f"{hw(in_hw)} input (row*{w} + col), is kept for max-unpool2d and for the backward.",
        "",
    ]
    lines += wrapped([(f"input {hw(in_hw)}", grid(x)), ("flat index of each pixel", grid(flat))])
    lines.append("")
    texts = [pool2d_size_text(in_hw[0], g.kh, g.sh, g.ph, g.dh)[0],
             pool2d_size_text(in_hw[1], g.kw, g.sw, g.pw, g.dw)[0]]
    lines += _size_lines("max_pool2d", texts, (g.oh, g.ow))
    lines.append(f"{shape_label}: {hw((g.oh, g.ow))} (input {hw(in_hw)})")
    lines.append("")
    lines.append("the windows (. = padding, never chosen), their maxima and flat indices:")
    for n, (oy, ox, rows, cols, win, best, (r, c)) in enumerate(items):
        if n == MAX_LISTED:
            lines.append(f"  ... ({len(items) - MAX_LISTED} more; the check covers all)")
            break
        shown = " / ".join(" ".join(row) for row in win)
        where = f"y[{oy},{ox}]: rows {span(rows)}, cols {span(cols)}:"
        lines.append(f"  {where} {shown:<{4 * g.kh * g.kw}} -> max {num(best)} at ({r},{c}), "
                     f"index {r}*{w} + {c} = {r * w + c}")
    if len(np.unique(x)) < x.size:
        lines.append("  (equal values: the first maximum in scan order, row by row, wins)")
    lines.append("")
    lines += wrapped([(f"{shape_label.split()[0]} {hw((g.oh, g.ow))} (npae's kernel)", grid(y)),
                      ("indices", grid(idx))])
    checks = [_check_line("every maximum above", hand_y, y,
                          "F.max_pool2d"),
              _check_line("every index above", hand_idx, idx, "F.max_pool2d")]
    return lines, checks


def _explain_max_pool2d(s: Settings) -> Explanation:
    op = "max_pool2d"
    in_hw, kernel, stride, g, x = _pool_setup(s, op)
    y, idx = F.max_pool2d(_t(x), kernel, stride, s.padding, s.dilation, return_indices=True)
    y, idx = y.data[0, 0], idx.data[0, 0]
    hand_y, hand_idx, items = _pool_by_hand(x, g)
    lines, checks = _pool_lines(in_hw, kernel, stride, g, x, y, idx, hand_y, hand_idx, items,
                                "max-pool2d")
    if s.matrix:
        n_in, n_out = in_hw[0] * in_hw[1], g.oh * g.ow
        _too_big_for_matrix(n_out, n_in, f"input {hw(in_hw)}")
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), hand_idx.ravel()] = 1
        lines += ["", f"as a matrix, for this input: y.flat = P @ x.flat, P {n_out}x{n_in} "
                  "picks the maximum of each window (a 1 in row o at the index of o's maximum).",
                  "Pooling is not linear: another input puts the 1s elsewhere. Its backward "
                  "multiplies by P's transpose: each gradient goes back to its maximum."]
        lines += matrix_lines(m, (g.oh, g.ow), in_hw)
        checks.append(_check_line("P @ x.flat", m @ x.ravel(), y.ravel(), "F.max_pool2d"))
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation("max-pool2d", lines, (g.oh, g.ow), all(ok for _, ok in checks),
                       {"x": x, "y": y, "idx": idx, "geom": g})


def _explain_max_unpool2d(s: Settings) -> Explanation:
    op = "max_unpool2d"
    in_hw, kernel, stride, g, x = _pool_setup(s, op)
    p, idx = F.max_pool2d(_t(x), kernel, stride, s.padding, s.dilation, return_indices=True)
    pooled = p.data[0, 0]
    hand_y, hand_idx, items = _pool_by_hand(x, g)
    first = "max-unpool2d undoes max-pool2d. First, max-pool2d"
    lines, checks = _pool_lines(in_hw, kernel, stride, g, x, pooled, idx.data[0, 0], hand_y,
                                hand_idx, items, first, shape_label="pooled shape")
    out_hw = unpool2d_size(op, (g.oh, g.ow), kernel, stride, s.padding)
    u = F.max_unpool2d(p, idx, kernel, stride, s.padding, output_size=in_hw).data[0, 0]
    ow = in_hw[1]
    lines += [
        "",
        f"Then max-unpool2d puts each pooled value back at its flat index in a {hw(in_hw)} "
        "plane, zeros elsewhere.",
        "",
    ]
    texts = [unpool2d_size_text(g.oh, g.kh, g.sh, g.ph)[0],
             unpool2d_size_text(g.ow, g.kw, g.sw, g.pw)[0]]
    lines += _size_lines("max_unpool2d", texts, out_hw)
    if tuple(out_hw) != tuple(in_hw):
        lines.append(f"  the default is {hw(out_hw)}; output_size={hw(in_hw)} restores the pooled "
                     f"input's size (allowed: within one stride of the default)")
    lines.append(f"output shape: {hw(in_hw)}")
    hand_u = np.zeros(in_hw)
    for oy in range(g.oh):
        for ox in range(g.ow):
            i = int(hand_idx[oy, ox])
            hand_u[i // ow, i % ow] += hand_y[oy, ox]
            lines.append(f"  value {num(hand_y[oy, ox])} (pooled y[{oy},{ox}]) -> index {i} -> "
                         f"row {i} // {ow} = {i // ow}, col {i} % {ow} = {i % ow}")
    shared = len(set(hand_idx.ravel().tolist())) < hand_idx.size
    if shared:
        lines.append("  (overlapping windows chose the same pixel: its values are summed)")
    lines.append("")
    lines.append(f"output {hw(in_hw)} (npae's kernel; . = zero, nothing put back):")
    lines += indented(grid(u, u == 0))
    checks.append(_check_line("every placement above", hand_u, u,
                              "F.max_unpool2d"))
    if s.matrix:
        n_in, n_out = g.oh * g.ow, in_hw[0] * in_hw[1]
        _too_big_for_matrix(n_out, n_in, f"output {hw(in_hw)}")
        m = np.zeros((n_out, n_in))
        for o, i in enumerate(hand_idx.ravel()):
            m[i, o] += 1
        lines += ["", f"as a matrix: u.flat = S @ p.flat, S {n_out}x{n_in} is a selection "
                  "matrix: column o has a single 1, in the row of pooled value o's index.",
                  "Its transpose is the gather of the backward (and pooling's forward picks "
                  "with it)."]
        lines += matrix_lines(m, in_hw, (g.oh, g.ow), out_name="u", in_name="p")
        checks.append(_check_line("S @ p.flat", m @ pooled.ravel(), u.ravel(),
                                  "F.max_unpool2d"))
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation("max-unpool2d", lines, tuple(in_hw), all(ok for _, ok in checks),
                       {"x": x, "y": pooled, "idx": idx.data[0, 0], "u": u, "geom": g})


# ------------------------------------------------------------------------------ upsampling
def _explain_upsample_nearest2d(s: Settings) -> Explanation:
    op = "upsample_nearest2d"
    in_hw = _input_hw(s, (2, 2))
    scale = float(s.scale)
    oh, ow, rows, cols = upsample_nearest2d_plan(op, in_hw, scale_factor=scale)
    rng = np.random.default_rng(s.seed)
    x = _values(s.values, in_hw, "--values", rng, 1, 9)
    y = F.upsample_nearest2d(_t(x), scale_factor=scale).data[0, 0]
    hand = np.array([[x[rows[i], cols[j]] for j in range(ow)] for i in range(oh)])
    h = in_hw[0]
    if oh == h:
        rule = "i (same size)"
    elif oh == 2 * h:
        rule = "i // 2 (the size doubles)"
    else:
        rule = (f"min(floor(i * {1 / scale:.6g}), H - 1) (the scale 1/scale_factor is taken in "
                "float32, as PyTorch does)")
    lines = [
        f"upsample-nearest2d: scale factor {scale:g}; every output pixel copies the nearest "
        "input pixel, nothing is learned and nothing is summed.",
        "",
    ]
    lines += indented([f"input {hw(in_hw)}"] + grid(x))
    lines.append("")
    texts = [upsample_size_text(in_hw[0], scale)[0], upsample_size_text(in_hw[1], scale)[0]]
    lines += _size_lines(op, texts, (oh, ow))
    lines.append(f"output shape: {hw((oh, ow))} (input {hw(in_hw)})")
    lines.append("")
    lines.append(f"output row i copies input row {rule}; columns alike:")
    width = max(len(str(v)) for v in list(range(max(oh, ow))))
    lines.append("  output row:   " + " ".join(str(i).rjust(width) for i in range(oh)))
    lines.append("  input row:    " + " ".join(str(int(r)).rjust(width) for r in rows))
    lines.append("  output col:   " + " ".join(str(i).rjust(width) for i in range(ow)))
    lines.append("  input col:    " + " ".join(str(int(c)).rjust(width) for c in cols))
    lines.append("")
    source = np.array([[f"{rows[i]},{cols[j]}" for j in range(ow)] for i in range(oh)],
                      dtype=object)
    lines += wrapped([("source pixel (row,col) of each output pixel", grid(source)),
                      (f"output {hw((oh, ow))} (npae's kernel)", grid(y))])
    lines.append("")
    lines.append("backward: each input pixel receives the sum of the gradients of all its "
                 "copies.")
    checks = [_check_line("every copied value above", hand, y,
                          "F.upsample_nearest2d")]
    if s.matrix:
        n_in, n_out = in_hw[0] * in_hw[1], oh * ow
        _too_big_for_matrix(n_out, n_in, f"output {hw((oh, ow))}")
        m = np.zeros((n_out, n_in))
        for i in range(oh):
            for j in range(ow):
                m[i * ow + j, rows[i] * in_hw[1] + cols[j]] = 1
        lines += ["", f"as a matrix: y.flat = U @ x.flat, U {n_out}x{n_in}: one 1 per row, in "
                  "the column of that pixel's source; the backward multiplies by U's transpose "
                  "(summing each column's copies)."]
        lines += matrix_lines(m, (oh, ow), in_hw)
        checks.append(_check_line("U @ x.flat", m @ x.ravel(), y.ravel(), "F.upsample_nearest2d"))
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation("upsample-nearest2d", lines, (oh, ow), all(ok for _, ok in checks),
                       {"x": x, "y": y, "rows": rows, "cols": cols})


# ------------------------------------------------------------------------------ im2col
def _explain_im2col(s: Settings) -> Explanation:
    op = "im2col"
    in_hw = _input_hw(s, (4, 4))
    kernel = s.kernel or (3, 3)
    stride = s.stride or (1, 1)
    g = conv2d_geometry(op, in_hw, kernel, stride, s.padding, s.dilation)
    rng = np.random.default_rng(s.seed)
    x = _values(s.values, in_hw, "--values", rng, 0, 9)
    k = _values(s.weights, kernel, "--weights", rng, -2, 2)
    cols = K.im2col(x[None, None], *g.args, g.oh, g.ow)[0]  # (kh*kw, oh*ow)
    y = F.conv2d(_t(x), _t(k), stride=stride, padding=s.padding, dilation=s.dilation).data[0, 0]
    h, w = in_hw
    rows_, cols_ = _conv_windows(in_hw, g)
    hand_cols = np.zeros((g.kh * g.kw, g.oh * g.ow))
    pad = np.zeros(hand_cols.shape, dtype=bool)
    for oy in range(g.oh):
        for ox in range(g.ow):
            for i, r in enumerate(rows_[oy]):
                for j, c in enumerate(cols_[ox]):
                    if 0 <= r < h and 0 <= c < w:
                        hand_cols[i * g.kw + j, oy * g.ow + ox] = x[r, c]
                    else:
                        pad[i * g.kw + j, oy * g.ow + ox] = True
    wrow = k.reshape(1, -1)
    hand_y = (wrow @ hand_cols).reshape(g.oh, g.ow)

    lines = [
        f"im2col: every {hw(kernel)} window of the input (stride {hp(stride)}, padding "
        f"{hp((g.ph, g.pw))}, dilation {hp((g.dh, g.dw))}) is copied into one column.",
        f"conv2d then becomes one matrix product: weights (1 x {g.kh * g.kw}) @ columns "
        f"({g.kh * g.kw} x {g.oh * g.ow}).",
        "",
    ]
    xp, xpad = _padded(x, g.ph, g.pw)
    title = (f"input {hw(in_hw)} with padding {hp((g.ph, g.pw))} (. = padding)"
             if g.ph or g.pw else f"input {hw(in_hw)}")
    lines += wrapped([(title, grid(xp, xpad)), (f"kernel {hw(kernel)}", grid(k))])
    lines.append("")
    texts = [conv2d_size_text(h, g.kh, g.sh, g.ph, g.dh)[0],
             conv2d_size_text(w, g.kw, g.sw, g.pw, g.dw)[0]]
    lines += _size_lines("conv2d", texts, (g.oh, g.ow))
    lines.append(f"output shape: {hw((g.oh, g.ow))}, so {g.oh * g.ow} windows and "
                 f"{g.oh * g.ow} columns")
    lines.append("")
    lines.append(f"the column matrix ({g.kh * g.kw} x {g.oh * g.ow}): column (oy,ox) is the "
                 "window of output (oy,ox), read row by row; row (i,j) is kernel tap (i,j); "
                 ". = padding")
    labels = [f"{oy},{ox}" for oy in range(g.oh) for ox in range(g.ow)]
    cells = _cells(cols, pad)
    width = max(max(len(c) for row in cells for c in row), max(len(x_) for x_ in labels))
    head = "  tap    " + " ".join(lab.rjust(width) for lab in labels)
    lines.append(head)
    for t in range(g.kh * g.kw):
        lines.append(f"  ({t // g.kw},{t % g.kw})  " + " ".join(c.rjust(width)
                                                            for c in cells[t]))
    lines.append("")
    lines.append("the kernel, flattened row by row, times the columns:")
    lines.append("  weights: " + " ".join(num(v) for v in wrow.ravel()))
    lines.append("  result:  " + " ".join(num(v) for v in hand_y.ravel()))
    lines.append(f"reshaped to {hw((g.oh, g.ow))}, this is the convolution (npae's kernel):")
    lines += indented(grid(y))
    lines.append("With C input channels the columns have C*kh*kw rows, and with O filters the "
                 "weights are an O x C*kh*kw matrix: still one product.")
    checks = [_check_line("the column matrix above", hand_cols, cols,
                          "npae.kernels.im2col"),
              _check_line("weights @ columns", hand_y, y, "F.conv2d")]
    if s.matrix:
        lines.append("")
        lines += _conv_matrix_section(x, k, g, in_hw, y, checks)
    lines.append("")
    lines += [c for c, _ in checks]
    return Explanation("im2col", lines, (g.oh, g.ow), all(ok for _, ok in checks),
                       {"x": x, "k": k, "y": y, "cols": cols, "pad": pad, "geom": g})


_EXPLAINERS = {
    "conv2d": _explain_conv2d,
    "conv-transpose2d": _explain_conv_transpose2d,
    "max-pool2d": _explain_max_pool2d,
    "max-unpool2d": _explain_max_unpool2d,
    "upsample-nearest2d": _explain_upsample_nearest2d,
    "im2col": _explain_im2col,
}
