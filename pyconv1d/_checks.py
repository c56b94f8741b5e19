"""The one place that normalises and validates arguments before they reach a kernel.

Every error names the argument and the value it received. Nothing here computes a
convolution; the kernels in ``src/`` check nothing.
"""
import functools
import math
import numbers
import os
from typing import NamedTuple, Tuple

import numpy as np

from ._threads import resolve_num_threads

#: Largest padded length or dilated kernel extent accepted on any axis (keeps every index
#: the kernels compute far inside a 64-bit integer).
MAX_EXTENT = 2 ** 40

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@functools.lru_cache(maxsize=None)
def memory_limit():
    """This machine's physical memory in bytes: no buffer may be larger."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        return 2 ** 46


def check_fits(nbytes, what, detail=""):
    """Raise a ValueError when ``nbytes`` would not fit in this machine's memory:
    "{what} would need N GiB, more than this machine's memory{detail}" (instead of numpy's
    MemoryError for terabytes, or a size that wraps past 64 bits in a kernel)."""
    if nbytes > memory_limit():
        raise ValueError(f"{what} would need {nbytes / 2**30:.1f} GiB, more than this "
                         f"machine's memory{detail}")


def float_dtype(dtype, name="dtype"):
    """``dtype`` as a numpy dtype, float32 or float64 only (anything else a TypeError; None
    too, which numpy would read as float64)."""
    dt = None
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError):
            pass
    # (a dtype equals None when it is float64: test for None first)
    if dt is None or dt not in _FLOAT_DTYPES:
        shown = repr(dtype) if dt is None or isinstance(dtype, str) else dt
        raise TypeError(f"{name} must be float32 or float64, got {shown}")
    return dt


def check_axis(value, name, ndim):
    """An int axis of an array of ``ndim`` dimensions, in [-ndim, ndim)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not -ndim <= value < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim}) for an array of {ndim} "
                         f"dimensions, got {value!r}")
    return int(value)


def as_float_array(value, name):
    """``value`` as a float32/float64 ndarray (no copy when it already is one)."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a float32 or float64 array, got {value!r}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be a float32 or float64 array, got {value!r} "
                        f"({exc})") from None
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype "
                        f"{arr.dtype} (convert with .astype(np.float32))")
    return arr


def check_int(value, name, minimum):
    """An int >= minimum (numpy integers accepted, bools and floats rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_seed(value, name, *, generator=True, none=False):
    """A seed: an int >= 0 (returned as an int; bools and floats refused) or, where allowed, a
    numpy Generator (returned as is) or None (returned as None)."""
    if generator and isinstance(value, np.random.Generator):
        return value
    if none and value is None:
        return None
    integral = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not integral or value < 0:
        kinds = ["an int >= 0"] + ["a numpy.random.Generator"] * generator + ["None"] * none
        text = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
        raise (ValueError if integral else TypeError)(f"{name} must be {text}, got {value!r}")
    return int(value)


def from_array(value):
    """A numpy array as the Python int(s) it holds (np.array(2) is 2, np.array([1, 2]) is
    [1, 2]); anything else as it is. For arguments that take ints or sequences of them."""
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.tolist()
    return value


def int_tuple(value, name, nd, minimum):
    """An int, or a sequence of ``nd`` ints, each >= minimum, as a tuple of ``nd`` ints."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()          # np.array(2) is the int 2; np.array(2.0) a float
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(value)
        if len(items) != nd:
            raise ValueError(f"{name} must be an int or a sequence of {nd} ints, got {value!r}")
        try:
            return tuple(check_int(v, name, minimum) for v in items)
        except (TypeError, ValueError):
            kind = TypeError if any(isinstance(v, (bool, np.bool_)) or
                                    not isinstance(v, numbers.Integral) for v in items) \
                else ValueError
            raise kind(f"{name} must be an int >= {minimum} or a sequence of {nd} such "
                       f"ints, got {value!r}") from None
    return (check_int(value, name, minimum),) * nd


def _same_pads(size, extent, stride):
    """TensorFlow's 'same': output ceil(size/stride), the odd sample of padding on the right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return (total // 2, total - total // 2)


def padding_pairs(padding, nd, sizes, extents, strides):
    """Normalise ``padding`` to a tuple of ``nd`` (before, after) pairs.

    conv1d: int, (left, right), 'valid', 'same', 'causal'.
    conv2d: int, (h, w), ((top, bottom), (left, right)), 'valid', 'same'.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * nd
        if mode == "same":
            return tuple(_same_pads(n, e, s) for n, e, s in zip(sizes, extents, strides))
        if mode == "causal" and nd == 1:
            return ((extents[0] - 1, 0),)
        allowed = "'valid', 'same', 'causal'" if nd == 1 else "'valid', 'same'"
        raise ValueError(f"padding must be an int, a tuple or one of {allowed}, "
                         f"got {padding!r}")
    padding = from_array(padding)            # as stride and dilation take them
    if isinstance(padding, (tuple, list)):
        items = list(padding)
        nested = [isinstance(p, (tuple, list)) for p in items]
        if nd == 1 and len(items) == 2 and not any(nested):
            return (tuple(int_tuple(padding, "padding", 2, 0)),)
        if nd == 2 and len(items) == 2 and not any(nested):
            h, w = int_tuple(padding, "padding", 2, 0)
            return ((h, h), (w, w))
        if len(items) == nd and all(nested) and all(len(p) == 2 for p in items):
            try:
                return tuple(tuple(int_tuple(p, "padding", 2, 0)) for p in items)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"padding must hold non-negative ints, got {padding!r}") \
                    from None
        shape = "(left, right)" if nd == 1 else "(h, w) or ((top, bottom), (left, right))"
        raise ValueError(f"padding must be an int, a string or {shape}, got {padding!r}")
    p = check_int(padding, "padding", 0)
    return ((p, p),) * nd


class ConvArgs(NamedTuple):
    """Validated, normalised arguments of one convolution call."""
    x: np.ndarray          # (N, C_in, *spatial), C-contiguous
    w: np.ndarray          # (C_out, C_in/groups, *kernel), C-contiguous
    b: object              # (C_out,) C-contiguous, or None
    stride: Tuple[int, ...]
    dilation: Tuple[int, ...]
    pads: Tuple[Tuple[int, int], ...]
    groups: int
    out_shape: Tuple[int, ...]   # (N, C_out, *out_spatial)
    unbatched: bool
    num_threads: int
    # elements of a plane padded and then spanned by the kernel, its last axis 16 longer:
    # what the direct path's scratch is bounded by (pyconv1d.functional._direct_bound)
    spanned_plane: int


def conv_args(input, weight, bias, stride, padding, dilation, groups, num_threads, nd,
              input_name="input"):
    """Validate a conv{nd}d call and return :class:`ConvArgs`."""
    fn = f"conv{nd}d"
    x = as_float_array(input, input_name)
    w = as_float_array(weight, "weight")
    if x.ndim not in (nd + 1, nd + 2):
        layout = "(N, C_in, L) or (C_in, L)" if nd == 1 else "(N, C_in, H, W) or (C_in, H, W)"
        raise ValueError(f"{fn}: {input_name} must be {layout}, got shape {x.shape}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    if w.ndim != nd + 2:
        layout = "(C_out, C_in/groups, K)" if nd == 1 else "(C_out, C_in/groups, kH, kW)"
        raise ValueError(f"{fn}: weight must be {layout}, got shape {w.shape}")
    if w.dtype != x.dtype:
        raise TypeError(f"{fn}: weight dtype {w.dtype} does not match {input_name} dtype "
                        f"{x.dtype}")
    groups = check_int(groups, "groups", 1)
    c_in, c_out, c_g = x.shape[1], w.shape[0], w.shape[1]
    if c_out == 0 or c_g == 0:
        raise ValueError(f"{fn}: weight must have at least one output and input channel, "
                         f"got shape {w.shape}")
    if c_out % groups:
        raise ValueError(f"{fn}: groups={groups} must divide out_channels (weight.shape[0] "
                         f"= {c_out})")
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} must divide in_channels ({input_name} "
                         f"shape {x.shape})")
    if c_g * groups != c_in:
        raise ValueError(f"{fn}: {input_name} has {c_in} channels but weight of shape "
                         f"{w.shape} with groups={groups} expects {c_g * groups}")
    kernel = w.shape[2:]
    if min(kernel) == 0:
        raise ValueError(f"{fn}: kernel size must be positive, got weight shape {w.shape}")
    stride = int_tuple(stride, "stride", nd, 1)
    dilation = int_tuple(dilation, "dilation", nd, 1)
    if max(dilation) > MAX_EXTENT:
        raise ValueError(f"{fn}: dilation must be at most {MAX_EXTENT}, got {dilation}")
    sizes = x.shape[2:]
    extents = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if max(extents) > MAX_EXTENT:
        raise ValueError(f"{fn}: dilation {dilation} with kernel {kernel} spans more than "
                         f"{MAX_EXTENT} samples")
    pads = padding_pairs(padding, nd, sizes, extents, stride)
    out_spatial = []
    spanned = 1
    for axis, (n, e, s, (lo, hi)) in enumerate(zip(sizes, extents, stride, pads)):
        padded = n + lo + hi
        spanned *= padded + e - 1 + (16 if axis == nd - 1 else 0)
        if padded > MAX_EXTENT:
            raise ValueError(f"{fn}: padding {padding!r} makes a padded length of {padded}, "
                             f"more than {MAX_EXTENT}")
        if padded < e:
            what = "input" if nd == 1 else f"input (axis {axis})"
            raise ValueError(f"{fn}: padded {what} length {padded} is shorter than the "
                             f"dilated kernel extent {e} (kernel {kernel}, dilation "
                             f"{dilation}, padding {padding!r})")
        out_spatial.append((padded - e) // s + 1)
    out_shape = (x.shape[0], c_out) + tuple(out_spatial)
    # A stride beyond the padded length leaves one output per axis either way; clamping it keeps
    # every index the kernels compute inside 64 bits.
    stride = tuple(min(s, n + lo + hi) for s, n, (lo, hi) in zip(stride, sizes, pads))
    itemsize = x.dtype.itemsize
    check_fits(max(math.prod(out_shape), x.size) * itemsize,
               f"{fn}: the output of shape {out_shape}",
               f" (padding={padding!r}, stride={stride!r})")
    b = None
    if bias is not None:
        b = as_float_array(bias, "bias")
        if b.ndim != 1 or b.shape[0] != c_out:
            raise ValueError(f"{fn}: bias must have shape ({c_out},), got shape {b.shape}")
        if b.dtype != x.dtype:
            raise TypeError(f"{fn}: bias dtype {b.dtype} does not match {input_name} dtype "
                            f"{x.dtype}")
        b = np.ascontiguousarray(b)
    if 1 in kernel:     # a single tap is not dilated (a huge dilation would reach the kernels)
        dilation = tuple(d if k > 1 else 1 for d, k in zip(dilation, kernel))
    return ConvArgs(np.ascontiguousarray(x), np.ascontiguousarray(w), b, stride, dilation,
                    pads, groups, out_shape, unbatched, resolve_num_threads(num_threads),
                    spanned)


def grad_output_array(grad_output, args):
    """Validate ``grad_output`` against the output a forward call with ``args`` makes."""
    g = as_float_array(grad_output, "grad_output")
    expected = args.out_shape[1:] if args.unbatched else args.out_shape
    if g.shape != expected:
        raise ValueError(f"grad_output must have the output's shape {expected}, got shape "
                         f"{g.shape}")
    if g.dtype != args.x.dtype:
        raise TypeError(f"grad_output dtype {g.dtype} does not match input dtype "
                        f"{args.x.dtype}")
    if args.unbatched:
        g = g[None]
    return np.ascontiguousarray(g)


def output_mask(mask):
    """Normalise ``output_mask`` to three bools (input, weight, bias)."""
    try:
        items = tuple(mask)
    except TypeError:
        items = ()
    if len(items) != 3 or not all(isinstance(m, (bool, np.bool_)) for m in items):
        raise TypeError(f"output_mask must be three bools (input, weight, bias), "
                        f"got {mask!r}")
    return tuple(bool(m) for m in items)


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------

class PoolArgs(NamedTuple):
    """Validated arguments of one pooling call, as (h, w) pairs (1D pooling: a plane of height 1).

    The kernels see ``x`` as a stack of ``R = N * C`` planes; ``out_shape`` is the output's
    shape as the caller sees it (batched or not, 1D or 2D).
    """
    x: np.ndarray                 # (R, H, W), C-contiguous
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    plane_out: Tuple[int, int]    # (H_out, W_out)
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    num_threads: int


def pool_output_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling output length (``pooling_output_shape``); may be < 1 (caller rejects)."""
    extent = dilation * (kernel - 1) + 1
    out = (size + 2 * pad - extent + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1   # the last window must start inside the input or the left padding
    return out


def check_bool(value, name):
    """A bool (numpy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _pool_input(fn, input, nd):
    """The input as (R, H, W) planes plus its shape; checks ndim and dtype."""
    x = as_float_array(input, "input")
    if x.ndim not in (nd + 1, nd + 2):
        layout = "(N, C, L) or (C, L)" if nd == 1 else "(N, C, H, W) or (C, H, W)"
        raise ValueError(f"{fn}: input must be {layout}, got shape {x.shape}")
    spatial = x.shape[-nd:]
    if min(spatial) == 0:
        raise ValueError(f"{fn}: input must have a non-empty spatial size, got shape {x.shape}")
    rows = math.prod(x.shape[:-nd])
    plane = (1,) + spatial if nd == 1 else spatial
    return np.ascontiguousarray(x).reshape((rows,) + plane), x.shape


def pool_args(fn, input, kernel_size, stride, padding, dilation, ceil_mode, num_threads, nd):
    """Validate a max/avg pool{nd}d call and return :class:`PoolArgs`.

    ``stride=None`` means ``kernel_size`` (PyTorch). ``padding`` is symmetric and at most
    half the kernel size, as in PyTorch.
    """
    x, in_shape = _pool_input(fn, input, nd)
    kernel = int_tuple(kernel_size, "kernel_size", nd, 1)
    stride = kernel if stride is None else int_tuple(stride, "stride", nd, 1)
    pad = int_tuple(padding, "padding", nd, 0)
    dilation = int_tuple(dilation, "dilation", nd, 1)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    for k, p in zip(kernel, pad):
        if p > k // 2:
            raise ValueError(f"{fn}: padding must be at most half of kernel_size, got "
                             f"padding={padding!r} and kernel_size={kernel_size!r}")
    sizes = in_shape[-nd:]
    for k, d in zip(kernel, dilation):
        if d * (k - 1) + 1 > MAX_EXTENT:
            raise ValueError(f"{fn}: dilation={dilation!r} with kernel_size={kernel_size!r} "
                             f"spans more than {MAX_EXTENT} samples")
    out = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(sizes, kernel, stride, pad, dilation))
    if min(out) < 1:
        raise ValueError(f"{fn}: input of shape {in_shape} is too small for kernel_size="
                         f"{kernel_size!r}, stride={stride!r}, padding={padding!r}, "
                         f"dilation={dilation!r}: the output size would be {out}")
    # one output on an axis never uses its stride: 1 there keeps every index the kernels
    # compute inside 64 bits (several outputs need a stride within the padded length)
    stride = tuple(1 if o == 1 else s for o, s in zip(out, stride))
    dilation = tuple(1 if k == 1 else d for k, d in zip(kernel, dilation))   # likewise
    if nd == 1:
        kernel, stride, pad, dilation, plane_out = ((1,) + kernel, (1,) + stride, (0,) + pad,
                                                    (1,) + dilation, (1,) + out)
    else:
        plane_out = out
    return PoolArgs(x, kernel, stride, pad, dilation, plane_out, in_shape,
                    in_shape[:-nd] + out, resolve_num_threads(num_threads))


def adaptive_pool_args(fn, input, output_size, num_threads, nd):
    """Validate an adaptive pool{nd}d call: ``output_size`` an int, or per axis an int or None
    (None keeps the input size)."""
    x, in_shape = _pool_input(fn, input, nd)
    sizes = in_shape[-nd:]
    items = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size] * nd
    if len(items) != nd:
        raise ValueError(f"{fn}: output_size must be an int or {nd} ints, got {output_size!r}")
    out = tuple(n if o is None else check_int(o, "output_size", 1) for o, n in zip(items, sizes))
    check_fits(math.prod(in_shape[:-nd] + out) * (x.dtype.itemsize + 8),   # values, indices
               f"{fn}: output_size={output_size!r}", f" (input shape {in_shape})")
    plane_out = (1,) + out if nd == 1 else out
    ones = (1, 1)
    return PoolArgs(x, ones, ones, (0, 0), ones, plane_out, in_shape, in_shape[:-nd] + out,
                    resolve_num_threads(num_threads))


def pool_lengths(fn, lengths, args):
    """Per-plane valid lengths (int64, shape (R,)) for a masked adaptive max pool over time.

    ``lengths`` holds one int per sequence: shape (N,) for input (N, C, L), a scalar for an
    unbatched (C, L); each in [1, L]. None means every position is valid.
    """
    L = args.in_shape[-1]
    rows = args.x.shape[0]
    if lengths is None:
        return np.full(rows, L, dtype=np.int64)
    lens = np.asarray(lengths)
    if lens.size == 0 and lens.dtype == np.float64:     # [] for an empty batch
        lens = lens.astype(np.int64)
    if lens.dtype == np.bool_ or not np.issubdtype(lens.dtype, np.integer):
        raise TypeError(f"{fn}: lengths must be integers, got dtype {lens.dtype}")
    batch = args.in_shape[:-2]
    if lens.shape != batch:
        raise ValueError(f"{fn}: lengths must have shape {batch} (one per sequence of the "
                         f"input of shape {args.in_shape}), got shape {lens.shape}")
    if lens.size and (lens.min() < 1 or lens.max() > L):
        raise ValueError(f"{fn}: lengths must lie in [1, {L}] (the input length), got values "
                         f"from {lens.min()} to {lens.max()}")
    channels = args.in_shape[-2]
    return np.ascontiguousarray(np.repeat(lens.astype(np.int64).reshape(-1), channels))


def pool_grad_output(grad_output, args):
    """``grad_output`` checked against the pooling output and returned as (R, H_out, W_out)."""
    g = as_float_array(grad_output, "grad_output")
    if g.shape != args.out_shape:
        raise ValueError(f"grad_output must have the output's shape {args.out_shape}, got "
                         f"shape {g.shape}")
    if g.dtype != args.x.dtype:
        raise TypeError(f"grad_output dtype {g.dtype} does not match input dtype "
                        f"{args.x.dtype}")
    return np.ascontiguousarray(g).reshape((args.x.shape[0],) + args.plane_out)


def pool_indices(indices, args):
    """Max-pool ``indices`` (as returned with ``return_indices=True``) checked and returned as
    int64 (R, H_out, W_out): each an index into its input plane (-1: an empty window)."""
    idx = np.asarray(indices)
    if idx.dtype == np.bool_ or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    if idx.shape != args.out_shape:
        raise ValueError(f"indices must have the output's shape {args.out_shape}, got shape "
                         f"{idx.shape}")
    plane = args.x.shape[1] * args.x.shape[2]
    if idx.size and (idx.min() < -1 or idx.max() >= plane):
        raise ValueError(f"indices must lie in [0, {plane}) (positions in an input plane), got "
                         f"values from {idx.min()} to {idx.max()}")
    return np.ascontiguousarray(idx, dtype=np.int64).reshape((args.x.shape[0],) + args.plane_out)
