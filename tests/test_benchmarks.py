"""The benchmark's target summary: its arithmetic, on rows made up here (no timing)."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def _row(case, dtype, threads, t_ours, t_torch, flops, gemm, blas_threads):
    return {"case": case, "dtype": dtype, "mode": "fwd+bwd", "threads": threads,
            "flops": flops, "gemm_gflops": gemm, "numpy_blas_threads": blas_threads,
            "peers": {"pyconv1d": {"median_s": t_ours}, "torch": {"median_s": t_torch}},
            "ratio_torch": t_torch / t_ours, "problems": []}


def test_ceiling_is_torch_time_over_the_time_at_the_gemm_rate(run_all):
    # 2 GFLOP at 100 GFLOP/s take 20 ms at best; torch took 50 ms: at most 2.5x
    row = _row("wav-a", "float32", 1, 0.04, 0.05, 2e9, 100.0, 1)
    assert run_all.ceiling(row) == pytest.approx(2.5)
    # a GEMM figure from another thread count (no threadpoolctl) gives no ceiling
    assert run_all.ceiling(dict(row, numpy_blas_threads="default")) is None
    assert run_all.ceiling(dict(row, gemm_gflops=None)) is None


def test_summary_prints_the_ceiling_of_median_and_every_shape_targets(run_all):
    # raw-waveform: ratios 1.25, 2.5, 5 (median 2.5); 2, 1 and 0.5 GFLOP at 100 GFLOP/s
    # against torch's 50 ms: ceilings 2.5, 5 and 10 (median 5)
    rows = [_row(f"wav-{i}", "float32", 1, 0.04 / 2 ** i, 0.05, 2e9 / 2 ** i, 100.0, 1)
            for i in range(3)]
    # float64 rows: ratios 1 and 0.5, ceilings 2.5 and 1.25; "every shape" takes the worst
    rows += [_row("mid-a", "float64", 1, 0.05, 0.05, 2e9, 100.0, 1),
             _row("mid-b", "float64", 1, 0.05, 0.025, 2e9, 100.0, 1)]
    lines = run_all.summarize(rows)
    wave = next(line for line in lines if line.startswith("| raw-waveform"))
    cells = [c.strip() for c in wave.strip("|").split("|")]
    assert cells[2] == "2.50" and cells[-2] == "no" and cells[-1] == "5.00"
    f64 = next(line for line in lines if line.startswith("| float64"))
    cells = [c.strip() for c in f64.strip("|").split("|")]
    assert cells[3] == "0.50" and cells[-1] == "1.25"
    # one row without a per-thread GEMM figure: the target's ceiling is not given
    rows[-1] = dict(rows[-1], numpy_blas_threads="default")
    f64 = next(line for line in run_all.summarize(rows) if line.startswith("| float64"))
    assert f64.rstrip().endswith("| - |")
