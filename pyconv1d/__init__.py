"""pyconv1d: fast, deterministic 1D and 2D convolution for speech and NLP on the CPU.

Cython kernels parallelised with OpenMP compute batched, multichannel convolution forward and
backward on numpy arrays, with PyTorch's conventions.
"""
from ._version import __version__
from ._threads import default_num_threads
from .functional import ConvGrads, conv1d, conv1d_backward, conv2d, conv2d_backward
from . import _conv1d

__all__ = [
    "__version__",
    "ConvGrads",
    "conv1d",
    "conv1d_backward",
    "conv2d",
    "conv2d_backward",
    "default_num_threads",
    "openmp_enabled",
]


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (False: a serial build).

    Examples
    --------
    >>> import pyconv1d
    >>> isinstance(pyconv1d.openmp_enabled(), bool)
    True
    """
    return _conv1d.openmp_enabled()
