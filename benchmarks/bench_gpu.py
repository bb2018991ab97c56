"""MNIST epoch time on one GPU: minigrad (CuPy) against PyTorch eager on the same GPU.

Every variant trains the tutorial's network, Linear(784, 128) -> ReLU -> Linear(128, 64) -> ReLU ->
Linear(64, 10), with cross-entropy and SGD (lr 0.05, momentum 0.9, nesterov), from the same initial
weights, with the whole dataset on the GPU, one shuffle per epoch drawn on the GPU, and batches
gathered there by index (the last, smaller batch included). Each variant runs one untimed warm-up
epoch (kernel compilation, cuBLAS set-up) and then --epochs timed epochs, each
ended by a device synchronize; the median is reported, with the test accuracy after training.

    minigrad            eager, with the fused kernels (minigrad.cuda.kernels.enabled = True, as
                        examples/mnist.py sets it on a GPU)
    minigrad-unfused    eager, minigrad.cuda.kernels.enabled = False: the plain CuPy array code
    minigrad-compiled   mg.compile of the eager step, with the fused kernels (examples/mnist.py's
                        default): its capture pass makes the step one CUDA graph
    minigrad-graphed    mg.cuda.graphed_step: the whole step as one CUDA graph (opt-in; the last,
                        smaller batch of an epoch runs eagerly)
    pytorch             torch eager, torch.optim.SGD with its defaults (foreach on CUDA)

"x PyTorch" in the table is this variant's epoch time over PyTorch eager's (below 1: faster).
A variant that raises does not stop the others (PyTorch's, the baseline, runs last): its error
and the traceback's last lines go into the JSON and the table, and the exit status is 1.

    python benchmarks/bench_gpu.py                        # batch 64 and 512, 5 timed epochs
    python benchmarks/bench_gpu.py --epochs 3 --batch-sizes 64
    python benchmarks/bench_gpu.py --device cpu --max-steps 20 --epochs 1   # a smoke test, no GPU

Writes bench_gpu.json and bench_gpu.md into $OUT when it is set, else into benchmarks/results/.
Without the MNIST files (--data-root) it trains on synthetic data of MNIST's shape, labelled by a
fixed random linear teacher, and says so in the report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from anywhere without installing minigrad

import minigrad as mg  # noqa: E402

VARIANTS = ("minigrad", "minigrad-unfused", "minigrad-compiled", "minigrad-graphed", "pytorch")
LR, MOMENTUM = 0.05, 0.9


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_root = os.environ.get("MINIGRAD_DATA_ROOT", str(REPO.parent / "shared" / "datasets"))
    parser.add_argument("--data-root", default=default_root, help="folder holding MNIST/raw")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per variant")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test")
    parser.add_argument("--max-steps", type=int, default=None, help="cut every epoch short")
    default_out = os.environ.get("OUT") or str(REPO / "benchmarks" / "results")
    parser.add_argument("--out", default=default_out, help="folder for the JSON and table")
    return parser.parse_args(argv)


# ---- data ---------------------------------------------------------------------------------------


def load_data(root: str):
    """((train_x, train_y), (test_x, test_y), source) as host arrays: float32 (N, 784), int64."""
    raw = Path(root) / "MNIST" / "raw"
    if (raw / "train-images-idx3-ubyte").exists():
        train = mg.data.MNIST(root, train=True, download=False)
        test = mg.data.MNIST(root, train=False, download=False)
        return _host_arrays(train), _host_arrays(test), f"MNIST from {root}"
    rng = np.random.default_rng(0)
    teacher = rng.standard_normal((784, 10)).astype(np.float32)

    def synthetic(n):
        x = rng.standard_normal((n, 784)).astype(np.float32)
        return x, (x @ teacher).argmax(axis=1).astype(np.int64)

    return synthetic(60000), synthetic(10000), "synthetic (no MNIST files found; teacher labels)"


def _host_arrays(dataset):
    inputs, targets = dataset.arrays()  # normalised on the host; each run moves them itself
    return mg.backend.to_host(inputs), mg.backend.to_host(targets)


def initial_state() -> dict:
    """The network's first weights as host arrays, shared by every variant."""
    mg.manual_seed(0)
    return {name: t.detach().numpy() for name, t in make_minigrad_model("cpu").state_dict().items()}


# ---- minigrad -----------------------------------------------------------------------------------


def make_minigrad_model(device):
    nn = mg.nn
    model = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    return model.to(device)


def run_minigrad(variant, data, start, batch_size, args):
    (train_x, train_y), (test_x, test_y), _ = data
    device = mg.device(args.device)
    model = make_minigrad_model(device)
    model.load_state_dict({k: mg.tensor(v) for k, v in start.items()})
    optimizer = mg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    loss_fn = mg.nn.CrossEntropyLoss()
    mg.manual_seed(1)
    loader = mg.data.DataLoader((train_x, train_y), batch_size, shuffle=True, device=device)

    def eager_step(x, y):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    synchronize = _minigrad_synchronize(device)
    was_enabled = mg.cuda.kernels.enabled
    mg.cuda.kernels.enabled = variant != "minigrad-unfused"  # before graphed_step, which needs it
    try:
        step = eager_step
        if variant == "minigrad-graphed":
            step = mg.cuda.graphed_step(model, loss_fn, optimizer, batch_size)
        elif variant == "minigrad-compiled":
            step = mg.compile(eager_step)
        times = []
        for epoch in range(args.epochs + 1):  # epoch 0: the warm-up
            began = time.perf_counter()
            for index, (x, y) in enumerate(loader):
                if index == args.max_steps:
                    break
                step(x, y)
            synchronize()
            if epoch:
                times.append(time.perf_counter() - began)
        accuracy = _minigrad_accuracy(model, test_x, test_y, device)
    finally:
        mg.cuda.kernels.enabled = was_enabled
    return times, accuracy, len(loader)


def _minigrad_synchronize(device):
    if device.type != "cuda":
        return lambda: None
    cupy = mg.backend.cupy_module()
    return lambda: cupy.cuda.get_current_stream().synchronize()


@mg.no_grad()
def _minigrad_accuracy(model, test_x, test_y, device) -> float:
    correct = 0
    for start in range(0, len(test_y), 10000):
        x = mg.tensor(test_x[start : start + 10000], device=device)
        y = mg.tensor(test_y[start : start + 10000], device=device)
        correct += (model(x).argmax(dim=1) == y).sum().item()
    return correct / len(test_y)


# ---- PyTorch ------------------------------------------------------------------------------------


def run_pytorch(data, start, batch_size, args):
    import torch

    (train_x, train_y), (test_x, test_y), _ = data
    device = torch.device(args.device)
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    ).to(device)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in start.items()})
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    inputs, targets = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y).to(device)
    generator = torch.Generator(device=device).manual_seed(1)
    steps = -(-len(targets) // batch_size)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for epoch in range(args.epochs + 1):
        began = time.perf_counter()
        order = torch.randperm(len(targets), device=device, generator=generator)
        for index in range(steps):
            if index == args.max_steps:
                break
            batch = order[index * batch_size : (index + 1) * batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
            loss.backward()
            optimizer.step()
        synchronize()
        if epoch:
            times.append(time.perf_counter() - began)
    with torch.no_grad():
        x, y = torch.from_numpy(test_x).to(device), torch.from_numpy(test_y).to(device)
        accuracy = (model(x).argmax(dim=1) == y).sum().item() / len(y)
    return times, accuracy, steps


# ---- report -------------------------------------------------------------------------------------


def describe_machine(device) -> dict:
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["torch_cuda"] = torch.version.cuda
    except ImportError:
        info["torch"] = None
    if mg.device(device).type == "cuda":
        cupy = mg.backend.cupy_module()
        runtime = cupy.cuda.runtime
        info.update(
            cupy=cupy.__version__,
            cuda_runtime=runtime.runtimeGetVersion(),
            cuda_driver=runtime.driverGetVersion(),
            gpu=runtime.getDeviceProperties(0)["name"].decode(),
        )
    return info


def run_variant(variant, data, start, batch_size, args) -> dict:
    """One row of the report: the variant's times and accuracy, or the error it raised (caught,
    so that the variants after it, PyTorch's baseline last, still run)."""
    row = dict(batch_size=batch_size, variant=variant)
    try:
        if variant == "pytorch":
            times, accuracy, steps = run_pytorch(data, start, batch_size, args)
        else:
            times, accuracy, steps = run_minigrad(variant, data, start, batch_size, args)
    except Exception as error:  # not KeyboardInterrupt: gpu_check.sh's time limit sends SIGINT
        lines = traceback.format_exc().rstrip().splitlines()
        row["error"] = dict(type=type(error).__name__, message=str(error),
                            traceback="\n".join(lines[-12:]))
        return row
    steps = min(steps, args.max_steps or steps)
    median = statistics.median(times)
    row.update(
        epoch_times_s=times,
        median_epoch_s=median,
        steps_per_epoch=steps,
        steps_per_s=steps / median,
        test_accuracy=accuracy,
    )
    return row


def table(rows) -> str:
    lines = [
        "| batch | variant | median epoch (s) | x PyTorch | steps/s | test accuracy |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if "error" in row:
            error = row["error"]
            message = f"{error['type']}: {error['message']}".replace("|", "/").replace("\n", " ")
            lines.append(f"| {row['batch_size']} | {row['variant']} | FAILED: {message} | | | |")
            continue
        ratio = row.get("time_vs_pytorch")
        lines.append(
            f"| {row['batch_size']} | {row['variant']} | {row['median_epoch_s']:.3f} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} | {row['steps_per_s']:.0f} | "
            f"{row['test_accuracy']:.2%} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    reason = mg.cuda.unavailable_reason() if mg.device(args.device).type == "cuda" else None
    if reason:
        print(
            f"bench_gpu.py: CuPy cannot run here ({reason}); pip install -e '.[cuda13]', "
            "or use --device cpu for a smoke test",
            file=sys.stderr,
        )
        return 1
    variants = [
        v for v in args.variants
        if args.device.startswith("cuda") or v in ("minigrad", "minigrad-compiled", "pytorch")
    ]
    data = load_data(args.data_root)
    start = initial_state()
    report = {
        "benchmark": "bench_gpu",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(args.device),
        "settings": dict(
            device=args.device,
            epochs=args.epochs,
            batch_sizes=args.batch_sizes,
            max_steps=args.max_steps,
            lr=LR,
            momentum=MOMENTUM,
            nesterov=True,
            data=data[2],
        ),
        "results": [],
    }
    for batch_size in args.batch_sizes:
        for variant in variants:
            row = run_variant(variant, data, start, batch_size, args)
            report["results"].append(row)
            if "error" in row:
                print(f"batch {batch_size:4d}  {variant:18s} FAILED:\n{row['error']['traceback']}",
                      flush=True)
            else:
                print(
                    f"batch {batch_size:4d}  {variant:18s} median epoch {row['median_epoch_s']:.3f}"
                    f" s  test accuracy {row['test_accuracy']:.2%}",
                    flush=True,
                )
            save(report, Path(args.out))  # after every variant, so a cut-short run leaves rows
    print("\n" + table(report["results"]))
    print(f"\nwrote bench_gpu.json and bench_gpu.md in {args.out}")
    failures = [f"{r['variant']} at batch {r['batch_size']}" for r in report["results"]
                if "error" in r]
    if failures:
        print(f"bench_gpu.py: {len(failures)} variant(s) FAILED: {', '.join(failures)}",
              file=sys.stderr)
        return 1
    return 0


def save(report: dict, out: Path) -> None:
    """bench_gpu.json and bench_gpu.md (the table), with times over PyTorch's where known."""
    rows = report["results"]
    timed = [r for r in rows if "error" not in r]
    pytorch = {r["batch_size"]: r["median_epoch_s"] for r in timed if r["variant"] == "pytorch"}
    for row in timed:
        if row["batch_size"] in pytorch:
            row["time_vs_pytorch"] = row["median_epoch_s"] / pytorch[row["batch_size"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    where = report["machine"].get("gpu", report["settings"]["device"])
    (out / "bench_gpu.md").write_text(
        f"# bench_gpu: MNIST epoch time on {where}\n\n{report['date']}; data: "
        f"{report['settings']['data']}; median of {report['settings']['epochs']} timed epochs; "
        f"x PyTorch = this variant's epoch time / PyTorch eager's\n\n{table(rows)}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
