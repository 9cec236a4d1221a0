"""What an op's file in npae/tools/explain/ hands to the tools, as types.

    Explanation  what its ``explain`` returns: the text, the output size, the verdict, the arrays
                 its ``draw`` turns into a figure
    Case         what its ``gradcheck_case`` returns: the function and inputs npae gradcheck checks
    Page         its page in docs/ (``PAGE``), with ``Example``s: npae explain options as typed

They live in a module of their own, below the op files and the tools that read them (the
registry, explain, gradcheck, docs), so that every one of those can import them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Explanation:
    """The text, the output size, and whether every check passed; ``arrays`` feeds the figure.
    ``op`` is the registry's name for the op, filled in by ``npae.tools.explain.explain``."""

    lines: list[str]
    output_hw: tuple[int, int]
    ok: bool
    arrays: dict = field(default_factory=dict)
    op: str = ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Case:
    """What to check: fn(*inputs) -> Tensor; names label the inputs; about says the setup; bug
    says what the planted bug does (the case built with ``plant_bug=True``)."""

    fn: object
    inputs: list
    names: list[str]
    about: str
    bug: str = ""


@dataclass
class Example:
    """A worked example on a docs page: the options of ``npae explain OP`` as a reader types
    them (the generator parses them with npae's own command-line parser), and a sentence before
    it."""

    args: str
    intro: str = ""


@dataclass
class Page:
    """An op's page in docs/ (npae/tools/docs.py writes it; its file name is the op's name)."""

    title: str
    what: str
    formula: str  # the key of its output-size formula in npae.engine.shapes.FORMULAS
    examples: list[Example]
    figure: Example
    matrix: Example | None
    backward: str
    code: list[tuple[str, str]]  # (path in the repository, what lives there)
