"""Convolution layers: Conv1d, Conv2d and ConvTranspose1d (PyTorch's arguments and shapes)."""
import itertools

import numpy as np

from .. import _checks
from .. import functional as F
from . import _validate
from .init import reset_weight_and_bias
from .module import Module, Parameter, float_dtype, get_num_threads, resolve_rng

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d"]

#: padding_mode -> numpy.pad mode
_NP_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
             "circular": "wrap"}


def fold_padding(grad, pairs, mode):
    """Gradient of ``np.pad(x, pairs on the trailing axes, mode)``: each padded sample's
    gradient is added back onto the input sample it copied."""
    nd = len(pairs)
    for a, (lo, hi) in enumerate(pairs):
        if lo == 0 and hi == 0:
            continue
        axis = grad.ndim - nd + a
        gm = np.moveaxis(grad, axis, -1)
        n = gm.shape[-1] - lo - hi
        source = np.pad(np.arange(n), (lo, hi), mode=mode)
        out = gm[..., lo:lo + n].copy()
        for j in itertools.chain(range(lo), range(lo + n, lo + n + hi)):
            out[..., source[j]] += gm[..., j]
        grad = np.moveaxis(out, -1, axis)
    return np.ascontiguousarray(grad)


class _ConvNd(Module):
    _nd = 0
    _conv = None
    _conv_backward = None

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, dtype, rng):
        super().__init__()
        nd, owner = self._nd, type(self).__name__
        self.in_channels = _validate.int_arg(in_channels, "in_channels", 1, owner)
        self.out_channels = _validate.int_arg(out_channels, "out_channels", 1, owner)
        self.groups = _validate.int_arg(groups, "groups", 1, owner)
        if self.in_channels % self.groups:
            raise ValueError(f"{owner}: in_channels={in_channels} must be divisible by "
                             f"groups={groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"{owner}: out_channels={out_channels} must be divisible by "
                             f"groups={groups}")
        self.kernel_size = _validate.int_tuple(kernel_size, "kernel_size", nd, 1, owner)
        self.stride = _validate.int_tuple(stride, "stride", nd, 1, owner)
        self.dilation = _validate.int_tuple(dilation, "dilation", nd, 1, owner)
        self.padding, self._fpad = self._normalise_padding(padding, owner)
        if not isinstance(padding_mode, str) or padding_mode not in _NP_MODES:
            raise ValueError(f"{owner}: padding_mode must be one of {sorted(_NP_MODES)}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        dt = float_dtype(dtype)
        self.weight = Parameter(np.empty(_validate.weight_shape(self._weight_shape(), dt, owner),
                                         dt))
        if _validate.bool_arg(bias, "bias", owner):
            self.bias = Parameter(np.empty(self.out_channels, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def _normalise_padding(self, padding, owner):
        """(the padding as shown, the padding as the functional API takes it)."""
        nd = self._nd
        if isinstance(padding, str):
            allowed = ("valid", "same", "causal") if nd == 1 else ("valid", "same")
            if padding.lower() not in allowed:
                raise ValueError(f"{owner}: padding must be an int, a tuple or one of "
                                 f"{allowed}, got {padding!r}")
            return padding.lower(), padding.lower()
        if isinstance(padding, (tuple, list)) and nd == 1 and len(padding) == 1:
            padding = padding[0]
        try:  # validate the form once (sizes do not matter for int and tuple forms)
            _checks.padding_pairs(padding if not isinstance(padding, list) else tuple(padding),
                                  nd, (1,) * nd, (1,) * nd, (1,) * nd)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{owner}: {exc}") from None
        if isinstance(padding, (tuple, list)):
            shown = tuple(tuple(p) if isinstance(p, (tuple, list)) else int(p)
                          for p in padding)
            return shown, shown
        return (int(padding),) * nd, int(padding)

    def reset_parameters(self, rng=None):
        """PyTorch's initialisation: kaiming_uniform_(a=sqrt(5)) weight, U(+-1/sqrt(fan_in))
        bias, drawn from ``rng`` (None: the default generator, see ``nn.manual_seed``)."""
        reset_weight_and_bias(self.weight, self.bias, resolve_rng(rng))

    @property
    def dtype(self):
        """The parameters' dtype."""
        return self.weight.dtype

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        op = getattr(self, "output_padding", None)
        if op is not None and any(op):
            s += f", output_padding={op}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.weight.dtype != np.float32:
            s += f", dtype={self.weight.dtype}"
        return s

    def _layout(self):
        spatial = "L" if self._nd == 1 else "H, W"
        return f"(N, {self.in_channels}, {spatial}) or ({self.in_channels}, {spatial})"

    def _input(self, x):
        nd = self._nd
        x = _validate.float_input(self, x, (nd + 1, nd + 2), self._layout(), self.in_channels,
                                  -(nd + 1), self.weight.dtype)
        return x, x.ndim == nd + 1

    def _explicit_pad(self, xb):
        """For a non-zero padding_mode: the materialised padded input and the pad pairs."""
        nd = self._nd
        extents = tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size))
        pairs = _checks.padding_pairs(self._fpad, nd, xb.shape[2:], extents, self.stride)
        for n, (lo, hi) in zip(xb.shape[2:], pairs):
            too_big = max(lo, hi) >= n if self.padding_mode == "reflect" else \
                max(lo, hi) > n if self.padding_mode == "circular" else False
            if n == 0 and max(lo, hi) > 0:
                raise ValueError(f"{self._label()}: padding_mode={self.padding_mode!r} has "
                                 f"nothing to pad from in an input of shape {xb.shape}")
            if too_big:
                rule = "smaller than" if self.padding_mode == "reflect" else "at most"
                raise ValueError(f"{self._label()}: padding {pairs} with padding_mode="
                                 f"{self.padding_mode!r} must be {rule} the input size, got "
                                 f"input of shape {xb.shape}")
        padded = xb.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(xb.shape[2:], pairs))
        _validate.array_fits(padded, xb.dtype, f"{self._label()}: the input padded to shape "
                                               f"{padded}",
                             f" (padding={self._fpad!r}, padding_mode={self.padding_mode!r})")
        xin = np.pad(xb, ((0, 0), (0, 0)) + tuple(pairs), mode=_NP_MODES[self.padding_mode])
        return xin, pairs

    def forward(self, x):
        x, unbatched = self._input(x)
        xb = x[None] if unbatched else x
        if self.padding_mode == "zeros":
            xin, pad, pairs = xb, self._fpad, None
        else:
            (xin, pairs), pad = self._explicit_pad(xb), 0
        b = None if self.bias is None else self.bias.data
        y = type(self)._conv(xin, self.weight.data, b, self.stride, pad, self.dilation,
                             self.groups, num_threads=get_num_threads())
        self._cache = (xin, pad, pairs, unbatched, y.shape)
        return y[0] if unbatched else y

    def backward(self, grad_output, input_grad=True):
        xin, pad, pairs, unbatched, out_shape = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, out_shape[1:] if unbatched else out_shape,
                                  self.weight.dtype)
        g = g[None] if unbatched else g
        want_b = self.bias is not None and self.bias.requires_grad
        gi, gw, gb = type(self)._conv_backward(
            g, xin, self.weight.data, self.stride, pad, self.dilation, self.groups,
            output_mask=(input_grad, self.weight.requires_grad, want_b),
            num_threads=get_num_threads())
        self.weight.accumulate_grad(gw)
        if want_b:
            self.bias.accumulate_grad(gb)
        if not input_grad:
            return None
        if pairs is not None:
            gi = fold_padding(gi, pairs, _NP_MODES[self.padding_mode])
        return gi[0] if unbatched else gi


class Conv1d(_ConvNd):
    """1D convolution over ``(N, C_in, L)``, as ``torch.nn.Conv1d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int
    padding : int, (left, right), 'valid', 'same' or 'causal'
        'same' keeps ``ceil(L / stride)`` outputs (TensorFlow's rule, also for stride > 1);
        'causal' pads ``dilation * (kernel_size - 1)`` on the left only.
    groups : int
    bias : bool
    padding_mode : 'zeros', 'reflect', 'replicate' or 'circular'
        Non-zero modes pad the input explicitly (``np.pad``) and convolve with padding 0.
    dtype : np.float32 or np.float64
    rng : numpy.random.Generator or int, optional
        For the initialisation; None draws from the default generator (``nn.manual_seed``).

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels / groups, kernel_size)
        Initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in)), ``fan_in = in_channels / groups *
        kernel_size`` (PyTorch's kaiming_uniform_ with a=sqrt(5)).
    bias : Parameter, shape (out_channels,), or None

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> conv = nn.Conv1d(80, 128, 5, padding='same', rng=0)
    >>> conv
    Conv1d(80, 128, kernel_size=(5,), stride=(1,), padding=same)
    >>> x = np.zeros((4, 80, 100), np.float32)
    >>> y = conv(x); y.shape
    (4, 128, 100)
    >>> conv.backward(np.ones_like(y)).shape, conv.weight.grad.shape
    ((4, 80, 100), (128, 80, 5))
    """
    _nd = 1
    _conv = staticmethod(F.conv1d)
    _conv_backward = staticmethod(F.conv1d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32, *,
                 rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class Conv2d(_ConvNd):
    """2D convolution over ``(N, C_in, H, W)``, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or (int, int)
    padding : int, (h, w), ((top, bottom), (left, right)), 'valid' or 'same'
    groups : int
    bias : bool
    padding_mode : 'zeros', 'reflect', 'replicate' or 'circular'
    dtype : np.float32 or np.float64
    rng : numpy.random.Generator or int, optional

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels / groups, kH, kW)
    bias : Parameter, shape (out_channels,), or None

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> conv = nn.Conv2d(1, 8, 3, stride=2, padding=1, rng=0)
    >>> conv
    Conv2d(1, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
    >>> conv(np.zeros((2, 1, 40, 100), np.float32)).shape
    (2, 8, 20, 50)
    """
    _nd = 2
    _conv = staticmethod(F.conv2d)
    _conv_backward = staticmethod(F.conv2d_backward)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32, *,
                 rng=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)


class ConvTranspose1d(_ConvNd):
    """Transposed 1D convolution, as ``torch.nn.ConvTranspose1d``.

    Its forward pass is the input gradient of a :class:`Conv1d` with the same arguments, so
    it maps lengths ``L -> (L - 1)*stride - 2*padding + dilation*(kernel_size - 1) +
    output_padding + 1``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int
    padding : int or (left, right)
        Removed from the output (the padding of the equivalent convolution).
    output_padding : int
        Extra samples on the right of the output; smaller than stride or dilation.
    groups : int
    bias : bool
    dilation : int
    padding_mode : 'zeros'
    dtype : np.float32 or np.float64
    rng : numpy.random.Generator or int, optional

    Attributes
    ----------
    weight : Parameter, shape (in_channels, out_channels / groups, kernel_size)
    bias : Parameter, shape (out_channels,), or None

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> up = nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1, rng=0)
    >>> up(np.zeros((2, 16, 50), np.float32)).shape
    (2, 8, 100)
    """
    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32, *, rng=None):
        owner = type(self).__name__
        if isinstance(padding, str):
            raise ValueError(f"{owner}: padding must be an int or (left, right), got "
                             f"{padding!r}")
        if padding_mode != "zeros":
            raise ValueError(f"{owner}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, rng)
        self.output_padding = (_validate.int_arg(output_padding, "output_padding", 0, owner),)
        if self.output_padding[0] >= max(self.stride[0], self.dilation[0]):
            raise ValueError(f"{owner}: output_padding={output_padding} must be smaller than "
                             f"either stride={self.stride[0]} or dilation="
                             f"{self.dilation[0]}")

    def _weight_shape(self):
        return (self.in_channels, self.out_channels // self.groups) + self.kernel_size

    def _pads(self):
        p = self._fpad
        return (p, p) if isinstance(p, int) else tuple(p)

    def forward(self, x):
        x, unbatched = self._input(x)
        xb = x[None] if unbatched else x
        N, _, L = xb.shape
        (left, right), op = self._pads(), self.output_padding[0]
        extent = self.dilation[0] * (self.kernel_size[0] - 1) + 1
        length = (L - 1) * self.stride[0] - left - right + extent + op
        if length < 1:
            raise ValueError(f"{self._label()}: input of shape {x.shape} gives an output "
                             f"length {length} < 1")
        shape = (N, self.out_channels, length)
        _validate.array_fits(shape, x.dtype, f"{self._label()}: the output of shape {shape}",
                             f" (stride={self.stride[0]}, dilation={self.dilation[0]})")
        # output_padding uncrops up to `op` of the right padding; past that, only the bias
        pads = (left, max(right - op, 0))
        covered = (L - 1) * self.stride[0] - pads[0] - pads[1] + extent
        y = F.conv1d_backward(xb, np.zeros((N, self.out_channels, covered), x.dtype),
                              self.weight.data, self.stride, pads, self.dilation, self.groups,
                              output_mask=(True, False, False),
                              num_threads=get_num_threads()).grad_input
        if length > covered:
            y = np.concatenate([y, np.zeros((N, self.out_channels, length - covered), y.dtype)],
                               axis=2)
        if self.bias is not None:
            y += self.bias.data[:, None]
        self._cache = (xb, unbatched, y.shape, pads, covered)
        return y[0] if unbatched else y

    def backward(self, grad_output, input_grad=True):
        xb, unbatched, out_shape, pads, covered = self._saved("_cache")
        g = _validate.grad_output(self, grad_output, out_shape[1:] if unbatched else out_shape,
                                  self.weight.dtype)
        g = g[None] if unbatched else g
        gc = np.ascontiguousarray(g[:, :, :covered])
        nt = get_num_threads()
        gi = F.conv1d(gc, self.weight.data, None, self.stride, pads, self.dilation,
                      self.groups, num_threads=nt) if input_grad else None
        if self.weight.requires_grad:
            gw = F.conv1d_backward(xb, gc, self.weight.data, self.stride, pads, self.dilation,
                                   self.groups, output_mask=(False, True, False),
                                   num_threads=nt).grad_weight
            self.weight.accumulate_grad(gw)
        if self.bias is not None and self.bias.requires_grad:
            self.bias.accumulate_grad(g.sum(axis=(0, 2)))
        if gi is None:
            return None
        return gi[0] if unbatched else gi
