"""The package as a whole: build flavour, configuration report, docstring examples."""
import contextlib
import doctest
import os
import subprocess
import sys

import numpy as np
import pytest

import pyconv1d
from pyconv1d import functional


def _env(**extra):
    """The environment for a child Python that imports the same pyconv1d as this process."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyconv1d.__file__)))
    path = os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return dict(os.environ, PYTHONPATH=path, **extra)


def test_openmp_flag_matches_the_requested_build():
    requested = os.environ.get("PYCONV1D_OPENMP")
    if requested in ("0", "1"):
        assert pyconv1d.openmp_enabled() is (requested == "1")
    else:
        assert isinstance(pyconv1d.openmp_enabled(), bool)
    if not pyconv1d.openmp_enabled():
        assert pyconv1d.default_num_threads() == 1


def test_python_m_reports_version_openmp_threads_vectors_and_blas(tmp_path):
    # run outside the checkout, so that the installed package is the one imported
    out = subprocess.run([sys.executable, "-m", "pyconv1d"], capture_output=True, text=True,
                         env=_env(), cwd=tmp_path, check=True).stdout
    assert f"pyconv1d {pyconv1d.__version__}" in out
    assert ("enabled" if pyconv1d.openmp_enabled() else "disabled") in out
    assert f"default threads: {pyconv1d.default_num_threads()}" in out
    assert "direct-path vectors: " in out
    assert ("direct-path vectors: 64-byte" in out) == pyconv1d.functional.WIDE_VECTORS
    assert ("gemm path with unit strides: packed" in out) == pyconv1d.functional.PACKED_GEMM
    assert ("weight gradient of few pairs (input channel, tap): over vectors" in out) == \
        pyconv1d.functional.VECTOR_WEIGHT
    f = pyconv1d.functional
    least = f.WIDE_WINOGRAD_MIN_CHANNELS if f.WIDE_VECTORS else f.WINOGRAD_MIN_CHANNELS
    assert f"float64 layers of {least}+ channels, " in out
    assert ("the forward and input gradient of 1 x 4-5 kernels" in out) == f.WIDE_VECTORS
    assert "unit column stride: Winograd's minimal filtering (8 products" in out
    assert (f"conv1d with strides of {f.WINDOWS_MIN_STRIDE}+ (unpadded, undilated, "
            "ungrouped): ") in out
    assert ("the gradients read the windows in place (the forward: packed tiles)" in out) == \
        f.PACKED_GEMM
    assert "BLAS:" in out


def test_omp_num_threads_sets_the_default(tmp_path):
    if not pyconv1d.openmp_enabled():
        pytest.skip("serial build")
    code = "import pyconv1d; print(pyconv1d.default_num_threads())"
    env = _env(OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=tmp_path, check=True).stdout
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


def test_blas_is_single_threaded_inside_and_restored_after():
    """Every OpenBLAS found (scipy's, which the kernels call, and numpy's, which Linear and the
    mel filterbank call) runs one thread inside ``single_threaded`` and gets its count back."""
    from pyconv1d import _blas
    if not _blas.controllable():
        pytest.skip("no OpenBLAS thread control found")
    before = [get() for get, _, _ in _blas._CONTROLS]
    for _, setter, _ in _blas._CONTROLS:
        setter(2)
    set_to = [get() for get, _, _ in _blas._CONTROLS]     # 2, or fewer on a 1-core machine
    try:
        with _blas.single_threaded():
            with _blas.single_threaded():          # nested
                assert [get() for get, _, _ in _blas._CONTROLS] == [1] * len(_blas._CONTROLS)
            assert [get() for get, _, _ in _blas._CONTROLS] == [1] * len(_blas._CONTROLS)
        assert [get() for get, _, _ in _blas._CONTROLS] == set_to
        paths = " ".join(path for _, _, path in _blas._CONTROLS)
        assert "scipy" in paths
    finally:
        for (_, setter, _), n in zip(_blas._CONTROLS, before):
            setter(n)


def test_blas_is_limited_around_the_kernels_that_call_it(monkeypatch):
    """The forward and backward limit BLAS's threads (single_threaded) around the unrolled
    products only: a direct forward or backward leaves the thread counts alone."""
    from pyconv1d import _blas, conv1d, conv1d_backward, functional
    entered = []

    def spy():
        entered.append(True)
        return contextlib.nullcontext()

    monkeypatch.setattr(functional._blas, "single_threaded", spy)
    x = np.ones((2, 8, 40), np.float32)
    w = np.ones((16, 8, 3), np.float32)
    g = np.ones((2, 16, 38), np.float32)
    conv1d(x, w, algorithm="direct")
    conv1d_backward(g, x, w, algorithm="direct")
    assert entered == []
    conv1d_backward(g, x, w, output_mask=(False, True, False), algorithm="gemm")
    assert entered == [True]       # the unrolled weight gradient


def test_quickstart_runs_and_its_checks_hold(load_example, capsys):
    """The README's first command: the quick start's own checks (layer 1 against
    scipy.signal.correlate, causality, the same bits on 1 and 2 threads) print as passed."""
    qs = load_example("quickstart.py")
    qs.main(["--batch", "2", "--length", "600", "--channels", "4", "--threads", "1", "2",
             "--repeats", "1"])
    out = capsys.readouterr().out
    error = float(out.split("max abs error ")[1].split()[0])
    assert error < 1e-5
    assert "unchanged by the future: True" in out
    assert "bitwise identical across thread counts [1, 2]: True" in out
    with pytest.raises(SystemExit):
        qs.main(["--repeats", "0"])
    assert "--repeats must be >= 1, got 0" in capsys.readouterr().err
