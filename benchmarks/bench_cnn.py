"""pytorch/examples' MNIST CNN on the CPU, minigrad against PyTorch eager, one thread.

    python benchmarks/bench_cnn.py [--batch 64] [--steps 20]

Prints, side by side in one run:
- the median training step (forward, nll_loss, backward, Adadelta) of each library, interleaved
  in turns, and the ratio;
- the second convolution alone (32 -> 64 channels, 3 x 3, forward and both gradients) in each
  library, and the share of this machine's sgemm peak (a large NumPy float32 product, measured
  here) that minigrad's reaches;
- the peak memory of a step: each library in a fresh process, the peak resident memory over
  five steps minus the resident memory once everything is imported, before the model is built.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

START_ENVIRONMENT = dict(os.environ)  # what the memory measurements' fresh processes get

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def step_for(lib_name: str, batch: int):
    """A training step of the Net on one fixed batch, for minigrad or torch."""
    sys.path.insert(0, EXAMPLES)
    import mnist_cnn  # noqa: PLC0415  (the example's Net, run on either library)

    if lib_name == "torch":
        import inspect  # noqa: PLC0415

        import torch  # noqa: PLC0415
        torch.set_num_threads(1)
        namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
        exec(inspect.getsource(mnist_cnn.Net), namespace)  # noqa: S102
        lib, net = torch, namespace["Net"]
    else:
        import minigrad as lib  # noqa: PLC0415
        net = mnist_cnn.Net
    lib.manual_seed(1)
    model = net()
    optimizer = lib.optim.Adadelta(model.parameters(), lr=1.0)
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, batch))

    def step():
        optimizer.zero_grad()
        loss = lib.nn.functional.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def conv_for(lib_name: str, batch: int):
    """conv2 alone: forward, then the gradients of its input and weight."""
    if lib_name == "torch":
        import torch as lib  # noqa: PLC0415
    else:
        import minigrad as lib  # noqa: PLC0415
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((batch, 32, 26, 26)).astype(np.float32),
                   requires_grad=True)
    w = lib.tensor(rng.standard_normal((64, 32, 3, 3)).astype(np.float32) * 0.1,
                   requires_grad=True)
    g = lib.tensor(rng.standard_normal((batch, 64, 24, 24)).astype(np.float32))

    def run():
        y = lib.nn.functional.conv2d(x, w)
        lib.autograd.grad(y, (x, w), g)

    return run


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def interleaved(fns: dict, steps: int, turns: int = 5) -> dict:
    """Median ms of each, measured in alternating turns (the machine's drift shared)."""
    for fn in fns.values():
        fn(), fn()
    found = {name: [] for name in fns}
    for _ in range(turns):
        for name, fn in fns.items():
            found[name].append(median_ms(fn, max(1, steps // turns)))
    return {name: statistics.median(values) for name, values in found.items()}


def sgemm_peak_gflops() -> float:
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    a @ a
    best = min(median_ms(lambda: a @ a, 3) for _ in range(3))
    return 2 * 2048 ** 3 / (best / 1e3) / 1e9


def memory_of(lib_name: str, batch: int) -> float:
    """MB: resident memory after five steps minus before the model, in a fresh process."""
    code = (f"import sys, resource; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
            "import bench_cnn as b; "
            f"import {'torch' if lib_name == 'torch' else 'minigrad'}; "
            f"sys.path.insert(0, {EXAMPLES!r}); import mnist_cnn; "
            "before = int(open('/proc/self/statm').read().split()[1]) * 4096; "
            f"step = b.step_for({lib_name!r}, {batch}); "
            "[step() for _ in range(5)]; "
            "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024; "
            "print((peak - before) / 2**20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=START_ENVIRONMENT)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    memory = {name: memory_of(name, args.batch) for name in ("minigrad", "torch")}  # (first:
    # a parent that has run torch hands its children an environment that changes the numbers)
    steps = interleaved({"minigrad": step_for("minigrad", args.batch),
                         "torch": step_for("torch", args.batch)}, args.steps)
    convs = interleaved({"minigrad": conv_for("minigrad", args.batch),
                         "torch": conv_for("torch", args.batch)}, args.steps)
    flops = 3 * 2 * 64 * (32 * 9) * (args.batch * 24 * 24)  # forward, dL/dx, dL/dW
    peak = sgemm_peak_gflops()
    results = {
        "batch": args.batch, "step_ms": steps, "step_ratio": steps["minigrad"] / steps["torch"],
        "conv2_ms": convs, "conv2_gflops": {k: flops / (v / 1e3) / 1e9 for k, v in convs.items()},
        "sgemm_peak_gflops": peak, "peak_step_memory_mb": memory,
        "memory_ratio": memory["minigrad"] / memory["torch"],
    }
    print(f"pytorch/examples' MNIST CNN, batch {args.batch}, one thread")
    print(f"  training step    minigrad {steps['minigrad']:7.1f} ms   torch {steps['torch']:7.1f} "
          f"ms   ratio {results['step_ratio']:.2f}x")
    print(f"  conv2 fwd+bwd    minigrad {convs['minigrad']:7.1f} ms   torch {convs['torch']:7.1f} "
          f"ms   minigrad at {results['conv2_gflops']['minigrad']:.0f} GFLOP/s = "
          f"{results['conv2_gflops']['minigrad'] / peak:.0%} of this machine's sgemm peak "
          f"({peak:.0f} GFLOP/s)")
    print(f"  peak step memory minigrad {memory['minigrad']:7.1f} MB   torch "
          f"{memory['torch']:7.1f} MB   ratio {results['memory_ratio']:.2f}x")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
