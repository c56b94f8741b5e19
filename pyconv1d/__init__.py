"""pyconv1d: fast, deterministic 1D and 2D convolution for speech and NLP on the CPU.

Cython kernels parallelised with OpenMP compute batched, multichannel convolution forward and
backward on numpy arrays, with PyTorch's conventions.
"""
from ._version import __version__

try:
    from . import _conv
except ImportError as exc:  # pragma: no cover - only in an unbuilt source tree
    raise ImportError(
        "pyconv1d's compiled kernels are missing: this is probably the source checkout, not the "
        "installed package. Run Python from another directory after `pip install .`, or build "
        "in place with `pip install -e .` (or `python setup.py build_ext --inplace`)."
    ) from exc
from ._threads import default_num_threads
from .functional import (ConvGrads, choose_algorithm, conv1d, conv1d_backward, conv2d,
                         conv2d_backward)

__all__ = [
    "__version__",
    "ConvGrads",
    "choose_algorithm",
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
    return _conv.openmp_enabled()


# Layers, optimisers and pooling (pyconv1d.nn, pyconv1d.optim)
from . import nn, optim  # noqa: E402
from .functional import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward,  # noqa: E402
                         adaptive_max_pool1d, adaptive_max_pool1d_backward, avg_pool1d,
                         avg_pool1d_backward, avg_pool2d, avg_pool2d_backward, max_pool1d,
                         max_pool1d_backward, max_pool2d, max_pool2d_backward)

__all__ += [
    "nn", "optim",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool1d",
    "adaptive_max_pool1d_backward", "avg_pool1d", "avg_pool1d_backward", "avg_pool2d",
    "avg_pool2d_backward", "max_pool1d", "max_pool1d_backward", "max_pool2d",
    "max_pool2d_backward",
]
