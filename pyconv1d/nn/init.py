"""Weight initialisation, as ``torch.nn.init`` (in place, on a Parameter or an ndarray).

Every function takes an optional ``rng`` (a ``numpy.random.Generator`` or an int seed); None
draws from the generator set by :func:`pyconv1d.nn.manual_seed`.
"""
import math


from .module import Parameter, resolve_rng

__all__ = ["calculate_gain", "uniform_", "normal_", "zeros_", "ones_", "constant_",
           "kaiming_uniform_", "xavier_uniform_"]


def _array(tensor):
    return tensor.data if isinstance(tensor, Parameter) else tensor


def _fans(shape):
    """PyTorch's fan_in and fan_out: dims 1 and 0 times the receptive field."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for ``nonlinearity`` ('linear', 'relu', 'leaky_relu', ...).

    Examples
    --------
    >>> from pyconv1d.nn.init import calculate_gain
    >>> round(calculate_gain('leaky_relu', 5 ** 0.5) ** 2, 6)
    0.333333
    """
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv_transpose1d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    """Fill with U(a, b) in place; returns the array."""
    arr = _array(tensor)
    arr[...] = resolve_rng(rng).uniform(a, b, size=arr.shape)
    return arr


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    """Fill with N(mean, std^2) in place; returns the array."""
    arr = _array(tensor)
    arr[...] = resolve_rng(rng).normal(mean, std, size=arr.shape)
    return arr


def constant_(tensor, value):
    """Fill with ``value`` in place; returns the array."""
    arr = _array(tensor)
    arr[...] = value
    return arr


def zeros_(tensor):
    """Fill with zeros in place."""
    return constant_(tensor, 0)


def ones_(tensor):
    """Fill with ones in place."""
    return constant_(tensor, 1)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He initialisation: U(-bound, bound), ``bound = gain * sqrt(3 / fan)``.

    With ``a=sqrt(5)`` (PyTorch's default for conv and linear weights) the bound is
    ``1 / sqrt(fan_in)``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.nn.init import kaiming_uniform_
    >>> w = kaiming_uniform_(np.empty((64, 4, 25)), a=5 ** 0.5, rng=0)
    >>> bool(np.abs(w).max() <= 1 / np.sqrt(100))
    True
    """
    arr = _array(tensor)
    fan_in, fan_out = _fans(arr.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        return arr
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(arr, -bound, bound, rng)


def xavier_uniform_(tensor, gain=1.0, rng=None):
    """Glorot initialisation: U(-b, b), ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    arr = _array(tensor)
    fan_in, fan_out = _fans(arr.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(arr, -bound, bound, rng)


def reset_weight_and_bias(weight, bias, rng):
    """PyTorch's default for conv and linear layers: kaiming_uniform_(a=sqrt(5)) on the
    weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias (fan_in from the weight)."""
    rng = resolve_rng(rng)
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in = _fans(weight.shape)[0]
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound, rng)
