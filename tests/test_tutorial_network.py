"""The seed tutorial's network trained on real MNIST by minigrad and by PyTorch, step by step."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn

STEPS, BATCH_SIZE = 200, 64
LR, MOMENTUM = 0.01, 0.9
TOLERANCE = 1e-4


class NeuralNet(nn.Module):
    def __init__(self, input_size=784, hidden_size1=128, hidden_size2=64, num_classes=10):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size1, hidden_size2)
        self.fc3 = nn.Linear(hidden_size2, num_classes)

    def forward(self, x):
        out = self.relu(self.fc1(x))
        out = self.relu(self.fc2(out))
        return self.fc3(out)


class TorchNeuralNet(torch.nn.Module):
    def __init__(self, input_size=784, hidden_size1=128, hidden_size2=64, num_classes=10):
        super().__init__()
        self.fc1 = torch.nn.Linear(input_size, hidden_size1)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(hidden_size1, hidden_size2)
        self.fc3 = torch.nn.Linear(hidden_size2, num_classes)

    def forward(self, x):
        out = self.relu(self.fc1(x))
        out = self.relu(self.fc2(out))
        return self.fc3(out)


@pytest.fixture(scope="module")
def mnist_batches(data_root):
    """STEPS shuffled batches of the real MNIST training set (a seeded draw, no repeats)."""
    images, labels = mg.data.MNIST(data_root, train=True, download=False).arrays()
    assert images.shape == (60000, 784) and images.dtype == np.float32
    order = np.random.default_rng(0).permutation(len(labels))[: STEPS * BATCH_SIZE]
    return images[order].reshape(STEPS, BATCH_SIZE, 784), labels[order].reshape(STEPS, BATCH_SIZE)


def relative_error(actual, expected) -> float:
    expected = np.asarray(expected, np.float64)
    error = np.abs(np.asarray(actual, np.float64) - expected).max()
    return float(error / max(1.0, float(np.abs(expected).max())))


def numpy_openblas_threads():
    """(get, set) for the thread count of NumPy's bundled OpenBLAS, or None where not found."""
    folder = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(folder.glob("libscipy_openblas*.so")):
        library = ctypes.CDLL(str(path))  # the copy NumPy has already loaded
        for suffix in ("64_", "_64_", ""):
            get = getattr(library, f"scipy_openblas_get_num_threads{suffix}", None)
            set_ = getattr(library, f"scipy_openblas_set_num_threads{suffix}", None)
            if get and set_:
                return get, set_
    return None


@pytest.fixture
def single_threaded():
    """One thread for PyTorch and for NumPy's BLAS while the test runs.

    On a few shared, busy cores, idle BLAS workers spin and slow a 64x784 matmul ten times.
    """
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    openblas = numpy_openblas_threads()
    blas_threads = openblas[0]() if openblas else None
    if openblas:
        openblas[1](1)
    yield
    torch.set_num_threads(torch_threads)
    if openblas:
        openblas[1](blas_threads)


def test_tutorial_network_trains_like_pytorch(mnist_batches, device, single_threaded):
    images, labels = mnist_batches
    mg.manual_seed(0)
    model = NeuralNet().to(device)
    theirs = TorchNeuralNet()
    theirs.load_state_dict(
        {k: torch.from_numpy(v.detach().numpy()) for k, v in model.state_dict().items()}
    )

    criterion = nn.CrossEntropyLoss()
    optimizer = mg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    inputs, targets = mg.tensor(images, device=device), mg.tensor(labels, device=device)
    losses = []
    for step in range(STEPS):
        loss = criterion(model(inputs[step]), targets[step])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    torch_criterion = torch.nn.CrossEntropyLoss()
    torch_optimizer = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM)
    torch_losses = []
    for x, y in zip(torch.from_numpy(images), torch.from_numpy(labels), strict=True):
        torch_loss = torch_criterion(theirs(x), y)
        torch_optimizer.zero_grad()
        torch_loss.backward()
        torch_optimizer.step()
        torch_losses.append(torch_loss.item())

    errors = np.abs(np.array(losses) - np.array(torch_losses))
    worst = int(errors.argmax())
    assert errors[worst] <= TOLERANCE, (
        f"step {worst}: loss {losses[worst]:.7f} != PyTorch's {torch_losses[worst]:.7f}"
    )
    assert losses[-1] < 0.6 * losses[0], "the network did not learn"
    torch_state = theirs.state_dict()
    for name, value in model.state_dict().items():
        error = relative_error(value.detach().numpy(), torch_state[name].detach().numpy())
        assert error <= TOLERANCE, f"{name}: final weights differ by {error:.3g}"
