"""The tutorial gallery (issue 12, item 7): each program in examples/pytorch_tutorials runs
unchanged on PyTorch and on minigrad, and both reach the same final loss."""

import re
import runpy
import sys
from pathlib import Path

import pytest

import minigrad

torch = pytest.importorskip("torch")

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "pytorch_tutorials"
runpy.run_path(str(GALLERY / "as_minigrad.py"))  # imports the minigrad modules it aliases


def run(program: str, on_minigrad: bool, monkeypatch, capsys, args=()) -> str:
    """Run a gallery program (as __main__) with `import torch` meaning torch or minigrad, as
    as_minigrad.py does; sys.modules is restored afterwards."""
    with monkeypatch.context() as patch:
        patch.setattr(sys, "argv", [program, *args])
        if on_minigrad:
            for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
                patch.delitem(sys.modules, name)
            for name, module in list(sys.modules.items()):
                if name == "minigrad" or name.startswith("minigrad."):
                    patch.setitem(sys.modules, "torch" + name[len("minigrad"):], module)
        try:
            runpy.run_path(str(GALLERY / program), run_name="__main__")
        finally:
            minigrad.set_default_device(None)
            minigrad.manual_seed(0)
    return capsys.readouterr().out


def final_loss(output: str) -> float:
    return float(re.search(r"final loss: (\S+)", output).group(1))


@pytest.mark.parametrize("program", ["polynomial_tensor.py", "polynomial_autograd.py",
                                     "polynomial_custom_function.py", "polynomial_nn.py",
                                     "polynomial_optim.py", "dynamic_net.py"])
def test_program_gives_torchs_final_loss(program, monkeypatch, capsys):
    theirs = final_loss(run(program, False, monkeypatch, capsys))
    mine = final_loss(run(program, True, monkeypatch, capsys))
    assert sys.modules["torch"] is torch
    assert mine == pytest.approx(theirs, rel=1e-5)


def test_mnist_mlp_runs_on_both_with_torchs_log_format(monkeypatch, capsys, data_root):
    args = ["--data-root", str(data_root), "--dry-run", "--epochs", "1", "--no-accel"]
    outputs = [run("mnist_mlp.py", lib, monkeypatch, capsys, args) for lib in (False, True)]
    train_line = r"Train Epoch: 1 \[0/60000 \(0%\)\]\tLoss: \d+\.\d{6}"
    test_line = r"Test set: Average loss: \d+\.\d{4}, Accuracy: \d+/10000 \(\d+%\)"
    for output in outputs:
        assert re.search(train_line, output) and re.search(test_line, output), output
        # One step of Adadelta from PyTorch's default init: well below chance's 2.30.
        assert 1.0 < final_loss(output) < 2.3
