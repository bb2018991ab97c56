"""The benchmark scripts run end to end on tiny settings and write the JSON they promise.

Nothing here asserts a time: only that each script runs, reports every implementation, that the
trainers really start from the same network on the same batch, and that the numbers derived from
the timings (the roofline bound, the step breakdown) are consistent with each other.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
REPORT_KEYS = {"benchmark", "date", "machine", "versions", "settings", "results"}
PHASES = {"gather", "forward", "backward", "optimiser", "overhead", "step"}
# torch.compile is left out: compiling takes tens of seconds here, too long for the suite.
QUICK_IMPLS = ["minigrad", "pytorch", "pytorch_fused", "numpy_floor"]


def run_script(script: str, *args: str, env=None) -> subprocess.CompletedProcess:
    """Run a benchmark as a user would, in its own process; assert that it succeeded."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done


def run_benchmark(script: str, *args: str) -> str:
    """Run a benchmark as a user would, in its own process; its standard output."""
    return run_script(script, *args).stdout


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


def quick_mnist(data_root, tmp_path, *extra: str, env=None) -> tuple[dict, str]:
    """bench_mnist.py on one tiny configuration (batch 32, width 128, 3 steps an epoch)."""
    report, done = quick_mnist_run(data_root, tmp_path, *extra, env=env)
    return report, done.stdout


def quick_mnist_run(data_root, tmp_path, *extra: str, env=None):
    """quick_mnist's report, with the finished process (its stderr holds the notes)."""
    out = tmp_path / "mnist.json"
    done = run_script(
        "bench_mnist.py",
        *("--data-root", str(data_root), "--batch-sizes", "32", "--widths", "128"),
        *("--width-batches", "32", "--epochs", "2", "--max-steps", "3", "--warmup-steps", "1"),
        *("--sgemm-size", "128", "--json", str(out), *extra),
        env=env,
    )
    return json.loads(out.read_text()), done


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


# ---- the optional trainers: jax_jit (JAX) and minigrad_compiled (mg.compile) -----------------

BENCHMARK_MODULES = ("trainers", "bench_mnist", "harness", "turns", "roofline", "mnist_report")


@pytest.fixture(scope="module")
def bench():
    """benchmarks/trainers.py and bench_mnist.py, imported as the scripts import each other."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield SimpleNamespace(
            trainers=importlib.import_module("trainers"),
            bench_mnist=importlib.import_module("bench_mnist"),
        )
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in (*BENCHMARK_MODULES, "numpy_floor"):
            sys.modules.pop(name, None)


def synthetic(rows: int = 256, seed: int = 1):
    """MNIST-shaped float32 inputs in [0, 1) and int64 labels: the trainers need nothing else."""
    rng = np.random.default_rng(seed)
    return rng.random((rows, 784), dtype=np.float32), rng.integers(0, 10, rows)


SGD = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.0)  # bench_mnist's defaults


def losses(trainer, index, steps: int) -> list[float]:
    return [trainer.step(index) for _ in range(steps)]


def test_unavailable_trainers_are_skipped_with_a_note(bench, monkeypatch, capsys):
    import minigrad

    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` raises ImportError
    monkeypatch.delattr(minigrad, "compile", raising=False)
    asked = ["minigrad", "jax_jit", "minigrad_compiled", "numpy_floor"]
    runnable, skipped = bench.bench_mnist.available(asked)
    assert runnable == ["minigrad", "numpy_floor"]
    assert set(skipped) == {"jax_jit", "minigrad_compiled"}
    assert capsys.readouterr().err.splitlines() == [
        f"note: skipping {impl}: {skipped[impl]}" for impl in ("jax_jit", "minigrad_compiled")
    ]


def test_bench_mnist_runs_without_jax(data_root, tmp_path):
    """A jax that fails to import: bench_mnist.py says so in one line and races the rest."""
    import minigrad

    fake = tmp_path / "no_jax" / "jax"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no JAX here (a test)')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fake.parent), env.get("PYTHONPATH")]))
    optional = ["jax_jit"] + ([] if hasattr(minigrad, "compile") else ["minigrad_compiled"])
    report, done = quick_mnist_run(
        data_root,
        tmp_path,
        *("--impls", "minigrad", "numpy_floor", *optional, "--memory-steps", "0", "--chart", ""),
        env=env,
    )
    (run,) = report["runs"]
    assert set(run["skipped"]) == set(optional)
    assert set(report["results"][0]["impls"]) == {"minigrad", "numpy_floor"}
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: skipping")]
    assert len(notes) == len(optional)
    # One thread: pinned to one core where the OS can, and the header says so.
    if hasattr(os, "sched_setaffinity"):
        assert run["pinned_cpu"] in os.sched_getaffinity(0)
        assert f"pinned to CPU {run['pinned_cpu']}" in done.stdout
        assert "--xla_cpu_multi_thread_eigen=false" in run["xla_flags"]
        # The machine is described as it is, not as the pinned process sees it.
        assert report["machine"]["usable_cpus"] == len(os.sched_getaffinity(0))


def test_a_compiled_step_is_reported_whole(bench):
    """A compiled step ticks gather and COMPILED only: the four phases read 0, the call is kept."""
    compiled = bench.trainers.COMPILED
    epochs = [{"seconds": 0.010, "steps": 10, "phases": {"gather": 0.002, compiled: 0.007}}] * 2
    breakdown = bench.bench_mnist.step_breakdown(epochs)
    assert breakdown["gather"] == pytest.approx(200)
    assert breakdown[compiled] == pytest.approx(700)
    assert breakdown["forward"] == breakdown["backward"] == breakdown["optimiser"] == 0
    assert breakdown["overhead"] == pytest.approx(100)
    assert breakdown["step"] == pytest.approx(1000)


def check_against(bench, impl: str, reference: str) -> None:
    """`impl` and `reference` from the same weights on the same batch: the same first loss
    to float32 rounding, the same few SGD steps, the loss going down; after restart, the
    first loss again (the compiled step is kept, the weights and momentum are not)."""
    trainers = bench.trainers
    layers = trainers.initial_layers(trainers.sizes_for_width(32), seed=0)
    data = synthetic()
    index = np.arange(64)
    mine = trainers.TRAINERS[impl](layers, data, SGD)
    theirs = trainers.TRAINERS[reference](layers, data, SGD)
    got, expected = losses(mine, index, 6), losses(theirs, index, 6)
    assert got[0] == pytest.approx(expected[0], rel=1e-6, abs=1e-6)
    assert got == pytest.approx(expected, rel=1e-5)  # momentum, nesterov: torch's update
    assert all(b < a for a, b in zip(got, got[1:], strict=False))
    mine.restart(layers)
    assert losses(mine, index, 6) == pytest.approx(got, rel=1e-6)
    assert 0 <= mine.accuracy(*data) <= 1


def test_jax_jit_trains_like_the_floor(bench):
    pytest.importorskip("jax")
    assert bench.trainers.unavailable("jax_jit") is None
    check_against(bench, "jax_jit", "numpy_floor")


def test_minigrad_compiled_trains_like_minigrad(bench):
    import minigrad

    if not hasattr(minigrad, "compile"):
        pytest.skip("this minigrad has no mg.compile yet")
    assert bench.trainers.unavailable("minigrad_compiled") is None
    check_against(bench, "minigrad_compiled", "minigrad")
