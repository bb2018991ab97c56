"""Data-parallel scaling on this machine: the tutorial's MLP (784-128-64-10, SGD with momentum)
at a batch of 512 per rank, on 1 rank and on 2 ranks, one BLAS thread per rank.

    python benchmarks/bench_distributed.py [--steps 60]

Each configuration runs as its own `mpiexec -n R` job (rank 1 pinned to another core than rank
0). Prints the median step time, the epoch time it implies (60,000 images / (512 x R) steps),
the speedup of 2 ranks, the all-reduce's share of a 2-rank step, and the ring all-reduce model
(docs/distributed.md) fitted to this machine: alpha (latency) from an 8-byte all-reduce, beta
(seconds per byte) from one of the model's size, and its estimate beside the measured time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

PARAMETERS = 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10  # the tutorial's MLP: 109,386


def worker(steps: int, batch: int) -> None:
    """One rank: times the training steps, the all-reduces inside them and bare all-reduces."""
    import numpy as np  # noqa: PLC0415  (after the thread variables are set)

    import minigrad as mg  # noqa: PLC0415
    import minigrad.distributed as dist  # noqa: PLC0415

    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(784, 128), mg.nn.ReLU(), mg.nn.Linear(128, 64),
                             mg.nn.ReLU(), mg.nn.Linear(64, 10))
    net = mg.nn.parallel.DistributedDataParallel(model) if size > 1 else model
    optimizer = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(rank)
    x = mg.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 10, batch))
    waited = [0.0]
    if size > 1:  # time spent finishing the all-reduces (what the step waits for)
        original = dist.Work.wait

        def timed_wait(self, timeout=None):
            start = time.perf_counter()
            try:
                return original(self, timeout)
            finally:
                waited[0] += time.perf_counter() - start

        dist.Work.wait = timed_wait
    times, waits = [], []
    for step in range(steps + 5):
        waited[0] = 0.0
        if size > 1:
            dist.barrier()
        start = time.perf_counter()
        optimizer.zero_grad()
        mg.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        if step >= 5:
            times.append(time.perf_counter() - start)
            waits.append(waited[0])
    bare = {}
    if size > 1:
        for name, count in (("tiny", 2), ("model", PARAMETERS)):
            t = mg.zeros(count)
            samples = []
            for _ in range(50):
                dist.barrier()
                start = time.perf_counter()
                dist.all_reduce(t)
                samples.append(time.perf_counter() - start)
            bare[name] = statistics.median(samples)
    if rank == 0:
        print(json.dumps({"ranks": size, "step_s": statistics.median(times),
                          "wait_s": statistics.median(waits), "bare": bare}))


def launch(ranks: int, steps: int, batch: int) -> dict:
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    command = [mpiexec, "-n", str(ranks), "-bind-to", "core", sys.executable,
               os.path.abspath(__file__), "--worker", "--steps", str(steps),
               "--batch", str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=512, help="per rank")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.batch)
        return
    one, two = launch(1, args.steps, args.batch), launch(2, args.steps, args.batch)
    epoch = {r["ranks"]: 60000 / (args.batch * r["ranks"]) * r["step_s"] for r in (one, two)}
    alpha = two["bare"]["tiny"]
    beta = max(two["bare"]["model"] - alpha, 0.0) / (4 * PARAMETERS)
    p, n = 2, 4 * PARAMETERS  # ring: 2 (p - 1) steps of n / p bytes each
    model = 2 * (p - 1) * alpha + 2 * (p - 1) / p * n * beta
    results = {"batch_per_rank": args.batch, "one": one, "two": two, "epoch_s": epoch,
               "speedup": epoch[1] / epoch[2], "alpha_s": alpha, "beta_s_per_byte": beta,
               "ring_model_s": model}
    print(f"tutorial MLP, batch {args.batch} per rank, one BLAS thread per rank")
    print(f"  1 rank : step {one['step_s'] * 1e3:7.2f} ms, epoch {epoch[1]:6.2f} s")
    print(f"  2 ranks: step {two['step_s'] * 1e3:7.2f} ms, epoch {epoch[2]:6.2f} s, speedup "
          f"{epoch[1] / epoch[2]:.2f}x; waiting for the all-reduce {two['wait_s'] * 1e3:.2f} ms "
          f"of each step")
    print(f"  all-reduce of the model's {4 * PARAMETERS} bytes: {two['bare']['model'] * 1e3:.3f} "
          f"ms measured; ring model with alpha {alpha * 1e6:.1f} us, beta "
          f"{beta * 1e9:.3f} ns/byte: {model * 1e3:.3f} ms")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
