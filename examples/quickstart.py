"""Quick start: a causal, dilated conv1d stack over a waveform, checked and timed.

Runs on a fresh install with numpy and scipy only:

    python examples/quickstart.py --threads 2

It builds a WaveNet-style stack of causal dilated convolutions (kernel 3, dilations 1..64),
runs it forward and backward on a batch of synthetic audio, checks the first layer against
scipy.signal.correlate, checks that the output never looks into the future, and prints timings
(best of ``--repeats``) for each thread count.
"""
import argparse
import time

import numpy as np
from scipy import signal

import pyconv1d
from pyconv1d import conv1d, conv1d_backward


def make_audio(rng, n, length, sr=16000):
    """A batch of chirps in noise: something with structure at many time scales."""
    t = np.arange(length) / sr
    f0 = rng.uniform(100, 400, size=(n, 1))
    x = np.sin(2 * np.pi * f0 * t * (1 + 2 * t)) + 0.1 * rng.standard_normal((n, length))
    return x[:, None, :].astype(np.float32)


def stack_forward(x, weights, dilations, threads):
    acts = [x]
    for w, d in zip(weights, dilations):
        y = conv1d(acts[-1], w, padding="causal", dilation=d, num_threads=threads)
        acts.append(np.maximum(y, 0))
    return acts


def stack_backward(acts, weights, dilations, threads):
    g = np.ones_like(acts[-1])
    grads = []
    for i in range(len(weights) - 1, -1, -1):
        g = g * (acts[i + 1] > 0)
        gi, gw, _ = conv1d_backward(g, acts[i], weights[i], padding="causal",
                                    dilation=dilations[i], num_threads=threads)
        grads.append(gw)
        g = gi
    return g, grads[::-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=16000)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per thread count")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    rng = np.random.default_rng(args.seed)
    x = make_audio(rng, args.batch, args.length)
    dilations = [1, 2, 4, 8, 16, 32, 64]
    chans = [1] + [args.channels] * len(dilations)
    weights = [(rng.standard_normal((co, ci, 3)) / np.sqrt(3 * ci)).astype(np.float32)
               for ci, co in zip(chans[:-1], chans[1:])]
    print(f"pyconv1d {pyconv1d.__version__}, OpenMP "
          f"{'on' if pyconv1d.openmp_enabled() else 'off'}; input {x.shape}, "
          f"{len(dilations)} causal layers, receptive field {1 + 2 * sum(dilations)} samples")

    # First layer against scipy: causal padding = 2*d zeros on the left, no flip.
    y = conv1d(x, weights[0], padding="causal")
    ref = np.stack([[signal.correlate(np.pad(x[n, 0], (2, 0)), weights[0][o, 0], "valid")
                     for o in range(chans[1])] for n in range(args.batch)])
    print(f"layer 1 vs scipy.signal.correlate: max abs error {np.abs(y - ref).max():.2e}")

    # Causality: changing the future must not change the past.
    cut = args.length // 2
    x2 = x.copy()
    x2[:, :, cut:] = rng.standard_normal(x2[:, :, cut:].shape)
    a, b = stack_forward(x, weights, dilations, 1)[-1], stack_forward(x2, weights, dilations, 1)[-1]
    print(f"causal: outputs before t={cut} unchanged by the future: "
          f"{np.array_equal(a[:, :, :cut], b[:, :, :cut])}")

    # Best of --repeats runs: the first run of a size also pays for fresh memory pages.
    results = {}
    for threads in args.threads:
        fwd = bwd = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            acts = stack_forward(x, weights, dilations, threads)
            t1 = time.perf_counter()
            gx, gws = stack_backward(acts, weights, dilations, threads)
            t2 = time.perf_counter()
            fwd, bwd = min(fwd, t1 - t0), min(bwd, t2 - t1)
        results[threads] = (acts[-1], gx, gws)
        print(f"{threads} thread(s): forward {1e3 * fwd:7.1f} ms, backward {1e3 * bwd:7.1f} ms "
              f"(best of {args.repeats})")
    first = results[args.threads[0]]
    same = all(np.array_equal(first[0], r[0]) and np.array_equal(first[1], r[1]) and
               all(np.array_equal(p, q) for p, q in zip(first[2], r[2]))
               for r in results.values())
    print(f"bitwise identical across thread counts {args.threads}: {same}")


if __name__ == "__main__":
    main()
