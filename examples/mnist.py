"""Train the tutorial's 784-128-64-10 ReLU network on MNIST with minigrad, PyTorch style.

    python examples/mnist.py                        # 10 epochs, about 98.4% on the test set
    python examples/mnist.py --data-root ../shared/datasets --device cpu --out runs/cpu
    python examples/mnist.py --resume               # after Ctrl-C: finish the run in --out

The --out folder gets best.npz (the model's state dict at the lowest test loss so far),
checkpoint.npz (model, optimizer and scheduler after the last epoch, for --resume), stats.csv and
stats.json (one row per epoch), and at the end curves.png and, with HiPlot installed, hiplot.html.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

from run_folder import RunFolder
from tqdm import tqdm

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn


class NeuralNet(nn.Module):
    """The tutorial's network: two hidden ReLU layers, then ten class scores (logits)."""

    def __init__(self, input_size: int = 784, hidden1: int = 128, hidden2: int = 64,
                 num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden1)
        self.fc2 = nn.Linear(hidden1, hidden2)
        self.fc3 = nn.Linear(hidden2, num_classes)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def train_epoch(model, loader, loss_fn, optimizer, bar, max_steps=None):
    """One pass over the training set; returns the running mean loss and accuracy."""
    model.train()
    # Sums stay tensors on the device: reading a number back (.item()) makes the CPU wait for
    # the GPU, so it happens only for the progress bar, every 20 steps, and at the end.
    total_loss, correct, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(loader):
        if step == max_steps:
            break
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with mg.no_grad():
            total_loss = total_loss + loss * len(y)
            correct = correct + (logits.argmax(dim=1) == y).sum()
        seen += len(y)
        bar.update()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{float(total_loss) / seen:.4f}")
    return float(total_loss) / seen, int(correct) / seen


@mg.no_grad()
def evaluate(model, loader):
    """Mean loss and accuracy over a whole data set, without recording a graph."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(dim=1) == y).sum().item()
        seen += len(y)
    return total_loss / seen, correct / seen


def make_scheduler(name, optimizer, epochs):
    if name == "cosine":
        return mg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return mg.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    return None


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    device = check_device(parser, args.device)
    try:
        run = RunFolder(args.out)
    except OSError as error:
        parser.error(f"argument --out: cannot write to {args.out!r}: {error.strerror or error}")
    checkpoint_path, best_path = run.file("checkpoint.npz"), run.file("best.npz")
    if args.resume and not os.path.exists(checkpoint_path):
        parser.error(f"argument --resume: no checkpoint.npz in {run.path} to resume from")

    try:
        train_set = mg.data.MNIST(args.data_root, train=True, download=True)
        test_set = mg.data.MNIST(args.data_root, train=False, download=True)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"mnist.py: error: {error}", file=sys.stderr)
        return 1

    mg.manual_seed(args.seed)
    model = NeuralNet().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = mg.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                             nesterov=args.momentum > 0, weight_decay=args.weight_decay)
    scheduler = make_scheduler(args.schedule, optimizer, args.epochs)
    history, best_loss, start = [], float("inf"), 0
    if args.resume:
        state = mg.load(checkpoint_path, device=device)
        planned = state["settings"].get("epochs")
        if scheduler is not None and planned != args.epochs:
            parser.error(f"argument --resume: the run in {run.path} planned {planned} epochs "
                         f"and its lr schedule ends there; pass --epochs {planned}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, best_loss, start = state["history"], state["best_test_loss"], state["epoch"]
        mg.manual_seed(args.seed + start)  # a fresh, reproducible shuffle for the epochs left
        print(f"resuming from epoch {start} of {checkpoint_path}")
    train_loader = mg.data.DataLoader(train_set, args.batch_size, shuffle=True, device=device)
    test_loader = mg.data.DataLoader(test_set, 1000, device=device)
    steps = min(args.steps_per_epoch or len(train_loader), len(train_loader))
    settings = {k: v for k, v in vars(args).items() if k not in ("no_progress", "resume")}

    print(model)
    print(f"training on {device}: {len(train_set)} train / {len(test_set)} test images, "
          f"{steps} batches of {args.batch_size} per epoch; writing to {run.path}")
    epoch = start
    try:
        for epoch in range(start + 1, args.epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            began = time.perf_counter()
            with tqdm(total=steps, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                      disable=args.no_progress, dynamic_ncols=True) as bar:
                train_loss, train_acc = train_epoch(model, train_loader, loss_fn, optimizer, bar,
                                                    args.steps_per_epoch)
            train_time = time.perf_counter() - began
            test_loss, test_acc = evaluate(model, test_loader)
            if scheduler is not None:
                scheduler.step()
            history.append(dict(epoch=epoch, lr=lr, train_loss=train_loss, train_acc=train_acc,
                                test_loss=test_loss, test_acc=test_acc,
                                train_time_s=round(train_time, 3),
                                eval_time_s=round(time.perf_counter() - began - train_time, 3)))
            improved = test_loss < best_loss
            if improved:
                best_loss = test_loss
                mg.save(model.state_dict(), best_path)
            mg.save({"epoch": epoch, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler else None,
                     "history": history, "best_test_loss": best_loss, "settings": settings},
                    checkpoint_path)
            run.save_stats(history, settings)
            print(f"epoch {epoch:2d}/{args.epochs}  {train_time:5.1f}s  lr {lr:.4g}  "
                  f"train loss {train_loss:.4f} acc {train_acc:6.2%}  "
                  f"test loss {test_loss:.4f} acc {test_acc:6.2%}"
                  + ("  (best, saved)" if improved else ""), flush=True)
    except KeyboardInterrupt:  # every file in --out was written atomically: all are whole
        print(f"\ninterrupted in epoch {epoch}; {describe_best(history, best_path)}; "
              "--resume carries on", file=sys.stderr)
        return 130
    if history:
        run.save_plot(history)
        print(f"wrote curves.png; {run.save_hiplot(history, settings)}")
        print(f"final test accuracy {history[-1]['test_acc']:.2%}; "
              f"{describe_best(history, best_path)}")
    return 0


def describe_best(history, best_path) -> str:
    if not history:
        return "no epoch finished, so no model was saved"
    best = min(history, key=lambda row: row["test_loss"])
    return (f"the best model (epoch {best['epoch']}, test loss {best['test_loss']:.4f}, "
            f"accuracy {best['test_acc']:.2%}) is in {best_path}")


def check_device(parser, name: str):
    """The Device for --device, or a parser error naming it and the devices this machine has."""
    available = ["cpu"] + [f"cuda:{i}" for i in range(mg.cuda.device_count())]
    try:
        device = mg.device(name)
    except (TypeError, ValueError) as error:
        parser.error(f"argument --device: {error}; available here: {', '.join(available)}")
    if device.type == "cuda" and str(device) not in available:
        reason = ("CuPy is not installed" if importlib.util.find_spec("cupy") is None
                  else f"{len(available) - 1} GPU(s) visible")
        parser.error(f"argument --device: {name!r} is not available ({reason}); "
                     f"available here: {', '.join(available)}")
    return device


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def non_negative(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(description="Train the tutorial's MNIST net with minigrad.")
    parser.add_argument("--device", default="cuda" if mg.cuda.is_available() else "cpu",
                        help="cpu, cuda or cuda:N (default: cuda when a GPU is usable, else cpu)")
    parser.add_argument("--epochs", type=positive(int), default=10, help="default: 10")
    parser.add_argument("--batch-size", type=positive(int), default=64, help="default: 64")
    parser.add_argument("--lr", type=positive(float), default=0.05, help="default: 0.05")
    parser.add_argument("--momentum", type=non_negative, default=0.9,
                        help="Nesterov momentum, 0 for plain SGD (default: 0.9)")
    parser.add_argument("--weight-decay", type=non_negative, default=5e-4, help="default: 5e-4")
    parser.add_argument("--schedule", choices=["cosine", "step", "none"], default="cosine",
                        help="lr over --epochs: cosine down to 0, step (x0.1 every epochs/3), "
                             "none (default: cosine)")
    parser.add_argument("--data-root", default=os.path.expanduser("~/.cache/minigrad"),
                        help="folder holding MNIST/raw (downloaded there by torchvision when "
                             "missing; default: ~/.cache/minigrad)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--out", default="runs/mnist", help="run folder (default: runs/mnist)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--resume", action="store_true",
                        help="continue from --out's checkpoint.npz (with its saved lr schedule)")
    parser.add_argument("--steps-per-epoch", type=positive(int), default=None,
                        help=argparse.SUPPRESS)  # for quick tests: stop each epoch early
    return parser


if __name__ == "__main__":
    sys.exit(main())
