"""Element-wise activations, dropout and the shape layers (Flatten, Permute, Transpose)."""
import math
import warnings

import numpy as np
from scipy import special

from .. import _checks
from . import _validate
from .module import Module, resolve_rng

__all__ = ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "Softmax", "LogSoftmax", "Dropout",
           "Flatten", "Permute", "Transpose"]


class _Elementwise(Module):
    """An activation ``y = f(x)``: backward multiplies by ``f'`` kept from the forward."""

    def forward(self, x):
        x = _validate.float_input(self, x)
        y, self._dydx = self._f(x)
        return y

    def backward(self, grad_output):
        dydx = self._saved("_dydx")
        return _validate.grad_output(self, grad_output, dydx.shape, dydx.dtype) * dydx


def _inplace_target(layer, x):
    """``x`` when the layer writes its output into it (``inplace=True``), else None."""
    if not layer.inplace:
        return None
    if not x.flags.writeable:
        raise ValueError(f"{layer._label()}: inplace=True needs a writeable input, got a "
                         f"read-only array of shape {x.shape}")
    return x


class ReLU(_Elementwise):
    """``max(x, 0)`` (gradient 0 at 0, as PyTorch).

    Parameters
    ----------
    inplace : bool
        Write the output into the input array (as ``torch.nn.ReLU(inplace=True)``).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.ReLU()(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = _validate.bool_arg(inplace, "inplace", "ReLU")

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""

    def forward(self, x):
        # NaN stays NaN, as torch.relu, and passes its gradient as torch's (which zeroes it
        # only where the output is <= 0); a bool mask (not the output, which the caller may
        # change in place) is kept for the backward
        x = _validate.float_input(self, x)
        y = np.maximum(x, x.dtype.type(0), out=_inplace_target(self, x))
        self._mask = (~(y <= 0), y.dtype)
        return y

    def backward(self, grad_output):
        mask, dtype = self._saved("_mask")
        return _validate.grad_output(self, grad_output, mask.shape, dtype) * mask


class LeakyReLU(_Elementwise):
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.LeakyReLU(0.1)(np.array([-2.0, 3.0]))
    array([-0.2,  3. ])
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = _validate.float_arg(negative_slope, "negative_slope", "LeakyReLU")
        self.inplace = _validate.bool_arg(inplace, "inplace", "LeakyReLU")

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace
                                                          else "")

    def _f(self, x):
        slope = np.where(x > 0, 1, self.negative_slope).astype(x.dtype)
        return np.multiply(x, slope, out=_inplace_target(self, x)), slope


class Tanh(_Elementwise):
    """Hyperbolic tangent.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.Tanh()(np.array([0.0]))
    array([0.])
    """

    def _f(self, x):
        y = np.tanh(x)
        return y, 1 - y * y


class Sigmoid(_Elementwise):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (stable for large ``|x|``).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.Sigmoid()(np.array([0.0, 1000.0]))
    array([0.5, 1. ])
    """

    def _f(self, x):
        y = special.expit(x)
        return y, y * (1 - y)


class GELU(_Elementwise):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate='tanh'`` uses the tanh formula.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.GELU()(np.array([0.0, 10.0]))
    array([ 0., 10.])
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def extra_repr(self):
        return f"approximate={self.approximate!r}"

    def _f(self, x):
        if self.approximate == "tanh":
            c = math.sqrt(2 / math.pi)
            inner = c * (x + 0.044715 * x ** 3)
            t = np.tanh(inner)
            y = 0.5 * x * (1 + t)
            dydx = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
        else:
            cdf = 0.5 * (1 + special.erf(x / math.sqrt(2)))
            y = x * cdf
            dydx = cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return y.astype(x.dtype, copy=False), dydx.astype(x.dtype, copy=False)


class _SoftmaxBase(Module):
    def __init__(self, dim=None):
        super().__init__()
        if dim is not None:
            _checks.check_axis(dim, f"{type(self).__name__}: dim", 2 ** 31)
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"

    def _axis(self, x):
        if self.dim is None:        # torch's implicit choice, deprecated there too
            warnings.warn(f"{type(self).__name__} without dim: the implicit choice "
                          f"(torch's rule) is dim={0 if x.ndim in (0, 1, 3) else 1}; pass dim",
                          UserWarning, stacklevel=3)
            return 0 if x.ndim in (0, 1, 3) else 1
        return _checks.check_axis(self.dim, f"{self._label()}: dim", max(x.ndim, 1))

    def forward(self, x):
        x = _validate.float_input(self, x)
        axis = self._axis(x)
        y = self._f(x if x.ndim else x.reshape(1), axis).reshape(x.shape) if x.size else x.copy()
        # a copy for the backward pass: the caller may change y in place (Dropout(inplace))
        self._out = (y.copy(), axis)
        return y


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``, as ``torch.nn.Softmax`` (computed stably).
    For training a classifier prefer :class:`CrossEntropyLoss` on the logits.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.Softmax(dim=1)(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """

    def _f(self, x, axis):
        return special.softmax(x, axis=axis).astype(x.dtype, copy=False)

    def backward(self, grad_output):
        y, axis = self._saved("_out")
        g = _validate.grad_output(self, grad_output, y.shape, y.dtype)
        gy = g * y
        return gy - y * gy.sum(axis=axis if y.ndim else None, keepdims=True)


class LogSoftmax(_SoftmaxBase):
    """``x - log(sum(exp(x)))`` along ``dim``, as ``torch.nn.LogSoftmax``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> np.exp(nn.LogSoftmax(dim=0)(np.array([0.0, np.log(3.0)])))
    array([0.25, 0.75])
    """

    def _f(self, x, axis):
        return special.log_softmax(x, axis=axis).astype(x.dtype, copy=False)

    def backward(self, grad_output):
        y, axis = self._saved("_out")
        g = _validate.grad_output(self, grad_output, y.shape, y.dtype)
        return g - np.exp(y) * g.sum(axis=axis if y.ndim else None, keepdims=True)


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode, scaling the rest by
    ``1 / (1 - p)``; the identity in evaluation mode.

    Parameters
    ----------
    p : float in [0, 1]
    inplace : bool
        Multiply the input array in place (training mode).
    rng : numpy.random.Generator or int, optional
        Draws the masks; None uses the default generator (``nn.manual_seed``) at each call.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> drop = nn.Dropout(0.5, rng=0)
    >>> sorted(set(drop(np.ones(100)).tolist()))
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5, inplace=False, *, rng=None):
        super().__init__()
        self.p = _validate.float_arg(p, "p", "Dropout", 0.0, 1.0)
        self.inplace = _validate.bool_arg(inplace, "inplace", "Dropout")
        self.rng = None if rng is None else resolve_rng(rng)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, x):
        x = _validate.float_input(self, x)
        self._out = x.shape
        if not self.training or self.p == 0:
            self._mask = None
            return x
        if self.p == 1:
            self._mask = np.zeros(x.shape, x.dtype)
        else:
            keep = resolve_rng(self.rng).random(x.shape) >= self.p
            self._mask = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        return np.multiply(x, self._mask, out=_inplace_target(self, x))

    def backward(self, grad_output):
        mask = self._saved("_mask")
        if mask is None:
            return _validate.grad_output(self, grad_output, self._out)
        return _validate.grad_output(self, grad_output, mask.shape, mask.dtype) * mask


class Flatten(Module):
    """Flatten axes ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.Flatten()(np.zeros((4, 3, 1))).shape
    (4, 3)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _validate.int_arg(start_dim, "start_dim", -2 ** 31, "Flatten")
        self.end_dim = _validate.int_arg(end_dim, "end_dim", -2 ** 31, "Flatten")

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, x):
        x = np.asarray(x)
        nd = max(x.ndim, 1)
        start, end = self.start_dim, self.end_dim
        if not (-nd <= start < nd and -nd <= end < nd):
            raise ValueError(f"{self._label()}: dims out of range for input of shape {x.shape}")
        start, end = start % nd, end % nd
        if start > end:
            raise ValueError(f"{self._label()}: start_dim comes after end_dim for input of "
                             f"shape {x.shape}")
        self._shape = x.shape
        if x.ndim == 0:
            self._out = (1,)
        else:
            merged = math.prod(x.shape[start:end + 1])
            self._out = x.shape[:start] + (merged,) + x.shape[end + 1:]
        return x.reshape(self._out)

    def backward(self, grad_output):
        shape = self._saved("_shape")
        return _validate.grad_output(self, grad_output, self._out).reshape(shape)


class Permute(Module):
    """Reorder the axes (``np.transpose(x, dims)``), e.g. ``Permute(0, 2, 1)`` turns an
    embedding's ``(N, L, E)`` into the ``(N, E, L)`` a Conv1d expects.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.Permute(0, 2, 1)(np.zeros((2, 7, 50))).shape
    (2, 50, 7)
    """

    def __init__(self, *dims):
        super().__init__()
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        self.dims = tuple(_validate.int_arg(d, "dims", -2 ** 31, "Permute") for d in dims)
        n = len(self.dims)
        # an axis past either end is an error (as torch's), not one wrapped round to another
        if sorted(d + n if d < 0 else d for d in self.dims) != list(range(n)):
            raise ValueError(f"Permute: dims must be a permutation of 0..{n - 1} (or of "
                             f"-{n}..-1), got {dims}")

    def extra_repr(self):
        return ", ".join(str(d) for d in self.dims)

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != len(self.dims):
            raise ValueError(f"{self._label()}: expected an input with {len(self.dims)} axes, "
                             f"got shape {x.shape}")
        self._perm = tuple(d % x.ndim for d in self.dims)
        y = np.transpose(x, self._perm)
        self._out = y.shape
        return y

    def backward(self, grad_output):
        perm = self._saved("_perm")
        g = _validate.grad_output(self, grad_output, self._out)
        return np.transpose(g, np.argsort(perm))


class Transpose(Module):
    """Swap two axes (``np.swapaxes``); ``Transpose(1, 2)`` maps ``(N, L, E)`` to ``(N, E, L)``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.Transpose(1, 2)(np.zeros((2, 7, 50))).shape
    (2, 50, 7)
    """

    def __init__(self, dim0, dim1):
        super().__init__()
        self.dim0 = _validate.int_arg(dim0, "dim0", -2 ** 31, "Transpose")
        self.dim1 = _validate.int_arg(dim1, "dim1", -2 ** 31, "Transpose")

    def extra_repr(self):
        return f"{self.dim0}, {self.dim1}"

    def forward(self, x):
        x = np.asarray(x)
        if not (-x.ndim <= self.dim0 < x.ndim and -x.ndim <= self.dim1 < x.ndim):
            raise ValueError(f"{self._label()}: axes out of range for input of shape {x.shape}")
        y = np.swapaxes(x, self.dim0, self.dim1)
        self._out = y.shape
        return y

    def backward(self, grad_output):
        g = _validate.grad_output(self, grad_output, self._saved("_out"))
        return np.swapaxes(g, self.dim0, self.dim1)
