"""The FFT algorithm for long kernels (conv1d and conv2d, forward and backward).

Convolution theorem, channels mixed per frequency: with the padded input ``xp`` and the
zero-dilated kernel ``wd`` (both real), and ``F`` the real FFT over the spatial axes at a length
``n >= padded length`` (so no product wraps around)::

    y      = F^-1[ sum_c F(xp)[c] * conj(F(wd)[o, c]) ]  (first L_out samples, every stride-th)
    gxp    = F^-1[ sum_o F(g~)[o] * F(wd)[o, c] ]         (g~: grad_output spread by the stride)
    gwd    = F^-1[ sum_n conj(F(g~)[n, o]) * F(xp)[n, c] ]  (lags 0..extent-1, every dilation-th)

Cost: O(C * L log L) for the transforms plus ``C_in * C_out / groups`` complex products per
frequency, against ``K`` real multiply-adds per output for the direct and gemm paths; it wins
when the kernel is long. The forward pass transforms long signals in overlapping blocks
(overlap-save) so that the transform length follows the kernel, not the signal.

float32 arrays are transformed in float64 (the results rounded back to float32): a
transform's rounding error is relative to the largest values of the whole signal, not of
each output, and in float32 outputs of 300 beside an input sample of 1e8 came out 7 % off.

Every step is a deterministic numpy/scipy operation: scipy.fft splits its work by rows
(``workers``) and the per-frequency matrix products run with BLAS held to one thread, so
results do not depend on the thread count.
"""
import numpy as np
import scipy.fft

from . import _blas


def _spatial(nd):
    return tuple(range(-nd, 0))


def _dilate(w, dilation):
    """The kernel with dilation-1 zeros between taps on each spatial axis."""
    nd = len(dilation)
    extents = tuple(d * (k - 1) + 1 for d, k in zip(dilation, w.shape[-nd:]))
    wd = np.zeros(w.shape[:-nd] + extents, dtype=w.dtype)
    wd[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)] = w
    return wd


def _mix(a, b, groups, conj_b):
    """Per frequency and group: (N, G*Ca, F) x (G*Cb_out, Ca, F) -> (N, G*Cb_out, F).

    a: (N, G*Ca, *F); b: (G*Cb, Ca, *F); result[n, g*Cb + j] = sum_i a[n, g*Ca + i] * b[g*Cb + j, i].
    """
    n = a.shape[0]
    fshape = a.shape[2:]
    ca = a.shape[1] // groups
    cb = b.shape[0] // groups
    f = int(np.prod(fshape))
    a2 = a.reshape(n, groups, ca, f).transpose(3, 1, 0, 2)        # (F, G, N, Ca)
    b2 = b.reshape(groups, cb, ca, f).transpose(3, 0, 2, 1)       # (F, G, Ca, Cb)
    if conj_b:
        b2 = np.conj(b2)
    with _blas.single_threaded():
        out = np.matmul(a2, b2)                                     # (F, G, N, Cb)
    return out.transpose(2, 1, 3, 0).reshape((n, groups * cb) + fshape)


def blocked(n_out, extent):
    """Whether a 1-D forward of ``n_out`` stride-1 outputs runs in overlap-save blocks."""
    return n_out > 8 * extent


def block_length(extent):
    """The transform length of the overlap-save blocks for a kernel of ``extent`` samples."""
    return scipy.fft.next_fast_len(4 * extent, real=True)


def _pad(x, pads):
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def _f64(a):
    return a.astype(np.float64, copy=False)


def forward(args):
    """conv via FFT; ``args`` are pyconv1d._checks.ConvArgs."""
    nd = len(args.stride)
    axes = _spatial(nd)
    workers = args.num_threads
    xp = _pad(_f64(args.x), args.pads)
    wd = _dilate(_f64(args.w), args.dilation)
    ext = wd.shape[-nd:]
    full_out = tuple(p - e + 1 for p, e in zip(xp.shape[-nd:], ext))   # stride-1 output
    if nd == 1 and blocked(full_out[0], ext[0]):
        y = _forward_blocks(xp, wd, args.groups, full_out[0], workers)
    else:
        nfft = tuple(scipy.fft.next_fast_len(p, real=True) for p in xp.shape[-nd:])
        X = scipy.fft.rfftn(xp, s=nfft, axes=axes, workers=workers)
        W = scipy.fft.rfftn(wd, s=nfft, axes=axes, workers=workers)
        Y = _mix(X, W, args.groups, conj_b=True)
        y = scipy.fft.irfftn(Y, s=nfft, axes=axes, workers=workers)
        y = y[(Ellipsis,) + tuple(slice(0, o) for o in full_out)]
    y = y[(Ellipsis,) + tuple(slice(None, None, s) for s in args.stride)]
    y = np.ascontiguousarray(y, dtype=args.x.dtype)
    if args.b is not None:
        y += args.b.reshape((1, -1) + (1,) * nd)
    return y


def _forward_blocks(xp, wd, groups, n_out, workers):
    """1-D overlap-save: output blocks of B samples from input windows of B + extent - 1."""
    ext = wd.shape[-1]
    nfft = block_length(ext)
    block = nfft - ext + 1
    n_blocks = -(-n_out // block)
    need = n_blocks * block + ext - 1
    xp = np.pad(xp, ((0, 0), (0, 0), (0, need - xp.shape[-1])))
    windows = np.lib.stride_tricks.sliding_window_view(xp, nfft, axis=-1)[..., ::block, :]
    N, C, nb, _ = windows.shape                                   # nb == n_blocks
    X = scipy.fft.rfft(windows, n=nfft, axis=-1, workers=workers)  # (N, C, nb, F)
    X = X.transpose(0, 2, 1, 3).reshape(N * nb, C, -1)            # blocks as batch
    W = scipy.fft.rfft(wd, n=nfft, axis=-1, workers=workers)
    Y = _mix(X, W, groups, conj_b=True)  # (N*nb, O, F)
    y = scipy.fft.irfft(Y, n=nfft, axis=-1, workers=workers)[..., :block]
    O = y.shape[1]
    y = y.reshape(N, nb, O, block).transpose(0, 2, 1, 3).reshape(N, O, nb * block)
    return y[..., :n_out]


def backward(g, args, want_input, want_weight):
    """(grad_input, grad_weight) via FFT (None where not wanted); g is (N, C_out, *out)."""
    nd = len(args.stride)
    axes = _spatial(nd)
    workers = args.num_threads
    xp_shape = tuple(n + lo + hi for n, (lo, hi) in zip(args.x.shape[-nd:], args.pads))
    wd = _dilate(_f64(args.w), args.dilation)
    g = _f64(g)
    ext = wd.shape[-nd:]
    full_out = tuple(p - e + 1 for p, e in zip(xp_shape, ext))
    # grad_output spread over the stride-1 output grid
    gs = np.zeros(g.shape[:2] + full_out, dtype=g.dtype)
    gs[(Ellipsis,) + tuple(slice(0, o * s, s) for o, s in zip(g.shape[2:], args.stride))] = g
    nfft = tuple(scipy.fft.next_fast_len(p, real=True) for p in xp_shape)
    G = scipy.fft.rfftn(gs, s=nfft, axes=axes, workers=workers)
    grad_input = grad_weight = None
    if want_input:
        W = scipy.fft.rfftn(wd, s=nfft, axes=axes, workers=workers)
        # (N, C_out, F) x (C_in, C_out/groups, F): swap the weight's channel axes per group
        Wt = _swap_group_axes(W, args.groups)
        GX = _mix(G, Wt, args.groups, conj_b=False)
        gxp = scipy.fft.irfftn(GX, s=nfft, axes=axes, workers=workers)
        crop = tuple(slice(lo, lo + n) for n, (lo, _) in zip(args.x.shape[-nd:], args.pads))
        grad_input = np.ascontiguousarray(gxp[(Ellipsis,) + crop], dtype=args.x.dtype)
    if want_weight:
        X = scipy.fft.rfftn(_pad(_f64(args.x), args.pads), s=nfft, axes=axes,
                            workers=workers)
        GW = _weight_mix(G, X, args.groups)
        gwd = scipy.fft.irfftn(GW, s=nfft, axes=axes, workers=workers)
        lags = tuple(slice(0, e, d) for e, d in zip(ext, args.dilation))
        grad_weight = np.ascontiguousarray(gwd[(Ellipsis,) + lags], dtype=args.x.dtype)
    return grad_input, grad_weight


def _swap_group_axes(W, groups):
    """(G*Og, Cg, F) -> (G*Cg, Og, F): the weight's channel axes swapped within each group."""
    og, cg = W.shape[0] // groups, W.shape[1]
    return W.reshape((groups, og, cg) + W.shape[2:]).swapaxes(1, 2).reshape(
        (groups * cg, og) + W.shape[2:])


def _weight_mix(G, X, groups):
    """GW[g*Og + o, c] = sum_n conj(G[n, g*Og + o]) * X[n, g*Cg + c], per frequency."""
    n = G.shape[0]
    fshape = G.shape[2:]
    og, cg = G.shape[1] // groups, X.shape[1] // groups
    f = int(np.prod(fshape))
    a = np.conj(G).reshape(n, groups, og, f).transpose(3, 1, 2, 0)   # (F, G, Og, N)
    b = X.reshape(n, groups, cg, f).transpose(3, 1, 0, 2)            # (F, G, N, Cg)
    with _blas.single_threaded():
        out = np.matmul(a, b)                                         # (F, G, Og, Cg)
    return out.transpose(1, 2, 3, 0).reshape((groups * og, cg) + fshape)
