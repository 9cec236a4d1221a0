"""The learning tools: each operation worked through by hand and checked against its kernel.

    explain.py          npae explain OP: the arithmetic of one image, checked against the kernel
    explain_figures.py  the figure of each explanation (--png)
    shape_solver.py     npae shapes: every layer's output size and the decoder settings
    gradcheck_cli.py    npae gradcheck OP: the per-input gradient report
    docs.py             the generated operation guide in docs/
"""
