"""Losses: ``forward(input, target)`` returns the loss (a float, or an array with
``reduction='none'``); ``backward()`` returns the gradient of the loss with respect to input."""
import math

import numpy as np
from scipy import special

from . import _validate
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""

    def _input(self, x):
        return _validate.float_input(self, x)

    def _real_target(self, target, shape, dtype):
        """A real-valued target of exactly the input's shape (no broadcasting)."""
        t = np.asarray(target)
        if t.dtype.kind not in "biuf":
            raise TypeError(f"{self._label()}: target must be a real-valued array, got dtype "
                            f"{t.dtype}")
        if t.shape != shape:
            raise ValueError(f"{self._label()}: target shape {t.shape} must equal the input "
                             f"shape {shape} (no broadcasting)")
        return t.astype(dtype, copy=False)

    def _reduce(self, per_element):
        if self.reduction == "sum":
            return float(per_element.sum())
        if self.reduction == "mean":
            return float(per_element.mean()) if per_element.size else float("nan")
        return per_element

    def _upstream(self, grad_output, shape, dtype):
        """d(loss)/d(per-element loss) times grad_output, before any mean scaling."""
        if self.reduction == "none":
            if grad_output is None:
                return np.ones(shape, dtype)
            return _validate.grad_output(self, grad_output, shape, dtype)
        if grad_output is None:
            return 1.0
        return float(_validate.grad_output(self, grad_output, (), None))


class CrossEntropyLoss(_Loss):
    """Cross entropy between logits and integer class labels, as ``torch.nn.CrossEntropyLoss``.

    A numerically stable log-softmax over axis 1 (the class axis) of ``input`` ``(N, C)``,
    ``(N, C, d1, ...)`` or ``(C,)``, against ``target`` ``(N,)``, ``(N, d1, ...)`` or ``()``.

    Parameters
    ----------
    weight : array_like, shape (C,), optional
        Per-class weights; the mean divides by the summed weights of the targets.
    ignore_index : int
        Targets equal to it contribute nothing (and are not counted by the mean).
    reduction : 'mean', 'sum' or 'none'
    label_smoothing : float in [0, 1]
        The target becomes ``(1 - s) * one_hot + s / C``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> loss_fn = nn.CrossEntropyLoss()
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]], np.float32)
    >>> round(loss_fn(logits, np.array([0, 0])), 4)
    1.1269
    >>> loss_fn.backward().round(3)
    array([[-0.06,  0.06],
           [-0.44,  0.44]], dtype=float32)
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        owner = type(self).__name__
        weight = _validate.weights_arg(weight, "weight", owner)
        if weight is not None:
            if weight.ndim != 1:
                raise ValueError(f"{owner}: weight must be 1-D (one per class), got shape "
                                 f"{weight.shape}")
        self.register_buffer("weight", weight)          # in the state dict, as torch's
        self.ignore_index = _validate.int_arg(ignore_index, "ignore_index", -2 ** 63, owner)
        self.label_smoothing = _validate.float_arg(label_smoothing, "label_smoothing", owner,
                                                   0.0, 1.0)

    def extra_repr(self):
        parts = [super().extra_repr()]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(p for p in parts if p)

    def forward(self, input, target):
        x = self._input(input)
        t = np.asarray(target)
        if t.dtype == np.bool_ or not np.issubdtype(t.dtype, np.integer):
            raise TypeError(f"{self._label()}: target must hold integer class indices, got "
                            f"dtype {t.dtype} (class probabilities are not supported)")
        if x.ndim < 1:
            raise ValueError(f"{self._label()}: input must be (N, C), (N, C, d1, ...) or (C,), "
                             f"got shape {x.shape}")
        unbatched = x.ndim == 1
        xb = x[None] if unbatched else x
        tb = t[None] if unbatched else t
        expected = (xb.shape[0],) + xb.shape[2:]
        if tb.shape != expected:
            want = "()" if unbatched else str(expected)
            raise ValueError(f"{self._label()}: target shape {t.shape} does not match input "
                             f"shape {x.shape} (expected target shape {want})")
        C = xb.shape[1]
        if C == 0:
            raise ValueError(f"{self._label()}: input must have at least one class, got shape "
                             f"{x.shape}")
        if self.weight is not None and self.weight.shape != (C,):
            raise ValueError(f"{self._label()}: weight of shape {self.weight.shape} does not "
                             f"match the {C} classes of input shape {x.shape}")
        logits = np.moveaxis(xb, 1, -1).reshape(-1, C).astype(np.float64)
        if t.dtype.kind == "u" and t.size and t.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{self._label()}: target values must lie in [0, {C}) or equal "
                             f"ignore_index={self.ignore_index}, got {t.max()}")
        labels = tb.reshape(-1).astype(np.int64)
        valid = labels != self.ignore_index
        bad = valid & ((labels < 0) | (labels >= C))
        if bad.any():
            raise ValueError(f"{self._label()}: target values must lie in [0, {C}) or equal "
                             f"ignore_index={self.ignore_index}, got {labels[bad][0]} (input "
                             f"shape {x.shape})")
        safe = np.where(valid, labels, 0)
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        w = np.ones(C) if self.weight is None else self.weight
        wt = np.where(valid, w[safe], 0.0)              # weight of each element's target
        nll = -wt * logp[np.arange(len(safe)), safe]
        smooth = np.where(valid, -(logp * w).sum(axis=1), 0.0)
        s = self.label_smoothing
        per = (1 - s) * nll + (s / C) * smooth
        if self.reduction == "mean":
            denom = wt.sum() if self.weight is not None else float(valid.sum())
            # nothing to average (denom 0): nan, as torch (the smoothing term alone gave inf)
            loss = float(per.sum() / denom) if denom else math.nan
        elif self.reduction == "sum":
            denom = 1.0
            loss = float(per.sum())
        else:
            denom = 1.0
            loss = per.reshape(tb.shape).astype(x.dtype)
            loss = loss[0] if unbatched else loss
        self._cache = (x.shape, x.dtype, unbatched, xb.shape, np.exp(logp), safe, valid, wt, w,
                       denom, tb.shape)
        return loss

    def backward(self, grad_output=None):
        shape, dtype, unbatched, bshape, p, safe, valid, wt, w, denom, tshape = \
            self._saved("_cache")
        C = bshape[1]
        s = self.label_smoothing
        loss_shape = (tshape[1:] if unbatched else tshape)
        up = self._upstream(grad_output, loss_shape, np.float64)
        coef = np.reshape(up, -1) if self.reduction == "none" else up
        # nothing to average (denom 0): torch's 0/0, nan for the counted targets; the rows of
        # ignored targets (all of them when none is counted, or the batch is empty) stay 0
        coef = coef / denom if denom else coef * math.nan
        n = len(safe)
        g = (1 - s) * wt[:, None] * p
        g[np.arange(n), safe] -= (1 - s) * wt
        g += (s / C) * (p * w.sum() - w)
        g *= coef[:, None] if np.ndim(coef) else coef
        g[~valid] = 0                   # after the scaling: ignored rows stay 0 when it is nan
        g = np.moveaxis(g.reshape((bshape[0],) + bshape[2:] + (C,)), -1, 1)
        g = g[0] if unbatched else g
        return np.ascontiguousarray(g, dtype=dtype)


class MSELoss(_Loss):
    """Mean squared error, as ``torch.nn.MSELoss``; input and target must have one shape.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> mse = nn.MSELoss()
    >>> mse(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    2.5
    >>> mse.backward()
    array([1., 2.])
    """

    def forward(self, input, target):
        x = self._input(input)
        t = self._real_target(target, x.shape, x.dtype)
        diff = x - t
        self._cache = (diff,)
        return self._reduce(diff * diff)

    def backward(self, grad_output=None):
        (diff,) = self._saved("_cache")
        up = self._upstream(grad_output, diff.shape, diff.dtype)
        scale = 1.0 / max(diff.size, 1) if self.reduction == "mean" else 1.0
        return (2 * scale * up * diff).astype(diff.dtype, copy=False)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy on logits (stable), as ``torch.nn.BCEWithLogitsLoss``.

    ``loss = -weight * (pos_weight * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x)))``.

    Parameters
    ----------
    weight : array_like, optional
        Broadcast against the input (its shape must broadcast to the input's).
    reduction : 'mean', 'sum' or 'none'
    pos_weight : array_like, optional
        Weight of the positive class, broadcast along the last axis (one per class).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> bce = nn.BCEWithLogitsLoss()
    >>> round(bce(np.array([0.0, 0.0]), np.array([1.0, 0.0])), 4)
    0.6931
    >>> bce.backward()
    array([-0.25,  0.25])
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        owner = type(self).__name__
        self.register_buffer("weight", _validate.weights_arg(weight, "weight", owner))
        self.register_buffer("pos_weight", _validate.weights_arg(pos_weight, "pos_weight", owner))

    def _broadcastable(self, arr, name, shape):
        try:
            ok = np.broadcast_shapes(arr.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{self._label()}: {name} of shape {arr.shape} does not broadcast "
                             f"to the input shape {shape}")

    def forward(self, input, target):
        x = self._input(input)
        y = self._real_target(target, x.shape, np.float64)
        xd = x.astype(np.float64)
        pw = 1.0
        if self.pos_weight is not None:
            self._broadcastable(self.pos_weight, "pos_weight", x.shape)
            pw = self.pos_weight
        w = 1.0
        if self.weight is not None:
            self._broadcastable(self.weight, "weight", x.shape)
            w = self.weight
        # log(1 + exp(-x)) without overflow
        softplus_neg = np.logaddexp(0.0, -xd)
        per = w * ((1 - y) * xd + (1 + (pw - 1) * y) * softplus_neg)
        sig = special.expit(xd)
        self._cache = (x.shape, x.dtype, w * (sig * (pw * y + 1 - y) - pw * y))
        loss = self._reduce(per)
        return loss.astype(x.dtype) if self.reduction == "none" else loss

    def backward(self, grad_output=None):
        shape, dtype, dloss = self._saved("_cache")
        up = self._upstream(grad_output, shape, np.float64)
        scale = 1.0 / max(dloss.size, 1) if self.reduction == "mean" else 1.0
        return (scale * up * dloss).astype(dtype)
