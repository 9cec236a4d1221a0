"""Shared test setup: hypothesis profiles and small helpers.

Profiles (pick with HYPOTHESIS_PROFILE): "ci" (the default; sized for 2 cores), "dev"
(many more examples, for a local soak) and "cudasim" (few examples: the CUDA simulator runs
every GPU thread as Python; ``make test-cuda-sim`` picks it). deadline=None everywhere: the
first call of a kernel compiles it, and that must not count as a slow example.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "cudasim", max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


if os.environ.get("NPAE_TEST_KERNELS") == "cuda":
    # ``make test-cuda-sim`` runs the op tests (tests/ops) with every op routed to the GPU twins,
    # on NumPy arrays under the CUDA simulator: the same check bodies, other kernels.
    @pytest.fixture(autouse=True)
    def _ops_on_gpu_kernels():
        from npae.kernels import cuda as gpu_kernels

        from npae.engine.dispatch import forced_kernels

        with forced_kernels(gpu_kernels):
            yield
