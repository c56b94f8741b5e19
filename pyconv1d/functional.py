"""Convolution as functions on numpy arrays: forward and backward.

Semantics are PyTorch's (cross-correlation, no kernel flip; channels first). Every function
validates its arguments once, through :mod:`pyconv1d._checks`, then hands contiguous arrays to
the Cython kernels, which release the GIL and run in parallel with OpenMP.
"""
from typing import NamedTuple, Optional

import numpy as np

from . import _checks, _conv1d, _conv2d

__all__ = ["ConvGrads", "conv1d", "conv1d_backward", "conv2d", "conv2d_backward"]


class ConvGrads(NamedTuple):
    """Gradients returned by the ``*_backward`` functions (None where not requested)."""
    grad_input: Optional[np.ndarray]
    grad_weight: Optional[np.ndarray]
    grad_bias: Optional[np.ndarray]


def _output_with_bias(args):
    y = np.empty(args.out_shape, dtype=args.x.dtype)
    if args.b is None:
        y.fill(0)
    else:
        y[...] = args.b.reshape((1, -1) + (1,) * (len(args.out_shape) - 2))
    return y


def _geometry(args):
    """The kernels' geometry arguments: strides, leading pads, dilations, groups, threads."""
    return (args.stride + tuple(p[0] for p in args.pads) + args.dilation
            + (args.groups, args.num_threads))


def _forward(kernels, args):
    y = _output_with_bias(args)
    kernels.forward(args.x, args.w, y, *_geometry(args))
    return y[0] if args.unbatched else y


def _backward(kernels, grad_output, args, mask):
    g = _checks.grad_output_array(grad_output, args)
    want_input, want_weight, want_bias = _checks.output_mask(mask)
    flat = _geometry(args)
    grad_input = grad_weight = grad_bias = None
    if want_input:
        grad_input = np.zeros(args.x.shape, dtype=args.x.dtype)
        kernels.grad_input(g, args.w, grad_input, *flat)
        if args.unbatched:
            grad_input = grad_input[0]
    if want_weight:
        grad_weight = np.empty(args.w.shape, dtype=args.x.dtype)
        kernels.grad_weight(g, args.x, grad_weight, *flat)
    if want_bias:
        axes = (0,) + tuple(range(2, g.ndim))
        grad_bias = g.sum(axis=axes, dtype=g.dtype) if g.shape[0] else \
            np.zeros(g.shape[1], dtype=g.dtype)
    return ConvGrads(grad_input, grad_weight, grad_bias)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           num_threads=None):
    """Batched, multichannel 1D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    ``out[n, o, t] = bias[o] + sum_{c, k} weight[o, c, k] * x[n, g*C_in/groups + c,
    t*stride + k*dilation - left]`` where ``x`` is the zero-padded input and ``g`` the group of
    output channel ``o``.

    Parameters
    ----------
    input : array_like, shape (N, C_in, L) or (C_in, L)
        float32 or float64. Any layout (sliced, Fortran-ordered, read-only) is accepted.
    weight : array_like, shape (C_out, C_in / groups, K)
        Same dtype as ``input``.
    bias : array_like, shape (C_out,), optional
    stride, dilation : int
        Positive.
    padding : int, (left, right), 'valid', 'same' or 'causal'
        ``'same'`` gives ``ceil(L / stride)`` outputs with the total padding
        ``max((L_out - 1)*stride + dilation*(K - 1) + 1 - L, 0)`` split ``total // 2`` on the
        left and the rest on the right (PyTorch for stride 1, TensorFlow for any stride).
        ``'causal'`` pads ``dilation*(K - 1)`` on the left only, so output ``t`` depends on no
        input after ``t*stride``.
    groups : int
        Divides both channel counts; ``groups == C_in`` is a depthwise convolution.
    num_threads : int, optional
        OpenMP threads; None uses OpenMP's default (``OMP_NUM_THREADS``). The result is
        bitwise the same for every value.

    Returns
    -------
    ndarray, shape (N, C_out, L_out) or (C_out, L_out)
        ``L_out = floor((L + left + right - dilation*(K - 1) - 1) / stride) + 1``; the dtype of
        ``input``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv1d
    >>> x = np.arange(6, dtype=np.float64).reshape(1, 1, 6)
    >>> w = np.array([[[1.0, 0.0, -1.0]]])
    >>> conv1d(x, w)
    array([[[-2., -2., -2., -2.]]])
    >>> conv1d(x, w, padding='causal').shape
    (1, 1, 6)
    """
    args = _checks.conv_args(input, weight, bias, stride, padding, dilation, groups,
                             num_threads, nd=1)
    return _forward(_conv1d, args)


def conv1d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    output_mask=(True, True, True), num_threads=None):
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    The input gradient is the convolution run in reverse (``grad_output`` convolved, not
    correlated, with the kernel, scattered back through the stride); the weight gradient is the
    input correlated with ``grad_output``; the bias gradient sums ``grad_output`` over the batch
    and time.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, L_out) or (C_out, L_out)
        Gradient of the loss with respect to the output of ``conv1d(input, weight, ...)``.
    input, weight, stride, padding, dilation, groups, num_threads
        As given to :func:`conv1d`.
    output_mask : three bools, optional
        Which of (grad_input, grad_weight, grad_bias) to compute; the others are None.

    Returns
    -------
    ConvGrads
        ``(grad_input, grad_weight, grad_bias)`` with the shapes of input, weight and
        ``(C_out,)``. Bitwise the same for every ``num_threads``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv1d_backward
    >>> x = np.ones((1, 1, 5))
    >>> w = np.array([[[1.0, 2.0]]])
    >>> gi, gw, gb = conv1d_backward(np.ones((1, 1, 4)), x, w)
    >>> gi
    array([[[1., 3., 3., 3., 2.]]])
    >>> gw, gb
    (array([[[4., 4.]]]), array([4.]))
    """
    args = _checks.conv_args(input, weight, None, stride, padding, dilation, groups,
                             num_threads, nd=1)
    return _backward(_conv1d, grad_output, args, output_mask)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           num_threads=None):
    """Batched, multichannel 2D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    ``out[n, o, p, q] = bias[o] + sum_{c, i, j} weight[o, c, i, j] * x[n, g*C_in/groups + c,
    p*sh + i*dh - top, q*sw + j*dw - left]`` on the zero-padded input ``x``.

    Parameters
    ----------
    input : array_like, shape (N, C_in, H, W) or (C_in, H, W)
        float32 or float64, any layout.
    weight : array_like, shape (C_out, C_in / groups, kH, kW)
    bias : array_like, shape (C_out,), optional
    stride, dilation : int or (int, int)
    padding : int, (h, w), ((top, bottom), (left, right)), 'valid' or 'same'
        An ``(h, w)`` pair pads both sides of each axis alike; ``'same'`` follows the conv1d
        rule on each axis (``ceil(size / stride)`` outputs, the odd sample after).
    groups : int
    num_threads : int, optional
        OpenMP threads (None: OpenMP's default). Bitwise the same result for every value.

    Returns
    -------
    ndarray, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv2d
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((2, 1, 3, 3))
    >>> conv2d(x, w, padding='same').shape
    (1, 2, 4, 4)
    >>> conv2d(x, w)[0, 0]
    array([[45., 54.],
           [81., 90.]])
    """
    args = _checks.conv_args(input, weight, bias, stride, padding, dilation, groups,
                             num_threads, nd=2)
    return _forward(_conv2d, args)


def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    output_mask=(True, True, True), num_threads=None):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, H_out, W_out) or (C_out, H_out, W_out)
    input, weight, stride, padding, dilation, groups, num_threads
        As given to :func:`conv2d`.
    output_mask : three bools, optional
        Which of (grad_input, grad_weight, grad_bias) to compute; the others are None.

    Returns
    -------
    ConvGrads
        ``(grad_input, grad_weight, grad_bias)``, bitwise the same for every ``num_threads``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import conv2d_backward
    >>> x = np.ones((1, 1, 3, 3))
    >>> w = np.ones((1, 1, 2, 2))
    >>> gi, gw, gb = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> gi[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> gb
    array([4.])
    """
    args = _checks.conv_args(input, weight, None, stride, padding, dilation, groups,
                             num_threads, nd=2)
    return _backward(_conv2d, grad_output, args, output_mask)
