"""benchmarks/gpu_check.sh and the scripts it runs, checked on a machine without a GPU.

A future session gets one run of the script on a GPU machine, so what can go wrong without a GPU
is caught here: the script's syntax, that it stops at once (exit 2) with CuPy's error when CuPy
cannot run, that its steps' limits fit its budget in the promised order, that step 0's minigrad
part and benchmarks/sanitize_kernels.py run (on the CPU emulator of tests/cuda_emulator.py, with
the fake CuPy) and can fail, and that bench_gpu.py goes on after a variant that raises.
No time is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigrad.fused import gemm, kernels
from tests.test_cuda_kernels import emulated_kernels, fake_gpu, kernel_device  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def on_the_emulator(test):
    """Run `test` with the kernels on the CPU emulator and "cuda" meaning the fake CuPy."""
    emulated = pytest.mark.parametrize("kernel_device", ["cpu-emulation"], indirect=True)
    return pytest.mark.usefixtures("kernel_device")(emulated(test))


def _load(name: str):
    """A script of benchmarks/ as a module (they are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _heredoc(delimiter: str) -> str:
    """The text of the script's here-document that ends at a line `delimiter`."""
    text = SCRIPT.read_text()
    found = re.search(rf"<<'{delimiter}'\n(.*?)\n{delimiter}\n", text, re.S)
    assert found, f"no here-document {delimiter} in {SCRIPT}"
    return found.group(1)


def _step_zero():
    """Step 0's Python (the MACHINE here-document) as a namespace, without running its main."""
    namespace = {"__name__": "gpu_check_step_zero"}
    exec(compile(_heredoc("MACHINE"), f"{SCRIPT}:MACHINE", "exec"), namespace)
    return namespace


# ---- the script itself --------------------------------------------------------------------------


def test_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr


def test_without_cupy_the_script_stops_at_once_with_exit_2_and_the_real_error(tmp_path):
    fake = tmp_path / "no-cupy"  # on a machine that has CuPy, hide it behind one that fails
    fake.mkdir()
    (fake / "cupy.py").write_text("raise ImportError('no CuPy here (the test hides it)')\n")
    environment = {k: v for k, v in os.environ.items() if k != "GPU_CHECK_DRY_RUN"}
    environment.update(OUT=str(tmp_path / "out"), PYTHON=sys.executable, PYTHONPATH=str(fake))
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True,
                            env=environment, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "CuPy cannot run here; the real error:" in output
    assert "ImportError: no CuPy here (the test hides it)" in output
    assert "STOPPED: step 0 failed" in output and "nothing else ran" in output
    assert "== 1. MNIST" not in output and "== 2." not in output  # nothing after step 0 ran
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "STOPPED: step 0 failed" in log  # the log has what was printed


def _step_limits() -> list:
    """(name, seconds) of each `run [--info] "NAME" SECONDS ...` line, in the script's order."""
    pattern = r'^[ \t]*(?:\w+=\S+[ \t]+)*run (?:--info )?"([^"]+)" (\d+) '
    return [(name, int(seconds)) for name, seconds in re.findall(pattern, SCRIPT.read_text(),
                                                                 re.M)]


def test_step_limits_add_up_to_at_most_the_budget_in_the_promised_order():
    budget = int(re.search(r'BUDGET="\$\{GPU_CHECK_BUDGET:-(\d+)\}"', SCRIPT.read_text()).group(1))
    limits = _step_limits()
    names = [name for name, _ in limits]
    assert len(limits) == 9, limits  # nvidia-smi, machine, kernels, mnist, pytest, 2 sanitizer, 2
    assert sum(seconds for _, seconds in limits) <= budget, limits
    order = ["0. nvidia-smi", "0. machine", "2. kernels", "$MNIST_STEP", "4. pytest -m cuda",
             "5a. memcheck", "5b. racecheck", "6. benchmark", "7. probe"]
    for expected, name in zip(order, names, strict=True):
        assert name.startswith(expected), (expected, names)
    seconds = dict(limits)  # the main job's 10 epochs (about 20 s estimated) and the GPU tests
    assert seconds["$MNIST_STEP"] >= 40 and seconds["4. pytest -m cuda"] >= 50


def _run_heredoc(delimiter: str, *args) -> subprocess.CompletedProcess:
    """Run one of the script's Python here-documents as the script does: python - ARGS."""
    return subprocess.run([sys.executable, "-", *map(str, args)], input=_heredoc(delimiter),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("epochs, final, passes", [(10, 0.9825, True), (10, 0.9815, False),
                                                     (9, 0.99, False), (0, None, False)])
def test_mnist_step_needs_10_epochs_and_98_2_percent(tmp_path, epochs, final, passes):
    text = SCRIPT.read_text()
    assert "MNIST_TARGET=0.982" in text
    assert re.search(r"examples/mnist.py --device cuda --epochs 10 ", text)
    rows = [{"epoch": e + 1, "test_acc": 0.9} for e in range(epochs)]
    if rows:
        rows[-1]["test_acc"] = final
    stats = tmp_path / "stats.json"  # as examples/run_folder.py writes it
    stats.write_text(json.dumps({"settings": {}, "epochs": rows}))
    result = _run_heredoc("ACCURACY", stats, 0.982)
    assert (result.returncode == 0) == passes, result.stdout + result.stderr
    assert _run_heredoc("ACCURACY", tmp_path / "missing.json", 0.982).returncode == 1


@pytest.mark.parametrize("skipped, passes", [(3, False), (2, True)])
def test_a_pytest_step_whose_tests_all_skipped_fails(tmp_path, skipped, passes):
    junit = tmp_path / "junit.xml"  # pytest's layout: testsuites > testsuite
    junit.write_text(f'<testsuites><testsuite name="pytest" tests="3" skipped="{skipped}" '
                     'errors="0" failures="0"/></testsuites>')
    result = _run_heredoc("JUNIT", junit)
    assert (result.returncode == 0) == passes, result.stdout + result.stderr


# ---- step 0's minigrad part, on the CPU emulator ------------------------------------------


@on_the_emulator
def test_step_zero_builds_every_kernel_and_checks_a_captured_step(capsys):
    _step_zero()["check_minigrad_kernels"]()
    printed = capsys.readouterr().out
    assert f"built {2 * len(kernels.SOURCES)} kernels" in printed
    assert "the captured step (3 replays) gave the CPU's losses and weights" in printed


@on_the_emulator
def test_step_zero_fails_when_the_sgd_kernel_updates_nothing(monkeypatch):
    emulated = kernels._function  # the fixture's emulator table

    def without_sgd(name, dtype_name):
        if name == "sgd_update_many":
            return lambda grid, block, args: None  # a kernel that does nothing
        return emulated(name, dtype_name)

    monkeypatch.setattr(kernels, "_function", without_sgd)
    with pytest.raises(AssertionError, match="against the CPU's eager step"):
        _step_zero()["check_minigrad_kernels"]()


def test_step_zero_names_a_kernel_that_does_not_build(fake_gpu, monkeypatch):  # noqa: F811
    def refuse(name, dtype_name):
        raise RuntimeError("NVRTC says no")

    monkeypatch.setattr(kernels, "_function", refuse)
    with pytest.raises(RuntimeError, match=r"kernel \w+ \(float32\) did not build: NVRTC says no"):
        _step_zero()["check_minigrad_kernels"]()


# ---- sanitize_kernels.py ------------------------------------------------------------------------


@on_the_emulator
def test_sanitize_kernels_runs_every_kernel_against_numpy(capsys):
    sanitize = _load("sanitize_kernels")
    assert set(sanitize.KERNELS) == set(kernels.SOURCES)  # a new kernel needs its case here
    rows, features = sanitize.ROWS, sanitize.FEATURES  # its split-K products are split
    assert gemm.plan(rows, features, sanitize.SPLIT_K).slices > 1
    assert gemm.plan(features, 33, kernels.BLOCK + 44).slices > 1
    assert sanitize.main(["all"]) == 0
    printed = capsys.readouterr().out
    assert f"all {2 * len(kernels.SOURCES)} ran and matched NumPy" in printed


@on_the_emulator
def test_sanitize_kernels_reports_a_wrong_kernel_and_runs_the_rest(monkeypatch, capsys):
    emulated = kernels._function

    def wrong_gemm(name, dtype_name):
        if name == "gemm":
            return lambda grid, block, args: None  # leaves its output unwritten
        return emulated(name, dtype_name)

    monkeypatch.setattr(kernels, "_function", wrong_gemm)
    sanitize = _load("sanitize_kernels")
    assert sanitize.main(["gemm", "relu_backward"]) == 1
    printed = capsys.readouterr().out
    assert "FAILED  gemm (float32)" in printed and "FAILED  gemm (float64)" in printed
    assert "ok      relu_backward (float32)" in printed
    assert "2 of 4 FAILED: gemm (float32), gemm (float64)" in printed


def test_sanitize_kernels_refuses_an_unknown_kernel():
    with pytest.raises(SystemExit) as stopped:
        _load("sanitize_kernels").parse_args(["gemm", "no_such_kernel"])
    assert stopped.value.code == 2


# ---- bench_gpu.py: a variant that raises ------------------------------------------------------


def test_bench_gpu_records_a_failed_variant_and_still_runs_pytorch(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    bench = _load("bench_gpu")

    def broken(variant, data, start, batch_size, args):
        raise ValueError("the fused step broke")

    monkeypatch.setattr(bench, "run_minigrad", broken)
    status = bench.main(["--device", "cpu", "--epochs", "1", "--max-steps", "2",
                         "--batch-sizes", "64", "--data-root", str(tmp_path / "no-mnist"),
                         "--out", str(tmp_path)])
    assert status == 1
    rows = json.loads((tmp_path / "bench_gpu.json").read_text())["results"]
    assert [row["variant"] for row in rows] == ["minigrad", "minigrad-compiled", "pytorch"]
    for row in rows[:2]:  # both minigrad variants broke; PyTorch, the baseline, still ran
        error = row["error"]
        assert error["type"] == "ValueError" and error["message"] == "the fused step broke"
        assert "in broken" in error["traceback"] and "ValueError" in error["traceback"]
    assert "error" not in rows[2] and np.isfinite(rows[2]["median_epoch_s"])
    table = (tmp_path / "bench_gpu.md").read_text()
    assert "| 64 | minigrad | FAILED: ValueError: the fused step broke |" in table
    assert "2 variant(s) FAILED: minigrad at batch 64, minigrad-compiled at batch 64" \
        in capsys.readouterr().err
