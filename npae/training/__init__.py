"""The training application: the loop, its checkpoints, the figures and the demo report.

    loop.py        npae train / npae eval: train(), evaluate(), load_model()
    runfolder.py   the run folder: checked writable, locked for one run, stale temporaries removed
    checkpoint.py  atomic, pickle-free .npz checkpoints
    figures.py     reconstructions, loss curves, sample grids, the checkerboard measurements
    report.py      npae demo: every model of the article trained, one report.md
"""
