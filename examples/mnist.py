"""Train the tutorial's 784-128-64-10 ReLU network on MNIST with minigrad, PyTorch style.

    python examples/mnist.py                        # 10 epochs, about 98.4% on the test set
    python examples/mnist.py --data-root ../shared/datasets --device cpu --out runs/cpu
    python examples/mnist.py --resume               # after Ctrl-C or a crash: finish the run
    python examples/mnist.py --evaluate runs/mnist/best.npz
    python examples/mnist.py --no-compile           # every step through the eager engine

Each training step runs through mg.compile: the first step of each batch size is traced, the
rest replay its program (docs/compile.md); --no-compile runs the same step eagerly.

The --out folder gets checkpoint.npz (everything --resume needs, written first each epoch),
best.npz (the model's state dict at the lowest test loss so far), stats.csv and stats.json (one
row per epoch), and at the end curves.png and, with HiPlot installed, hiplot.html. run_folder.py
says what holds after a crash; mnist_options.py, how --resume settles the settings.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import sys
import time

import mnist_options as options
from run_folder import DERIVED, RunFolder, RunFolderBusy, RunFolderError, RunFolderWriteError
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


class Diverged(Exception):
    """The loss stopped being a finite number; training cannot recover from that."""


def make_train_step(model, loss_fn, optimizer, compiled: bool = True):
    """One training step on a batch (forward, loss, backward, SGD's update), returning the loss
    and the logits; through mg.compile unless compiled=False."""

    def train_step(x, y):
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss, logits

    return mg.compile(train_step) if compiled else train_step


def train_epoch(model, loader, train_step, bar, max_steps=None, log_interval=20):
    """One pass over the training set; returns the running mean loss and accuracy."""
    model.train()
    # Sums stay tensors on the device: reading a number back (.item()) makes the CPU wait for
    # the GPU, so it happens only every log_interval steps (for the bar and the NaN check).
    total_loss, correct, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(loader, start=1):
        loss, logits = train_step(x, y)
        with mg.no_grad():
            total_loss = total_loss + loss * len(y)
            correct = correct + (logits.argmax(dim=1) == y).sum()
        seen += len(y)
        bar.update()
        last = step == max_steps or step == len(loader)
        if step % log_interval == 0 or last:
            mean = float(total_loss) / seen
            if not math.isfinite(mean):
                raise Diverged(f"the training loss became {mean} by step {step}")
            bar.set_postfix(loss=f"{mean:.4f}")
        if last:
            break
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


def generator_state() -> dict:
    """The CPU generator's state (model initialisation and CPU shuffles draw from it)."""
    return {"cpu": mg.backend.get_rng_state(mg.device("cpu"))}


def restore_generators(saved: dict, device, train_loader, epochs_done: int) -> None:
    """Put the generators where they were after `epochs_done` epochs, bit for bit."""
    mg.backend.set_rng_state(mg.device("cpu"), saved["cpu"])
    if device.type == "cuda":  # CuPy's generators expose no state: replay the epochs' shuffles,
        for _ in range(epochs_done):  # the only draws the run made from it
            next(iter(train_loader))


def main(argv=None, restart: bool = False) -> int:
    parser = options.build_parser()
    args = parser.parse_args(argv)
    if args.evaluate:
        return evaluate_file(parser, args)
    if args.distributed:  # every rank runs this script; rank 0 holds and writes the folder
        options.use_threads(args.threads, restart)  # (a restart after MPI's start would break it)
        mg.distributed.init_process_group("mpi")
        if mg.distributed.get_rank() != 0:
            return train_other_rank(parser, args, restart)
    run, state, settings, notes = settle_run(parser, args)  # the run folder, locked
    if args.distributed:
        mg.distributed.barrier()  # the folder is settled: the other ranks may read it
    try:
        return train(parser, args, run, state, settings, notes, restart)
    except RunFolderWriteError as error:  # the files written before are whole: say what is kept
        print(write_failed(error, run, settings["epochs"]), file=sys.stderr)
        return 1
    finally:
        run.unlock()


class _NoFolder:
    """What a rank other than 0 has in place of the run folder: it writes nothing."""

    def __init__(self, path):
        self.path = path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def commit(self, state: dict) -> None:
        pass

    def remove_run(self) -> None:
        pass


def train_other_rank(parser, args, restart: bool) -> int:
    """A rank other than 0: the settings and checkpoint rank 0 settled, read after it did."""
    mg.distributed.barrier()
    where = os.path.abspath(os.path.expanduser(args.out))
    state = None
    if args.resume:
        state = RunFolder(where, create=False).read_checkpoint()
        settings, _ = options.resumed_settings(parser, args, state["settings"], where)
    else:
        settings = options.new_run_settings(args)
    args.overwrite = False  # (rank 0 clears the folder)
    return train(parser, args, _NoFolder(where), state, settings, [], restart)


def train(parser, args, run, state, settings, notes, restart: bool) -> int:
    """Train the settled run (new, resumed or overwritten) to its last epoch, writing to `run`."""
    if state is not None and state["epoch"] >= settings["epochs"]:
        curves = run.file("curves.png")
        if not os.path.isfile(curves):  # stopped before the end's last write
            notes.append(f"{run.save_plot(state['history'])} (it was missing)")
        elif os.path.getmtime(curves) < os.path.getmtime(run.file("checkpoint.npz")):
            notes.append(f"{run.save_plot(state['history'])} (it showed fewer epochs)")
        print("\n".join([*notes, f"the run in {run.path} is finished ({state['epoch']} of "
                                   f"{settings['epochs']} epochs); nothing to resume; "
                                   f"{describe_best(state['best'], run)}"]))
        return 0
    threads_note = options.use_threads(settings["threads"], restart)
    device = options.check_device(parser, settings["device"])
    if device.type == "cuda":  # the GPU's fused kernels: fewer launches, the same values
        mg.cuda.kernels.enabled = True
    try:
        train_set = mg.data.MNIST(settings["data_root"], train=True, download=True)
        test_set = mg.data.MNIST(settings["data_root"], train=False, download=True)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"mnist.py: error: {error}", file=sys.stderr)
        return 1
    if state is None and args.overwrite:
        run.remove_run()

    mg.manual_seed(settings["seed"])
    model = NeuralNet().to(device)
    net, ranks, rank = model, 1, 0
    if args.distributed:  # the same model on every rank, gradients averaged in backward
        ranks, rank = mg.distributed.get_world_size(), mg.distributed.get_rank()
        settings_ranks = settings.setdefault("ranks", ranks)
        if settings_ranks != ranks:
            parser.error(f"argument --resume: the run was trained on {settings_ranks} ranks; "
                         f"resume it on as many (mpiexec -n {settings_ranks})")
        net = nn.parallel.DistributedDataParallel(model)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = mg.optim.SGD(model.parameters(), lr=settings["lr"],
                             momentum=settings["momentum"], nesterov=settings["momentum"] > 0,
                             weight_decay=settings["weight_decay"])
    scheduler = make_scheduler(settings["schedule"], optimizer, settings["epochs"])
    sampler = mg.data.DistributedSampler(train_set, seed=settings["seed"]) if args.distributed \
        else None  # each rank its 1/N of every epoch, in an order shared by all
    train_loader = mg.data.DataLoader(train_set, settings["batch_size"], shuffle=sampler is None,
                                      sampler=sampler, device=device)
    test_loader = mg.data.DataLoader(test_set, settings["test_batch_size"], device=device)
    history, best, best_model, start = [], None, None, 0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            restore_generators(state["rng"], device, train_loader, state["epoch"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            parser.error(f"argument --resume: {run.file('checkpoint.npz')} does not fit this "
                         f"model and optimiser ({type(error).__name__}: {error})")
        history, best, best_model = state["history"], state["best"], state["best_model"]
        start = state["epoch"]
    steps = min(settings["steps_per_epoch"] or len(train_loader), len(train_loader))
    compiled = not args.no_compile and not args.distributed  # (DDP's hooks run eagerly)
    train_step = make_train_step(net, loss_fn, optimizer, compiled=compiled)
    say = print if rank == 0 else (lambda *_, **__: None)

    say(model)
    for note in [*notes, threads_note] if threads_note else notes:
        say(note)
    if start:
        say(f"resuming from epoch {start} of {run.file('checkpoint.npz')}")
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    how = "steps compiled by mg.compile" if compiled else "eager steps"
    where = f" on each of {ranks} ranks (DistributedDataParallel over MPI)" if ranks > 1 else ""
    say(f"training on {device} ({blas} BLAS threads) with {how}: {len(train_set)} train / "
        f"{len(test_set)} test images, "
        f"{steps} batches of {settings['batch_size']} per epoch{where}; writing to {run.path}")
    epochs, epoch = settings["epochs"], start
    try:
        for epoch in range(start + 1, epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            if sampler is not None:
                sampler.set_epoch(epoch)
            began = time.perf_counter()
            # Overflow on the way to a NaN would print NumPy warnings across the progress bar;
            # the NaN itself is caught below and stops the run with a hint.
            with tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False,
                      disable=args.no_progress or rank != 0, dynamic_ncols=True) as bar, \
                    mg.backend.numpy.errstate(all="ignore"):
                train_loss, train_acc = train_epoch(model, train_loader, train_step, bar, steps,
                                                    settings["log_interval"])
                if ranks > 1:  # every rank saw as many images: the mean of the ranks' means
                    pair = mg.tensor([train_loss, train_acc], dtype=mg.float64)
                    mg.distributed.all_reduce(pair, mg.distributed.ReduceOp.AVG)
                    train_loss, train_acc = pair.tolist()
                train_time = time.perf_counter() - began
                test_loss, test_acc = evaluate(model, test_loader)
            if not math.isfinite(test_loss):
                raise Diverged(f"the test loss became {test_loss}")
            if scheduler is not None:
                scheduler.step()
            history.append(dict(epoch=epoch, lr=lr, train_loss=train_loss, train_acc=train_acc,
                                test_loss=test_loss, test_acc=test_acc,
                                train_time_s=round(train_time, 3),
                                eval_time_s=round(time.perf_counter() - began - train_time, 3)))
            improved = best is None or test_loss < best["test_loss"]
            if improved:
                best = {"epoch": epoch, "test_loss": test_loss, "test_acc": test_acc}
                best_model = {name: mg.tensor(value.detach().numpy())
                              for name, value in model.state_dict().items()}
            run.commit({"epoch": epoch, "settings": settings, "history": history, "best": best,
                        "best_model": best_model, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler else None,
                        "rng": generator_state()})
            say(f"epoch {epoch:2d}/{epochs}  {train_time:5.1f}s  lr {lr:.4g}  "
                  f"train loss {train_loss:.4f} acc {train_acc:6.2%}  "
                  f"test loss {test_loss:.4f} acc {test_acc:6.2%}"
                  + ("  (best, saved)" if improved else ""), flush=True)
    except KeyboardInterrupt:  # every file in --out was written atomically: all are whole
        print(f"\ninterrupted in epoch {epoch}; {describe_best(best, run)}; "
              f"{resume_hint(run, epochs)}", file=sys.stderr)
        return 130
    except Diverged as error:
        print(f"mnist.py: error: {error} in epoch {epoch} (lr {lr:.4g}, batch size "
              f"{settings['batch_size']}); the run diverged and was stopped, nothing of this "
              f"epoch was saved: lower --lr (try --lr {lr / 10:.2g}) or raise --batch-size; "
              f"{describe_best(best, run)}", file=sys.stderr)
        return 1
    if rank == 0:
        finish(run, history, settings, best)
    return 0


def settle_run(parser, args, defaults=None, training=None):
    """(run folder, checkpoint or None, settings, notes) for a new, resumed or overwritten run.

    The folder is checked to be writable, before any epoch is trained, and comes back locked:
    the lock is taken before the folder is looked at, so two runs cannot both find it free.
    """
    where = os.path.abspath(os.path.expanduser(args.out))
    if args.resume and args.overwrite:
        parser.error("argument --overwrite: not allowed with --resume (which keeps the run)")
    if args.resume and not os.path.isdir(where):
        parser.error(f"argument --resume: no checkpoint.npz in {where} to resume from")
    try:
        run = RunFolder(where)
        run.lock()
    except RunFolderBusy as error:
        parser.error(f"argument --out: {error}; wait for it to finish or stop it, or pass "
                     "another --out")
    except OSError as error:
        parser.error(f"argument --out: cannot write to {args.out!r}: {error.strerror or error}")
    try:
        return run, *read_run(parser, args, run, defaults, training)
    except BaseException:
        run.unlock()
        raise


def read_run(parser, args, run, defaults=None, training=None):
    """(checkpoint or None, settings, notes): what the locked folder holds, and how to go on."""
    where = run.path
    if args.resume:
        if not os.path.isfile(run.file("checkpoint.npz")):
            parser.error(f"argument --resume: no checkpoint.npz in {where} to resume from")
        try:
            state = run.read_checkpoint()
        except RunFolderError as error:
            parser.error(f"argument --resume: {error}")
        settings, notes = options.resumed_settings(parser, args, state["settings"], where,
                                                   defaults, training)
        try:
            repaired = run.repair(state)
        except RunFolderWriteError as error:
            parser.error(f"argument --resume: {error}, which lags behind checkpoint.npz")
        if repaired:
            notes.append(f"repaired {', '.join(repaired)} from checkpoint.npz (a run that was "
                         "stopped between two writes)")
        return state, settings, notes
    existing = run.existing_run_files()
    if existing and not args.overwrite:
        parser.error(f"argument --out: {where} already holds a run ({', '.join(existing)}); "
                     "pass --resume to continue it, --overwrite to replace it, or another --out")
    return None, options.new_run_settings(args, defaults), []


def finish(run, history, settings, best) -> None:
    print(f"{run.save_plot(history)}; {run.save_hiplot(history, settings)}")
    print(f"final test accuracy {history[-1]['test_acc']:.2%}; {describe_best(best, run)}")


def describe_best(best, run) -> str:
    if best is None:
        return "no epoch finished, so no model was saved"
    if not os.path.isfile(run.file("best.npz")):
        return f"the best model (epoch {best['epoch']}) is in {run.file('checkpoint.npz')}"
    return (f"the best model (epoch {best['epoch']}, test loss {best['test_loss']:.4f}, "
            f"accuracy {best['test_acc']:.2%}) is in {run.file('best.npz')}")


def write_failed(error, run, epochs: int, script: str = __file__) -> str:
    """The line printed when a write fails: which file and why, what is kept, how to go on.

    checkpoint.npz is written first each epoch, so when a file derived from it fails, it holds
    that epoch; when it fails itself, the previous epoch's is still there.
    """
    try:
        held = run.read_checkpoint()["epoch"]
    except RunFolderError:
        held = 0
    name = os.path.basename(error.path)
    if name == "checkpoint.npz":
        saving = f" while saving epoch {held + 1}"
    elif name in DERIVED:
        saving = f" while saving epoch {held}"
    else:  # curves.png, once training is over
        saving = ""
    if held == 0:
        kept = "no epoch was saved"
    elif held < epochs:
        kept = f"checkpoint.npz is intact and holds epoch {held} of {epochs}"
    else:
        kept = (f"training finished; checkpoint.npz is intact and holds all {held} epochs, and "
                "--resume writes what is missing and redraws the curves")
    return (f"{os.path.basename(script)}: error: {error}{saving}; {kept}; "
            f"{resume_hint(run, epochs, script)}")


def resume_hint(run, epochs: int, script: str = __file__) -> str:
    """The command that takes the run on to `epochs` epochs (or starts it again)."""
    if not os.path.isfile(run.file("checkpoint.npz")):
        return "run the same command again to start over"
    command = [sys.executable, os.path.abspath(script), "--resume", "--out", run.path]
    with contextlib.suppress(RunFolderError):
        if run.read_checkpoint()["settings"]["epochs"] != epochs:  # more --epochs, given to
            command += ["--epochs", str(epochs)]  # --resume, and in no checkpoint yet
    return "resume with: " + shlex.join(command)


def evaluate_file(parser, args) -> int:
    """--evaluate: the test loss and accuracy of a saved model; writes nothing."""
    try:
        state = mg.load(args.evaluate, map_location="cpu")
    except (OSError, RuntimeError) as error:
        parser.error(f"argument --evaluate: {error}")
    if isinstance(state, dict) and "model" in state and "optimizer" in state:
        state = state["model"]  # a checkpoint.npz: its model after the last epoch
    defaults = options.new_run_settings(args)
    device = options.check_device(parser, defaults["device"])
    model = NeuralNet().to(device)
    try:
        model.load_state_dict(state)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as error:
        parser.error(f"argument --evaluate: {args.evaluate} is not a state dict of this model "
                     f"({type(error).__name__}: {error})")
    try:
        test_set = mg.data.MNIST(defaults["data_root"], train=False, download=True)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"mnist.py: error: {error}", file=sys.stderr)
        return 1
    loader = mg.data.DataLoader(test_set, defaults["test_batch_size"], device=device)
    loss, accuracy = evaluate(model, loader)
    print(f"{args.evaluate}: test loss {loss:.4f}, accuracy {accuracy:.2%} "
          f"({len(test_set)} images, on {device})")
    return 0


if __name__ == "__main__":
    sys.exit(main(restart=True))
