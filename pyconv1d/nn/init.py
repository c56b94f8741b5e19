"""Weight initialisation, as ``torch.nn.init`` (in place, on a Parameter or an ndarray).

Every function takes an optional ``rng`` (a ``numpy.random.Generator`` or an int seed); None
draws from the generator set by :func:`pyconv1d.nn.manual_seed`.
"""
import math
import numbers

import numpy as np
from scipy import special

from . import _validate
from .module import Parameter, resolve_rng

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "zeros_", "ones_",
           "constant_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
           "xavier_normal_", "orthogonal_"]


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
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (bool, np.bool_)) or not isinstance(param, numbers.Real):
            raise ValueError(f"calculate_gain: param (the negative slope) must be a number, "
                             f"got {param!r}")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    """Fill with U(a, b) in place; returns the array."""
    a, b = (_validate.float_arg(v, n, "uniform_") for v, n in ((a, "a"), (b, "b")))
    if a > b:
        raise ValueError(f"uniform_: a must be at most b, got a={a!r}, b={b!r}")
    arr = _array(tensor)
    arr[...] = resolve_rng(rng).uniform(a, b, size=arr.shape)
    return arr


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    """Fill with N(mean, std^2) in place; returns the array."""
    mean = _validate.float_arg(mean, "mean", "normal_")
    std = _validate.float_arg(std, "std", "normal_", 0.0)
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


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, rng=None):
    """Fill with N(mean, std^2) truncated to ``[a, b]`` (absolute bounds, as torch), drawn by
    the inverse of the normal CDF; returns the array.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.nn.init import trunc_normal_
    >>> w = trunc_normal_(np.empty(1000), std=0.02, a=-0.04, b=0.04, rng=0)
    >>> bool(np.abs(w).max() <= 0.04)
    True
    """
    arr = _array(tensor)
    if not (std > 0 and a < b):
        raise ValueError(f"trunc_normal_ needs std > 0 and a < b, got std={std!r}, a={a!r}, "
                         f"b={b!r}")
    alpha, beta = (a - mean) / std, (b - mean) / std
    # an interval above the mean is drawn as its mirror image below it, where the normal CDF
    # keeps its precision (above about 8 sd it rounds to 1 and every draw became b)
    flip = alpha > 0
    if flip:
        alpha, beta = -beta, -alpha
    u = resolve_rng(rng).uniform(special.ndtr(alpha), special.ndtr(beta), size=arr.shape)
    z = special.ndtri(u)
    arr[...] = np.clip(mean + std * (-z if flip else z), a, b)
    return arr


def _kaiming_fan(shape, mode):
    fan_in, fan_out = _fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


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
    fan = _kaiming_fan(arr.shape, mode)
    if fan == 0:
        return arr
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(arr, -bound, bound, rng)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He initialisation: N(0, std^2), ``std = gain / sqrt(fan)``."""
    arr = _array(tensor)
    fan = _kaiming_fan(arr.shape, mode)
    if fan == 0:
        return arr
    return normal_(arr, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), rng)


def xavier_uniform_(tensor, gain=1.0, rng=None):
    """Glorot initialisation: U(-b, b), ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    arr = _array(tensor)
    fan_in, fan_out = _fans(arr.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(arr, -bound, bound, rng)


def xavier_normal_(tensor, gain=1.0, rng=None):
    """Glorot initialisation: N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    arr = _array(tensor)
    fan_in, fan_out = _fans(arr.shape)
    return normal_(arr, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def orthogonal_(tensor, gain=1.0, rng=None):
    """A (semi-)orthogonal matrix, as torch: the array seen as ``(shape[0], rest)`` gets the Q
    of the QR decomposition of a normal matrix (signs fixed by R's diagonal), times ``gain``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.nn.init import orthogonal_
    >>> w = orthogonal_(np.empty((3, 5)), rng=0)
    >>> np.allclose(w @ w.T, np.eye(3))
    True
    """
    arr = _array(tensor)
    if arr.ndim < 2:
        raise ValueError(f"orthogonal_ needs at least 2 dimensions, got shape {arr.shape}")
    rows = arr.shape[0]
    cols = arr.size // rows if rows else 0
    if arr.size == 0:
        return arr
    flat = resolve_rng(rng).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    arr[...] = (gain * q).reshape(arr.shape)
    return arr


def reset_weight_and_bias(weight, bias, rng):
    """PyTorch's default for conv and linear layers: kaiming_uniform_(a=sqrt(5)) on the
    weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias (fan_in from the weight)."""
    rng = resolve_rng(rng)
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in = _fans(weight.shape)[0]
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound, rng)
