"""mg.compile: a replayed program gives what the eager function gives, guards retrace, limits raise.

Each test runs the same steps twice from the same start, eagerly and compiled, and compares the
losses, the parameters and their gradients (to float32 rounding: a compiled program may add in
another order).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.compiler import CompileCheckError, TraceError

REPO = Path(__file__).resolve().parent.parent


class NeuralNet(nn.Module):
    """The tutorial's network (not a Sequential): 784 -> 128 -> ReLU -> 64 -> ReLU -> 10."""

    def __init__(self, sizes=(784, 128, 64, 10)):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.fc3 = nn.Linear(sizes[2], sizes[3])

    def forward(self, x):
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


def training(model_fn, optimizer_fn, seed=0, scheduler_fn=None):
    """A model, its optimiser (and scheduler) and the usual step, built from a seed."""
    mg.manual_seed(seed)
    model = model_fn()
    optimizer = optimizer_fn(model.parameters())
    scheduler = scheduler_fn(optimizer) if scheduler_fn else None
    criterion = nn.CrossEntropyLoss()

    def train_step(x, y):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, scheduler, train_step


def batches(count, batch=16, features=784, classes=10, seed=1):
    rng = np.random.default_rng(seed)
    return [(mg.tensor(rng.standard_normal((batch, features)).astype(np.float32)),
             mg.tensor(rng.integers(0, classes, batch))) for _ in range(count)]


def assert_same_training(model_fn, optimizer_fn, scheduler_fn=None, steps=6, **batch_args):
    """Train eagerly and compiled from the same start; every loss and parameter agrees."""
    data = batches(steps, **batch_args)
    runs = []
    for compiled in (False, True):
        model, _, scheduler, step = training(model_fn, optimizer_fn, scheduler_fn=scheduler_fn)
        run = mg.compile(step) if compiled else step
        losses = []
        for x, y in data:
            losses.append(run(x, y).item())
            if scheduler is not None:
                scheduler.step()
        runs.append((losses, model))
    (eager_losses, eager_model), (compiled_losses, compiled_model) = runs
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=1e-5)
    for (name, a), (_, b) in zip(eager_model.named_parameters(),
                                 compiled_model.named_parameters(), strict=True):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=f"{name}.grad")
    return run


def test_the_tutorial_network_trains_the_same_compiled():
    step = assert_same_training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05, momentum=0.9))
    assert step.traces == 1  # one trace, five replays


def test_a_sequential_model_with_adam_and_a_scheduler_trains_the_same_compiled():
    def model():
        return nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 5))

    step = assert_same_training(
        model, lambda p: mg.optim.Adam(p, lr=0.01),
        scheduler_fn=lambda o: mg.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
        features=20, classes=5)
    assert step.traces == 1  # the learning rate is read live, not baked in


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SeedNet(nn.Module):
    """The seed tutorial's network of custom Functions: Linear_Layer.apply, three times."""

    def __init__(self):
        super().__init__()
        linear_layer = load_example("custom_linear").Linear_Layer
        self.apply_layer = linear_layer.apply
        self.w1 = nn.Parameter(mg.randn(784, 32) * 0.05)
        self.b1 = nn.Parameter(mg.zeros(32))
        self.w2 = nn.Parameter(mg.randn(32, 10) * 0.1)
        self.b2 = nn.Parameter(mg.zeros(10))

    def forward(self, x):
        return self.apply_layer(self.apply_layer(x, self.w1, self.b1).relu(), self.w2, self.b2)


def test_the_seed_tutorials_function_network_trains_the_same_compiled():
    assert_same_training(SeedNet, lambda p: mg.optim.SGD(p, lr=0.1))


def test_a_compiled_model_evaluates_like_the_model():
    mg.manual_seed(0)
    model = NeuralNet().eval()
    evaluate = mg.compile(model)
    for x, _ in batches(3):
        with mg.no_grad():
            np.testing.assert_allclose(evaluate(x).numpy(), model(x).numpy(), rtol=1e-5,
                                       atol=1e-6)  # another layout: another rounding
    assert evaluate.traces == 1


def test_check_mode_passes_a_faithful_program_and_catches_frozen_control_flow():
    _, _, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05, momentum=0.9))
    checked = mg.compile(step, check=True)
    for x, y in batches(4):
        checked(x, y)  # the eager function and the program agree

    mg.manual_seed(0)
    weight = mg.randn(4, 3, requires_grad=True)

    def branchy(x):
        if x.sum().item() > 0:  # a Python branch on a value: frozen at trace time
            return (x @ weight).sum()
        return (x @ weight).sum() * -1.0

    checked = mg.compile(branchy, check=True)
    checked(mg.ones(2, 4))
    with pytest.raises(CompileCheckError, match="differ"):
        checked(-mg.ones(2, 4))
    unchecked = mg.compile(branchy)
    unchecked(mg.ones(2, 4))
    assert unchecked(-mg.ones(2, 4)).item() != branchy(-mg.ones(2, 4)).item()  # why check exists


def test_a_new_signature_traces_again():
    _, _, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05))
    compiled = mg.compile(step)
    (x, y), (x2, y2) = batches(2)
    compiled(x, y)
    compiled(x2, y2)
    assert compiled.traces == 1
    compiled(x[:8], y[:8])  # another batch size: another program
    assert compiled.traces == 2
    compiled(x.double().float(), y)  # same signature as the first: replayed
    assert compiled.traces == 2 and len(compiled.programs) == 2
    compiled(x.requires_grad_(), y)  # requires_grad is part of the signature
    assert compiled.traces == 3


def test_train_and_eval_flags_and_grad_mode_are_part_of_the_signature():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.5), nn.Linear(6, 2))
    run = mg.compile(lambda x: model(x))
    x = mg.randn(3, 6)
    run(x)
    model.eval()
    np.testing.assert_allclose(run(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)
    assert run.traces == 2
    with mg.no_grad():
        run(x)
    assert run.traces == 3


def test_dropout_draws_new_masks_on_every_replay():
    mg.manual_seed(0)
    dropout = nn.Dropout(0.5)
    run = mg.compile(dropout)
    x = mg.ones(1000)
    first, second = run(x), run(x)
    assert not np.array_equal(first.numpy(), second.numpy())


def test_a_replaced_or_reshaped_parameter_makes_the_program_trace_again():
    mg.manual_seed(0)
    model = nn.Linear(4, 3)
    run = mg.compile(lambda x: model(x).sum())
    x = mg.randn(2, 4)
    run(x)
    model.weight = nn.Parameter(mg.randn(3, 4))  # a new Parameter object: a new program
    assert run(x).item() == pytest.approx(model(x).sum().item(), rel=1e-6)
    assert run.traces == 2
    model.weight.data = mg.randn(3, 4, dtype="float64")  # the same object, another dtype
    with pytest.raises(RuntimeError, match="dtype"):
        run(x)  # traced again, and the eager run itself refuses float32 against float64
    assert run.traces == 2


def test_freezing_a_parameter_makes_the_program_trace_again():
    model, _, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05))
    compiled = mg.compile(step)
    (x, y), (x2, y2) = batches(2)
    compiled(x, y)
    model.fc1.weight.requires_grad_(False)
    before = model.fc1.weight.detach().numpy().copy()
    compiled(x2, y2)
    assert compiled.traces == 2 and model.fc1.weight.grad is None
    np.testing.assert_array_equal(model.fc1.weight.detach().numpy(), before)


def test_what_a_trace_cannot_record_is_refused_with_the_reason():
    w = mg.randn(3, requires_grad=True)

    def second_order(x):
        (g,) = mg.autograd.grad((x * w).pow(2).sum(), w, create_graph=True)
        return g.sum()

    with pytest.raises(TraceError, match="create_graph"):
        mg.compile(second_order)(mg.randn(3))

    def returns_a_float(x):
        return (x * w).sum().item()

    with pytest.raises(TraceError, match="returned a float"):
        mg.compile(returns_a_float)(mg.randn(3))

    def hooked(x):
        y = x * w
        y.register_hook(lambda g: g * 2)
        y.sum().backward()
        return y

    with pytest.raises(TraceError, match="hook"):
        mg.compile(hooked)(mg.randn(3))

    optimizer = mg.optim.SGD([w], lr=0.1)

    def with_closure(x):
        return optimizer.step(lambda: (x * w).sum())

    with pytest.raises(TraceError, match="closure"):
        mg.compile(with_closure)(mg.randn(3))

    def writes_behind_the_tracer(x):
        loss = (x * w).sum()
        loss.backward()
        w.array -= 0.1 * w.grad.array  # not an op, not a recorded call
        w._bump_version()
        return loss

    with pytest.raises(TraceError, match="changed in place"):
        mg.compile(writes_behind_the_tracer)(mg.randn(3))


def test_the_program_prints_one_line_per_instruction():
    _, _, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05))
    compiled = mg.compile(step)
    compiled(*batches(1)[0])
    text = str(compiled.program)
    assert text.startswith("program train_step: 2 inputs")
    for line in ("fc1.weight", "= linear(%0", "relu(%4)  (in place)", "call SGD.zero_grad()",
                 "call SGD.step()", "fc1.weight.grad += %", "return %"):
        assert line in text, line
    traced = compiled.program.before_passes  # as traced: the ops and their Backwards
    assert "= Linear(%0" in traced and "LinearBackward" in traced and "linear(" not in traced
    assert compiled.program.passes_run == ["dead_code", "capture", "lower"]


def test_a_compiled_step_returns_results_that_later_replays_do_not_overwrite():
    _, _, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05))
    compiled = mg.compile(step)
    data = batches(3)
    losses = [compiled(x, y) for x, y in data]
    values = [loss.item() for loss in losses]
    assert len(set(values)) == 3
    assert [loss.item() for loss in losses] == values


def test_every_result_comes_from_the_program_whichever_call_traced_it():
    """A fresh compile that starts at call 4 (as a resumed run does) gives calls 4 to 6 bit for
    bit: the trace's own eager run is undone and the program makes the call."""
    data = batches(6)
    model, optimizer, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05,
                                                                           momentum=0.9))
    compiled = mg.compile(step)
    losses = []
    for number, (x, y) in enumerate(data):
        if number == 3:  # what a checkpoint keeps
            snapshot = [p.detach().numpy().copy() for p in model.parameters()]
            buffers = [optimizer.state[p]["momentum_buffer"].copy() for p in model.parameters()]
        losses.append(compiled(x, y).item())

    model2, optimizer2, _, step2 = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05,
                                                                              momentum=0.9))
    with mg.no_grad():
        for p, value in zip(model2.parameters(), snapshot, strict=True):
            p.copy_(mg.tensor(value))
    for p, buffer in zip(model2.parameters(), buffers, strict=True):
        optimizer2.state[p] = {"momentum_buffer": buffer.copy()}
    resumed = mg.compile(step2)
    again = [resumed(x, y).item() for x, y in data[3:]]
    assert again == losses[3:]
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert a.detach().numpy().tobytes() == b.detach().numpy().tobytes()


def test_in_place_writes_masks_gradient_reads_and_accuracy_replay_as_eager():
    """What a training step often holds besides forward and backward: in-place ops on
    activations and views, a mask computed from a tensor, gradient clipping (it reads .grad),
    a hand-written SGD step through .data, an accuracy from argmax and ==. check=True compares
    each replay with the eager function; it raises on any difference."""
    mg.manual_seed(0)
    layer = nn.Linear(4, 3)
    optimizer = mg.optim.SGD(layer.parameters(), lr=0.1)

    def with_writes(x, y):
        optimizer.zero_grad()
        h = layer(x)
        h[0] = h[0] * 2  # an in-place op on a view: recorded on its base
        h.mul_(3)
        h[h < 0] = 0.0  # the mask comes from h: computed again on every replay
        loss = nn.functional.cross_entropy(h, y)
        loss.backward()
        nn.utils.clip_grad_norm_(layer.parameters(), 0.5)  # reads and scales each .grad
        optimizer.step()
        accuracy = (h.argmax(dim=1) == y).float().mean()
        return loss, accuracy

    def by_hand(x, y):
        loss = layer(x).pow(2).mean()
        loss.backward()
        with mg.no_grad():
            for p in layer.parameters():
                p.data.add_(p.grad, alpha=-0.1)  # the seed tutorial's step
                p.grad.zero_()
        return loss

    for function in (with_writes, by_hand):
        checked = mg.compile(function, check=True)
        for x, y in batches(5, batch=6, features=4, classes=3):
            checked(x, y)
        assert checked.traces == 1


def test_reading_gradients_left_by_an_earlier_call():
    mg.manual_seed(0)
    layer = nn.Linear(4, 3)
    squared_norm = mg.compile(lambda: sum((p.grad * p.grad).sum() for p in layer.parameters()))
    for x, _ in batches(3, batch=5, features=4):
        layer.zero_grad()
        layer(x).sum().backward()
        expected = sum((p.grad * p.grad).sum().item() for p in layer.parameters())
        assert squared_norm().item() == pytest.approx(expected, rel=1e-6)
    assert squared_norm.traces == 1


def test_max_autotune_keeps_linear_weights_transposed_and_trains_the_same():
    model, _, _, step = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05, momentum=0.9))
    _, _, _, reference = training(NeuralNet, lambda p: mg.optim.SGD(p, lr=0.05, momentum=0.9))
    fast, plain = mg.compile(step, mode="max-autotune"), mg.compile(reference)
    for x, y in batches(4):
        np.testing.assert_allclose(fast(x, y).item(), plain(x, y).item(), rtol=1e-5)
    assert fast.program.passes_run[-1] == "relayout_weights"
    weight = model.fc1.weight
    assert weight.shape == (128, 784) and not weight.is_contiguous()
    with pytest.raises(ValueError, match="mode"):
        mg.compile(step, mode="fastest")


def test_what_the_cold_review_found_now_matches_eager_or_raises():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3))
    data = batches(4, batch=5, features=4, classes=3)

    def replaced(x, y):  # `.data = ...`: a replay could not repeat it
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        with mg.no_grad():
            for p in model.parameters():
                p.data = p.data - 0.1 * p.grad
        return loss

    with pytest.raises(TraceError, match="replaced during the call"):
        mg.compile(replaced)(*data[0])

    def written(x, y):  # the same update written into the parameters: recorded
        model.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        with mg.no_grad():
            for p in model.parameters():
                p.sub_(0.1 * p.grad)
        return loss

    checked = mg.compile(written, check=True)
    for x, y in data:
        checked(x, y)

    model.eval()  # (no dropout below)
    squeeze = mg.compile(lambda x: model(x)[:, :2].t())  # a view of a kernel's buffer
    outputs = [squeeze(x) for x, _ in data]
    for (x, _), out in zip(data, outputs, strict=True):
        np.testing.assert_allclose(out.numpy(), model(x)[:, :2].t().detach().numpy(), rtol=1e-5)

    def attack(x, y):  # FGSM: the gradient of the input, a leaf made in the call
        x = x.detach().requires_grad_()
        nn.functional.cross_entropy(model(x), y).backward()
        return x.grad.sign()

    fgsm = mg.compile(attack)
    for x, y in data:
        model.zero_grad()
        expected = attack(x, y).numpy()
        model.zero_grad()
        np.testing.assert_array_equal(fgsm(x, y).numpy(), expected)

    def input_gradient(x, y):  # an argument that requires grad gets its own .grad
        nn.functional.cross_entropy(model(x), y).backward()
        return x.grad * 1.0

    through_input = mg.compile(input_gradient)
    for x, y in data:
        x = x.clone().requires_grad_()
        got = through_input(x, y)
        assert x.grad is not None
        np.testing.assert_allclose(got.numpy(), x.grad.numpy())

    twice = mg.compile(lambda a, b: a * 2 + b)  # the same tensor twice is another signature
    a, b = data[0][0], data[1][0]
    twice(a, a)
    np.testing.assert_allclose(twice(a, b).numpy(), (a * 2 + b).numpy())

    made = mg.compile(_filled)  # s = mg.zeros(2); s[0] = x.mean(); return s
    first, second = made(data[0][0]), made(data[1][0])
    assert first.numpy()[0] != second.numpy()[0]  # each call its own tensor
    first.add_(5)
    assert made(data[0][0]).numpy()[1] == 0.0  # a constant made in the call stays as made

    with_model = mg.compile(lambda m, x: m(x))  # a model passed in: its train flag is guarded
    model.train()
    with_model(model, data[0][0])
    model.eval()
    np.testing.assert_allclose(with_model(model, data[0][0]).detach().numpy(),
                               model(data[0][0]).detach().numpy(), rtol=1e-6)


def _filled(x):
    s = mg.zeros(2)
    s[0] = x.mean()
    return s


def test_a_scheduler_stepped_inside_the_function_replays_its_steps():
    def run(compiled):
        mg.manual_seed(0)
        layer = nn.Linear(4, 3)
        optimizer = mg.optim.SGD(layer.parameters(), lr=0.1)
        scheduler = mg.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

        def step(x, y):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(layer(x), y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            return loss

        fn = mg.compile(step) if compiled else step
        losses = [fn(x, y).item() for x, y in batches(4, batch=5, features=4, classes=3)]
        return losses, optimizer.param_groups[0]["lr"]

    (compiled_losses, compiled_lr), (losses, lr) = run(True), run(False)
    assert compiled_lr == lr == 0.1 * 0.5**4
    np.testing.assert_allclose(compiled_losses, losses, rtol=1e-5)
