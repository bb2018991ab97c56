"""The implementations that bench_mnist.py races: minigrad (eager, and its step through
mg.compile), PyTorch (three ways), JAX (jax.jit of the whole step), the NumPy floor.

Each trainer's `step(index, tick)` is the usual training step on the batch of rows `index`,
written as that library's users write it; it returns the loss as a float. `tick(phase)` is
called after each phase (gather, forward, optimiser, backward, optimiser) and charges the time
since the previous tick to that phase; the timed loop passes a PhaseClock, so the breakdown comes
from the very steps that are timed (a tick costs well under a microsecond). A compiled step
(jax_jit, minigrad_compiled) is one call that cannot be split: after the gather it ticks once,
COMPILED, for forward, backward and optimiser together.

A trainer that needs what may be missing (JAX, mg.compile) says why in `unavailable()` (None
when it can run); bench_mnist.py skips it with that note. A trainer with `restart(layers)` keeps
what it compiled: the warm-up runs on it, and restart puts back the initial weights and empties
the momentum, so that the timed steps never compile.

PyTorch and JAX are imported only by the trainers that need them, so that a worker process
running minigrad alone (bench_mnist.py --compare-with) neither loads them nor counts their memory.
"""

from __future__ import annotations

import time
from collections import defaultdict
from itertools import pairwise

import numpy as np
from numpy_floor import NumpyMLP

PHASES = ("gather", "forward", "backward", "optimiser")
COMPILED = "compiled"  # the phase of a compiled step: forward, backward and optimiser in one call


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

    @staticmethod
    def unavailable() -> str | None:
        return None

    def __init__(self, layers, data, settings):
        import minigrad as mg

        self.mg = mg
        self.linears = linears = [mg.nn.Linear(w.shape[1], w.shape[0]) for w, _ in layers]
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


class MinigradCompiledTrainer(MinigradTrainer):
    """The minigrad trainer with its whole step traced and compiled by mg.compile.

    step_fn is the usual step as one function (zero_grad first, as a compiled step is written);
    the call cannot be split into phases, so it is timed whole (COMPILED).
    """

    name = "minigrad_compiled"
    mode = "default"  # mg.compile's mode

    @staticmethod
    def unavailable() -> str | None:
        import minigrad

        return None if hasattr(minigrad, "compile") else "this minigrad has no mg.compile"

    def __init__(self, layers, data, settings):
        super().__init__(layers, data, settings)
        model, criterion, optimizer = self.model, self.loss_fn, self.opt

        def step_fn(x, y):
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            return loss

        self.compiled_step = self.mg.compile(step_fn, mode=self.mode)

    def step(self, index, tick=no_tick) -> float:
        x = self.mg.from_numpy(self.inputs[index])
        y = self.mg.from_numpy(self.targets[index])
        tick("gather")
        loss = self.compiled_step(x, y).item()
        tick(COMPILED)
        return loss

    def restart(self, layers) -> None:
        """The initial weights again, in place, and zero momentum: the next step is a first one.

        b = momentum * 0 + d is the first step's b = d exactly. The parameters' and buffers'
        arrays stay the same objects, in case the compiled step holds on to them.
        """
        with self.mg.no_grad():
            for linear, (w, b) in zip(self.linears, layers, strict=True):
                linear.weight.copy_(self.mg.from_numpy(w))
                linear.bias.copy_(self.mg.from_numpy(b))
        for state in self.opt.state.values():
            buffer = state.get("momentum_buffer")
            if buffer is not None:
                getattr(buffer, "array", buffer)[...] = 0
        self.opt.zero_grad()


class MinigradMaxAutotuneTrainer(MinigradCompiledTrainer):
    """mg.compile(step_fn, mode="max-autotune"): also the relayout pass (Linear weights kept as
    (in, out) memory)."""

    name = "minigrad_max_autotune"
    mode = "max-autotune"


class TorchTrainer:
    """PyTorch eager with its default SGD (a loop over the parameters on the CPU)."""

    name = "pytorch"
    sgd_options: dict = {}

    @staticmethod
    def unavailable() -> str | None:
        return None

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


class JaxTrainer:
    """jax.jit of the whole step: value_and_grad of the loss, then torch.optim.SGD's update.

    The step takes the parameters and the momentum buffers and returns new ones (donated, so
    XLA may update them in place). The batch is gathered with NumPy from the same arrays as
    the others and handed to the step as it is; the step's call returns before XLA has finished
    (JAX dispatches asynchronously), and float(loss) waits for it.
    """

    name = "jax_jit"

    @staticmethod
    def unavailable() -> str | None:
        try:
            import jax  # noqa: F401
        except Exception as error:  # not installed, or a jaxlib that does not load
            return f"import jax failed ({type(error).__name__}); pip install -e '.[bench]'"
        return None

    def __init__(self, layers, data, settings):
        import jax

        self.jax = jax
        train_step, forward = _jax_functions(jax, **settings)
        self.train_step = jax.jit(train_step, donate_argnums=(0, 1))
        self.forward = jax.jit(forward)
        self.inputs, targets = data
        self.targets = targets.astype(np.int32)  # JAX's integers are 32-bit: converted once
        self.restart(layers)

    def restart(self, layers) -> None:
        """Start again from `layers` (copied) with zero momentum; the compiled step is kept."""
        jnp = self.jax.numpy
        self.params = [jnp.array(a) for pair in layers for a in pair]  # w0, b0, w1, b1, ...
        self.buffers = [jnp.zeros_like(p) for p in self.params]

    def indices(self, order):
        return order

    def step(self, index, tick=no_tick) -> float:
        x, y = self.inputs[index], self.targets[index]
        tick("gather")
        self.params, self.buffers, loss = self.train_step(self.params, self.buffers, x, y)
        loss = float(loss)  # waits for the step
        tick(COMPILED)
        return loss

    def accuracy(self, inputs, targets) -> float:
        predicted = np.asarray(self.forward(self.params, inputs)).argmax(1)
        return float((predicted == targets).mean())


def _jax_functions(jax, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """The training step and the forward of the MLP, for jax.jit; params is [w0, b0, w1, ...]."""
    jnp = jax.numpy

    def forward(params, x):
        last = len(params) // 2 - 1
        for i in range(last + 1):
            x = x @ params[2 * i].T + params[2 * i + 1]
            if i < last:
                x = jax.nn.relu(x)
        return x

    def loss_fn(params, x, y):  # mean cross-entropy
        log_probs = jax.nn.log_softmax(forward(params, x))
        return -jnp.take_along_axis(log_probs, y[:, None], axis=1).mean()

    def update(p, g, b):  # torch.optim.SGD's update, in torch's order (dampening 0)
        if weight_decay:
            g = g + weight_decay * p
        b = momentum * b + g  # from a zero buffer this is torch's first b = g exactly
        d = g + momentum * b if nesterov else b
        return p - lr * d, b

    def train_step(params, buffers, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updated = [update(p, g, b) for p, g, b in zip(params, grads, buffers, strict=True)]
        return [p for p, _ in updated], [b for _, b in updated], loss

    return train_step, forward


class NumpyTrainer:
    name = "numpy_floor"

    @staticmethod
    def unavailable() -> str | None:
        return None

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
        MinigradCompiledTrainer,
        MinigradMaxAutotuneTrainer,
        TorchTrainer,
        TorchFusedTrainer,
        TorchCompiledTrainer,
        JaxTrainer,
        NumpyTrainer,
    )
}


def unavailable(impl: str) -> str | None:
    """Why trainer `impl` cannot run here (a missing optional library), or None if it can."""
    return TRAINERS[impl].unavailable()
