"""Peer benchmark of ``pyconv1d.conv1d`` / ``conv1d_backward`` against numpy im2col and PyTorch.

Prints a Markdown table: median milliseconds of each peer (interleaved repeats), pyconv1d's
GFLOP/s and its fraction of numpy's GEMM GFLOP/s measured in the same run, the time ratios
torch/pyconv1d and im2col/pyconv1d (> 1: pyconv1d is faster), and a check column that warns when a
result differs from the float64 im2col reference. See ``_common.py`` for the method.

Run from the repository root, with pyconv1d built in place or installed::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv1d.py --quick
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv1d.py \
        --threads 1 2 --dtype float32 float64 --json conv1d.json --md conv1d.md
    python benchmarks/bench_conv1d.py --list            # the cases
    python benchmarks/bench_conv1d.py --filter wav      # the waveform front-ends only

Benchmark runs use ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` (those variables make
OpenBLAS, numpy's BLAS, run kernels chosen for another CPU); tests never unset them. torch is an
optional peer: without it the torch column stays empty.

Cases (padding 0 unless given):

==================  =====  ====  =====  =====  =====  ===============================================
name                N      C_in  C_out  L      K      notes
==================  =====  ====  =====  =====  =====  ===============================================
textcnn-k3/4/5      50     300   100    64     3/4/5  sentence CNN over 300-d word embeddings
kim-k3/4/5          50     50    100    60     3/4/5  Kim (2014) CNN layer, 50-d embeddings
mid-128             32     128   128    256    3      a generic hidden layer
mel80-k5            16     80    256    1000   5      first layer over 80 log-mel bands
dilated-d2          8      256   256    1000   3      dilation 2
wav-k400-s160       8      1     64     16000  400    1 s of 16 kHz audio, 25 ms / 10 ms frames
wav-k80-s4          8      1     64     16000  80     SincNet/wav2letter-style front-end, stride 4
depthwise-k31       8      256   256    1000   31     groups 256, padding 15 (Conformer conv)
grouped-g32         8      256   256    1000   5      groups 32 (8 channels each), padding 2
tcn-d8              16     128   128    2000   3      dilation 8, padding 16 = (K-1)*dilation: the
                                                      causal-equivalent symmetric padding (a causal
                                                      TCN drops the last 16 outputs afterwards)
==================  =====  ====  =====  =====  =====  ===============================================
"""

import sys

try:
    from ._common import Case, run_benchmark
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    from _common import Case, run_benchmark

CASES = (
    [Case(f"textcnn-k{k}", 50, 300, 100, (64,), (k,)) for k in (3, 4, 5)]
    + [Case(f"kim-k{k}", 50, 50, 100, (60,), (k,), note="Kim-CNN layer") for k in (3, 4, 5)]
    + [
        Case("mid-128", 32, 128, 128, (256,), (3,)),
        Case("mel80-k5", 16, 80, 256, (1000,), (5,)),
        Case("dilated-d2", 8, 256, 256, (1000,), (3,), dilation=2),
        Case("wav-k400-s160", 8, 1, 64, (16000,), (400,), stride=160),
        Case("wav-k80-s4", 8, 1, 64, (16000,), (80,), stride=4),
        Case("depthwise-k31", 8, 256, 256, (1000,), (31,), padding=15, groups=256,
             note="Conformer depthwise conv, 'same' padding"),
        Case("grouped-g32", 8, 256, 256, (1000,), (5,), padding=2, groups=32,
             note="grouped conv, 8 channels per group, 'same' padding"),
        Case("tcn-d8", 16, 128, 128, (2000,), (3,), dilation=8, padding=16,
             note="TCN block conv, causal-equivalent padding (K-1)*dilation"),
    ]
)


def main(argv=None):
    rows = run_benchmark("pyconv1d conv1d benchmark", CASES, argv)
    return 1 if rows == [] else 0


if __name__ == "__main__":
    sys.exit(main())
