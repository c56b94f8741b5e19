"""Keep BLAS single-threaded while the OpenMP kernels call it.

The gemm kernels call scipy's BLAS from inside OpenMP threads. A multi-threaded BLAS there would
start threads inside threads (oversubscription) and could make results depend on its thread
count, so while a kernel runs, :func:`single_threaded` sets the BLAS thread count to one and
then restores it. It finds OpenBLAS (what scipy's wheels ship) among the loaded libraries; with
another BLAS, where nothing can be found, the calls go ahead unchanged.
"""
import contextlib
import ctypes
import glob
import os
import threading

import scipy
import scipy.linalg.cython_blas  # noqa: F401  (loads the library the kernels call)

_SET_NAMES = ("scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
              "openblas_set_num_threads", "openblas_set_num_threads64_")


def _candidate_paths():
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split()
                if len(parts) >= 6 and "blas" in os.path.basename(parts[-1]).lower():
                    paths.append(parts[-1])
    except OSError:
        pass
    root = os.path.dirname(scipy.__file__)
    for pattern in ("../scipy.libs/*blas*", ".dylibs/*blas*", "../scipy.libs/*.dll"):
        paths.extend(glob.glob(os.path.join(root, pattern)))
    return list(dict.fromkeys(paths))


def _find_controls():
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name in _SET_NAMES:
            get_name = set_name.replace("_set_", "_get_")
            setter = getattr(lib, set_name, None)
            getter = getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return getter, setter, path
    return None, None, None


_get, _set, LIBRARY = _find_controls()
_lock = threading.Lock()
_depth = 0
_saved = None


def controllable():
    """True when pyconv1d can limit the BLAS thread count."""
    return _set is not None


@contextlib.contextmanager
def single_threaded():
    """Run the body with BLAS limited to one thread (nested and concurrent uses are safe)."""
    global _depth, _saved
    if _set is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = _get()
            if _saved != 1:
                _set(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved not in (None, 1):
                _set(_saved)
