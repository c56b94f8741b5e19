"""Are the results the same bits at every thread count? On the benchmark's own shapes.

For every case of the benchmark (``run_all.py --list``), both dtypes and each algorithm that
takes the case, computes the forward and the three gradients at each thread count and
compares their bytes with the first count's. The test suite checks this on small shapes and
1-3 threads; this is for a machine with many cores::

    python benchmarks/check_threads.py --threads 1 2 3 5 8 13 16

Prints one line per result that differs and a summary; exits with status 1 if any differ.
"""
import argparse
import sys

try:
    from . import run_all
    from ._common import make_inputs, pyconv1d_functions
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    import run_all
    from _common import make_inputs, pyconv1d_functions

ALGORITHMS = ("auto", "direct", "gemm", "fft")
RESULTS = ("output", "grad_input", "grad_weight", "grad_bias")


def results_per_thread_count(case, dtype, algorithm, threads):
    """[(y, grad_input, grad_weight, grad_bias)] per thread count, or None where the
    algorithm does not take the case."""
    fwd, bwd, why = pyconv1d_functions(case.ndim)
    if why is not None:
        raise SystemExit(why)
    arrays = make_inputs(case, dtype)
    kw = dict(case.conv_kwargs(), algorithm=algorithm)
    out = []
    for t in threads:
        try:
            y = fwd(arrays["x"], arrays["w"], arrays["b"], num_threads=t, **kw)
        except ValueError:  # e.g. 'fft' with a stride
            return None
        out.append((y,) + tuple(bwd(arrays["go"], arrays["x"], arrays["w"], num_threads=t,
                                    **kw)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--filter", default=None, metavar="SUBSTR",
                   help="only cases whose name contains SUBSTR")
    args = p.parse_args(argv)
    if len(args.threads) < 2 or any(t < 1 for t in args.threads):
        p.error(f"--threads needs two or more positive counts, got {args.threads}")
    checked = differ = 0
    for case in run_all.CASES:
        if args.filter and args.filter.lower() not in case.name.lower():
            continue
        for dtype in ("float32", "float64"):
            for algorithm in ALGORITHMS:
                res = results_per_thread_count(case, dtype, algorithm, args.threads)
                if res is None:
                    continue
                checked += 1
                for t, r in zip(args.threads[1:], res[1:]):
                    bad = [n for n, a, b in zip(RESULTS, r, res[0])
                           if (a is None) != (b is None)
                           or (a is not None and a.tobytes() != b.tobytes())]
                    if bad:
                        differ += 1
                        print(f"DIFFER {case.name} {dtype} {algorithm}: {', '.join(bad)} at "
                              f"{t} threads against {args.threads[0]}")
    print(f"{checked} results (case, dtype, algorithm) at threads {args.threads}: "
          f"{differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
