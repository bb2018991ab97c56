"""examples/mnist.py: a short run learns and fills its run folder; bad settings fail clearly."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import minigrad as mg
from tests.conftest import interrupt_epoch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICK = ["--device", "cpu", "--no-progress", "--steps-per-epoch", "100"]


@pytest.fixture(scope="module")
def short_run(example, data_root, tmp_path_factory):
    """Three epochs of 100 steps on the real MNIST: (the run folder, what it printed)."""
    out = tmp_path_factory.mktemp("run")
    args = ["--data-root", str(data_root), "--out", str(out), "--epochs", "3", *QUICK]
    printed = run_main(example, args)
    return out, printed


def run_main(example, args, expect=0) -> str:
    """Call main(args) like the command line would; returns what it printed."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert example.main(args) == expect
    return stdout.getvalue()


def test_a_short_run_learns(short_run):
    out, printed = short_run
    epochs = json.loads((out / "stats.json").read_text())["epochs"]
    assert [row["epoch"] for row in epochs] == [1, 2, 3]
    assert epochs[0]["train_loss"] > epochs[1]["train_loss"] > epochs[2]["train_loss"]
    assert epochs[2]["test_loss"] < epochs[0]["test_loss"]
    assert epochs[2]["test_acc"] > epochs[0]["test_acc"] > 0.85
    assert epochs[0]["lr"] == 0.05 and epochs[1]["lr"] == pytest.approx(0.0375)  # cosine, 3 epochs
    assert "epoch  1/3" in printed and "epoch  3/3" in printed and "test loss" in printed
    assert "(best, saved)" in printed and "final test accuracy" in printed


def test_the_run_folder_holds_stats_plot_and_the_best_model(example, short_run, data_root):
    out, _ = short_run
    epochs = json.loads((out / "stats.json").read_text())["epochs"]
    csv_lines = (out / "stats.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,lr,train_loss,train_acc,test_loss,test_acc")
    assert len(csv_lines) == 4
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files

    model = example.NeuralNet()
    model.load_state_dict(mg.load(out / "best.npz"))
    loader = mg.data.DataLoader(mg.data.MNIST(data_root, train=False), batch_size=1000)
    loss, accuracy = example.evaluate(model, loader)
    best = min(epochs, key=lambda row: row["test_loss"])
    assert loss == pytest.approx(best["test_loss"], rel=1e-6)
    assert accuracy == best["test_acc"]


def test_ctrl_c_keeps_the_best_model_and_resume_finishes_the_run(example, data_root, tmp_path,
                                                                 monkeypatch, capsys):
    interrupt_epoch(example, monkeypatch, 2)
    args = ["--data-root", str(data_root), "--out", str(tmp_path), "--epochs", "3",
            "--device", "cpu", "--no-progress", "--steps-per-epoch", "20"]
    assert example.main(args) == 130
    message = capsys.readouterr().err
    assert "interrupted in epoch 2; the best model (epoch 1, test loss " in message
    assert f"is in {tmp_path / 'best.npz'}; resume with: " in message
    state = mg.load(tmp_path / "best.npz")
    assert sorted(state) == [f"fc{i}.{name}" for i in (1, 2, 3) for name in ("bias", "weight")]
    (first,) = json.loads((tmp_path / "stats.json").read_text())["epochs"]

    assert example.main([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "resuming from epoch 1" in printed and "epoch  2/3" in printed
    epochs = json.loads((tmp_path / "stats.json").read_text())["epochs"]
    assert epochs[0] == first and [row["epoch"] for row in epochs] == [1, 2, 3]
    assert [row["lr"] for row in epochs] == pytest.approx([0.05, 0.0375, 0.0125])  # cosine, T=3


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--epochs", "0"], "argument --epochs: must be positive, got 0"),
     (["--batch-size", "-64"], "argument --batch-size: must be positive, got -64"),
     (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
     (["--momentum", "-0.5"], "argument --momentum: must be zero or more, got -0.5"),
     (["--weight-decay", "nan"], "argument --weight-decay: must be zero or more, got nan"),
     (["--schedule", "linear"], "argument --schedule: invalid choice: 'linear'")],
)
def test_bad_values_are_refused_before_anything_runs(example, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        example.main([*args, "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("device", ["tpu", "cuda:7"])
def test_a_bad_device_names_itself_and_what_is_available(example, tmp_path, capsys, device):
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--device", device, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --device: " in error and repr(device) in error
    assert "available here: cpu" in error


def test_an_unwritable_out_folder_fails_before_training(example, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--out", str(tmp_path / "file" / "run"), "--device", "cpu"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert f"argument --out: cannot write to '{tmp_path / 'file' / 'run'}'" in captured.err
    assert "epoch" not in captured.out


def test_resume_without_a_checkpoint_says_so(example, tmp_path, capsys):
    with pytest.raises(SystemExit):
        example.main(["--out", str(tmp_path), "--resume", "--device", "cpu"])
    assert f"no checkpoint.npz in {tmp_path} to resume from" in capsys.readouterr().err


def test_missing_data_says_where_it_was_looked_for(example, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # no download possible
    args = ["--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *QUICK]
    assert example.main(args) == 1
    error = capsys.readouterr().err
    assert f"MNIST files are not in {tmp_path / 'data' / 'MNIST' / 'raw'}" in error


def test_the_script_runs_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist.py"), "--device", "gpu", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "argument --device: unknown device 'gpu'" in result.stderr


def test_help_lists_the_documented_options(example, capsys):
    with pytest.raises(SystemExit):
        example.main(["--help"])
    text = capsys.readouterr().out
    for option in ["--device", "--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay",
                   "--schedule", "--data-root", "--seed", "--out", "--no-progress", "--resume"]:
        assert option in text
    for option in ["--steps-per-epoch", "--test-batch-size", "--log-interval", "--threads",
                   "--overwrite", "--evaluate"]:
        assert option in text


def test_a_negative_seed_is_refused_by_the_parser(example, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--seed", "-1", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert "argument --seed: must be zero or more, got -1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cuda_without_cupy_gives_the_install_line(example, tmp_path, capsys):
    with pytest.raises(SystemExit):
        example.main(["--device", "cuda", "--out", str(tmp_path)])
    error = capsys.readouterr().err
    assert "CuPy is not installed: pip install -e '.[cuda13]' (or '.[cuda12]'" in error


@pytest.mark.parametrize("too_deep", ["MNIST", "MNIST/raw"])
def test_a_data_root_too_deep_is_named_with_the_root_meant(example, data_root, tmp_path, capsys,
                                                           too_deep):
    args = ["--data-root", str(data_root / too_deep), "--out", str(tmp_path), *QUICK]
    assert example.main(args) == 1
    error = capsys.readouterr().err
    assert f"so root '{data_root / too_deep}' is too deep" in error
    assert f"pass root '{data_root}'" in error
