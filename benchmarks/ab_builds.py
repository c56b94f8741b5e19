"""An older build against this one, in one process: the same bits? how much faster?

A machine's speed can drift by 20-40 % over seconds (the 2-core development VM's does), more
than most kernel changes move, so two runs of the benchmark, before and after a change, cannot
tell them apart. This script imports the package twice, this tree's and a copy of an older
build's under another name, and alternates the two call by call on every benchmark case
(``run_all.py --list``)::

    git worktree add /tmp/old HEAD~1
    (cd /tmp/old && python setup.py build_ext --inplace)
    python benchmarks/ab_builds.py --old /tmp/old --filter grouped --threads 1 2

For each case, dtype, mode and thread count it prints the best time of each build over the
rounds, old / new of the bests, the median of the rounds' ratios (old / new per round, which
cancels drift slower than a round), and whether the two builds' results are bitwise equal.
"""
import argparse
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    from . import run_all
    from ._common import interleaved_timing, make_inputs, pyconv1d_functions, select_cases
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import run_all
    from _common import interleaved_timing, make_inputs, pyconv1d_functions, select_cases

OLD_NAME = "pyconv1d_old"


def import_old(checkout, where):
    """The package of ``checkout`` (a source tree built in place), imported as OLD_NAME from
    a copy in ``where``: its modules import each other relatively, so the copy runs as is."""
    src = Path(checkout) / "pyconv1d"
    if not src.is_dir():
        raise SystemExit(f"--old: no pyconv1d package in {checkout!r}")
    if not list(src.glob("_conv*.so")) + list(src.glob("_conv*.pyd")):
        raise SystemExit(f"--old: {src} has no built kernels; run "
                         f"'python setup.py build_ext --inplace' there first")
    shutil.copytree(src, Path(where) / OLD_NAME)
    sys.path.insert(0, str(where))
    return importlib.import_module(OLD_NAME)


def calls(case, arrays, mode, threads, fwd, bwd):
    """A closure running the case once with the given functions, returning its arrays."""
    kw = dict(case.conv_kwargs(), num_threads=threads)
    x, w, b, go = arrays["x"], arrays["w"], arrays["b"], arrays["go"]

    def run():
        y = fwd(x, w, b, **kw)
        if mode == "fwd":
            return (y,)
        return (y,) + tuple(bwd(go, x, w, **kw))
    return run


def same_bits(a, b):
    return all((p is None and q is None) or (p is not None and q is not None and
                                             p.tobytes() == q.tobytes())
               for p, q in zip(a, b))


def alternate(old, new, rounds, min_sample):
    """(old times, new times) per round: interleaved_timing's samples, with no pause between
    the builds (both are ours: the same OpenMP runtime, no idle team of another to wait out)."""
    times = interleaved_timing({"old": old, "new": new}, rounds, min_sample, settle=0)
    return (np.array(times["old"]["samples_s"]), np.array(times["new"]["samples_s"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True,
                        help="a source tree of the older version, built in place")
    parser.add_argument("--filter", default="",
                        help="only cases whose name or shape contains this (case-insensitive)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"],
                        choices=["float32", "float64"])
    parser.add_argument("--mode", nargs="+", default=["fwd", "fwd+bwd"],
                        choices=["fwd", "fwd+bwd"])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--min-sample", type=float, default=0.01,
                        help="seconds a sample of one build lasts at least (default 0.01)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if any(t < 1 for t in args.threads):
        parser.error(f"--threads must be positive, got {args.threads}")
    if not args.min_sample >= 0:
        parser.error(f"--min-sample must be >= 0, got {args.min_sample}")
    cases = select_cases(run_all.CASES, args.filter)
    if not cases:
        raise SystemExit(f"no benchmark case matches --filter {args.filter!r}")
    with tempfile.TemporaryDirectory() as where:
        old = import_old(args.old, where)
        print(f"old: {Path(args.old).resolve()} ({old.__version__}); new: this tree; "
              f"{args.rounds} rounds, samples of >= {args.min_sample} s\n")
        print("| case | dtype | mode | threads | old ms | new ms | old/new (bests) | "
              "old/new (median of rounds) | same bits |")
        print("|---|---|---|---:|---:|---:|---:|---:|---|")
        for case in cases:
            fwd, bwd, why = pyconv1d_functions(case.ndim)
            if why is not None:
                raise SystemExit(why)
            name = "conv1d" if case.ndim == 1 else "conv2d"
            old_fwd, old_bwd = getattr(old, name), getattr(old, name + "_backward")
            for dtype in args.dtype:
                arrays = make_inputs(case, dtype)
                for mode in args.mode:
                    for t in args.threads:
                        o = calls(case, arrays, mode, t, old_fwd, old_bwd)
                        n = calls(case, arrays, mode, t, fwd, bwd)
                        bits = "yes" if same_bits(o(), n()) else "**no**"
                        to, tn = alternate(o, n, args.rounds, args.min_sample)
                        print(f"| {case.name} | {dtype} | {mode} | {t} | "
                              f"{to.min() * 1e3:.3g} | {tn.min() * 1e3:.3g} | "
                              f"{to.min() / tn.min():.2f} | {np.median(to / tn):.2f} | "
                              f"{bits} |", flush=True)


if __name__ == "__main__":
    main()
