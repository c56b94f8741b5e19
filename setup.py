"""Build the Cython kernels of pyconv1d.

Only the extensions and the OpenMP probe live here; metadata is in pyproject.toml.

Environment variables
---------------------
PYCONV1D_OPENMP=1 / =0   force the OpenMP build on or off (default: probe the compiler).
PYCONV1D_NATIVE=1        compile with -march=native (faster on the build machine, not portable).
PYCONV1D_DEBUG=1         turn Cython's bounds and wraparound checks back on.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["_conv", "_pool", "_norm", "_optim", "_embed"]
#: Kernels whose arithmetic must round each operation on its own (no fused multiply-add): the
#: optimiser steps give the bits of the NumPy expressions they replace. (Without errno, sqrt
#: vectorises; its results are the same.)
NO_CONTRACT = {"_optim"}
EXACT_FLAGS = ["-ffp-contract=off", "-fno-math-errno"]
#: The C headers of the loops (src/_simd.h, and src/_optim.h for _optim only).
HEADERS = [os.path.join("src", h) for h in ("_simd.h", "_optim.h")]

_OMP_TEST = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n > 0 && omp_get_max_threads() > 0);
    return 0;
}
"""


def _env_flag(name):
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be 0 or 1, got {value!r}")


def _openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or None when unavailable."""
    if sys.platform == "win32":
        return ["/openmp"], []
    flags = (["-fopenmp"], ["-fopenmp"])
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    tmp = tempfile.mkdtemp(prefix="pyconv1d-omp-")
    try:
        src = os.path.join(tmp, "omp_test.c")
        exe = os.path.join(tmp, "omp_test")
        with open(src, "w") as f:
            f.write(_OMP_TEST)
        result = subprocess.run(cc + flags[0] + [src, "-o", exe] + flags[1],
                                capture_output=True, text=True)
        if result.returncode != 0:
            return None
        out = subprocess.run([exe], capture_output=True, text=True)
        if out.returncode != 0 or out.stdout.strip() != "1":
            return None
        return flags
    except OSError:
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extensions():
    want = _env_flag("PYCONV1D_OPENMP")
    omp = None
    if want is not False:
        omp = _openmp_flags()
        if omp is None:
            if want:
                raise SystemExit("PYCONV1D_OPENMP=1 but the compiler cannot build OpenMP code")
            warnings.warn("pyconv1d: the C compiler does not support OpenMP; building serial "
                          "kernels (correct, single-threaded)")
    compile_args, link_args = (omp if omp else ([], []))
    compile_args = list(compile_args)
    if sys.platform != "win32":
        compile_args += ["-O3"]
        if _env_flag("PYCONV1D_NATIVE"):
            compile_args += ["-march=native"]
    debug = bool(_env_flag("PYCONV1D_DEBUG"))
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "cdivision": True,
    }
    missing = [n for n in KERNELS if not os.path.exists(os.path.join("src", f"{n}.pyx"))]
    if missing:       # an incomplete sdist would otherwise install a package without kernels
        raise SystemExit(f"pyconv1d: the kernel sources src/{{{','.join(missing)}}}.pyx are "
                         f"missing; build from a source checkout or a complete sdist")
    exts = [
        Extension(
            f"pyconv1d.{name}",
            [os.path.join("src", f"{name}.pyx")],
            include_dirs=[np.get_include(), "src"],
            depends=HEADERS,                    # rebuilt when the C loops change
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=compile_args + (
                EXACT_FLAGS if name in NO_CONTRACT and sys.platform != "win32" else []),
            extra_link_args=list(link_args),
        )
        for name in KERNELS
    ]
    return cythonize(exts, compiler_directives=directives, include_path=["src"])


setup(ext_modules=_extensions())
