"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "(16, 1, 3, 3) float32" in printed
    assert "gradcheck failed for input 0" in printed
    assert "True" in printed  # the Hessian-vector product matched its finite differences
    assert "gradgradcheck failed: the second derivative with respect to input 0" in printed
