"""Normalisation layers: BatchNorm1d, BatchNorm2d (running statistics) and LayerNorm."""
import math
import numbers

import numpy as np

from .. import functional as F
from . import _validate
from .module import Module, Parameter, float_dtype, get_num_threads

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


def _reset_affine(layer):
    """A normalisation layer's weight (if any) to 1 and bias (if any) to 0, in place."""
    if layer.weight is not None:
        layer.weight.data[...] = 1
    if layer.bias is not None:
        layer.bias.data[...] = 0


class _BatchNorm(Module):
    _ndims = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32, *, bias=True):
        super().__init__()
        owner = type(self).__name__
        self.num_features = _validate.int_arg(num_features, "num_features", 1, owner)
        self.eps = _validate.float_arg(eps, "eps", owner, 0.0, None, lo_open=True)
        self.momentum = None if momentum is None else \
            _validate.float_arg(momentum, "momentum", owner, 0.0, 1.0)
        self.affine = _validate.bool_arg(affine, "affine", owner)
        self.track_running_stats = _validate.bool_arg(track_running_stats,
                                                       "track_running_stats", owner)
        dt = float_dtype(dtype)
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, dt))
            if _validate.bool_arg(bias, "bias", owner):
                self.bias = Parameter(np.zeros(C, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, dt))
            self.register_buffer("running_var", np.ones(C, dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self._dtype = dt

    def reset_running_stats(self):
        """Running mean 0, variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        """The running statistics reset, the scale 1 and the shift 0 (as at construction)."""
        self.reset_running_stats()
        _reset_affine(self)

    def extra_repr(self):
        s = (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
             f"affine={self.affine}, bias={self.bias is not None}, "
             f"track_running_stats={self.track_running_stats}")
        return s + (f", dtype={self._dtype}" if self._dtype != np.float32 else "")

    def forward(self, x):
        layout = self._layout.format(C=self.num_features)
        x = _validate.float_input(self, x, self._ndims, layout, self.num_features, 1,
                                  self._dtype)
        c = self.num_features
        x3 = np.ascontiguousarray(x).reshape(x.shape[0], c, math.prod(x.shape[2:]))
        threads = get_num_threads()
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            count = x.size // c
            # batch statistics of one value are no statistics (torch checks this too when
            # it uses batch statistics in eval mode, without running statistics)
            if count == 1:
                raise ValueError(f"{self._label()}: expected more than 1 value per channel when "
                                 f"using batch statistics (training, or "
                                 f"track_running_stats=False), got input of shape {x.shape}")
            # per-plane sums in float64, the variance from the deviations (two passes)
            mean, var = F._batch_norm_stats(x3, threads)
            # an empty batch (an empty output, as torch) is counted but moves no statistic
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                if count:
                    f = self.momentum if self.momentum is not None else \
                        1.0 / float(self.num_batches_tracked)
                    unbiased = var * count / max(count - 1, 1)
                    self.running_mean[...] = (1 - f) * self.running_mean + f * mean
                    self.running_var[...] = (1 - f) * self.running_var + f * unbiased
        else:
            mean = self.running_mean.astype(np.float64)
            var = self.running_var.astype(np.float64)
        invstd = 1.0 / np.sqrt(var + self.eps)
        scale = invstd if not self.affine else invstd * self.weight.data
        shift = np.zeros(c) if self.bias is None else self.bias.data
        y = F._batch_norm_affine(x3, mean, scale, shift, threads)
        self._cache = (x3, mean, invstd, use_batch, x.shape)
        return y.reshape(x.shape)

    def backward(self, grad_output):
        x3, mean, invstd, use_batch, shape = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, shape, x3.dtype)
        g3 = np.ascontiguousarray(g).reshape(x3.shape)
        c = self.num_features
        threads = get_num_threads()
        # per-channel sums of g and g * xhat (xhat = (x - mean) * invstd), in float64
        sum_g, sum_gd = F._batch_norm_backward_sums(g3, x3, mean, threads)
        sum_gx = sum_gd * invstd
        if self.bias is not None and self.bias.requires_grad:
            self.bias.accumulate_grad(sum_g.astype(g.dtype))
        scale = np.ones(c) if not self.affine else self.weight.data.astype(np.float64)
        if self.affine and self.weight.requires_grad:
            self.weight.accumulate_grad(sum_gx.astype(g.dtype))
        a = invstd * scale                                  # d out / d g, per channel
        if not use_batch:
            return (g3 * a.astype(g3.dtype)[None, :, None]).reshape(shape)
        # (invstd / m) * (m * gxhat - sum(gxhat) - xhat * sum(gxhat * xhat)), gxhat = w * g
        m = max(x3.shape[0] * x3.shape[2], 1)
        return F._batch_norm_affine(x3, mean, -a * invstd * sum_gx / m, -a * sum_g / m,
                                    threads, g3, a).reshape(shape)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)``, as ``torch.nn.BatchNorm1d``.

    Training mode normalises with the batch statistics (biased variance) and updates the
    running ones (unbiased variance, ``momentum``; None: a cumulative average); evaluation mode
    uses the running statistics. ``backward`` reads the input ``forward`` was given (not a
    copy, as the conv layers do): change it in place in between and the gradients follow.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> bn = nn.BatchNorm1d(3)
    >>> bn
    BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> x = np.random.default_rng(0).normal(5, 2, (64, 3)).astype(np.float32)
    >>> bool(abs(bn(x).mean()) < 1e-5), bn.running_mean.round(1).tolist()
    (True, [0.5, 0.5, 0.5])
    """
    _ndims = (2, 3)
    _layout = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)``, as ``torch.nn.BatchNorm2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> nn.BatchNorm2d(4)(np.zeros((2, 4, 5, 5), np.float32)).shape
    (2, 4, 5, 5)
    """
    _ndims = (4,)
    _layout = "(N, {C}, H, W)"


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes, as ``torch.nn.LayerNorm``.

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float
    elementwise_affine : bool
        Learn a per-element ``weight`` (ones) and ``bias`` (zeros).
    bias : bool
    dtype : np.float32 or np.float64

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> ln = nn.LayerNorm(4)
    >>> ln(np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)).round(3)
    array([[-1.342, -0.447,  0.447,  1.342]], dtype=float32)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float32):
        super().__init__()
        owner = type(self).__name__
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(f"{owner}: normalized_shape must be an int or a tuple of ints, got "
                            f"{normalized_shape!r}")
        self.normalized_shape = tuple(_validate.int_arg(n, "normalized_shape", 1, owner)
                                      for n in normalized_shape)
        if not self.normalized_shape:    # no axes: every output would be 0 (torch refuses it)
            raise ValueError(f"{owner}: normalized_shape must name at least one axis, got "
                             f"{normalized_shape!r}")
        self.eps = _validate.float_arg(eps, "eps", owner, 0.0, None, lo_open=True)
        self.elementwise_affine = _validate.bool_arg(elementwise_affine, "elementwise_affine",
                                                     owner)
        dt = float_dtype(dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            if _validate.bool_arg(bias, "bias", owner):
                self.bias = Parameter(np.zeros(self.normalized_shape, dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self._dtype = dt

    def reset_parameters(self):
        """The scale 1 and the shift 0 (as at construction)."""
        _reset_affine(self)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")

    def forward(self, x):
        k = len(self.normalized_shape)
        layout = "(*, " + ", ".join(map(str, self.normalized_shape)) + ")"
        x = _validate.float_input(self, x, None, layout, dtype=self._dtype)
        if x.shape[x.ndim - k:] != self.normalized_shape or x.ndim < k:
            raise ValueError(f"{self._label()}: expected input of shape {layout}, got shape "
                             f"{x.shape}")
        axes = tuple(range(x.ndim - k, x.ndim))
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        var = x64.var(axis=axes, keepdims=True)
        invstd = 1.0 / np.sqrt(var + self.eps)
        xhat = ((x64 - mean) * invstd).astype(x.dtype)
        invstd = invstd.astype(x.dtype)
        y = xhat
        if self.weight is not None:
            y = y * self.weight.data
        if self.bias is not None:
            y = y + self.bias.data
        if y is xhat:         # the caller may change its output in place (Dropout(inplace))
            y = xhat.copy()
        self._cache = (xhat, invstd, axes)
        return y

    def backward(self, grad_output):
        xhat, invstd, axes = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, xhat.shape, xhat.dtype)
        lead = tuple(range(xhat.ndim - len(axes)))
        if self.weight is not None:
            if self.weight.requires_grad:
                self.weight.accumulate_grad((g * xhat).sum(axis=lead))
            gxhat = g * self.weight.data
        else:
            gxhat = g
        if self.bias is not None and self.bias.requires_grad:
            self.bias.accumulate_grad(g.sum(axis=lead))
        m1 = gxhat.mean(axis=axes, keepdims=True)
        m2 = (gxhat * xhat).mean(axis=axes, keepdims=True)
        return invstd * (gxhat - m1 - xhat * m2)
