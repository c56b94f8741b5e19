"""Input checks shared by the layers: every message names the layer and the shapes."""
import math
import numbers

import numpy as np

from .. import _checks

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def int_arg(value, name, minimum, owner):
    """An int >= minimum (numpy ints accepted; bools and floats rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def int_tuple(value, name, nd, minimum, owner):
    """An int or a sequence of ``nd`` ints, each >= minimum, as a tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != nd:
            raise ValueError(f"{owner}: {name} must be an int or {nd} ints, got {value!r}")
        return tuple(int_arg(v, name, minimum, owner) for v in value)
    return (int_arg(value, name, minimum, owner),) * nd


def bool_arg(value, name, owner):
    """A bool (numpy bools accepted): a flag given as 'no' or 0 is an error, not a truth
    value."""
    return _checks.check_bool(value, f"{owner}: {name}")


def array_fits(shape, dtype, what, detail=""):
    """``shape`` as a tuple when an array of it fits this machine's memory; else a ValueError
    "{what} would need N GiB ...{detail}"."""
    _checks.check_fits(math.prod(shape) * np.dtype(dtype).itemsize, what, detail)
    return tuple(shape)


def weight_shape(shape, dtype, owner):
    """``shape`` when an array of it fits this machine's memory; else a ValueError naming
    the layer."""
    return array_fits(shape, dtype, f"{owner}: a weight of shape {tuple(shape)}")


def weights_arg(value, name, owner):
    """None, or a real-valued array of per-class (or per-element) weights as float64."""
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:      # ragged nested lists
        raise TypeError(f"{owner}: {name} must be an array of real numbers, got {value!r} "
                        f"({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: {name} must be an array of real numbers, got {value!r}")
    return arr.astype(np.float64)


def float_arg(value, name, owner, lo=None, hi=None, lo_open=False):
    """A real number within [lo, hi] (or (lo, hi] with lo_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    v = float(value)
    bad = (lo is not None and (v < lo or (lo_open and v == lo))) or \
        (hi is not None and v > hi) or v != v
    if bad:
        if lo is None and hi is None:
            raise ValueError(f"{owner}: {name} must be a number, not NaN, got {value!r}")
        left = "(" if lo_open else "["
        raise ValueError(f"{owner}: {name} must lie in {left}{lo}, {hi}], got {value!r}")
    return v


def float_input(layer, x, ndims=None, layout=None, channels=None, channel_axis=None,
                dtype=None):
    """``x`` as a float ndarray, with its ndim, channel count and dtype checked."""
    label = layer._label()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{label}: input must be a float32 or float64 array ({exc})") from None
    if arr.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{label}: input must be a float32 or float64 array, got dtype "
                        f"{arr.dtype}")
    if ndims is not None and arr.ndim not in ndims:
        raise ValueError(f"{label}: expected input of shape {layout}, got shape {arr.shape}")
    if channels is not None and arr.shape[channel_axis] != channels:
        raise ValueError(f"{label}: expected input of shape {layout} with {channels} "
                         f"channels, got shape {arr.shape}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{label}: input dtype {arr.dtype} does not match the layer's {dtype} "
                        f"parameters (convert the input with .astype(np.{dtype}) or build "
                        f"the layer with dtype=np.{arr.dtype})")
    return arr


def grad_output(layer, g, shape, dtype=None):
    """``grad_output`` of exactly the forward output's ``shape``, as ``dtype`` (None: as it
    is, for the layers that only move values: a reshape or a transpose would take another
    shape of as many elements without a word)."""
    try:
        arr = np.asarray(g)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{layer._label()}: grad_output must be an array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{layer._label()}: grad_output must be a float array, got dtype "
                        f"{arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{layer._label()}: grad_output must have the shape of the last "
                         f"forward's output {tuple(shape)}, got shape {arr.shape}")
    return arr if dtype is None else arr.astype(dtype, copy=False)
