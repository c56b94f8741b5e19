"""Convolution as functions on numpy arrays: forward and backward.

Semantics are PyTorch's (cross-correlation, no kernel flip; channels first). Every function
validates its arguments once, through :mod:`pyconv1d._checks`, then hands contiguous arrays to
the Cython kernels, which release the GIL and run in parallel with OpenMP.
"""
import contextlib
import functools
import math
import threading
from typing import NamedTuple, Optional

import numpy as np

from . import _blas, _checks, _conv, _fft, _winograd

__all__ = ["ConvGrads", "choose_algorithm", "conv1d", "conv1d_backward", "conv2d",
           "conv2d_backward"]


class ConvGrads(NamedTuple):
    """Gradients returned by the ``*_backward`` functions (None where not requested)."""
    grad_input: Optional[np.ndarray]
    grad_weight: Optional[np.ndarray]
    grad_bias: Optional[np.ndarray]


ALGORITHMS = ("auto", "direct", "gemm", "fft", "winograd")

#: 'auto' takes Winograd's minimal filtering (float64 only: pyconv1d/_winograd.py) for the
#: passes of the layers it would unroll or tile ('gemm') whose products have at least
#: WINOGRAD_MIN_CHANNELS rows and as long a reduction, and WINOGRAD_MIN_PRODUCT as their
#: product: the forward's and weight gradient's C_out rows over C_in*KH pairs (input
#: channel, kernel row), the input gradient's C_in over C_out*KH; the weight gradient from 3
#: kernel columns (with 2 it ran 0.94-1.0x the unroll's speed). Below them (64 x 64, or
#: 64 outputs over a 3x3 kernel's 96 pairs) it ran 0.84-1.16x; from 96 x 96, 1.0-1.3x.
#: Measured with AVX2 (AMD EPYC, Zen 3); with AVX-512 see WIDE_WINOGRAD_KW.
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_PRODUCT = 8192
#: Where the direct loops run on 64-byte vectors (AVX-512, ``WIDE_VECTORS``) they run dense
#: float64 conv1d near the dgemm rate, and Winograd's transforms, gathers and BLAS packing
#: (half its time on 128 x 128 layers, its products the other half) pay only where it saves
#: the most: 'auto' takes it for the forward and the input gradient of kernels of one row
#: and 4 or 5 columns (2.5x fewer multiply-adds), instead of the direct rows or the unroll,
#: with WIDE_WINOGRAD_MIN_CHANNELS rows and reduction and WIDE_WINOGRAD_MIN_PRODUCT in all,
#: and for the weight gradient from 3 columns (instead of the unroll or the direct planes)
#: with WIDE_WINOGRAD_MIN_CHANNELS and WIDE_WINOGRAD_MIN_PRODUCT_WEIGHT. Measured on an
#: Intel Xeon (Sapphire Rapids) core, 1 and 2 threads, against what 'auto' ran before:
#: forward and input gradient with 4-5 taps 0.98-1.3x (Kim's 50 -> 100 layers 1.0-1.36x,
#: 48 x 48 0.85-0.93x: left out), with 3 taps 0.85-1.2x and 7 taps 0.8x (2.25x and 1.75x
#: fewer multiply-adds: left to the direct rows), 3x3 and 5x5 conv2d 0.6-0.9x; weight
#: gradient 1.05-1.6x from 32 x 32 over 3 taps (2 taps: 0.9-1.0x).
WIDE_WINOGRAD_KW = (4, 5)
WIDE_WINOGRAD_MIN_CHANNELS = 32
WIDE_WINOGRAD_MIN_PRODUCT = 4096
WIDE_WINOGRAD_MIN_PRODUCT_WEIGHT = 1024


def _as_2d(a, nd):
    """View a 1-D convolution's (N, C, L) array as a 2-D one's (N, C, 1, L)."""
    return a[:, :, None, :] if nd == 1 else a


#: Kernels with at least this many taps (stride 1) go to the FFT when channels mix ...
FFT_MIN_TAPS = 64
#: ... and with at least this many when each output sees few channels (depthwise).
FFT_MIN_TAPS_FEW_CHANNELS = 256
#: Whether the direct path's loops run on 64-byte vectors (AVX-512) on this CPU. The two
#: limits below were calibrated on such a CPU; with narrower vectors (AVX2, SSE2, arm64) the
#: direct loops hold fewer outputs in registers and the unroll wins from fewer outputs per
#: group, so the NARROW_ limits apply there.
WIDE_VECTORS = _conv.wide_vectors()
#: Whether the gemm path's forward (and its input gradient with unit strides) run packed tiles
#: read straight from padded input rows (no unrolled copy, no BLAS: _conv.forward_packed)
#: instead of the unroll and a BLAS gemm: on CPUs that run the kernels' AVX2+FMA clone and
#: have no AVX-512, where the tiles of 6 filters x 2 vectors fill 12 of the 16 vector
#: registers (measured there; with AVX-512 the unroll and OpenBLAS's kernels stay)
PACKED_GEMM = _conv.fma_vectors() and not WIDE_VECTORS
#: ... while one thread's scratch (a strip's padded input) stays within this many bytes and
#: this many times what the tiles read of it (a dilation far beyond the outputs pads rows the
#: tiles mostly skip: 25x slower than the unroll with 1 M samples dilated by 500,000), and in
#: float64 on rows of kernels with one row (conv1d) of up to PACKED_F64_MAX_ROW outputs (where
#: rows are longer, OpenBLAS's dgemm on the unrolled block ran 1.05-1.1x as fast)
PACKED_MAX_SCRATCH_BYTES = 1 << 24
PACKED_MAX_PADDED_FACTOR = 4
PACKED_F64_MAX_ROW = 512
#: ... and with strides, over a reduction C_in/groups * taps of up to this many and on
#: kernels of 2+ columns (measured with AVX2, 1 thread, 8 samples: from 768 the unroll ran
#: 1.0-1.3x as fast, and it is a mere gather for one-column kernels: 1.05-1.2x)
PACKED_STRIDED_MAX_REDUCTION = 576
#: Where the packed path applies, 'auto' takes it from this many outputs per group for conv1d
#: and conv2d with unit strides (instead of the NARROW_ limits of the direct path)
PACKED_MIN_OG = 16
#: On CPUs without AVX-512, strided convolutions take 'gemm' from this many outputs per group
#: over any reduction, where the direct path ran them tap by tap (measured with AVX2, 8-64
#: outputs per group, 1-4 input channels per group, 3-10 taps, conv1d and 3x3 conv2d: the
#: unroll 1.1-6.5x, the packed tiles 1.2-6.4x as fast forward; the unrolled input and
#: weight gradients 1.1-7x). Since the direct forward runs over phases (1.04-4x faster),
#: it takes 1.0-1.4x the time of 'gemm' there from 8 outputs (float32; conv1d and 3x3
#: conv2d), but 0.74-0.85x in float64 on conv1d rows, which unroll. Since the strided input
#: and weight gradients run over phases too, the direct backward (both gradients) runs
#: 1.2-1.7x the unroll's speed at 8 outputs on 1 thread (0.95-1.4x on 2; 1-16 input channels,
#: conv1d K=5 and 3x3 conv2d, stride 2), about even at 12-16 and slower from 32: the
#: backward takes 'gemm' from NARROW_STRIDED_BWD_MIN_OG.
NARROW_STRIDED_MIN_OG = 8
NARROW_STRIDED_BWD_MIN_OG = 12
#: With AVX-512 the forward of strided layers whose strides are all at most this runs by
#: the direct path (over phases) up to the unit-stride limits of outputs per group
#: (ROW_DIRECT_MAX_OG, PLANE_DIRECT_MAX_OG): measured on an Intel Xeon (Sapphire Rapids; 1
#: and 2 threads, float32 and float64, 1-256 input channels, 16-256 outputs, strides 2-8,
#: 3-400 taps, conv1d rows of 7-8,000 outputs, conv2d 3x3 and 5x5), 1.06-2.7x the unroll's
#: speed (k=80 stride 4 on one channel, the wav2vec-style front-end: 1.36-1.43x), while
#: with longer strides over long kernels (100-400 taps, strides 16-160) the unroll ran
#: 0.9-9x as fast (k=251 stride 10: even). Their backward keeps the unroll from 8 outputs
#: (16 for conv2d): the direct gradients ran 1.2-10x slower there.
WIDE_STRIDED_DIRECT_MAX_STRIDE = 8
#: The gemm forward of an unpadded, undilated, ungrouped conv1d with a stride of at least
#: this reads its unrolled rows in place (_conv.forward_windows): a run of up to s taps of
#: every window is a BLAS operand whose rows lie s apart, and with one input channel over
#: rows a whole number of strides long the whole batch's windows are one such operand.
#: Measured on an Intel Xeon (Sapphire Rapids; best of 25 alternated, 1 and 2 threads,
#: float32 and float64) against the unroll: 1.08-1.62x on raw-waveform front ends of 1-2
#: channels, 40-256 outputs, 128-400 taps and strides 64-160 (`wav-k400-s160` 1.30-1.31x),
#: 0.97-1.13x at K=400 stride 80 on 2 threads; with stride 16 over 100 taps (seven runs of
#: 16 taps: thin products) 0.66-0.99x.
WINDOWS_MIN_STRIDE = 64
#: conv2d with unit strides (and kernels of 2+ rows) runs direct up to this many outputs per
#: group
PLANE_DIRECT_MAX_OG = 128
#: conv1d with unit stride, 2+ taps and a reduction of 16+ runs direct (over padded rows,
#: eight outputs per load) up to this many outputs per group ...
ROW_DIRECT_MAX_OG = 512
#: ... and on narrower vectors, by dtype (measured with AVX2 on an AMD EPYC (Zen 3) core; see
#: choose_algorithm)
NARROW_PLANE_DIRECT_MAX_OG = {"float32": 64, "float64": 32}
NARROW_ROW_DIRECT_MAX_OG = {"float32": 32, "float64": 24}
#: ... on rows of up to this many outputs
ROW_DIRECT_MAX_LENGTH = _conv.ROW_PLANE_MAX_OUTPUTS
#: planes the direct path filters together (the kernels' PLANE_BLOCK)
PLANE_BLOCK = _conv.PLANE_BLOCK_SIZE
#: 'auto' takes another path where this one's scratch per thread would exceed both
#: SCRATCH_SLACK_BYTES and SCRATCH_SLACK_FACTOR times one sample's input of a group (see
#: _affordable): a padding, dilation or stride far beyond the input
SCRATCH_SLACK_BYTES = 1 << 26
SCRATCH_SLACK_FACTOR = 64
#: scratch buffers of more than this are made for their call and not kept for the next
SCRATCH_KEEP_BYTES = 1 << 28
#: on CPUs without AVX-512, the input gradient of a conv2d whose forward runs direct unrolls
#: on planes of DIRECT_WEIGHT_MIN_PIXELS or more only from this many input channels (and 64
#: outputs) per group (see _backward_algorithms)
NARROW_UNROLL_INPUT_MIN_CG = 4
#: output pixels per plane from which the direct 2-D weight gradient of 8+ outputs per group
#: pays (the rule, by dtype, outputs and whether it runs in one pass with the input gradient,
#: is in _backward_algorithms); below it the input gradient of few channels unrolls from fewer
#: outputs
DIRECT_WEIGHT_MIN_PIXELS = 512
#: The weight gradient over vectors of output channels (_conv.grad_weight_vec: each input
#: element broadcast against 8 or 16 outputs' grad_output, transposed into vectors of
#: channels) runs on CPUs with the AVX2+FMA clone and no AVX-512, where its tiles of 10-12
#: accumulators were measured (AMD EPYC Zen 3, 1 and 2 threads, alternated with the version
#: before): weight and bias gradients 1.3-2.1x as fast on conv2d over 1-8 input channels with
#: 16-64 outputs (3x3 and 5x5, strides 1 and 2, planes of 10x10 to 64x64), 1.7-2.2x on the
#: grouped conv1d of 8 channels per group, 1.2-1.5x on conv1d over reductions C_in/groups *
#: taps of 40-160 on rows of 200-16,000 (raw-waveform front-ends). Over 120-160 pairs on
#: rows of 20-104 outputs it ran 0.8-1.2x (a pointwise 128 -> 128 layer 0.96-1.03x, 64 ->
#: 64 with 2 taps 0.80-0.91x); from larger reductions 0.75-1.55x (0.81x textcnn's 900, 1.55x
#: a conv2d over 32 channels). 'auto' takes it up to VECTOR_WEIGHT_MAX_PAIRS pairs, on
#: planes of fewer than VECTOR_WEIGHT_MIN_PIXELS output pixels up to
#: VECTOR_WEIGHT_SMALL_PAIRS; 'direct' takes it on any.
VECTOR_WEIGHT = _conv.fma_vectors() and not WIDE_VECTORS
VECTOR_WEIGHT_MAX_PAIRS = 160
VECTOR_WEIGHT_SMALL_PAIRS = 96
VECTOR_WEIGHT_MIN_PIXELS = 256


def choose_algorithm(in_channels, out_channels, kernel_size, groups=1, stride=1,
                     length=None, dtype=np.float32):
    """The algorithm ``algorithm='auto'`` picks for the forward: ``'gemm'``, ``'direct'``,
    ``'fft'`` or ``'winograd'``.

    The cost model, calibrated by timing the three paths on an AMD EPYC core (2 cores, AVX-512):

    * ``'gemm'`` unrolls a block of outputs (im2col, ``C_in/groups * prod(kernel_size)`` rows)
      and multiplies it by the weight with BLAS. The unroll costs about ``1 / (2 * C_out/groups)``
      of the arithmetic and the product runs near the machine's peak when its inner dimensions
      are reasonably large: it wins for channel-heavy layers.
    * ``'direct'`` streams every tap over each output row (conv2d with unit strides: over
      zero-padded copies of the input planes, eight output planes and the taps of all input
      channels of a 128 KiB chunk in one pass) with vector instructions and no unroll. It wins
      when the reduction ``C_in/groups * prod(kernel_size)`` is shorter than 16 (few-channel
      layers) or each group has few output channels (depthwise and small groups, where the
      matrix product degenerates into vector updates): fewer than 8 for conv1d, 16 for
      strided conv2d (with AVX-512 only with strides of 9 or more; up to 8 the forward runs
      over the strides' phases up to the unit-stride limits below,
      ``WIDE_STRIDED_DIRECT_MAX_STRIDE``, its backward unrolled from 8 or 16 outputs; on
      CPUs without AVX-512, strided layers take 'gemm' from 8 outputs
      over any reduction, ``NARROW_STRIDED_MIN_OG``, where the direct path's strided loops
      ran tap by tap 1.1-7x slower than the unroll or the packed tiles; their backward, over
      phases since, from 12); for conv2d with unit strides and kernels of 2 or more rows, up to 128
      (measured on 3x3 kernels, 8 to 128 input channels, planes of 5x13 to 40x104, 32 to
      128 outputs: forward 0.9-2.1x and input gradient 0.9-1.8x the unroll's speed, 1.2x and
      1.3x in the median; at 256 outputs about even, 0.8-1.15x); and for conv1d with unit
      stride and 2 or more taps (over zero-padded rows, eight outputs per load of the input),
      up to 512 on rows of up to ROW_DIRECT_MAX_LENGTH (4,096) outputs (measured on 8-512
      input and 8-512 output channels, 3-5 taps, lengths 60 to 2,000: float32 forward
      0.95-1.3x and input gradient 0.9-1.25x the unroll's speed, float64 1.15-1.45x; even at
      16,000, 1.8-2.5x slower from 32,000, where eight output rows no longer stay in cache).
      These two limits, 128 and 512, hold where the direct loops run on 64-byte vectors
      (AVX-512: ``WIDE_VECTORS``). With narrower ones they hold 8 (float32) or 4 (float64)
      outputs per vector in half as many registers, and the unroll wins from fewer outputs:
      measured with AVX2 on an AMD EPYC (Zen 3) core (1 thread, 16 samples; 3x3 kernels over
      4-64 input channels and 20x52 or 32x32 planes; conv1d over 8-128 input channels, 3 or 5
      taps, 500 steps), conv2d runs direct up to 64 outputs per group in float32 and 32 in
      float64, conv1d up to 32 and 24 (``NARROW_PLANE_DIRECT_MAX_OG``,
      ``NARROW_ROW_DIRECT_MAX_OG``). There, in float32, the unroll's forward took 0.75-0.94x
      the direct pass's time on conv2d with 128 outputs and 0.74-0.93x on conv1d with 64; in
      float64 0.68-0.87x on conv2d from 64 outputs and 0.69-0.95x on conv1d from 48. In
      float32 the direct forward took 0.5-1.0x the unroll's time with up to 32 outputs
      (conv2d) or 24 (conv1d). At the limits themselves the two passes (forward and input
      gradient) ran within 0.73-1.3x of each other, neither ahead across the shapes (conv2d
      with 64 outputs: the unroll ahead over 16 and 64 input channels, the direct pass over
      32 with 32 samples, even on 2 threads).
      On CPUs with AVX2+FMA and without AVX-512 (``PACKED_GEMM``), the gemm path's forward
      runs packed tiles that read the input in place (no unroll, no BLAS; with strides over
      a reduction of up to ``PACKED_STRIDED_MAX_REDUCTION`` and kernels of 2+ columns, where
      they ran 1.0-2.3x as fast as the unroll in float32), faster than the direct forward
      from 16 outputs per group (1.1-1.8x, measured there on 16-256 input channels: conv1d
      rows of 500, 3x3 kernels over 32x40 and 64x64 planes; 0.83-1.2x at 8), so there
      conv1d and conv2d with unit strides take 'gemm' from 16 outputs (``PACKED_MIN_OG``),
      but for float64 rows longer than ``PACKED_F64_MAX_ROW``, which unroll and keep the
      limits above; conv1d on such CPUs takes them from 16 outputs over a reduction shorter
      than 16 too (1-5 input channels, 3-7 taps, 16-128 outputs, rows of 500 or 1,000:
      1.1-2.2x the direct forward's speed in float32, 1.05-1.8x in float64 on rows up to
      ``PACKED_F64_MAX_ROW``), and so does conv2d with unit strides and kernels of 2+ rows
      (3x3 kernels over one channel, 16-128 outputs, planes of 28x28 to 80x200: 1.02-1.35x
      in float32, 1.17-1.7x in float64). The backward keeps the rules without the packed
      tiles (they stand in for its unrolled input gradient).
      With ``'auto'``, the backward pass of such a conv2d still unrolls where that is
      faster, and so does the weight gradient of such a conv1d with 8+ outputs per group
      (its direct pass runs row by row, 2.3-24x slower there): see ``_backward_algorithms``.
    * ``'winograd'`` (float64 only) runs Winograd's minimal filtering along the rows
      (``pyconv1d/_winograd.py``): tiles of ``9 - KW`` outputs, whose eight transformed
      points are eight BLAS products over ``C_in*KH`` pairs (input channel, kernel row),
      where the unroll does ``(9 - KW) * KW``: 2.25x fewer multiply-adds with 3 taps, 2.5x
      with 4 or 5. ``'auto'`` takes it for float64 layers it would run by ``'gemm'`` with a
      unit column stride, no groups, 2-7 kernel columns, at least
      ``WINOGRAD_MIN_CHANNELS`` (64) rows and reduction in the pass's products and 8,192 as
      their product (the forward and the weight gradient: ``C_out`` over ``C_in*KH``; the
      input gradient, with unit strides: ``C_in`` over ``C_out*KH``; the weight gradient
      from 3 columns). Measured with AVX2 on an AMD EPYC (Zen 3) core against what
      ``'auto'`` ran before (the packed tiles and the unroll): 1.2-1.7x on the benchmark's
      float64 layers of 80-300 channels (forward, input and weight gradients, 1 and 2
      threads), 1.1-1.6x on 3x3 kernels from 96 pairs over 128 outputs, 0.84-1.16x at 64 x
      64 (and 64 outputs over 96 pairs), 0.9-1.1x from 48 channels and slower below
      (0.4-0.9x with 8-32), where the transforms and gathers cost as much as the products
      they save. Its transforms round (results within about 1e-15 of the
      direct sums' scale, not exact on integer data). float32 never takes it: tried there,
      its error came out 2-3x the unroll's and it ran 0.7-1.4x as fast as the float32
      packed tiles. With AVX-512 (``WIDE_VECTORS``), where the direct rows run dense
      float64 conv1d near the dgemm rate, 'auto' takes it for the forward and the input
      gradient only with kernels of one row and 4 or 5 columns (2.5x fewer multiply-adds),
      and for the weight gradient from 3 columns, from 32 rows and reduction
      (``WIDE_WINOGRAD_KW`` says more; measured on an Intel Xeon, Sapphire Rapids: the
      weight gradient 1.05-1.6x, forward and input gradient with 4-5 taps 1.0-1.36x).
      ``choose_algorithm`` names it for the forward.
    * ``'fft'`` costs ``O(L log L)`` per channel for the transforms plus one complex product per
      channel pair and frequency, independent of the kernel length; with stride 1 it wins from
      64 taps when channels mix (``C_in/groups * C_out/groups >= 16``) and from 256 taps
      otherwise. With a stride it would compute every output only to drop most of them, so it
      is never chosen then.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or tuple of int
    groups : int
    stride : int or tuple of int
    length : int, optional
        A conv1d's output length (rows longer than ``ROW_DIRECT_MAX_LENGTH`` keep the
        unroll); ``'auto'`` passes it. Not given: a short row.
    dtype : {numpy.float32, numpy.float64} or their names, default numpy.float32
        The data's type, which moves the limits on CPUs without AVX-512; ``'auto'`` passes it.

    Returns
    -------
    str

    Examples
    --------
    >>> from pyconv1d.functional import choose_algorithm
    >>> choose_algorithm(32, 8, 3), choose_algorithm(256, 256, 1)
    ('direct', 'gemm')
    >>> choose_algorithm(64, 64, 127), choose_algorithm(1, 64, 400, stride=160)
    ('fft', 'gemm')
    >>> choose_algorithm(1, 8, 3), choose_algorithm(1, 8, (3, 3))
    ('direct', 'direct')
    >>> choose_algorithm(64, 256, (3, 3)), choose_algorithm(8, 32, (3, 3), stride=16)
    ('gemm', 'gemm')
    >>> choose_algorithm(256, 256, 5, dtype='float64')
    'winograd'
    """
    in_channels = _checks.check_int(in_channels, "in_channels", 1)
    out_channels = _checks.check_int(out_channels, "out_channels", 1)
    groups = _checks.check_int(groups, "groups", 1)
    for value, name in ((in_channels, "in_channels"), (out_channels, "out_channels")):
        if value % groups:
            raise ValueError(f"groups={groups} must divide {name}, got {value}")
    kernel_size = _checks.from_array(kernel_size)
    nd = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 1
    if nd not in (1, 2):
        raise ValueError(f"kernel_size must be an int or 1-2 ints, got {kernel_size!r}")
    kernel_size = _checks.int_tuple(kernel_size, "kernel_size", nd, 1)
    stride = _checks.int_tuple(stride, "stride", nd, 1)
    dtype = _checks.float_dtype(dtype, "dtype")
    if length is not None:
        length = _checks.check_int(length, "length", 0)
    cg, og = in_channels // groups, out_channels // groups
    algorithm = _choose(cg, og, kernel_size, stride, length, dtype)
    kh, kw = (1,) * (2 - nd) + kernel_size
    if (dtype == np.float64 and groups == 1 and stride[-1] == 1
            and _winograd.MIN_KW <= kw <= _winograd.MAX_KW
            and _winograd_rule(og, cg * kh, kh, kw, algorithm)):
        return "winograd"
    return algorithm


def _winograd_rule(rows, reduction, kh, kw, base, weight=False):
    """'auto''s rule for Winograd on a float64 pass it can run: ``rows`` over ``reduction``
    in its products, the kernel's ``kh`` rows and ``kw`` columns, ``base`` the algorithm
    'auto' picks otherwise for the layer's forward (the backward's 'fft' is the forward's);
    ``weight``: the weight gradient's rule (see WINOGRAD_MIN_CHANNELS, WIDE_WINOGRAD_KW)."""
    least, product = min(rows, reduction), rows * reduction
    if not WIDE_VECTORS:
        return (base == "gemm" and (not weight or kw >= 3) and least >= WINOGRAD_MIN_CHANNELS
                and product >= WINOGRAD_MIN_PRODUCT)
    if base == "fft" or least < WIDE_WINOGRAD_MIN_CHANNELS:
        return False
    if weight:
        return kw >= 3 and product >= WIDE_WINOGRAD_MIN_PRODUCT_WEIGHT
    return kh == 1 and kw in WIDE_WINOGRAD_KW and product >= WIDE_WINOGRAD_MIN_PRODUCT


def _choose(cg, og, kernel_size, stride, length, dtype, packed=True, backward=False):
    """choose_algorithm's rule on checked arguments: input and output channels per group,
    kernel_size and stride as tuples of 1 or 2 ints, length an int or None, dtype a numpy
    dtype. 'auto' calls it for every convolution, whose arguments are checked already.
    ``packed`` False: the rule as if the packed path did not exist (the backward's);
    ``backward``: the backward's limit for strided layers (NARROW_STRIDED_BWD_MIN_OG)."""
    taps = math.prod(kernel_size)
    unit = all(s == 1 for s in stride)
    if unit:
        if taps >= FFT_MIN_TAPS_FEW_CHANNELS or (taps >= FFT_MIN_TAPS and og * cg >= 16):
            return "fft"
    # the direct 2-D path runs whole kernels over padded planes, which holds out longer
    two_d = len(kernel_size) == 2
    packed = packed and PACKED_GEMM
    deep = cg * taps >= 16
    if two_d and unit and kernel_size[0] > 1:
        if packed:
            # the tiles beat the direct planes over a short reduction too (one channel)
            min_og, deep = PACKED_MIN_OG, True
        else:
            min_og = 1 + (PLANE_DIRECT_MAX_OG if WIDE_VECTORS
                          else NARROW_PLANE_DIRECT_MAX_OG[dtype.name])
    elif not two_d and unit and taps >= 2 and (length is None
                                                or length <= ROW_DIRECT_MAX_LENGTH):
        if packed and not _long_f64_row(dtype, length):
            # the tiles beat the direct rows over short reductions too (few channels)
            min_og, deep = PACKED_MIN_OG, True
        else:
            min_og = 1 + (ROW_DIRECT_MAX_OG if WIDE_VECTORS
                          else NARROW_ROW_DIRECT_MAX_OG[dtype.name])
    elif not unit and not WIDE_VECTORS:
        min_og = NARROW_STRIDED_BWD_MIN_OG if backward else NARROW_STRIDED_MIN_OG
        deep = True
    elif not unit and not backward and max(stride) <= WIDE_STRIDED_DIRECT_MAX_STRIDE:
        min_og = 1 + (PLANE_DIRECT_MAX_OG if two_d else ROW_DIRECT_MAX_OG)
    else:
        min_og = 16 if two_d else 8
    return "gemm" if og >= min_og and deep else "direct"


def _long_f64_row(dtype, length):
    """Whether float64 rows of ``length`` outputs are too long for the packed path."""
    return dtype == np.float64 and length is not None and length > PACKED_F64_MAX_ROW


def _resolve(args, algorithm, packed=True, backward=False):
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm == "auto":
        rule = (args.x.shape[1] // args.groups, args.w.shape[0] // args.groups,
                args.w.shape[2:], args.stride,
                args.out_shape[-1] if len(args.stride) == 1 else None, args.x.dtype)
        algorithm = _choose(*rule, packed, backward)
        if algorithm == "gemm" and packed and PACKED_GEMM and not _packs(args):
            algorithm = _choose(*rule, False)      # the unroll runs: its own limits
    return algorithm


def _packs(args, grad_input=False):
    """Whether the packed path runs the gemm forward (or input gradient: unit strides only)
    of ``args``."""
    if grad_input and any(s != 1 for s in args.stride):
        return False
    row = (1,) if len(args.stride) == 1 else ()      # a conv1d as a conv2d of one row
    w_shape = args.w.shape[:2] + row + args.w.shape[2:]
    if grad_input:
        w_shape = _swapped(w_shape, args.groups)
        y_shape = args.x.shape[:2] + row + args.x.shape[2:]
    else:
        y_shape = args.out_shape[:2] + row + args.out_shape[2:]
    return _packed_need(w_shape, y_shape, row + args.stride, row + args.dilation,
                        args.groups, args.x.dtype) is not None


def _scratch_bytes(args, algorithm, backward=False):
    """Bytes of the largest buffers ``algorithm`` allocates besides the result, in the
    forward pass or (``backward``) the backward: the gemm path's phases of a strided input
    row (per thread: about the stride over the row's length times the group's input, when
    the stride is longer than the row); the fft path's padded input, its stride-1 output and
    the weight's spectra (three arrays of them at the peak: the spectra, their conjugate or
    swapped copy and the product's; at the overlap-save blocks' length for a long 1-D
    forward); the direct path's padded planes, as the kernels size them per thread. Python
    ints: exact however large."""
    itemsize = args.x.dtype.itemsize
    if algorithm == "gemm":
        sw = args.stride[-1]
        if sw == 1:
            return 0
        rows = math.prod(args.x.shape[2:-1])
        width = args.x.shape[-1]
        phases = args.x.shape[1] // args.groups * rows * sw * -(-width // sw)
        return phases * args.num_threads * itemsize
    if algorithm == "fft":   # in float64 whatever the dtype, 16 bytes with the spectra
        padded = [n + lo + hi for n, (lo, hi) in zip(args.x.shape[2:], args.pads)]
        spans = [d * (k - 1) for d, k in zip(args.dilation, args.w.shape[2:])]
        full = [p - e for p, e in zip(padded, spans)]
        if not backward and len(padded) == 1 and _fft.blocked(full[0], spans[0] + 1):
            bins = _fft.block_length(spans[0] + 1) // 2 + 1
        else:
            bins = math.prod(padded[:-1]) * (padded[-1] // 2 + 1)
        spectra = 3 * args.w.shape[0] * args.w.shape[1] * bins
        return (args.x.shape[0] * (args.x.shape[1] * math.prod(padded)
                                   + args.w.shape[0] * math.prod(full)) + spectra) * 16
    if algorithm == "direct":
        # beyond 2**60 bytes the kernels' 64-bit sizes could wrap, and such a call could not
        # run anyway
        bound = _direct_bound(args)
        if bound > 2 ** 60:
            return bound * args.num_threads
        x, w, y_shape = _shapes(args)
        geometry = (x.shape, w.shape, y_shape, _geometry(args)[:-1], itemsize)
        if not backward:
            return _conv.forward_scratch(*geometry, False) * args.num_threads * itemsize
        one_pass, partials = _conv.grad_input_weight_scratch(*geometry)
        blocked, blocked_partials = _conv.depthwise_backward_scratch(*geometry)
        vectors, vector_partials = _conv.grad_weight_vec_scratch(*geometry)
        per_thread = max(_conv.grad_input_scratch(*geometry, False)[0],
                         _conv.grad_weight_scratch(*geometry, False)[0], one_pass, blocked,
                         vectors)
        return (per_thread * args.num_threads
                + max(partials, blocked_partials, vector_partials)) * itemsize
    return 0


def _direct_bound(args):
    """An upper bound, in Python ints, of the bytes a thread of the direct path pads and
    filters into: a padded plane (each axis padded and spanned by the kernel, the last also
    rounded up to whole vectors, plus SLACK and roundings) times the planes a thread holds (a
    group's inputs or outputs, whichever is more, a block of PLANE_BLOCK, a tile of four and
    the rest). The kernels' own figure (_scratch_bytes) needs size queries; most calls are
    far below the limits with this bound alone."""
    planes = max(args.x.shape[1], args.w.shape[0]) // args.groups + PLANE_BLOCK + 6
    return (args.spanned_plane + 64) * planes * args.x.dtype.itemsize


def _affordable(args, requested, algorithm, backward=False, decided=None):
    """``algorithm``, or another where it was picked by 'auto' and its scratch would be far
    larger than the data (a stride, padding or dilation far beyond the input: the gemm
    path's phases of a stride longer than the row, the direct path's padded planes) or not
    fit this machine's memory at all: 'direct' instead of 'gemm' or 'fft', 'gemm' instead
    of 'direct' (itself checked when it replaces 'fft'). Asked for by name, a call whose
    scratch would not fit memory is a ValueError. ``decided``: a dict that keeps the answer
    for each algorithm, for the other passes of one call."""
    if decided is None:
        decided = {}
    if algorithm not in decided:
        decided[algorithm] = _decide(args, requested, algorithm, backward, decided)
    return decided[algorithm]


def _decide(args, requested, algorithm, backward, decided):
    """_affordable's answer for one algorithm."""
    if algorithm == "direct":
        # without size queries where even the bound (and the one-pass backward's partial
        # sums) is far below every limit: most calls
        bound = _direct_bound(args)
        # (the one pass's partial sums, with the bias's; the depthwise blocks' round the
        # channels up to 8; the vectors of output channels' at most double the outputs,
        # the bias's plane sums after them)
        partials = (args.x.shape[0] * (2 * math.prod(args.w.shape[1:]) + 1)
                    * (args.w.shape[0] + 7) if backward else 0)
        if bound <= SCRATCH_SLACK_BYTES and \
                (bound * args.num_threads + partials * args.x.dtype.itemsize
                 <= _checks.memory_limit()):
            return algorithm
    need = _scratch_bytes(args, algorithm, backward)
    other = "gemm" if algorithm == "direct" else "direct"
    if requested == "auto" and algorithm != "fft":
        # each thread's scratch against what it reads: one sample's input of a group
        group_input = math.prod(args.x.shape[1:]) // args.groups * args.x.dtype.itemsize
        per_thread = need // args.num_threads
        if per_thread > max(SCRATCH_SLACK_BYTES, SCRATCH_SLACK_FACTOR * group_input):
            return _instead(args, algorithm, need, other, backward)
    if requested == "auto" and algorithm == "fft":
        # the transforms' buffers against the whole input: a padding and dilation far past
        # the input (a few outputs of a long, sparse kernel) would make them grow without
        # bound while the direct path reads the input in place
        data = (math.prod(args.x.shape) + math.prod(args.w.shape)) * args.x.dtype.itemsize
        if need > max(SCRATCH_SLACK_BYTES, SCRATCH_SLACK_FACTOR * data):
            return _affordable(args, requested, other, backward, decided)
    if need <= _checks.memory_limit():
        return algorithm
    if requested == "auto":
        return (_instead(args, algorithm, need, other, backward) if algorithm != "fft"
                else _affordable(args, requested, other, backward, decided))
    _checks.check_fits(need, f"algorithm={algorithm!r}", _scratch_detail(args)
                       + f"; use algorithm='{other}'"
                       + (" or fewer threads" if algorithm != "fft" else ""))


def _scratch_detail(args):
    return (f" (scratch for input shape {args.x.shape}, stride {args.stride} and padding "
            f"{args.pads})")


def _instead(args, algorithm, need, other, backward):
    """'auto''s replacement for ``algorithm`` (needing ``need`` bytes of scratch, more than
    its slack): ``other`` where its own scratch fits memory, else ``algorithm`` where that
    fits, else a ValueError naming both (it allocated the other's 20 TiB: a MemoryError
    from numpy, for a stride of 2**40 past a padding of 2**38)."""
    other_need = _scratch_bytes(args, other, backward)
    if other_need <= _checks.memory_limit():
        return other
    if need <= _checks.memory_limit():
        return algorithm
    _checks.check_fits(min(need, other_need), "algorithm='auto'",
                       _scratch_detail(args) + f": '{algorithm}' {need / 2**30:.1f} GiB, "
                       f"'{other}' {other_need / 2**30:.1f} GiB")


def _fft_fallback(args, requested, algorithm, *arrays):
    """``algorithm``, or 'direct' instead of 'fft' for an empty batch, and where 'auto' chose
    'fft' and ``arrays`` hold a NaN or an infinity: a transform spreads a non-finite value
    over all its outputs, where the other paths keep it to the outputs whose windows hold
    it (asked for by name, 'fft' does spread it, as scipy.signal.fftconvolve does)."""
    if algorithm != "fft":
        return algorithm
    if args.x.shape[0] == 0:
        return "direct"
    if requested == "auto" and not all(np.isfinite(a).all() for a in arrays):
        return "direct"
    return algorithm


def _backward_algorithms(args, requested, resolved):
    """The algorithms of the input and the weight gradient: ``resolved`` (the call's), except
    'direct' for the input gradient where 'auto' resolved 'gemm' and the packed tiles would
    run a third or more of their rows empty (see the code), and 'gemm' where
    ``algorithm='auto'`` picked the direct path for a layer whose channels mix and the
    unrolled pass is measured faster: the weight gradient of a conv1d with 8+
    outputs per group and a reduction of 16+ (its direct pass runs row by row), the input
    gradient over 16+ input channels per group with unit strides where the packed tiles run
    (``PACKED_GEMM``), and for conv2d (here, on 3x3 kernels, 1 thread, against OpenBLAS's own
    kernels for the CPU):

    * the input gradient over fewer than PLANE_BLOCK input channels per group (whose direct
      pass runs four rows at a time on 3x3 kernels, not eight planes) on planes below
      DIRECT_WEIGHT_MIN_PIXELS from 16 outputs per group over 1-2 input channels or from 32
      over 3-7 (1.1-2x faster there), and on larger planes, with AVX-512, only in float32
      from 64 outputs over 4-7 channels on planes below 4 * DIRECT_WEIGHT_MIN_PIXELS:
      measured on an Intel Xeon (Sapphire Rapids; 16-32 samples, 3x3 kernels, 1 and 2
      threads), the whole backward ran 1.0-1.45x as fast with the direct input gradient in
      float64 over 1-7 channels and 32-128 outputs on planes of 20x30 to 64x64, and in
      float32 over 3 channels, 1.2-1.3x with 64-128 outputs, while over 4 channels and 64
      outputs the unroll ran 1.27-1.39x as fast on 20x30 planes, 0.94-1.05x on 32x32 and
      32x40 (an AMD EPYC core with AVX-512 and older direct kernels had measured the unroll
      1.0-1.45x as fast from 32 outputs over 2-7 channels in float64 and from 64 over 3-7 in
      float32, the rule until then); on CPUs without AVX-512 (where the direct forward of
      such layers runs up to 64 outputs in float32 and 32 in float64) only from 64 outputs
      over 4-7 channels: measured with AVX2 (AMD EPYC Zen
      3, 32 samples, planes of 32x40, 64x64 and 40x101, 1 and 2 threads), the direct
      one-pass backward ran 0.99-1.27x as fast as the unrolled one over 3 channels and 64
      outputs in float32, and 1.04-1.5x as fast as the unrolled input gradient beside the
      direct weight gradient over 2-4 channels and 32 outputs in float64, while over 4
      channels and 64 outputs in float32 the unroll took 0.79-1.04x the direct pass's time;
    * the weight gradient with 8 or more outputs per group, unless its direct pass is
      faster. Where the input gradient runs direct and the kernels' one pass applies (fewer
      than PLANE_BLOCK input channels and 16+ samples times groups), that pass computes both
      (grad_input_weight: 1.0-1.9x as fast as the direct
      input gradient plus the unrolled weight gradient, on 1-4 input channels and 32-64
      outputs); it pays in float32 from DIRECT_WEIGHT_MIN_PIXELS output pixels with up to
      32 outputs and from twice as many with more, in float64 from half as many. Otherwise
      the direct weight gradient correlates tiles of 4 grad_output planes with 4 taps of a
      padded input plane and sums the bias on the way. Measured on 4-64 input channels,
      8-128 outputs and planes of 5x13 to 40x104, it wins in float32 from twice
      DIRECT_WEIGHT_MIN_PIXELS with up to 16 outputs (0.94-2.3x the unroll's speed, 1.14x in
      the median; with 32 outputs 0.86x, with 64 0.73x in the median), and in float64 from
      DIRECT_WEIGHT_MIN_PIXELS with up to 32 outputs (0.85-2.1x, median 1.22x) or from half
      of it with up to 16 (0.7-2x, median 1.15x; with 64 outputs even, 1.0x)."""
    if requested != "auto":
        return resolved, resolved
    cg = args.x.shape[1] // args.groups
    og = args.w.shape[0] // args.groups
    if resolved != "direct":
        # the tiles' filters in the input gradient are the input channels, 6 to a tile:
        # where a third of their rows or more would be empty (1-4, 7 or 8 channels per
        # group), the direct input gradient runs instead (measured with AVX2, the whole
        # backward by 'auto', 1 and 2 threads: 1.08-1.35x as fast over 3 and 8 channels with
        # 64-128 outputs, conv1d and 3x3 conv2d; over 6 and 12, which fill their tiles,
        # 0.75-1.13x, and even over 10)
        empty = (resolved == "gemm" and PACKED_GEMM and 2 * _tile_rows(cg) >= 3 * cg
                 and _packs(args, True))
        return ("direct" if empty else resolved), resolved
    if not WIDE_VECTORS and any(s != 1 for s in args.stride):
        # strided layers: both gradients run over phases, measured against the unroll as a
        # pair (NARROW_STRIDED_MIN_OG); the rules below were measured with unit strides
        return resolved, resolved
    # where the packed tiles run (PACKED_GEMM), they take the input gradient over 16+ input
    # channels per group (the tiles' filters) from the direct path: measured with AVX2 (1
    # thread, 16 samples, 16-64 outputs; conv1d rows of 500, 3x3 kernels over 32x40 planes)
    # 1.15-1.7x as fast, against 1.0-1.13x over 8 channels
    packed_input = (PACKED_GEMM and cg >= PACKED_MIN_OG
                    and og * math.prod(args.w.shape[2:]) >= 16 and _packs(args, True))
    if len(args.stride) == 1:
        # a conv1d with 8+ outputs and a reduction of 16+ is direct only for its padded rows
        # (choose_algorithm); its weight gradient unrolls
        dense = og >= 8 and cg * args.w.shape[2] >= 16
        return "gemm" if packed_input else resolved, "gemm" if dense else resolved
    # whether the kernels' one pass (grad_input_weight) applies, should both gradients run
    # direct: its scratch query answers 0 partial sums where it does not
    x, w, y_shape = _shapes(args)
    one_pass = _conv.grad_input_weight_scratch(x.shape, w.shape, y_shape,
                                               _geometry(args)[:-1], x.dtype.itemsize)[1] > 0
    f64 = args.x.dtype == np.float64
    pixels = math.prod(args.out_shape[2:])
    if cg >= PLANE_BLOCK:
        unroll_input = packed_input
    elif pixels < DIRECT_WEIGHT_MIN_PIXELS:
        unroll_input = og >= (16 if cg <= 2 else 32)
    elif not WIDE_VECTORS:
        unroll_input = cg >= NARROW_UNROLL_INPUT_MIN_CG and og >= 64
    else:
        unroll_input = (not f64 and cg >= 4 and og >= 64
                        and pixels < 4 * DIRECT_WEIGHT_MIN_PIXELS)
    if one_pass and not unroll_input:              # with the input gradient
        if f64:
            direct_weight = pixels >= DIRECT_WEIGHT_MIN_PIXELS // 2
        else:
            direct_weight = (pixels >= 2 * DIRECT_WEIGHT_MIN_PIXELS
                             or (pixels >= DIRECT_WEIGHT_MIN_PIXELS and og <= 32))
    elif f64:
        direct_weight = ((pixels >= DIRECT_WEIGHT_MIN_PIXELS and og <= 32)
                         or (pixels >= DIRECT_WEIGHT_MIN_PIXELS // 2 and og <= 16))
    else:
        direct_weight = pixels >= 2 * DIRECT_WEIGHT_MIN_PIXELS and og <= 16
    return ("gemm" if unroll_input else resolved,
            "gemm" if og >= 8 and not direct_weight else resolved)


_scratch_cache = threading.local()


def _scratch(dtype, key, shape):
    """A reusable buffer of ``shape`` (grown on demand, one per thread, dtype and key); one
    of more than SCRATCH_KEEP_BYTES is made for the call and not kept."""
    size = math.prod(shape)
    if size > SCRATCH_KEEP_BYTES // 8 and size * np.dtype(dtype).itemsize > SCRATCH_KEEP_BYTES:
        # (only such a buffer can pass memory) per-thread rows, key "cols", for num_threads
        # past what memory holds: a ValueError naming them, not numpy's MemoryError
        _checks.check_fits(size * np.dtype(dtype).itemsize, f"the kernels' scratch {shape}",
                           f" (a row for each of num_threads={shape[0]}: use fewer threads)"
                           if key == "cols" else "")
        return np.empty(shape, dtype=dtype)
    name = (np.dtype(dtype).char, key)
    store = getattr(_scratch_cache, "buffers", None)
    if store is None:
        store = _scratch_cache.buffers = {}
    buf = store.get(name)
    if buf is None or buf.size < size:
        buf = store[name] = np.empty(max(size, 1), dtype=dtype)
    return buf[:max(size, 1)].reshape(shape if size else (1,) * len(shape))


#: _scratch(key, shape) for the float64-only Winograd path
_float64_scratch = functools.partial(_scratch, np.float64)


def _geometry(args):
    """The kernels' geometry arguments: strides, leading pads, dilations (as 2-D), groups,
    threads."""
    pads = tuple(p[0] for p in args.pads)
    if len(args.stride) == 1:
        return (1,) + args.stride + (0,) + pads + (1,) + args.dilation + \
            (args.groups, args.num_threads)
    return args.stride + pads + args.dilation + (args.groups, args.num_threads)


def _shapes(args):
    nd = len(args.stride)
    x = _as_2d(args.x, nd)
    w = _as_2d(args.w, nd)
    y_shape = args.out_shape if nd == 2 else args.out_shape[:2] + (1,) + args.out_shape[2:]
    return x, w, y_shape


#: Below this many multiply-adds a call runs on one thread: starting a team costs more than it
#: saves (the result is the same either way).
MIN_PARALLEL_WORK = 1 << 17


def _work_threads(args):
    """``args`` with num_threads lowered to 1 for calls too small to split."""
    macs = math.prod(args.out_shape) * math.prod(args.w.shape[1:])
    if args.num_threads > 1 and macs < MIN_PARALLEL_WORK:
        return args._replace(num_threads=1)
    return args


def _winograd_takes(args, requested, grad_input=False, weight=False):
    """Whether the Winograd path computes this pass (the forward; ``grad_input``; the
    weight gradient, ``weight``): asked for by name where it runs (elsewhere 'winograd' is
    'gemm'), or by 'auto' on the float64 layers where :func:`_winograd_rule` takes it over
    the algorithm 'auto' picks for the layer's forward."""
    if requested not in ("auto", "winograd") or args.x.dtype != np.float64:
        return False
    x, w, y_shape = _shapes(args)
    sh, sw, _, _, dh, dw = _geometry(args)[:6]
    if not _winograd.runs(x.shape, w.shape, y_shape, (sh, sw), (dh, dw), args.groups,
                          x.dtype, grad_input):
        return False
    if requested == "winograd":
        return True
    c_out, c_in, kh, kw = w.shape
    rows, reduction = (c_in, c_out * kh) if grad_input else (c_out, c_in * kh)
    return _winograd_rule(rows, reduction, kh, kw, _resolve(args, "auto"), weight)


def _forward(args, algorithm):
    args = _work_threads(args)
    requested = algorithm
    if _winograd_takes(args, requested):
        x, w, y_shape = _shapes(args)
        y = np.empty(args.out_shape, dtype=x.dtype)
        bias = np.zeros(w.shape[0], x.dtype) if args.b is None else \
            np.ascontiguousarray(args.b, x.dtype)
        _winograd.forward(x, w, bias, y.reshape(y_shape), _geometry(args)[:6],
                          args.num_threads, _float64_scratch)
        return y[0] if args.unbatched else y
    if requested == "winograd":
        requested = algorithm = "gemm"
    algorithm = _affordable(args, requested, _resolve(args, requested))
    algorithm = _fft_fallback(args, requested, algorithm, args.x, args.w)
    if algorithm == "fft":
        y = _fft.forward(args)
        return y[0] if args.unbatched else y
    use_gemm = algorithm == "gemm"
    x, w, y_shape = _shapes(args)
    y = np.empty(args.out_shape, dtype=x.dtype)      # every kernel path writes the bias
    dtype = x.dtype
    bias = np.zeros(w.shape[0], dtype) if args.b is None else np.ascontiguousarray(args.b, dtype)
    geometry = _geometry(args)
    if use_gemm and (_packed(x, w, bias, y.reshape(y_shape), geometry)
                     or _windows(args, x, bias, y)):
        return y[0] if args.unbatched else y
    per_thread = _conv.forward_scratch(x.shape, w.shape, y_shape, geometry[:-1],
                                       dtype.itemsize, use_gemm)
    scratch = _scratch(dtype, "cols", (args.num_threads, per_thread))
    with _blas_guard(use_gemm):
        _conv.forward(x, w, bias, y.reshape(y_shape), *geometry, use_gemm, scratch)
    return y[0] if args.unbatched else y


def _windowed(args):
    """Whether the gemm path reads this layer's windows in place (WINDOWS_MIN_STRIDE)."""
    return (len(args.stride) == 1 and args.stride[0] >= WINDOWS_MIN_STRIDE
            and args.groups == 1 and args.dilation == (1,)
            and not any(lo or hi for lo, hi in args.pads))


def _rows(a):
    """A 4-D (N, C, 1, L) array of a conv1d as (N, C, L)."""
    return a.reshape(a.shape[0], a.shape[1], a.shape[-1])


def _windows(args, x, bias, y):
    """The gemm path's forward by _conv.forward_windows (the unrolled rows read in place),
    if it applies (``x`` 4-D as _shapes gives it): True when it ran."""
    if not _windowed(args):
        return False
    per_thread = _conv.windows_scratch(args.x.shape, args.w.shape, args.stride[0])[0]
    scratch = _scratch(x.dtype, "cols", (args.num_threads, per_thread))
    with _blas.single_threaded():
        _conv.forward_windows(_rows(x), args.w, bias, y, args.stride[0], args.num_threads,
                              scratch)
    return True


def _blas_guard(unroll):
    """_blas.single_threaded() around kernels that call BLAS (``unroll``: the gemm path's
    unrolled products); the direct and packed kernels call none, and setting and restoring
    every loaded OpenBLAS's thread count took about 12 us a call."""
    return _blas.single_threaded() if unroll else contextlib.nullcontext()


def _swapped(w_shape, groups):
    """The shape of a 4-D weight with its channels swapped in each group: the input
    gradient's weight."""
    c_out, cg = w_shape[:2]
    return (groups * cg, c_out // groups) + tuple(w_shape[2:])


def _tile_rows(n):
    """The rows of the packed tiles that n filters fill, whole tiles of PACKED_TILE_ROWS."""
    return -(-n // _conv.PACKED_TILE_ROWS) * _conv.PACKED_TILE_ROWS


@functools.lru_cache(maxsize=1024)
def _packed_layout(w_shape, y_shape, stride, dilation, groups, itemsize):
    """(scratch elements per thread, elements of a strip's padded plane, elements of it its
    tiles read at most) of the packed kernels for the 4-D weight and output shapes given:
    the kernels' blocking (_conv.packed_geom and packed_scratch) in Python ints, exact
    however large. Kept per shape: 'auto' asks it again for the pass that runs."""
    c_out, cg, kh, kw = w_shape
    h_out, w_out = y_shape[2:]
    tile = line = 64 // itemsize
    cols = max(1, min(w_out, _conv.PACKED_STRIP * 8 // itemsize))
    rows = max(1, min(h_out, _conv.PACKED_STRIP_PIXELS // cols))
    # (rows of sw phases: _conv.packed_geom)
    phase = cols + (kw - 1) * dilation[1] // stride[1]
    padded = ((rows - 1) * stride[0] + (kh - 1) * dilation[0] + 1) * stride[1] * phase
    plane = -(-padded // line)
    plane = (plane + 1 - plane % 2) * line
    need = cg * plane + tile + _tile_rows(c_out // groups) * tile + line
    return need, padded, kh * kw * rows * (cols + tile)


def _packed_need(w_shape, y_shape, stride, dilation, groups, dtype):
    """The elements of scratch one thread of the packed kernels takes (_packed_layout), or
    None where the packed path does not apply: float64 rows of more than PACKED_F64_MAX_ROW
    outputs with a one-row kernel, strides over a reduction of more than
    PACKED_STRIDED_MAX_REDUCTION or a one-column kernel with a column stride, scratch over
    PACKED_MAX_SCRATCH_BYTES or a padded strip over PACKED_MAX_PADDED_FACTOR times the
    inputs its tiles read."""
    if w_shape[2] == 1 and _long_f64_row(dtype, y_shape[3]):
        return None
    strided = tuple(stride) != (1, 1)
    if strided and (math.prod(w_shape[1:]) > PACKED_STRIDED_MAX_REDUCTION
                    or (stride[1] > 1 and w_shape[3] == 1)):
        return None
    need, padded, read = _packed_layout(tuple(w_shape), tuple(y_shape), tuple(stride),
                                        tuple(dilation), groups, dtype.itemsize)
    if padded > PACKED_MAX_PADDED_FACTOR * read or \
            need * dtype.itemsize > PACKED_MAX_SCRATCH_BYTES:
        return None
    return need


def _packed(x, w, bias, y, geometry):
    """Runs the gemm path's convolution of the 4-D arrays x and w into y by the packed
    algorithm, if it applies (PACKED_GEMM and _packed_need): True when it ran."""
    if not PACKED_GEMM:
        return False
    per_thread = _packed_need(w.shape, y.shape, geometry[:2], geometry[4:6], geometry[6],
                              x.dtype)
    if per_thread is None:
        return False
    scratch = _scratch(x.dtype, "cols", (geometry[-1], per_thread))
    _conv.forward_packed(x, w, bias, y, *geometry, scratch)
    return True


def _packed_grad_input(g, w, grad_input, geometry):
    """The gemm path's input gradient by the packed algorithm, if it applies (see _packed):
    with unit strides it is the convolution of grad_output, padded by the kernel's span less
    the forward's padding, with the kernel flipped and its channels swapped in each group."""
    sh, sw, pt, pl, dh, dw, groups, num_threads = geometry
    swapped = _swapped(w.shape, groups)
    if not PACKED_GEMM or sh != 1 or sw != 1 or \
            _packed_need(swapped, grad_input.shape, (1, 1), (dh, dw), groups,
                         g.dtype) is None:
        return False          # (before the weight is flipped for nothing)
    c_out, cg, kh, kw = w.shape
    flipped = w.reshape(groups, c_out // groups, cg, kh, kw)[..., ::-1, ::-1]
    flipped = np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(swapped)
    return _packed(g, flipped, np.zeros(swapped[0], g.dtype), grad_input,
                   (1, 1, (kh - 1) * dh - pt, (kw - 1) * dw - pl, dh, dw, groups, num_threads))


def _weight_by_vectors(args, requested, algorithm):
    """Whether the weight gradient runs over vectors of output channels (VECTOR_WEIGHT):
    asked for by 'direct', or by 'auto' up to VECTOR_WEIGHT_MAX_PAIRS pairs of an input
    channel and a tap (VECTOR_WEIGHT_SMALL_PAIRS on planes of fewer than
    VECTOR_WEIGHT_MIN_PIXELS output pixels), where the direct or the unrolled pass would run
    (``algorithm``, not 'fft'); the kernels' scratch query says where it applies at all."""
    if not VECTOR_WEIGHT or algorithm == "fft" or requested not in ("auto", "direct"):
        return False
    pairs = math.prod(args.w.shape[1:])
    small = math.prod(args.out_shape[2:]) < VECTOR_WEIGHT_MIN_PIXELS
    return requested == "direct" or pairs <= (VECTOR_WEIGHT_SMALL_PAIRS if small
                                              else VECTOR_WEIGHT_MAX_PAIRS)


def _backward(grad_output, args, mask, algorithm):
    g = _checks.grad_output_array(grad_output, args)
    want_input, want_weight, want_bias = _checks.output_mask(mask)
    args = _work_threads(args)
    wino_input = want_input and _winograd_takes(args, algorithm, grad_input=True)
    wino_weight = want_weight and _winograd_takes(args, algorithm, weight=True)
    if algorithm == "winograd":
        algorithm = "gemm"          # for the passes it does not run
    # the backward's rules were measured against the direct and unrolled paths; where the
    # packed path applies it replaces the unrolled input gradient (_packed_grad_input)
    requested, algorithm = algorithm, _resolve(args, algorithm, packed=False, backward=True)
    decided = {}
    algorithm = _affordable(args, requested, algorithm, True, decided)
    algorithm = _fft_fallback(args, requested, algorithm, g, args.x, args.w)
    gi_algorithm, gw_algorithm = (_affordable(args, requested, a, True, decided)
                                  for a in _backward_algorithms(args, requested, algorithm))
    nd = len(args.stride)
    x, w, y_shape = _shapes(args)
    g2 = g.reshape(y_shape)
    dtype = x.dtype
    geometry = _geometry(args)
    grad_input = grad_weight = None
    grad_bias = np.empty(w.shape[0], dtype=dtype) if want_bias else None
    bias_done = False
    if wino_input:
        grad_input = np.empty(args.x.shape, dtype=dtype)
        _winograd.grad_input(g2, w, _as_2d(grad_input, nd), geometry[:6], args.num_threads,
                             _float64_scratch)
        if args.unbatched:
            grad_input = grad_input[0]
        want_input = False
    if wino_weight:
        grad_weight = np.empty(args.w.shape, dtype=dtype)
        _winograd.grad_weight(g2, x, _as_2d(grad_weight, nd), geometry[:6], args.num_threads,
                              _float64_scratch)
        want_weight = False
    if algorithm == "fft" and (want_input or want_weight):
        fft_input, fft_weight = _fft.backward(g, args, want_input, want_weight)
        if want_input:
            grad_input = fft_input[0] if args.unbatched else fft_input
        if want_weight:
            grad_weight = fft_weight
        want_input = want_weight = False
    dw_input = want_input and gi_algorithm == "direct"
    dw_weight = want_weight and gw_algorithm == "direct"
    if dw_input or dw_weight:
        # depthwise layers: the gradients over blocks of channels (the bias's stays
        # grad_bias's, the same bits with or without the others)
        per_thread, n_partials = _conv.depthwise_backward_scratch(
            x.shape, w.shape, y_shape, geometry[:-1], dtype.itemsize)
        if per_thread:
            gi = np.empty(args.x.shape, dtype=dtype) if dw_input else None
            gw = np.empty(args.w.shape, dtype=dtype) if dw_weight else None
            _conv.depthwise_backward(
                g2, x, w, _as_2d(gi, nd) if dw_input else None,
                _as_2d(gw, nd) if dw_weight else None, *geometry,
                _scratch(dtype, "cols", (args.num_threads, per_thread)),
                _scratch(dtype, "partials", (n_partials if dw_weight else 1,)))
            if dw_input:
                grad_input = gi[0] if args.unbatched else gi
                want_input = False
            if dw_weight:
                grad_weight = gw
                want_weight = False
    if want_weight and _weight_by_vectors(args, requested, gw_algorithm):
        # few pairs of an input channel and a tap per output: the weight gradient (and the
        # bias's, grad_bias's bits) over vectors of output channels
        per_thread, n_partials = _conv.grad_weight_vec_scratch(x.shape, w.shape, y_shape,
                                                               geometry[:-1], dtype.itemsize)
        if per_thread:
            grad_weight = np.empty(args.w.shape, dtype=dtype)
            _conv.grad_weight_vec(g2, x, _as_2d(grad_weight, nd), *geometry,
                                  _scratch(dtype, "cols", (args.num_threads, per_thread)),
                                  _scratch(dtype, "partials", (n_partials,)), grad_bias)
            want_weight = False
            bias_done = True
    if want_input and want_weight and gi_algorithm == gw_algorithm == "direct":
        # few-channel 2-D layers: all three gradients in one pass over grad_output, with the
        # bits of the separate passes below
        per_thread, n_partials = _conv.grad_input_weight_scratch(
            x.shape, w.shape, y_shape, geometry[:-1], dtype.itemsize)
        if n_partials:
            grad_input = np.empty(args.x.shape, dtype=dtype)
            grad_weight = np.empty(args.w.shape, dtype=dtype)
            scratch = _scratch(dtype, "cols", (args.num_threads, per_thread))
            partials = _scratch(dtype, "partials", (n_partials,))
            _conv.grad_input_weight(g2, x, w, _as_2d(grad_input, nd), _as_2d(grad_weight, nd),
                                    grad_bias, *geometry, scratch, partials)
            if args.unbatched:
                grad_input = grad_input[0]
            want_input = want_weight = False
            bias_done = True
    gemm_input, gemm_weight = want_input and gi_algorithm == "gemm", \
        want_weight and gw_algorithm == "gemm"
    if (gemm_input or gemm_weight) and _windowed(args):
        # strides of 64+: the gradients read the windows in place, as the forward does
        with _blas.single_threaded():
            if gemm_input:
                grad_input = np.empty(args.x.shape, dtype=dtype)
                _conv.grad_input_windows(_rows(g2), args.w, grad_input, args.stride[0],
                                         args.num_threads)
                if args.unbatched:
                    grad_input = grad_input[0]
                want_input = False
            if gemm_weight:
                grad_weight = np.empty(args.w.shape, dtype=dtype)
                chunks = _conv.windows_scratch(args.x.shape, args.w.shape, args.stride[0])[1]
                partials = _scratch(dtype, "partials",
                                    (chunks, w.shape[0], math.prod(w.shape[1:])))
                _conv.grad_weight_windows(_rows(g2), _rows(x), grad_weight, args.stride[0],
                                          args.num_threads, partials)
                want_weight = False
    with _blas_guard((want_input and gi_algorithm == "gemm")
                     or (want_weight and gw_algorithm == "gemm")):
        if want_input:
            use_gemm = gi_algorithm == "gemm"
            grad_input = np.empty(args.x.shape, dtype=dtype)      # the kernels write it all
            if not (use_gemm and _packed_grad_input(g2, w, _as_2d(grad_input, nd), geometry)):
                per_thread, chans = _conv.grad_input_scratch(x.shape, w.shape, y_shape,
                                                             geometry[:-1], dtype.itemsize,
                                                             use_gemm)
                scratch = _scratch(dtype, "cols", (args.num_threads, per_thread))
                _conv.grad_input(g2, w, _as_2d(grad_input, nd), *geometry, use_gemm,
                                 scratch, chans)
            if args.unbatched:
                grad_input = grad_input[0]
        if want_weight:
            use_gemm = gw_algorithm == "gemm"
            grad_weight = np.empty(args.w.shape, dtype=dtype)
            per_thread, chunks = _conv.grad_weight_scratch(x.shape, w.shape, y_shape,
                                                           geometry[:-1], dtype.itemsize,
                                                           use_gemm)
            scratch = _scratch(dtype, "cols", (args.num_threads, per_thread))
            partials = _scratch(dtype, "partials",
                                (chunks, w.shape[0], math.prod(w.shape[1:])))
            # the direct 2-D path also sums the bias gradient, in the same pass
            bias_done = _conv.grad_weight(g2, x, _as_2d(grad_weight, nd), *geometry, use_gemm,
                                          scratch, partials, grad_bias)
    if want_bias and not bias_done:
        _conv.grad_bias(g2, grad_bias, args.num_threads)
    return ConvGrads(grad_input, grad_weight, grad_bias)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           num_threads=None, algorithm="auto"):
    """Batched, multichannel 1D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    ``out[n, o, t] = bias[o] + sum_{c, k} weight[o, c, k] * x[n, g*C_in/groups + c,
    t*stride + k*dilation - left]`` where ``x`` is the zero-padded input and ``g`` the group of
    output channel ``o``.

    Parameters
    ----------
    input : array_like, shape (N, C_in, L) or (C_in, L)
        float32 or float64. Any layout (sliced, Fortran-ordered, read-only) is accepted.
    weight : array_like, shape (C_out, C_in / groups, K)
        Same dtype as ``input``.
    bias : array_like, shape (C_out,), optional
    stride, dilation : int
        Positive.
    padding : int, (left, right), 'valid', 'same' or 'causal'
        ``'same'`` gives ``ceil(L / stride)`` outputs with the total padding
        ``max((L_out - 1)*stride + dilation*(K - 1) + 1 - L, 0)`` split ``total // 2`` on the
        left and the rest on the right (PyTorch for stride 1, TensorFlow for any stride).
        ``'causal'`` pads ``dilation*(K - 1)`` on the left only, so output ``t`` depends on no
        input after ``t*stride``.
    groups : int
        Divides both channel counts; ``groups == C_in`` is a depthwise convolution.
    num_threads : int, optional
        OpenMP threads; None uses OpenMP's default (``OMP_NUM_THREADS``). The result is
        bitwise the same for every value.
    algorithm : {'auto', 'direct', 'gemm', 'fft', 'winograd'}, optional
        How to compute it; ``'auto'`` follows :func:`choose_algorithm`. All agree to rounding
        on finite data (with an infinite weight or input, whether its products with the
        zero padding, NaN, reach an output depends on the algorithm: 'gemm' multiplies the
        padding, 'direct' skips it). ``'winograd'`` runs on float64, ungrouped layers with a
        unit column stride and 2-7 kernel columns (its input gradient with unit strides);
        elsewhere it is ``'gemm'``.

    Returns
    -------
    ndarray, shape (N, C_out, L_out) or (C_out, L_out)
        ``L_out = floor((L + left + right - dilation*(K - 1) - 1) / stride) + 1``; the dtype of
        ``input``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv1d
    >>> x = np.arange(6, dtype=np.float64).reshape(1, 1, 6)
    >>> w = np.array([[[1.0, 0.0, -1.0]]])
    >>> conv1d(x, w)
    array([[[-2., -2., -2., -2.]]])
    >>> conv1d(x, w, padding='causal').shape
    (1, 1, 6)
    """
    args = _checks.conv_args(input, weight, bias, stride, padding, dilation, groups,
                             num_threads, nd=1)
    return _forward(args, algorithm)


def conv1d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    output_mask=(True, True, True), num_threads=None, algorithm="auto"):
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    The input gradient is the convolution run in reverse (``grad_output`` convolved, not
    correlated, with the kernel, scattered back through the stride); the weight gradient is the
    input correlated with ``grad_output``; the bias gradient sums ``grad_output`` over the batch
    and time.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, L_out) or (C_out, L_out)
        Gradient of the loss with respect to the output of ``conv1d(input, weight, ...)``.
    input, weight, stride, padding, dilation, groups, num_threads, algorithm
        As given to :func:`conv1d`.
    output_mask : three bools, optional
        Which of (grad_input, grad_weight, grad_bias) to compute; the others are None.

    Returns
    -------
    ConvGrads
        ``(grad_input, grad_weight, grad_bias)`` with the shapes of input, weight and
        ``(C_out,)``. Bitwise the same for every ``num_threads``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv1d_backward
    >>> x = np.ones((1, 1, 5))
    >>> w = np.array([[[1.0, 2.0]]])
    >>> gi, gw, gb = conv1d_backward(np.ones((1, 1, 4)), x, w)
    >>> gi
    array([[[1., 3., 3., 3., 2.]]])
    >>> gw, gb
    (array([[[4., 4.]]]), array([4.]))
    """
    args = _checks.conv_args(input, weight, None, stride, padding, dilation, groups,
                             num_threads, nd=1)
    return _backward(grad_output, args, output_mask, algorithm)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           num_threads=None, algorithm="auto"):
    """Batched, multichannel 2D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    ``out[n, o, p, q] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * x[n, g*C_in/groups + c,
    p*sh + i*dh - top, q*sw + j*dw - left]`` on the zero-padded input ``x``.

    Parameters
    ----------
    input : array_like, shape (N, C_in, H, W) or (C_in, H, W)
        float32 or float64, any layout.
    weight : array_like, shape (C_out, C_in / groups, kH, kW)
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or (int, int)
    padding : int, (h, w), ((top, bottom), (left, right)), 'valid' or 'same'
        An ``(h, w)`` pair pads both sides of each axis alike; ``'same'`` follows the conv1d
        rule on each axis (``ceil(size / stride)`` outputs, the odd sample after).
    groups : int
    num_threads : int, optional
        OpenMP threads (None: OpenMP's default). Bitwise the same result for every value.
    algorithm : {'auto', 'direct', 'gemm', 'fft', 'winograd'}, optional
        As for :func:`conv1d`.

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((2, 1, 3, 3))
    >>> conv2d(x, w, padding='same').shape
    (1, 2, 4, 4)
    >>> conv2d(x, w)[0, 0]
    array([[45., 54.],
           [81., 90.]])
    """
    args = _checks.conv_args(input, weight, bias, stride, padding, dilation, groups,
                             num_threads, nd=2)
    return _forward(args, algorithm)


def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    output_mask=(True, True, True), num_threads=None, algorithm="auto"):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
    input, weight, stride, padding, dilation, groups, num_threads, algorithm
        As given to :func:`conv2d`.
    output_mask : three bools, optional
        Which of (grad_input, grad_weight, grad_bias) to compute; the others are None.

    Returns
    -------
    ConvGrads
        ``(grad_input, grad_weight, grad_bias)``, bitwise the same for every ``num_threads``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv2d_backward
    >>> x = np.ones((1, 1, 3, 3))
    >>> w = np.ones((1, 1, 2, 2))
    >>> gi, gw, gb = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gi[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> gb
    array([4.])
    """
    args = _checks.conv_args(input, weight, None, stride, padding, dilation, groups,
                             num_threads, nd=2)
    return _backward(grad_output, args, output_mask, algorithm)


# --------------------------------------------------------------------------------------------
# Pooling: max and average, 1D and 2D, forward and backward (kernels in src/_pool.pyx)
# --------------------------------------------------------------------------------------------

from . import _pool  # noqa: E402  (the pooling section is self-contained)

__all__ += ["max_pool1d", "max_pool1d_backward", "avg_pool1d", "avg_pool1d_backward",
            "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
            "adaptive_max_pool1d", "adaptive_max_pool1d_backward",
            "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward"]


#: Below this many elements a pooling, normalisation, embedding-gradient or optimiser call
#: runs on one thread: waking an OpenMP team costs more than the work (the result is the same
#: for every thread count).
SERIAL_BELOW = 1 << 16


def _serial_if_small(size, num_threads):
    """num_threads, or 1 for calls of fewer than SERIAL_BELOW elements."""
    return 1 if size < SERIAL_BELOW else num_threads


def _sized_threads(size, num_threads):
    """The layers' num_threads (None: OpenMP's default) resolved, 1 below SERIAL_BELOW
    elements."""
    return _serial_if_small(size, _checks.resolve_num_threads(num_threads))


def _pool_threads(args):
    return _serial_if_small(args.x.size, args.num_threads)


def _max_pool(args):
    """Run the max-pool kernel: (values, int64 indices), both of the caller's output shape."""
    rows = args.x.shape[0]
    y = np.empty((rows,) + args.plane_out, dtype=args.x.dtype)
    idx = np.empty((rows,) + args.plane_out, dtype=np.int64)
    _pool.max_forward(args.x, y, idx, *args.kernel, *args.stride, *args.padding,
                      *args.dilation, _pool_threads(args))
    return y.reshape(args.out_shape), idx.reshape(args.out_shape)


def _max_pool_backward(grad_output, args, indices):
    g = _checks.pool_grad_output(grad_output, args)
    if indices is None:
        idx = _max_pool(args)[1]
    else:
        idx = indices
    idx = _checks.pool_indices(idx, args)
    gx = np.zeros(args.x.shape, dtype=args.x.dtype)
    _pool.max_backward(g, idx, gx, _pool_threads(args))
    return gx.reshape(args.in_shape)


def _avg_geometry(args, count_include_pad, divisor_override):
    cip = _checks.check_bool(count_include_pad, "count_include_pad")
    dov = 0 if divisor_override is None else _checks.check_int(divisor_override,
                                                               "divisor_override", 1)
    if dov > 2 ** 53:
        raise ValueError(f"divisor_override must be at most 2**53, got {divisor_override!r}")
    return (*args.kernel, *args.stride, *args.padding, cip, dov, _pool_threads(args))


def _avg_pool(args, count_include_pad, divisor_override):
    geometry = _avg_geometry(args, count_include_pad, divisor_override)
    y = np.empty((args.x.shape[0],) + args.plane_out, dtype=args.x.dtype)
    _pool.avg_forward(args.x, y, *geometry)
    return y.reshape(args.out_shape)


def _avg_pool_backward(grad_output, args, count_include_pad, divisor_override):
    geometry = _avg_geometry(args, count_include_pad, divisor_override)
    g = _checks.pool_grad_output(grad_output, args)
    gx = np.zeros(args.x.shape, dtype=args.x.dtype)
    _pool.avg_backward(g, gx, *geometry)
    return gx.reshape(args.in_shape)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, num_threads=None):
    """1D max pooling over ``(N, C, L)``, as ``torch.nn.functional.max_pool1d``.

    ``out[n, c, t] = max_k x[n, c, t*stride + k*dilation - padding]`` over the taps that fall
    inside the input (the padding never wins). The first maximum of a window wins ties and a
    NaN always wins, as in PyTorch.

    Parameters
    ----------
    input : array_like, shape (N, C, L) or (C, L)
        float32 or float64, any layout.
    kernel_size : int
    stride : int, optional
        Defaults to ``kernel_size``.
    padding : int
        Implicit padding on both sides, at most ``kernel_size // 2``.
    dilation : int
    ceil_mode : bool
        Round the output length up (the last window must still start inside the input).
    return_indices : bool
        Also return the int64 position in ``[0, L)`` of every maximum; -1 (with the value
        -inf) for a window that holds no input element, which dilation makes possible.
    num_threads : int, optional
        OpenMP threads (None: OpenMP's default); the result is the same for every value.

    Returns
    -------
    ndarray, shape (N, C, L_out) or (C, L_out), or (values, indices) with ``return_indices``
        ``L_out = floor((L + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``
        (ceil with ``ceil_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import max_pool1d
    >>> x = np.array([[[1.0, 3.0, 3.0, 2.0, 5.0]]])
    >>> max_pool1d(x, 2)
    array([[[3., 3.]]])
    >>> max_pool1d(x, 2, stride=1, return_indices=True)
    (array([[[3., 3., 3., 5.]]]), array([[[1, 1, 2, 4]]]))
    """
    args = _checks.pool_args("max_pool1d", input, kernel_size, stride, padding, dilation,
                             ceil_mode, num_threads, nd=1)
    y, idx = _max_pool(args)
    return (y, idx) if _checks.check_bool(return_indices, "return_indices") else y


def max_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, num_threads=None):
    """Gradient of :func:`max_pool1d` with respect to its input.

    Each output's gradient goes to the position of its maximum (summed where windows overlap).

    Parameters
    ----------
    grad_output : array_like, shape of the output of ``max_pool1d``
    input, kernel_size, stride, padding, dilation, ceil_mode, num_threads
        As given to :func:`max_pool1d`.
    indices : array_like of ints, optional
        The indices that ``max_pool1d(..., return_indices=True)`` returned; recomputed from
        ``input`` when None.

    Returns
    -------
    ndarray, the shape of ``input``

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import max_pool1d_backward
    >>> x = np.array([[[1.0, 3.0, 3.0, 2.0, 5.0]]])
    >>> max_pool1d_backward(np.ones((1, 1, 4)), x, 2, stride=1)
    array([[[0., 2., 1., 0., 1.]]])
    """
    args = _checks.pool_args("max_pool1d", input, kernel_size, stride, padding, dilation,
                             ceil_mode, num_threads, nd=1)
    return _max_pool_backward(grad_output, args, indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, *, num_threads=None):
    """1D average pooling over ``(N, C, L)``, as ``torch.nn.functional.avg_pool1d``.

    Parameters
    ----------
    input : array_like, shape (N, C, L) or (C, L)
    kernel_size : int
    stride : int, optional
        Defaults to ``kernel_size``.
    padding : int
        Zero padding on both sides, at most ``kernel_size // 2``.
    ceil_mode : bool
    count_include_pad : bool
        Divide by the window size including the padding (PyTorch's default) or only by the
        number of input samples in the window.
    num_threads : int, optional

    Returns
    -------
    ndarray, shape (N, C, L_out) or (C, L_out)

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import avg_pool1d
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    >>> avg_pool1d(x, 2)
    array([[[1.5, 3.5]]])
    >>> avg_pool1d(x, 3, stride=1, padding=1, count_include_pad=False)
    array([[[1.5, 2. , 3. , 3.5]]])
    """
    args = _checks.pool_args("avg_pool1d", input, kernel_size, stride, padding, 1,
                             ceil_mode, num_threads, nd=1)
    return _avg_pool(args, count_include_pad, None)


def avg_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, *, num_threads=None):
    """Gradient of :func:`avg_pool1d` with respect to its input (only its shape is used).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import avg_pool1d_backward
    >>> avg_pool1d_backward(np.ones((1, 1, 2)), np.zeros((1, 1, 4)), 2)
    array([[[0.5, 0.5, 0.5, 0.5]]])
    """
    args = _checks.pool_args("avg_pool1d", input, kernel_size, stride, padding, 1,
                             ceil_mode, num_threads, nd=1)
    return _avg_pool_backward(grad_output, args, count_include_pad, None)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, num_threads=None):
    """2D max pooling over ``(N, C, H, W)``, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    input : array_like, shape (N, C, H, W) or (C, H, W)
    kernel_size, stride, padding, dilation : int or (int, int)
        ``stride`` defaults to ``kernel_size``; ``padding`` at most half the kernel per axis.
    ceil_mode, return_indices : bool
        Indices are flat positions ``h * W + w`` in each input plane (PyTorch's); -1 (with
        the value -inf) for a window that holds no input element.
    num_threads : int, optional

    Returns
    -------
    ndarray, shape (N, C, H_out, W_out) or (C, H_out, W_out); or (values, indices)

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import max_pool2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> max_pool2d(x, 2)
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    args = _checks.pool_args("max_pool2d", input, kernel_size, stride, padding, dilation,
                             ceil_mode, num_threads, nd=2)
    y, idx = _max_pool(args)
    return (y, idx) if _checks.check_bool(return_indices, "return_indices") else y


def max_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, num_threads=None):
    """Gradient of :func:`max_pool2d` with respect to its input.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import max_pool2d_backward
    >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)[0, 0]
    array([[0., 0.],
           [0., 1.]])
    """
    args = _checks.pool_args("max_pool2d", input, kernel_size, stride, padding, dilation,
                             ceil_mode, num_threads, nd=2)
    return _max_pool_backward(grad_output, args, indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, num_threads=None):
    """2D average pooling over ``(N, C, H, W)``, as ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    input : array_like, shape (N, C, H, W) or (C, H, W)
    kernel_size, stride, padding : int or (int, int)
    ceil_mode, count_include_pad : bool
    divisor_override : int, optional
        Divide every window sum by this instead.
    num_threads : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import avg_pool2d
    >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    args = _checks.pool_args("avg_pool2d", input, kernel_size, stride, padding, 1,
                             ceil_mode, num_threads, nd=2)
    return _avg_pool(args, count_include_pad, divisor_override)


def avg_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        num_threads=None):
    """Gradient of :func:`avg_pool2d` with respect to its input (only its shape is used).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import avg_pool2d_backward
    >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 2, 2)), 2)[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    args = _checks.pool_args("avg_pool2d", input, kernel_size, stride, padding, 1,
                             ceil_mode, num_threads, nd=2)
    return _avg_pool_backward(grad_output, args, count_include_pad, divisor_override)


def _adaptive_max1d(args, lengths):
    rows, O = args.x.shape[0], args.plane_out[1]
    lens = _checks.pool_lengths("adaptive_max_pool1d", lengths, args)
    y = np.empty((rows, O), dtype=args.x.dtype)
    idx = np.empty((rows, O), dtype=np.int64)
    _pool.adaptive_max1d_forward(args.x.reshape(rows, args.x.shape[-1]), lens, y, idx,
                                 _pool_threads(args))
    return y.reshape(args.out_shape), idx.reshape(args.out_shape)


def adaptive_max_pool1d(input, output_size, return_indices=False, *, lengths=None,
                        num_threads=None):
    """Adaptive 1D max pooling, as ``torch.nn.functional.adaptive_max_pool1d``, with masking.

    Output ``i`` is the maximum over ``[floor(i*n/O), ceil((i+1)*n/O))`` where ``n`` is the
    row's valid length: ``L``, or ``lengths[n]`` for padded variable-length batches, so that
    padded positions are never looked at and never win the max. ``output_size=1`` is max over
    time (Kim 2014).

    Parameters
    ----------
    input : array_like, shape (N, C, L) or (C, L)
    output_size : int
    return_indices : bool
        Also return the int64 position in ``[0, L)`` of every maximum.
    lengths : array_like of ints, shape (N,) (a scalar for unbatched input), optional
        Valid length of each sequence, in ``[1, L]``.
    num_threads : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import adaptive_max_pool1d
    >>> x = np.array([[[1.0, 4.0, 2.0, 9.0]], [[1.0, 4.0, 2.0, 9.0]]])
    >>> adaptive_max_pool1d(x, 1)[:, :, 0]
    array([[9.],
           [9.]])
    >>> adaptive_max_pool1d(x, 1, lengths=[4, 3])[:, :, 0]   # the 9 is padding in row 2
    array([[9.],
           [4.]])
    """
    args = _checks.adaptive_pool_args("adaptive_max_pool1d", input, output_size, num_threads,
                                      nd=1)
    y, idx = _adaptive_max1d(args, lengths)
    return (y, idx) if _checks.check_bool(return_indices, "return_indices") else y


def adaptive_max_pool1d_backward(grad_output, input, output_size, *, lengths=None,
                                 indices=None, num_threads=None):
    """Gradient of :func:`adaptive_max_pool1d` with respect to its input.

    Padded positions (past ``lengths``) receive zero gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import adaptive_max_pool1d_backward
    >>> x = np.array([[[1.0, 4.0, 2.0, 9.0]]])
    >>> adaptive_max_pool1d_backward(np.ones((1, 1, 1)), x, 1, lengths=[3])
    array([[[0., 1., 0., 0.]]])
    """
    args = _checks.adaptive_pool_args("adaptive_max_pool1d", input, output_size, num_threads,
                                      nd=1)
    if indices is None:
        indices = _adaptive_max1d(args, lengths)[1]
    elif lengths is not None:
        # the forward's indices never point past a sequence's length; given ones must not
        # either, or the gradient would land on padding
        lens = _checks.pool_lengths("adaptive_max_pool1d_backward", lengths, args)
        idx = _checks.pool_indices(indices, args).reshape(lens.shape[0], -1)
        past = idx >= lens[:, None]
        if past.any():
            row = int(np.argmax(past.any(axis=1)))
            raise ValueError(f"adaptive_max_pool1d_backward: indices must lie before each "
                             f"sequence's length; got index {int(idx[row].max())} in a row "
                             f"of length {int(lens[row])}")
    return _max_pool_backward(grad_output, args, indices)


def adaptive_avg_pool2d(input, output_size, *, num_threads=None):
    """Adaptive 2D average pooling, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output ``(p, q)`` averages rows ``[floor(p*H/Ho), ceil((p+1)*H/Ho))`` and the same for the
    columns; ``output_size=1`` is global average pooling.

    Parameters
    ----------
    input : array_like, shape (N, C, H, W) or (C, H, W)
    output_size : int or (int or None, int or None)
        None keeps that axis' input size.
    num_threads : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import adaptive_avg_pool2d
    >>> adaptive_avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 1)
    array([[[[7.5]]]])
    """
    args = _checks.adaptive_pool_args("adaptive_avg_pool2d", input, output_size, num_threads,
                                      nd=2)
    y = np.empty((args.x.shape[0],) + args.plane_out, dtype=args.x.dtype)
    _pool.adaptive_avg_forward(args.x, y, _pool_threads(args))
    return y.reshape(args.out_shape)


def adaptive_avg_pool2d_backward(grad_output, input, output_size, *, num_threads=None):
    """Gradient of :func:`adaptive_avg_pool2d` with respect to its input (only its shape is used).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.functional import adaptive_avg_pool2d_backward
    >>> adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 2, 2)), 1)[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    args = _checks.adaptive_pool_args("adaptive_avg_pool2d", input, output_size, num_threads,
                                      nd=2)
    g = _checks.pool_grad_output(grad_output, args)
    gx = np.zeros(args.x.shape, dtype=args.x.dtype)
    _pool.adaptive_avg_backward(g, gx, _pool_threads(args))
    return gx.reshape(args.in_shape)


# --------------------------------------------------------------------------------------------
# Batch normalisation passes for nn.BatchNorm1d/2d (kernels in src/_norm.pyx). The layers
# validate their arguments; these take C-contiguous (N, C, P) float arrays, per-channel
# vectors and the layers' thread count (None: OpenMP's default).
# --------------------------------------------------------------------------------------------

from . import _norm  # noqa: E402  (the normalisation section is self-contained)


def _batch_norm_stats(x, num_threads):
    """Per-channel mean and biased variance of ``x`` (N, C, P), in float64."""
    n, c, _ = x.shape
    mean, var = np.empty(c), np.empty(c)
    _norm.stats(x, mean, var, np.empty((n, c)), _sized_threads(x.size, num_threads))
    return mean, var


def _batch_norm_affine(x, mu, k, b, num_threads, g=None, a=None):
    """``(x - mu[c]) * k[c] + b[c]`` for ``x`` (N, C, P), plus ``g * a[c]`` when ``g`` is
    given, in x's dtype."""
    out = np.empty_like(x)
    dt = x.dtype
    k = k.astype(dt)
    # without g, the kernel reads neither g nor a: x and k stand in for them
    _norm.affine(x if g is None else g, x, mu.astype(dt), k if a is None else a.astype(dt), k,
                 b.astype(dt), out, g is not None, _sized_threads(x.size, num_threads))
    return out


def _batch_norm_backward_sums(g, x, mean, num_threads):
    """Per channel, in float64: the sum of ``g`` and of ``g * (x - mean[c])``."""
    n, c, _ = x.shape
    sum_g, sum_gd = np.empty(c), np.empty(c)
    _norm.backward_sums(g, x, mean, sum_g, sum_gd, np.empty((2, n, c)),
                        _sized_threads(x.size, num_threads))
    return sum_g, sum_gd


# --------------------------------------------------------------------------------------------
# Embedding: the table's gradient (kernel in src/_embed.pyx)
# --------------------------------------------------------------------------------------------

from . import _embed  # noqa: E402  (the embedding section is self-contained)


def _embedding_backward(idx, g, num_embeddings, padding_idx, num_threads):
    """The gradient ``(num_embeddings, D)`` of looking up rows ``idx`` (any shape; the caller
    has checked that the indices lie in range) given ``g`` (``idx.shape + (D,)``): the rows of
    repeated tokens summed in input order (the bits of ``np.add.at``), the padding row zero."""
    d = g.shape[-1]
    flat = np.ascontiguousarray(np.reshape(idx, -1), dtype=np.intp)
    rows = np.ascontiguousarray(np.reshape(g, (-1, d)))
    grad = np.zeros((num_embeddings, d), dtype=rows.dtype)
    _embed.embedding_backward(flat, rows, grad, _sized_threads(rows.size, num_threads))
    if padding_idx is not None:
        grad[padding_idx] = 0
    return grad
