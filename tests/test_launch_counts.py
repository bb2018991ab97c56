"""GPU launches per training step of the tutorial's MLP at batch 64, counted on the fake CuPy.

A step on a GPU at batch 64 is bound by the CPU cost of its launches, so their number is the
speed that can be counted without a GPU. The fake CuPy (tests/test_backend_seam.py) notes every
call that CuPy would run on the GPU: an array operator, a CuPy function or method that makes a
new array (views and allocations launch nothing), a copy from the host, one of our kernels, a
graph launch. The counts are asserted exactly, so a change that adds or removes launches shows
here; docs/gpu.md's table gives the same numbers.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import minigrad as mg
from minigrad.cuda import kernels
from tests.test_backend_seam import CALLS
from tests.test_cuda_kernels import emulated_kernels, fake_gpu  # noqa: F401 (fixtures)

BATCH = 64
EAGER_FUSED = 19  # the eager step with the fused kernels (docs/gpu.md)
# The same step with minigrad.cuda.kernels.enabled = False (4 check the labels: cross_entropy's
# look for ignored targets, and the op's own range check, which a compiled replay relies on;
# ReLU's backward is PyTorch's threshold rule, where(z <= 0, 0, grad): 2 launches on a GPU).
EAGER_UNFUSED = 81
GRAPHED = 4  # the loader's gather kernel, 1 copy into the static batch (a gather_batch launch),
# the graph, the loss copy
COMPILED = 5  # the same, and one copy of every gradient (views of one array) before the loss's


@pytest.fixture
def emulated(fake_gpu, emulated_kernels, monkeypatch):  # noqa: F811 (the imported fixtures)
    monkeypatch.setattr(kernels, "_function", lambda name, dtype: emulated_kernels[name, dtype])
    monkeypatch.setattr(kernels, "MAX_BLOCKS", 2)  # fewer emulated threads; the same launches
    monkeypatch.setattr(kernels, "enabled", True)


TUTORIAL, NARROW = (784, 128, 64, 10), (30, 16, 12, 10)  # launches do not depend on widths


def _setup(graphed, sizes=TUTORIAL):
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((3 * BATCH, sizes[0])).astype(np.float32)
    targets = rng.integers(0, 10, 3 * BATCH)
    nn = mg.nn
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]),
                          nn.ReLU(), nn.Linear(sizes[2], sizes[3])).to("cuda")
    optimizer = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    loss_fn = nn.CrossEntropyLoss()
    loader = mg.data.DataLoader((inputs, targets), BATCH, shuffle=True, device="cuda")
    if graphed is True:
        return loader, mg.cuda.graphed_step(model, loss_fn, optimizer, BATCH)

    def step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return loader, (mg.compile(step) if graphed == "compiled" else step)


def count_step(graphed, sizes=TUTORIAL) -> Counter:
    """The launches of the third step (after the first made the momentum buffers and the graph):
    graphed is False (eager), True (mg.cuda.graphed_step) or "compiled" (mg.compile)."""
    loader, step = _setup(graphed, sizes)
    batches = iter(loader)  # the epoch's shuffle is drawn here, outside the counted step
    for _ in range(2):
        step(*next(batches))
    counts = Counter()
    CALLS.hook = lambda name: counts.update([name])
    try:
        step(*next(batches))
    finally:
        CALLS.hook = None
    return counts


def _describe(counts: Counter) -> str:
    return f"{sum(counts.values())} launches: " + ", ".join(
        f"{name} x{n}" for name, n in sorted(counts.items()))


def test_eager_step_launches(emulated):
    counts = count_step(graphed=False)
    # The multi-tensor SGD takes the fresh gradients' addresses in its arguments: no upload.
    assert "function:asarray (host to device)" not in counts, _describe(counts)
    assert sum(counts.values()) == EAGER_FUSED, _describe(counts)


def test_eager_step_launches_without_the_fused_kernels(emulated, monkeypatch):
    monkeypatch.setattr(kernels, "enabled", False)
    counts = count_step(graphed=False)
    assert sum(counts.values()) == EAGER_UNFUSED, _describe(counts)


def test_graphed_step_launches(emulated):
    counts = count_step(graphed=True, sizes=NARROW)  # our GEMMs are slow on the emulator
    assert sum(counts.values()) == GRAPHED, _describe(counts)
    assert counts["graph_launch"] == 1, _describe(counts)


def test_compiled_step_launches(emulated):
    counts = count_step(graphed="compiled", sizes=NARROW)
    assert counts["graph_launch"] == 1, _describe(counts)
    assert sum(counts.values()) == COMPILED, _describe(counts)
