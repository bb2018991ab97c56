"""Training speed on MNIST: minigrad against PyTorch and JAX (CPU) and a hand-written NumPy floor.

Every implementation trains Linear(784, W) -> ReLU -> Linear(W, W/2) -> ReLU -> Linear(W/2, 10)
(W = 128 is the tutorial's network) with cross-entropy and SGD (lr 0.05, momentum 0.9,
nesterov), from the same initial weights, on the same batches in the same order, gathering each
batch by index from arrays already in memory. They take turns of a few steps in one process, so
that they share the machine's noise; medians of epoch times and of per-epoch ratios are
reported, with the percent of the sgemm peak measured in the same run, the time of each phase
of a step, and each one's peak memory (measured alone, in a fresh process). With one thread the
run is pinned to one core. Trainers whose library is missing (jax_jit without JAX,
minigrad_compiled without mg.compile) are skipped with a note. See README.md.

    python benchmarks/bench_mnist.py                        # 1 thread, the whole grid
    python benchmarks/bench_mnist.py --threads 1 2          # one table per thread count
    python benchmarks/bench_mnist.py --batch-sizes 64 --widths 128 --compare-with ../main
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import harness
import mnist_report
import roofline
from trainers import COMPILED, PHASES, TRAINERS, sizes_for_width, unavailable
from turns import Participant, RemoteParticipant


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--data-root", default=str(harness.DEFAULT_DATA_ROOT), help="folder holding MNIST/raw")
    add("--batch-sizes", type=int, nargs="+", default=[64, 128, 256, 512], help="at width 128")
    add("--widths", type=int, nargs="+", default=[128, 512, 2048], help="at --width-batches")
    add("--width-batches", type=int, nargs="+", default=[64, 512])
    add("--epochs", type=int, default=3, help="timed epochs per configuration")
    add("--warmup-steps", type=int, default=50, help="untimed steps on a throwaway copy")
    add("--max-steps", type=int, default=None, help="cut every epoch to this many steps")
    add(
        "--chunk-steps",
        type=int,
        default=None,
        help="steps per turn (default 10 with one thread, a whole epoch with more)",
    )
    add(
        "--turn-gap",
        type=float,
        default=None,
        help="idle seconds before each turn (default 0 with one thread, 0.3 with more: longer "
        "than OpenBLAS's and OpenMP's worker threads spin after a call)",
    )
    add("--threads", type=int, nargs="+", default=[1], help="one table per thread count")
    add("--impls", nargs="+", choices=list(TRAINERS), default=list(TRAINERS))
    add(
        "--compare-with",
        nargs="+",
        default=[],
        metavar="CHECKOUT",
        help="also race the minigrad of these checkouts (each minigrad in a worker process)",
    )
    add("--sgemm-size", type=int, default=2048, help="side of the squares of the peak's sgemm")
    add(
        "--memory-steps",
        type=int,
        default=20,
        help="steps of the peak-memory pass (each implementation alone); 0 skips it",
    )
    add("--lr", type=float, default=0.05)
    add("--momentum", type=float, default=0.9)
    add("--no-nesterov", dest="nesterov", action="store_false")
    add("--weight-decay", type=float, default=0.0, help="0 (examples/mnist.py uses 5e-4)")
    add("--seed", type=int, default=0)
    add("--json", default=str(harness.RESULTS / "bench_mnist.json"))
    add("--chart", default=str(harness.RESULTS / "bench_mnist.png"), help="'' for none")
    add("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)
    for name in ("epochs", "warmup_steps", "threads", "batch_sizes", "widths", "width_batches"):
        values = getattr(args, name)
        if min(values if isinstance(values, list) else [values]) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for path in args.compare_with:
        if not (Path(path) / "minigrad" / "__init__.py").exists():
            parser.error(f"--compare-with {path}: no minigrad/__init__.py there")
    return args


def configurations(args) -> list[tuple[int, int]]:
    """(batch size, width) pairs: the batch sizes at width 128, the widths at the width batches."""
    pairs = [(batch, 128) for batch in args.batch_sizes]
    pairs += [(batch, width) for batch in args.width_batches for width in args.widths]
    return list(dict.fromkeys(pairs))


# ---- the parent: one child process per thread count ----------------------------------------


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if len(args.threads) == 1 and harness.in_threads(args.threads[0]):
        return measure(args)  # the child
    parts = []
    with tempfile.TemporaryDirectory() as folder:
        for threads in args.threads:
            part = Path(folder) / f"threads{threads}.json"
            child = argv + ["--threads", str(threads), "--json", str(part), "--chart", ""]
            code = harness.rerun_in_threads(threads, child)
            if code:
                sys.exit(f"bench_mnist: the run with {threads} thread(s) failed (exit {code})")
            parts.append(json.loads(part.read_text()))
    document = dict(parts[0], results=[r for part in parts for r in part["results"]])
    document["command"] = " ".join(["bench_mnist.py", *argv])
    document["runs"] = [
        {
            "threads_requested": threads,
            "threads": part["threads"],
            "pinned_cpu": part["pinned_cpu"],
            "xla_flags": part["environment"].get("XLA_FLAGS"),
            "sgemm": part["sgemm"],
            "load_average": part["load_average"],
            "skipped": part["skipped"],
        }
        for threads, part in zip(args.threads, parts, strict=True)
    ]
    for key in ("threads", "load_average", "sgemm", "pinned_cpu", "skipped"):  # per run
        del document[key]
    path = harness.write_json(args.json, document)
    for run in document["runs"]:
        print(pinning_line(run))
    print(mnist_report.format_tables(document, markdown=args.markdown))
    impls = {name: impl for r in document["results"] for name, impl in r["impls"].items()}
    compiled = [name for name, impl in impls.items() if COMPILED in impl["step_us"]]
    if compiled:
        print(
            f"{', '.join(compiled)}: forward, backward and optimiser are one compiled call, "
            f"timed whole (step_us['{COMPILED}'] in the JSON); their columns for those read 0.\n"
        )
    if args.chart:
        print(f"chart written to {mnist_report.plot(document, args.chart)}")
    print(f"results written to {path}")
    return document


# ---- the child: everything measured with one thread count -----------------------------------


def measure(args) -> dict:
    threads = args.threads[0]
    # One thread: one core, before any library starts its threads (the workers inherit it).
    pinned = harness.pin_to_one_core() if threads == 1 else None
    import torch  # for the trainers and PyTorch's sgemm; thread counts are already in force

    if args.chunk_steps is None:
        args.chunk_steps = 10 if threads == 1 else 10**9
    if args.turn_gap is None:
        args.turn_gap = 0.0 if threads == 1 else 0.3
    counts = harness.limit_threads(threads, torch)
    args.impls, skipped = available(args.impls)  # after limit_threads: jax reads XLA_FLAGS
    if not args.impls:
        sys.exit("bench_mnist: none of the requested trainers can run here")
    load_before = harness.warn_if_busy(threads)
    data, test = harness.load_mnist(args.data_root)
    results, sgemm = [], []
    for batch_size, width in configurations(args):
        sgemm.append(roofline.sgemm_peak(torch, args.sgemm_size))  # between configurations
        result = bench_configuration(batch_size, width, data, test, args)
        if args.memory_steps:
            result["memory"] = measure_memory(batch_size, width, args)
        results.append(result)
        print(f"batch {batch_size}, width {width}: done", file=sys.stderr, flush=True)
    sgemm.append(roofline.sgemm_peak(torch, args.sgemm_size))
    # The best the machine did in this run: a busy moment only ever makes a call slower.
    peak = {key: max(s[key] for s in sgemm) for key in sgemm[0] if key != "size"}
    peak["size"] = args.sgemm_size
    for result in results:
        add_roofline(result, peak["peak_gflops"])
    settings = {key: value for key, value in vars(args).items() if key not in ("json", "chart")}
    document = harness.report("bench_mnist", settings, counts, load_before, torch, results)
    document["sgemm"] = dict(peak, threads=threads, measured=sgemm)
    document["pinned_cpu"] = pinned
    document["skipped"] = skipped
    document["checkouts"] = {path: checkout_label(path) for path in args.compare_with}
    harness.write_json(args.json, document)
    return document


def available(impls) -> tuple[list, dict]:
    """The trainers that can run here, and why each other one cannot (a note line for each)."""
    runnable, skipped = [], {}
    for impl in impls:
        reason = unavailable(impl)
        if reason is None:
            runnable.append(impl)
        else:
            skipped[impl] = reason
            print(f"note: skipping {impl}: {reason}", file=sys.stderr, flush=True)
    return runnable, skipped


def pinning_line(run) -> str:
    """The header line that says how the run with this thread count was confined."""
    threads = run["threads_requested"]
    if run.get("pinned_cpu") is None:
        return f"{threads} thread(s): not pinned to a core"
    return (
        f"{threads} thread(s): this process and its workers pinned to CPU {run['pinned_cpu']} "
        f"(os.sched_setaffinity); XLA_FLAGS={run.get('xla_flags')!r}"
    )


def _config(batch_size, width, args, warmup_steps=None) -> dict:
    return {
        "sizes": sizes_for_width(width),
        "batch_size": batch_size,
        "seed": args.seed,
        "settings": dict(
            lr=args.lr,
            momentum=args.momentum,
            nesterov=args.nesterov,
            weight_decay=args.weight_decay,
        ),
        "warmup_steps": args.warmup_steps if warmup_steps is None else warmup_steps,
        "max_steps": args.max_steps,
    }


def participants(config, data, test, args) -> list:
    """This process's trainers; with --compare-with, every minigrad in a worker of its own."""
    local = [impl for impl in args.impls if not (args.compare_with and impl == "minigrad")]
    racing = [Participant(impl, config, data, test) for impl in local]
    if args.compare_with and "minigrad" in args.impls:
        paths = {"minigrad": harness.REPO}
        paths.update({f"minigrad@{checkout_label(p)}": p for p in args.compare_with})
        for label, path in paths.items():
            racing.append(
                RemoteParticipant(
                    "minigrad", config, args.data_root, os.environ, pythonpath=path, label=label
                )
            )
    return racing


def bench_configuration(batch_size, width, data, test, args) -> dict:
    """Warm up, then time epochs of every participant, in turns; see run_epoch."""
    config = _config(batch_size, width, args)
    racing = participants(config, data, test, args)
    epochs = [
        run_epoch(racing, epoch, args.chunk_steps, args.turn_gap) for epoch in range(args.epochs)
    ]
    steps = epochs[-1][racing[0].name]["steps"]
    samples = min(len(data[1]), steps * batch_size)
    flops = roofline.matmul_flops_per_sample(config["sizes"]) * samples
    result = {
        "batch_size": batch_size,
        "width": width,
        "sizes": list(config["sizes"]),
        "threads": args.threads[0],
        "steps_per_epoch": steps,
        "matmul_gflop": flops / 1e9,
        "impls": {},
    }
    for p in racing:
        times = [epoch[p.name]["seconds"] for epoch in epochs]
        median = statistics.median(times)
        result["impls"][p.name] = {
            "epoch_seconds": times,
            "median_epoch_seconds": median,
            "steps_per_second": steps / median,
            "step_us": step_breakdown([epoch[p.name] for epoch in epochs]),
            "first_step_loss": p.first_loss,
            "final_train_loss": epochs[-1][p.name]["loss"],
            "test_accuracy": p.accuracy(),
        }
        if isinstance(p, RemoteParticipant):
            result["impls"][p.name]["minigrad_file"] = p.minigrad_file
            p.close()
    if "minigrad" in result["impls"]:  # a ratio is the median of the per-epoch ratios
        mine = result["impls"]["minigrad"]["epoch_seconds"]
        result["ratios"] = {
            f"minigrad/{name}": statistics.median(
                a / b for a, b in zip(mine, impl["epoch_seconds"], strict=True)
            )
            for name, impl in result["impls"].items()
            if name != "minigrad"
        }
    return result


def add_roofline(result: dict, peak_gflops: float) -> None:
    """The epoch's lower bound (its matrix products at the sgemm peak) and each one's percent."""
    result["bound_seconds"] = result["matmul_gflop"] / peak_gflops
    for impl in result["impls"].values():
        impl["percent_of_peak"] = 100 * result["bound_seconds"] / impl["median_epoch_seconds"]


def step_breakdown(epochs) -> dict:
    """Microseconds per step in each phase (median over epochs); overhead is the rest.

    Every trainer gets the four PHASES (0 where it has no such phase); a phase of its own, the
    COMPILED call of a compiled step, is added under its name.
    """

    def per_step(seconds, epoch):
        return 1e6 * seconds / epoch["steps"]

    own = sorted({phase for e in epochs for phase in e["phases"]} - set(PHASES))
    breakdown = {
        phase: statistics.median(per_step(e["phases"].get(phase, 0.0), e) for e in epochs)
        for phase in (*PHASES, *own)
    }
    breakdown["overhead"] = statistics.median(
        per_step(e["seconds"] - sum(e["phases"].values()), e) for e in epochs
    )
    breakdown["step"] = statistics.median(per_step(e["seconds"], e) for e in epochs)
    return breakdown


def run_epoch(racing, epoch, chunk_steps, gap) -> dict:
    """One epoch of every participant, in turns of `chunk_steps` steps; who starts rotates.

    Turns of a few steps make them share the machine's noise at a fine grain; only the steps
    are timed. `gap` seconds of idling before each turn let the worker threads that a library
    leaves spinning fall asleep, so that they do not slow whoever runs next.
    """
    shift = epoch % len(racing)
    running = racing[shift:] + racing[:shift]
    totals = {
        p.name: {"seconds": 0.0, "steps": 0, "loss": None, "phases": defaultdict(float)}
        for p in racing
    }
    for p in running:
        p.start_epoch(epoch)
    while running:
        for p in list(running):
            if gap:
                time.sleep(gap)
            turn, total = p.run(chunk_steps), totals[p.name]
            total["seconds"] += turn["seconds"]
            total["steps"] += turn["steps"]
            if turn["steps"]:
                total["loss"] = turn["loss"]
            for phase, seconds in turn["phases"].items():
                total["phases"][phase] += seconds
            if turn["steps"] < chunk_steps:
                running.remove(p)
    return totals


def measure_memory(batch_size, width, args) -> dict:
    """Peak RSS of each implementation training alone in a fresh process (MiB)."""
    config = _config(batch_size, width, args, warmup_steps=5)
    config["max_steps"] = args.memory_steps
    checkouts = {"minigrad": harness.REPO}
    checkouts.update({f"minigrad@{checkout_label(p)}": p for p in args.compare_with})
    memory = {}
    for impl in args.impls:
        for label, path in checkouts.items() if impl == "minigrad" else [(impl, None)]:
            worker = RemoteParticipant(
                impl, config, args.data_root, os.environ, pythonpath=path, label=label
            )
            worker.start_epoch(0)
            worker.run(args.memory_steps)
            memory[label] = worker.memory()
            worker.close()
    return memory


def checkout_label(path) -> str:
    """The short commit of a checkout (with -dirty if its minigrad/ has changes), or its name."""

    def git(*words):
        done = subprocess.run(["git", "-C", str(path), *words], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit is None:
        return Path(path).resolve().name
    return commit + ("-dirty" if git("status", "--porcelain", "--", "minigrad") else "")


if __name__ == "__main__":
    main()
