"""npae/engine/threads.py: BLAS held at a set number of threads inside npae's forward and backward
passes when asked (set_blas_threads), and given back its own setting afterwards."""

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import npae
from npae import nn
from npae.engine import threads


def _blas_threads_now():
    return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]


class _Probe(nn.Module):
    """Records the BLAS thread counts seen inside its forward and its backward."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        self.seen.append(("forward", _blas_threads_now()))
        return _Record.apply(self.lin(x), seen=self.seen)


class _Record(npae.Function):
    @staticmethod
    def forward(ctx, x, seen):
        ctx.seen = seen
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        ctx.seen.append(("backward", _blas_threads_now()))
        return g


@pytest.fixture
def two_blas_threads():
    if not _blas_threads_now():
        pytest.skip("threadpoolctl finds no BLAS library here")
    from threadpoolctl import threadpool_limits

    threads.set_blas_threads(1)
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            yield _blas_threads_now()
    finally:
        threads.set_blas_threads(None)  # the default


def test_blas_runs_on_one_thread_inside_forward_and_backward_only(two_blas_threads):
    seen = []
    model = _Probe(seen)
    x = npae.Tensor(np.ones((2, 4), np.float32))
    model(x).sum().backward()
    assert seen == [("forward", [1] * len(two_blas_threads)),
                    ("backward", [1] * len(two_blas_threads))]
    assert _blas_threads_now() == two_blas_threads  # the program's own setting, given back


def test_set_blas_threads_none_leaves_blas_alone(two_blas_threads):
    seen = []
    model = _Probe(seen)
    threads.set_blas_threads(None)
    model(npae.Tensor(np.ones((2, 4), np.float32))).sum().backward()
    assert [s[1] for s in seen] == [two_blas_threads, two_blas_threads]


def test_blas_is_left_alone_by_default():
    assert npae.engine.threads.blas_threads() is None


def test_thread_settings_refuse_bad_counts():
    with pytest.raises(ValueError, match="positive"):
        npae.set_blas_threads(0)
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        npae.set_num_threads(0)
    assert npae.get_num_threads() >= 1


def test_the_pool_starts_with_a_short_spin_and_the_environment_is_given_back(monkeypatch):
    # GNU OpenMP reads GOMP_SPINCOUNT once, when it loads: start_pool sets it for that moment
    import numba
    from numba.np.ufunc import parallel

    seen = []
    monkeypatch.setattr(threads, "_pool_started", False)
    monkeypatch.setattr(parallel, "_is_initialized", False)
    monkeypatch.setattr(numba, "get_num_threads", lambda: seen.append(
        os.environ.get("GOMP_SPINCOUNT")))
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.start_pool()
    assert seen == [str(threads.SPIN_COUNT)]
    assert "GOMP_SPINCOUNT" not in os.environ
    threads.start_pool()  # once only
    assert len(seen) == 1


@pytest.mark.parametrize("variable", ["GOMP_SPINCOUNT", "OMP_WAIT_POLICY"])
def test_a_users_openmp_setting_is_left_alone(monkeypatch, variable):
    import numba
    from numba.np.ufunc import parallel

    seen = []
    monkeypatch.setattr(threads, "_pool_started", False)
    monkeypatch.setattr(parallel, "_is_initialized", False)
    monkeypatch.setattr(numba, "get_num_threads", lambda: seen.append(1))
    monkeypatch.setenv(variable, "passive" if variable == "OMP_WAIT_POLICY" else "5")
    threads.start_pool()
    assert seen == []  # not started by npae: the runtime starts on the first kernel, as set
    assert os.environ[variable] in ("passive", "5")
