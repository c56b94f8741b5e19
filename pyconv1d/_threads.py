"""Resolve the ``num_threads`` argument of every kernel call."""
import numbers

from . import _conv

#: More threads than this is surely a mistake (and would try to start them all).
MAX_THREADS = 4096


def default_num_threads():
    """OpenMP's default team size: honours ``OMP_NUM_THREADS`` (at most MAX_THREADS); 1 in
    a serial build."""
    return min(int(_conv.max_threads()), MAX_THREADS)


def resolve_num_threads(num_threads):
    """Return a positive int thread count for the kernels.

    ``None`` means OpenMP's default; anything else must be an int in [1, MAX_THREADS].
    """
    if num_threads is None:
        return default_num_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(f"num_threads must be None or a positive int, got {num_threads!r}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be None or a positive int, got {num_threads!r}")
    if num_threads > MAX_THREADS:
        raise ValueError(f"num_threads must be at most {MAX_THREADS}, got {num_threads!r}")
    return int(num_threads)
