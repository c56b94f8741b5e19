"""The package as a whole: build flavour, configuration report, docstring examples."""
import doctest
import os
import subprocess
import sys

import pytest

import pyconv1d
from pyconv1d import functional


def test_openmp_flag_matches_the_requested_build():
    requested = os.environ.get("PYCONV1D_OPENMP")
    if requested in ("0", "1"):
        assert pyconv1d.openmp_enabled() is (requested == "1")
    else:
        assert isinstance(pyconv1d.openmp_enabled(), bool)
    if not pyconv1d.openmp_enabled():
        assert pyconv1d.default_num_threads() == 1


def test_python_m_reports_version_openmp_threads_and_blas():
    out = subprocess.run([sys.executable, "-m", "pyconv1d"], capture_output=True, text=True,
                         check=True).stdout
    assert f"pyconv1d {pyconv1d.__version__}" in out
    assert ("enabled" if pyconv1d.openmp_enabled() else "disabled") in out
    assert f"default threads: {pyconv1d.default_num_threads()}" in out
    assert "BLAS:" in out


def test_omp_num_threads_sets_the_default():
    if not pyconv1d.openmp_enabled():
        pytest.skip("serial build")
    code = "import pyconv1d; print(pyconv1d.default_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "3"


@pytest.mark.parametrize("module", [pyconv1d, functional])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names_are_exported_and_documented():
    for name in pyconv1d.__all__:
        obj = getattr(pyconv1d, name)
        if callable(obj):
            assert obj.__doc__, name
