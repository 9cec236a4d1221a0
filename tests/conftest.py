"""Shared test setup: hypothesis profiles and small helpers.

Profiles (pick with HYPOTHESIS_PROFILE): "ci" (the default; sized for 2 cores) and "dev"
(many more examples, for a local soak). deadline=None everywhere: the first call of a kernel
compiles it, and that must not count as a slow example.
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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
