"""Peer benchmark of ``pyconv1d.conv2d`` / ``conv2d_backward`` against numpy im2col and PyTorch.

The same table as ``bench_conv1d.py`` (see ``_common.py`` for the method): median milliseconds of
each peer from interleaved repeats, pyconv1d's GFLOP/s and fraction of numpy's GEMM GFLOP/s, the
ratios torch/pyconv1d and im2col/pyconv1d (> 1: pyconv1d is faster) and a check column (each
peer's result against a float64 im2col reference).

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv2d.py --quick
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv2d.py \
        --json conv2d.json --md conv2d.md

Benchmark runs use ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``; tests never unset them.

Cases: 3x3 kernels, stride 1, padding 1 ('same', as keyword-spotting CNNs use them):

=================  ==  ====  =====  ======  ====================================================
name               N   C_in  C_out  HxW     notes
=================  ==  ====  =====  ======  ====================================================
img64-c1           32  1     32     64x64   first layer over a single-channel image
img64-c3           32  3     32     64x64   first layer over an RGB image
kws-c1             32  1     32     40x101  first layer over 40 log-mel bands x 101 frames
img32-c32          32  32    64     32x32   a hidden layer
kws-depthwise-c16  16  16    16     40x101  depthwise, groups 16
=================  ==  ====  =====  ======  ====================================================
"""

import sys

try:
    from ._common import Case, run_benchmark
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    from _common import Case, run_benchmark

CASES = [
    Case("img64-c1", 32, 1, 32, (64, 64), (3, 3), padding=1),
    Case("img64-c3", 32, 3, 32, (64, 64), (3, 3), padding=1),
    Case("kws-c1", 32, 1, 32, (40, 101), (3, 3), padding=1),
    Case("img32-c32", 32, 32, 64, (32, 32), (3, 3), padding=1),
    Case("kws-depthwise-c16", 16, 16, 16, (40, 101), (3, 3), padding=1, groups=16),
]


def main(argv=None):
    rows = run_benchmark("pyconv1d conv2d benchmark", CASES, argv)
    return 1 if rows == [] else 0


if __name__ == "__main__":
    sys.exit(main())
