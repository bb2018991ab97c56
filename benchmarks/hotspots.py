"""What the engine could save: each hot spot of a minigrad step, timed as it is and as it could be.

bench_mnist.py says where a step's time goes (gather, forward, backward, optimiser). This script
times, at one batch size and width, the NumPy work behind each of those phases written the way
minigrad writes it today and the cheaper way an engine could write it, in turns, so that the
difference is what the change would save per step. It also times each library's fixed cost per
step: a whole training step of a tiny network (batch 1, width 8), where the arithmetic is nearly
nothing and what is left is Python, dispatch and allocation.

    python benchmarks/hotspots.py                      # batch 64, width 128, 1 thread
    python benchmarks/hotspots.py --batch-size 512 --width 2048
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np
from trainers import sizes_for_width
from turns import Participant


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=str(harness.DEFAULT_DATA_ROOT))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per comparison")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=str(harness.RESULTS / "hotspots.json"))
    return parser.parse_args(argv)


def variants(batch: int, sizes, rng, torch) -> dict:
    """Each hot spot: (what it is, {variant: zero-argument call}); the first variant is today's."""
    images = rng.standard_normal((60000, sizes[0]), dtype=np.float32)
    index = rng.permutation(60000)[:batch]
    gathered = np.empty((batch, sizes[0]), np.float32)
    x = images[index]
    weight = rng.standard_normal((sizes[1], sizes[0]), dtype=np.float32)
    weight_f = np.asfortranarray(weight)  # same (out, in) array, so weight_f.T is C-contiguous
    grad = rng.standard_normal((batch, sizes[1]), dtype=np.float32)
    z = np.maximum(grad, 0)
    probs = rng.random((batch, sizes[-1]), dtype=np.float32)
    target = rng.integers(0, sizes[-1], batch)
    rows = np.arange(batch)
    shapes = [(o, i) for i, o in zip(sizes, sizes[1:], strict=False)]
    shapes += [(o,) for o in sizes[1:]]
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    buffers = [np.zeros(s, np.float32) for s in shapes]
    flat = [np.concatenate([a.ravel() for a in arrays]) for arrays in (params, grads, buffers)]
    scratch = np.empty_like(flat[0])
    scratches = [np.empty_like(p) for p in params]
    momentum, lr = np.asarray(0.9, np.float32), np.asarray(0.05, np.float32)

    def sgd_per_parameter():  # minigrad's SGD.step (nesterov): per parameter, into scratch
        for p, d, b, s in zip(params, grads, buffers, scratches, strict=True):
            np.multiply(b, momentum, b)
            b += d
            np.multiply(b, momentum, s)
            np.add(d, s, s)
            p -= np.multiply(s, lr, s)

    def sgd_flat():  # the parameters and momentum as one flat array each (the gradients, which
        p, d, b = flat  # backward makes one by one, copied into one first)
        np.concatenate([g.reshape(-1) for g in grads], out=d)
        np.multiply(b, momentum, b)
        b += d
        np.multiply(b, momentum, scratch)
        np.add(d, scratch, scratch)
        p -= np.multiply(scratch, lr, scratch)

    # Scaled by 1.0 rather than 1 / batch (the same cost), so that repeating the in-place
    # version on one array never drives it into slow denormal numbers.
    def ce_backward_copy():
        g = probs.copy()
        g[rows, target] -= 1
        g *= 1.0

    def ce_backward_in_place():  # the softmax is not needed after backward: write over it
        probs[rows, target] -= 1
        np.multiply(probs, 1.0, out=probs)

    # The eight matrix products of one step (forward, weight and input gradients), with the
    # arrays of one step: NumPy's OpenBLAS as every NumPy engine must, against PyTorch's MKL.
    acts = [rng.standard_normal((batch, n), dtype=np.float32) for n in sizes[:-1]]
    outs = [rng.standard_normal((batch, n), dtype=np.float32) for n in sizes[1:]]
    weights = params[: len(sizes) - 1]

    def products(a, g, w):
        for i in range(len(w)):
            a[i] @ w[i].T
            g[i].T @ a[i]
            if i:
                g[i] @ w[i]

    def as_torch(arrays):
        return [torch.from_numpy(array) for array in arrays]

    torch_arrays = [as_torch(acts), as_torch(outs), as_torch(weights)]

    return {
        "matmuls": (
            "the eight matrix products of a step",
            {
                "NumPy (OpenBLAS)": lambda: products(acts, outs, weights),
                "PyTorch (MKL)": lambda: products(*torch_arrays),
            },
        ),
        "gather": (
            "the batch from the data set",
            {
                "x[index]": lambda: images[index],
                "np.take(..., out=buffer)": lambda: np.take(images, index, axis=0, out=gathered),
            },
        ),
        "linear1_forward": (
            "first layer x @ W.T",
            {
                "W in C order": lambda: x @ weight.T,
                "W in Fortran order": lambda: x @ weight_f.T,
            },
        ),
        "relu_backward": (
            "grad * (z > 0)",
            {
                "new arrays": lambda: grad * (z > 0),
                "in place": lambda: np.multiply(grad, z > 0, out=grad),
            },
        ),
        "cross_entropy_backward": (
            "softmax minus one-hot",
            {
                "copy of the softmax": ce_backward_copy,
                "in place": ce_backward_in_place,
            },
        ),
        "sgd_step": (
            f"{len(params)} parameters, nesterov momentum",
            {
                "per parameter": sgd_per_parameter,
                "flat buffers": sgd_flat,
            },
        ),
    }


def fixed_costs(args) -> dict:
    """Microseconds per training step of a tiny network (batch 1, width 8) in each library."""
    data, test = harness.load_mnist(args.data_root)
    config = {
        "sizes": sizes_for_width(8),
        "batch_size": 1,
        "seed": 0,
        "warmup_steps": 20,
        "max_steps": None,
        "settings": dict(lr=0.05, momentum=0.9, nesterov=True),
    }
    calls = {}
    for impl in ("minigrad", "pytorch", "numpy_floor"):
        trainer = Participant(impl, config, data, test).trainer
        index = trainer.indices(np.arange(1))
        calls[impl] = lambda t=trainer, i=index: t.step(i)  # the same row every time
    return harness.time_interleaved(calls, args.min_time, args.repeats)


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if not harness.in_threads(args.threads):
        sys.exit(harness.rerun_in_threads(args.threads, argv))
    import torch

    counts = harness.limit_threads(args.threads, torch)
    load_before = harness.warn_if_busy(args.threads)
    rng = np.random.default_rng(0)
    results, rows = {}, []
    for name, (what, calls) in variants(
        args.batch_size, sizes_for_width(args.width), rng, torch
    ).items():
        seconds = harness.time_interleaved(calls, args.min_time, args.repeats)
        results[name] = {"what": what, "seconds": seconds}
        (today, now), (other, then) = list(seconds.items())
        rows.append(
            [
                name,
                today,
                f"{now * 1e6:.1f}",
                other,
                f"{then * 1e6:.1f}",
                f"{(now - then) * 1e6:.1f}",
            ]
        )
    results["fixed_cost_per_step"] = fixed_costs(args)
    document = harness.report("hotspots", vars(args), counts, load_before, torch, results)
    path = harness.write_json(args.json, document)
    print(harness.table(["hot spot", "today", "us", "instead", "us", "saved us"], rows))
    fixed = results["fixed_cost_per_step"]
    print(
        "fixed cost of a step (batch 1, width 8), us: "
        + ", ".join(f"{name} {seconds * 1e6:.1f}" for name, seconds in fixed.items())
    )
    print(f"batch {args.batch_size}, width {args.width}, threads {counts}; written to {path}")
    return document


if __name__ == "__main__":
    main()
