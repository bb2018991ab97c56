"""The command line of examples/mnist.py, and how --resume and --overwrite settle the settings.

A new run takes the defaults below for what is not given. --resume takes every setting from the
checkpoint: the ones that shape training (TRAINING) may not be changed, so a resumed run is the
run it continues (--epochs may grow when there is no lr schedule, as a logged override); the others
(where the data is, the device, threads, evaluation batch size, progress) may be, and each change
is printed. stats.json records the settings actually used.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import minigrad as mg

DEFAULTS = {
    "epochs": 10, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
    "schedule": "cosine", "seed": 0, "steps_per_epoch": None,
    "data_root": os.path.expanduser("~/.cache/minigrad"), "device": None,
    "test_batch_size": 1000, "log_interval": 20, "threads": None,
}
TRAINING = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "seed",
            "steps_per_epoch")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def new_run_settings(args, defaults=None) -> dict:
    """The settings of a new run: what was given, the defaults for the rest."""
    defaults = DEFAULTS if defaults is None else defaults
    settings = {name: default if getattr(args, name) is None else getattr(args, name)
                for name, default in defaults.items()}
    if settings["device"] is None:
        settings["device"] = "cuda" if mg.cuda.is_available() else "cpu"
    return settings


def resumed_settings(parser, args, saved: dict, where: str, defaults=None,
                     training=None) -> tuple[dict, list]:
    """The checkpoint's settings with the allowed changes from the command line, and a note each.

    A changed training setting is a parser error naming both values. (defaults and training:
    another script's, mnist_cnn.py's.)
    """
    defaults = DEFAULTS if defaults is None else defaults
    training = TRAINING if training is None else training
    settings, notes = {**defaults, **saved}, []
    for name in defaults:
        given = getattr(args, name)
        if given is None or given == settings[name]:
            continue
        growing = (name == "epochs" and settings.get("schedule", "none") == "none"
                   and given > saved["epochs"])
        if name in training and not growing:
            parser.error(
                f"argument {option(name)}: the run in {where} was trained with "
                f"{option(name)} {settings[name]}; --resume continues it with its own settings "
                f"(drop {option(name)}), or start a new run with another --out"
            )
        notes.append(f"override: {option(name)} {given} (the run had {settings[name]})")
        settings[name] = given
    return settings, notes


def check_device(parser, name: str):
    """The Device for --device, or a parser error naming it and the devices this machine has."""
    available = ["cpu"] + [f"cuda:{i}" for i in range(mg.cuda.device_count())]
    try:
        device = mg.device(name)
    except (TypeError, ValueError) as error:
        parser.error(f"argument --device: {error}; available here: {', '.join(available)}")
    if device.type == "cuda" and str(device) not in available:
        if importlib.util.find_spec("cupy") is None:
            reason = ("CuPy is not installed: pip install -e '.[cuda13]' (or '.[cuda12]', to "
                      "match the CUDA version nvidia-smi shows)")
        else:
            reason = f"{len(available) - 1} GPU(s) visible"
        parser.error(f"argument --device: {name!r} is not available ({reason}); "
                     f"available here: {', '.join(available)}")
    return device


def use_threads(count, restart: bool) -> str | None:
    """Make BLAS use `count` threads; returns a note when that cannot happen in this process.

    BLAS reads its thread count once, when NumPy is imported, so the script starts itself again
    with the variables set (only from the command line, where `restart` is True).
    """
    if count is None or all(os.environ.get(name) == str(count) for name in THREAD_VARIABLES):
        return None
    if not restart:
        return (f"note: --threads {count} takes effect from the command line only (here BLAS "
                f"keeps {os.environ.get('OPENBLAS_NUM_THREADS', 'its default')} threads)")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    return None  # not reached


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def non_negative(kind):
    def parse(text):
        value = kind(text)
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def build_parser():
    """The parser; every setting's default is None here, so a given value can be told apart."""
    d = DEFAULTS
    parser = argparse.ArgumentParser(description="Train the tutorial's MNIST net with minigrad.")
    add = parser.add_argument
    add("--device", help="cpu, cuda or cuda:N (default: cuda when a GPU is usable, else cpu)")
    add("--epochs", type=positive(int), help=f"default: {d['epochs']}")
    add("--batch-size", type=positive(int), help=f"default: {d['batch_size']}")
    add("--lr", type=positive(float), help=f"default: {d['lr']}")
    add("--momentum", type=non_negative(float),
        help=f"Nesterov momentum, 0 for plain SGD (default: {d['momentum']})")
    add("--weight-decay", type=non_negative(float), help=f"default: {d['weight_decay']}")
    add("--schedule", choices=["cosine", "step", "none"],
        help="lr over --epochs: cosine down to 0, step (x0.1 every epochs/3), none "
             f"(default: {d['schedule']})")
    add("--steps-per-epoch", type=positive(int),
        help="stop each epoch after this many batches, for quick trials (default: all)")
    add("--seed", type=non_negative(int), help=f"default: {d['seed']}")
    add("--data-root", help="folder holding MNIST/raw (downloaded there by torchvision when "
                            f"missing; default: {d['data_root']})")
    add("--test-batch-size", type=positive(int), help=f"default: {d['test_batch_size']}")
    add("--log-interval", type=positive(int),
        help="update the progress bar and check the loss every N batches "
             f"(default: {d['log_interval']})")
    add("--threads", type=positive(int),
        help="BLAS threads on the CPU (default: BLAS's own choice, usually one per core)")
    add("--out", default="runs/mnist", help="run folder (default: runs/mnist)")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--no-compile", action="store_true",
        help="run each training step through the eager engine instead of mg.compile's program")
    add("--distributed", action="store_true",
        help="data-parallel training over MPI: launch with mpiexec -n N (pip install -e "
             "'.[examples,distributed]'); --batch-size is per rank, rank 0 writes --out")
    add("--resume", action="store_true",
        help="continue the run in --out from its checkpoint.npz, with its settings")
    add("--overwrite", action="store_true",
        help="start a new run in --out even though it holds one (its files are deleted)")
    add("--evaluate", metavar="CHECKPOINT",
        help="only print the test loss and accuracy of a saved model (best.npz or "
             "checkpoint.npz), then exit")
    return parser
