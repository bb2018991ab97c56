"""Memory: backward frees what the graph saved, no cycle keeps a graph alive, training stays flat.

minigrad frees memory by reference counting alone: a graph is a tree of Contexts hanging from
its output tensor, so dropping the output (or running backward, which releases saved arrays)
frees it at once, without waiting for Python's cycle collector.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Context

F = mg.nn.functional


def live_contexts() -> int:
    """Graph nodes currently alive (including ones only a reference cycle would keep)."""
    return sum(type(obj) is Context for obj in gc.get_objects())


@pytest.fixture
def no_cycle_collector():
    """Run with the cycle collector off, so anything freed was freed by reference counting."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def tutorial_network() -> mg.nn.Module:
    """The tutorial's MNIST network: 784-128-64-10 with ReLU."""
    return mg.nn.Sequential(
        mg.nn.Linear(784, 128),
        mg.nn.ReLU(),
        mg.nn.Linear(128, 64),
        mg.nn.ReLU(),
        mg.nn.Linear(64, 10),
    )


# ---- backward releases saved arrays ------------------------------------------------------------


def test_backward_frees_saved_arrays():
    mg.manual_seed(0)
    x = mg.randn(4, 5, requires_grad=True)
    w = mg.randn(5, 3, requires_grad=True)
    h = (x @ w).exp()  # ExpBackward saves its output, h's array
    t = h.tanh()  # TanhBackward saves its output, t's array
    y = t.sum()
    saved = [weakref.ref(h.array), weakref.ref(t.array)]
    del h, t
    assert all(ref() is not None for ref in saved), "the graph should keep them until backward"
    nodes = list(mg.autograd.tape(y))
    assert any(node._saved for node in nodes)

    y.backward()

    assert all(ref() is None for ref in saved), "backward must free the saved arrays at once"
    for node in nodes:
        assert node._saved is None and node.released, f"{node.name()} still holds saved arrays"


def test_retain_graph_keeps_saved_arrays_until_the_last_backward():
    x = mg.tensor([0.5, 1.5, 2.5], requires_grad=True)
    h = x.exp()
    y = (h * h).sum()
    saved = weakref.ref(h.array)
    del h

    y.backward(retain_graph=True)
    assert saved() is not None, "retain_graph=True must keep the saved arrays"
    y.backward()
    assert saved() is None
    np.testing.assert_allclose(
        x.grad.detach().numpy(), 4 * np.exp(2 * x.detach().numpy()), rtol=1e-6
    )
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_released_graph_is_freed_with_its_output(no_cycle_collector):
    x = mg.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    y = (x.relu() * x).log_softmax(1).sum()
    node, leaf_edge = weakref.ref(y.grad_fn), weakref.ref(mg.autograd.tape(y)[-1])
    y.backward()
    del y
    assert node() is None and leaf_edge() is None, "the graph outlived its output"


# ---- no reference cycles -----------------------------------------------------------------------


def test_graph_is_freed_by_reference_counting_alone(no_cycle_collector):
    """With the cycle collector off, dropping the output frees every node at once."""
    x = mg.randn(3, 4, requires_grad=True)
    w = mg.randn(4, 2, requires_grad=True)
    hidden = (x * 2).relu()
    y = (hidden @ w).log_softmax(1)[:, 0].sum()
    nodes = [weakref.ref(node) for node in mg.autograd.tape(y)]
    hidden_ref = weakref.ref(hidden)
    assert len(nodes) >= 5
    del y, hidden
    assert hidden_ref() is None
    assert [ref() for ref in nodes if ref() is not None] == [], "a cycle keeps graph nodes alive"


def test_training_step_leaves_no_garbage_for_the_cycle_collector():
    """One full step (forward, backward, SGD with momentum) creates no reference cycles."""
    mg.manual_seed(0)
    model = tutorial_network()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = mg.randn(8, 784), mg.tensor(np.arange(8) % 10)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    step()  # first step creates the momentum buffers
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep whatever the collector finds, so we can look at it
    try:
        step()
        gc.collect()
        garbage = [obj for obj in gc.garbage if isinstance(obj, (mg.Tensor, Context, np.ndarray))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert garbage == [], f"reference cycles through {sorted({type(o).__name__ for o in garbage})}"
    assert live_contexts() == 0


# ---- no_grad -----------------------------------------------------------------------------------


def test_no_grad_evaluation_builds_no_graph():
    mg.manual_seed(0)
    model = tutorial_network()
    x, y = mg.randn(32, 784), mg.tensor(np.arange(32) % 10)
    gc.collect()
    before = live_contexts()

    with mg.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        probs = logits.softmax(1)
        accuracy = (logits.argmax(1) == y).detach().numpy().mean()
        alive = live_contexts()

    assert alive == before, f"no_grad left {alive - before} graph nodes alive"
    for result in (logits, loss, probs):
        assert result.grad_fn is None and not result.requires_grad
    assert 0.0 <= accuracy <= 1.0


def test_no_grad_decorator_builds_no_graph():
    model = tutorial_network()

    @mg.no_grad()
    def evaluate(batch):
        return model(batch).log_softmax(1)

    gc.collect()
    before = live_contexts()
    out = evaluate(mg.randn(4, 784))
    assert out.grad_fn is None and not out.requires_grad
    assert live_contexts() == before
    assert mg.is_grad_enabled()


# ---- 2,000 training steps ----------------------------------------------------------------------

STEPS, SAMPLE_EVERY = 2000, 100
# Bytes over the last 1,000 steps. Measured: about 1 KiB. Keeping one 0-d array per step
# alive adds about 100 KiB; keeping each step's loss tensor (and its graph), about 2 MiB.
ALLOWED_GROWTH = 64 * 1024


def measure_training_memory(steps: int = STEPS) -> dict:
    """Train the tutorial network on random data, sampling traced memory every 100 steps."""
    mg.manual_seed(0)
    model = tutorial_network()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    batches = [
        (
            mg.tensor(rng.standard_normal((64, 784), dtype=np.float32)),
            mg.tensor(rng.integers(0, 10, 64)),
        )
        for _ in range(4)
    ]
    gc.collect()
    tracemalloc.start()
    samples = {}
    started = time.perf_counter()
    try:
        for step in range(1, steps + 1):
            x, y = batches[step % len(batches)]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
            if step % 500 == 0:  # an evaluation now and then, as a training script does
                with mg.no_grad():
                    model(x).argmax(1)
            if step % SAMPLE_EVERY == 0:
                samples[step] = tracemalloc.get_traced_memory()[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del loss
    return {
        "seconds": time.perf_counter() - started,
        "samples": samples,
        "peak": peak,
        "loss": loss_value,
        "live_contexts": live_contexts(),
    }


def test_memory_stays_flat_over_2000_training_steps():
    """Traced memory (NumPy's array buffers and Python objects) must not grow after warm-up.

    The loop runs in a fresh interpreter with one BLAS thread: memory
    does not depend on threads, and on a busy machine OpenBLAS threads can make it 100x slower.
    """
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    samples = {int(step): size for step, size in measured["samples"].items()}
    middle, end = samples[STEPS // 2], samples[STEPS]
    last = [size for step, size in samples.items() if step >= STEPS // 2]
    growth, spread = end - middle, max(last) - min(last)
    report = (
        f"{STEPS} steps in {measured['seconds']:.1f} s; traced memory at step {STEPS // 2}: "
        f"{middle / 1024:.0f} KiB, at step {STEPS}: {end / 1024:.0f} KiB (growth "
        f"{growth / 1024:+.1f} KiB, spread {spread / 1024:.1f} KiB), peak "
        f"{measured['peak'] / 1024:.0f} KiB"
    )
    print(report)
    assert np.isfinite(measured["loss"])
    assert growth < ALLOWED_GROWTH, report
    assert spread < ALLOWED_GROWTH, report
    assert measured["live_contexts"] == 0, "graph nodes outlived the training loop"


if __name__ == "__main__":  # the subprocess of test_memory_stays_flat_over_2000_training_steps
    print(json.dumps(measure_training_memory()))
