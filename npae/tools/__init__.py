"""The learning tools: each operation worked through by hand and checked against its kernel.

    registry.py         every operation once: its name, function, Function, reference and
                        explainer file; the commands, the docs generator and the op table read it
    explain/            one file per operation: its explanation (npae explain OP), its figure
                        (--png), its gradcheck setup and planted bug, its page in docs/
    settings.py         the options npae explain and npae gradcheck share, and each one's own
    parts.py            what an explainer file hands over: Explanation, Case, Page, Example
    gradcheck_cli.py    npae gradcheck OP: the per-input gradient report
    docs.py             the generated operation guide in docs/
    shape_solver.py     npae shapes: every layer's output size and the decoder settings
"""
