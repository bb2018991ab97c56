"""pytorch/examples' MNIST convolutional network, trained with minigrad: its Net (two 3x3
convolutions, max pooling, dropout, two linear layers, log_softmax), Adadelta with lr 1.0 and
StepLR's gamma 0.7 each epoch, nll_loss, batch 64, as in its main.py.

    python examples/mnist_cnn.py --epochs 3          # about 99% on the test set
    python examples/mnist_cnn.py --resume            # after Ctrl-C or a crash: finish the run
    python examples/mnist_cnn.py --evaluate runs/mnist_cnn/best.npz
    python examples/mnist_cnn.py --no-compile      # every step through the eager engine

The --out folder is mnist.py's run folder (checkpoint.npz, best.npz, stats.csv and stats.json,
curves.png; run_folder.py says what holds after a crash), and --resume continues a run with its
own settings (mnist_options.py says how). The Net class below is PyTorch's, unchanged: with
`import torch` instead of `import minigrad as torch` it runs on PyTorch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import mnist
import mnist_options as options
from run_folder import RunFolderWriteError
from tqdm import tqdm

import minigrad as torch
import minigrad.nn as nn
import minigrad.nn.functional as F

DEFAULTS = {
    "epochs": 14, "batch_size": 64, "lr": 1.0, "gamma": 0.7, "seed": 1,
    "steps_per_epoch": None, "data_root": os.path.expanduser("~/.cache/minigrad"),
    "device": None, "test_batch_size": 1000, "log_interval": 20, "threads": None,
}
TRAINING = ("epochs", "batch_size", "lr", "gamma", "seed", "steps_per_epoch")


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()  # noqa: UP008  (pytorch/examples' line, unchanged)
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def images(x):
    """The loader's rows of 784 normalised pixels as (N, 1, 28, 28) images, as the Net takes."""
    return x.reshape(-1, 1, 28, 28)


def make_train_step(model, optimizer, compiled: bool = True):
    """One step: forward, nll_loss, backward, Adadelta's update; returns (loss, log-probs);
    through mg.compile unless compiled=False (docs/compile.md)."""

    def train_step(x, y):
        optimizer.zero_grad()
        output = model(images(x))
        loss = F.nll_loss(output, y)
        loss.backward()
        optimizer.step()
        return loss, output

    return torch.compile(train_step) if compiled else train_step


@torch.no_grad()
def evaluate(model, loader):
    """Mean nll_loss and accuracy over a data set, in eval mode (no dropout)."""
    model.eval()
    total, correct, seen = 0.0, 0, 0
    for x, y in loader:
        output = model(images(x))
        total += F.nll_loss(output, y, reduction="sum").item()
        correct += (output.argmax(dim=1) == y).sum().item()
        seen += len(y)
    return total / seen, correct / seen


def build_parser():
    """pytorch/examples' options (and mnist.py's for the run folder); defaults are None so a
    given value can be told apart from a default on --resume."""
    d = DEFAULTS
    parser = argparse.ArgumentParser(description="Train pytorch/examples' MNIST CNN with "
                                                 "minigrad.")
    add = parser.add_argument
    add("--device", help="cpu, cuda or cuda:N (default: cuda when a GPU is usable, else cpu)")
    add("--epochs", type=options.positive(int), help=f"default: {d['epochs']}")
    add("--batch-size", type=options.positive(int), help=f"default: {d['batch_size']}")
    add("--test-batch-size", type=options.positive(int), help=f"default: {d['test_batch_size']}")
    add("--lr", type=options.positive(float), help=f"Adadelta's lr (default: {d['lr']})")
    add("--gamma", type=options.positive(float),
        help=f"StepLR's factor each epoch (default: {d['gamma']})")
    add("--seed", type=options.non_negative(int), help=f"default: {d['seed']}")
    add("--steps-per-epoch", type=options.positive(int),
        help="stop each epoch after this many batches, for quick trials (default: all)")
    add("--data-root", help=f"folder holding MNIST/raw (default: {d['data_root']})")
    add("--log-interval", type=options.positive(int),
        help=f"update the progress bar every N batches (default: {d['log_interval']})")
    add("--threads", type=options.positive(int), help="BLAS threads on the CPU")
    add("--out", default="runs/mnist_cnn", help="run folder (default: runs/mnist_cnn)")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--no-compile", action="store_true",
        help="run each training step through the eager engine instead of mg.compile's program")
    add("--resume", action="store_true",
        help="continue the run in --out from its checkpoint.npz, with its settings")
    add("--overwrite", action="store_true",
        help="start a new run in --out even though it holds one (its files are deleted)")
    add("--evaluate", metavar="CHECKPOINT",
        help="only print the test loss and accuracy of a saved model, then exit")
    return parser


def main(argv=None, restart: bool = False) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.evaluate:
        return evaluate_file(parser, args)
    run, state, settings, notes = mnist.settle_run(parser, args, DEFAULTS, TRAINING)
    try:
        return train(parser, args, run, state, settings, notes, restart)
    except RunFolderWriteError as error:
        print(mnist.write_failed(error, run, settings["epochs"], __file__), file=sys.stderr)
        return 1
    finally:
        run.unlock()


def train(parser, args, run, state, settings, notes, restart: bool) -> int:
    """Train the settled run (new or resumed) to its last epoch, writing to `run`."""
    if state is not None and state["epoch"] >= settings["epochs"]:
        print(f"the run in {run.path} is finished ({state['epoch']} of {settings['epochs']} "
              f"epochs); nothing to resume; {mnist.describe_best(state['best'], run)}")
        return 0
    threads_note = options.use_threads(settings["threads"], restart)
    device = options.check_device(parser, settings["device"])
    try:
        train_set = torch.data.MNIST(settings["data_root"], train=True, download=True)
        test_set = torch.data.MNIST(settings["data_root"], train=False, download=True)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"mnist_cnn.py: error: {error}", file=sys.stderr)
        return 1
    if state is None and args.overwrite:
        run.remove_run()

    torch.manual_seed(settings["seed"])
    model = Net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=settings["lr"])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=settings["gamma"])
    train_loader = torch.data.DataLoader(train_set, settings["batch_size"], shuffle=True,
                                         device=device)
    test_loader = torch.data.DataLoader(test_set, settings["test_batch_size"], device=device)
    history, best, best_model, start = [], None, None, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        mnist.restore_generators(state["rng"], device, train_loader, state["epoch"])
        history, best, best_model = state["history"], state["best"], state["best_model"]
        start = state["epoch"]
    steps = min(settings["steps_per_epoch"] or len(train_loader), len(train_loader))
    train_step = make_train_step(model, optimizer, compiled=not args.no_compile)

    print(model)
    for note in [*notes, threads_note] if threads_note else notes:
        print(note)
    if start:
        print(f"resuming from epoch {start} of {run.file('checkpoint.npz')}")
    print(f"training on {device}: {len(train_set)} train / {len(test_set)} test images, {steps} "
          f"batches of {settings['batch_size']} per epoch; writing to {run.path}")
    epochs, epoch = settings["epochs"], start
    try:
        for epoch in range(start + 1, epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            began = time.perf_counter()
            with tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False,
                      disable=args.no_progress, dynamic_ncols=True) as bar:
                train_loss, train_acc = mnist.train_epoch(model, train_loader, train_step, bar,
                                                          steps, settings["log_interval"])
                train_time = time.perf_counter() - began
                test_loss, test_acc = evaluate(model, test_loader)
            if not math.isfinite(test_loss):
                raise mnist.Diverged(f"the test loss became {test_loss}")
            scheduler.step()
            history.append(dict(epoch=epoch, lr=lr, train_loss=train_loss, train_acc=train_acc,
                                test_loss=test_loss, test_acc=test_acc,
                                train_time_s=round(train_time, 3),
                                eval_time_s=round(time.perf_counter() - began - train_time, 3)))
            improved = best is None or test_loss < best["test_loss"]
            if improved:
                best = {"epoch": epoch, "test_loss": test_loss, "test_acc": test_acc}
                best_model = {name: torch.tensor(value.detach().numpy())
                              for name, value in model.state_dict().items()}
            run.commit({"epoch": epoch, "settings": settings, "history": history, "best": best,
                        "best_model": best_model, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "rng": mnist.generator_state()})
            print(f"epoch {epoch:2d}/{epochs}  {train_time:6.1f}s  lr {lr:.4g}  "
                  f"train loss {train_loss:.4f} acc {train_acc:6.2%}  "
                  f"test loss {test_loss:.4f} acc {test_acc:6.2%}"
                  + ("  (best, saved)" if improved else ""), flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted in epoch {epoch}; {mnist.describe_best(best, run)}; "
              f"{mnist.resume_hint(run, epochs, __file__)}", file=sys.stderr)
        return 130
    except mnist.Diverged as error:
        print(f"mnist_cnn.py: error: {error} in epoch {epoch}; lower --lr; "
              f"{mnist.describe_best(best, run)}", file=sys.stderr)
        return 1
    mnist.finish(run, history, settings, best)
    return 0


def evaluate_file(parser, args) -> int:
    """--evaluate: the test loss and accuracy of a saved model; writes nothing."""
    try:
        state = torch.load(args.evaluate, map_location="cpu")
    except (OSError, RuntimeError) as error:
        parser.error(f"argument --evaluate: {error}")
    if isinstance(state, dict) and "model" in state and "optimizer" in state:
        state = state["model"]
    settings = options.new_run_settings(args, DEFAULTS)
    device = options.check_device(parser, settings["device"])
    model = Net().to(device)
    try:
        model.load_state_dict(state)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as error:
        parser.error(f"argument --evaluate: {args.evaluate} is not a state dict of this model "
                     f"({type(error).__name__}: {error})")
    test_set = torch.data.MNIST(settings["data_root"], train=False, download=True)
    loader = torch.data.DataLoader(test_set, settings["test_batch_size"], device=device)
    loss, accuracy = evaluate(model, loader)
    print(f"{args.evaluate}: test loss {loss:.4f}, accuracy {accuracy:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(restart=True))
