"""``python -m pyconv1d``: print the build and runtime configuration."""
import platform

import numpy as np
import scipy

import pyconv1d
from pyconv1d import _blas as blas_control
from pyconv1d import functional


def _blas():
    try:
        deps = scipy.show_config(mode="dicts")["Build Dependencies"]
        blas = deps["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip() + " (scipy)"
    except Exception:  # pragma: no cover - old scipy without mode='dicts'
        return "unknown"


def main():
    print(f"pyconv1d {pyconv1d.__version__}")
    print(f"OpenMP: {'enabled' if pyconv1d.openmp_enabled() else 'disabled (serial build)'}")
    print(f"default threads: {pyconv1d.default_num_threads()}")
    print("direct-path vectors: " + ("64-byte (AVX-512)" if functional.WIDE_VECTORS else
                                     "narrower than 64 bytes ('auto' unrolls from fewer "
                                     "outputs per group)"))
    print("gemm path with unit strides: " + (
        "packed tiles, no unroll (AVX2+FMA)" if functional.PACKED_GEMM else
        "unroll + BLAS"))
    print("weight gradient of few pairs (input channel, tap): " + (
        "over vectors of output channels (AVX2+FMA)" if functional.VECTOR_WEIGHT else
        "unroll or direct planes"))
    if functional.WIDE_VECTORS:
        print(f"float64 layers of {functional.WIDE_WINOGRAD_MIN_CHANNELS}+ channels, unit "
              "column stride: Winograd's minimal filtering (8 products for 9 - KW outputs) "
              "for the weight gradient from 3 kernel columns, the forward and input "
              "gradient of 1 x 4-5 kernels")
    else:
        print(f"float64 layers of {functional.WINOGRAD_MIN_CHANNELS}+ channels, 2-7 kernel "
              "columns, unit column stride: Winograd's minimal filtering (8 products for "
              "9 - KW outputs)")
    print(f"conv1d with strides of {functional.WINDOWS_MIN_STRIDE}+ (unpadded, undilated, "
          "ungrouped): " + ("the gradients read the windows in place (the forward: packed "
                            "tiles)" if functional.PACKED_GEMM else
                            "the gemm path reads the windows in place, no unroll"))
    n_libs = len(blas_control._CONTROLS)
    print(f"BLAS: {_blas()}; held to one thread inside the kernels and layers: "
          + (f"yes ({n_libs} OpenBLAS {'library' if n_libs == 1 else 'libraries'})"
             if blas_control.controllable() else "no (BLAS thread count not found)"))
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, "
          f"Python {platform.python_version()} on {platform.machine()}")


if __name__ == "__main__":
    main()
