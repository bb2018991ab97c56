"""Per-sample gradients of the tutorial's MLP (784-128-64-10, cross-entropy), three ways, side
by side in one process on one thread: mg.func.vmap with its batching rules, the same with
every op forced through the per-slice fallback (what vmap was before the rules: a loop), and
torch.func.vmap. Prints the median time of each and the ratios.

    python benchmarks/bench_vmap.py [--batch 64] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.func import batching  # noqa: E402


def minigrad_step(batch: int):
    rng = np.random.default_rng(0)
    model = mg.nn.Sequential(mg.nn.Linear(784, 128), mg.nn.ReLU(), mg.nn.Linear(128, 64),
                             mg.nn.ReLU(), mg.nn.Linear(64, 10))
    params = {k: v.detach() for k, v in model.named_parameters()}
    images = mg.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    labels = mg.tensor(rng.integers(0, 10, batch))

    def loss(p, x, t):
        logits = mg.func.functional_call(model, p, (x.unsqueeze(0),))
        return mg.nn.functional.cross_entropy(logits, t.unsqueeze(0))

    per_sample = mg.func.vmap(mg.func.grad(loss), in_dims=(None, 0, 0))
    return lambda: per_sample(params, images, labels)


def torch_step(batch: int):
    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 10))
    params = {k: v.detach() for k, v in model.named_parameters()}
    images = torch.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    labels = torch.tensor(rng.integers(0, 10, batch))

    def loss(p, x, t):
        logits = torch.func.functional_call(model, p, (x.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(logits, t.unsqueeze(0))

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    return lambda: per_sample(params, images, labels)


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rules = minigrad_step(args.batch)
    results = {"minigrad vmap (batching rules)": timed(rules, args.repeats)}
    saved = dict(batching._RULES)
    batching._RULES.clear()  # every op through the per-slice fallback: a loop
    try:
        results["minigrad vmap, every op per slice"] = timed(rules, max(3, args.repeats // 5))
    finally:
        batching._RULES.update(saved)
    try:
        results["torch.func.vmap"] = timed(torch_step(args.batch), args.repeats)
    except ImportError:
        pass
    base = results["minigrad vmap (batching rules)"]
    print(f"per-sample gradients, MLP 784-128-64-10, batch {args.batch}, one thread")
    for name, ms in results.items():
        print(f"  {name:36s} {ms:9.2f} ms   {ms / base:6.2f}x")


if __name__ == "__main__":
    main()
