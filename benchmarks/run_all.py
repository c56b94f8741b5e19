"""The whole peer benchmark in one command: every conv1d and conv2d case, then the targets.

Runs the cases of ``bench_conv1d.py`` and ``bench_conv2d.py`` in one table (float32 and
float64, forward and forward+backward, 1 and 2 threads by default), writes it as JSON and
Markdown, and ends with a summary of the performance targets: medians of the torch/pyconv1d
time ratios per family of shapes, pyconv1d's fraction of the run's sgemm GFLOP/s, and the
speed-up from 1 to 2 threads; for the ratio targets also their ceiling, the same statistic if
pyconv1d ran every row's direct multiply-adds at the run's GEMM rate (given where the GEMM
figure was measured per thread count: install threadpoolctl). Nothing is asserted; the
numbers are printed.

Run from the repository root (benchmark runs unset the OpenBLAS variables; tests never do)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_all.py \\
        --json bench-results/all.json --md bench-results/all.md

Every option of the single-family scripts works here too (``--threads``, ``--dtype``,
``--quick``, ``--filter``...). ``--summary PATH.json`` prints a saved run as one compact table
(pyconv1d and torch, forward and forward+backward side by side) and its target summary.
"""
import json
import statistics
import sys

try:
    from . import bench_conv1d, bench_conv2d
    from ._common import run_benchmark
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import bench_conv1d
    import bench_conv2d
    from _common import run_benchmark

CASES = list(bench_conv1d.CASES) + list(bench_conv2d.CASES)

DENSE = ("textcnn-", "kim-", "mid-128", "mel80-", "dilated-", "tcn-", "img32-c32")
DEPTHWISE = ("depthwise-", "kws-depthwise-", "grouped-")
WAVEFORM = ("wav-",)
FEW_CHANNEL_2D = ("img64-c1", "kws-c1", "img64-c3")

#: (label, case prefixes, dtype, mode, statistic, target)
TARGETS = [
    ("dense float32 forward, torch/pyconv1d", DENSE, "float32", "fwd", "ratio_torch", 1.0),
    ("dense float32 fwd+bwd, torch/pyconv1d", DENSE, "float32", "fwd+bwd",
     "ratio_torch", 1.0),
    ("dense float32 forward, fraction of sgemm", DENSE, "float32", "fwd", "frac_gemm", 0.7),
    ("dense float32 fwd+bwd, fraction of sgemm", DENSE, "float32", "fwd+bwd",
     "frac_gemm", 0.7),
    ("depthwise and grouped fwd+bwd, torch/pyconv1d", DEPTHWISE, None, "fwd+bwd",
     "ratio_torch", 10.0),
    ("raw-waveform fwd+bwd, torch/pyconv1d", WAVEFORM, None, "fwd+bwd", "ratio_torch",
     5.0),
    ("conv2d 1-4 input channels fwd+bwd, torch/pyconv1d", FEW_CHANNEL_2D, None,
     "fwd+bwd", "ratio_torch", 3.0),
    ("float64, every shape, torch/pyconv1d", ("",), "float64", None, "ratio_torch", 1.5),
]


def _matches(row, prefixes, dtype, mode, threads):
    return (any(row["case"].startswith(p) for p in prefixes)
            and (dtype is None or row["dtype"] == dtype)
            and (mode is None or row["mode"] == mode)
            and row["threads"] == threads)


def _flagged(rows, lead):
    """Markdown lines naming the rows whose result check failed (a peer raised, or its result
    did not match the float64 reference), or none."""
    bad = [r for r in rows if r.get("problems")]
    return [f"- {lead}: {r['case']} {r['dtype']} {r['mode']} "
            f"{r['threads']} thread(s): {'; '.join(r['problems'])}" for r in bad]


def ceiling(row):
    """The torch/pyconv1d ratio ``row`` would reach if pyconv1d ran its FLOPs at the run's GEMM
    rate for the row's dtype and thread count (torch's time over FLOPs / GEMM GFLOP/s), or None
    when the GEMM figure was not measured at the row's thread count (no threadpoolctl): a
    figure measured on more threads would understate what one thread can do, and scaling it
    down would be a guess. A bound, not a promise: convolutions other than dense ones seldom
    come near their GEMM rate. A target whose ceiling is under its goal cannot be met on that
    machine by an algorithm that does the direct method's multiply-adds (loops, or unroll and
    GEMM, as pyconv1d's do); transforms that do fewer (FFT, Winograd's minimal filtering) are
    not bound by it."""
    t_torch = row["peers"].get("torch", {}).get("median_s")
    gemm = row.get("gemm_gflops")
    if not (t_torch and gemm and row["flops"]) or row.get("numpy_blas_threads") != row["threads"]:
        return None
    return t_torch / (row["flops"] / (gemm * 1e9))


def summarize(rows):
    """Markdown lines: each target's median (and worst) over its rows, per thread count; a
    target met by the median, or for "every shape" by the worst row. Rows whose check failed
    count in no median (they are listed below the table), and a target that would have
    counted one is not judged: a wrong answer must not look like a fast one. For the ratio
    targets, ``ceiling`` is the same statistic over the rows' :func:`ceiling` ratios (the most
    the target could show on this machine), when every row of it has one."""
    failed = [r for r in rows if r.get("problems")]
    flagged = _flagged(failed, "left out of the targets, its check failed")
    rows = [r for r in rows if not r.get("problems")]
    threads = sorted({r["threads"] for r in rows})

    def verdict(ok, n_failed):
        return f"not judged ({n_failed} row(s) failed their check)" if n_failed else \
            ("yes" if ok else "no")
    lines = ["| target | threads | median | worst | rows | goal | met | ceiling |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for label, prefixes, dtype, mode, stat, goal in TARGETS:
        for t in threads:
            vals = [r[stat] for r in rows
                    if _matches(r, prefixes, dtype, mode, t) and r.get(stat) is not None]
            bad = sum(_matches(r, prefixes, dtype, mode, t) for r in failed)
            if not vals:
                if bad:
                    lines.append(f"| {label} | {t} | - | - | 0 | >= {goal} | "
                                 f"{verdict(False, bad)} | - |")
                continue
            med = statistics.median(vals)
            # "every shape" targets hold only when the worst row meets them
            every = "every" in label
            judged = min(vals) if every else med
            bounds = [ceiling(r) for r in rows if _matches(r, prefixes, dtype, mode, t)
                      and r.get(stat) is not None] if stat == "ratio_torch" else [None]
            top = "-" if None in bounds else \
                f"{(min(bounds) if every else statistics.median(bounds)):.2f}"
            lines.append(f"| {label} | {t} | {med:.2f} | {min(vals):.2f} | {len(vals)} | "
                         f">= {goal} | {verdict(judged >= goal, bad)} | {top} |")
    # scaling: pyconv1d's time at 1 thread over t threads, on rows above 0.2 GFLOP; the
    # target is the 2-thread one; larger counts (a machine with more cores) are reported
    if 1 in threads:
        by_key = {}
        for r in rows:
            t_pc = r["peers"].get("pyconv1d", {}).get("median_s")
            if t_pc and r["flops"] >= 2e8:
                by_key.setdefault((r["case"], r["dtype"], r["mode"]), {})[r["threads"]] = t_pc
        for t in threads[1:]:
            speedups = [v[1] / v[t] for v in by_key.values() if 1 in v and t in v]
            if not speedups:
                continue
            med = statistics.median(speedups)
            bad = sum(r["flops"] >= 2e8 and r["threads"] in (1, t) for r in failed)
            goal, met = ((">= 1.8", verdict(med >= 1.8, bad)) if t == 2 else ("-", "-"))
            lines.append(f"| 1 -> {t} threads speed-up, shapes >= 0.2 GFLOP | {t} | "
                         f"{med:.2f} | {min(speedups):.2f} | {len(speedups)} | {goal} | "
                         f"{met} | - |")
    return lines + ([""] + flagged if flagged else [])


def compact(rows):
    """Markdown lines: one row per case, dtype and thread count, with pyconv1d's and torch's
    median times and their ratio, forward and forward+backward side by side (the README's
    table). Rows whose check failed are listed below it."""
    cells = {}
    for r in rows:
        t_pc = r["peers"].get("pyconv1d", {}).get("median_s")
        t_torch = r["peers"].get("torch", {}).get("median_s")
        cells[(r["case"], r["dtype"], r["threads"], r["mode"])] = (t_pc, t_torch)
    order = list(dict.fromkeys((r["case"], r["dtype"], r["threads"]) for r in rows))
    lines = ["| case | dtype | threads | fwd ms (torch ms) | fwd ratio | fwd+bwd ms (torch ms) "
             "| fwd+bwd ratio |", "|---|---|---:|---:|---:|---:|---:|"]
    for case, dtype, threads in order:
        out = [case, dtype, str(threads)]
        for mode in ("fwd", "fwd+bwd"):
            t_pc, t_torch = cells.get((case, dtype, threads, mode), (None, None))
            if t_pc is None:
                out += ["-", "-"]
                continue
            torch_ms = f" ({t_torch * 1e3:.3g})" if t_torch else ""
            out += [f"{t_pc * 1e3:.3g}{torch_ms}", f"{t_torch / t_pc:.2f}" if t_torch else "-"]
        lines.append("| " + " | ".join(out) + " |")
    flagged = _flagged(rows, "check failed")
    return lines + ([""] + flagged if flagged else [])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--summary" in argv:
        path = argv[argv.index("--summary") + 1]
        with open(path) as f:
            rows = json.load(f)["rows"]
        print("\n".join(compact(rows)))
    else:
        rows = run_benchmark("pyconv1d benchmark: conv1d and conv2d", CASES, argv)
        if not rows:
            return 1 if rows == [] else 0
    print("\n## Targets (medians of the ratios over each family; > 1: pyconv1d is faster)\n")
    print("\n".join(summarize(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
