"""The benchmark scripts run end to end on tiny settings and write the JSON they promise.

Nothing here asserts a time: only that each script runs, reports every implementation, that the
trainers really start from the same network on the same batch, and that the numbers derived from
the timings (the roofline bound, the step breakdown) are consistent with each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
REPORT_KEYS = {"benchmark", "date", "machine", "versions", "settings", "results"}
PHASES = {"gather", "forward", "backward", "optimiser", "overhead", "step"}
# torch.compile is left out: compiling takes tens of seconds here, too long for the suite.
QUICK_IMPLS = ["minigrad", "pytorch", "pytorch_fused", "numpy_floor"]


def run_benchmark(script: str, *args: str) -> str:
    """Run a benchmark as a user would, in its own process; its standard output."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_bench_ops_writes_every_op_and_size(tmp_path):
    out = tmp_path / "ops.json"
    run_benchmark(
        "bench_ops.py",
        *("--small", "4x8", "--large", "16x32", "--min-time", "0", "--repeats", "1"),
        *("--warmup", "0", "--threads", "1", "--json", str(out)),
    )
    report = json.loads(out.read_text())
    assert REPORT_KEYS | {"threads"} <= set(report)
    assert report["threads"]["numpy_openblas"] in (1, None)  # None: OpenBLAS not found
    ops = {"matmul", "add_broadcast", "relu", "cross_entropy", "sum", "sum_rows"}
    assert {(r["op"], r["size"]) for r in report["results"]} == {
        (op, size) for op in ops for size in ("small", "large")
    }
    for result in report["results"]:
        for engine in ("minigrad", "pytorch"):
            assert set(result[engine]) == {"forward_s", "forward_backward_s"}
        assert result["numpy"]["forward_backward_s"] > 0
        assert set(result["ratios"]) == {"minigrad/pytorch", "minigrad/numpy"}


def quick_mnist(data_root, tmp_path, *extra: str) -> tuple[dict, str]:
    """bench_mnist.py on one tiny configuration (batch 32, width 128, 3 steps an epoch)."""
    out = tmp_path / "mnist.json"
    stdout = run_benchmark(
        "bench_mnist.py",
        *("--data-root", str(data_root), "--batch-sizes", "32", "--widths", "128"),
        *("--width-batches", "32", "--epochs", "2", "--max-steps", "3", "--warmup-steps", "1"),
        *("--sgemm-size", "128", "--json", str(out), *extra),
    )
    return json.loads(out.read_text()), stdout


def test_bench_mnist_trains_the_same_network_every_way(data_root, tmp_path):
    chart = tmp_path / "chart.png"
    report, stdout = quick_mnist(
        data_root,
        tmp_path,
        "--impls",
        *QUICK_IMPLS,
        "--memory-steps",
        "0",
        "--chart",
        str(chart),
        "--markdown",
    )
    assert REPORT_KEYS <= set(report)
    (run,) = report["runs"]
    assert run["threads_requested"] == 1 and run["threads"]["torch"] == 1
    assert run["threads"]["numpy_openblas"] in (1, None)
    assert run["sgemm"]["peak_gflops"] == max(run["sgemm"]["numpy"], run["sgemm"]["torch"])
    (result,) = report["results"]
    assert (result["batch_size"], result["width"], result["steps_per_epoch"]) == (32, 128, 3)
    # The tutorial's network: 2 * (784*128 + 128*64 + 64*10) forward, as many for the weight
    # gradients, 2 * (128*64 + 64*10) for the input gradients (none for the first layer's input).
    assert result["matmul_gflop"] == pytest.approx(454_400 * 3 * 32 / 1e9)
    assert result["bound_seconds"] == pytest.approx(
        result["matmul_gflop"] / run["sgemm"]["peak_gflops"]
    )
    assert set(result["ratios"]) == {f"minigrad/{name}" for name in QUICK_IMPLS[1:]}
    impls = result["impls"]
    assert set(impls) == set(QUICK_IMPLS)
    for impl in impls.values():
        assert len(impl["epoch_seconds"]) == 2
        assert impl["percent_of_peak"] == pytest.approx(
            100 * result["bound_seconds"] / impl["median_epoch_seconds"]
        )
        steps = impl["step_us"]
        assert set(steps) == PHASES and min(steps.values()) >= 0
    # Same weights, same first batch: the first losses agree to float32 rounding.
    first = [impl["first_step_loss"] for impl in impls.values()]
    assert max(first) - min(first) < 1e-4, first
    assert "| 32 | 128 | minigrad |" in stdout  # the Markdown tables
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_bench_mnist_compares_two_checkouts_and_measures_memory(data_root, tmp_path):
    report, _ = quick_mnist(
        data_root,
        tmp_path,
        "--impls",
        "minigrad",
        "--compare-with",
        str(REPO),
        "--memory-steps",
        "2",
        "--chart",
        "",
    )
    (result,) = report["results"]
    (label,) = report["checkouts"].values()
    other = f"minigrad@{label}"
    assert set(result["impls"]) == {"minigrad", other}
    for name in ("minigrad", other):  # each worker imported the checkout it was given
        assert Path(result["impls"][name]["minigrad_file"]).is_relative_to(REPO)
    # The same code from the same weights on the same batches: the very same losses.
    assert (
        result["impls"]["minigrad"]["first_step_loss"] == result["impls"][other]["first_step_loss"]
    )
    assert (
        result["impls"]["minigrad"]["final_train_loss"]
        == result["impls"][other]["final_train_loss"]
    )
    assert set(result["memory"]) == {"minigrad", other}
    for memory in result["memory"].values():
        assert memory["peak_rss_mib"] > 0 and memory["after_data_mib"] >= 0
