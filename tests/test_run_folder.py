"""examples/mnist.py's run folder: killed at every write, resumed, and every file agrees.

The runs here train on a tiny random MNIST (a few hundred images, four steps an epoch), so each
takes a fraction of a second; what is checked is the bookkeeping, not the learning.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from tests.conftest import interrupt_epoch

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
NAMES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
TINY = ["--device", "cpu", "--no-progress", "--batch-size", "32", "--steps-per-epoch", "4",
        "--epochs", "2"]
WRITES_PER_EPOCH = 4  # checkpoint.npz, best.npz, stats.csv, stats.json; then curves.png at the end
WRITTEN = ("checkpoint.npz", "best.npz", "stats.csv", "stats.json")  # in this order, each epoch
LOCK = "run.lock"  # the run folder's lock file (run_folder.LOCK_FILE)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """A torchvision-layout root with 256 random training and 64 test images."""
    root = tmp_path_factory.mktemp("tiny-mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for train, count in ((True, 256), (False, 64)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        for name, array in zip(NAMES[train], (images, labels), strict=True):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(
                d.to_bytes(4, "big") for d in array.shape)
            (raw / name).write_bytes(header + array.tobytes())
    return root


def run(example, args, expect=0) -> tuple[str, str]:
    """main(args) as the command line calls it; returns (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = example.main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code
    assert code == expect, out.getvalue() + err.getvalue()
    return out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def without_times(rows: list) -> list:
    return [{k: v for k, v in row.items() if not k.endswith("_time_s")} for row in rows]


def check_files_agree(out: Path, epochs: int) -> dict:
    """Every file of a finished run agrees with checkpoint.npz; returns the checkpoint."""
    assert not [name for name in os.listdir(out) if name.startswith(".")], "a partial was left"
    state = mg.load(out / "checkpoint.npz")
    history = state["history"]
    assert state["epoch"] == epochs and [row["epoch"] for row in history] == list(
        range(1, epochs + 1))
    record = json.loads((out / "stats.json").read_text())
    assert record["epochs"] == history and record["settings"] == state["settings"]
    csv_rows = (out / "stats.csv").read_text().splitlines()
    assert len(csv_rows) == epochs + 1 and csv_rows[-1].startswith(f"{epochs},")
    best = min(history, key=lambda row: row["test_loss"])
    assert state["best"]["epoch"] == best["epoch"]
    saved_best = mg.load(out / "best.npz")
    for name, value in state["best_model"].items():
        assert saved_best[name].detach().numpy().tobytes() == value.detach().numpy().tobytes(), name
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    return state


@pytest.fixture(scope="module")
def reference(example, tiny_root, tmp_path_factory) -> dict:
    """The checkpoint of an uninterrupted two-epoch run."""
    out = tmp_path_factory.mktemp("reference")
    run(example, ["--data-root", tiny_root, "--out", out, *TINY])
    return mg.load(out / "checkpoint.npz")


class Killed(BaseException):
    """Stands in for SIGKILL: nothing in the script catches it."""


def kill_at_write(monkeypatch, number: int, after: bool = False,
                  error: BaseException | None = None) -> None:
    """Make the number-th atomic rename of this process die, before it happens or just after;
    with `error`, fail with it instead (before the rename, as a full disk would)."""
    real, calls = os.replace, []

    def replace(source, target):
        calls.append(target)
        if len(calls) == number and error is not None:
            raise error
        if len(calls) == number and not after:
            raise Killed(target)
        real(source, target)
        if len(calls) == number:
            raise Killed(target)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize(
    ("number", "after"),
    [(n, False) for n in range(1, 2 * WRITES_PER_EPOCH + 2)] + [(2 * WRITES_PER_EPOCH + 1, True)],
    ids=lambda value: str(value),
)
def test_a_kill_at_any_write_then_resume_leaves_every_file_agreeing_bit_for_bit(
        example, tiny_root, tmp_path, monkeypatch, reference, number, after):
    args = ["--data-root", tiny_root, "--out", tmp_path, *TINY]
    kill_at_write(monkeypatch, number, after)
    with pytest.raises(Killed), contextlib.redirect_stdout(io.StringIO()):
        example.main([str(a) for a in args])
    monkeypatch.undo()
    if (tmp_path / "checkpoint.npz").exists():
        printed, _ = run(example, ["--resume", "--out", tmp_path, "--no-progress"])
    else:  # killed before the first commit: there is no run yet, so the same command starts it
        assert not (tmp_path / "best.npz").exists() and not (tmp_path / "stats.json").exists()
        printed, _ = run(example, args)
    state = mg.load(tmp_path / "checkpoint.npz")
    for name, value in reference["model"].items():  # the same weights as the run not killed
        assert state["model"][name].numpy().tobytes() == value.numpy().tobytes(), name
    assert without_times(state["history"]) == without_times(reference["history"])
    stats = json.loads((tmp_path / "stats.json").read_text())["epochs"]
    assert stats == state["history"], "stats.json disagrees with the checkpoint"
    check_files_agree(tmp_path, 2)
    lagging = number in (2, 3, 4, 6, 7, 8)  # killed between the checkpoint and a derived file
    assert ("repaired" in printed) == lagging, printed
    for key, value in reference["optimizer"]["state"].items():
        momentum = state["optimizer"]["state"][key]["momentum_buffer"].detach().numpy()
        assert momentum.tobytes() == value["momentum_buffer"].detach().numpy().tobytes()


def test_a_real_kill_mid_save_leaves_a_partial_that_resume_cleans(example, tiny_root, tmp_path,
                                                                  reference):
    killed = textwrap.dedent(f"""
        import os, runpy, sys
        real, calls = os.replace, []
        def replace(source, target):
            calls.append(target)
            if len(calls) == {WRITES_PER_EPOCH + 1}:  # epoch 2's checkpoint, written, not renamed
                os._exit(137)
            real(source, target)
        os.replace = replace
        sys.argv = ["mnist.py", *{[str(a) for a in ["--data-root", tiny_root, "--out", tmp_path,
                                                     *TINY]]!r}]
        sys.path.insert(0, {str(EXAMPLES)!r})
        runpy.run_path({str(EXAMPLES / "mnist.py")!r}, run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", killed], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 137, result.stderr
    assert [n for n in os.listdir(tmp_path) if n.startswith(".checkpoint.npz.partial-")]
    assert mg.load(tmp_path / "checkpoint.npz")["epoch"] == 1
    run(example, ["--resume", "--out", tmp_path, "--no-progress"])
    state = check_files_agree(tmp_path, 2)
    for name, value in reference["model"].items():
        assert state["model"][name].numpy().tobytes() == value.numpy().tobytes(), name


def test_ctrl_c_prints_the_exact_resume_command_and_it_restores_every_setting(
        example, tiny_root, tmp_path, monkeypatch):
    interrupt_epoch(example, monkeypatch, 2)
    args = ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "3", "--lr", "0.01",
            "--schedule", "none", "--momentum", "0.5", "--test-batch-size", "16"]
    _, error = run(example, args, expect=130)
    assert "interrupted in epoch 2; the best model (epoch 1" in error
    command = error.split("resume with: ")[1].strip()
    assert shlex.split(command)[-3:] == ["--resume", "--out", str(tmp_path)]
    # The printed command, run as it is: no --data-root, yet it finds the data from the run.
    # --threads 1 makes the script start itself again (os.execv), and the restarted process
    # takes the run folder's lock again: the first one's descriptor is closed by the exec.
    threads = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    environment = {name: value for name, value in os.environ.items() if name not in threads}
    result = subprocess.run(shlex.split(command) + ["--no-progress", "--threads", "1"],
                            capture_output=True, text=True, timeout=120, cwd=REPO.parent,
                            env={**environment, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming from epoch 1" in result.stdout and "(1 BLAS threads)" in result.stdout
    assert "override: --threads 1 (the run had None)" in result.stdout
    record = json.loads((tmp_path / "stats.json").read_text())
    assert [row["epoch"] for row in record["epochs"]] == [1, 2, 3]
    assert [row["lr"] for row in record["epochs"]] == [0.01, 0.01, 0.01]
    settings = record["settings"]
    assert settings["data_root"] == str(tiny_root) and settings["lr"] == 0.01
    assert settings["momentum"] == 0.5 and settings["test_batch_size"] == 16
    assert settings["threads"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [(["--lr", "0.5"], "argument --lr: the run in {out} was trained with --lr 0.05"),
     (["--batch-size", "64"], "argument --batch-size: the run in {out} was trained with "
                              "--batch-size 32"),
     (["--schedule", "step"], "was trained with --schedule cosine"),
     (["--epochs", "5"], "argument --epochs: the run in {out} was trained with --epochs 2"),
     (["--momentum", "0"], "was trained with --momentum 0.9"),
     (["--weight-decay", "0"], "was trained with --weight-decay 0.0005")],
)
def test_resume_refuses_a_changed_training_setting(example, tiny_root, tmp_path, change,
                                                   message):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1"])
    state = mg.load(tmp_path / "checkpoint.npz")
    state["settings"]["epochs"] = 2  # as if stopped after epoch 1 of 2
    mg.save(state, tmp_path / "checkpoint.npz")
    before = snapshot(tmp_path)
    _, error = run(example, ["--resume", "--out", tmp_path, *change], expect=2)
    assert message.format(out=tmp_path) in error and "Traceback" not in error
    assert snapshot(tmp_path) == before


def test_resume_may_add_epochs_without_a_schedule_and_says_so(example, tiny_root, tmp_path):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1",
                  "--schedule", "none"])
    printed, _ = run(example, ["--resume", "--out", tmp_path, "--epochs", "2", "--no-progress"])
    assert "override: --epochs 2 (the run had 1)" in printed
    state = check_files_agree(tmp_path, 2)
    assert state["settings"]["epochs"] == 2


def test_a_new_run_refuses_a_folder_that_holds_a_run(example, tiny_root, tmp_path):
    args = ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1"]
    run(example, args)
    before = snapshot(tmp_path)
    _, error = run(example, [*args, "--lr", "0.5"], expect=2)
    assert f"argument --out: {tmp_path} already holds a run (checkpoint.npz, best.npz" in error
    assert "--resume to continue it, --overwrite to replace it" in error
    assert snapshot(tmp_path) == before
    run(example, [*args, "--lr", "0.5", "--overwrite"])
    record = json.loads((tmp_path / "stats.json").read_text())
    assert record["settings"]["lr"] == 0.5 and len(record["epochs"]) == 1


def test_resume_of_a_finished_run_says_so_and_writes_nothing(example, tiny_root, tmp_path):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1"])
    before = snapshot(tmp_path)
    printed, _ = run(example, ["--resume", "--out", tmp_path])
    assert f"the run in {tmp_path} is finished (1 of 1 epochs); nothing to resume" in printed
    assert "resuming" not in printed and snapshot(tmp_path) == before


def test_resume_into_a_missing_folder_creates_nothing(example, tmp_path):
    _, error = run(example, ["--resume", "--out", tmp_path / "missing"], expect=2)
    assert "no checkpoint.npz in" in error and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("damage", ["truncated", "best-model", "not-a-run"])
def test_resume_from_a_damaged_or_wrong_checkpoint_says_which(example, tiny_root, tmp_path,
                                                              damage):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1"])
    checkpoint = tmp_path / "checkpoint.npz"
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
        message = "is not a minigrad .npz file or is damaged"
    elif damage == "best-model":  # a model's state dict where the run's checkpoint should be
        checkpoint.write_bytes((tmp_path / "best.npz").read_bytes())
        message = "is not a checkpoint written by examples/mnist.py"
    else:
        mg.save({"epoch": 1, "model": {}}, checkpoint)
        message = "is not a checkpoint written by examples/mnist.py"
    _, error = run(example, ["--resume", "--out", tmp_path], expect=2)
    assert "argument --resume: " in error and message in error, error
    assert str(checkpoint) in error and "Traceback" not in error


def test_a_diverging_run_stops_with_a_hint_and_claims_no_file(example, tiny_root, tmp_path):
    _, error = run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY,
                             "--lr", "1e6"], expect=1)
    assert re.search(r"the training loss became (nan|inf) by step [24] in epoch 1", error)
    assert "lower --lr (try --lr 1e+05)" in error
    assert "no epoch finished, so no model was saved" in error
    assert "Warning" not in error and not (tmp_path / "best.npz").exists()
    assert not (tmp_path / "checkpoint.npz").exists()


def test_evaluate_prints_the_accuracy_of_a_saved_model(example, tiny_root, tmp_path):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1"])
    before = snapshot(tmp_path)
    best = json.loads((tmp_path / "stats.json").read_text())["epochs"][0]
    for name in ("best.npz", "checkpoint.npz"):
        printed, _ = run(example, ["--evaluate", tmp_path / name, "--data-root", tiny_root,
                                   "--device", "cpu"])
        assert f"test loss {best['test_loss']:.4f}, accuracy {best['test_acc']:.2%}" in printed
    (tmp_path / "junk.npz").write_bytes(b"junk")
    _, error = run(example, ["--evaluate", tmp_path / "junk.npz"], expect=2)
    assert "argument --evaluate: load: " in error and "damaged" in error
    (tmp_path / "junk.npz").unlink()
    assert snapshot(tmp_path) == before


def test_the_main_job_needs_neither_torch_nor_torchvision_when_the_files_are_there(
        tiny_root, tmp_path):
    blocked = textwrap.dedent(f"""
        import runpy, sys
        sys.modules["torch"] = sys.modules["torchvision"] = None  # import fails, as if absent
        sys.argv = ["mnist.py", *{[str(a) for a in ["--data-root", tiny_root, "--out", tmp_path,
                                                     *TINY]]!r}]
        sys.path.insert(0, {str(EXAMPLES)!r})
        runpy.run_path({str(EXAMPLES / "mnist.py")!r}, run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert "final test accuracy" in result.stdout


def test_the_examples_extra_leaves_the_download_dependency_out():
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {extra: {re.split(r"[<>=\[; ]", spec)[0] for spec in specs}
             for extra, specs in extras.items()}
    assert names["examples"] == {"tqdm", "matplotlib"}
    assert "torchvision" in names["download"] and {"torch", "torchvision"} <= names["test"]
    readme = (REPO / "README.md").read_text()
    assert 'pip install -e ".[examples,download]" && python examples/mnist.py' in readme
    assert 'pip install -e ".[test]" && pytest' in readme


# ---- one run at a time: the run folder's lock ---------------------------------------------------

def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that holds the folder's lock as a run does (flock on run.lock, its pid
    inside) until it is killed."""
    holder = textwrap.dedent(f"""
        import fcntl, os, sys
        descriptor = os.open({str(folder / LOCK)!r}, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{{os.getpid()}}\\n".encode())
        print("locked", flush=True)
        sys.stdin.read()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


def lock_holder(folder: Path):
    """The pid in run.lock when another open file holds its lock, else None (it is free)."""
    descriptor = os.open(folder / LOCK, os.O_RDWR)  # a new open file: flock conflicts with ours
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return int(os.read(descriptor, 32))
    finally:
        os.close(descriptor)
    return None


@pytest.mark.parametrize("mode", ["new", "--overwrite", "--resume"])
def test_a_second_run_into_a_locked_folder_stops_at_once_naming_the_holder(
        example, tiny_root, tmp_path, mode):
    args = ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1"]
    if mode != "new":
        run(example, args)
        args = ["--resume", "--out", tmp_path] if mode == "--resume" else [*args, mode]
    holder = hold_lock(tmp_path)
    try:
        before = snapshot(tmp_path)
        _, error = run(example, args, expect=2)
    finally:
        holder.kill()
        holder.wait()
    assert f"argument --out: {tmp_path} is in use by process {holder.pid}" in error, error
    assert "wait for it to finish" in error and "Traceback" not in error
    assert snapshot(tmp_path) == before


def test_a_run_holds_the_lock_while_it_trains_and_lets_go_at_the_end(example, tiny_root,
                                                                      tmp_path, monkeypatch):
    train_epoch, holders = example.train_epoch, []

    def train_and_look(*args, **kwargs):
        holders.append(lock_holder(tmp_path))
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(example, "train_epoch", train_and_look)
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY])
    assert holders == [os.getpid(), os.getpid()]
    assert lock_holder(tmp_path) is None
    _, error = run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY], expect=2)
    assert "already holds a run (checkpoint.npz," in error and LOCK not in error
    assert lock_holder(tmp_path) is None  # a refused run lets go of the lock too


def test_the_lock_of_a_killed_run_blocks_nothing(example, tiny_root, tmp_path):
    holder = hold_lock(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / LOCK).read_text() == f"{holder.pid}\n"
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY])  # not --overwrite: a
    check_files_agree(tmp_path, 2)  # lock file alone is no run
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--overwrite"])
    assert (tmp_path / LOCK).exists()  # --overwrite deletes the run's files, not the lock


# ---- writes that fail: a read-only folder, a full disk -------------------------------------------

@pytest.fixture
def read_only(monkeypatch):
    """make(folder): chmod 0o555. Root writes through permissions, so as root the calls that add,
    rename or remove an entry of such a folder fail here as the kernel fails them for a user."""
    folders = []

    def denied(path) -> bool:
        if isinstance(path, int):
            return False
        folder = os.path.dirname(os.path.realpath(path))
        return folder in folders and not os.stat(folder).st_mode & stat.S_IWUSR

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real_open, real_os_open = builtins.open, os.open

    def open_(path, mode="r", *args, **kwargs):
        if any(c in mode for c in "wxa+") and denied(path) and (
                "x" in mode or not os.path.exists(path)):
            refuse(path)
        return real_open(path, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and denied(path) and not os.path.exists(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def entry_call(real):
        def call(path, *args, **kwargs):
            if denied(path) or (args and denied(args[0])):
                refuse(path)
            return real(path, *args, **kwargs)
        return call

    def make(folder: Path) -> None:
        folder.chmod(0o555)
        folders.append(os.path.realpath(folder))
        if os.geteuid() == 0 and len(folders) == 1:
            monkeypatch.setattr(builtins, "open", open_)
            monkeypatch.setattr(os, "open", os_open)
            for name in ("replace", "rename", "remove", "unlink"):
                monkeypatch.setattr(os, name, entry_call(getattr(os, name)))

    yield make
    for folder in folders:
        os.chmod(folder, 0o755)


def test_resume_into_a_read_only_folder_stops_before_training(example, tiny_root, tmp_path,
                                                             monkeypatch, read_only):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1",
                  "--schedule", "none"])
    before = snapshot(tmp_path)
    read_only(tmp_path)
    train_epoch, trained = example.train_epoch, []
    monkeypatch.setattr(example, "train_epoch",
                        lambda *args, **kwargs: trained.append(1) or train_epoch(*args, **kwargs))
    _, error = run(example, ["--resume", "--out", tmp_path, "--epochs", "2"], expect=2)
    assert f"argument --out: cannot write to {str(tmp_path)!r}: Permission denied" in error, error
    assert not trained and "Traceback" not in error and snapshot(tmp_path) == before


def resume_args(message: str, args: list) -> list:
    """The arguments of the command a failed run printed (its own when no epoch was saved)."""
    if "resume with: " not in message:
        assert "run the same command again to start over" in message
        return args
    command = shlex.split(message.split("resume with: ")[1])
    assert command[1] == str(EXAMPLES / "mnist.py")
    return [*command[2:], "--no-progress"]


@pytest.mark.parametrize("number", range(1, 2 * WRITES_PER_EPOCH + 2))
def test_a_failed_write_says_in_one_line_which_file_what_is_kept_and_how_to_resume(
        example, tiny_root, tmp_path, monkeypatch, reference, number):
    args = [str(a) for a in ["--data-root", tiny_root, "--out", tmp_path, *TINY]]
    kill_at_write(monkeypatch, number, error=OSError(errno.ENOSPC, "No space left on device"))
    _, error = run(example, args, expect=1)
    monkeypatch.undo()
    epoch, index = divmod(number - 1, WRITES_PER_EPOCH)
    name = WRITTEN[index] if epoch < 2 else "curves.png"
    assert len(error.splitlines()) == 1 and "Traceback" not in error, error
    assert error.startswith(f"mnist.py: error: cannot write {tmp_path / name} (No space left "
                            "on device)"), error
    kept = epoch if name == "checkpoint.npz" else min(epoch + 1, 2)  # checkpoint.npz's epoch
    if kept == 0:
        assert "no epoch was saved" in error and not (tmp_path / "checkpoint.npz").exists()
    elif kept < 2:
        assert f"checkpoint.npz is intact and holds epoch {kept} of 2" in error
    else:
        assert "training finished; checkpoint.npz is intact and holds all 2 epochs" in error
    if kept:
        assert mg.load(tmp_path / "checkpoint.npz")["epoch"] == kept
    run(example, resume_args(error, args))
    state = check_files_agree(tmp_path, 2)
    for key, value in reference["model"].items():  # the same weights as the run that never failed
        assert state["model"][key].numpy().tobytes() == value.numpy().tobytes(), key


def test_resume_redraws_curves_that_a_failed_write_left_showing_fewer_epochs(
        example, tiny_root, tmp_path, monkeypatch):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1",
                  "--schedule", "none"])
    one_epoch = (tmp_path / "curves.png").read_bytes()
    kill_at_write(monkeypatch, WRITES_PER_EPOCH + 1,  # epoch 2's files, then curves.png
                  error=OSError(errno.EDQUOT, "Disk quota exceeded"))
    _, error = run(example, ["--resume", "--out", tmp_path, "--epochs", "2", "--no-progress"],
                   expect=1)
    monkeypatch.undo()
    assert "training finished; checkpoint.npz is intact and holds all 2 epochs" in error
    assert (tmp_path / "curves.png").read_bytes() == one_epoch
    printed, _ = run(example, resume_args(error, []))
    assert "wrote curves.png (it showed fewer epochs)" in printed, printed
    check_files_agree(tmp_path, 2)
    assert (tmp_path / "curves.png").read_bytes() != one_epoch


def test_a_real_file_size_limit_stops_the_run_in_one_line_and_resume_finishes_it(
        example, tiny_root, tmp_path):
    run(example, ["--data-root", tiny_root, "--out", tmp_path, *TINY, "--epochs", "1",
                  "--schedule", "none"])
    limit = (tmp_path / "checkpoint.npz").stat().st_size // 2  # the next checkpoint won't fit
    limited = textwrap.dedent(f"""
        import resource, runpy, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        sys.argv = ["mnist.py", "--resume", "--out", {str(tmp_path)!r}, "--epochs", "2",
                    "--no-progress"]
        sys.path.insert(0, {str(EXAMPLES)!r})
        runpy.run_path({str(EXAMPLES / "mnist.py")!r}, run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", limited], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr
    assert len(error.splitlines()) == 1, error
    assert error.startswith(f"mnist.py: error: cannot write {tmp_path / 'checkpoint.npz'} "
                            "(File too large) while saving epoch 2; checkpoint.npz is intact "
                            "and holds epoch 1 of 2; resume with: "), error
    assert mg.load(tmp_path / "checkpoint.npz")["epoch"] == 1
    run(example, resume_args(error, []))
    check_files_agree(tmp_path, 2)
