"""The implementations that bench_mnist.py races: minigrad, PyTorch (three ways), the NumPy floor.

Each trainer's `step(index, tick)` is the usual training step on the batch of rows `index`,
written as that library's users write it; it returns the loss as a float. `tick(phase)` is
called after each phase (gather, forward, optimiser, backward, optimiser) and charges the time
since the previous tick to that phase; the timed loop passes a PhaseClock, so the breakdown comes
from the very steps that are timed (a tick costs well under a microsecond).

PyTorch is imported only by the trainers that need it, so that a worker process running
minigrad alone (bench_mnist.py --compare-with) neither loads it nor counts its memory.
"""

from __future__ import annotations

import time
from collections import defaultdict
from itertools import pairwise

import numpy as np
from numpy_floor import NumpyMLP

PHASES = ("gather", "forward", "backward", "optimiser")


def sizes_for_width(width: int) -> tuple[int, ...]:
    """784 -> width -> width // 2 -> 10; width 128 is the tutorial's network."""
    return (784, width, width // 2, 10)


def initial_layers(sizes, seed: int) -> list:
    """PyTorch's default Linear init, U(-1/sqrt(in), 1/sqrt(in)), as float32 (weight, bias) pairs.

    Drawn with NumPy from `seed`, so that every trainer, and every minigrad checkout compared by
    --compare-with, starts from the same weights whatever its own random generator does.
    """
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in pairwise(sizes):
        bound = 1.0 / np.sqrt(n_in)
        weight = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        layers.append((weight, rng.uniform(-bound, bound, n_out).astype(np.float32)))
    return layers


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The permutation of the rows for one epoch (epoch -1 is the warm-up's), from seed alone."""
    return np.random.default_rng([seed, epoch + 1]).permutation(count)


def batches(order, batch_size: int, max_steps: int | None):
    """Slices of `order`, one per step; the last may be short."""
    stops = range(batch_size, len(order) + batch_size, batch_size)
    for step, stop in enumerate(stops):
        if step == max_steps:
            return
        yield order[stop - batch_size : stop]


def no_tick(phase: str) -> None:
    """The tick of an untimed step."""


class PhaseClock:
    """Seconds per phase: each call charges the time since the previous call to its phase."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.last = time.perf_counter()

    def restart(self) -> None:
        """Start the next phase now (time before this belongs to no phase)."""
        self.last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self.last
        self.last = now


def _with_relus(linears, relu):
    layers = []
    for linear in linears:
        layers += [linear, relu()]
    return layers[:-1]


class MinigradTrainer:
    name = "minigrad"

    def __init__(self, layers, data, settings):
        import minigrad as mg

        self.mg = mg
        linears = [mg.nn.Linear(w.shape[1], w.shape[0]) for w, _ in layers]
        self.model = mg.nn.Sequential(*_with_relus(linears, mg.nn.ReLU))
        for linear, (w, b) in zip(linears, layers, strict=True):
            linear.weight.array[...] = w
            linear.bias.array[...] = b
        self.loss_fn = mg.nn.CrossEntropyLoss()
        self.opt = mg.optim.SGD(self.model.parameters(), **settings)
        self.inputs, self.targets = data

    def indices(self, order):
        return order

    def step(self, index, tick=no_tick) -> float:
        x = self.mg.from_numpy(self.inputs[index])
        y = self.mg.from_numpy(self.targets[index])
        tick("gather")
        loss = self.loss_fn(self.model(x), y)
        tick("forward")
        self.opt.zero_grad()
        tick("optimiser")
        loss.backward()
        tick("backward")
        self.opt.step()
        tick("optimiser")
        return loss.item()

    def accuracy(self, inputs, targets) -> float:
        with self.mg.no_grad():
            predicted = self.model(self.mg.from_numpy(inputs)).argmax(1).numpy()
        return float((predicted == targets).mean())


class TorchTrainer:
    """PyTorch eager with its default SGD (a loop over the parameters on the CPU)."""

    name = "pytorch"
    sgd_options: dict = {}

    def __init__(self, layers, data, settings):
        import torch

        self.torch = torch
        linears = [torch.nn.Linear(w.shape[1], w.shape[0]) for w, _ in layers]
        self.model = torch.nn.Sequential(*_with_relus(linears, torch.nn.ReLU))
        with torch.no_grad():
            for linear, (w, b) in zip(linears, layers, strict=True):
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), **settings, **self.sgd_options)
        self.forward = self.compiled(self.model)
        self.inputs, self.targets = (torch.from_numpy(a) for a in data)  # shares the arrays

    def compiled(self, model):
        return model

    def indices(self, order):
        return self.torch.from_numpy(order)

    def step(self, index, tick=no_tick) -> float:
        # index_select is PyTorch's fast gather (x[index] takes the general indexing path).
        x, y = self.inputs.index_select(0, index), self.targets.index_select(0, index)
        tick("gather")
        loss = self.loss_fn(self.forward(x), y)
        tick("forward")
        self.opt.zero_grad()
        tick("optimiser")
        loss.backward()
        tick("backward")
        self.opt.step()
        tick("optimiser")
        return loss.item()

    def accuracy(self, inputs, targets) -> float:
        with self.torch.no_grad():
            predicted = self.model(self.torch.from_numpy(inputs)).argmax(1).numpy()
        return float((predicted == targets).mean())


class TorchFusedTrainer(TorchTrainer):
    """PyTorch eager with SGD(fused=True): one kernel updates every parameter."""

    name = "pytorch_fused"
    sgd_options = {"fused": True}


class TorchCompiledTrainer(TorchTrainer):
    """torch.compile(model) (Inductor, C++ kernels built on this machine), default SGD."""

    name = "pytorch_compile"

    def compiled(self, model):
        return self.torch.compile(model)


class NumpyTrainer:
    name = "numpy_floor"

    def __init__(self, layers, data, settings):
        from numpy_floor import cross_entropy

        self.cross_entropy = cross_entropy
        self.model = NumpyMLP(layers, **settings)
        self.inputs, self.targets = data

    def indices(self, order):
        return order

    def step(self, index, tick=no_tick) -> float:
        x, y = self.inputs[index], self.targets[index]
        tick("gather")
        logits, inputs = self.model.forward(x)
        loss, grad = self.cross_entropy(logits, y)
        tick("forward")
        grads = self.model.backward(grad, inputs)
        tick("backward")
        self.model.step(grads)
        tick("optimiser")
        return float(loss)

    def accuracy(self, inputs, targets) -> float:
        return float((self.model.predict(inputs) == targets).mean())


TRAINERS = {
    make.name: make
    for make in (
        MinigradTrainer,
        TorchTrainer,
        TorchFusedTrainer,
        TorchCompiledTrainer,
        NumpyTrainer,
    )
}
