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
    """(getter, setter, path) of every loaded OpenBLAS: scipy's (which the kernels call) and
    numpy's (which numpy's products call; the wheels ship one copy each)."""
    found, seen = [], set()
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
                address = ctypes.cast(setter, ctypes.c_void_p).value
                if address not in seen:       # a library reached through another's links
                    seen.add(address)
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    found.append((getter, setter, path))
                break
    return found


_CONTROLS = _find_controls()
LIBRARY = _CONTROLS[0][2] if _CONTROLS else None
_lock = threading.Lock()
_depth = 0
_saved = []


def controllable():
    """True when pyconv1d can limit the BLAS thread count."""
    return bool(_CONTROLS)


@contextlib.contextmanager
def single_threaded():
    """Run the body with every loaded OpenBLAS limited to one thread (nested and concurrent uses
    are safe).

    The kernels run every BLAS call inside OpenMP threads, and the layers run their own numpy
    products (Linear, the mel filterbank, the norms of gradient clipping) here too: OpenBLAS's
    idle worker threads spin for a while after each multi-threaded call, and on a machine with
    as many cores as OpenMP threads they then take the cores from the next kernel."""
    global _depth, _saved
    if not _CONTROLS:
        yield
        return
    with _lock:
        if _depth == 0:
            _saved = [getter() for getter, _, _ in _CONTROLS]
            for (_, setter, _), n in zip(_CONTROLS, _saved):
                if n != 1:
                    setter(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for (_, setter, _), n in zip(_CONTROLS, _saved):
                    if n not in (None, 1):
                        setter(n)
