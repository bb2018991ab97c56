"""Per-op cost: forward and forward+backward of single ops, minigrad against PyTorch and NumPy.

For each op (matmul, add with broadcasting, relu, cross-entropy, sum, sum over the rows) and each
shape (a small one where fixed per-call costs dominate, a large one where arithmetic does), it
times:

- minigrad and PyTorch: the forward alone (recording the graph, as in training) and forward plus
  backward into the leaves' .grad;
- NumPy: the same forward and backward written by hand, with no engine at all.

minigrad minus NumPy is the engine's overhead per op; at the small shape it is nearly all of the
time, at the large shape it should vanish into the arithmetic.

Every measurement is warmed up first (PyTorch's first backward starts its engine, about a third
of a second once), and the script runs in a child process started with the thread settings, so
that BLAS and OpenMP see them when they load.

    python benchmarks/bench_ops.py                        # 64x128 and 2048x2048, 1 thread
    python benchmarks/bench_ops.py --small 64x784 --large 1024x1024 --threads 2
"""

from __future__ import annotations

import argparse
import sys

import harness
import numpy as np
from numpy_floor import cross_entropy as numpy_cross_entropy

# ---- the ops: inputs by shape, one expression for both engines, and NumPy by hand -------------
# Each op's inputs are built from (rows, cols); the float ones require grad. `expression` takes
# the functional module (minigrad's or PyTorch's) and a dict of tensors, so both engines run the
# very same line of code.


def _inputs_matmul(rng, rows, cols):
    return {"x": _floats(rng, rows, cols), "w": _floats(rng, cols, cols)}


def _inputs_add(rng, rows, cols):
    return {"x": _floats(rng, rows, cols), "b": _floats(rng, cols)}


def _inputs_one(rng, rows, cols):
    return {"x": _floats(rng, rows, cols)}


def _inputs_cross_entropy(rng, rows, cols):
    return {"x": _floats(rng, rows, cols), "target": rng.integers(0, cols, rows)}


def _floats(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _numpy_matmul(a, grad):
    z = a["x"] @ a["w"]
    return z, grad @ a["w"].T, a["x"].T @ grad


def _numpy_add(a, grad):
    z = a["x"] + a["b"]
    return z, grad, grad.sum(axis=0)


def _numpy_relu(a, grad):
    z = np.maximum(a["x"], 0)
    return z, grad * (z > 0)


def _numpy_cross_entropy(a, grad):
    return numpy_cross_entropy(a["x"], a["target"])  # the loss and the logits' gradient


def _numpy_sum(a, grad):
    return a["x"].sum(), np.broadcast_to(grad, a["x"].shape)


def _numpy_sum_rows(a, grad):
    return a["x"].sum(axis=0), np.broadcast_to(grad, a["x"].shape)


OPS = {
    "matmul": (_inputs_matmul, lambda F, t: t["x"] @ t["w"], _numpy_matmul),
    "add_broadcast": (_inputs_add, lambda F, t: t["x"] + t["b"], _numpy_add),
    "relu": (_inputs_one, lambda F, t: F.relu(t["x"]), _numpy_relu),
    "cross_entropy": (
        _inputs_cross_entropy,
        lambda F, t: F.cross_entropy(t["x"], t["target"]),
        _numpy_cross_entropy,
    ),
    "sum": (_inputs_one, lambda F, t: t["x"].sum(), _numpy_sum),
    # over the rows (dim 0): NumPy adds rows one at a time there, minigrad in a cascade
    "sum_rows": (_inputs_one, lambda F, t: t["x"].sum(0), _numpy_sum_rows),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=_shape, default="64x128", help="ROWSxCOLS, small shape")
    parser.add_argument("--large", type=_shape, default="2048x2048", help="ROWSxCOLS, large shape")
    parser.add_argument("--ops", nargs="+", choices=list(OPS), default=list(OPS))
    parser.add_argument("--threads", type=int, default=1, help="threads for NumPy and PyTorch")
    parser.add_argument(
        "--min-time",
        type=float,
        default=0.25,
        help="seconds spent timing each measurement (at least --repeats calls)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks; the median is kept")
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.05,
        help="untimed seconds of calls before each measurement (at least 3 calls)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(harness.RESULTS / "bench_ops.json"))
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    return args


def _shape(text: str) -> tuple[int, int]:
    """Parse "64x128" into (64, 128)."""
    rows, _, cols = text.lower().partition("x")
    if not (rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS such as 64x128, got {text!r}")
    return int(rows), int(cols)


# ---- timing one op in one engine ------------------------------------------------------------


def engine_calls(make_tensor, functional, expression, arrays) -> dict:
    """Forward alone and forward+backward of `expression` as zero-argument calls."""
    tensors = {name: make_tensor(array, array.dtype.kind == "f") for name, array in arrays.items()}
    leaves = [t for t in tensors.values() if t.requires_grad]
    out = expression(functional, tensors)
    grad = None if out.ndim == 0 else make_tensor(np.ones(out.shape, np.float32), False)

    def forward():
        expression(functional, tensors)

    def forward_backward():
        for leaf in leaves:
            leaf.grad = None
        expression(functional, tensors).backward(grad)

    return {"forward": forward, "forward_backward": forward_backward}


def engines() -> list:
    """(name, make_tensor(array, requires_grad), functional module) of minigrad and PyTorch.

    Imported here, not at the top: the parent process that starts the measuring child (see
    main) loads neither, so the child's thread settings are the first they see.
    """
    import torch
    import torch.nn.functional as torch_F

    import minigrad as mg
    import minigrad.nn.functional as mg_F

    return [
        ("minigrad", lambda a, grad: mg.tensor(a, requires_grad=grad), mg_F),
        ("pytorch", lambda a, grad: torch.tensor(a, requires_grad=grad), torch_F),
    ]


def bench_op(name, size_name, shape, args) -> dict:
    """Time one op at one shape in the three ways, in turns (see harness.time_interleaved)."""
    make_inputs, expression, by_hand = OPS[name]
    arrays = make_inputs(np.random.default_rng(args.seed), *shape)
    _, make_minigrad, minigrad_F = engines()[0]
    out = expression(minigrad_F, {key: make_minigrad(a, False) for key, a in arrays.items()})
    grad = np.ones(out.shape, np.float32)
    calls = {}
    for engine, make_tensor, functional in engines():
        for kind, call in engine_calls(make_tensor, functional, expression, arrays).items():
            calls[engine, kind] = call
    calls["numpy", "forward_backward"] = lambda: by_hand(arrays, grad)
    seconds = harness.time_interleaved(calls, args.min_time, args.repeats, args.warmup)

    result = {
        "op": name,
        "size": size_name,
        "input_shapes": {key: list(array.shape) for key, array in arrays.items()},
    }
    for (engine, kind), value in seconds.items():
        result.setdefault(engine, {})[f"{kind}_s"] = value
    mine = result["minigrad"]["forward_backward_s"]
    result["ratios"] = {
        "minigrad/pytorch": mine / result["pytorch"]["forward_backward_s"],
        "minigrad/numpy": mine / result["numpy"]["forward_backward_s"],
    }
    result["minigrad_overhead_s"] = mine - result["numpy"]["forward_backward_s"]
    return result


def format_results(results) -> str:
    def us(seconds):
        return f"{seconds * 1e6:.1f}"

    rows = [
        [
            r["op"],
            r["size"],
            us(r["minigrad"]["forward_s"]),
            us(r["minigrad"]["forward_backward_s"]),
            us(r["pytorch"]["forward_s"]),
            us(r["pytorch"]["forward_backward_s"]),
            us(r["numpy"]["forward_backward_s"]),
            f"{r['ratios']['minigrad/pytorch']:.2f}x",
            f"{r['ratios']['minigrad/numpy']:.2f}x",
        ]
        for r in results
    ]
    headers = [
        "op",
        "size",
        "mg fwd us",
        "mg f+b us",
        "pt fwd us",
        "pt f+b us",
        "np f+b us",
        "mg/pt",
        "mg/np",
    ]
    return harness.table(headers, rows)


def main(argv=None) -> dict | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if not harness.in_threads(args.threads):
        sys.exit(harness.rerun_in_threads(args.threads, argv))
    import torch

    threads = harness.limit_threads(args.threads, torch)
    load_before = harness.warn_if_busy(args.threads)
    sizes = {"small": args.small, "large": args.large}
    results = [
        bench_op(name, size_name, shape, args)
        for size_name, shape in sizes.items()
        for name in args.ops
    ]
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    document = harness.report("bench_ops", settings, threads, load_before, torch, results)
    path = harness.write_json(args.json, document)
    print(format_results(results))
    print(
        f"times in microseconds per call (median); mg = minigrad, pt = PyTorch, np = NumPy "
        f"by hand; f+b = forward+backward; threads: {threads}; results written to {path}"
    )
    return document


if __name__ == "__main__":
    main()
