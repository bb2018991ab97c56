"""What the CPU benchmarks share: thread limits, a timer, the machine's description, JSON, tables.

Ratios are the numbers to trust: the machine may be shared, so each script measures everything it
compares in the same process, one after another, and reports medians.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_DATA_ROOT = Path(os.environ.get("MINIGRAD_DATA_ROOT", REPO.parent / "shared" / "datasets"))

# Thread-count variables only. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE may be set in the
# environment on purpose (they pick OpenBLAS kernels); they are never touched here.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
RECORDED_VARIABLES = THREAD_VARIABLES + ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "XLA_FLAGS")
# XLA (the JAX trainer) with one thread, read when jax is first imported. Measured with jaxlib
# 0.10.2, these flags alone do not stop a large matmul from using two cores (XLA ignores the
# second word, and its thunk runtime the first): pinning the process to one core (pin_to_one_core)
# is what holds it to one, since XLA sizes its thread pool by the cores the process may use.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ---- threads --------------------------------------------------------------------------------
# BLAS and OpenMP read their thread settings when they are loaded, so a benchmark runs in a child
# process whose environment has them from the start (thread_environment, in_threads); a parent
# that already imported NumPy or PyTorch could only resize their pools, not change how they wait.

CHILD_MARK = "MINIGRAD_BENCH_THREADS"  # set in the child: the thread count it was started with


def thread_environment(threads: int) -> dict:
    """os.environ for a child process: every thread count `threads`, this checkout's minigrad.

    The repository goes first on PYTHONPATH, so that the child measures the minigrad next to
    this script rather than one that an editable install points at.
    """
    env = dict(os.environ, **{name: str(threads) for name in THREAD_VARIABLES})
    if threads == 1:
        env["XLA_FLAGS"] = _xla_one_thread(env.get("XLA_FLAGS"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env[CHILD_MARK] = str(threads)
    return env


def in_threads(threads: int) -> bool:
    """Whether this process was started by thread_environment(threads)."""
    return os.environ.get(CHILD_MARK) == str(threads)


def rerun_in_threads(threads: int, argv: list[str]) -> int:
    """Run this script again with `argv` in a child started with `threads`; its exit code."""
    command = [sys.executable, sys.argv[0], *argv]
    return subprocess.run(command, env=thread_environment(threads)).returncode


def limit_threads(threads: int, torch=None) -> dict:
    """Give NumPy's OpenBLAS and PyTorch (OpenMP, MKL) the same number of threads.

    The environment variables cover libraries that start their pools later; the pools already
    loaded (NumPy's OpenBLAS, PyTorch's if given) are resized now. Returns the counts in force.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if threads == 1:  # before jax is imported (the JAX trainer imports it when it is built)
        os.environ["XLA_FLAGS"] = _xla_one_thread(os.environ.get("XLA_FLAGS"))
    _openblas_call("set_num_threads", threads)
    counts = {"numpy_openblas": _openblas_call("get_num_threads")}
    if torch is not None:
        torch.set_num_threads(threads)
        counts["torch"] = torch.get_num_threads()
    return counts


def _xla_one_thread(flags: str | None) -> str:
    """XLA_FLAGS with XLA_ONE_THREAD added to what the user set (once)."""
    if flags and XLA_ONE_THREAD in flags:
        return flags
    return " ".join(filter(None, [flags, XLA_ONE_THREAD]))


# The cores this process could use before pin_to_one_core: what machine() reports, so that a
# pinned run still describes the machine it ran on (and warn_if_busy counts its cores).
_CORES_BEFORE_PINNING: int | None = None


def pin_to_one_core() -> int | None:
    """Let this process (and the processes it starts later) run on one core only; which one.

    The first of the cores it may use now (os.sched_setaffinity, Linux; child processes inherit
    it). Libraries that size their thread pools by the usable cores (XLA) then make one thread,
    and none can spread its work over a second core. None where the OS has no affinity call or
    refuses it.
    """
    global _CORES_BEFORE_PINNING
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(cores)})
    except OSError:
        return None
    if _CORES_BEFORE_PINNING is None:
        _CORES_BEFORE_PINNING = len(cores)
    return min(cores)


def _openblas_call(function: str, *args):
    """Call openblas_<function> in the OpenBLAS that NumPy loaded; None where it is not found."""
    for path in _loaded_openblas():
        library = ctypes.CDLL(path)  # already loaded by NumPy: this returns the same handle
        names = (f"scipy_openblas_{function}64_", f"openblas_{function}64_", f"openblas_{function}")
        for name in names:
            if hasattr(library, name):
                return getattr(library, name)(*args)
    return None


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries in this process: NumPy's wheel copy, or any mapped one."""
    paths = glob.glob(str(Path(numpy.__file__).parent.parent / "numpy.libs" / "*openblas*"))
    try:
        with open("/proc/self/maps") as maps:
            mapped = {line.split()[-1] for line in maps if "openblas" in line.lower()}
        paths += sorted(p for p in mapped if p.startswith("/") and p not in paths)
    except OSError:
        pass
    return paths


# ---- timing ---------------------------------------------------------------------------------


def time_interleaved(
    fns: dict, min_time: float = 0.1, repeats: int = 5, warmup: float = 0.05
) -> dict:
    """Median seconds per call of each fn(), timed in turns so that they share the machine's noise.

    Each fn is first called untimed for `warmup` seconds (at least 3 calls: PyTorch's first
    backward starts its engine, a few hundred milliseconds once). Then each gets enough calls
    per block to last about min_time / repeats (at least one call), and `repeats` rounds time
    one block of each fn in turn.
    """
    for fn in fns.values():
        _warm_up(fn, warmup)
    numbers = {name: _calls_per_block(fn, min_time / repeats) for name, fn in fns.items()}
    blocks = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            blocks[name].append(_time_block(fn, numbers[name]) / numbers[name])
    return {name: statistics.median(times) for name, times in blocks.items()}


def _warm_up(fn, seconds: float, least: int = 3) -> None:
    start, calls = time.perf_counter(), 0
    while calls < least or time.perf_counter() - start < seconds:
        fn()
        calls += 1


def _calls_per_block(fn, block_time: float) -> int:
    """How many calls of fn() take about block_time."""
    number = 1
    while True:
        elapsed = _time_block(fn, number)
        if elapsed >= block_time or number >= 1 << 20:
            return number
        number *= 2 if elapsed == 0 else max(2, min(10, int(block_time / elapsed) + 1))


def _time_block(fn, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


# ---- the machine and the software -----------------------------------------------------------


def machine() -> dict:
    """CPU model, core counts and OS: what a reader needs to compare two result files."""
    cpu = {}
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in cpu:
                    cpu[key] = value.strip()
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    affinity = _CORES_BEFORE_PINNING or affinity
    return {
        "cpu": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_family": cpu.get("cpu family"),
        "cpu_model": cpu.get("model"),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "platform": platform.platform(),
    }


def load_average() -> list | None:
    """The 1, 5 and 15 minute load averages (None where the OS does not say)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def warn_if_busy(threads: int) -> list | None:
    """Say on stderr when other work already keeps the CPUs busy; return the load averages."""
    load, cpus = load_average(), machine()["usable_cpus"] or os.cpu_count() or 1
    if load and load[0] + threads > cpus + 0.5:
        print(
            f"note: load average {load[0]:.1f} on {cpus} CPUs before starting: other work "
            "shares the cores, so absolute times are noisy (compare the ratios, measured in "
            "the same run); with --threads above 1 a parallel BLAS may slow down badly when "
            "its threads wait for busy cores",
            file=sys.stderr,
        )
    return load


def versions(torch) -> dict:
    import minigrad

    blas = numpy.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numpy_blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "torch": torch.__version__,
        "minigrad": minigrad.__version__,
        "minigrad_commit": _git("rev-parse", "--short", "HEAD"),
        "minigrad_dirty": bool(_git("status", "--porcelain", "--", "minigrad")),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def report(benchmark: str, settings: dict, threads: dict, load_before, torch, results) -> dict:
    """The JSON document: what ran, where, with what, how busy the machine was, the results."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": machine(),
        "versions": versions(torch),
        "settings": settings,
        "threads": threads,
        "environment": {name: os.environ.get(name) for name in RECORDED_VARIABLES},
        "load_average": {"before": load_before, "after": load_average()},
        "results": results,
    }


def write_json(path, document: dict) -> Path:
    """Write `document` as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    return write_atomically(
        path, lambda temporary: temporary.write_text(json.dumps(document, indent=2) + "\n")
    )


def write_atomically(path, write) -> Path:
    """Call write(temporary path) next to `path`, then move the result onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix
    )
    os.close(descriptor)
    try:
        write(Path(name))
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


def load_mnist(root):
    """The MNIST training and test sets as ((inputs, targets), (inputs, targets)) NumPy arrays."""
    import minigrad as mg

    train = mg.data.MNIST(root, train=True, download=False).arrays()
    test = mg.data.MNIST(root, train=False, download=False).arrays()
    return train, test


# ---- tables ---------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list], markdown: bool = False) -> str:
    """A text table (or a Markdown one); numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) or row[i] == "-" for row in rows) for i in range(len(headers))
    ]
    if markdown:
        rule = ["---:" if num else "---" for num in numeric]
        return "\n".join("| " + " | ".join(row) + " |" for row in [cells[0], rule] + cells[1:])

    def line(row):
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def _is_number(value) -> bool:
    text = str(value).removeprefix("-").replace(".", "", 1).rstrip("x%")
    return isinstance(value, (int, float)) or text.isdigit()
