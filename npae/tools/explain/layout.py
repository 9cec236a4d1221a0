"""Text layout for the explanations: numbers as a reader writes them, grids of numbers side by
side, prose wrapped to WIDTH, dense matrices with labelled rows and columns, and the ``check:``
line that ends every explanation.

    >>> side_by_side([("a", grid([[1, 2], [3, 4]])), ("b", grid([[0.5]]))], joiners=["*"])
    ['a      b', '1 2 *  0.5', '3 4']
"""

from __future__ import annotations

import textwrap

import numpy as np

from npae.engine.shapes import FORMULAS

WIDTH = 88  # prose and side-by-side grids wrap to stay within this many columns
# an explanation lists every output element up to this many; the check always covers all of them
MAX_LISTED = 64
# --matrix prints one column per input pixel: beyond this the matrix is too wide to read
MAX_MATRIX_COLUMNS = 25
MAX_MATRIX_ROWS = 64


def wrap_prose(lines) -> list[str]:
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


# ------------------------------------------------------------------------------ numbers and grids
def num(v) -> str:
    """A value as a reader writes it: 3, -2, 0.25 (integers without a decimal point)."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def cells(a, blank=None) -> list[list[str]]:
    """A 2-D array as strings (see num); cells where ``blank`` is True show '.'."""
    a = np.asarray(a, dtype=object)
    return [["." if blank is not None and blank[i, j] else
             (a[i, j] if isinstance(a[i, j], str) else num(a[i, j]))
             for j in range(a.shape[1])] for i in range(a.shape[0])]


def grid(a, blank=None, width=None) -> list[str]:
    """Rows of a 2-D array, right-aligned columns; cells where ``blank`` is True show '.'."""
    rows = cells(a, blank)
    width = width or max((len(c) for row in rows for c in row), default=1)
    return [" ".join(c.rjust(width) for c in row) for row in rows]


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


# ------------------------------------------------------------------------------ arithmetic as text
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


def size_lines(op_key: str, texts) -> list[str]:
    """The output-size formula of ``op_key`` (npae.engine.shapes.FORMULAS) and, in ``texts``,
    its height and width with the example's numbers."""
    return [
        "output size (per axis):",
        f"  {FORMULAS[op_key]}",
        f"  height: {texts[0]}",
        f"  width:  {texts[1]}",
    ]


# ------------------------------------------------------------------------------ --matrix
def too_big_for_matrix(rows, cols, what):
    if cols > MAX_MATRIX_COLUMNS or rows > MAX_MATRIX_ROWS:
        raise ValueError(
            f"--matrix writes the op as a dense matrix with one column per input pixel and one "
            f"row per output pixel; {what} would make it {rows}x{cols}: keep it to at most "
            f"{MAX_MATRIX_ROWS} rows and {MAX_MATRIX_COLUMNS} columns (e.g. --input 4x4)"
        )


def matrix_lines(m, out_hw, in_hw, out_name="y", in_name="x") -> list[str]:
    """A dense matrix with a header of input pixels (flat index) and a label per output pixel."""
    rows = cells(m, blank=(m == 0))
    width = max(2, max(len(c) for row in rows for c in row), len(str(m.shape[1] - 1)))
    label = [f"{out_name}[{o // out_hw[1]},{o % out_hw[1]}]" for o in range(m.shape[0])]
    lw = max(len(x) for x in label)
    head = " " * lw + "   " + " ".join(str(j).rjust(width) for j in range(m.shape[1]))
    lines = [f"{' ' * lw}   columns: {in_name}'s pixels, flat index (row*{in_hw[1]} + col)",
             head]
    lines += [f"{label[o].rjust(lw)}   " + " ".join(c.rjust(width) for c in rows[o])
              for o in range(m.shape[0])]
    return indented(lines)


# ------------------------------------------------------------------------------ the check
def _max_diff(a, b) -> float:
    """The largest difference where both are finite; inf where they differ otherwise (a NaN
    against a number, or infinities of different sign). A NaN against a NaN, or an infinity
    against the same infinity, is agreement: --values may hold them."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not same[~(np.isfinite(a) & np.isfinite(b))].all():
        return float("inf")
    finite = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0


def _agree(a, b) -> bool:
    """Equal up to float64 rounding of a differently ordered sum (exact for integer values)."""
    b = np.asarray(b, dtype=np.float64)
    finite = b[np.isfinite(b)]
    scale = max(1.0, float(np.max(np.abs(finite))) if finite.size else 1.0)
    return _max_diff(a, b) <= 1e-12 * scale * max(1, b.size)


def check_line(what: str, hand, kernel_out, source: str) -> tuple[str, bool]:
    """The line that compares the hand-worked ``hand`` with the kernel's ``kernel_out`` (which
    ``source`` computed), and whether they agree."""
    ok = _agree(hand, kernel_out)
    if ok:
        diff = _max_diff(hand, kernel_out)
        how = "exactly" if diff == 0 else f"to {diff:.1e} (float64 rounding)"
        return f"check: {what} matches npae's kernel ({source}) {how}.", True
    return (f"check FAILED: {what} differs from npae's kernel ({source}): largest difference "
            f"{_max_diff(hand, kernel_out):.3g}"), False
