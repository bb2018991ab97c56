"""Training speed on MNIST: minigrad against PyTorch (CPU, eager) and a hand-written NumPy floor.

All three train the tutorial's network, Linear(784, 128) -> ReLU -> Linear(128, 64) -> ReLU ->
Linear(64, 10) with cross-entropy and SGD (lr 0.05, momentum 0.9, nesterov), in one process,
from the same initial weights, on the same batches in the same order (one permutation per epoch,
shared), gathering each batch by index from arrays already in memory. The three run each epoch
in turns of a few steps, so that they share the machine's noise; the median epoch time and the
median of the per-epoch ratios are reported (see benchmarks/README.md).

    python benchmarks/bench_mnist.py                      # batch 64 and 512, 5 epochs, 2 threads
    python benchmarks/bench_mnist.py --batch-sizes 64 --epochs 3 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from itertools import islice, pairwise

import harness
import numpy as np
import torch
from numpy_floor import NumpyMLP

import minigrad as mg

SIZES = (784, 128, 64, 10)
NAMES = ("minigrad", "pytorch", "numpy_floor")  # the names of the three trainers below


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        default=str(harness.DEFAULT_DATA_ROOT),
        help="folder holding MNIST/raw (default: ../shared/datasets)",
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per batch size")
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=50,
        help="untimed steps on throwaway copies before timing (at least 1)",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="cut every epoch to this many steps (for quick checks)",
    )
    parser.add_argument(
        "--chunk-steps",
        type=int,
        default=None,
        help="the three take turns every this many steps (default: 10 with one thread; whole "
        "epochs with more, where PyTorch's spinning OpenMP threads would slow the next turn)",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for NumPy and PyTorch")
    parser.add_argument(
        "--impls",
        nargs="+",
        choices=NAMES,
        default=list(NAMES),
        help="which to run (default all three; one alone is handy under a profiler)",
    )
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--no-nesterov", dest="nesterov", action="store_false")
    parser.add_argument(
        "--weight-decay", type=float, default=0.0, help="0 (examples/mnist.py uses 5e-4)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(harness.RESULTS / "bench_mnist.json"))
    args = parser.parse_args(argv)
    if args.chunk_steps is None:
        args.chunk_steps = 10 if args.threads == 1 else 10**9
    for name in ("epochs", "chunk_steps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


# ---- the three trainers -----------------------------------------------------------------------
# Each one's train_steps(order, ...) is the usual training loop over the batches of one epoch,
# written as that library's users write it; it yields the loss (a float) after every step, so
# that the driver can run the three in alternating chunks of steps.


class MinigradTrainer:
    name = "minigrad"

    def __init__(self, layers, data, args):
        linears = [mg.nn.Linear(n_in, n_out) for n_in, n_out in pairwise(SIZES)]
        self.model = mg.nn.Sequential(*_with_relus(linears, mg.nn.ReLU))
        for linear, (w, b) in zip(linears, layers, strict=True):
            linear.weight.array[...] = w
            linear.bias.array[...] = b
        self.loss_fn = mg.nn.CrossEntropyLoss()
        self.opt = mg.optim.SGD(self.model.parameters(), **_sgd_settings(args))
        self.inputs, self.targets = data

    def train_steps(self, order, batch_size, max_steps):
        for index in _batches(order, batch_size, max_steps):
            x, y = mg.from_numpy(self.inputs[index]), mg.from_numpy(self.targets[index])
            loss = self.loss_fn(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            yield loss.item()

    def accuracy(self, inputs, targets) -> float:
        with mg.no_grad():
            predicted = self.model(mg.from_numpy(inputs)).argmax(1).numpy()
        return float((predicted == targets).mean())


class TorchTrainer:
    name = "pytorch"

    def __init__(self, layers, data, args):
        linears = [torch.nn.Linear(n_in, n_out) for n_in, n_out in pairwise(SIZES)]
        self.model = torch.nn.Sequential(*_with_relus(linears, torch.nn.ReLU))
        with torch.no_grad():
            for linear, (w, b) in zip(linears, layers, strict=True):
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), **_sgd_settings(args))
        self.inputs, self.targets = (torch.from_numpy(a) for a in data)  # shares the arrays

    def train_steps(self, order, batch_size, max_steps):
        for index in _batches(torch.from_numpy(order), batch_size, max_steps):
            x, y = self.inputs[index], self.targets[index]
            loss = self.loss_fn(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            yield loss.item()

    def accuracy(self, inputs, targets) -> float:
        with torch.no_grad():
            predicted = self.model(torch.from_numpy(inputs)).argmax(1).numpy()
        return float((predicted == targets).mean())


class NumpyTrainer:
    name = "numpy_floor"

    def __init__(self, layers, data, args):
        self.model = NumpyMLP(layers, **_sgd_settings(args))
        self.inputs, self.targets = data

    def train_steps(self, order, batch_size, max_steps):
        for index in _batches(order, batch_size, max_steps):
            yield float(self.model.train_step(self.inputs[index], self.targets[index]))

    def accuracy(self, inputs, targets) -> float:
        return float((self.model.predict(inputs) == targets).mean())


TRAINERS = (MinigradTrainer, TorchTrainer, NumpyTrainer)


def _sgd_settings(args) -> dict:
    return dict(
        lr=args.lr, momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay
    )


def _with_relus(linears, relu):
    layers = []
    for linear in linears:
        layers += [linear, relu()]
    return layers[:-1]


def _batches(order, batch_size: int, max_steps: int | None):
    """Slices of `order` (the epoch's permutation), one per step; the last may be short."""
    stops = range(batch_size, len(order) + batch_size, batch_size)
    for step, stop in enumerate(stops):
        if step == max_steps:
            return
        yield order[stop - batch_size : stop]


def initial_layers(seed: int):
    """minigrad's Linear init (PyTorch's default) from a seed, as (weight, bias) NumPy arrays."""
    mg.manual_seed(seed)
    linears = [mg.nn.Linear(n_in, n_out) for n_in, n_out in pairwise(SIZES)]
    return [(lin.weight.detach().numpy(), lin.bias.detach().numpy()) for lin in linears]


# ---- the benchmark --------------------------------------------------------------------------


def bench_batch_size(batch_size, train, test, args) -> dict:
    """Warm up, then time epochs of the three trainers, interleaved chunk by chunk."""
    layers = initial_layers(args.seed)
    rng = np.random.default_rng(args.seed)
    count = len(train[1])

    # Warm-up on throwaway copies: the timed trainers start from the same untouched weights.
    warm_order = rng.permutation(count)
    first_losses = {}
    chosen = [make for make in TRAINERS if make.name in args.impls]
    for make in chosen:
        trainer = make(layers, train, args)
        losses = trainer.train_steps(warm_order, batch_size, max(1, args.warmup_steps))
        first_losses[trainer.name] = next(losses)
        for _ in losses:
            pass

    trainers = [make(layers, train, args) for make in chosen]
    times = {t.name: [] for t in trainers}
    last_loss, steps = {}, {}
    for epoch in range(args.epochs):
        order = rng.permutation(count)
        epoch_times, epoch_steps, epoch_loss = run_interleaved(
            trainers, order, batch_size, args.max_steps, args.chunk_steps, first=epoch
        )
        for name in times:
            times[name].append(epoch_times[name])
        steps, last_loss = epoch_steps, epoch_loss
    steps = steps[trainers[0].name]

    result = {"batch_size": batch_size, "steps_per_epoch": steps, "impls": {}}
    for trainer in trainers:
        median = statistics.median(times[trainer.name])
        result["impls"][trainer.name] = {
            "epoch_seconds": times[trainer.name],
            "median_epoch_seconds": median,
            "steps_per_second": steps / median,
            "first_step_loss": first_losses[trainer.name],
            "final_train_loss": last_loss[trainer.name],
            "test_accuracy": trainer.accuracy(*test),
        }
    # The three times of one epoch share its noise: a ratio is the median of per-epoch ratios.
    others = [name for name in times if name != "minigrad"] if "minigrad" in times else []
    result["epoch_ratios"] = {
        f"minigrad/{other}": [a / b for a, b in zip(times["minigrad"], times[other], strict=True)]
        for other in others
    }
    result["ratios"] = {key: statistics.median(r) for key, r in result["epoch_ratios"].items()}
    return result


def run_interleaved(trainers, order, batch_size, max_steps, chunk_steps, first=0):
    """One epoch of every trainer over `order`, taking turns of `chunk_steps` steps each.

    Turns of a few steps make the three share the machine's noise (other processes on shared
    cores) at a fine grain; only the steps themselves are timed. `first` rotates who starts.
    Returns each trainer's total seconds, number of steps and last loss.
    """
    shift = first % len(trainers)
    running = {
        t.name: t.train_steps(order, batch_size, max_steps)
        for t in trainers[shift:] + trainers[:shift]
    }
    seconds = dict.fromkeys(running, 0.0)
    steps = dict.fromkeys(running, 0)
    last_loss = {}
    while running:
        for name, losses in list(running.items()):
            start = time.perf_counter()
            chunk = list(islice(losses, chunk_steps))  # runs up to chunk_steps training steps
            seconds[name] += time.perf_counter() - start
            steps[name] += len(chunk)
            if chunk:
                last_loss[name] = chunk[-1]
            if len(chunk) < chunk_steps:  # the epoch is over for this one
                del running[name]
    return seconds, steps, last_loss


def format_results(results) -> str:
    rows = []
    for result in results:
        for name, impl in result["impls"].items():
            ratio = result["ratios"].get(f"minigrad/{name}", 1.0 if name == "minigrad" else None)
            rows.append(
                [
                    result["batch_size"],
                    name,
                    f"{impl['median_epoch_seconds']:.3f}",
                    f"{impl['steps_per_second']:.0f}",
                    f"{100 * impl['test_accuracy']:.2f}%",
                    "-" if ratio is None else f"{ratio:.2f}x",
                ]
            )
    headers = ["batch", "impl", "epoch s (median)", "steps/s", "test acc", "minigrad/this"]
    return harness.table(headers, rows)


def main(argv=None) -> dict:
    args = parse_args(argv)
    threads = harness.limit_threads(args.threads, torch)
    load_before = harness.warn_if_busy(args.threads)
    train = mg.data.MNIST(args.data_root, train=True, download=False).arrays()
    test = mg.data.MNIST(args.data_root, train=False, download=False).arrays()

    results = []
    for batch_size in args.batch_sizes:
        results.append(bench_batch_size(batch_size, train, test, args))
        print(f"batch {batch_size}: done", file=sys.stderr, flush=True)

    settings = {key: value for key, value in vars(args).items() if key != "json"}
    settings["network"] = " -> ReLU -> ".join(f"Linear{pair}" for pair in pairwise(SIZES))
    document = harness.report("bench_mnist", settings, threads, load_before, torch, results)
    path = harness.write_json(args.json, document)
    print(format_results(results))
    print(
        "minigrad/this: minigrad's epoch time over this one's in the same epoch (median over "
        f"epochs; above 1 means minigrad is slower); threads: {threads}; written to {path}"
    )
    return document


if __name__ == "__main__":
    main()
