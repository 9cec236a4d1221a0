"""How npae installs: kernels/ ships as npae.kernels (never a top-level `kernels`), the JIT cache
survives a read-only install, and the docstring examples run."""

import doctest
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import npae

REPO = Path(__file__).resolve().parents[1]


def test_kernels_install_as_npae_kernels_not_top_level(tmp_path):
    # from a neutral directory, `kernels` must not resolve to this project
    code = ("import importlib.util, npae.kernels; s = importlib.util.find_spec('kernels'); "
            "print(s.origin if s else None); print(npae.kernels.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[1] == "npae.kernels"
    assert out[0] == "None" or not out[0].startswith(str(REPO)), out[0]


def test_tests_import_kernels_through_npae():
    import npae.kernels

    assert npae.kernels.conv2d_fwd.__module__ == "npae.kernels.conv2d"
    assert "kernels" not in sys.modules or not str(
        getattr(sys.modules["kernels"], "__file__", "")).startswith(str(REPO))


def test_jit_cache_falls_back_to_a_user_directory_when_installed_read_only(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(REPO / "npae", site / "npae", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "kernels", site / "npae" / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # Make the package unwritable in a way that also binds root (CI runs as root, and root
    # ignores file modes): a plain file named __pycache__ in each package directory leaves
    # nowhere to put a cache beside the sources. Non-root users get read-only modes as well.
    for package in (site / "npae", site / "npae" / "ops", site / "npae" / "kernels"):
        (package / "__pycache__").write_text("read-only install\n")
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(cache), PYTHONDONTWRITEBYTECODE="1",
               NUMBA_DEBUG_CACHE="1")
    code = (
        "import numpy as np, npae, npae.kernels as K;"
        f"assert npae.__file__.startswith({str(site)!r}), npae.__file__;"
        "rows = np.array([0, 0, 1, 1]);"
        "y = K.upsample_nearest2d_fwd(np.ones((1, 1, 2, 2)), rows, rows);"
        "print(y.shape)"
    )
    try:
        logs = []
        for _ in range(2):  # the second run loads what the first one cached
            run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                 capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
            assert run.stdout.strip().splitlines()[-1] == "(1, 1, 4, 4)"
            logs.append(run.stdout + run.stderr)
        # NUMBA_DEBUG_CACHE reports each cache save and load
        assert "index saved to" in logs[0] and str(cache) in logs[0]
        assert "data loaded from" in logs[1] and "data saved to" not in logs[1]
        assert not list(site.rglob("*.nbi")), "wrote a cache into the read-only package"
        assert list(cache.rglob("*.nbi")), "no JIT cache in the user cache directory"
    finally:
        for path in site.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # let pytest clean tmp_path


MODULES = ["npae", "npae.engine.gradcheck", "npae.engine.tensor", "npae.ops.conv2d",
           "npae.ops.conv_transpose2d", "npae.ops.max_pool2d", "npae.ops.max_unpool2d",
           "npae.ops.upsample_nearest2d"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np, "Tensor": npae.Tensor}, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def _glibc():
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").gnu_get_libc_version)
    except (OSError, AttributeError):
        return False


def test_npae_leaves_the_host_process_environment_alone():
    # a library must not change its host's environment (thread pools read it when they start):
    # not at import, and not once its kernels have run
    code = ("import os; before = dict(os.environ); import numpy as np, npae, npae.models; "
            "m = npae.models.create('conv-transpose'); "
            "m.loss(*[npae.Tensor(np.zeros((2, 1, 28, 28), np.float32))] * 2).backward(); "
            "print(dict(os.environ) == before)")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOMP_", "OMP_", "OPENBLAS_", "MKL_", "NUMBA_"))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "True"
