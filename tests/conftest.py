"""Shared fixtures: the MNIST folder, the devices to run on, and comparison helpers."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("MINIGRAD_DATA_ROOT", REPO.parent / "shared" / "datasets"))
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a GPU with CuPy (skipped otherwise)")


def pytest_collection_modifyitems(config, items):
    if mg.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no GPU with CuPy on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Run the test on every device: "cpu" always, "cuda" when a GPU is there."""
    return request.param


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real MNIST in torchvision's layout (../shared/datasets); skip when absent."""
    if not (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real MNIST not found under {DATA_ROOT} (set MINIGRAD_DATA_ROOT)")
    return DATA_ROOT


def to_numpy(value) -> np.ndarray:
    """A host NumPy array from a minigrad Tensor, a torch tensor or an array."""
    if isinstance(value, mg.Tensor):
        return value.detach().numpy()
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def assert_close(actual, expected, dtype=np.float64, name: str = "value") -> None:
    """Relative error under TOLERANCE[dtype] (1e-10 for float64, 1e-5 for float32)."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    tol = TOLERANCE[np.dtype(dtype).type]
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    error = (
        float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max())
        if expected.size
        else 0.0
    )
    assert error <= tol * scale, f"{name}: max error {error:.3g} > {tol:g} x scale {scale:.3g}"


@pytest.fixture(scope="module")
def example():
    """examples/mnist.py imported as a module (its helpers, run_folder.py and mnist_options.py,
    sit beside it), for the tests of the main job and of its run folder."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    sys.path.insert(0, str(examples))
    try:
        spec = importlib.util.spec_from_file_location("mnist_example", examples / "mnist.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(examples))


def interrupt_epoch(example, monkeypatch, epoch: int) -> None:
    """Make examples/mnist.py's training raise KeyboardInterrupt (Ctrl-C) in the given epoch."""
    train_epoch, calls = example.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(example, "train_epoch", interrupted)
