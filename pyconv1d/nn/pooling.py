"""Pooling layers over the Cython/OpenMP kernels of :mod:`pyconv1d.functional`."""

from .. import functional as F
from . import _validate
from .module import Module, get_num_threads

__all__ = ["MaxPool1d", "AvgPool1d", "AdaptiveMaxPool1d", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d"]


def _as_given(value, name, nd, minimum, owner, one_tuple=False):
    """Validate an int-or-tuple argument and keep PyTorch's way of showing it."""
    checked = _validate.int_tuple(value, name, nd, minimum, owner)
    if one_tuple:
        return checked
    return checked[0] if not isinstance(value, (tuple, list)) or nd == 1 else checked


class _Pool(Module):
    _nd = 1

    def _input(self, x):
        nd = self._nd
        layout = "(N, C, L) or (C, L)" if nd == 1 else "(N, C, H, W) or (C, H, W)"
        return _validate.float_input(self, x, (nd + 1, nd + 2), layout)

    def _reraise(self, exc):
        return type(exc)(f"{self._label()}: {exc}")


class _MaxPoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        owner, nd = type(self).__name__, self._nd

        def norm(v, n, m):
            return _as_given(v, n, nd, m, owner)
        self.kernel_size = norm(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else norm(stride, "stride", 1)
        self.padding = norm(padding, "padding", 0)
        self.dilation = norm(dilation, "dilation", 1)
        self.return_indices = _validate.bool_arg(return_indices, "return_indices", owner)
        self.ceil_mode = _validate.bool_arg(ceil_mode, "ceil_mode", owner)

    def extra_repr(self):
        s = (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
             f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")
        return s + (", return_indices=True" if self.return_indices else "")

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def forward(self, x):
        x = self._input(x)
        pool = F.max_pool1d if self._nd == 1 else F.max_pool2d
        try:
            y, idx = pool(x, *self._args(), return_indices=True, num_threads=get_num_threads())
        except (TypeError, ValueError) as exc:
            raise self._reraise(exc) from None
        self._cache = (x, idx)
        return (y, idx) if self.return_indices else y

    def backward(self, grad_output):
        x, idx = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, idx.shape, x.dtype)
        back = F.max_pool1d_backward if self._nd == 1 else F.max_pool2d_backward
        return back(g, x, *self._args(), indices=idx, num_threads=get_num_threads())


class MaxPool1d(_MaxPoolNd):
    """1D max pooling over ``(N, C, L)``, as ``torch.nn.MaxPool1d`` (padding never wins; the
    first maximum wins ties).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> pool = nn.MaxPool1d(2)
    >>> pool
    MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> pool(np.array([[[1.0, 5.0, 2.0, 0.0]]]))
    array([[[5., 2.]]])
    """
    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2D max pooling over ``(N, C, H, W)``, as ``torch.nn.MaxPool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.MaxPool2d(2)(np.zeros((1, 3, 8, 6))).shape
    (1, 3, 4, 3)
    """
    _nd = 2


class _AvgPoolNd(_Pool):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        owner, nd = type(self).__name__, self._nd

        def norm(v, n, m):   # AvgPool1d shows 1-tuples, as PyTorch
            return _as_given(v, n, nd, m, owner, one_tuple=nd == 1)
        self.kernel_size = norm(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else norm(stride, "stride", 1)
        self.padding = norm(padding, "padding", 0)
        self.ceil_mode = _validate.bool_arg(ceil_mode, "ceil_mode", owner)
        self.count_include_pad = _validate.bool_arg(count_include_pad, "count_include_pad",
                                                    owner)
        if divisor_override is not None:    # checked here, as every other argument
            _validate.int_arg(divisor_override, "divisor_override", 1, owner)
        self.divisor_override = divisor_override

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def _call(self, fn1, fn2, *head):
        args = (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad)
        if self._nd == 1:
            return fn1(*head, *args, num_threads=get_num_threads())
        return fn2(*head, *args, self.divisor_override, num_threads=get_num_threads())

    def forward(self, x):
        x = self._input(x)
        try:
            y = self._call(F.avg_pool1d, F.avg_pool2d, x)
        except (TypeError, ValueError) as exc:
            raise self._reraise(exc) from None
        self._cache = (x, y.shape)
        return y

    def backward(self, grad_output):
        x, shape = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, shape, x.dtype)
        return self._call(F.avg_pool1d_backward, F.avg_pool2d_backward, g, x)


class AvgPool1d(_AvgPoolNd):
    """1D average pooling over ``(N, C, L)``, as ``torch.nn.AvgPool1d``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> pool = nn.AvgPool1d(2)
    >>> pool
    AvgPool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    >>> pool(np.array([[[1.0, 3.0, 2.0, 0.0]]]))
    array([[[2., 1.]]])
    """
    _nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AvgPool2d(_AvgPoolNd):
    """2D average pooling over ``(N, C, H, W)``, as ``torch.nn.AvgPool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.AvgPool2d(2)(np.ones((1, 1, 4, 4)))[0, 0]
    array([[1., 1.],
           [1., 1.]])
    """
    _nd = 2


class AdaptiveMaxPool1d(_Pool):
    """Adaptive 1D max pooling; ``AdaptiveMaxPool1d(1)`` is max-over-time pooling.

    ``forward(x, lengths=None)``: with ``lengths`` (one valid length per sequence of a padded
    batch) positions past each sequence's end are masked out, so padding never wins the max
    and receives no gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> pool = nn.AdaptiveMaxPool1d(1)
    >>> x = np.array([[[1.0, 4.0, 2.0, 9.0]], [[1.0, 4.0, 2.0, 9.0]]])
    >>> pool(x, lengths=[4, 2])[:, :, 0]
    array([[9.],
           [4.]])
    >>> pool.backward(np.ones((2, 1, 1)))[:, 0]
    array([[0., 0., 0., 1.],
           [0., 1., 0., 0.]])
    """

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = _validate.int_arg(output_size, "output_size", 1, "AdaptiveMaxPool1d")
        self.return_indices = _validate.bool_arg(return_indices, "return_indices",
                                                 "AdaptiveMaxPool1d")

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, x, lengths=None):
        x = self._input(x)
        try:
            y, idx = F.adaptive_max_pool1d(x, self.output_size, return_indices=True,
                                           lengths=lengths, num_threads=get_num_threads())
        except (TypeError, ValueError) as exc:
            raise self._reraise(exc) from None
        self._cache = (x, idx)
        return (y, idx) if self.return_indices else y

    def backward(self, grad_output):
        x, idx = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, idx.shape, x.dtype)
        return F.adaptive_max_pool1d_backward(g, x, self.output_size, indices=idx,
                                              num_threads=get_num_threads())


class AdaptiveAvgPool2d(_Pool):
    """Adaptive 2D average pooling; ``AdaptiveAvgPool2d(1)`` is global average pooling.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.AdaptiveAvgPool2d(1)(np.arange(8.0).reshape(1, 2, 2, 2))[:, :, 0, 0]
    array([[1.5, 5.5]])
    """
    _nd = 2

    def __init__(self, output_size):
        super().__init__()
        owner = "AdaptiveAvgPool2d"
        if isinstance(output_size, (tuple, list)):
            if len(output_size) != 2:
                raise ValueError(f"{owner}: output_size must be an int or 2 ints (or None), "
                                 f"got {output_size!r}")
            for o in output_size:
                if o is not None:
                    _validate.int_arg(o, "output_size", 1, owner)
        else:
            _validate.int_arg(output_size, "output_size", 1, owner)
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, x):
        x = self._input(x)
        try:
            y = F.adaptive_avg_pool2d(x, self.output_size, num_threads=get_num_threads())
        except (TypeError, ValueError) as exc:
            raise self._reraise(exc) from None
        self._cache = (x, y.shape)
        return y

    def backward(self, grad_output):
        x, shape = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, shape, x.dtype)
        return F.adaptive_avg_pool2d_backward(g, x, self.output_size,
                                              num_threads=get_num_threads())
