"""The benchmark scripts run end to end on tiny settings and write the JSON they promise.

Nothing here asserts a time: only that each script runs, reports every implementation, and (for
MNIST) that the three trainers really start from the same network on the same batch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
REPORT_KEYS = {"benchmark", "date", "machine", "versions", "settings", "threads", "results"}


def run_benchmark(script: str, *args: str) -> None:
    """Run a benchmark as a user would, in its own process (it sets thread counts for itself)."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"


def test_bench_ops_writes_every_op_and_size(tmp_path):
    out = tmp_path / "ops.json"
    run_benchmark(
        "bench_ops.py",
        "--small",
        "4x8",
        "--large",
        "16x32",
        "--min-time",
        "0",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert REPORT_KEYS <= set(report)
    ops = {"matmul", "add_broadcast", "relu", "cross_entropy", "sum"}
    assert {(r["op"], r["size"]) for r in report["results"]} == {
        (op, size) for op in ops for size in ("small", "large")
    }
    for result in report["results"]:
        for engine in ("minigrad", "pytorch"):
            assert set(result[engine]) == {"forward_s", "forward_backward_s"}
        assert result["numpy"]["forward_backward_s"] > 0
        assert set(result["ratios"]) == {"minigrad/pytorch", "minigrad/numpy"}


def test_bench_mnist_trains_the_same_network_three_ways(tmp_path, data_root):
    out = tmp_path / "mnist.json"
    run_benchmark(
        "bench_mnist.py",
        "--data-root",
        str(data_root),
        "--batch-sizes",
        "32",
        "--epochs",
        "2",
        "--max-steps",
        "3",
        "--warmup-steps",
        "1",
        "--threads",
        "1",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert REPORT_KEYS <= set(report)
    (result,) = report["results"]
    assert result["batch_size"] == 32 and result["steps_per_epoch"] == 3
    assert set(result["ratios"]) == {"minigrad/pytorch", "minigrad/numpy_floor"}
    impls = result["impls"]
    assert set(impls) == {"minigrad", "pytorch", "numpy_floor"}
    for impl in impls.values():
        assert len(impl["epoch_seconds"]) == 2
        assert {"median_epoch_seconds", "steps_per_second", "test_accuracy"} <= set(impl)
    # Same weights, same first batch: the first losses agree to float32 rounding.
    first = [impl["first_step_loss"] for impl in impls.values()]
    assert max(first) - min(first) < 1e-4, first
