"""Independent reference implementations for the convolution tests (conv1d now, conv2d later).

Nothing here imports pyconv1d. Every function works for any number of spatial dimensions
``nd``: arrays are channels first, ``x (N, C_in, *S)``, ``w (C_out, C_in/groups, *K)``,
``g (N, C_out, *S_out)``; unbatched inputs ``(C_in, *S)`` are accepted too and give unbatched
results. References compute in float64 whatever the dtype of their arguments.

Two independent families:

* scipy-based (the primary references): the deep-learning convolution is built from an
  explicitly zero-padded input (``np.pad``), a kernel dilated by inserting ``dilation - 1``
  zeros between taps, ``scipy.signal.correlate`` in 'valid' mode summed over the input channels
  of a group, and every ``stride``-th sample. The input gradient is ``scipy.signal.convolve``
  ('full') of the stride-upsampled ``grad_output`` with the dilated kernel, cropped to the
  unpadded input; the weight gradient is the padded input correlated with the upsampled
  ``grad_output`` (a stride-1 correlation), keeping every ``dilation``-th lag.
* brute-force loops over output positions (``*_loops``), used to cross-check the scipy
  references themselves.

Plus :func:`numerical_gradient` (central differences) and :func:`assert_close` (tolerances
per dtype, scaled by the reduction length).
"""
import itertools
import math
import numbers

import numpy as np
from scipy import signal

__all__ = [
    "assert_close",
    "close_message",
    "conv_backward",
    "conv_backward_loops",
    "conv_forward",
    "conv_forward_loops",
    "conv_grad_bias",
    "conv_grad_input",
    "conv_grad_weight",
    "dilate_kernel",
    "numerical_gradient",
    "output_shape",
    "pad_spatial",
    "resolve_padding",
    "resolve_padding_1d",
    "tolerances",
    "upsample",
]


# --------------------------------------------------------------------------------------------
# Argument normalisation (spelled out independently of the library's own).
# --------------------------------------------------------------------------------------------

def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _per_dim(value, nd):
    """An int, or a sequence of ``nd`` ints, as a tuple of ``nd`` ints."""
    if _is_int(value):
        return (int(value),) * nd
    t = tuple(int(v) for v in value)
    if len(t) != nd:
        raise ValueError(f"expected {nd} values, got {value!r}")
    return t


def resolve_padding_1d(length, kernel_size, stride=1, dilation=1, padding=0):
    """The ``(left, right)`` zero padding of one spatial axis.

    ``padding``: an int (both sides), a ``(left, right)`` pair, ``'valid'`` (none), ``'same'``
    (TensorFlow's: ``ceil(length/stride)`` outputs, total ``max((L_out-1)*stride + extent -
    length, 0)``, ``total//2`` on the left, the odd sample on the right) or ``'causal'``
    (``dilation*(kernel_size-1)`` on the left only).
    """
    extent = dilation * (kernel_size - 1) + 1
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            out = -(-length // stride)
            total = max((out - 1) * stride + extent - length, 0)
            return (total // 2, total - total // 2)
        if padding == "causal":
            return (extent - 1, 0)
        raise ValueError(f"unknown padding {padding!r}")
    if _is_int(padding):
        return (int(padding), int(padding))
    left, right = padding
    return (int(left), int(right))


def resolve_padding(spatial_shape, kernel_shape, stride=1, dilation=1, padding=0):
    """Per-axis ``(before, after)`` pairs for ``nd = len(spatial_shape)`` spatial axes.

    ``padding`` is a string or an int (applied to every axis), or a sequence of ``nd`` per-axis
    specifications (each an int or a ``(before, after)`` pair). For ``nd == 1`` a bare pair
    ``(left, right)`` is the single axis' specification.
    """
    nd = len(spatial_shape)
    stride = _per_dim(stride, nd)
    dilation = _per_dim(dilation, nd)
    if isinstance(padding, str) or _is_int(padding):
        per_axis = [padding] * nd
    elif nd == 1:
        per_axis = [padding]
    else:
        per_axis = list(padding)
        if len(per_axis) != nd:
            raise ValueError(f"expected {nd} per-axis paddings, got {padding!r}")
    return tuple(resolve_padding_1d(n, k, s, d, p) for n, k, s, d, p in
                 zip(spatial_shape, kernel_shape, stride, dilation, per_axis))


def _normalise(x_shape, w_shape, stride, padding, dilation):
    nd = len(w_shape) - 2
    spatial = tuple(x_shape[-nd:])
    kernel = tuple(w_shape[2:])
    stride = _per_dim(stride, nd)
    dilation = _per_dim(dilation, nd)
    pads = resolve_padding(spatial, kernel, stride, dilation, padding)
    extents = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads))
    if any(p < e for p, e in zip(padded, extents)):
        raise ValueError(f"padded size {padded} shorter than the dilated kernel {extents}")
    out = tuple((p - e) // s + 1 for p, e, s in zip(padded, extents, stride))
    return nd, stride, dilation, pads, extents, out


def output_shape(x_shape, w_shape, stride=1, padding=0, dilation=1):
    """The shape of the convolution's output (unbatched in, unbatched out)."""
    nd, _, _, _, _, out = _normalise(x_shape, w_shape, stride, padding, dilation)
    lead = tuple(x_shape[:-nd - 1])
    return lead + (w_shape[0],) + out


# --------------------------------------------------------------------------------------------
# Building blocks.
# --------------------------------------------------------------------------------------------

def pad_spatial(x, pads):
    """Zero-pad the last ``len(pads)`` axes of ``x`` by the ``(before, after)`` pairs."""
    nd = len(pads)
    return np.pad(x, [(0, 0)] * (x.ndim - nd) + [tuple(p) for p in pads])


def dilate_kernel(w, dilation):
    """Insert ``dilation - 1`` zeros between the taps of the last ``len(dilation)`` axes."""
    nd = len(dilation)
    kernel = w.shape[w.ndim - nd:]
    extents = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    out = np.zeros(w.shape[:w.ndim - nd] + extents, dtype=w.dtype)
    out[(Ellipsis,) + tuple(slice(None, None, d) for d in dilation)] = w
    return out


def upsample(g, stride):
    """Insert ``stride - 1`` zeros between the samples of the last ``len(stride)`` axes."""
    nd = len(stride)
    size = g.shape[g.ndim - nd:]
    up = tuple((n - 1) * s + 1 if n else 0 for n, s in zip(size, stride))
    out = np.zeros(g.shape[:g.ndim - nd] + up, dtype=g.dtype)
    out[(Ellipsis,) + tuple(slice(None, None, s) for s in stride)] = g
    return out


def _batched(a, nd):
    """(array with a batch axis, whether the input had none)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == nd + 1:
        return a[None], True
    if a.ndim != nd + 2:
        raise ValueError(f"expected {nd + 1} or {nd + 2} dims, got shape {a.shape}")
    return a, False


# --------------------------------------------------------------------------------------------
# scipy-based references.
# --------------------------------------------------------------------------------------------

def conv_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """The deep-learning convolution (cross-correlation), from ``scipy.signal.correlate``.

    ``out[n, o] = b[o] + sum_{c in group(o)} correlate_valid(xpad[n, c], w_dilated[o, c])``
    taken every ``stride``-th sample, the channel sum done by a correlation whose kernel spans
    the whole channel axis of the group.
    """
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    x, unbatched = _batched(x, nd)
    _, stride, dilation, pads, _, out_sp = _normalise(x.shape, w.shape, stride, padding,
                                                      dilation)
    n_batch, c_in = x.shape[:2]
    c_out, cg = w.shape[:2]
    og = c_out // groups
    assert cg * groups == c_in and og * groups == c_out, "bad channel counts for groups"
    out = np.zeros((n_batch, c_out) + out_sp)
    if n_batch:
        xp = pad_spatial(x, pads)
        wd = dilate_kernel(w, dilation)
        take = (slice(None),) + tuple(slice(None, None, s) for s in stride)
        for o in range(c_out):
            gr = o // og
            xs = xp[:, gr * cg:(gr + 1) * cg]                    # (N, Cg, *padded)
            r = signal.correlate(xs, wd[o][None], mode="valid", method="direct")
            out[:, o] = r[:, 0][take]                            # (N, *out)
    if b is not None:
        out += np.asarray(b, dtype=np.float64).reshape((1, c_out) + (1,) * nd)
    return out[0] if unbatched else out


def conv_grad_input(grad_output, x_shape, w, stride=1, padding=0, dilation=1, groups=1):
    """Input gradient: ``scipy.signal.convolve`` ('full') of the stride-upsampled
    ``grad_output`` with the dilated kernel, summed over the output channels of the group,
    then the padding cropped off."""
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    g, unbatched = _batched(grad_output, nd)
    x_shape = tuple(x_shape)
    xb_shape = ((1,) + x_shape) if unbatched else x_shape
    _, stride, dilation, pads, _, out_sp = _normalise(xb_shape, w.shape, stride, padding,
                                                      dilation)
    assert g.shape[2:] == out_sp, (g.shape, out_sp)
    n_batch, c_in = xb_shape[:2]
    c_out, cg = w.shape[:2]
    og = c_out // groups
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(xb_shape[2:], pads))
    gxp = np.zeros((n_batch, c_in) + padded)
    if n_batch:
        gu = upsample(g, stride)                                 # (N, C_out, *U)
        wd = dilate_kernel(w, dilation)
        for c in range(c_in):
            gr, ci = divmod(c, cg)
            for o in range(gr * og, (gr + 1) * og):
                # (N, *U) 'full' with (1, *extent): the batch axis passes through unchanged
                r = signal.convolve(gu[:, o], wd[o, ci][None], mode="full", method="direct")
                gxp[(slice(None), c) + tuple(slice(0, n) for n in r.shape[1:])] += r
    crop = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in
                                              zip(pads, xb_shape[2:]))
    gx = gxp[crop]
    return gx[0] if unbatched else gx


def conv_grad_weight(grad_output, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Weight gradient: the padded input correlated ('valid', stride 1) with the
    stride-upsampled ``grad_output``, summed over the batch, keeping every ``dilation``-th lag
    of the first ``extent``."""
    w_shape = tuple(w_shape)
    nd = len(w_shape) - 2
    x, unbatched = _batched(x, nd)
    g, g_unbatched = _batched(grad_output, nd)
    assert unbatched == g_unbatched
    _, stride, dilation, pads, extents, out_sp = _normalise(x.shape, w_shape, stride, padding,
                                                            dilation)
    assert g.shape[2:] == out_sp, (g.shape, out_sp)
    c_out, cg = w_shape[:2]
    og = c_out // groups
    gwd = np.zeros((c_out, cg) + extents)
    if x.shape[0]:
        xp = pad_spatial(x, pads)
        gu = upsample(g, stride)
        for o in range(c_out):
            gr = o // og
            xs = xp[:, gr * cg:(gr + 1) * cg]                    # (N, Cg, *padded)
            k = gu[:, o][:, None]                                # (N, 1, *U)
            r = signal.correlate(xs, k, mode="valid", method="direct")  # (1, Cg, *lags)
            gwd[o] = r[0][(slice(None),) + tuple(slice(0, e) for e in extents)]
    return gwd[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)]


def conv_grad_bias(grad_output, nd=1):
    """Bias gradient: ``grad_output`` summed over the batch and the spatial axes."""
    g, _ = _batched(grad_output, nd)
    return g.sum(axis=(0,) + tuple(range(2, g.ndim)))


def conv_backward(grad_output, x, w, stride=1, padding=0, dilation=1, groups=1):
    """``(grad_input, grad_weight, grad_bias)`` from the scipy-based references."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    return (conv_grad_input(grad_output, x.shape, w, stride, padding, dilation, groups),
            conv_grad_weight(grad_output, x, w.shape, stride, padding, dilation, groups),
            conv_grad_bias(grad_output, nd))


# --------------------------------------------------------------------------------------------
# Brute-force references (loops over output positions), to check the scipy ones.
# --------------------------------------------------------------------------------------------

def _windows(out_sp, stride, dilation, extents):
    for pos in itertools.product(*(range(n) for n in out_sp)):
        yield pos, tuple(slice(p * s, p * s + e, d) for p, s, d, e in
                         zip(pos, stride, dilation, extents))


def conv_forward_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """``out[n, o, *t] = b[o] + sum_{c, *k} w[o, c, *k] * xpad[n, gr*Cg + c, *(t*s + k*d)]``."""
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    x, unbatched = _batched(x, nd)
    _, stride, dilation, pads, extents, out_sp = _normalise(x.shape, w.shape, stride, padding,
                                                            dilation)
    c_out, cg = w.shape[:2]
    og = c_out // groups
    xp = pad_spatial(x, pads)
    out = np.zeros((x.shape[0], c_out) + out_sp)
    axes = list(range(1, nd + 2))
    for pos, win in _windows(out_sp, stride, dilation, extents):
        for gr in range(groups):
            patch = xp[(slice(None), slice(gr * cg, (gr + 1) * cg)) + win]   # (N, Cg, *K)
            wg = w[gr * og:(gr + 1) * og]                                    # (Og, Cg, *K)
            out[(slice(None), slice(gr * og, (gr + 1) * og)) + pos] = \
                np.tensordot(patch, wg, axes=(axes, axes))
    if b is not None:
        out += np.asarray(b, dtype=np.float64).reshape((1, c_out) + (1,) * nd)
    return out[0] if unbatched else out


def conv_backward_loops(grad_output, x, w, stride=1, padding=0, dilation=1, groups=1):
    """``(grad_input, grad_weight, grad_bias)`` by scattering each output position's
    gradient back over its receptive field."""
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    x, unbatched = _batched(x, nd)
    g, _ = _batched(grad_output, nd)
    _, stride, dilation, pads, extents, out_sp = _normalise(x.shape, w.shape, stride, padding,
                                                            dilation)
    c_out, cg = w.shape[:2]
    og = c_out // groups
    xp = pad_spatial(x, pads)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for pos, win in _windows(out_sp, stride, dilation, extents):
        for gr in range(groups):
            cs, os_ = slice(gr * cg, (gr + 1) * cg), slice(gr * og, (gr + 1) * og)
            go = g[(slice(None), os_) + pos]                                 # (N, Og)
            gxp[(slice(None), cs) + win] += np.tensordot(go, w[os_], axes=(1, 0))
            gw[os_] += np.tensordot(go, xp[(slice(None), cs) + win], axes=(0, 0))
    crop = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in
                                              zip(pads, x.shape[2:]))
    gx = gxp[crop]
    gb = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    return (gx[0] if unbatched else gx), gw, gb


# --------------------------------------------------------------------------------------------
# Numerical gradients and tolerances.
# --------------------------------------------------------------------------------------------

def numerical_gradient(f, a, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at the array ``a``.

    ``grad[i] = (f(a + eps*e_i) - f(a - eps*e_i)) / (2*eps)`` for every element ``i`` (any
    shape); ``a`` is copied to float64 and never modified.
    """
    a = np.array(a, dtype=np.float64, copy=True)
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = float(f(a.copy()))
        a[idx] = old - eps
        down = float(f(a.copy()))
        a[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def tolerances(dtype, reduction=1):
    """``(rtol, atol)`` for a result that sums ``reduction`` products of O(1) values.

    float32: rtol 2e-5, atol 1e-6 per summed term; float64: rtol 1e-10, atol 1e-12 per term
    (floored at 1e-10 overall).
    """
    reduction = max(int(reduction), 1)
    if np.dtype(dtype) == np.float32:
        return 2e-5, 1e-6 * reduction
    if np.dtype(dtype) == np.float64:
        return 1e-10, max(1e-12 * reduction, 1e-10)
    raise TypeError(f"no tolerance for dtype {dtype}")


def assert_close(actual, expected, dtype, reduction=1, what="result"):
    """Shape check, then ``np.testing.assert_allclose`` with :func:`tolerances`."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, \
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    rtol, atol = tolerances(dtype, reduction)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol,
                               err_msg=what)


def close_message(actual, expected, dtype, reduction=1, what="result"):
    """Like :func:`assert_close` but returns a message on mismatch (None when close)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return f"{what}: shape {actual.shape} != expected {expected.shape}"
    rtol, atol = tolerances(dtype, reduction)
    a = actual.astype(np.float64)
    if np.all(np.abs(a - expected) <= atol + rtol * np.abs(expected)):
        return None
    return f"{what}: max abs err {_max_err(actual, expected):.3g} (rtol {rtol}, atol {atol:.3g})"


def _max_err(actual, expected):
    try:
        d = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(expected))
        return float(d.max()) if d.size else 0.0
    except Exception:  # noqa: BLE001 - diagnostics only
        return math.nan
