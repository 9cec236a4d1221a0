"""The GPU kernels' tests run in two lanes, never in the plain CPU run:

- ``make test-cuda-sim``: ``NUMBA_ENABLE_CUDASIM=1`` (set before numba.cuda is imported, hence
  a process of its own), the GPU kernels run as Python on NumPy arrays. Every CI run.
- on a machine with a CUDA GPU and CuPy: ``pytest -m gpu``, the same checks on CuPy arrays.

Without either (the plain ``pytest`` of ``make test`` on a CPU machine) this folder is not
collected: ``make test`` runs the simulator lane as its own step.
"""

from cuda_lanes import GPU, SIM

if not (SIM or GPU):
    collect_ignore_glob = ["test_*.py"]
