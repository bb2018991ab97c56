"""The run folder of examples/mnist.py: per-epoch stats, a plot of the curves, a HiPlot page.

Every file is written atomically (a temporary file in the same folder, then a rename over the
target), so a run that is interrupted never leaves a half-written file where a good one was.
The checkpoints themselves are written by mg.save, which works the same way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile

from minigrad.serialization import atomic_write


class RunFolder:
    """A folder that must be writable before training starts; raises OSError when it is not."""

    def __init__(self, path):
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        os.makedirs(self.path, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=self.path, prefix=".write-test-")
        os.close(handle)
        os.remove(probe)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def write(self, name: str, content: str | bytes) -> None:
        """Replace `name` with `content` atomically."""
        data = content.encode() if isinstance(content, str) else content
        atomic_write(self.file(name), lambda file: file.write(data), "RunFolder.write")

    def save_stats(self, rows: list, settings: dict) -> None:
        """stats.csv (one row per epoch) and stats.json (the settings and the same rows)."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.write("stats.csv", text.getvalue())
        record = {"settings": settings, "epochs": rows}
        self.write("stats.json", json.dumps(record, indent=2) + "\n")

    def save_plot(self, rows: list) -> None:
        """curves.png: loss and accuracy per epoch, train and test."""
        import matplotlib

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
