"""The captured training step (minigrad/cuda/graphed.py) against the engine's eager step.

On the CPU the kernels run on the emulator and the fake CuPy's stream capture records them; any
other GPU work during the capture (a CuPy op, an allocation, a cuBLAS product) raises there, and
the fake graph replays exactly the recorded launches. So these tests check the captured step's
logic: the same weights after N steps as the eager step on the CPU, with a partial last batch,
a learning-rate schedule and a change of settings (a new capture). On a GPU (pytest -m cuda)
the same tests capture a real CUDA graph.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from tests.test_cuda_kernels import emulated_kernels, fake_gpu, kernel_device  # noqa: F401

pytestmark = pytest.mark.usefixtures("kernel_device")  # the emulator, or a GPU with -m cuda
SIZES = (20, 16, 12, 5)  # a small MLP: the emulator runs every thread of every block


def _model(dtype):
    nn = mg.nn
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(SIZES[0], SIZES[1], dtype=dtype), nn.ReLU(),
                         nn.Linear(SIZES[1], SIZES[2], dtype=dtype), nn.ReLU(),
                         nn.Linear(SIZES[2], SIZES[3], dtype=dtype))


def _data(count=43):
    rng = np.random.default_rng(0)
    return rng.standard_normal((count, SIZES[0])), rng.integers(0, SIZES[3], count)


def _train(device, dtype, graphed, epochs=2, batch=8, change_settings=False):
    """(losses, parameters as host arrays, the GraphedStep or None) after a few epochs."""
    model = _model(dtype)
    start = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    model.load_state_dict({k: mg.tensor(v) for k, v in start.items()})
    model.to(device)
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                             weight_decay=1e-3)
    scheduler = mg.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loss_fn = mg.nn.CrossEntropyLoss()
    inputs, targets = _data()
    loader = mg.data.DataLoader((inputs.astype(dtype), targets), batch, device=device)
    step = mg.cuda.graphed_step(model, loss_fn, optimizer, batch) if graphed else None
    losses = []
    for epoch in range(epochs):
        for x, y in loader:
            if step is not None:
                loss = step(x, y)
            else:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        if change_settings and epoch == 0:
            optimizer.param_groups[0]["weight_decay"] = 0.01
    return losses, [p.detach().numpy() for p in model.parameters()], step


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_graphed_step_gives_the_weights_of_the_eager_step(dtype):
    losses, params, step = _train("cuda", dtype, graphed=True)
    expected_losses, expected_params, _ = _train("cpu", dtype, graphed=False)
    # 6 batches an epoch (5 of 8, the last of 3, which runs eagerly); the first full one captures.
    assert step.replays == 2 * 5 - 1
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(losses, expected_losses, **tolerance)
    for ours, expected in zip(params, expected_params, strict=True):
        np.testing.assert_allclose(ours, expected, **tolerance)


def test_changed_settings_capture_again_and_still_match():
    losses, params, step = _train("cuda", np.float64, graphed=True, change_settings=True)
    expected_losses, expected_params, _ = _train("cpu", np.float64, graphed=False,
                                                 change_settings=True)
    assert step.replays == 2 * 5 - 2  # the first full batch of each epoch captured
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    for ours, expected in zip(params, expected_params, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-11)


def test_graphed_step_refuses_what_it_cannot_compute():
    model = _model(np.float32).to("cuda")
    loss_fn, optimizer = mg.nn.CrossEntropyLoss(), mg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="CrossEntropyLoss"):
        mg.cuda.graphed_step(model, mg.nn.CrossEntropyLoss(reduction="sum"), optimizer, 8)
    with pytest.raises(TypeError, match="Linear, ReLU"):
        mg.cuda.graphed_step(mg.nn.Sequential(mg.nn.Linear(3, 2), mg.nn.Tanh()).to("cuda"),
                             loss_fn, optimizer, 8)
    with pytest.raises(ValueError, match="exactly the layers' parameters"):
        mg.cuda.graphed_step(model, loss_fn, mg.optim.SGD(list(model.parameters())[:2], lr=0.1),
                             8)
    with pytest.raises(ValueError, match="CUDA"):
        cpu_model = _model(np.float32)
        mg.cuda.graphed_step(cpu_model, loss_fn, mg.optim.SGD(cpu_model.parameters(), lr=0.1), 8)


def test_graphed_step_refuses_at_once_when_the_fused_kernels_are_off(monkeypatch):
    """Without the fused kernels the graph's GEMMs would fail deep inside with an unclear
    message; the constructor says what to switch on instead."""
    model = _model(np.float32).to("cuda")
    monkeypatch.setattr(mg.cuda.kernels, "enabled", False)
    with pytest.raises(RuntimeError, match="mg.cuda.kernels.enabled = True"):
        mg.cuda.graphed_step(model, mg.nn.CrossEntropyLoss(),
                             mg.optim.SGD(model.parameters(), lr=0.1), 8)


def _captured(momentum=0.9):
    """(step, optimizer, x, y): a GraphedStep after two steps (the second one a replay)."""
    model = _model(np.float32).to("cuda")
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    step = mg.cuda.graphed_step(model, mg.nn.CrossEntropyLoss(), optimizer, 8)
    inputs, targets = _data(8)
    x = mg.tensor(inputs.astype(np.float32), device="cuda")
    y = mg.tensor(targets, device="cuda")
    step(x, y)
    step(x, y)
    assert step.replays == 1
    return step, optimizer, x, y


def test_a_cleared_optimizer_state_makes_the_next_step_capture_again():
    """The momentum buffers the graph baked in are gone (state loaded from before any step):
    the next step runs eagerly, makes new buffers and captures again, never replays the old."""
    step, optimizer, x, y = _captured()
    optimizer.state.clear()
    assert not step.mlp.captured()
    step(x, y)
    assert step.replays == 1 and step.mlp.captured()  # an eager step, then a new capture
    step(x, y)
    assert step.replays == 2


def test_a_capture_with_the_kernels_switched_off_later_says_so(monkeypatch):
    step, optimizer, x, y = _captured()
    optimizer.param_groups[0]["momentum"] = 0.5  # a change of settings: the next step captures
    monkeypatch.setattr(mg.cuda.kernels, "enabled", False)
    with pytest.raises(RuntimeError, match="switched off; switch them on again"):
        step(x, y)


class TanhNet(mg.nn.Module):
    """Not the MLP the kernels compute: its forward uses tanh."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = mg.nn.Linear(SIZES[0], 6), mg.nn.Linear(6, SIZES[3])

    def forward(self, x):
        return self.fc2(self.fc1(x).tanh())


def test_graphed_step_checks_the_model_forward_once():
    model = TanhNet().to("cuda")
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="layers="):
        mg.cuda.graphed_step(model, mg.nn.CrossEntropyLoss(), optimizer, 4)
    step = mg.cuda.graphed_step(model, mg.nn.CrossEntropyLoss(), optimizer, 4,
                                layers=[model.fc1, model.fc2])
    inputs, targets = _data(4)
    x = mg.tensor(inputs.astype(np.float32), device="cuda")
    with pytest.raises(ValueError, match="differs from Linear layers"):
        step(x, mg.tensor(targets, device="cuda"))


@pytest.mark.parametrize("sequential", [True, False])
def test_a_compiled_mlp_step_becomes_one_cuda_graph_with_the_eager_results(sequential):
    """mg.compile's capture pass: the tutorial's kind of step (here a Sequential, which uses
    LinearReLU on a GPU, and a network written with F.relu) replays as one graph launch, and
    trains to the eager CPU step's weights; each .grad is the graph's gradient."""
    F = mg.nn.functional

    class Net(mg.nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.layers = _model(dtype)

        def forward(self, x):
            fc1, _, fc2, _, fc3 = self.layers
            return fc3(F.relu(fc2(F.relu(fc1(x)))))

    def train(device):
        model = (_model(np.float32) if sequential else Net(np.float32)).to(device)
        optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        scheduler = mg.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        inputs, targets = _data(40)
        loader = mg.data.DataLoader((inputs.astype(np.float32), targets), 8, device=device)

        def train_step(x, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss

        step = mg.compile(train_step)
        losses = []
        for _ in range(2):
            for x, y in loader:
                losses.append(step(x, y).item())
            scheduler.step()
        grads = [p.grad.numpy() for p in model.parameters()]
        return losses, [p.detach().numpy() for p in model.parameters()], grads, step

    losses, params, grads, step = train("cuda")
    expected_losses, expected_params, expected_grads, eager = train("cpu")
    (captured,) = step.program.instructions
    assert captured.name == "captured_mlp_step" and "CUDA graph" in str(step.program)
    # The first call traces, and the program makes it through the traced instructions (which
    # make the momentum buffers) before capturing; every later call is one graph launch.
    assert captured.launches == 2 * 5 - 1
    tolerance = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses, expected_losses, **tolerance)
    for ours, expected in zip(params + grads, expected_params + expected_grads, strict=True):
        np.testing.assert_allclose(ours, expected, **tolerance)


def test_the_main_jobs_compiled_step_is_captured_on_a_gpu(example):
    """examples/mnist.py's own step (NeuralNet with F.relu, CrossEntropyLoss, SGD with Nesterov
    momentum and weight decay, zero_grad after the loss, returning the loss and the logits)
    matches the capture pass, and trains as its eager step does on the CPU."""
    inputs, targets = _data(32)
    results = []
    for device in ("cuda", "cpu"):
        mg.manual_seed(0)
        model = example.NeuralNet(SIZES[0], SIZES[1], SIZES[2], SIZES[3]).to(device)
        optimizer = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                 weight_decay=5e-4)
        step = example.make_train_step(model, mg.nn.CrossEntropyLoss(), optimizer,
                                       compiled=device == "cuda")
        loader = mg.data.DataLoader((inputs.astype(np.float32), targets), 8, device=device)
        outputs = [step(x, y) for _ in range(2) for x, y in loader]
        results.append(([loss.item() for loss, _ in outputs],
                        [logits.detach().numpy() for _, logits in outputs],
                        [p.detach().numpy() for p in model.parameters()]))
        if device == "cuda":
            (captured,) = step.program.instructions
            assert captured.name == "captured_mlp_step" and captured.launches == 2 * 4 - 1
    (losses, logits, params), (expected_losses, expected_logits, expected_params) = results
    tolerance = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(losses, expected_losses, **tolerance)
    for ours, expected in zip(logits + params, expected_logits + expected_params, strict=True):
        np.testing.assert_allclose(ours, expected, **tolerance)
