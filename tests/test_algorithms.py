"""The three algorithms behind every conv call: the automatic choice, the FFT path against the
scipy references, and bitwise agreement of direct and gemm on integer-valued data."""
import itertools
import math
import sys

import numpy as np
import pytest

from _reference import assert_close, conv_backward, conv_forward
from pyconv1d import _conv, conv1d, conv1d_backward, conv2d, conv2d_backward, functional
from pyconv1d.functional import choose_algorithm

FUNCS = {1: (conv1d, conv1d_backward), 2: (conv2d, conv2d_backward)}


@pytest.fixture
def wide_rules(monkeypatch):
    """'auto' as on a CPU with AVX-512, where the direct path's limits were calibrated and
    the gemm path unrolls (the tests that name the path each shape takes there run on any
    CPU)."""
    monkeypatch.setattr(functional, "WIDE_VECTORS", True)
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    monkeypatch.setattr(functional, "VECTOR_WEIGHT", False)


@pytest.fixture
def narrow_rules(monkeypatch):
    """'auto' as on a CPU without AVX-512 nor the packed path (SSE2, arm64)."""
    monkeypatch.setattr(functional, "WIDE_VECTORS", False)
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    monkeypatch.setattr(functional, "VECTOR_WEIGHT", False)


@pytest.fixture
def packed_rules(monkeypatch):
    """'auto' as on a CPU with AVX2+FMA and without AVX-512, where the gemm path's forward
    and input gradient with unit strides run the packed tiles (on any CPU: elsewhere the
    tiles run the kernels' baseline code, with the same bits), the rules of the passes
    measured before the weight gradient over vectors of output channels, which these
    fixtures turn off (VECTOR_WEIGHT: test_weight_gradient_over_vectors_of_outputs)."""
    monkeypatch.setattr(functional, "WIDE_VECTORS", False)
    monkeypatch.setattr(functional, "PACKED_GEMM", True)
    monkeypatch.setattr(functional, "VECTOR_WEIGHT", False)


@pytest.fixture
def kernel_paths(monkeypatch):
    """(kernel, path) of each pass run by the direct-or-unroll kernels, in call order: kernel
    'forward', 'grad_input' or 'grad_weight', path 'gemm' or 'direct' (their use_gemm
    flag). Bits cannot always tell: where BLAS sums a product in the direct loops' order
    (OpenBLAS's AVX-512 sgemm does) the two agree exactly."""
    paths = []

    def spy(name, flag_at):
        real = getattr(_conv, name)

        def run(*args):
            paths.append((name, "gemm" if args[flag_at] else "direct"))
            return real(*args)
        monkeypatch.setattr(_conv, name, run)
    spy("forward", -2)
    spy("grad_input", -3)
    spy("grad_weight", -4)
    return paths


def _case(rng, nd, n, c, o, groups, k, length, dtype):
    x = rng.standard_normal((n, c) + (length,) * nd).astype(dtype)
    w = rng.standard_normal((o, c // groups) + (k,) * nd).astype(dtype)
    return x, w


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("stride,dilation,padding", [
    (1, 1, 0), (1, 2, "same"), (2, 1, 1), (3, 2, "valid"), (1, 1, "causal"),
])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_fft_matches_scipy_reference(dtype, nd, stride, dilation, padding, groups):
    if nd == 2 and padding == "causal":
        pytest.skip("causal padding is a conv1d form")
    rng = np.random.default_rng([nd, stride, dilation, groups])
    k, length = (5, 37) if nd == 1 else (3, 11)
    x, w = _case(rng, nd, 3, 4, 8, groups, k, length, dtype)
    b = rng.standard_normal(8).astype(dtype)
    fwd, bwd = FUNCS[nd]
    y = fwd(x, w, b, stride, padding, dilation, groups, algorithm="fft")
    ref = conv_forward(x, w, b, stride, padding, dilation, groups)
    taps = k ** nd * 4 // groups
    assert y.dtype == dtype
    assert_close(y, ref, dtype, 4 * taps, "fft forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    gi, gw, gb = bwd(g, x, w, stride, padding, dilation, groups, algorithm="fft")
    rgi, rgw, rgb = conv_backward(g, x, w, stride, padding, dilation, groups)
    assert gi.dtype == gw.dtype == dtype
    assert_close(gi, rgi, dtype, 4 * taps * 2, "fft grad_input")
    assert_close(gw, rgw, dtype, 4 * g[:, 0].size, "fft grad_weight")
    assert_close(gb, rgb, dtype, g[:, 0].size, "fft grad_bias")


def test_fft_overlap_save_blocks_long_signal():
    """A signal much longer than the kernel goes through the blocked forward pass."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 3001))
    w = rng.standard_normal((5, 3, 101))
    for padding in (0, "same", (100, 0)):
        y = conv1d(x, w, padding=padding, algorithm="fft")
        assert_close(y, conv_forward(x, w, padding=padding), np.float64, 303, "blocks")


@pytest.mark.parametrize("nd", [1, 2])
def test_fft_unbatched_and_thread_count(nd):
    rng = np.random.default_rng(3)
    x, w = _case(rng, nd, 2, 6, 6, 1, 9, 40 if nd == 1 else 17, np.float32)
    fwd, bwd = FUNCS[nd]
    y1 = fwd(x, w, algorithm="fft", num_threads=1)
    g = np.ones_like(y1)
    r1 = bwd(g, x, w, algorithm="fft", num_threads=1)
    for threads in (2, 3):
        assert np.array_equal(fwd(x, w, algorithm="fft", num_threads=threads), y1)
        for a, b in zip(bwd(g, x, w, algorithm="fft", num_threads=threads), r1):
            assert np.array_equal(a, b)
    # a different batch size changes the per-frequency products: equal to rounding only
    np.testing.assert_allclose(fwd(x[0], w, algorithm="fft"), y1[0], rtol=1e-5, atol=1e-4)
    assert bwd(g[0], x[0], w, algorithm="fft").grad_input.shape == x[0].shape


def _assert_direct_equals_gemm(nd, x, w, args, rng, threads):
    """Forward and backward of direct on 1 thread, gemm on 1 and on ``threads``: the same
    bits (integer-valued x, w and grad_output make every sum exact)."""
    fwd, bwd = FUNCS[nd]
    runs = (("direct", 1), ("gemm", 1), ("gemm", threads))
    ys = [fwd(x, w, *args, algorithm=a, num_threads=t) for a, t in runs]
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])
    g = rng.integers(-3, 4, ys[0].shape).astype(x.dtype)
    gs = [bwd(g, x, w, *args[1:], algorithm=a, num_threads=t) for a, t in runs]
    for other in gs[1:]:
        for a, b in zip(gs[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("nd", [1, 2])
def test_direct_and_gemm_agree_bitwise_on_integers(nd):
    """Integer-valued data make every sum exact: both paths must give the same bits, for
    planes smaller than a gemm block (several samples per block) and larger ones."""
    rng = np.random.default_rng(11)
    lengths = (5, 30, 700) if nd == 1 else (5, 12)
    for n, length, k, stride, groups in itertools.product((1, 7), lengths, (1, 3), (1, 2),
                                                          (1, 2)):
        x = rng.integers(-3, 4, (n, 8) + (length,) * nd).astype(np.float32)
        w = rng.integers(-3, 4, (16, 8 // groups) + (k,) * nd).astype(np.float32)
        _assert_direct_equals_gemm(nd, x, w, (None, stride, "same", 1, groups), rng, 3)


@pytest.mark.parametrize("nd", [1, 2])
@pytest.mark.parametrize("n", [16, 17, 23, 50])
def test_gemm_blocks_of_several_samples_agree_bitwise_with_direct(nd, n):
    """From 16 samples on, small planes share a gemm block, N // 8 samples at most: 16 as 8
    blocks of 2, 17 and 23 as 8 and 11 blocks of 2 and a last one of 1, 50 as 8 blocks of 6
    and one of 2. Every sample must land where it belongs, in the forward and both gradients,
    on 1 and 3 threads."""
    rng = np.random.default_rng(n)
    length = 11 if nd == 1 else 5
    for stride, groups in ((1, 1), (2, 2)):
        x = rng.integers(-3, 4, (n, 4) + (length,) * nd).astype(np.float32)
        w = rng.integers(-3, 4, (6, 4 // groups) + (3,) * nd).astype(np.float32)
        _assert_direct_equals_gemm(nd, x, w, (None, stride, 1, 1, groups), rng, 3)
    y = FUNCS[nd][0](x, w, None, 2, 1, 1, 2, algorithm="gemm")
    assert_close(y, conv_forward(x.astype(np.float64), w.astype(np.float64), None, 2, 1, 1,
                                 2), np.float32)


@pytest.mark.parametrize("dtype,length,c_out", [(np.float64, 1500, 64), (np.float32, 2800, 16)])
def test_gemm_weight_gradient_sums_blocks_in_both_layouts(dtype, length, c_out):
    """17 samples whose unrolled planes fill more than half a 4 MiB block each make 17 gemm
    blocks (one sample each), more than the 16 partial sums of the weight gradient: one
    partial adds two blocks. float64 with 64 outputs keeps each partial as (outputs x taps);
    float32 with 16 outputs over 192 taps has BLAS compute its transpose. Both must give
    direct's bits."""
    rng = np.random.default_rng(c_out)
    x = rng.integers(-3, 4, (17, 64, length)).astype(dtype)
    w = rng.integers(-3, 4, (c_out, 64, 3)).astype(dtype)
    _assert_direct_equals_gemm(1, x, w, (None, 1, 0, 1, 1), rng, 2)


@pytest.mark.parametrize("dtype,n,c_in,c_out,length,k,stride,groups,jobs", [
    (np.float32, 8, 128, 128, 2000, 3, 1, 1, (8, 64)),     # parts computed transposed
    (np.float64, 4, 64, 256, 2700, 3, 1, 1, (4, 16)),      # parts as (outputs x taps)
    (np.float32, 3, 100, 128, 2000, 3, 1, 1, (3, 17)),     # 100 channels as 5 x 17 and 15
    (np.float32, 8, 128, 128, 4000, 4, 2, 1, (8, 64)),     # a column stride: phases
    (np.float32, 4, 128, 512, 2700, 3, 1, 2, (4, 32)),     # two groups
    (np.float32, 4, 256, 256, 2700, 3, 1, 2, (4, 64)),     # two groups, transposed
    (np.float32, 96, 128, 128, 130, 3, 1, 1, (16, 128)),   # blocks of 6 samples, not 12
])
def test_gemm_weight_gradient_split_for_16_jobs_agrees_bitwise_with_direct(
        dtype, n, c_in, c_out, length, k, stride, groups, jobs):
    """Shapes whose gemm blocks make fewer than 16 weight-gradient jobs of at least 2**27
    flops each (here 3-8 blocks of 0.15-0.27 GFLOP): the weight gradient splits each block
    by input channels (each job unrolls only its channels and computes only their taps), or
    takes blocks of fewer samples, so that 16 threads have work; ``jobs`` is (reduction
    chunks, input channels per job). Integer data make every sum exact, so gemm must give
    direct's bits, on any thread count."""
    rng = np.random.default_rng(c_in + length)
    x = rng.integers(-3, 4, (n, c_in, length)).astype(dtype)
    w = rng.integers(-3, 4, (c_out, c_in // groups, k)).astype(dtype)
    y_shape = (n, c_out, 1, (length - k) // stride + 1)
    assert _conv.grad_weight_jobs(x.shape[:2] + (1, length), w.shape[:2] + (1, k), y_shape,
                                  (1, stride, 0, 0, 1, 1, groups), x.itemsize) == jobs
    _assert_direct_equals_gemm(1, x, w, (None, stride, 0, 1, groups), rng, 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stride", [1, 3])
def test_gemm_planes_of_several_blocks_agree_bitwise_with_direct(dtype, stride):
    """A plane longer than one gemm block (here 64 channels x 9 taps: a few thousand outputs
    per 4 MiB block) is cut into blocks whose unrolls meet at the block edges: integer data
    make every sum exact, so gemm must give direct's bits, on any thread count."""
    rng = np.random.default_rng(stride)
    x = rng.integers(-3, 4, (2, 64, 9001)).astype(dtype)
    w = rng.integers(-3, 4, (16, 64, 9)).astype(dtype)
    _assert_direct_equals_gemm(1, x, w, (None, stride, "same", 1, 1), rng, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_direct_chunks_of_padded_planes_agree_bitwise_with_gemm(dtype):
    """The direct 2-D forward (input gradient) filters the padded planes of as many input
    (grad_output) channels as fit 128 KiB in one pass: planes of 72 x 92 make chunks of 2
    (float64) or 4 (float32) of the 13 (17) channels, the last one partial. Integer data make
    every sum exact, so direct must give gemm's bits."""
    rng = np.random.default_rng(13)
    x = rng.integers(-3, 4, (2, 13, 70, 90)).astype(dtype)
    w = rng.integers(-3, 4, (17, 13, 3, 3)).astype(dtype)
    _assert_direct_equals_gemm(2, x, w, (None, 1, 1, 1, 1), rng, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,c_in,c_out,hw", [
    (2, 13, 17, (70, 90)),     # one plane per job, chunks of 2 (4) planes of the 13 (17)
    (7, 20, 19, (10, 11)),     # blocks of 8, 8 and 3 planes, each sample's in one chunk; 2
                               # and 3 threads split samples between their blocks
    (16, 9, 10, (12, 11)),     # two blocks per sample: 8 + 2 outputs, 8 + 1 inputs
    (2, 3, 12, (420, 420)),    # input (grad_output) planes past PAD_ONCE_BYTES: padded again
                               # for each block
])
def test_direct_planes_padded_once_per_sample(dtype, n, c_in, c_out, hw):
    """The direct 2-D forward (input gradient) pads a sample's input (grad_output) planes
    once for all the blocks of outputs (inputs) that one thread runs in a row, when they fit
    PAD_ONCE_BYTES. Whichever thread count splits the jobs, and so whichever blocks find the
    planes already padded, the bits must be the same, equal to each sample run alone, and
    close to the reference."""
    rng = np.random.default_rng([n, c_in, hw[0]])
    x = rng.standard_normal((n, c_in) + hw).astype(dtype)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    y = conv2d(x, w, b, 1, 1, algorithm="direct", num_threads=1)
    assert_close(y, conv_forward(x, w, b, 1, 1), dtype, 9 * c_in, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = conv2d_backward(g, x, w, 1, 1, algorithm="direct", num_threads=1,
                         output_mask=(True, False, False)).grad_input
    assert_close(gx, conv_backward(g, x, w, 1, 1)[0], dtype, 9 * c_out, "grad_input")
    for threads in (2, 3):
        assert np.array_equal(conv2d(x, w, b, 1, 1, algorithm="direct",
                                     num_threads=threads), y)
        assert np.array_equal(conv2d_backward(g, x, w, 1, 1, algorithm="direct",
                                              num_threads=threads,
                                              output_mask=(True, False, False)).grad_input, gx)
    for i in (0, n - 1):
        assert np.array_equal(conv2d(x[i:i + 1], w, b, 1, 1, algorithm="direct"), y[i:i + 1])
        assert np.array_equal(conv2d_backward(g[i:i + 1], x[i:i + 1], w, 1, 1,
                                              algorithm="direct",
                                              output_mask=(True, False, False)).grad_input,
                              gx[i:i + 1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("groups,dilation", [(1, 1), (2, 2), (1, (2, 1))])
def test_direct_plane_blocks_match_reference_and_single_planes(dtype, groups, dilation):
    """The direct 2-D path filters eight output (or input-gradient) planes at once when a call
    has enough samples: check it against the scipy references, with channel counts that leave
    partial blocks and rows that leave vector tails, and bit for bit against one sample alone
    (which filters one plane at a time)."""
    rng = np.random.default_rng([groups, 5])
    c_in, c_out = 11 * groups, 19 * groups
    x = rng.standard_normal((8, c_in, 9, 21)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, 3, 2)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    args = (1, "same", dilation, groups)
    y = conv2d(x, w, b, *args, algorithm="direct", num_threads=2)
    assert_close(y, conv_forward(x, w, b, *args), dtype, 6 * c_in // groups, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, gb = conv2d_backward(g, x, w, *args, algorithm="direct", num_threads=2)
    rgx, rgw, rgb = conv_backward(g, x, w, *args)
    assert_close(gx, rgx, dtype, 6 * c_out // groups, "grad_input")
    assert_close(gw, rgw, dtype, 8 * 9 * 21, "grad_weight")
    one = conv2d(x[:1], w, b, *args, algorithm="direct", num_threads=1)
    assert np.array_equal(one, y[:1])
    gx1, _, _ = conv2d_backward(g[:1], x[:1], w, *args, algorithm="direct", num_threads=1)
    assert np.array_equal(gx1, gx[:1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hw", [(1, 5), (2, 13), (3, 7), (9, 64), (6, 101)])
@pytest.mark.parametrize("groups", [1, 3])
def test_direct_one_input_channel_rows_stay_in_their_plane(dtype, hw, groups):
    """With one input channel per group the direct 2-D forward filters row by row straight
    into the output, whole vectors running into the next rows (refilled after) but never past
    a plane: short and long rows, blocks of eight planes and single planes, against scipy and
    bit for bit against one sample alone."""
    rng = np.random.default_rng([hw[0], hw[1], groups])
    x = rng.standard_normal((8, groups) + hw).astype(dtype)
    w = rng.standard_normal((9 * groups, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(9 * groups).astype(dtype)
    y = conv2d(x, w, b, 1, 1, 1, groups, algorithm="direct", num_threads=2)
    assert_close(y, conv_forward(x, w, b, 1, 1, 1, groups), dtype, 9, "forward")
    assert np.array_equal(conv2d(x[:1], w, b, 1, 1, 1, groups, algorithm="direct"), y[:1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k,groups,padding,dilation", [
    (31, 12, "same", 1), (9, 1, "causal", 2), (8, 3, (0, 5), 1), (12, 4, "valid", 3)])
def test_direct_long_rows_match_reference(dtype, k, groups, padding, dilation):
    """conv1d rows of eight or more taps run over padded rows in float32 (and row by row in
    float64): the scipy references, odd lengths for vector tails, and bits independent of the
    batch (eight samples filter eight planes at once, one sample one) and of the threads."""
    rng = np.random.default_rng([k, groups])
    c_in, c_out = 12, 12 if groups == 12 else 36
    x = rng.standard_normal((8, c_in, 203)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    args = (1, padding, dilation, groups)
    y = conv1d(x, w, b, *args, algorithm="direct", num_threads=2)
    taps = k * c_in // groups
    assert_close(y, conv_forward(x, w, b, *args), dtype, taps, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    grads = conv1d_backward(g, x, w, *args, algorithm="direct", num_threads=2)
    for got, want, what in zip(grads, conv_backward(g, x, w, *args),
                               ("grad_input", "grad_weight", "grad_bias")):
        assert_close(got, want, dtype, 8 * 203 if what != "grad_input" else taps * 2, what)
    assert np.array_equal(conv1d(x[:1], w, b, *args, algorithm="direct", num_threads=1), y[:1])
    gx1 = conv1d_backward(g[:1], x[:1], w, *args, algorithm="direct", num_threads=1)[0]
    assert np.array_equal(gx1, grads[0][:1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c_in,c_out,k,length,padding,dilation,groups", [
    (20, 19, 3, 61, "same", 1, 1),      # blocks of 8, 8 and 3 outputs; vector tails
    (13, 30, 3, 300, "same", 1, 1),     # rests of 6 outputs and 5 inputs on long rows
    (8, 16, 2, 33, 0, 1, 1),            # the smallest reduction that runs over padded rows
    (12, 36, 5, 203, "causal", 3, 3),   # dilated, causal, three groups
    (64, 24, 3, 700, (2, 5), 2, 2),     # float64: chunks of 23 rows, each reading into the
                                        # next
])
def test_direct_conv1d_rows_of_mixing_channels(wide_rules, dtype, c_in, c_out, k, length,
                                               padding, dilation, groups):
    """conv1d with unit stride whose channels mix (2+ taps, a reduction of 16+) runs its
    forward and input gradient over zero-padded rows, eight outputs per load, as conv2d does
    over planes: the references, bits independent of the threads and of the batch, and
    'auto' taking that pass for the input gradient and the unroll for the weight gradient
    (the bits show which ran)."""
    rng = np.random.default_rng([c_in, c_out, k])
    x = rng.standard_normal((9, c_in, length)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, k)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    args = (1, padding, dilation, groups)
    taps = k * c_in // groups
    y = conv1d(x, w, b, *args, algorithm="direct", num_threads=1)
    assert_close(y, conv_forward(x, w, b, *args), dtype, taps, "forward")
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = conv1d_backward(g, x, w, *args, algorithm="direct", num_threads=1,
                         output_mask=(True, False, False)).grad_input
    assert_close(gx, conv_backward(g, x, w, *args)[0], dtype, k * c_out // groups,
                 "grad_input")
    for threads in (2, 3):
        assert np.array_equal(conv1d(x, w, b, *args, algorithm="direct",
                                     num_threads=threads), y)
        assert np.array_equal(conv1d_backward(g, x, w, *args, algorithm="direct",
                                              num_threads=threads,
                                              output_mask=(True, False, False)).grad_input, gx)
    # one sample filters one plane at a time: the blocks' rests (run as eight filters, the
    # last one repeated) give the same bits
    assert np.array_equal(conv1d(x[4:5], w, b, *args, algorithm="direct"), y[4:5])
    assert np.array_equal(conv1d_backward(g[4:5], x[4:5], w, *args, algorithm="direct",
                                          output_mask=(True, False, False)).grad_input,
                          gx[4:5])
    assert choose_algorithm(c_in, c_out, k, groups) == "direct"
    auto = conv1d_backward(g, x, w, *args, algorithm="auto", num_threads=2)
    by = {a: conv1d_backward(g, x, w, *args, algorithm=a, num_threads=2)
          for a in ("direct", "gemm")}
    assert np.array_equal(auto.grad_input, by["direct"].grad_input)
    assert not np.array_equal(auto.grad_input, by["gemm"].grad_input)
    assert np.array_equal(auto.grad_weight, by["gemm"].grad_weight)
    assert not np.array_equal(auto.grad_weight, by["direct"].grad_weight)


@pytest.mark.parametrize("c_in,k,length,rows", [
    (8, 2, 100, True), (5, 3, 100, False),      # a reduction of 16, of 15
    (16, 1, 100, False),                        # one tap
    (16, 3, 4098, True), (16, 3, 4099, False),  # 4,096 and 4,097 outputs
])
def test_direct_conv1d_padded_rows_routing(wide_rules, c_in, k, length, rows):
    """Which conv1d rows the direct forward and input gradient run over padded rows (their
    scratch holds the padded rows; the row path needs none): 2+ taps, a reduction of 16+
    and rows of up to 4,096 outputs. 'auto' takes the direct path for such layers and the
    unroll for longer rows."""
    shapes = ((4, c_in, 1, length), (16, c_in, 1, k), (4, 16, 1, length - k + 1),
              (1, 1, 0, 0, 1, 1, 1), 4)
    assert (_conv.forward_scratch(*shapes, False) > 0) == rows
    assert (_conv.grad_input_scratch(*shapes, False)[0] > 0) == rows
    if k >= 2 and c_in * k >= 16:
        assert choose_algorithm(c_in, 16, k, length=length - k + 1) == \
            ("direct" if rows else "gemm")


def test_choose_algorithm_rules(wide_rules):
    assert choose_algorithm(300, 100, 3) == "direct"                   # conv1d: up to 512
    assert choose_algorithm(64, 512, 3) == "direct"
    assert choose_algorithm(64, 513, 3) == "gemm"
    assert choose_algorithm(300, 100, 1) == "gemm"                     # pointwise
    assert choose_algorithm(300, 100, 3, stride=2) == "direct"         # strides up to 8
    assert choose_algorithm(300, 100, 3, stride=(8,)) == "direct"
    assert choose_algorithm(300, 513, 3, stride=2) == "gemm"
    assert choose_algorithm(300, 100, 3, stride=9) == "gemm"
    assert choose_algorithm(64, 128, (3, 3), stride=(1, 8)) == "direct"
    assert choose_algorithm(64, 129, (3, 3), stride=2) == "gemm"
    assert choose_algorithm(64, 16, (3, 3), stride=(9, 1)) == "gemm"
    assert choose_algorithm(300, 100, 3, length=4096) == "direct"
    assert choose_algorithm(300, 100, 3, length=4097) == "gemm"        # long rows
    assert choose_algorithm(256, 256, 31, groups=256) == "direct"       # depthwise
    assert choose_algorithm(1, 4, 3) == "direct"                       # short reduction
    assert choose_algorithm(1, 64, 400, stride=160) == "gemm"          # raw-waveform front end
    assert choose_algorithm(64, 64, 127) == "fft"
    assert choose_algorithm(64, 64, 127, stride=2) == "direct"
    assert choose_algorithm(64, 64, 127, stride=16) == "gemm"
    assert choose_algorithm(256, 256, 127, groups=256) == "direct"
    assert choose_algorithm(256, 256, 301, groups=256) == "fft"
    assert choose_algorithm(16, 16, (9, 9)) == "fft"
    assert choose_algorithm(16, 16, (3, 3), stride=(1, 2)) == "direct"
    assert choose_algorithm(1, 32, 3) == "direct"                      # few channels
    assert choose_algorithm(1, 32, (3, 3)) == "direct"
    assert choose_algorithm(8, 8, (3, 3)) == "direct"
    assert choose_algorithm(8, 32, (3, 3)) == "direct"                 # 2-D planes: up to 128
    assert choose_algorithm(64, 128, (3, 3)) == "direct"
    assert choose_algorithm(64, 129, (3, 3)) == "gemm"
    assert choose_algorithm(128, 256, (3, 3)) == "gemm"
    assert choose_algorithm(256, 256, (3, 3), groups=2) == "direct"
    assert choose_algorithm(8, 32, (3, 3), stride=2) == "direct"       # strided 2-D: 128
    assert choose_algorithm(8, 32, (3, 3), stride=16) == "gemm"        # past 8: from 16
    assert choose_algorithm(8, 15, (3, 3), stride=16) == "direct"
    assert choose_algorithm(64, 64, (1, 3)) == "gemm"                  # one kernel row
    assert choose_algorithm(16, 16, (3, 3), groups=16) == "direct"
    # the data type moves the limits only where the vectors are narrower
    assert choose_algorithm(300, 100, 3, dtype=np.float64) == "direct"
    assert choose_algorithm(64, 128, (3, 3), dtype="float64") == "direct"


@pytest.mark.parametrize("nd,stride,forward", [(1, 2, "direct"), (1, 8, "direct"),
                                               (1, 9, "gemm"), (2, (2, 1), "direct"),
                                               (2, (1, 9), "gemm")])
def test_auto_strided_forward_direct_backward_unrolled(wide_rules, kernel_paths, nd, stride,
                                                       forward):
    """With AVX-512 'auto' runs the forward of strided layers with strides up to 8 by the
    direct path (over phases) and their backward by the unroll; longer strides unroll all
    three passes. Each path's result matches the reference."""
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng(nd)
    x, w = _case(rng, nd, 2, 6, 16, 1, 3, 40, np.float64)
    y = fwd(x, w, stride=stride)
    g = rng.standard_normal(y.shape)
    grads = bwd(g, x, w, stride=stride)
    assert kernel_paths == [("forward", forward), ("grad_input", "gemm"),
                            ("grad_weight", "gemm")]
    assert_close(y, conv_forward(x, w, None, stride, 0), np.float64, 18, "forward")
    for got, ref, name in zip(grads, conv_backward(g, x, w, stride, 0),
                              ("grad_input", "grad_weight", "grad_bias")):
        assert_close(got, ref, np.float64, 400, name)


WINDOW_CASES = [            # (n, c_in, c_out, length, taps, stride)
    (3, 1, 5, 640, 200, 64),        # one channel, rows of 10 strides: the batch at once
    (2, 1, 4, 650, 128, 64),        # rows not a whole number of strides: row by row
    (2, 2, 3, 700, 64, 70),         # two channels; taps fewer than the stride
    (4, 1, 6, 16000, 400, 160),     # wav-k400-s160's geometry
    (1, 3, 2, 300, 300, 64),        # one output per row
    (5, 1, 2, 2560, 64, 64),        # taps == stride
    (70, 1, 3, 128, 64, 64),        # 70 rows of 2 windows: 139 in all, blocks across rows
    (0, 1, 3, 640, 64, 64),         # no samples
]


@pytest.fixture
def window_calls(monkeypatch):
    """Counts of the window kernels' calls ('forward', 'grad_input', 'grad_weight')."""
    calls = {}

    def spy(name):
        real = getattr(_conv, name + "_windows")

        def run(*args):
            calls[name] = calls.get(name, 0) + 1
            return real(*args)
        monkeypatch.setattr(_conv, name + "_windows", run)
    for name in ("forward", "grad_input", "grad_weight"):
        spy(name)
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", WINDOW_CASES, ids=str)
def test_gemm_path_reads_strided_windows_in_place(monkeypatch, window_calls, dtype, case):
    """The gemm path of unpadded conv1d with strides of 64+ reads the unrolled rows in
    place, forward (where the packed tiles do not take it: turned off here) and both
    gradients (the window kernels): against the scipy reference and the unroll, bitwise the
    same on 1-3 threads."""
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    n, c, o, length, k, stride = case
    rng = np.random.default_rng(length)
    x = rng.standard_normal((n, c, length)).astype(dtype)
    w = rng.standard_normal((o, c, k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    got = conv1d(x, w, b, stride=stride, algorithm="gemm", num_threads=2)
    g = rng.standard_normal(got.shape).astype(dtype)
    grads = conv1d_backward(g, x, w, stride=stride, algorithm="gemm", num_threads=2)
    assert window_calls == {"forward": 1, "grad_input": 1, "grad_weight": 1}
    refs = (conv_forward(x, w, b, stride),) + tuple(conv_backward(g, x, w, stride))
    sizes = (c * k, o * -(-k // stride), n * got.shape[-1], n * got.shape[-1])
    names = ("forward", "grad_input", "grad_weight", "grad_bias")
    for a, ref, size, name in zip((got,) + tuple(grads), refs, sizes, names):
        assert_close(a, ref, dtype, size, name)
    monkeypatch.setattr(functional, "WINDOWS_MIN_STRIDE", 10 ** 9)
    unrolled = (conv1d(x, w, b, stride=stride, algorithm="gemm"),) + tuple(
        conv1d_backward(g, x, w, stride=stride, algorithm="gemm"))
    for a, u, size, name in zip((got,) + tuple(grads), unrolled, sizes, names):
        assert_close(a, u, dtype, size, name + " against the unroll")
    monkeypatch.setattr(functional, "WINDOWS_MIN_STRIDE", 64)
    for t in (1, 3):
        again = (conv1d(x, w, b, stride=stride, algorithm="gemm", num_threads=t),) + tuple(
            conv1d_backward(g, x, w, stride=stride, algorithm="gemm", num_threads=t))
        assert all(np.array_equal(a, b) for a, b in zip(again, (got,) + tuple(grads)))
    assert window_calls == {"forward": 3, "grad_input": 3, "grad_weight": 3}


@pytest.mark.parametrize("kw", [dict(padding=1), dict(dilation=2), dict(groups=2),
                                dict(stride=63)])
def test_strided_windows_only_unpadded_undilated_ungrouped(window_calls, kw):
    """Padding, dilation, groups or a stride under 64 keep the unroll."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 1000))
    w = rng.standard_normal((4, 2 // kw.get("groups", 1), 100))
    args = dict(stride=64)
    args.update(kw)
    got = conv1d(x, w, algorithm="gemm", **args)
    g = rng.standard_normal(got.shape)
    grads = conv1d_backward(g, x, w, algorithm="gemm", **args)
    assert window_calls == {}
    assert_close(got, conv_forward(x, w, None, **args), np.float64, 200, "forward")
    assert_close(grads.grad_weight, conv_backward(g, x, w, **args)[1], np.float64, 64,
                 "grad_weight")


def test_auto_reads_raw_waveform_windows_in_place(wide_rules, window_calls):
    """With AVX-512 'auto' takes the windows for a wav2vec-style front end (K=400, stride
    160)."""
    x = np.zeros((2, 1, 1600), np.float32)
    w = np.zeros((8, 1, 400), np.float32)
    conv1d_backward(np.zeros_like(conv1d(x, w, stride=160)), x, w, stride=160)
    assert window_calls == {"forward": 1, "grad_input": 1, "grad_weight": 1}


def test_forward_windows_checks_its_arguments():
    x, w, b = np.zeros((2, 1, 100)), np.zeros((3, 1, 10)), np.zeros(3)
    assert _conv.windows_scratch(x.shape, w.shape, 10) == (3 * 256, 2)    # one operand
    assert _conv.windows_scratch(x.shape, w.shape, 7) == (0, 2)           # 100 % 7: by rows
    assert _conv.windows_scratch((40, 2, 100), w.shape, 10) == (0, 16)   # two channels
    s = np.zeros((1, 3 * 256))
    with pytest.raises(ValueError, match="stride must be >= 1, got 0"):
        _conv.forward_windows(x, w, b, np.zeros((2, 3, 10)), 0, 1, s)
    with pytest.raises(ValueError, match="y must have 10 outputs per row .* got 9"):
        _conv.forward_windows(x, w, b, np.zeros((2, 3, 9)), 10, 1, s)
    with pytest.raises(ValueError, match="bias must have 3 elements, got 2"):
        _conv.forward_windows(x, w, np.zeros(2), np.zeros((2, 3, 10)), 10, 1, s)
    with pytest.raises(ValueError, match="shapes do not match: .* y of 2 samples of 4"):
        _conv.forward_windows(x, w, b, np.zeros((2, 4, 10)), 10, 1, s)
    with pytest.raises(ValueError, match=r"scratch must be at least \(2, 768\), got \(1, 768\)"):
        _conv.forward_windows(x, w, b, np.zeros((2, 3, 10)), 10, 2, s)
    with pytest.raises(ValueError, match=r"scratch must be at least \(1, 768\), got \(1, 767\)"):
        _conv.forward_windows(x, w, b, np.zeros((2, 3, 10)), 10, 1, np.zeros((1, 767)))
    with pytest.raises(ValueError, match="grad_output must have 10 outputs .* got 11"):
        _conv.grad_input_windows(np.zeros((2, 3, 11)), w, np.zeros((2, 1, 100)), 10, 1)
    with pytest.raises(ValueError, match="shapes do not match"):
        _conv.grad_weight_windows(np.zeros((2, 4, 10)), x, np.zeros((3, 1, 10)), 10, 1,
                                  np.zeros((2, 3, 10)))
    with pytest.raises(ValueError, match=r"partials must be \(chunks >= 1, 3, 10\)"):
        _conv.grad_weight_windows(np.zeros((2, 3, 10)), x, np.zeros((3, 1, 10)), 10, 1,
                                  np.zeros((2, 3, 9)))


def test_choose_algorithm_rules_on_narrower_vectors(narrow_rules, kernel_paths):
    """Without AVX-512 the unroll takes over from fewer outputs per group: conv1d from 33
    (float32) or 25 (float64), conv2d over planes from 65 or 33; strided layers from 8 over
    any reduction; the other rules stay."""
    for dtype, row, plane in ((np.float32, 32, 64), (np.float64, 24, 32)):
        assert choose_algorithm(300, row, 3, dtype=dtype) == "direct"
        assert choose_algorithm(300, row + 1, 3, dtype=dtype) == "gemm"
        assert choose_algorithm(64, plane, (3, 3), dtype=dtype) == "direct"
        assert choose_algorithm(64, plane + 1, (3, 3), dtype=dtype) == "gemm"
        assert choose_algorithm(8, 64, (3, 3), groups=2, dtype=dtype) == "direct"   # 32 each
        assert choose_algorithm(256, 256, 31, groups=256, dtype=dtype) == "direct"
        assert choose_algorithm(1, 128, (3, 3), dtype=dtype) == "direct"   # short reduction
        assert choose_algorithm(300, 7, 3, stride=2, dtype=dtype) == "direct"   # strided: 8
        assert choose_algorithm(1, 8, 10, stride=5, dtype=dtype) == "gemm"      # over any
        assert choose_algorithm(1, 7, 10, stride=5, dtype=dtype) == "direct"    # reduction
        assert choose_algorithm(1, 8, (3, 3), stride=2, dtype=dtype) == "gemm"  # 2-D too
        assert choose_algorithm(16, 128, (3, 3), stride=2, groups=16, dtype=dtype) == "gemm"
        assert choose_algorithm(16, 16, (3, 3), stride=2, groups=16, dtype=dtype) == "direct"
        assert choose_algorithm(64, 64, 127, dtype=dtype) == "fft"
    assert choose_algorithm(300, 33, 3) == "gemm"                       # float32 by default
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 64, 200))
    w = rng.standard_normal((32, 64, 5))           # 32 outputs: the unroll in float64 only
    for dtype, want in ((np.float64, "gemm"), (np.float32, "direct")):
        xd, wd = x.astype(dtype), w.astype(dtype)
        del kernel_paths[:]
        y = conv1d(xd, wd)
        assert kernel_paths == [("forward", want)]      # the kernel's flag shows which ran
        assert np.array_equal(y, conv1d(xd, wd, algorithm=want))


def test_wide_vectors_is_the_kernels_answer():
    """The kernels' answer, and False on a CPU without AVX-512 F, BW, CD, DQ and VL (where it
    is True depends on the build: an AVX-512 clone or target, not .ci/run's AVX2-only one)."""
    assert functional.WIDE_VECTORS is _conv.wide_vectors()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    if not {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= set(flags):
        assert functional.WIDE_VECTORS is False


@pytest.mark.parametrize("length,error", [(-5, ValueError), ("x", TypeError), (2.5, TypeError)])
def test_choose_algorithm_checks_length(length, error):
    with pytest.raises(error, match=f"length must be .*, got {length!r}"):
        choose_algorithm(8, 8, 3, length=length)


@pytest.mark.parametrize("bad", [np.int32, "float16", complex, None, "f4x"])
def test_choose_algorithm_rejects_other_dtypes(bad):
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got "):
        choose_algorithm(8, 8, 3, dtype=bad)


@pytest.mark.parametrize("dtype,c_in,c_out,hw,input_alg,weight_alg", [
    (np.float64, 1, 8, (13, 17), "direct", "gemm"),
    (np.float32, 1, 7, (13, 17), "direct", "direct"),     # fewer than 8 outputs
    (np.float32, 3, 16, (13, 17), "direct", "gemm"),
    (np.float64, 2, 16, (13, 17), "gemm", "gemm"),
    (np.float32, 8, 8, (16, 32), "direct", "gemm"),       # 512 output pixels
    (np.float32, 8, 16, (32, 32), "direct", "direct"),    # 1,024
    (np.float32, 8, 32, (32, 32), "direct", "gemm"),
    (np.float32, 16, 128, (16, 20), "direct", "gemm"),
    (np.float64, 16, 16, (16, 16), "direct", "direct"),   # 256
    (np.float64, 16, 32, (16, 16), "direct", "winograd"),   # 32 x 48: Winograd's weight
    (np.float64, 16, 32, (16, 32), "direct", "winograd"),   # 512
    (np.float64, 16, 64, (16, 32), "direct", "winograd"),
    (np.float64, 4, 8, (15, 17), "direct", "gemm"),       # 255
    (np.float64, 4, 8, (16, 16), "direct", "direct"),     # 256
    (np.float32, 1, 32, (20, 50), "direct", "direct"),
    (np.float32, 4, 64, (20, 30), "gemm", "gemm"),        # 600 pixels, 64 outputs
    (np.float32, 4, 64, (32, 32), "gemm", "gemm"),        # 1,024 pixels
    (np.float32, 3, 64, (32, 40), "direct", "direct"),    # 3 channels
    (np.float32, 4, 64, (40, 52), "direct", "direct"),    # 2,080 pixels
    (np.float32, 4, 32, (32, 40), "direct", "direct"),
    (np.float64, 4, 32, (32, 40), "direct", "direct"),
    (np.float64, 4, 64, (32, 40), "direct", "direct"),
    (np.float32, 16, 16, (32, 40), "direct", "direct"),
    (np.float64, 17, 8, (32, 40), "direct", "direct"),
    (np.float32, 1, 16, (13, 17), "gemm", "gemm"),        # 221 pixels
    (np.float32, 2, 32, (20, 30), "direct", "direct"),
    (np.float64, 2, 32, (32, 40), "direct", "direct"),
    (np.float64, 1, 64, (32, 40), "direct", "direct"),
    (np.float32, 3, 32, (13, 17), "gemm", "gemm")])
def test_auto_backward_of_few_channel_conv2d(wide_rules, dtype, c_in, c_out, hw, input_alg,
                                             weight_alg):
    """'auto' runs these conv2d directly, except the passes where the unroll is faster: the
    input gradient over 1-7 input channels of planes below 512 pixels from 16 outputs (1-2
    channels) or 32 (3-7), and on larger planes only in float32 from 64 outputs over 4-7
    channels below 2,048 pixels; the weight gradient of 8+ outputs, where it runs in one pass
    with a direct input gradient of 1-7 channels, on planes below 512 pixels in float32
    (below 1,024 with more than 32 outputs) and below 256 in float64, and otherwise unless
    float32 planes have 1,024+ pixels and up to 16 outputs, or float64 planes 512+ pixels
    and up to 32 outputs or 256+ and up to 16; in float64 from 32 outputs over 16+ channels
    (32 x 48 in the products) by Winograd. 16 samples: enough for the one pass. The bits
    show which path ran."""
    rng = np.random.default_rng([c_in, c_out])
    x = rng.standard_normal((16, c_in) + hw).astype(dtype)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    g = rng.standard_normal((16, c_out) + hw).astype(dtype)
    assert choose_algorithm(c_in, c_out, (3, 3)) == "direct"
    auto = conv2d_backward(g, x, w, 1, 1, algorithm="auto")
    by = {a: conv2d_backward(g, x, w, 1, 1, algorithm=a) for a in ("direct", "gemm", "winograd")}
    ref = conv_backward(g, x, w, 1, 1)
    for name, want, size in (("grad_input", input_alg, 9 * c_out),
                             ("grad_weight", weight_alg, 16 * hw[0] * hw[1])):
        got = getattr(auto, name)
        other = "direct" if want == "gemm" else "gemm"
        assert np.array_equal(got, getattr(by[want], name)), name
        assert not np.array_equal(got, getattr(by[other], name)), name
        assert_close(got, ref[("grad_input", "grad_weight").index(name)], dtype, size, name)


@pytest.mark.parametrize("dtype, c_in, c_out, hw, input_alg, weight_alg", [
    (np.float32, 3, 64, (32, 40), "direct", "direct"),
    (np.float32, 4, 64, (32, 40), "gemm", "gemm"),
    (np.float64, 2, 32, (32, 40), "direct", "direct"),
    (np.float64, 4, 32, (32, 40), "direct", "direct"),
    (np.float32, 3, 32, (13, 17), "gemm", "gemm")])       # below 512 pixels: as with AVX-512
@pytest.mark.parametrize("packed", [False, True])
def test_auto_backward_of_few_channel_conv2d_on_narrower_vectors(monkeypatch, packed, dtype,
                                                                 c_in, c_out, hw, input_alg,
                                                                 weight_alg):
    """Without AVX-512 the input gradient over 1-7 channels of planes of 512+ pixels unrolls
    only from 4 channels and 64 outputs (measured with AVX2: the direct one pass 0.99-1.5x
    as fast where the AVX-512 rule unrolled). Where the packed path takes these layers'
    forward, their backward stays as it was (its unrolled input gradient packed). The bits
    show which path ran."""
    monkeypatch.setattr(functional, "WIDE_VECTORS", False)
    monkeypatch.setattr(functional, "PACKED_GEMM", packed)
    monkeypatch.setattr(functional, "VECTOR_WEIGHT", False)
    rng = np.random.default_rng([c_in, c_out, 2])
    x = rng.standard_normal((16, c_in) + hw).astype(dtype)
    w = rng.standard_normal((c_out, c_in, 3, 3)).astype(dtype)
    g = rng.standard_normal((16, c_out) + hw).astype(dtype)
    assert choose_algorithm(c_in, c_out, (3, 3), dtype=dtype) == ("gemm" if packed
                                                                  else "direct")
    auto = conv2d_backward(g, x, w, 1, 1, algorithm="auto")
    by = {a: conv2d_backward(g, x, w, 1, 1, algorithm=a) for a in ("direct", "gemm")}
    for name, want in (("grad_input", input_alg), ("grad_weight", weight_alg)):
        other = "direct" if want == "gemm" else "gemm"
        assert np.array_equal(getattr(auto, name), getattr(by[want], name)), name
        assert not np.array_equal(getattr(auto, name), getattr(by[other], name)), name


@pytest.mark.parametrize("bad", ["FFT", "im2col", None, 1])
def test_unknown_algorithm_is_rejected(bad):
    x = np.ones((1, 2, 9))
    w = np.ones((2, 2, 3))
    with pytest.raises(ValueError, match="algorithm"):
        conv1d(x, w, algorithm=bad)
    with pytest.raises(ValueError, match="algorithm"):
        conv1d_backward(np.ones((1, 2, 7)), x, w, algorithm=bad)


@pytest.fixture
def nan_buffers(monkeypatch):
    """Call it to fill every buffer numpy.empty makes from then on with NaN (the kernels'
    scratch cache emptied), so that an element a kernel leaves unwritten shows."""
    empty = np.empty

    def nan_empty(shape, dtype=float, *args, **kwargs):
        a = empty(shape, dtype, *args, **kwargs)
        if a.dtype.kind == "f":
            a.fill(np.nan)
        return a

    def on():
        monkeypatch.setattr(np, "empty", nan_empty)
        monkeypatch.setattr(functional._scratch_cache, "buffers", {}, raising=False)
    return on


@pytest.mark.parametrize("algorithm", ["direct", "gemm"])
@pytest.mark.parametrize("nd,stride,groups,c_in", [
    (1, 1, 1, 20), (1, 2, 2, 6), (1, 1, 3, 3), (2, 1, 1, 12), (2, (2, 1), 1, 4), (2, 1, 2, 4),
])
def test_outputs_and_scratch_come_uninitialised(nan_buffers, algorithm, nd, stride, groups,
                                                c_in):
    """The kernels write every element of their outputs (the input gradient is allocated
    empty; its jobs zero what they add into) and read no scratch they have not written: with
    every new buffer filled with NaN, the results are bitwise those of a clean run."""
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng([nd, c_in, groups])
    x, w = _case(rng, nd, 5, c_in, 6 * groups, groups, 3, 11, np.float64)
    kw = dict(stride=stride, padding=1, groups=groups, algorithm=algorithm, num_threads=2)
    y = fwd(x, w, **kw)
    g = rng.standard_normal(y.shape)
    want = (y,) + tuple(bwd(g, x, w, **kw))
    nan_buffers()
    got = (fwd(x, w, **kw),) + tuple(bwd(g, x, w, **kw))
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ["direct", "auto"])
def test_conv2d_over_one_pixel_rows_padded_above_or_below(nan_buffers, dtype, algorithm):
    """A conv2d over planes of one row with a one-row kernel is no conv1d once rows are
    padded: more output rows, or an output row that reads padding. Every output and gradient
    against the reference, with new buffers filled with NaN (a row stride once sent such
    layers to the in-place conv1d rows, which wrote the first output row only)."""
    nan_buffers()
    rng = np.random.default_rng([4, dtype().itemsize])
    for (c, o, groups), stride, k, padding in itertools.product(
            [(2, 2, 2), (1, 3, 1), (16, 16, 1)], [(1, 1), (2, 1), (3, 2)], [3, 9],
            [(3, 1), ((0, 2), (1, 1)), ((1, 0), (0, 0))]):
        x = rng.standard_normal((2, c, 1, 40)).astype(dtype)
        w = rng.standard_normal((o, c // groups, 1, k)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        kw = dict(stride=stride, padding=padding, groups=groups, algorithm=algorithm)
        y = conv2d(x, w, b, **kw)
        assert_close(y, conv_forward(x, w, b, stride, padding, 1, groups), dtype, k, "forward")
        g = rng.standard_normal(y.shape).astype(dtype)
        m = g.size // g.shape[1]
        for a, r, red, what in zip(conv2d_backward(g, x, w, **kw),
                                   conv_backward(g, x, w, stride, padding, 1, groups),
                                   (o * k, m, m), ("grad_input", "grad_weight", "grad_bias")):
            assert_close(a, r, dtype, red, what)


@pytest.mark.parametrize("c_out", [5, 8, 13, 16])
@pytest.mark.parametrize("width", [6, 7, 11])
def test_direct_rows_with_scalar_tails_agree_with_one_sample(c_out, width):
    """One input channel filters row by row into blocks of up to eight outputs; a row's last
    outputs, past its whole vectors, go through the one-filter kernel, whichever block they
    are in: a batch gives each sample the bits of that sample alone. (With the AVX2 build,
    GCC fuses the two kernels' scalar loops differently in float64: before the tails were
    split off, blocks of eight gave other bits than one sample alone, which runs one filter
    at a time, on 6-wide rows.)"""
    rng = np.random.default_rng([c_out, width])
    x = rng.standard_normal((16, 1, 9, width))
    w = rng.standard_normal((c_out, 1, 3, 2))
    y = conv2d(x, w, padding=1, algorithm="direct", num_threads=2)
    assert_close(y, conv_forward(x, w, None, 1, 1, 1, 1), np.float64, 6, "forward")
    for i in (0, 7, 15):
        assert np.array_equal(conv2d(x[i:i + 1], w, padding=1, algorithm="direct",
                                     num_threads=1), y[i:i + 1])


def _assert_direct_exact(nd, x, w, b, args, rng, threads=2, mask=(True, True, True)):
    """Integer-valued x, w, b (and a drawn grad_output) make every sum exact: the direct
    path's forward and the gradients in mask (None: none) must equal the references
    exactly."""
    fwd, bwd = FUNCS[nd]
    y = fwd(x, w, b, *args, algorithm="direct", num_threads=threads)
    assert np.array_equal(y, conv_forward(x, w, b, *args).astype(x.dtype))
    if mask is None:
        return
    g = rng.integers(-3, 4, y.shape).astype(x.dtype)
    got = bwd(g, x, w, *args, output_mask=mask, algorithm="direct", num_threads=threads)
    for a, want, wanted in zip(got, conv_backward(g, x, w, *args), mask):
        if wanted:
            assert np.array_equal(a, want.astype(x.dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups,dilation", [
    ((2, 4, 4, 2, 203), 4, 1),        # a run of two taps
    ((2, 3, 6, 7, 150), 3, 1),        # runs shorter than a vector, a reduction of 14
    ((3, 8, 8, 9, 301), 8, 1),        # f64: a run of eight and one of one
    ((2, 6, 6, 17, 257), 6, 1),       # f32: a run of sixteen and one of one
    ((2, 5, 5, 31, 190), 5, 1),       # the Conformer kernel
    ((1, 2, 2, 70, 400), 2, 1),       # more taps than one batch of runs
    ((2, 4, 4, 9, 203), 4, 2),        # dilated: no runs, the plain loop
    ((2, 4, 4, (3, 3), (19, 70)), 4, 1),    # 2-D: runs of three within each kernel row
    ((2, 3, 6, (5, 17), (9, 80)), 3, 1),
])
def test_direct_runs_of_taps_exact_on_integers(dtype, shape, groups, dilation):
    """Kernel rows are runs of taps one input apart (going down in the input gradient's
    reversed rows); with AVX-512 the direct path loads a run's inputs once and shifts them
    into place. Integer-valued data make every sum exact, so forward and all gradients must
    equal the references exactly: any tap paired with the wrong input or weight, or a lane
    shifted wrong, shows. Lengths leave blocks, single vectors and scalar tails."""
    n, c_in, c_out, k, length = shape
    nd = 1 if isinstance(k, int) else 2
    rng = np.random.default_rng([c_in, c_out, nd])
    ks = (k,) if nd == 1 else k
    size = (length,) if nd == 1 else length
    x = rng.integers(-3, 4, (n, c_in) + size).astype(dtype)
    w = rng.integers(-3, 4, (c_out, c_in // groups) + ks).astype(dtype)
    b = rng.integers(-3, 4, c_out).astype(dtype)
    padding = tuple((kk - 1) * dilation // 2 for kk in ks)
    padding = padding[0] if nd == 1 else padding
    _assert_direct_exact(nd, x, w, b, (1, padding, dilation, groups), rng)


def _fenced(values):
    """values (C-contiguous, a whole number of pages) copied between two unreadable pages: a
    kernel that reads before or past the array crashes instead of passing."""
    import ctypes
    import mmap
    page = mmap.PAGESIZE
    assert values.nbytes % page == 0
    buf = mmap.mmap(-1, values.nbytes + 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    for at in (base, base + page + values.nbytes):
        assert libc.mprotect(ctypes.c_void_p(at), page, 0) == 0, ctypes.get_errno()
    a = np.frombuffer(buf, values.dtype, values.size, page).reshape(values.shape)
    a[...] = values
    return a


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 5, 9, 31])
def test_direct_rows_read_nothing_outside_their_arrays(dtype, k):
    """The direct path reads the caller's input and grad_output in place: row by row (float64
    rows of few taps, float32 rows of under eight), and in the inside stretch of conv1d rows
    of one input channel (forward) or one grad_output plane (input gradient). Its vector
    loops load whole vectors of shifted inputs; those that would reach past the taps' last
    input (or before the first, for the reversed rows of the input gradient) load under a
    mask. Arrays between unreadable pages check that no load strays, whichever path runs."""
    import mmap
    rng = np.random.default_rng(k)
    length = mmap.PAGESIZE // np.dtype(dtype).itemsize
    # one channel to 4 outputs; 8 depthwise groups of 9 outputs (blocks of eight filter the
    # input in place); 8 groups of 2 channels to one output (the input gradient filters
    # grad_output in place)
    for c_in, c_out, groups in ((1, 4, 1), (8, 72, 8), (16, 8, 8)):
        x = _fenced(rng.standard_normal((2, c_in, length)).astype(dtype))
        w = rng.standard_normal((c_out, c_in // groups, k)).astype(dtype)
        args = (1, "same", 1, groups)
        y = conv1d(x, w, None, *args, algorithm="direct")
        taps = k * c_in // groups
        assert_close(y, conv_forward(x, w, None, *args), dtype, taps, "forward")
        g = _fenced(rng.standard_normal(y.shape).astype(dtype))
        for got, want, what in zip(conv1d_backward(g, x, w, *args, algorithm="direct"),
                                   conv_backward(g, x, w, *args),
                                   ("grad_input", "grad_weight", "grad_bias")):
            assert_close(got, want, dtype,
                         2 * length if what != "grad_input" else 4 * k * c_out // groups, what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [5, 17, 64, 100, 203])
@pytest.mark.parametrize("k,dilation,padding", [
    (9, 1, "same"), (31, 1, "same"), (8, 3, "causal"), (9, 1, (20, 3)), (12, 2, (0, 40)),
    (16, 1, 0)])
def test_direct_conv1d_rows_filter_the_input_in_place(dtype, length, k, dilation, padding):
    """One input channel per group (depthwise, or one channel to several outputs) and one
    output per group: the direct forward and input gradient filter the row in place where
    every tap lands inside it, and zero-padded copies of the stretches before and after.
    Integer-valued data make the sums exact; edges wider than the row, padding wider than the
    kernel and rows without an inside stretch included."""
    rng = np.random.default_rng([length, k, dilation])
    x = rng.integers(-3, 4, (3, 4, length)).astype(dtype)
    for c_out, groups in ((4, 4), (12, 4), (2, 2)):
        w = rng.integers(-3, 4, (c_out, 4 // groups, k)).astype(dtype)
        b = rng.integers(-3, 4, c_out).astype(dtype)
        total = sum(padding) if isinstance(padding, tuple) else \
            2 * padding if isinstance(padding, int) else None
        if total is not None and length + total <= dilation * (k - 1):
            continue            # no output: the kernel is longer than the padded row
        _assert_direct_exact(1, x, w, b, (1, padding, dilation, groups), rng,
                             mask=(True, False, False))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mult,k,padding", [(9, 9, 4), (17, 31, 15), (10, 8, "same"),
                                            (9, 31, (0, 40))])
def test_direct_conv1d_blocks_of_one_input_channel(threads, mult, k, padding):
    """float32 rows of one input channel per group, blocks of eight outputs: every block, a
    last block of one too, filters the row in place (a last block of one once filtered the
    padded plane, which it must then pad itself; a first version reused the plane the block
    before had not written: wrong outputs for every ninth channel). And the input gradient of one
    grad_output plane per group over blocks of several input channels. Integer-valued data,
    exact."""
    rng = np.random.default_rng([mult, k])
    x = rng.integers(-3, 4, (2, 8, 200)).astype(np.float32)
    w = rng.integers(-3, 4, (8 * mult, 1, k)).astype(np.float32)
    b = rng.integers(-3, 4, 8 * mult).astype(np.float32)
    args = (1, padding, 1, 8)
    _assert_direct_exact(1, x, w, b, args, rng, threads, mask=None)
    for dtype in (np.float32, np.float64):
        for c_in in (16, 72):       # 2 and 9 input channels per group, one output each
            xi = rng.integers(-3, 4, (2, c_in, 200)).astype(dtype)
            wi = rng.integers(-3, 4, (8, c_in // 8, k)).astype(dtype)
            _assert_direct_exact(1, xi, wi, None, args, rng, threads, mask=(True, False, False))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_auto_leaves_fft_for_non_finite_inputs(bad):
    """A transform spreads a NaN or an infinity over every output; 'auto', which picks the
    FFT for this 300-tap kernel, takes the direct path instead: the non-finite values stay
    where the window holds the bad sample, bitwise as 'direct' gives."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 1, 2000))
    w = rng.standard_normal((1, 1, 300))
    g = rng.standard_normal((1, 1, 1701))
    assert choose_algorithm(1, 1, 300) == "fft"
    x[0, 0, 100] = bad
    y = conv1d(x, w)
    assert np.array_equal(y, conv1d(x, w, algorithm="direct"), equal_nan=True)
    assert np.isfinite(y[0, 0, 101:]).all() and not np.isfinite(y[0, 0, :101]).any()
    with np.errstate(invalid="ignore"):
        assert not np.isfinite(conv1d(x, w, algorithm="fft")[0, 0, 101:]).all()
    for a, b in zip(conv1d_backward(g, x, w), conv1d_backward(g, x, w, algorithm="direct")):
        assert np.array_equal(a, b, equal_nan=True)


def test_fft_float32_beside_a_large_sample():
    """The FFT's rounding is relative to the whole transform's largest values: float32
    arrays are transformed in float64, so outputs of 300 beside a sample of 1e8 stay 300
    (they came out 7 % off in float32)."""
    x = np.ones((1, 1, 1000), np.float32)
    x[0, 0, 999] = 1e8
    w = np.ones((1, 1, 300), np.float32)
    y = conv1d(x, w, algorithm="fft")
    assert y.dtype == np.float32
    assert np.array_equal(y[0, 0, :600], np.full(600, 300, np.float32))
    gx, gw, _ = conv1d_backward(np.ones_like(y), x, w, algorithm="fft")
    assert np.array_equal(gx, conv1d_backward(np.ones_like(y), x, w, algorithm="direct")[0])
    assert_close(gw, conv_backward(np.ones(y.shape), x, w)[1], np.float32, 701, "grad_weight")


@pytest.mark.parametrize("algorithm", ["auto", "fft"])
def test_empty_batch_on_the_fft_path(algorithm):
    """An empty batch gives empty results and a zero weight gradient on every path (the
    FFT's overlap-save blocks could not be reshaped from nothing)."""
    x = np.zeros((0, 4, 5000), np.float32)
    w = np.ones((3, 4, 300), np.float32)
    y = conv1d(x, w, np.ones(3, np.float32), algorithm=algorithm)
    assert y.shape == (0, 3, 4701)
    gx, gw, gb = conv1d_backward(y, x, w, algorithm=algorithm)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


def test_scratch_that_would_not_fit_memory():
    """A stride and padding far beyond the input would make the unroll's phases of a
    strided row (and the FFT's stride-1 signal) need terabytes: 'auto' runs such a layer
    direct, and asking for those algorithms by name is a ValueError (the unroll's size once
    wrapped past 64 bits and crashed)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 10))
    w = rng.standard_normal((16, 16, 1))
    b = rng.standard_normal(16)
    kw = dict(padding=2 ** 36, stride=2 ** 37)
    y = conv1d(x, w, b, **kw)
    assert y.shape == (1, 16, 2) and np.array_equal(y, np.broadcast_to(b[:, None], y.shape))
    assert np.array_equal(y, conv1d(x, w, b, algorithm="direct", **kw))
    gx, gw, gb = conv1d_backward(np.ones(y.shape), x, w, **kw)
    assert not gx.any() and not gw.any() and np.array_equal(gb, np.full(16, 2.0))
    for algorithm in ("gemm", "fft"):
        with pytest.raises(ValueError, match=f"algorithm='{algorithm}'.*GiB"):
            conv1d(x, w, algorithm=algorithm, **kw)
        with pytest.raises(ValueError, match=f"algorithm='{algorithm}'.*GiB"):
            conv1d_backward(np.ones(y.shape), x, w, algorithm=algorithm, **kw)


def test_choose_algorithm_checks_its_arguments():
    for args, exc, match in [((4, 8, 3, 0), ValueError, "groups must be an int >= 1, got 0"),
                             (("a", 8, 3), TypeError, "in_channels must be an int"),
                             ((0, 0, 0), ValueError, "in_channels must be an int >= 1"),
                             ((4, 8, (3, 3, 3)), ValueError, "kernel_size must be an int or")]:
        with pytest.raises(exc, match=match):
            choose_algorithm(*args)


def test_zero_dimensional_arrays_as_ints():
    """np.array(2) is the int 2 wherever an int goes (it raised "iteration over a 0-d
    array"); np.array(2.0) is a float, a TypeError."""
    x = np.ones((1, 2, 10))
    w = np.ones((2, 2, 3))
    assert np.array_equal(conv1d(x, w, stride=np.array(2)), conv1d(x, w, stride=2))
    with pytest.raises(TypeError, match="stride must be an int >= 1, got 2.0"):
        conv1d(x, w, stride=np.array(2.0))


def test_dilation_is_bounded_and_ignored_on_single_taps():
    """A kernel of one tap is not dilated (a dilation of 2**61 reached the 1-D direct weight
    gradient and crashed it); dilations beyond MAX_EXTENT are a ValueError naming them."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 9))
    w = rng.standard_normal((4, 3, 1))
    g = rng.standard_normal((2, 4, 9))
    for algorithm in ("direct", "gemm"):
        ref = conv1d_backward(g, x, w, algorithm=algorithm)
        got = conv1d_backward(g, x, w, dilation=2 ** 40, algorithm=algorithm)
        for a, b in zip(got, ref):
            assert np.array_equal(a, b)
    for k, dilation in ((1, 2 ** 61), (3, 2 ** 41), (1, 2 ** 63)):
        with pytest.raises(ValueError, match=r"conv1d: dilation must be at most 1099511627776, "
                                             rf"got \({dilation},\)"):
            conv1d(x, rng.standard_normal((4, 3, k)), dilation=dilation)
    # messages show the dilation asked for, not the one-tap axis's 1
    with pytest.raises(ValueError, match=r"extent 11 \(kernel \(1, 3\), dilation \(4, 5\)"):
        conv2d(np.ones((1, 2, 9, 9)), np.ones((3, 2, 1, 3)), dilation=(4, 5))


def test_auto_avoids_scratch_far_larger_than_the_data():
    """A dilation or padding far beyond the input made the direct path pad planes of
    gigabytes (a 4x4 image, 3x3 kernel dilated 10,000 times, 'same'), and a stride far
    beyond the row made the unroll's phases as long as the stride: 'auto' takes the other
    path, with the same result; asked for by name, scratch that would not fit memory is a
    ValueError."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 1, 4, 4))
    w = rng.standard_normal((1, 1, 3, 3))
    kw = dict(dilation=10 ** 4, padding="same")
    y = conv2d(x, w, **kw)
    assert np.array_equal(y, conv2d(x, w, algorithm="gemm", **kw))
    # every tap but the centre falls in the padding: the output is the centre tap's product
    assert np.allclose(y, x * w[0, 0, 1, 1])
    g = rng.standard_normal(y.shape)
    for a, b in zip(conv2d_backward(g, x, w, **kw), conv2d_backward(g, x, w, algorithm="gemm",
                                                                   **kw)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"algorithm='direct' would need .* GiB"):
        conv2d(x, w, dilation=10 ** 6, padding="same", algorithm="direct")
    # integer values: the same bits whether or not a build fuses the multiply-adds
    x1 = rng.integers(-3, 4, (1, 32, 100)).astype(np.float64)
    w1 = rng.integers(-3, 4, (32, 32, 3)).astype(np.float64)
    kw = dict(stride=10 ** 7, padding=(0, 10 ** 7))
    args = functional._checks.conv_args(x1, w1, None, kw["stride"], kw["padding"], 1, 1, 1, 1)
    assert functional._affordable(args, "auto", "gemm") == "direct"
    assert functional._affordable(args, "gemm", "gemm") == "gemm"
    y1 = conv1d(x1, w1, **kw)
    assert y1.shape == (1, 32, 2) and np.array_equal(y1, conv1d(x1, w1, algorithm="gemm", **kw))


def test_auto_avoids_fft_buffers_far_larger_than_the_data(monkeypatch):
    """A long kernel dilated far past a tiny input, with the padding to match (two outputs):
    'auto' took the FFT, whose transforms grew with the dilation (160 MB here, 1 GiB
    at 2**16) up to the machine's memory; now it takes the path that reads the input in
    place (here the unroll), with the reference's result, and never runs the FFT."""
    x = np.random.default_rng(3).standard_normal((1, 1, 4))
    w = np.random.default_rng(4).standard_normal((1, 1, 256))
    d = 2 ** 14
    kw = dict(padding=(d * 255 - 2) // 2, dilation=d)
    args = functional._checks.conv_args(x, w, None, 1, kw["padding"], d, 1, 1, 1)
    assert functional._scratch_bytes(args, "fft") > 2 ** 27
    assert functional._affordable(args, "auto", "fft") != "fft"
    monkeypatch.setattr(functional._fft, "forward", None)     # would raise if called
    y = conv1d(x, w, **kw)
    assert y.shape == (1, 1, 2)
    assert_close(y, conv_forward(x, w, None, 1, kw["padding"], d), np.float64, 256, "forward")


def test_per_thread_scratch_past_memory_names_num_threads():
    """num_threads=4096 on a strided layer whose unroll needs 8 MiB a thread: a ValueError
    naming num_threads (numpy's MemoryError for 32 GiB before); fewer threads run."""
    x = np.zeros((1, 16, 20000))
    w = np.zeros((32, 16, 5))
    need = 4096 * functional._conv.forward_scratch(
        (1, 16, 1, 20000), (32, 16, 1, 5), (1, 32, 1, 9999), (1, 2, 0, 1, 1, 1, 1), 8, True)
    if need * 8 <= functional._checks.memory_limit():
        pytest.skip("this machine holds 4096 threads' scratch")
    with pytest.raises(ValueError, match=r"num_threads=4096: use fewer threads"):
        conv1d(x, w, stride=2, padding=1, num_threads=4096, algorithm="gemm")
    assert conv1d(x, w, stride=2, padding=1, num_threads=3, algorithm="gemm").shape == \
        (1, 32, 9999)


def test_fft_scratch_counts_the_weight_spectra():
    """The FFT's estimate counts the weight's spectra (three arrays of them at the peak), at
    the full length for the backward (a 128 -> 128 channel, 64-tap layer over 8,000 samples
    of one sample allocated about 3 GiB against an estimate of 31 MiB) and at the
    overlap-save blocks' length for a long 1-D forward (which stays well under 1 GiB: a
    full-length estimate refused a 512 -> 256 channel, 65-tap layer over a second of 16 kHz
    audio that runs in 0.84 GiB)."""
    x = np.zeros((1, 128, 8000), np.float32)
    w = np.zeros((128, 128, 64), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, 0, 1, 1, 1, 1)
    spectra = 128 * 128 * (8000 // 2 + 1) * 16
    assert 3 * spectra < functional._scratch_bytes(args, "fft", backward=True) < 4 * spectra
    assert functional._scratch_bytes(args, "fft") < 2 ** 28
    x = np.zeros((1, 512, 16000), np.float32)
    w = np.zeros((256, 512, 65), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, "same", 1, 1, 1, 1)
    assert functional._scratch_bytes(args, "fft") < 2 ** 30
    assert functional._affordable(args, "auto", "fft") == "fft"


def test_direct_scratch_is_the_kernels_own(monkeypatch):
    """The direct path's estimate is what the kernels allocate per thread: nothing for a
    conv1d row of one channel (an estimate of padded planes refused a 48-million-sample row
    on 16 threads), the padded planes of a dilated 2-D kernel. Where it would not fit,
    'auto' takes the unroll and a named 'direct' says to."""
    x = np.zeros((1, 1, 10 ** 6), np.float32)
    w = np.ones((1, 1, 3), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, 1, 1, 1, 16, 1)
    assert functional._scratch_bytes(args, "direct") == 0
    x = np.zeros((2, 1, 40, 50), np.float32)
    w = np.ones((8, 1, 3, 3), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, 1, 1, 1, 2, 2)
    per_thread = _conv.forward_scratch(x.shape, w.shape, (2, 8, 40, 50), (1, 1, 1, 1, 1, 1, 1),
                                       4, False)
    assert per_thread > 0 and functional._scratch_bytes(args, "direct") == 2 * 4 * per_thread
    monkeypatch.setattr(functional._checks, "memory_limit", lambda: 1000)
    assert functional._affordable(args, "auto", "direct") == "gemm"
    with pytest.raises(ValueError, match="algorithm='direct' would need .* use "
                                         "algorithm='gemm' or fewer threads"):
        functional._affordable(args, "direct", "direct")


@pytest.mark.parametrize("packed", [False, True])
def test_non_finite_weights_where_the_paths_differ(monkeypatch, packed):
    """A NaN or an infinity in the weight is where the paths disagree beyond rounding (the
    README says so): the direct input gradient multiplies it by the zeros around grad_output
    too (NaN everywhere), and so does the packed one, the unroll only where grad_output meets
    the tap, as torch; the direct forward of a conv1d with unit stride skips the padding
    (finite), the unroll, the packed tiles and the strided direct forward (over padded
    phases) compute 0 * inf = NaN."""
    monkeypatch.setattr(functional, "PACKED_GEMM", packed)
    x = np.ones((1, 1, 6, 6))
    w = np.ones((1, 1, 3, 3))
    w[0, 0, 0, 0] = np.nan
    by = {a: conv2d_backward(np.ones((1, 1, 4, 4)), x, w, algorithm=a).grad_input
          for a in ("direct", "gemm")}
    if packed:
        assert np.isnan(by["gemm"]).all()
    else:
        assert np.isnan(by["gemm"]).sum() == 16 and np.isnan(by["gemm"][0, 0, :4, :4]).all()
    assert np.isnan(by["direct"]).all()
    w2 = np.array([[[np.inf, 1.0, 1.0]]])
    y = conv1d(np.ones((1, 1, 4)), w2, padding=1, algorithm="direct")
    assert y[0, 0, 0] == 2 and np.isinf(y[0, 0, 1:]).all()
    y = conv1d(np.ones((1, 1, 6)), w2, stride=2, padding=1, algorithm="direct")   # phases
    assert np.isnan(y[0, 0, 0]) and np.isinf(y[0, 0, 1:]).all()
    y = conv1d(np.ones((1, 1, 4)), w2, padding=1, algorithm="gemm")
    assert np.isnan(y[0, 0, 0]) and np.isinf(y[0, 0, 1:]).all()


def test_large_scratch_is_not_kept(monkeypatch):
    """A scratch buffer over SCRATCH_KEEP_BYTES is made for its call only: a call with a
    huge plane left its gigabytes in the thread's cache for good."""
    monkeypatch.setattr(functional, "SCRATCH_KEEP_BYTES", 1 << 12)
    small = functional._scratch(np.float32, "test-keep", (4, 8))
    assert functional._scratch(np.float32, "test-keep", (4, 8)).base is small.base
    big = functional._scratch(np.float32, "test-keep", (1, 4096))
    assert big.shape == (1, 4096)
    again = functional._scratch(np.float32, "test-keep", (4, 8))
    assert again.base is small.base and again.base.size < 4096


def test_choose_algorithm_checks_groups_and_array_kernels():
    for groups, name in ((4, "out_channels, got 6"), (8, "in_channels, got 4")):
        with pytest.raises(ValueError, match=f"groups={groups} must divide {name}"):
            choose_algorithm(4, 6 if groups == 4 else 8, 3, groups=groups)
    assert choose_algorithm(4, 8, np.array([3, 3])) == choose_algorithm(4, 8, (3, 3))
    assert choose_algorithm(4, 8, np.array(3)) == choose_algorithm(4, 8, 3)


def test_padding_takes_numpy_arrays_as_stride_does():
    x = np.ones((1, 2, 10))
    w = np.ones((2, 2, 3))
    assert np.array_equal(conv1d(x, w, padding=np.array([1, 2])), conv1d(x, w, padding=(1, 2)))
    assert np.array_equal(conv1d(x, w, padding=np.array(1)), conv1d(x, w, padding=1))
    with pytest.raises(TypeError, match="padding must be an int >= 0, got 1.5"):
        conv1d(x, w, padding=np.array(1.5))


def test_auto_leaving_the_fft_checks_the_direct_path(monkeypatch):
    """Where the FFT's scratch would not fit, 'auto' tries 'direct', and where that would not
    fit either, the unroll (the forward took 'direct' unchecked); the one-pass backward's
    partial sums count in its figure."""
    x = np.zeros((1, 1, 64, 64), np.float32)
    w = np.zeros((1, 1, 16, 16), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, 0, 1, 1, 1, 2)
    assert functional._resolve(args, "auto") == "fft"
    direct = functional._scratch_bytes(args, "direct")
    assert direct > 0
    monkeypatch.setattr(functional._checks, "memory_limit", lambda: direct - 1)
    assert functional._affordable(args, "auto", "fft") == "gemm"
    x = np.zeros((64, 1, 7, 7), np.float32)
    w = np.zeros((7, 1, 7, 7), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, 3, 1, 1, 1, 2)
    geometry = ((64, 1, 7, 7), (7, 1, 7, 7), (64, 7, 7, 7), (1, 1, 3, 3, 1, 1, 1), 4)
    one_pass, partials = _conv.grad_input_weight_scratch(*geometry)
    assert partials == 64 * 7 * (49 + 1)
    assert functional._scratch_bytes(args, "direct", backward=True) >= 4 * (one_pass + partials)


def _spy(monkeypatch):
    """Counts the calls of the packed kernel."""
    calls = []
    real = _conv.forward_packed

    def spy(*a):
        calls.append(a[0].shape)
        return real(*a)
    monkeypatch.setattr(_conv, "forward_packed", spy)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,c_in,c_out,k,size,padding,dilation,groups", [
    (3, 16, 13, 3, 40, 0, 1, 1),            # 13 filters: tiles of 6, 6 and 1
    (2, 5, 7, 2, 9, 1, 1, 1),               # rows shorter than half a tile
    (2, 12, 18, 4, 33, "same", 3, 3),       # an even kernel, dilated, three groups
    (1, 8, 6, 5, 1300, (7, 2), 2, 1),       # strips of a long row
    (2, 6, 4, 3, 30, 9, 2, 2),              # padding past the kernel's span
    (2, 3, 7, (3, 3), (5, 6), 1, 1, 1),
    (2, 8, 13, (3, 3), (20, 33), "same", 1, 1),
    (1, 4, 6, (2, 5), (9, 40), (1, 2), (2, 1), 2),
    (1, 3, 8, (3, 3), (70, 45), 1, (1, 2), 1),  # strips of several rows
    (1, 2, 6, (3, 1), (10, 600), 0, 1, 1),  # strips across a wide plane
])
def test_packed_path_matches_reference(monkeypatch, packed_rules, dtype, n, c_in, c_out, k,
                                       size, padding, dilation, groups):
    """The gemm path's forward and input gradient with unit strides by the packed tiles
    (6 filters x 2 vectors, read from padded strips): against scipy, bitwise the same at
    1, 2 and 3 threads; float64 rows of kernels with one row past 512 outputs unroll."""
    calls = _spy(monkeypatch)
    nd = 1 if isinstance(size, int) else 2
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng([c_in, c_out, nd])
    shape = (size,) if nd == 1 else size
    kernel = (k,) if nd == 1 else k
    x = rng.standard_normal((n, c_in) + shape).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(padding=padding, dilation=dilation, groups=groups, algorithm="gemm")
    y = fwd(x, w, b, num_threads=1, **kw)
    reduction = c_in // groups * math.prod(kernel)
    assert_close(y, conv_forward(x, w, b, 1, padding, dilation, groups), dtype, reduction)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = bwd(g, x, w, 1, padding, dilation, groups, algorithm="gemm", num_threads=1,
             output_mask=(True, False, False)).grad_input
    ref = conv_backward(g, x, w, 1, padding, dilation, groups)[0]
    assert_close(gx, ref, dtype, c_out // groups * math.prod(kernel), "grad_input")
    for t in (2, 3):
        assert np.array_equal(fwd(x, w, b, num_threads=t, **kw), y)
        assert np.array_equal(bwd(g, x, w, 1, padding, dilation, groups, algorithm="gemm",
                                  num_threads=t, output_mask=(True, False, False))[0], gx)
    long_rows = dtype == np.float64 and nd == 1 and size > 512
    assert len(calls) == (0 if long_rows else 6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,c_in,c_out,k,size,stride,padding,dilation,groups", [
    (2, 1, 13, 400, 1700, 160, 0, 1, 1),        # 25 ms / 10 ms frames: 160 phases
    (2, 1, 16, 80, 900, 4, 3, 1, 1),
    (3, 1, 7, 10, 301, 5, 2, 1, 1),             # wav2vec's first layer, 7 filters
    (2, 4, 20, 3, 101, 2, 1, 2, 2),             # dilated, two groups
    (2, 3, 6, 2, 9, 3, "same", 1, 1),           # fewer outputs than half a tile
    (1, 2, 8, 2, 40, 5, 0, 1, 1),               # phases never read
    (1, 5, 9, 3, 30, 7, 9, 1, 1),               # stride past the kernel, padding past it
    (1, 2, 12, 4, 1500, 3, (5, 1), 1, 1),       # strips of a long row (float64)
    (2, 3, 8, (3, 3), (33, 40), 2, 1, 1, 1),
    (1, 4, 7, (3, 5), (40, 50), (3, 2), (2, 1), (1, 2), 1),
    (1, 40, 12, (3, 3), (9, 11), (2, 1), 1, 1, 1),   # channels in two chunks (float64)
    (1, 130, 6, 3, 41, 2, 1, 1, 1),             # ... in two chunks (float32)
])
def test_strided_packed_path_matches_reference(monkeypatch, packed_rules, dtype, n, c_in,
                                               c_out, k, size, stride, padding, dilation,
                                               groups):
    """The gemm path's strided forward by the packed tiles (each padded row stored as its
    stride's phases): against scipy and bitwise the same at 1, 2 and 3 threads."""
    calls = _spy(monkeypatch)
    nd = 1 if isinstance(size, int) else 2
    fwd = FUNCS[nd][0]
    rng = np.random.default_rng([c_in, c_out, nd, n])
    shape = (size,) if nd == 1 else size
    kernel = (k,) if nd == 1 else k
    x = rng.standard_normal((n, c_in) + shape).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              algorithm="gemm")
    y = fwd(x, w, b, num_threads=1, **kw)
    assert len(calls) == 1
    ref = conv_forward(x, w, b, stride, padding, dilation, groups)
    assert_close(y, ref, dtype, c_in // groups * math.prod(kernel))
    for t in (2, 3):
        assert np.array_equal(fwd(x, w, b, num_threads=t, **kw), y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nd,c_in,c_out,groups,k,size,stride,padding,dilation", [
    (2, 16, 16, 16, 3, (28, 28), 2, 1, 1),      # depthwise 3x3, stride 2: four phases
    (2, 8, 8, 8, 5, (15, 14), 2, 2, 1),
    (2, 6, 12, 3, (3, 2), (17, 20), (3, 2), (1, 0), (1, 2)),
    (2, 4, 4, 4, 3, (9, 9), 3, 0, 2),           # a dilation past the stride: phases unused
    (1, 12, 12, 12, 9, 300, 2, 4, 1),           # depthwise conv1d
    (1, 3, 5, 1, 10, 201, 5, 0, 1),
    (1, 2, 4, 1, 1, 40, 3, 0, 1),               # one tap
    (1, 2, 3, 1, 2, 60, 50, 1, 20),             # more phases than taps: tap by tap
])
def test_strided_direct_forward_over_phases(dtype, nd, c_in, c_out, groups, k, size,
                                            stride, padding, dilation):
    """The direct forward with strides runs over padded planes stored as their strides'
    phases, each tap then reading consecutive inputs (tap by tap where the phases would
    outnumber the taps): against scipy, bitwise the same at 1, 2 and 3 threads, and on
    integer-valued data (every sum exact) bitwise the unroll's result."""
    fwd = FUNCS[nd][0]
    rng = np.random.default_rng([c_in, c_out, nd, k if isinstance(k, int) else sum(k)])
    shape = (size,) if nd == 1 else size
    kernel = (k,) * nd if isinstance(k, int) else k
    x = rng.standard_normal((2, c_in) + shape).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              algorithm="direct")
    y = fwd(x, w, b, num_threads=1, **kw)
    ref = conv_forward(x, w, b, stride, padding, dilation, groups)
    assert_close(y, ref, dtype, c_in // groups * math.prod(kernel))
    for t in (2, 3):
        assert np.array_equal(fwd(x, w, b, num_threads=t, **kw), y)
    xi, wi = np.round(4 * x), np.round(4 * w)
    assert np.array_equal(fwd(xi, wi, **kw), fwd(xi, wi, **{**kw, "algorithm": "gemm"}))


def test_strided_direct_forward_scratch_does_not_grow_with_the_padding():
    """Phase planes far larger than the input (a padding or dilation far beyond it) are not
    made: the strided direct forward then runs tap by tap with no scratch, as before the
    phases (it took 830 MB for one output at a padding and dilation of 2**26)."""
    x = np.ones((1, 1, 1), np.float32)
    w = np.ones((1, 1, 3), np.float32)
    geometry = (1, 2, 0, 2**26, 1, 2**26, 1)
    assert _conv.forward_scratch((1, 1, 1, 1), (1, 1, 1, 3), (1, 1, 1, 1), geometry, 4,
                                 False) == 0
    y = conv1d(x, w, stride=2, dilation=2**26, padding=2**26, algorithm="direct")
    assert y.tolist() == [[[1.0]]]
    assert _conv.forward_scratch((1, 1, 1, 28), (1, 1, 1, 3), (1, 1, 1, 14),
                                 (1, 2, 0, 1, 1, 1, 1), 4, False) > 0     # phases


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nd,c_in,c_out,groups,k,size,stride,padding,dilation", [
    (2, 16, 16, 16, 3, (28, 28), 2, 1, 1),      # depthwise 3x3, stride 2: rows merged
    (2, 8, 8, 8, 5, (15, 14), 2, 2, 1),
    (2, 6, 12, 3, (3, 2), (17, 20), (3, 2), (1, 0), (1, 2)),   # several outputs and inputs
    (2, 4, 4, 4, (3, 4), (13, 16), (2, 3), (2, 1), 1),         # column stride 3: scattered
    (2, 2, 2, 2, (4, 3), (40, 9), (9, 2), (3, 1), (3, 1)),     # row stride past 8
    (2, 4, 4, 4, 3, (9, 9), 3, 0, 2),           # a dilation past the stride: phases unused
    (2, 3, 3, 3, 1, (8, 7), 2, 1, 1),           # one tap: three phases of zeros
    (1, 12, 12, 12, 9, 300, 2, 4, 1),           # depthwise conv1d
    (1, 3, 5, 1, 10, 201, 5, 0, 1),
    (1, 2, 3, 1, 2, 60, 50, 1, 20),
])
def test_strided_direct_gradients_over_phases(dtype, nd, c_in, c_out, groups, k, size,
                                              stride, padding, dilation):
    """The direct input gradient with strides filters grad_output once per phase of the
    input (the taps that reach it) and the weight gradient dots grad_output with the
    forward's phase planes: against the reference, bitwise the same at 1, 2 and 3 threads,
    and on integer-valued data (every sum exact) bitwise the unroll's."""
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng([c_in, c_out, nd, 7])
    shape = (size,) if nd == 1 else size
    kernel = (k,) * nd if isinstance(k, int) else k
    x = rng.standard_normal((2, c_in) + shape).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = rng.standard_normal(fwd(x, w, **kw).shape).astype(dtype)
    got = bwd(g, x, w, num_threads=1, algorithm="direct", **kw)
    ref = conv_backward(g, x, w, stride, padding, dilation, groups)
    m = g.size // g.shape[1]
    for a, r, red, what in zip(got, ref, (c_out // groups * math.prod(kernel), m, m),
                               ("grad_input", "grad_weight", "grad_bias")):
        assert_close(a, r, dtype, red, what)
    for t in (2, 3):
        for a, b in zip(bwd(g, x, w, num_threads=t, algorithm="direct", **kw), got):
            assert np.array_equal(a, b)
    gi, xi, wi = np.round(4 * g), np.round(4 * x), np.round(4 * w)
    for a, b in zip(bwd(gi, xi, wi, algorithm="direct", **kw),
                    bwd(gi, xi, wi, algorithm="gemm", **kw)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("nd", [1, 2])
def test_auto_strided_backward_runs_direct_up_to_11_outputs(packed_rules, nd):
    """Without AVX-512 the forward of a strided layer takes 'gemm' from 8 outputs per group,
    its backward (both gradients over phases) from 12: 'auto' gives the direct path's bits
    for both gradients at 8 and 11 outputs, the unroll's at 12."""
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng(nd)
    for og, want in ((8, "direct"), (11, "direct"), (12, "gemm")):
        x, w = _case(rng, nd, 2, 3, og, 1, 3, 12, np.float32)
        kw = dict(stride=2, padding=1)
        assert choose_algorithm(3, og, (3,) * nd, stride=2) == "gemm"
        g = rng.standard_normal(fwd(x, w, **kw).shape).astype(np.float32)
        by = {a: bwd(g, x, w, algorithm=a, **kw) for a in ("direct", "gemm")}
        assert not np.array_equal(by["direct"][1], by["gemm"][1])    # the bits show which
        for got, ref in zip(bwd(g, x, w, **kw), by[want]):
            assert np.array_equal(got, ref)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nd,kernel,stride,padding,bad", [
    (2, 3, 1, 0, np.inf),       # the last column: read by the third column of taps only
    (2, 3, 1, 1, np.nan),
    (2, 3, 2, 1, np.inf),       # phases
    (2, (3, 2), (2, 3), 0, -np.inf),
    (1, 5, 2, 0, np.nan),
    (1, 3, 1, 1, np.inf),
])
def test_non_finite_inputs_reach_only_the_taps_that_read_them(dtype, nd, kernel, stride,
                                                             padding, bad):
    """The direct weight gradient over padded planes sums each tap over the padded width,
    where grad_output's gap columns (zeros) meet inputs the tap never reads: an infinity or
    NaN there made taps NaN that the unroll (and torch) keep finite. Now those channels'
    sums are summed again over the outputs only: the same NaN and infinity pattern as the
    unroll, the finite sums close."""
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng(3)
    shape = (11,) * nd
    kernel = (kernel,) * nd if isinstance(kernel, int) else kernel
    x = rng.standard_normal((4, 3) + shape).astype(dtype)
    x[1, 2][(-1,) * nd] = bad           # the last position of a plane
    x[2, 0][(5,) * nd] = bad
    w = rng.standard_normal((3, 1) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, groups=3)
    g = rng.standard_normal(fwd(x, w, **kw).shape).astype(dtype)
    direct = bwd(g, x, w, algorithm="direct", **kw)[1]
    gemm = bwd(g, x, w, algorithm="gemm", **kw)[1]
    assert np.isfinite(gemm).any() and not np.isfinite(gemm).all()
    assert np.array_equal(np.isnan(direct), np.isnan(gemm))
    assert np.array_equal(np.isposinf(direct), np.isposinf(gemm))
    assert np.array_equal(np.isneginf(direct), np.isneginf(gemm))
    finite = np.isfinite(gemm)
    assert_close(direct[finite], gemm[finite], dtype, g.size // g.shape[1])


def test_strided_direct_gradient_scratch_does_not_grow_with_the_padding():
    """The strided input gradient's padded grad_output planes are not made where they
    would be far larger than an output plane (a padding or dilation far beyond the input):
    it then runs tap by tap with no scratch."""
    geometry = (1, 2, 0, 2**26, 1, 2**26, 1)
    assert _conv.grad_input_scratch((1, 1, 1, 1), (1, 1, 1, 3), (1, 1, 1, 1), geometry, 4,
                                    False)[0] == 0
    g = np.ones((1, 1, 1), np.float32)
    gx, gw, gb = conv1d_backward(g, np.ones((1, 1, 1), np.float32),
                                 np.ones((1, 1, 3), np.float32), stride=2, dilation=2**26,
                                 padding=2**26, algorithm="direct")
    assert gx.tolist() == [[[1.0]]] and gw.tolist() == [[[0.0, 1.0, 0.0]]]
    assert _conv.grad_input_scratch((1, 1, 1, 28), (1, 1, 1, 3), (1, 1, 1, 14),
                                    (1, 2, 0, 1, 1, 1, 1), 4, False)[0] > 0     # phases


def test_auto_names_both_paths_when_neither_fits():
    """'auto' replaced a path whose scratch would not fit by the other without asking the
    other's: a stride of 2**40 past a padding of 2**38 went to the unroll, whose phases of
    the stride took numpy's MemoryError for 20 TiB. Now a ValueError names both."""
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((1, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"algorithm='auto' would need .* GiB, more than "
                                         r"this machine's memory .*'direct' .* GiB, "
                                         r"'gemm' .* GiB"):
        conv2d(x, w, stride=2**40, padding=2**38)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_splits_leading_dimensions_blas_cannot_take(monkeypatch, dtype):
    """BLAS takes int leading dimensions: the unroll's products with an output plane of
    2**31 elements or more (its rows that far apart) are split into calls BLAS accepts (it
    refused the call and left zeros). Here the limit is lowered to make the split happen on
    small planes: forward, input gradient and weight gradient (both orientations of its
    product), with and without a stride, against the unsplit calls."""
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    rng = np.random.default_rng(9)
    cases = [((2, 3, 500), (8, 3, 5), 1), ((2, 3, 500), (8, 3, 5), 2),
             ((2, 16, 300), (4, 16, 3), 1), ((1, 2, 30, 40), (6, 2, 3, 3), 1),
             ((2, 1, 400), (80, 1, 3), 1)]     # more outputs than taps: g @ cols^T
    for xs, ws, stride in cases:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        fwd, bwd = FUNCS[len(xs) - 2]
        y = fwd(x, w, stride=stride, algorithm="gemm")
        g = rng.standard_normal(y.shape).astype(dtype)
        grads = bwd(g, x, w, stride, algorithm="gemm")
        old = _conv._gemm_max_ld(7)
        try:
            y2 = fwd(x, w, stride=stride, algorithm="gemm")
            grads2 = bwd(g, x, w, stride, algorithm="gemm")
        finally:
            _conv._gemm_max_ld(old)
        size = math.prod(ws[1:])
        assert_close(y2, y, dtype, size)
        assert_close(grads2.grad_input, grads.grad_input, dtype, ws[0] * size, "grad_input")
        assert_close(grads2.grad_weight, grads.grad_weight, dtype, xs[-1] * xs[0],
                     "grad_weight")


def test_packed_path_agrees_with_the_others_on_integers(monkeypatch, packed_rules):
    """On integer-valued data every sum is exact: the packed tiles, the direct loops and
    the unroll give the same bits, forward and input gradient."""
    rng = np.random.default_rng(11)
    for nd, kernel, size, c_in in ((1, (3,), (50,), 8), (2, (3, 3), (11, 19), 8),
                                   (2, (3, 3), (9, 10), 90)):       # channels in chunks
        fwd, bwd = FUNCS[nd]
        x = rng.integers(-3, 4, (2, c_in) + size).astype(np.float32)
        w = rng.integers(-3, 4, (20, c_in) + kernel).astype(np.float32)
        y = {a: fwd(x, w, padding=1, algorithm=a) for a in ("direct", "gemm")}
        ys = {a: fwd(x, w, stride=2, padding=1, algorithm=a) for a in ("direct", "gemm")}
        g = rng.integers(-3, 4, y["direct"].shape).astype(np.float32)
        gx = {a: bwd(g, x, w, 1, 1, algorithm=a)[0] for a in ("direct", "gemm")}
        monkeypatch.setattr(functional, "PACKED_GEMM", False)
        y["unroll"] = fwd(x, w, padding=1, algorithm="gemm")
        ys["unroll"] = fwd(x, w, stride=2, padding=1, algorithm="gemm")
        gx["unroll"] = bwd(g, x, w, 1, 1, algorithm="gemm")[0]
        monkeypatch.setattr(functional, "PACKED_GEMM", True)
        for a in ("gemm", "unroll"):
            assert np.array_equal(y[a], y["direct"]) and np.array_equal(gx[a], gx["direct"])
            assert np.array_equal(ys[a], ys["direct"])


def test_packed_path_falls_back_to_the_unroll(monkeypatch, packed_rules):
    """The unroll (and OpenBLAS) where the packed tiles do not apply: float64 rows of more
    than PACKED_F64_MAX_ROW outputs, strides over a reduction of more than
    PACKED_STRIDED_MAX_REDUCTION or a one-column kernel with a column stride, a thread's
    scratch over PACKED_MAX_SCRATCH_BYTES; and nowhere when PACKED_GEMM is False."""
    calls = _spy(monkeypatch)
    x = np.ones((2, 8, 600))
    w = np.ones((16, 8, 3))
    conv1d(x, w, stride=2, algorithm="gemm")                        # a reduction of 24
    assert len(calls) == 1
    conv1d(np.ones((2, 193, 600)), np.ones((16, 193, 3)), stride=2, algorithm="gemm")  # 579
    conv1d(x, w[..., :1], stride=2, algorithm="gemm")
    conv2d(np.ones((1, 8, 20, 20)), np.ones((16, 8, 1, 1)), stride=2, algorithm="gemm")
    conv2d(np.ones((1, 8, 20, 20)), np.ones((16, 8, 3, 1)), stride=(1, 2), algorithm="gemm")
    del calls[:]
    conv1d(x, w, algorithm="gemm")                                  # 598 outputs
    conv1d(x[..., :514], w, algorithm="gemm")                       # 512
    assert len(calls) == 1
    conv1d(x.astype(np.float32), w.astype(np.float32), algorithm="gemm")
    assert len(calls) == 2
    monkeypatch.setattr(functional, "PACKED_MAX_SCRATCH_BYTES", 1000)
    conv1d(x[..., :514], w, algorithm="gemm")
    monkeypatch.setattr(functional, "PACKED_MAX_SCRATCH_BYTES", 1 << 24)
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    conv1d(x[..., :514], w, algorithm="gemm")
    assert len(calls) == 2


def test_choose_algorithm_rules_with_the_packed_path(packed_rules):
    """Where the packed path applies, 'auto' takes it from 16 outputs per group for conv1d
    and conv2d with unit strides and a reduction of 16+ (measured with AVX2: 1.1-1.8x the
    direct forward's speed from 16 outputs, 0.83-1.2x at 8); float64 rows past 512 outputs
    keep the narrow limits, since they unroll. conv1d, and conv2d with kernels of 2+ rows,
    take the tiles from 16 outputs over shorter reductions too (1.1-2.2x the direct
    forward's speed over 1-5 input channels; 3x3 over one channel 1.02-1.7x)."""
    for dtype in (np.float32, np.float64):
        assert choose_algorithm(1, 15, 3, dtype=dtype) == "direct"
        assert choose_algorithm(1, 16, 3, dtype=dtype) == "gemm"        # a reduction of 3
        assert choose_algorithm(3, 64, 5, length=512, dtype=dtype) == "gemm"
        assert choose_algorithm(3, 64, 5, length=5000, dtype=dtype) == "direct"  # a long row
        assert choose_algorithm(300, 15, 3, dtype=dtype) == "direct"
        assert choose_algorithm(300, 16, 3, dtype=dtype) == "gemm"
        assert choose_algorithm(64, 15, (3, 3), dtype=dtype) == "direct"
        assert choose_algorithm(64, 16, (3, 3), dtype=dtype) == "gemm"
        assert choose_algorithm(3, 16, (3, 3), dtype=dtype) == "gemm"      # a reduction of 27
        assert choose_algorithm(1, 64, (3, 3), dtype=dtype) == "gemm"      # of 9
        assert choose_algorithm(1, 15, (3, 3), dtype=dtype) == "direct"
        assert choose_algorithm(16, 16, (3, 3), groups=16, dtype=dtype) == "direct"
        assert choose_algorithm(64, 64, 127, dtype=dtype) == "fft"
    assert choose_algorithm(300, 24, 3, length=513, dtype=np.float64) == "direct"
    assert choose_algorithm(300, 25, 3, length=513, dtype=np.float64) == "gemm"
    assert choose_algorithm(300, 16, 3, length=512, dtype=np.float64) == "gemm"
    assert choose_algorithm(300, 16, 3, length=513) == "gemm"
    assert choose_algorithm(3, 64, 5, length=513, dtype=np.float64) == "direct"


def test_packed_kernel_checks_its_buffers():
    x = np.ones((1, 2, 1, 20))
    w = np.ones((3, 2, 1, 3))
    y = np.empty((1, 3, 1, 18))
    with pytest.raises(ValueError, match="bias must have 3 elements, got 2"):
        _conv.forward_packed(x, w, np.zeros(2), y, 1, 1, 0, 0, 1, 1, 1, 1, np.empty((1, 1000)))
    with pytest.raises(ValueError, match="scratch must be at least"):
        _conv.forward_packed(x, w, np.zeros(3), y, 1, 1, 0, 0, 1, 1, 1, 1, np.empty((1, 10)))
    with pytest.raises(ValueError, match=r"strides must be >= 1, got \(1, 0\)"):
        _conv.forward_packed(x, w, np.zeros(3), y, 1, 0, 0, 0, 1, 1, 1, 1, np.empty((1, 1000)))


@pytest.mark.parametrize("nd,c_in,c_out,length,dtype,packed", [
    (1, 16, 16, 100, np.float32, True),
    (1, 15, 16, 100, np.float32, False),     # fewer than 16 input channels
    (1, 16, 8, 100, np.float64, True),       # 'direct' forward, packed input gradient
    (1, 16, 16, 600, np.float64, False),     # a float64 row past 512: direct
    (2, 16, 16, 20, np.float32, True),
    (2, 8, 32, 20, np.float64, False),      # fewer than 16 input channels
])
def test_auto_backward_with_the_packed_path(monkeypatch, packed_rules, nd, c_in, c_out,
                                            length, dtype, packed):
    """With the packed tiles, 'auto' runs the input gradient over 16+ input channels per
    group (unit strides) by them where the rules without them pick the direct path; the
    weight gradient keeps its own rules."""
    calls = _spy(monkeypatch)
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng([c_in, c_out, length])
    x = rng.standard_normal((2, c_in) + (length,) * nd).astype(dtype)
    w = rng.standard_normal((c_out, c_in) + (3,) * nd).astype(dtype)
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    assert choose_algorithm(c_in, c_out, (3,) * nd, dtype=dtype, length=length) == "direct"
    monkeypatch.setattr(functional, "PACKED_GEMM", True)
    g = rng.standard_normal(fwd(x, w, padding=1, algorithm="direct").shape).astype(dtype)
    del calls[:]
    auto = bwd(g, x, w, 1, 1, algorithm="auto")
    assert len(calls) == packed
    ref = conv_backward(g, x, w, 1, 1)
    assert_close(auto.grad_input, ref[0], dtype, c_out * 3 ** nd, "grad_input")
    assert np.array_equal(auto.grad_weight, bwd(g, x, w, 1, 1, algorithm="auto",
                                                output_mask=(False, True, False)).grad_weight)


@pytest.mark.parametrize("nd,c_in,c_out,groups,direct", [
    (1, 8, 64, 1, True),        # 8 channels fill 8 of two tiles' 12 rows
    (1, 7, 64, 1, True),
    (2, 8, 128, 1, True),
    (2, 16, 256, 2, True),      # 8 per group
    (1, 12, 64, 1, False),      # two full tiles
    (1, 6, 128, 1, False),
    (2, 10, 128, 1, False),     # 10 of 12 rows
    (1, 16, 64, 1, False),
])
def test_auto_backward_leaves_partly_empty_input_tiles(monkeypatch, packed_rules, nd, c_in,
                                                        c_out, groups, direct):
    """Where the rules without the tiles pick 'gemm' for the backward, 'auto' runs the input
    gradient direct when a third or more of the tiles' rows (6 input channels per tile)
    would be empty; the weight gradient stays the unroll's. Bitwise what the direct input
    gradient gives, and no packed call then."""
    calls = _spy(monkeypatch)
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng([nd, c_in, c_out])
    size = 40 if nd == 1 else 12
    x = rng.standard_normal((2, c_in) + (size,) * nd).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // groups) + (3,) * nd).astype(np.float32)
    monkeypatch.setattr(functional, "PACKED_GEMM", False)
    assert choose_algorithm(c_in, c_out, (3,) * nd, groups=groups, length=size) == "gemm"
    monkeypatch.setattr(functional, "PACKED_GEMM", True)
    g = rng.standard_normal(fwd(x, w, padding=1, groups=groups).shape).astype(np.float32)
    del calls[:]
    gi = bwd(g, x, w, 1, 1, 1, groups, output_mask=(True, False, False)).grad_input
    assert len(calls) == (0 if direct else 1)
    ref = bwd(g, x, w, 1, 1, 1, groups, algorithm="direct", output_mask=(True, False, False))
    if direct:
        assert np.array_equal(gi, ref.grad_input)
    else:
        assert_close(gi, ref.grad_input, np.float32, c_out // groups * 3 ** nd, "grad_input")
    gw = bwd(g, x, w, 1, 1, 1, groups, output_mask=(False, True, False)).grad_weight
    assert np.array_equal(gw, bwd(g, x, w, 1, 1, 1, groups, algorithm="gemm",
                                  output_mask=(False, True, False)).grad_weight)


def test_packed_scratch_figure_is_the_kernels(packed_rules):
    """functional._packed_need computes the kernels' own scratch figure (in Python ints);
    past 2**60 bytes the kernels answer -1 instead of a wrapped product, and a call whose
    products would wrap runs the other paths (it crashed: a padding of 2**29 with dilation
    2**30 made the scratch figure negative)."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        groups = int(rng.integers(1, 4))
        cg, og = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        dh, dw = int(rng.integers(1, 4)), int(rng.integers(1, 40))
        sh, sw = int(rng.integers(1, 4)), int(rng.choice([1, 2, 3, 5, 160]))
        h_out, w_out = int(rng.integers(1, 90)), int(rng.integers(1, 3000))
        dtype = np.dtype(rng.choice(["float32", "float64"]))
        w_shape = (og * groups, cg, kh, kw)
        y_shape = (2, og * groups, h_out, w_out)
        x_shape = (2, cg * groups, (h_out - 1) * sh + (kh - 1) * dh + 1,
                   (w_out - 1) * sw + (kw - 1) * dw + 1)
        need = functional._packed_need(w_shape, y_shape, (sh, sw), (dh, dw), groups, dtype)
        kernels = _conv.packed_scratch(x_shape, w_shape, y_shape,
                                       (sh, sw, 0, 0, dh, dw, groups), dtype.itemsize)
        assert need is None or need == kernels
    geometry = ((1, 8, 1, 1), (16, 8, 2, 2), (1, 16, 1, 1), (1, 1, 2**29, 2**29, 2**30, 2**30, 1))
    assert _conv.packed_scratch(*geometry, 4) == -1
    x = np.ones((1, 8, 1, 1), np.float32)
    w = np.ones((16, 8, 2, 2), np.float32)
    for algorithm in ("auto", "gemm"):
        y = conv2d(x, w, padding=2**29, dilation=2**30, algorithm=algorithm)
        assert y.shape == (1, 16, 1, 1) and not y.any()
        g = conv2d_backward(np.ones_like(y), x, w, padding=2**29, dilation=2**30,
                            algorithm=algorithm)
        assert not g.grad_input.any() and g.grad_bias.tolist() == [1.0] * 16


def test_packed_path_skips_strips_it_would_mostly_not_read(monkeypatch, packed_rules):
    """A dilation far beyond the outputs pads rows the tiles mostly skip (25x slower than the
    unroll): the packed path declines where its strip would be more than
    PACKED_MAX_PADDED_FACTOR times what the tiles read, and 'auto' then takes the rule of the
    path that runs (here the direct one, up to 32 float32 outputs)."""
    calls = _spy(monkeypatch)
    x = np.ones((1, 16, 3000), np.float32)
    w = np.ones((16, 16, 2), np.float32)
    args = functional._checks.conv_args(x, w, None, 1, 0, 2900, 1, 1, 1)
    assert functional._resolve(args, "auto") == "direct"
    y = conv1d(x, w, dilation=2900, algorithm="gemm")
    assert len(calls) == 0 and np.array_equal(y, np.full((1, 16, 100), 32, np.float32))
    args = functional._checks.conv_args(x, w, None, 1, 0, 29, 1, 1, 1)
    assert functional._resolve(args, "auto") == "gemm"
    conv1d(x, w, dilation=29, algorithm="gemm")
    assert len(calls) == 1


@pytest.fixture
def dw_blocked():
    """The blocked depthwise forward on, as by default, and on again after the test."""
    yield _conv._dw_blocked(1)
    _conv._dw_blocked(1)


#: depthwise geometries for the blocked paths: nd, channels, kernel, size, stride, padding,
#: dilation
DEPTHWISE_CASES = [
    (2, 16, 3, (28, 28), 1, 1, 1),             # whole blocks of channels, rows of 8 and more
    (2, 13, 3, (14, 14), 2, 1, 1),             # a part block, the last eight outputs overlap
    (2, 9, (3, 2), (7, 5), 1, ((2, 0), (3, 1)), (2, 1)),   # rows of 4-7 outputs, padding
    (2, 5, 2, (4, 3), (1, 2), 1, 1),           # rows of 1-3 outputs
    (2, 24, 5, (17, 23), 2, 2, 2),             # strides and dilation as offsets
    (2, 10, 3, (13, 16), (3, 2), (0, 2), 2),   # inputs no output reads
    (2, 3, 1, (6, 19), 3, 0, 1),               # one tap, a stride past it
    (1, 20, 31, 300, 1, 15, 1),
    (1, 7, 3, 50, 2, (2, 0), 3),
    (1, 6, 9, 40, 1, "same", 2),
    (1, 6, 4, 9, 1, "same", 2),                # float64: not blocked
]


def _depthwise_case(nd, channels, k, size, dtype, seed):
    """Input and weight of a depthwise layer, and its kernel as a tuple."""
    rng = np.random.default_rng([channels, nd, seed])
    shape = (size,) if nd == 1 else size
    kernel = (k,) * nd if isinstance(k, int) else k
    x = rng.standard_normal((3, channels) + shape).astype(dtype)
    w = rng.standard_normal((channels, 1) + kernel).astype(dtype)
    return rng, x, w, kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,channels,k,size,stride,padding,dilation", DEPTHWISE_CASES)
def test_blocked_depthwise_forward(dw_blocked, dtype, nd, channels, k, size, stride, padding,
                                   dilation):
    """Depthwise layers run the direct forward over blocks of channels transposed into
    vectors (_conv's _dw_path): against the reference and bitwise the same at 1, 2 and 3
    threads; in float32 bitwise the padded planes' (the path turned off), which sum the same
    terms in the same order (in float64 some of their edge outputs skip the fused
    multiply-add: to rounding)."""
    fwd = FUNCS[nd][0]
    rng, x, w, kernel = _depthwise_case(nd, channels, k, size, dtype, 11)
    b = rng.standard_normal(channels).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=channels,
              algorithm="direct")
    got = fwd(x, w, b, num_threads=1, **kw)
    assert_close(got, conv_forward(x, w, b, stride, padding, dilation, channels), dtype,
                 math.prod(kernel), "forward")
    for t in (2, 3):
        assert np.array_equal(fwd(x, w, b, num_threads=t, **kw), got)
    _conv._dw_blocked(0)
    planes = fwd(x, w, b, num_threads=1, **kw)
    if dtype == np.float32:
        assert np.array_equal(planes, got)
    else:
        assert_close(got, planes, dtype, math.prod(kernel), "forward over planes")


def test_blocked_depthwise_forward_keeps_non_finite_values_local(dw_blocked):
    """An infinity or NaN in one channel's plane reaches only the outputs whose windows hold
    it, in that channel: the transposes pad with zeros, never stale values."""
    x = np.ones((1, 10, 9, 12), np.float32)
    x[0, 3, 4, 5] = np.inf
    x[0, 9, 0, 0] = np.nan
    y = conv2d(x, np.ones((10, 1, 3, 3), np.float32), padding=1, groups=10)
    bad = ~np.isfinite(y)
    assert bad[0, 3, 3:6, 4:7].all() and bad[0, 9, :2, :2].all()
    assert bad.sum() == 9 + 4


def _refuse_call(*args, **kwargs):
    raise AssertionError("this kernel should not run")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,channels,k,size,stride,padding,dilation", DEPTHWISE_CASES)
def test_depthwise_backward_over_blocks_of_channels(monkeypatch, dtype, nd, channels, k, size,
                                                    stride, padding, dilation):
    """Depthwise layers run their weight and input gradients over blocks of channels
    (depthwise_backward, the input gradient by the flipped forward with unit strides, else by
    scatter; the kernels of the other paths refused): against the reference, bitwise the
    same at 1, 2 and 3 threads and whichever other gradients are asked for; the bias
    gradient is grad_bias's."""
    bwd = FUNCS[nd][1]
    rng, x, w, kernel = _depthwise_case(nd, channels, k, size, dtype, 13)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=channels)
    g = rng.standard_normal(FUNCS[nd][0](x, w, **kw).shape).astype(dtype)
    alone = [bwd(g, x, w, output_mask=mask, num_threads=1, **kw)[i]
             for i, mask in enumerate([(True, False, False), (False, True, False),
                                       (False, False, True)])]
    if dtype == np.float64 and nd == 1 and kernel[0] < 7:
        got = bwd(g, x, w, num_threads=1, **kw)    # float64 rows of 2-6 taps: not blocked
    else:
        for name in ("grad_input", "grad_weight", "grad_input_weight"):
            monkeypatch.setattr(functional._conv, name, _refuse_call)
        got = bwd(g, x, w, num_threads=1, **kw)
        monkeypatch.undo()
    ref = conv_backward(g, x, w, stride, padding, dilation, channels)
    m = g.size // g.shape[1]
    for a, r, red, what in zip(got, ref, (math.prod(kernel), m, m),
                               ("grad_input", "grad_weight", "grad_bias")):
        assert_close(a, r, dtype, red, what)
    for a, b in zip(got, alone):
        assert np.array_equal(a, b)
    for t in (2, 3):
        for a, b in zip(bwd(g, x, w, num_threads=t, **kw), got):
            assert np.array_equal(a, b)


def test_depthwise_backward_of_an_empty_batch():
    x = np.ones((0, 16, 5, 6), np.float32)
    w = np.ones((16, 1, 3, 3), np.float32)
    gi, gw, gb = conv2d_backward(np.ones((0, 16, 5, 6), np.float32), x, w, padding=1,
                                 groups=16)
    assert gi.shape == x.shape and not gw.any() and not gb.any()


@pytest.fixture
def vector_weight(monkeypatch):
    """The weight gradient over vectors of output channels on, as on CPUs with AVX2+FMA and
    no AVX-512 (its kernel runs on any CPU)."""
    monkeypatch.setattr(functional, "VECTOR_WEIGHT", True)


#: geometries for the weight gradient over vectors of output channels: nd, samples, input
#: channels, outputs, groups, kernel, size, stride, padding, dilation
VECTOR_CASES = [
    (2, 5, 1, 32, 1, 3, (12, 17), 1, 1, 1),        # two vectors of outputs, tiles of 6 pairs
    (2, 3, 3, 20, 1, 3, (9, 11), 1, "same", 1),    # a last block of 4 outputs (float32)
    (2, 37, 2, 6, 1, (3, 2), (7, 9), (2, 3), ((2, 0), (1, 3)), (1, 2)),   # runs of samples
    (2, 2, 4, 12, 2, 5, (13, 10), 2, 2, 2),        # groups, strides and dilation
    (2, 1, 3, 8, 1, 1, (5, 6), 3, 0, 1),           # one tap, a stride past the input
    (1, 4, 64, 64, 8, 5, 300, 1, 2, 1),            # the grouped layer: 8 channels a group
    (1, 3, 1, 16, 1, 20, 701, 4, 0, 1),            # a raw-waveform front-end
    (1, 2, 5, 4, 1, 3, 1100, 1, "causal", 3),      # rows past the 512 outputs of a pass
    (1, 3, 20, 9, 1, 9, 40, 1, 4, 1),              # 180 pairs: 'direct' only
    (1, 4, 64, 8, 1, 2, 31, 1, 0, 1),              # 128 pairs, 30 outputs: 'direct' only;
                                                   # the input read in place (no padding)
    (2, 3, 2, 8, 1, 3, (9, 12), 1, 0, 1),          # the same in 2-D
    (1, 2, 40, 8, 1, 1, 4000, 1, 0, 1),            # in place, past the 512 KiB a padded
                                                   # copy of its input would take
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,n,c_in,c_out,groups,k,size,stride,padding,dilation",
                         VECTOR_CASES)
def test_weight_gradient_over_vectors_of_outputs(monkeypatch, vector_weight, dtype, nd, n,
                                                 c_in, c_out, groups, k, size, stride,
                                                 padding, dilation):
    """Where VECTOR_WEIGHT holds, 'direct' (and 'auto' up to 160 pairs of an input channel
    and a tap, 96 on planes of fewer than 256 output pixels) runs the weight gradient over
    vectors of output channels (the input read in place where nothing pads it), the bias
    gradient in the same pass (the other weight and bias kernels refused): against the
    reference; bitwise the same at 1, 2 and 3 threads, whichever other gradients are
    asked for, and the bias gradient bitwise grad_bias's; 'gemm' never takes it. Its
    partial sums stay within the bound functional._decide assumes without asking."""
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng([nd, n, c_in, c_out])
    shape = (size,) if nd == 1 else size
    kernel = (k,) * nd if isinstance(k, int) else k
    x = rng.standard_normal((n, c_in) + shape).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = rng.standard_normal(fwd(x, w, **kw).shape).astype(dtype)
    args = functional._checks.conv_args(x, w, None, stride, padding, dilation, groups, 1, nd)
    pairs = math.prod(w.shape[1:])
    auto = functional._weight_by_vectors(args, "auto", "gemm")
    assert auto == (pairs <= (96 if math.prod(args.out_shape[2:]) < 256 else 160))
    bias = bwd(g, x, w, output_mask=(False, False, True), **kw).grad_bias
    gemm = bwd(g, x, w, algorithm="gemm", output_mask=(False, True, False), **kw).grad_weight
    refused = ("grad_weight", "grad_input_weight", "grad_bias", "depthwise_backward")
    real = {name: getattr(_conv, name) for name in refused}
    for name in refused:
        monkeypatch.setattr(_conv, name, _refuse_call)
    got = bwd(g, x, w, algorithm="direct", num_threads=1, **kw)
    ref = conv_backward(g, x, w, stride, padding, dilation, groups)
    m = g.size // g.shape[1]
    for a, r, red, what in zip(got, ref, (c_out // groups * math.prod(kernel), m, m),
                               ("grad_input", "grad_weight", "grad_bias")):
        assert_close(a, r, dtype, red, what)
    assert np.array_equal(got.grad_bias, bias)
    alone = bwd(g, x, w, algorithm="direct", output_mask=(False, True, False), **kw)
    assert np.array_equal(alone.grad_weight, got.grad_weight) and alone.grad_bias is None
    for t in (2, 3):
        for a, b in zip(bwd(g, x, w, algorithm="direct", num_threads=t, **kw), got):
            assert np.array_equal(a, b)
    if auto:
        by_auto = bwd(g, x, w, output_mask=(False, True, True), **kw)
        assert np.array_equal(by_auto.grad_weight, got.grad_weight)
    for name in refused:
        monkeypatch.setattr(_conv, name, real[name])
    monkeypatch.setattr(_conv, "grad_weight_vec", _refuse_call)
    assert np.array_equal(bwd(g, x, w, algorithm="gemm", output_mask=(False, True, False),
                              **kw).grad_weight, gemm)
    if not auto:
        bwd(g, x, w, output_mask=(False, True, False), **kw)      # 'auto': another path
    xs, ws, ys = functional._shapes(args)
    _, partials = _conv.grad_weight_vec_scratch(xs.shape, ws.shape, ys,
                                                functional._geometry(args)[:-1],
                                                x.dtype.itemsize)
    assert 0 < partials <= n * (2 * pairs + 1) * (c_out + 7)


def test_weight_gradient_over_vectors_of_an_empty_batch(vector_weight):
    x = np.ones((0, 3, 5, 6), np.float32)
    w = np.ones((16, 3, 3, 3), np.float32)
    gi, gw, gb = conv2d_backward(np.ones((0, 16, 5, 6), np.float32), x, w, padding=1,
                                 algorithm="direct")
    assert gi.shape == x.shape and gw.shape == w.shape and not gw.any() and not gb.any()


# ------------------------------------------------------------------ Winograd's minimal filtering

@pytest.fixture
def winograd_calls(monkeypatch):
    """Counts of the Winograd passes run ('forward', 'grad_input', 'grad_weight')."""
    from pyconv1d import _winograd
    calls = {}

    def spy(name):
        real = getattr(_winograd, name)

        def run(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)
        monkeypatch.setattr(_winograd, name, run)
    for name in ("forward", "grad_input", "grad_weight"):
        spy(name)
    return calls


@pytest.mark.parametrize("kw", range(2, 8))
def test_winograd_transforms_are_correlation_exactly(kw):
    """In exact rationals, AT ((G w) * (BT d)) is the correlation of WA inputs with kw taps
    (m outputs), and A2T ((G2 g) * (BT d)) the correlation of the inputs with m outputs'
    gradients (kw taps): the identities the kernels round once each."""
    from fractions import Fraction

    from pyconv1d import _winograd as wg
    wa, m = wg.WA, wg.WA - kw + 1
    ev = wg._vandermonde
    bt = [list(col) for col in zip(*wg._inverse(ev(wa)))]
    rng = np.random.default_rng(kw)
    d = [Fraction(int(v)) for v in rng.integers(-9, 10, wa)]
    w = [Fraction(int(v)) for v in rng.integers(-9, 10, kw)]
    g = [Fraction(int(v)) for v in rng.integers(-9, 10, m)]

    def mul(a, v):
        return [sum(r * x for r, x in zip(row, v)) for row in a]
    v = mul(bt, d)
    y = mul(list(zip(*ev(m))), [a * b for a, b in zip(mul(ev(kw), w), v)])
    assert y == [sum(d[q + k] * w[k] for k in range(kw)) for q in range(m)]
    gw = mul(list(zip(*ev(kw))), [a * b for a, b in zip(mul(ev(m), g), v)])
    assert gw == [sum(d[q + k] * g[q] for q in range(m)) for k in range(kw)]
    # and the float64 matrices are those rationals rounded
    for got, want in zip(wg.matrices(kw), (bt, ev(kw), list(zip(*ev(m))), ev(m),
                                         list(zip(*ev(kw))))):
        assert np.array_equal(got, np.array([[float(a) for a in r] for r in want]))


WINOGRAD_CASES = [
    # nd, N, C_in, C_out, size, kernel, stride, padding, dilation
    (1, 3, 5, 7, (40,), (3,), 1, 1, 1),
    (1, 2, 4, 6, (37,), (5,), 1, 0, 2),
    (1, 2, 3, 5, (30,), (2,), 1, 4, 3),          # padding past the kernel's reach
    (1, 2, 6, 4, (50,), (7,), 1, 3, 1),
    (1, 1, 2, 3, (9,), (4,), 1, 0, 1),           # one tile, shorter than a block
    (1, 0, 3, 4, (20,), (3,), 1, 1, 1),          # an empty batch
    (2, 2, 3, 4, (9, 23), (3, 3), 1, 1, 1),
    (2, 2, 2, 5, (11, 19), (2, 5), (2, 1), (0, 2), (2, 1)),   # row stride: no input gradient
    (2, 3, 4, 3, (7, 30), (3, 6), 1, (2, 1), (1, 3)),
]


@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=str)
def test_winograd_matches_the_reference_bitwise_across_threads(case, winograd_calls):
    """algorithm='winograd': forward and the three gradients against the scipy reference
    (float64 tolerance), bitwise the same on 1, 2 and 3 threads, the Winograd passes run
    (the input gradient only with unit strides; the bias's gradient is grad_bias's)."""
    nd, n, c, o, size, kernel, stride, padding, dilation = case
    fwd, bwd = FUNCS[nd]
    rng = np.random.default_rng(list(size) + list(kernel))
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((o, c) + kernel)
    b = rng.standard_normal(o)
    kw = dict(stride=stride, padding=padding, dilation=dilation, algorithm="winograd")
    y = conv_forward(x, w, b, stride, padding, dilation)
    g = rng.standard_normal(y.shape)
    runs = [(fwd(x, w, b, num_threads=t, **kw),) + tuple(bwd(g, x, w, num_threads=t, **kw))
            for t in (1, 2, 3)]
    want = (y,) + tuple(conv_backward(g, x, w, stride, padding, dilation))
    for got, expected, what in zip(runs[0], want, ("forward", "input", "weight", "bias")):
        assert_close(got, expected, np.float64, c * math.prod(kernel), what)
    for other in runs[1:]:
        assert all(np.array_equal(a, e) for a, e in zip(other, runs[0]))
    # (an empty batch has nothing to tile: 'gemm' returns its empty results)
    assert winograd_calls == ({} if n == 0 else
                              {"forward": 3, "grad_weight": 3,
                               **({"grad_input": 3} if stride == 1 else {})})


def test_winograd_writes_every_output(nan_buffers, winograd_calls):
    """Every output and gradient written, no scratch read before it is written: with new
    buffers filled with NaN the results are bitwise those of a clean run."""
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((3, 5, 2, 41)), rng.standard_normal((6, 5, 2, 4))
    kw = dict(padding=(1, 2), dilation=(1, 2), algorithm="winograd", num_threads=2)
    y = conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape)
    want = (y,) + tuple(conv2d_backward(g, x, w, **kw))
    nan_buffers()
    got = (conv2d(x, w, **kw),) + tuple(conv2d_backward(g, x, w, **kw))
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert winograd_calls == {"forward": 2, "grad_input": 2, "grad_weight": 2}


@pytest.mark.parametrize("dtype,c_in,c_out,k,groups,stride,taken", [
    (np.float64, 96, 96, 3, 1, 1, {"forward", "grad_input", "grad_weight"}),
    (np.float64, 128, 64, 5, 1, 1, {"forward", "grad_input", "grad_weight"}),
    (np.float64, 96, 96, 2, 1, 1, {"forward", "grad_input"}),     # weight gradient from 3 taps
    (np.float64, 256, 48, 3, 1, 1, set()),                        # 48 outputs: too few rows
    (np.float64, 64, 64, 3, 1, 1, set()),                         # 64 x 64: too small
    (np.float64, 50, 100, 3, 1, 1, set()),                        # Kim's layer: 50 channels
    (np.float32, 96, 96, 3, 1, 1, set()),                         # float64 only
    (np.float64, 256, 256, 3, 2, 1, set()),                       # grouped
    (np.float64, 96, 96, 3, 1, 2, set()),                         # strided
    (np.float64, 96, 96, 1, 1, 1, set()),                         # pointwise
    (np.float64, 96, 96, 9, 1, 1, set()),                         # past 7 taps
])
def test_auto_takes_winograd_for_wide_float64_layers(packed_rules, winograd_calls, dtype, c_in,
                                                     c_out, k, groups, stride, taken):
    """Without AVX-512 'auto' runs a pass by Winograd for float64 layers whose products have
    64+ rows over a 64+ reduction, 8,192+ in all, ungrouped, unit stride, 2-7 taps (the
    weight gradient 3-7); choose_algorithm names it where the forward takes it."""
    rng = np.random.default_rng(k)
    x = rng.standard_normal((2, c_in, 60)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, k)).astype(dtype)
    y = conv1d(x, w, stride=stride, groups=groups)
    conv1d_backward(np.ones_like(y), x, w, stride=stride, groups=groups)
    assert set(winograd_calls) == taken
    named = choose_algorithm(c_in, c_out, k, groups, stride, y.shape[-1], dtype)
    assert (named == "winograd") == ("forward" in taken)


ALL = {"forward", "grad_input", "grad_weight"}


@pytest.mark.parametrize("dtype,c_in,c_out,k,groups,stride,taken", [
    (np.float64, 50, 100, 5, 1, 1, ALL),                        # Kim's k5 layer
    (np.float64, 300, 100, 4, 1, 1, ALL),
    (np.float64, 64, 64, (1, 5), 1, 1, ALL),                    # one kernel row
    (np.float64, 50, 100, 3, 1, 1, {"grad_weight"}),            # 3 taps: the weight only
    (np.float64, 32, 32, 3, 1, 1, {"grad_weight"}),
    (np.float64, 48, 48, 5, 1, 1, {"grad_weight"}),             # 48 x 48: too small a product
    (np.float64, 32, 32, (3, 3), 1, 1, {"grad_weight"}),        # 3x3: the weight only
    (np.float64, 128, 128, 7, 1, 1, {"grad_weight"}),           # 7 taps: the weight only
    (np.float64, 96, 96, 2, 1, 1, set()),                       # 2 taps: none
    (np.float64, 24, 96, 5, 1, 1, set()),                       # 24 channels: too few
    (np.float32, 50, 100, 5, 1, 1, set()),                      # float64 only
    (np.float64, 256, 256, 5, 2, 1, set()),                     # grouped
    (np.float64, 96, 96, 5, 1, 2, set()),                       # strided
    (np.float64, 64, 64, 129, 1, 1, set()),                     # past 7 taps (the FFT's)
])
def test_auto_takes_winograd_on_wide_vectors(wide_rules, winograd_calls, dtype, c_in, c_out, k,
                                             groups, stride, taken):
    """With AVX-512 'auto' runs the forward and the input gradient by Winograd for float64
    kernels of one row and 4-5 columns, the weight gradient from 3 columns, where the
    products have 32+ rows over a 32+ reduction (4,096+ in all; the weight 1,024+);
    choose_algorithm names it where the forward takes it."""
    rng = np.random.default_rng(c_in)
    nd = 1 if isinstance(k, int) else 2
    fwd, bwd = FUNCS[nd]
    x = rng.standard_normal((2, c_in) + (4,) * (nd - 1) + (160,)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + ((k,) if nd == 1 else k)).astype(dtype)
    y = fwd(x, w, stride=stride, groups=groups)
    bwd(np.ones_like(y), x, w, stride=stride, groups=groups)
    assert set(winograd_calls) == taken
    named = choose_algorithm(c_in, c_out, k, groups, stride,
                             y.shape[-1] if nd == 1 else None, dtype)
    assert (named == "winograd") == ("forward" in taken)


@pytest.mark.parametrize("dtype,stride,groups", [(np.float32, 1, 1), (np.float64, 2, 1),
                                                 (np.float64, 1, 2)])
def test_winograd_by_name_where_it_does_not_run_is_gemm(winograd_calls, dtype, stride,
                                                        groups):
    """Asked for where it does not run (float32, a column stride, groups), 'winograd' gives
    'gemm''s bits."""
    rng = np.random.default_rng(stride + groups)
    x = rng.standard_normal((2, 8, 30)).astype(dtype)
    w = rng.standard_normal((8, 8 // groups, 3)).astype(dtype)
    kw = dict(stride=stride, groups=groups)
    y = {a: conv1d(x, w, algorithm=a, **kw) for a in ("winograd", "gemm")}
    assert np.array_equal(y["winograd"], y["gemm"])
    g = np.ones_like(y["gemm"])
    grads = {a: conv1d_backward(g, x, w, algorithm=a, **kw) for a in ("winograd", "gemm")}
    assert all(np.array_equal(a, b) for a, b in zip(grads["winograd"], grads["gemm"]))
    assert not winograd_calls


def test_winograd_allocates_for_the_blocks_not_the_threads(winograd_calls):
    """num_threads far past the blocks of tiles: scratch for the threads that have a block
    (not 4096 of them), the same bits as one thread."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 8, 50)), rng.standard_normal((8, 8, 3))
    y = conv1d(x, w, algorithm="winograd", num_threads=4096)
    assert np.array_equal(y, conv1d(x, w, algorithm="winograd", num_threads=1))
    g = np.ones_like(y)
    many = conv1d_backward(g, x, w, algorithm="winograd", num_threads=4096)
    one = conv1d_backward(g, x, w, algorithm="winograd", num_threads=1)
    assert all(np.array_equal(a, b) for a, b in zip(many, one))
