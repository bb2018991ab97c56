"""The two convolutional programs a PyTorch user brings, on minigrad and on torch with the same
initial weights and batches (dropout off): pytorch/examples' MNIST Net with Adadelta and StepLR
(examples/mnist_cnn.py, whose Net class runs on either library), and the CNNs of "What is
torch.nn really?" (three stride-2 convolutions, avg_pool2d, then the same in nn.Sequential with
AdaptiveAvgPool2d and a view inside a Lambda module) with SGD and momentum. Then
examples/mnist_cnn.py itself: a short run learns, fills its run folder and resumes."""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def cnn_example():
    """examples/mnist_cnn.py imported as a module (mnist.py and its helpers sit beside it)."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location("mnist_cnn_example",
                                                      EXAMPLES / "mnist_cnn.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # (so that inspect finds its classes' source)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("mnist_cnn_example", None)
        sys.path.remove(str(EXAMPLES))


def on_torch(cls):
    """The same class, its source run with `torch`, `nn` and `F` being PyTorch's."""
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
    exec(inspect.getsource(cls), namespace)  # noqa: S102  (our own example's class)
    return namespace[cls.__name__]


def same_weights(ours, theirs) -> None:
    """torch's initial weights in both, in float64: Adadelta divides by the gradient's size, so
    float32's rounding in a gradient near 0 would decide the direction of a whole step."""
    theirs.double(), ours.double()
    ours.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})


def train_both(models, optimizers, loss_fns, batches, schedulers=(None, None)):
    """Losses of each library's steps over the same batches."""
    losses = ([], [])
    for side, lib in enumerate((mg, torch)):
        model, optimizer, loss_fn = models[side], optimizers[side], loss_fns[side]
        for x, y in batches:
            optimizer.zero_grad()
            loss = loss_fn(model(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            optimizer.step()
            losses[side].append(float(loss.item()))
            if schedulers[side] is not None:
                schedulers[side].step()
    return losses


def batches(count: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 1, 28, 28)), rng.integers(0, 10, size))
            for _ in range(count)]


def test_pytorch_examples_net_trains_as_on_torch(cnn_example):
    theirs = on_torch(cnn_example.Net)()
    ours = cnn_example.Net()
    same_weights(ours, theirs)
    ours.eval(), theirs.eval()  # dropout off: the same function on both
    optimizers = (mg.optim.Adadelta(ours.parameters(), lr=1.0),
                  torch.optim.Adadelta(theirs.parameters(), lr=1.0))
    schedulers = (mg.optim.lr_scheduler.StepLR(optimizers[0], step_size=1, gamma=0.7),
                  torch.optim.lr_scheduler.StepLR(optimizers[1], step_size=1, gamma=0.7))
    ours_losses, theirs_losses = train_both(
        (ours, theirs), optimizers, (mg.nn.functional.nll_loss, torch.nn.functional.nll_loss),
        batches(3, 16), schedulers)
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=1e-9)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(),
                            strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-9, err_msg=name)


class MnistCNN:  # "What is torch.nn really?": the CNN written as a Module...
    @staticmethod
    def build(lib):
        nn, F = lib.nn, lib.nn.functional

        class Mnist_CNN(nn.Module):  # noqa: N801  (the tutorial's name)
            def __init__(self):
                super().__init__()
                self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
                self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1)
                self.conv3 = nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1)

            def forward(self, xb):
                xb = xb.view(-1, 1, 28, 28)
                xb = F.relu(self.conv1(xb))
                xb = F.relu(self.conv2(xb))
                xb = F.relu(self.conv3(xb))
                xb = F.avg_pool2d(xb, 4)
                return xb.view(-1, xb.size(1))

        return Mnist_CNN()


class SequentialCNN:  # ...and as nn.Sequential, with a Lambda module doing the views
    @staticmethod
    def build(lib):
        nn = lib.nn

        class Lambda(nn.Module):
            def __init__(self, func):
                super().__init__()
                self.func = func

            def forward(self, x):
                return self.func(x)

        return nn.Sequential(
            Lambda(lambda x: x.view(-1, 1, 28, 28)),
            nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            Lambda(lambda x: x.view(x.size(0), -1)),
        )


@pytest.mark.parametrize("program", [MnistCNN, SequentialCNN], ids=["Module", "Sequential"])
def test_the_nn_tutorials_cnns_train_as_on_torch(program):
    ours, theirs = program.build(mg), program.build(torch)
    same_weights(ours, theirs)
    optimizers = (mg.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9),
                  torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9))
    flat = [(x.reshape(len(x), 784), y) for x, y in batches(3, 32, seed=1)]
    ours_losses, theirs_losses = train_both(
        (ours, theirs), optimizers,
        (mg.nn.functional.cross_entropy, torch.nn.functional.cross_entropy), flat)
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=1e-9)


def run_main(example, args, expect=0) -> str:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert example.main(args) == expect
    return stdout.getvalue()


def test_the_example_learns_writes_its_run_folder_and_resumes(cnn_example, data_root, tmp_path):
    args = ["--data-root", str(data_root), "--out", str(tmp_path), "--device", "cpu",
            "--no-progress", "--steps-per-epoch", "20", "--test-batch-size", "2000"]
    printed = run_main(cnn_example, [*args, "--epochs", "1"])
    assert "epoch  1/1" in printed and "final test accuracy" in printed
    printed = run_main(cnn_example, [*args, "--epochs", "2", "--resume", "--no-compile"])
    assert "resuming from epoch 1" in printed
    epochs = json.loads((tmp_path / "stats.json").read_text())["epochs"]
    assert [row["epoch"] for row in epochs] == [1, 2]
    assert epochs[0]["lr"] == 1.0 and epochs[1]["lr"] == pytest.approx(0.7)  # StepLR
    assert epochs[1]["test_acc"] > 0.6  # 40 steps of Adadelta already learn
    assert (tmp_path / "best.npz").exists() and (tmp_path / "curves.png").exists()
    printed = run_main(cnn_example, ["--evaluate", str(tmp_path / "best.npz"),
                                     "--data-root", str(data_root), "--device", "cpu"])
    assert "test loss" in printed and "accuracy" in printed
