"""Shared machinery for the pyconv1d peer benchmarks.

What a benchmark script does with it
------------------------------------
For every case (a convolution shape), dtype, thread count and mode (``fwd`` or ``fwd+bwd``) it

1. builds seeded random inputs and, once per case/dtype/mode, a float64 reference result with the
   numpy im2col+matmul implementation below (``im2col_forward`` / ``im2col_backward``);
2. calls every implementation once (the warm-up) and checks its result against that reference;
   a mismatch or an exception is reported in the ``check`` column, never silently timed;
3. times the implementations *interleaved*: each repeat runs every implementation once, starting
   from a different one each round, so that machine noise (other jobs on a shared machine, clock
   changes) hits all of them alike; a call faster than ``--min-sample`` seconds is looped
   ``number`` times per sample; the figure reported is the median sample;
4. prints one Markdown row with the median milliseconds of each peer, pyconv1d's GFLOP/s, its
   fraction of the GEMM GFLOP/s measured in the same run, and the time ratios
   ``torch/pyconv1d`` and ``im2col/pyconv1d`` (> 1 means pyconv1d is faster).

Peers
-----
``pyconv1d``  the library under test, ``num_threads=`` set to the row's thread count.
``im2col``    numpy im2col (or col2im) plus one matmul per group. It uses numpy's BLAS, whose thread
              count is limited with threadpoolctl when that is importable and is otherwise left as
              numpy found it (the header says which): BLAS threads cannot be set from inside a
              process that has already imported numpy.
``torch``     ``torch.nn.functional.conv1d/conv2d`` (optional: used only when ``import torch``
              works), ``torch.set_num_threads(threads)``; forward under ``torch.no_grad()``,
              forward+backward through autograd with input, weight and bias all requiring grad.

FLOP counts
-----------
Forward: ``2 * N * C_out * (C_in/groups) * prod(kernel) * prod(out_size)`` (a multiply-add is two
flops; the bias is not counted). Backward computes the input gradient and the weight gradient,
each costing as much as the forward, so forward+backward counts ``3 x`` forward (the bias gradient,
a plain sum, is not counted). Every peer computes all three gradients, so the counts are the same.

GEMM figure
-----------
The same run measures numpy's ``float32`` (sgemm) and ``float64`` (dgemm) matmul of two n x n
matrices (n=2048, 1024 with ``--quick``; best of several) at each thread count (when threadpoolctl
can limit them; otherwise once, at numpy's default). ``frac gemm`` is pyconv1d's GFLOP/s over the GEMM of the same
dtype and thread count: a rough "how far from the machine's practical peak" figure.

Running
-------
From the repository root, with pyconv1d built (``python setup.py build_ext --inplace`` or
``pip install -e . --no-build-isolation``)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv1d.py --quick
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv1d.py \
        --threads 1 2 --dtype float32 --json conv1d.json --md conv1d.md

Benchmark runs use ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``: those variables, where the
environment sets them, make OpenBLAS (numpy's and scipy's BLAS) pick a kernel family and cache size
that may not be this CPU's, which would distort the im2col peer and the GEMM figure. They are read
when OpenBLAS loads, so they cannot be dropped from inside the script; it only warns when they are
set. Tests never unset them.

Two OpenMP runtimes may live in one process (pyconv1d's libgomp and torch's own). Their idle worker
threads spin for a while after a parallel region; the timer therefore sleeps ``--settle`` seconds
(not timed) between different implementations, so one peer's spinning threads do not steal the
cores of the next. 0.1 s is enough here: with 2 ms, 2-thread rows of shapes that ran 2x faster on
their own measured 0.9-1.3x (the other peer's threads still spun on both cores).
``OMP_WAIT_POLICY=passive`` removes the spinning altogether, for both.

After that sleep, each sample starts with one untimed call of its implementation (``--rewarm``,
the default): threads that went to sleep during the pause wake on that call, and the sample
times calls in a steady stream, as a training loop makes them. On this project's 2-core virtual
machine a worker thread woken after a pause sometimes takes milliseconds to run, which made
short 2-thread calls of both peers 1.1-4x slower in the first call of a sample (``textcnn``
forward+backward: 67-72 % of sgemm without, 74-77 % with). ``--no-rewarm`` times the old way.

Run time on 2 cores: ``bench_conv1d.py --quick`` (2 repeats) a few minutes, the full suite
(7 repeats) roughly three times that; narrow it with ``--filter``, ``--dtype``, ``--threads``,
``--mode``. The header records the load average: multi-thread rows on a machine busy with other
work are noisy, and the warning says so.

Speed is only ever reported, as ratios; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

try:  # optional peer
    import torch
    import torch.nn.functional as torch_F
except Exception:  # pragma: no cover - depends on the environment
    torch = None
    torch_F = None

try:  # optional: lets the im2col peer and the GEMM figure use the row's thread count
    from threadpoolctl import threadpool_info, threadpool_limits
except Exception:  # pragma: no cover - depends on the environment
    threadpool_info = None
    threadpool_limits = None


def _import_pyconv1d():
    """Import pyconv1d; fall back to the repository root (an in-place build) if needed."""
    try:
        import pyconv1d
        return pyconv1d, None
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not raised
        first = exc
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
        try:
            import pyconv1d
            return pyconv1d, None
        except Exception as exc:  # noqa: BLE001
            first = exc
    return None, f"{type(first).__name__}: {first}"


pyconv1d, PYCONV1D_IMPORT_ERROR = _import_pyconv1d()

MODES = ("fwd", "fwd+bwd")
DTYPES = ("float32", "float64")
PEERS = ("pyconv1d", "im2col", "torch")


# --------------------------------------------------------------------------------------------
# Cases and FLOP counts
# --------------------------------------------------------------------------------------------

def _tuple(v, nd: int) -> Tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        if len(v) != nd:
            raise ValueError(f"expected {nd} values, got {v!r}")
        return tuple(int(a) for a in v)
    return (int(v),) * nd


@dataclass
class Case:
    """One convolution shape: input (N, C_in, *size), weight (C_out, C_in/groups, *kernel)."""

    name: str
    N: int
    C_in: int
    C_out: int
    size: Tuple[int, ...]
    kernel: Tuple[int, ...]
    stride: Tuple[int, ...] = ()
    padding: Tuple[int, ...] = ()
    dilation: Tuple[int, ...] = ()
    groups: int = 1
    bias: bool = True
    note: str = ""

    def __post_init__(self):
        nd = len(self.size)
        self.size = _tuple(self.size, nd)
        self.kernel = _tuple(self.kernel, nd)
        self.stride = _tuple(self.stride or 1, nd)
        self.padding = _tuple(self.padding or 0, nd)
        self.dilation = _tuple(self.dilation or 1, nd)
        if self.C_in % self.groups or self.C_out % self.groups:
            raise ValueError(f"{self.name}: channels not divisible by groups={self.groups}")
        if any(o <= 0 for o in self.out_size):
            raise ValueError(f"{self.name}: empty output {self.out_size}")

    @property
    def ndim(self) -> int:
        return len(self.size)

    @property
    def out_size(self) -> Tuple[int, ...]:
        return tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                     for s, k, st, p, d in zip(self.size, self.kernel, self.stride,
                                                self.padding, self.dilation))

    @property
    def x_shape(self):
        return (self.N, self.C_in) + self.size

    @property
    def w_shape(self):
        return (self.C_out, self.C_in // self.groups) + self.kernel

    @property
    def y_shape(self):
        return (self.N, self.C_out) + self.out_size

    def flops(self, mode: str) -> float:
        fwd = (2.0 * self.N * self.C_out * (self.C_in // self.groups)
               * math.prod(self.kernel) * math.prod(self.out_size))
        return fwd if mode == "fwd" else 3.0 * fwd

    def conv_kwargs(self) -> dict:
        """stride/padding/dilation/groups, as ints where all dimensions agree."""
        def s(t):
            return t[0] if len(set(t)) == 1 else tuple(t)
        return dict(stride=s(self.stride), padding=s(self.padding),
                    dilation=s(self.dilation), groups=self.groups)

    def reduction_lengths(self, mode: str) -> List[int]:
        """Lengths of the sums behind each output array (sets the float32 tolerance)."""
        k = math.prod(self.kernel)
        out = [self.C_in // self.groups * k]
        if mode != "fwd":
            npos = self.N * math.prod(self.out_size)
            out += [self.C_out // self.groups * k, npos, npos]
        return out

    def describe(self) -> str:
        sz = "x".join(map(str, self.size))
        ks = "x".join(map(str, self.kernel))
        parts = [f"N={self.N} C={self.C_in}->{self.C_out} {'L' if self.ndim == 1 else 'HxW'}={sz}"
                 f" K={ks}"]
        if set(self.stride) != {1}:
            parts.append(f"s={'x'.join(map(str, self.stride))}")
        if set(self.padding) != {0}:
            parts.append(f"p={'x'.join(map(str, self.padding))}")
        if set(self.dilation) != {1}:
            parts.append(f"d={'x'.join(map(str, self.dilation))}")
        if self.groups != 1:
            parts.append(f"g={self.groups}")
        return " ".join(parts)


# --------------------------------------------------------------------------------------------
# numpy im2col + matmul reference (forward and backward, any stride/padding/dilation/groups)
# --------------------------------------------------------------------------------------------

def _pad(x: np.ndarray, padding: Sequence[int]) -> np.ndarray:
    if not any(padding):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])


def _windows(xp: np.ndarray, kernel, stride, dilation, out_size) -> np.ndarray:
    """Read-only view (N, C, *kernel, *out_size) of the padded input xp (N, C, *S)."""
    s = xp.strides
    nd = len(kernel)
    shape = xp.shape[:2] + tuple(kernel) + tuple(out_size)
    strides = (s[:2] + tuple(s[2 + i] * dilation[i] for i in range(nd))
               + tuple(s[2 + i] * stride[i] for i in range(nd)))
    return as_strided(xp, shape, strides, writeable=False)


def _im2col(x, kernel, stride, padding, dilation, groups, out_size) -> np.ndarray:
    """Columns (groups, C_in/groups * prod(kernel), N * prod(out_size)): one GEMM per group."""
    N, C = x.shape[:2]
    nd = len(kernel)
    win = _windows(_pad(x, padding), kernel, stride, dilation, out_size)
    win = win.reshape((N, groups, C // groups) + tuple(kernel) + tuple(out_size))
    # (groups, C/g, *kernel, N, *out): the copy below is the im2col proper
    order = (1, 2) + tuple(range(3, 3 + nd)) + (0,) + tuple(range(3 + nd, 3 + 2 * nd))
    cols = np.ascontiguousarray(win.transpose(order))
    return cols.reshape(groups, (C // groups) * math.prod(kernel), N * math.prod(out_size))


def _geometry(x_shape, w_shape, stride, padding, dilation):
    nd = len(x_shape) - 2
    kernel = tuple(w_shape[2:])
    stride, padding, dilation = (_tuple(v, nd) for v in (stride, padding, dilation))
    out = tuple((s + 2 * p - d * (k - 1) - 1) // st + 1
                for s, k, st, p, d in zip(x_shape[2:], kernel, stride, padding, dilation))
    return nd, kernel, stride, padding, dilation, out


def im2col_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation, PyTorch's conv1d/conv2d semantics, by im2col + matmul.

    ``out[n, o, t] = b[o] + sum_{c,k} w[o, c, k] * x[n, g*C_in/groups + c, t*stride + k*dilation - pad]``
    with ``g = o // (C_out/groups)``; x (N, C_in, *S), w (C_out, C_in/groups, *K).
    """
    nd, kernel, stride, padding, dilation, out = _geometry(x.shape, weight.shape, stride,
                                                           padding, dilation)
    N = x.shape[0]
    C_out = weight.shape[0]
    cols = _im2col(x, kernel, stride, padding, dilation, groups, out)
    wg = weight.reshape(groups, C_out // groups, -1)
    y = np.matmul(wg, cols)                                      # (g, C_out/g, N*P)
    y = y.reshape((C_out, N) + out)
    y = np.ascontiguousarray(np.moveaxis(y, 1, 0))               # (N, C_out, *out)
    if bias is not None:
        y += bias.reshape((1, C_out) + (1,) * nd)
    return y


def im2col_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_input, grad_weight, grad_bias) of :func:`im2col_forward`, by im2col and col2im."""
    nd, kernel, stride, padding, dilation, out = _geometry(x.shape, weight.shape, stride,
                                                           padding, dilation)
    N, C_in = x.shape[:2]
    C_out = weight.shape[0]
    Cg, Og = C_in // groups, C_out // groups
    P = math.prod(out)
    # grad_output as (g, C_out/g, N*P)
    go = np.ascontiguousarray(np.moveaxis(grad_output, 0, 1)).reshape(groups, Og, N * P)
    grad_bias = grad_output.sum(axis=(0,) + tuple(range(2, 2 + nd)))

    cols = _im2col(x, kernel, stride, padding, dilation, groups, out)
    grad_weight = np.matmul(go, cols.transpose(0, 2, 1)).reshape(weight.shape)
    del cols

    wg = weight.reshape(groups, Og, Cg * math.prod(kernel))
    gcols = np.matmul(wg.transpose(0, 2, 1), go)                 # (g, Cg*K, N*P)
    gcols = gcols.reshape((groups, Cg) + kernel + (N,) + out)
    padded = tuple(s + 2 * p for s, p in zip(x.shape[2:], padding))
    gxp = np.zeros((N, groups, Cg) + padded, dtype=np.result_type(grad_output, weight))
    # col2im: add each kernel tap's columns back at its strided, dilated offset
    to_ngc = (2, 0, 1) + tuple(range(3, 3 + nd))    # (g, Cg, N, *out) -> (N, g, Cg, *out)
    for tap in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(slice(t * d, t * d + st * (o - 1) + 1, st)
                   for t, d, st, o in zip(tap, dilation, stride, out))
        gxp[(slice(None),) * 3 + sl] += gcols[(slice(None),) * 2 + tap].transpose(to_ngc)
    gxp = gxp.reshape((N, C_in) + padded)
    crop = tuple(slice(p, p + s) for p, s in zip(padding, x.shape[2:]))
    grad_input = np.ascontiguousarray(gxp[(slice(None),) * 2 + crop])
    return grad_input, grad_weight, grad_bias


# --------------------------------------------------------------------------------------------
# Thread control and environment
# --------------------------------------------------------------------------------------------

class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def blas_limit(threads: Optional[int]):
    """Context limiting numpy's/scipy's BLAS to ``threads`` when threadpoolctl is available."""
    if threads is None or threadpool_limits is None:
        return _NullContext()
    return threadpool_limits(limits=threads, user_api="blas")


def blas_thread_control() -> str:
    return "threadpoolctl" if threadpool_limits is not None else "none (numpy's default)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment_info() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "torch": getattr(torch, "__version__", None),
        "pyconv1d": getattr(pyconv1d, "__version__", None),
        "pyconv1d_import_error": PYCONV1D_IMPORT_ERROR,
        "openmp_enabled": None,
        "blas_thread_control": blas_thread_control(),
        "loadavg_start": _loadavg(),
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                            "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                            "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                if k in os.environ},
    }
    try:
        import scipy
        info["scipy"] = scipy.__version__
    except Exception:  # noqa: BLE001
        info["scipy"] = None
    if pyconv1d is not None and hasattr(pyconv1d, "openmp_enabled"):
        try:
            info["openmp_enabled"] = bool(pyconv1d.openmp_enabled())
        except Exception as exc:  # noqa: BLE001
            info["openmp_enabled"] = f"error: {exc}"
    if threadpool_info is not None:
        try:
            info["threadpools"] = [
                {k: d.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                       "architecture")}
                for d in threadpool_info()]
        except Exception:  # noqa: BLE001
            pass
    return info


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def _time_call(fn: Callable, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def interleaved_timing(impls: Dict[str, Callable], repeats: int, min_sample: float = 0.02,
                       settle: float = 0.1, first_times: Optional[Dict[str, float]] = None,
                       max_number: int = 1000, rewarm: bool = False) -> Dict[str, dict]:
    """Time several implementations round-robin; return per-name median/min/samples.

    Each of ``repeats`` rounds runs every implementation once, the starting one rotating from
    round to round. An implementation whose single call (``first_times``, else one untimed call)
    is shorter than ``min_sample`` seconds is looped ``number`` times per sample. With
    ``rewarm``, each sample follows one untimed call of its implementation, after the settle
    sleep: the sample then times calls in a steady stream, as a training loop makes them, and
    not the wake-up of threads that slept through the pause.
    """
    names = list(impls)
    if not names:
        return {}
    first_times = dict(first_times or {})
    number = {}
    for name in names:
        t = first_times.get(name)
        if t is None:
            t = _time_call(impls[name], 1)
        number[name] = max(1, min(max_number, math.ceil(min_sample / max(t, 1e-9))))
    samples: Dict[str, List[float]] = {n: [] for n in names}
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(repeats):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                if settle:
                    time.sleep(settle)
                if rewarm:
                    impls[name]()
                samples[name].append(_time_call(impls[name], number[name]))
    finally:
        if gc_was:
            gc.enable()
    return {n: {"median_s": statistics.median(s), "min_s": min(s), "number": number[n],
                "samples_s": s} for n, s in samples.items()}


def time_epochs(peers: Dict[str, Callable], repeats: int, settle: float, items: int,
                unit: str) -> dict:
    """Interleaved training epochs of each peer (``fn()`` runs an epoch, ``fn(3)`` three batches,
    the untimed warm-up): each peer's median seconds (``{peer}_s``) and items per second
    (``{peer}_{unit}``), torch time / pyconv1d time (``ratio``) when torch ran, and the
    samples."""
    for fn in peers.values():
        fn(3)
    timing = interleaved_timing(peers, repeats, min_sample=0.0, settle=settle,
                                first_times={name: math.inf for name in peers})
    row = {"samples": {name: t["samples_s"] for name, t in timing.items()}}
    for name, t in timing.items():
        row[f"{name}_s"] = t["median_s"]
        row[f"{name}_{unit}"] = items / t["median_s"]
    if "torch" in timing:
        row["ratio"] = timing["torch"]["median_s"] / timing["pyconv1d"]["median_s"]
    return row


def epoch_cells(row: dict, unit: str) -> str:
    """The Markdown cells of a :func:`time_epochs` row: s/epoch and items/s of pyconv1d and
    torch, and their ratio ("-" where torch did not run)."""
    def f(key, spec):
        return format(row[key], spec) if key in row else "-"
    return (f"{f('pyconv1d_s', '.2f')} | {f('pyconv1d_' + unit, '.0f')} | "
            f"{f('torch_s', '.2f')} | {f('torch_' + unit, '.0f')} | {f('ratio', '.2f')}")


def logits_check(pc_model, t_model, batch) -> str:
    """Whether a pyconv1d model and its torch twin agree: the max relative difference of their
    logits on one batch ``(x, lengths, labels)`` in evaluation mode, as a table cell."""
    import torch
    x, lengths, _ = batch
    pc_model.eval()
    t_model.eval()
    a = pc_model(x, lengths)
    with torch.no_grad():
        b = t_model(torch.from_numpy(x), torch.from_numpy(lengths)).numpy()
    pc_model.train()
    t_model.train()
    err = float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
    return f"logits agree ({err:.1e})" if err < 1e-4 else f"MISMATCH {err:.1e}"


def add_epoch_options(p) -> None:
    """The options every training benchmark shares: threads, repeats, torch, seed, settle,
    JSON output."""
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--repeats", type=int, default=3, help="epochs of each peer (median)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds to sleep between peers (idle OpenMP threads spin for a while)")
    p.add_argument("--json", default=None, help="also write the results here")


def check_epoch_options(p, args) -> None:
    """Stop early when pyconv1d cannot be imported or the shared options are out of range."""
    if pyconv1d is None:
        raise SystemExit("pyconv1d cannot be imported: build it first "
                         "(python setup.py build_ext --inplace)")
    if min(args.threads) < 1 or args.repeats < 1:
        p.error(f"--threads and --repeats must be >= 1, got {args.threads} and {args.repeats}")


def start_epoch_report(args, title: str, torch_version: Optional[str], data: str,
                       settings: str, lead_columns: List[str], items: str) -> dict:
    """The start of a training benchmark's report: the title, the data, the machine and the
    settings, and the table's header (``lead_columns``, then :func:`epoch_cells`' columns for
    ``items`` and the check). Returns the environment."""
    env = environment_info()
    peer = f"torch {torch_version}" if torch_version else "nothing (torch absent)"
    print(f"# {title}: pyconv1d vs {peer}\n")
    print(f"- data: {data}")
    print(f"- CPU: {env['cpu']} ({env['cpu_count']} logical cores); pyconv1d "
          f"{env['pyconv1d']} (OpenMP: {env['openmp_enabled']}); numpy {env['numpy']}")
    print(f"- load average at start: {env['loadavg_start']}; median of {args.repeats} "
          f"interleaved epochs per peer; {settings}\n")
    columns = lead_columns + ["pyconv1d s/epoch", f"pyconv1d {items}/s", "torch s/epoch",
                              f"torch {items}/s", "torch time / pyconv1d time", "check"]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    return env


def finish_epoch_report(args, env: dict, source: str, rows: list) -> None:
    """The end of a training benchmark: the load average, and ``--json`` written."""
    print(f"\n- load average at end: {[round(v, 2) for v in os.getloadavg()]}; ratio > 1: "
          f"pyconv1d is faster")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(environment=env, source=source, args=vars(args), rows=rows), fh,
                      indent=2)


def measure_gemm(dtype: str, threads: Optional[int], n: int, repeats: int) -> float:
    """GFLOP/s of numpy's n x n matmul in ``dtype``, BLAS-limited to ``threads``.

    The best of ``repeats`` (not the median): the figure stands for the machine's practical peak,
    the denominator of ``frac gemm``.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    with blas_limit(threads):
        np.matmul(a, b, out=c)  # warm-up
        ts = [_time_call(lambda: np.matmul(a, b, out=c), 1) for _ in range(repeats)]
    return 2.0 * n ** 3 / min(ts) / 1e9


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------

def make_inputs(case: Case, dtype: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    fan_in = (case.C_in // case.groups) * math.prod(case.kernel)
    x = rng.standard_normal(case.x_shape).astype(dtype)
    w = (rng.standard_normal(case.w_shape) / math.sqrt(fan_in)).astype(dtype)
    b = rng.standard_normal(case.C_out).astype(dtype) if case.bias else None
    go = rng.standard_normal(case.y_shape).astype(dtype)
    return {"x": x, "w": w, "b": b, "go": go}


def reference_result(case: Case, arrays: dict, mode: str) -> tuple:
    """float64 im2col result for the check (inputs are the benchmark's, rounded to dtype)."""
    kw = case.conv_kwargs()
    f64 = {k: (None if v is None else v.astype(np.float64)) for k, v in arrays.items()}
    with blas_limit(None):
        y = im2col_forward(f64["x"], f64["w"], f64["b"], **kw)
        if mode == "fwd":
            return (y,)
        gx, gw, gb = im2col_backward(f64["go"], f64["x"], f64["w"], **kw)
    return (y, gx, gw, gb if case.bias else None)


def pyconv1d_functions(ndim: int):
    """(forward, backward) of pyconv1d for ``ndim`` spatial dims, or a reason they are missing."""
    if pyconv1d is None:
        return None, None, f"pyconv1d not importable ({PYCONV1D_IMPORT_ERROR})"
    fname = "conv1d" if ndim == 1 else "conv2d"
    fwd = getattr(pyconv1d, fname, None)
    bwd = getattr(pyconv1d, fname + "_backward", None)
    if fwd is None:
        return None, None, f"pyconv1d has no {fname}"
    return fwd, bwd, None


def build_impls(case: Case, arrays: dict, mode: str, threads: int,
                peers: Sequence[str]) -> Tuple[Dict[str, Callable], Dict[str, str]]:
    """Closures returning the result tuple for each available peer, and why others are absent."""
    kw = case.conv_kwargs()
    x, w, b, go = arrays["x"], arrays["w"], arrays["b"], arrays["go"]
    impls: Dict[str, Callable] = {}
    missing: Dict[str, str] = {}

    if "pyconv1d" in peers:
        fwd, bwd, why = pyconv1d_functions(case.ndim)
        if why is None and mode != "fwd" and bwd is None:
            why = f"pyconv1d has no conv{case.ndim}d_backward"
        if why is not None:
            missing["pyconv1d"] = why
        elif mode == "fwd":
            impls["pyconv1d"] = lambda: (fwd(x, w, b, num_threads=threads, **kw),)
        else:
            def pc_fb():
                y = fwd(x, w, b, num_threads=threads, **kw)
                gx, gw, gb = bwd(go, x, w, num_threads=threads, **kw)
                return y, gx, gw, gb
            impls["pyconv1d"] = pc_fb

    if "im2col" in peers:  # BLAS threads: the caller wraps the whole row in blas_limit()
        if mode == "fwd":
            impls["im2col"] = lambda: (im2col_forward(x, w, b, **kw),)
        else:
            impls["im2col"] = lambda: ((im2col_forward(x, w, b, **kw),)
                                       + im2col_backward(go, x, w, **kw))

    if "torch" in peers:
        if torch is None:
            missing["torch"] = "torch not importable"
        else:
            tf = torch_F.conv1d if case.ndim == 1 else torch_F.conv2d
            tkw = dict(stride=case.stride, padding=case.padding, dilation=case.dilation,
                       groups=case.groups)
            xt = torch.from_numpy(x)
            wt = torch.from_numpy(w)
            bt = torch.from_numpy(b) if b is not None else None
            if mode == "fwd":
                def t_f():
                    with torch.no_grad():
                        return (tf(xt, wt, bt, **tkw).numpy(),)
                impls["torch"] = t_f
            else:
                xg = xt.clone().requires_grad_(True)
                wg = wt.clone().requires_grad_(True)
                bg = bt.clone().requires_grad_(True) if bt is not None else None
                got = torch.from_numpy(go)

                def t_fb():
                    xg.grad = None
                    wg.grad = None
                    if bg is not None:
                        bg.grad = None
                    y = tf(xg, wg, bg, **tkw)
                    y.backward(got)
                    return (y.detach().numpy(), xg.grad.numpy(), wg.grad.numpy(),
                            None if bg is None else bg.grad.numpy())
                impls["torch"] = t_fb
    return impls, missing


def set_torch_threads(threads: int) -> None:
    if torch is not None:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------

def tolerance(case: Case, dtype: str, mode: str) -> float:
    """Allowed max-abs error relative to the reference's max-abs value."""
    red = max(case.reduction_lengths(mode))
    if dtype == "float32":
        return max(1e-5, 1e-5 * math.sqrt(red))
    return max(1e-12, 1e-11 * math.sqrt(red))


def relative_error(result: tuple, ref: tuple) -> float:
    """Largest max|a-b|/max|b| over the arrays of a result; inf on a shape mismatch."""
    if len(result) != len(ref):
        return math.inf
    worst = 0.0
    for a, r in zip(result, ref):
        if r is None:
            continue
        if a is None:
            return math.inf
        a = np.asarray(a)
        if a.shape != r.shape:
            return math.inf
        scale = float(np.max(np.abs(r))) if r.size else 0.0
        err = float(np.max(np.abs(a.astype(np.float64) - r))) if r.size else 0.0
        if not np.isfinite(err):
            return math.inf
        worst = max(worst, err / scale if scale > 0 else err)
    return worst


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------

COLUMNS = ["case", "shape", "dtype", "mode", "thr", "pyconv1d ms", "im2col ms", "torch ms",
           "pyconv1d GFLOP/s", "frac gemm", "torch/pyconv1d", "im2col/pyconv1d", "check"]


def _fmt_ms(sec):
    if sec is None:
        return "-"
    ms = sec * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def row_cells(row: dict) -> List[str]:
    t = {p: row["peers"].get(p, {}).get("median_s") for p in PEERS}
    return [row["case"], row["shape"], row["dtype"], row["mode"], str(row["threads"]),
            _fmt_ms(t["pyconv1d"]), _fmt_ms(t["im2col"]), _fmt_ms(t["torch"]),
            _fmt(row.get("gflops"), ".1f"), _fmt(row.get("frac_gemm"), ".2f"),
            _fmt(row.get("ratio_torch"), ".2f"), _fmt(row.get("ratio_im2col"), ".2f"),
            row["check"]]


def md_header() -> str:
    return ("| " + " | ".join(COLUMNS) + " |\n"
            + "|" + "|".join("---" if i < 4 else "---:" for i in range(len(COLUMNS) - 1))
            + "|---|")


def md_row(row: dict) -> str:
    return "| " + " | ".join(c.replace("|", "/") for c in row_cells(row)) + " |"


def meta_lines(meta: dict) -> List[str]:
    env = meta["environment"]
    lines = [
        f"- CPU: {env['cpu']} ({env['cpu_count']} logical cores, {env['affinity']} usable)",
        f"- python {env['python']}, numpy {env['numpy']}, scipy {env.get('scipy')}, "
        f"torch {env['torch'] or 'absent'}, pyconv1d {env['pyconv1d'] or 'absent'} "
        f"(OpenMP: {env['openmp_enabled']})",
        f"- numpy BLAS thread control: {env['blas_thread_control']}",
        f"- repeats {meta['repeats']} (interleaved, median), min sample {meta['min_sample']} s,"
        f" settle {meta['settle']} s"
        + {True: ", then one untimed call", False: ", no untimed call"}.get(meta.get("rewarm"), ""),
    ]
    for key, g in sorted(meta["gemm_gflops"].items()):
        lines.append(f"- numpy {key}: {g:.1f} GFLOP/s (n={meta['gemm_n']})")
    if env.get("loadavg_start"):
        end = meta.get("loadavg_end")
        lines.append(f"- load average (1, 5, 15 min) at start: {env['loadavg_start']}"
                     + (f", at end: {end}" if end else ""))
    if env["env"]:
        lines.append("- environment: " + ", ".join(f"{k}={v}" for k, v in env["env"].items()))
    lines.append("- ratios are peer time / pyconv1d time: > 1 means pyconv1d is faster; "
                 "GFLOP/s counts fwd+bwd as 3x fwd")
    return lines


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def parse_args(argv, description: str, cases: Sequence[Case]):
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="cases:\n" + "\n".join(
                                    f"  {c.name:<22} {c.describe()}" for c in cases))
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts to run (default: 1 2)")
    p.add_argument("--dtype", nargs="+", choices=DTYPES, default=list(DTYPES),
                   help="dtypes (default: float32 float64)")
    p.add_argument("--mode", nargs="+", choices=MODES, default=list(MODES),
                   help="forward only and/or forward+backward (default: both)")
    p.add_argument("--peers", nargs="+", choices=PEERS, default=list(PEERS),
                   help="implementations to run (default: all available)")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved repeats per row (default 7; 2 with --quick)")
    p.add_argument("--min-sample", type=float, default=None,
                   help="loop fast calls until a sample lasts this many seconds "
                        "(default 0.02; 0.005 with --quick)")
    p.add_argument("--settle", type=float, default=0.1,
                   help="untimed sleep between implementations, seconds (default 0.1)")
    p.add_argument("--rewarm", action=argparse.BooleanOptionalAction, default=True,
                   help="one untimed call after each settle sleep, so that a sample times "
                        "calls in a steady stream, not threads waking (default: on)")
    p.add_argument("--quick", action="store_true",
                   help="few repeats and a smaller GEMM: a smoke run, not a measurement")
    p.add_argument("--filter", default=None, metavar="SUBSTR",
                   help="only cases whose name or shape contains SUBSTR (case-insensitive)")
    p.add_argument("--gemm-n", type=int, default=None,
                   help="matrix size of the GEMM figure (default 2048; 1024 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="write results as JSON")
    p.add_argument("--md", default=None, metavar="PATH", help="write the table as Markdown")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.min_sample is None:
        args.min_sample = 0.005 if args.quick else 0.02
    if args.gemm_n is None:
        args.gemm_n = 1024 if args.quick else 2048
    if args.repeats < 1 or any(t < 1 for t in args.threads):
        p.error("--repeats and --threads must be positive")
    return args


def select_cases(cases: Sequence[Case], substr: Optional[str]) -> List[Case]:
    """The cases whose name or shape contains ``substr`` (case-insensitive); all without."""
    f = (substr or "").lower()
    return [c for c in cases if f in c.name.lower() or f in c.describe().lower()]


def run_benchmark(title: str, cases: Sequence[Case], argv=None) -> Optional[List[dict]]:
    """Parse the command line, run every selected row, print and save the table.

    Returns the rows; ``None`` after ``--list``; ``[]`` when ``--filter`` matched no case.
    """
    args = parse_args(argv, title, cases)
    cases = select_cases(cases, args.filter)
    if args.list:
        for c in cases:
            print(f"{c.name:<22} {c.describe()}  {c.note}")
        return None
    if not cases:
        print(f"no case matches --filter {args.filter!r}", file=sys.stderr)
        return []

    env = environment_info()
    print(f"# {title}\n")
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if k in os.environ:
            print(f"warning: {k}={os.environ[k]} is set; benchmark runs use "
                  f"`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`", file=sys.stderr)
    if pyconv1d is None:
        print(f"warning: pyconv1d not importable ({PYCONV1D_IMPORT_ERROR}); "
              "timing the peers only", file=sys.stderr)
    load = env.get("loadavg_start")
    if load and load[0] > 0.5:
        print(f"warning: load average {load[0]:.2f}: other work is running; multi-thread rows "
              "will be noisy (interleaving keeps the ratios fair)", file=sys.stderr)
    if "torch" in args.peers and torch is None:
        print("note: torch not importable; the torch column stays empty", file=sys.stderr)
    if threadpool_limits is None:
        print("note: threadpoolctl not importable; numpy's BLAS runs at its default thread "
              "count in every row (im2col peer and GEMM figure)", file=sys.stderr)

    # GEMM figure: per dtype and thread count when BLAS threads can be limited, else once
    gemm: Dict[str, float] = {}
    gemm_threads = args.threads if threadpool_limits is not None else [None]
    for dtype in args.dtype:
        for t in gemm_threads:
            g = measure_gemm(dtype, t, args.gemm_n, max(3, min(args.repeats, 5)))
            label = "sgemm" if dtype == "float32" else "dgemm"
            gemm[f"{label} threads={t if t is not None else 'default'}"] = g

    def gemm_for(dtype, t):
        label = "sgemm" if dtype == "float32" else "dgemm"
        key = f"{label} threads={t if threadpool_limits is not None else 'default'}"
        return gemm.get(key)

    meta = {"title": title, "argv": sys.argv if argv is None else list(argv),
            "environment": env, "repeats": args.repeats, "min_sample": args.min_sample,
            "settle": args.settle, "rewarm": args.rewarm, "gemm_n": args.gemm_n,
            "gemm_gflops": gemm,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for line in meta_lines(meta):
        print(line)
    print()
    print(md_header())
    sys.stdout.flush()

    rows: List[dict] = []
    t_start = time.perf_counter()
    for case in cases:
        for dtype in args.dtype:
            arrays = make_inputs(case, dtype, args.seed)
            for mode in args.mode:
                ref = reference_result(case, arrays, mode)
                tol = tolerance(case, dtype, mode)
                for threads in args.threads:
                    set_torch_threads(threads)
                    row = run_row(case, arrays, dtype, mode, threads, ref, tol, args,
                                  gemm_for(dtype, threads))
                    rows.append(row)
                    print(md_row(row))
                    sys.stdout.flush()
                del ref
            del arrays
    elapsed = time.perf_counter() - t_start
    print(f"\n{len(rows)} rows in {elapsed:.0f} s")
    meta["elapsed_s"] = elapsed
    meta["loadavg_end"] = _loadavg()

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2, default=_json_default)
        print(f"wrote {args.json}")
    if args.md:
        with open(args.md, "w") as f:
            f.write(f"# {title}\n\n" + "\n".join(meta_lines(meta)) + "\n\n" + md_header() + "\n"
                    + "\n".join(md_row(r) for r in rows) + "\n")
        print(f"wrote {args.md}")
    return rows


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(type(o))


def run_row(case: Case, arrays: dict, dtype: str, mode: str, threads: int, ref: tuple,
            tol: float, args, gemm_gflops: Optional[float]) -> dict:
    """Check, then time, every peer for one (case, dtype, mode, threads); return the row."""
    impls, missing = build_impls(case, arrays, mode, threads, args.peers)
    problems: List[str] = [f"{p}: {why}" for p, why in missing.items() if p == "pyconv1d"]
    errors: Dict[str, float] = {}
    first: Dict[str, float] = {}
    # One BLAS limit around the whole row (entering threadpoolctl costs more than a small
    # convolution): the im2col peer, and any BLAS call inside pyconv1d, get the row's threads.
    with blas_limit(threads):
        for name in list(impls):
            try:
                t0 = time.perf_counter()
                res = impls[name]()
                first[name] = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001 - reported in the check column
                problems.append(f"{name} raised {type(exc).__name__}: {str(exc)[:80]}")
                del impls[name]
                continue
            err = relative_error(res, ref)
            errors[name] = err
            if not err <= tol:
                problems.append(f"MISMATCH {name} rel err {err:.2g} > {tol:.1g}")
            del res
        timing = interleaved_timing(impls, args.repeats, args.min_sample, args.settle, first,
                                    rewarm=args.rewarm)

    flops = case.flops(mode)
    t_pc = timing.get("pyconv1d", {}).get("median_s")
    row = {
        "case": case.name, "shape": case.describe(), "ndim": case.ndim,
        "N": case.N, "C_in": case.C_in, "C_out": case.C_out, "size": case.size,
        "kernel": case.kernel, "stride": case.stride, "padding": case.padding,
        "dilation": case.dilation, "groups": case.groups, "out_size": case.out_size,
        "dtype": dtype, "mode": mode, "threads": threads, "flops": flops,
        "numpy_blas_threads": threads if threadpool_limits is not None else "default",
        "peers": timing, "rel_errors": errors, "tolerance": tol,
        "gflops": flops / t_pc / 1e9 if t_pc else None,
        "gemm_gflops": gemm_gflops,
        "peer_gflops": {n: flops / t["median_s"] / 1e9 for n, t in timing.items()},
    }
    row["frac_gemm"] = (row["gflops"] / gemm_gflops
                        if row["gflops"] is not None and gemm_gflops else None)
    for peer in ("torch", "im2col"):
        tp = timing.get(peer, {}).get("median_s")
        row[f"ratio_{peer}"] = tp / t_pc if (tp and t_pc) else None
    row["problems"] = problems
    row["check"] = "ok" if not problems else "WARN " + "; ".join(problems)
    return row
