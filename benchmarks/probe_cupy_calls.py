"""The CPU and GPU cost of each CuPy call in one training step of the tutorial's MLP, on one GPU.

A small step is fast on the GPU and slow to launch, so for each kind of call the step makes
(a matrix product, a bias add, a fused kernel, a gather, a whole eager or captured step) this
measures two numbers at batch 64 and 512:

    cpu_us   the host time to issue one call (Python, CuPy, the driver), measured while the GPU
             is kept busy by a spinning kernel, so that no call waits for the GPU (fewer calls
             of a whole step, so that the driver's launch queue never fills)
    gpu_us   the GPU time of one call, from CUDA events around the same calls run back to back
             after the spin (the queue is full, so launch gaps do not count)

A step costs about max(sum of cpu_us, sum of gpu_us); the eager step is CPU-bound when the first
sum is larger. Writes probe_cupy.json and probe_cupy.md into --out (default $OUT).

    python benchmarks/probe_cupy_calls.py --out /tmp/probe
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import minigrad as mg  # noqa: E402
from minigrad.cuda import gemm, kernels  # noqa: E402

SPIN = r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) {}
}
"""


def measure(cupy, call, repeats: int) -> tuple[float, float]:
    """(cpu_us, gpu_us) per call of `call`, as the module docstring says."""
    spin = cupy.RawKernel(SPIN, "spin")
    for _ in range(3):
        call()
    cupy.cuda.get_current_stream().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    spin((1,), (1,), (cupy.int64(500_000_000),))  # about 0.25 s: longer than issuing the calls
    began = time.perf_counter()
    start.record()
    for _ in range(repeats):
        call()
    end.record()
    cpu = (time.perf_counter() - began) / repeats
    end.synchronize()
    # The spin ran before start, so the events time the calls alone, back to back.
    gpu = cupy.cuda.get_elapsed_time(start, end) / 1000 / repeats
    return cpu * 1e6, gpu * 1e6


def calls_for(cupy, batch: int) -> dict:
    """name -> a no-argument call, for the calls of one step at this batch size."""
    f32 = cupy.float32
    rng = cupy.random.default_rng(0)
    x = rng.standard_normal((batch, 784), dtype=f32)
    w1, b1 = rng.standard_normal((128, 784), dtype=f32), rng.standard_normal(128, dtype=f32)
    h1, g1 = rng.standard_normal((batch, 128), dtype=f32), rng.standard_normal((batch, 128),
                                                                               dtype=f32)
    logits = rng.standard_normal((batch, 10), dtype=f32)
    target = rng.integers(0, 10, batch)
    data, labels = rng.standard_normal((60000, 784), dtype=f32), rng.integers(0, 10, 60000)
    order = rng.random(60000).argsort()
    grad_w1 = cupy.empty_like(w1)
    out, state = cupy.empty((batch, 128), f32), {}
    ones = cupy.ones((), f32)
    found = {
        "cupy: x @ W1.T (cuBLAS)": lambda: x @ w1.T,
        "cupy: G1.T @ x (cuBLAS, weight grad)": lambda: g1.T @ x,
        "cupy: y += bias": lambda: out.__iadd__(b1),
        "cupy: maximum(y, 0)": lambda: cupy.maximum(h1, 0),
        "cupy: grad.sum(axis=0)": lambda: g1.sum(axis=0),
        "cupy: data[order[a:b]] (gather)": lambda: data[order[:batch]],
        "cupy: ones(()) (root gradient)": lambda: cupy.ones((), f32),
        "kernel: relu_backward": lambda: kernels.relu_backward(g1, h1),
        "kernel: relu_backward_bias_grad": lambda: kernels.relu_backward_bias_grad(g1, h1),
        "kernel: bias_relu_forward": lambda: kernels.bias_relu_forward(h1, b1, out=out),
        "kernel: cross_entropy_forward": lambda: kernels.cross_entropy_forward(logits, target,
                                                                               1 / batch),
        "kernel: cross_entropy_backward": lambda: kernels.cross_entropy_backward(logits, target,
                                                                                 ones, 1 / batch),
        "kernel: sgd_update (W1)": lambda: kernels.sgd_update(w1, grad_w1, state, 0.0, 0.9, 0.0,
                                                              0.0, True),
        "kernel: gather_batch": lambda: kernels.gather_batch(data, labels, order, 0, batch),
        "kernel: gemm x @ W1.T + b, ReLU": lambda: gemm.matmul(x, w1, out, transpose_b=True,
                                                               bias=b1, relu=True),
        "kernel: gemm G1.T @ x + bias grad": lambda: gemm.matmul(g1, x, grad_w1, transpose_a=True,
                                                                 row_sum=b1),
    }
    found.update(_steps(cupy, batch, data[: 4 * batch], labels[: 4 * batch]))
    return found


def _steps(cupy, batch, inputs, targets) -> dict:
    """The whole eager step (fused kernels) and the captured one."""
    nn = mg.nn
    found = {}
    for name in ("eager step (fused kernels)", "captured step (graph launch + copies)"):
        model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                              nn.Linear(64, 10)).to("cuda")
        optimizer = mg.optim.SGD(model.parameters(), lr=0.0, momentum=0.9, nesterov=True)
        loss_fn = nn.CrossEntropyLoss()
        x = mg.tensor(inputs[:batch], device="cuda")
        y = mg.tensor(targets[:batch], device="cuda")
        if name.startswith("captured"):
            step = mg.cuda.graphed_step(model, loss_fn, optimizer, batch)
            found[name] = lambda step=step, x=x, y=y: step(x, y)
        else:
            def eager(model=model, optimizer=optimizer, loss_fn=loss_fn, x=x, y=y):
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()

            found[name] = eager
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "benchmarks" /
                                                                      "results"))
    args = parser.parse_args(argv)
    reason = mg.cuda.unavailable_reason()
    if reason:
        print(f"probe_cupy_calls.py: CuPy cannot run here: {reason}", file=sys.stderr)
        return 1
    cupy = mg.backend.cupy_module()
    rows = []
    for batch in args.batch_sizes:
        for name, call in calls_for(cupy, batch).items():
            # A whole step is ~30 launches: stay under the driver's queue of ~1000 launches.
            repeats = max(1, args.repeats // 10) if "step" in name else args.repeats
            cpu, gpu = measure(cupy, call, repeats)
            rows.append(dict(batch=batch, call=name, cpu_us=cpu, gpu_us=gpu))
            print(f"batch {batch:4d}  {name:42s} cpu {cpu:8.1f} us  gpu {gpu:8.1f} us", flush=True)
    gpu_name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(benchmark="probe_cupy_calls", gpu=gpu_name, cupy=cupy.__version__,
                  repeats=args.repeats, results=rows)
    (out / "probe_cupy.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# CPU and GPU cost per call on {gpu_name} (CuPy {cupy.__version__})", "",
             "| batch | call | CPU us | GPU us |", "| ---: | --- | ---: | ---: |"]
    lines += [f"| {r['batch']} | {r['call']} | {r['cpu_us']:.1f} | {r['gpu_us']:.1f} |"
              for r in rows]
    (out / "probe_cupy.md").write_text("\n".join(lines) + "\n")
    print(f"wrote probe_cupy.json and probe_cupy.md in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
