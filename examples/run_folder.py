"""The run folder of examples/mnist.py, and what it promises after a crash.

checkpoint.npz is the run: model, optimiser, schedule, random generator, the settings, every
epoch's stats and the best model so far, all in one file written atomically (mg.save). It is
written first, each epoch; best.npz, stats.csv and stats.json are then derived from it, so they are
never ahead of it, and `repair` rewrites whichever of them lag behind (a kill between two writes)
when the run is resumed. After a kill at any moment, the checkpoint is the previous epoch's or the
new one, never half of one; after --resume, every file agrees with it.

One run at a time: a run holds the folder's lock (run.lock) from before it looks at the folder
until it ends, and a second run into the folder stops at once. A write that fails (a full disk, a
quota, a read-only folder) raises RunFolderWriteError naming the file; the files written before it
are whole, so the run can be resumed once the cause is gone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os

import minigrad as mg
from minigrad.serialization import atomic_write

try:
    import fcntl  # POSIX file locks; Windows has none, and runs there go unlocked
except ImportError:  # pragma: no cover
    fcntl = None

KIND, VERSION = "examples/mnist.py checkpoint", 1
DERIVED = ("best.npz", "stats.csv", "stats.json")
RUN_FILES = ("checkpoint.npz", *DERIVED, "curves.png", "hiplot.html")
LOCK_FILE = "run.lock"  # not a run file: it stays, and alone it is no run
CHECKPOINT_KEYS = (
    "epoch",
    "settings",
    "history",
    "best",
    "best_model",
    "model",
    "optimizer",
    "scheduler",
    "rng",
)


class RunFolderError(Exception):
    """A run folder (or its checkpoint) that cannot be used as asked; the message says why."""


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder's lock: a run is going on in it."""


class RunFolderWriteError(RunFolderError):
    """Writing one of the run's files failed; `path` is that file, `error` the OSError."""

    def __init__(self, path: str, error: OSError):
        self.path, self.error = path, error
        self.reason = os.strerror(error.errno) if error.errno else str(error)
        super().__init__(f"cannot write {path} ({self.reason})")


class RunFolder:
    """A folder of run files; `create` makes it and checks that it is writable (OSError if not)."""

    def __init__(self, path, create: bool = True):
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        self._lock = None  # the descriptor that holds the lock, while this process holds it
        if create:
            os.makedirs(self.path, exist_ok=True)
            probe = self.file(f".write-test-{os.getpid()}")
            with open(probe, "wb"):
                pass
            os.remove(probe)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def existing_run_files(self) -> list:
        """The names of this folder's run files that exist (a run is there when any does)."""
        return [name for name in RUN_FILES if os.path.lexists(self.file(name))]

    def remove_run(self) -> None:
        """Delete the run files (for --overwrite), the checkpoint last; the lock file stays."""
        for name in reversed(RUN_FILES):
            if os.path.lexists(self.file(name)):
                os.remove(self.file(name))

    # ---- one run at a time --------------------------------------------------------------------

    def lock(self) -> None:
        """Hold the folder's lock until unlock() or this process ends; RunFolderBusy if taken.

        It is an flock on run.lock, which holds the holder's pid. The kernel lets go of it when
        the process ends, however it ends, so a killed run blocks nothing. The file is never
        deleted: a run that opened it just before would lock a name that no longer exists, and the
        next run, creating it anew, would lock another file beside it. The descriptor is closed on
        exec, so the script's restart for --threads (os.execv) lets go, and takes it again.
        """
        if fcntl is None:
            return
        descriptor = os.open(self.file(LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip()
            os.close(descriptor)
            raise RunFolderBusy(
                f"{self.path} is in use by process {holder or '(pid not written yet)'}, a run "
                f"that holds its lock ({self.file(LOCK_FILE)})"
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._lock = descriptor

    def unlock(self) -> None:
        """Let go of the lock (emptying run.lock first, so that it names no finished run)."""
        if self._lock is not None:
            descriptor, self._lock = self._lock, None
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, 0)
            os.close(descriptor)

    # ---- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, name: str):
        """Turn an OSError while `name` is written into a RunFolderWriteError naming the file."""
        try:
            yield
        except OSError as error:
            raise RunFolderWriteError(self.file(name), error) from error

    def write(self, name: str, content: str | bytes) -> None:
        """Replace `name` with `content` atomically."""
        data = content.encode() if isinstance(content, str) else content
        with self.writing(name):
            atomic_write(self.file(name), lambda file: file.write(data), "RunFolder.write")

    def save(self, name: str, obj) -> None:
        """mg.save(obj) to `name`, atomically."""
        with self.writing(name):
            mg.save(obj, self.file(name))

    # ---- the checkpoint, and the files derived from it --------------------------------------

    def read_checkpoint(self, device=None) -> dict:
        """The checkpoint's contents, checked to be one that examples/mnist.py wrote."""
        path = self.file("checkpoint.npz")
        try:
            state = mg.load(path, map_location=device or "cpu")
        except (OSError, RuntimeError) as error:
            raise RunFolderError(f"cannot read {path}: {error}") from None
        if not isinstance(state, dict) or state.get("kind") != KIND:
            raise RunFolderError(
                f"{path} is not a checkpoint written by examples/mnist.py "
                "(its 'kind' entry is missing or different)"
            )
        if state.get("version") != VERSION:
            raise RunFolderError(
                f"{path} is a version {state.get('version')} checkpoint; this "
                f"examples/mnist.py reads version {VERSION}"
            )
        missing = [key for key in CHECKPOINT_KEYS if key not in state]
        if missing:
            raise RunFolderError(f"{path} is damaged: it has no {', '.join(missing)}")
        return state

    def commit(self, state: dict) -> None:
        """Write one epoch: the checkpoint first (the commit point), then what derives from it."""
        self.save("checkpoint.npz", {"kind": KIND, "version": VERSION, **state})
        self.save("best.npz", state["best_model"])
        self.save_stats(state["history"], state["settings"])

    def repair(self, state: dict) -> list:
        """Rewrite the derived files that disagree with the checkpoint; returns their names."""
        stale = []
        if not _holds(self.file("best.npz"), state["best_model"]):
            self.save("best.npz", state["best_model"])
            stale.append("best.npz")
        for name, text in stats_texts(state["history"], state["settings"]).items():
            if _read_text(self.file(name)) != text:
                self.write(name, text)
                stale.append(name)
        return stale

    def save_stats(self, rows: list, settings: dict) -> None:
        """stats.csv (one row per epoch) and stats.json (the settings and the same rows)."""
        for name, text in stats_texts(rows, settings).items():
            self.write(name, text)

    # ---- pictures of the run -----------------------------------------------------------------

    def save_plot(self, rows: list) -> str:
        """curves.png: loss and accuracy per epoch, train and test; returns what happened."""
        try:
            import matplotlib
        except ImportError:
            return "matplotlib is not installed (pip install -e '.[examples]'), no curves.png"
        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        epochs = [row["epoch"] for row in rows]
        figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
        for split, marker in (("train", "o"), ("test", "s")):  # train: means during the epoch
            losses = [row[f"{split}_loss"] for row in rows]
            accuracies = [100 * row[f"{split}_acc"] for row in rows]
            loss_axes.plot(epochs, losses, marker=marker, label=split)
            accuracy_axes.plot(epochs, accuracies, marker=marker, label=split)
        loss_axes.set(title="Loss", xlabel="epoch", ylabel="cross-entropy")
        accuracy_axes.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
        for axes in (loss_axes, accuracy_axes):
            axes.grid(alpha=0.3)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.legend()
        figure.tight_layout()
        image = io.BytesIO()
        figure.savefig(image, format="png", dpi=100)
        plt.close(figure)
        self.write("curves.png", image.getvalue())
        return "wrote curves.png"

    def save_hiplot(self, rows: list, settings: dict) -> str:
        """hiplot.html, a parallel-coordinates view of the epochs; returns what happened.

        HiPlot is optional (pip install hiplot): without it, or when it fails, nothing is written.
        """
        try:
            import hiplot
        except ImportError:
            return "hiplot is not installed (pip install hiplot), no hiplot.html"
        try:
            experiment = hiplot.Experiment.from_iterable([{**settings, **row} for row in rows])
            self.write("hiplot.html", experiment.to_html())
        except Exception as error:  # HiPlot is not ours to fix; the run goes on without it
            return f"hiplot failed ({type(error).__name__}: {error}), no hiplot.html"
        return "wrote hiplot.html"


def stats_texts(rows: list, settings: dict) -> dict:
    """The contents of stats.csv and stats.json for these epochs and settings."""
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    record = {"settings": settings, "epochs": rows}
    return {"stats.csv": text.getvalue(), "stats.json": json.dumps(record, indent=2) + "\n"}


def _read_text(path: str):
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def _holds(path: str, state: dict) -> bool:
    """Whether the .npz at path holds exactly this state dict."""
    try:
        saved = mg.load(path, map_location="cpu")
    except (OSError, RuntimeError):
        return False
    return list(saved) == list(state) and all(
        saved[name].dtype == value.dtype
        and saved[name].shape == value.shape
        and saved[name].detach().numpy().tobytes()
        == value.detach().numpy().tobytes()  # bit for bit, NaN too
        for name, value in state.items()
    )
