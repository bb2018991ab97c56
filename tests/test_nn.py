"""nn: Module bookkeeping, Linear, the activations and cross-entropy, checked against torch.nn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.ops import matmul

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


class NeuralNet(nn.Module):
    """The seed tutorial's network."""

    def __init__(self, input_size=784, hidden1=128, hidden2=64, num_classes=10):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden1, hidden2)
        self.fc3 = nn.Linear(hidden2, num_classes)

    def forward(self, x):
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


class TorchNeuralNet(torch.nn.Module):
    def __init__(self, input_size=784, hidden1=128, hidden2=64, num_classes=10):
        super().__init__()
        self.fc1 = torch.nn.Linear(input_size, hidden1)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(hidden1, hidden2)
        self.fc3 = torch.nn.Linear(hidden2, num_classes)

    def forward(self, x):
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


def random(shape, dtype, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def pair(array, device, requires_grad=True):
    """The same values as a minigrad tensor on `device` and a torch CPU tensor."""
    ours = mg.tensor(array, device=device, requires_grad=requires_grad)
    theirs = torch.tensor(array, requires_grad=requires_grad)
    return ours, theirs


def torch_linear_like(layer: nn.Linear) -> torch.nn.Linear:
    """A torch.nn.Linear holding a copy of the layer's weights (through its state dict)."""
    theirs = torch.nn.Linear(
        layer.in_features,
        layer.out_features,
        bias=layer.bias is not None,
        dtype=TORCH_DTYPE[layer.weight.dtype.type],
    )
    theirs.load_state_dict(
        {k: torch.from_numpy(v.detach().numpy()) for k, v in layer.state_dict().items()}
    )
    return theirs


# ---- Linear ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_values_and_grads_match_torch(device, dtype, bias):
    layer = nn.Linear(5, 3, bias=bias, dtype=dtype).to(device)
    theirs = torch_linear_like(layer)
    x, tx = pair(random((4, 5), dtype), device)
    g = random((4, 3), dtype, seed=1)

    y, ty = layer(x), theirs(tx)
    y.backward(mg.tensor(g, device=device))
    ty.backward(torch.from_numpy(g))

    assert y.dtype == dtype and y.device == device
    assert_close(y, ty, dtype, "y")
    assert_close(x.grad, tx.grad, dtype, "dx")
    assert_close(layer.weight.grad, theirs.weight.grad, dtype, "dW")
    if bias:
        assert_close(layer.bias.grad, theirs.bias.grad, dtype, "db")
    else:
        assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]


def test_linear_folds_leading_batch_dims_like_torch(device):
    layer = nn.Linear(4, 2, dtype=np.float64).to(device)
    theirs = torch_linear_like(layer)
    x, tx = pair(random((2, 3, 4), np.float64), device)
    layer(x).sum().backward()
    theirs(tx).sum().backward()
    assert_close(x.grad, tx.grad, name="dx")
    assert_close(layer.weight.grad, theirs.weight.grad, name="dW")
    assert_close(layer.bias.grad, theirs.bias.grad, name="db")


@pytest.fixture
def linear_backward_results(monkeypatch):
    """Record what every Linear backward returns (None where a gradient was skipped)."""
    results = []
    original = matmul.Linear.backward

    def recording_backward(ctx, grad):
        grads = original(ctx, grad)
        results.append(grads)
        return grads

    monkeypatch.setattr(matmul.Linear, "backward", staticmethod(recording_backward))
    return results


def test_linear_skips_the_input_gradient_nobody_needs(device, linear_backward_results):
    model = NeuralNet(8, 6, 5, 3).to(device)
    x = mg.tensor(random((4, 8), np.float32), device=device)  # data: requires no grad
    loss = F.cross_entropy(model(x), mg.tensor([0, 1, 2, 0], device=device))
    loss.backward()

    # The tape runs fc3, fc2, fc1: only the first layer's input gradient is skipped.
    (grad_x3, *_), (grad_x2, *_), (grad_x1, grad_w1, grad_b1) = linear_backward_results
    assert grad_x3 is not None and grad_x2 is not None
    assert grad_x1 is None
    assert grad_w1 is not None and grad_b1 is not None
    assert x.grad is None
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.shape == param.shape, name


def test_linear_skips_weight_gradients_of_a_frozen_layer(linear_backward_results):
    layer = nn.Linear(3, 2)
    layer.weight.requires_grad = False
    layer.bias.requires_grad = False
    x = mg.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    ((grad_x, grad_w, grad_b),) = linear_backward_results
    assert grad_x is not None and grad_w is None and grad_b is None
    assert layer.weight.grad is None and x.grad.shape == (4, 3)


def test_linear_init_follows_torchs_distribution():
    mg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert weight.dtype == np.float32 and layer.weight.requires_grad
    # U(-b, b): inside the bound, reaching close to both ends, mean 0 and variance b^2 / 3.
    assert np.abs(weight).max() <= bound and np.abs(bias).max() <= bound
    assert weight.max() > 0.99 * bound and weight.min() < -0.99 * bound
    assert abs(weight.mean()) < 0.01 * bound
    assert abs(weight.var() / (bound**2 / 3) - 1) < 0.02
    # torch.nn.Linear draws from the same distribution.
    torch.manual_seed(0)
    theirs = torch.nn.Linear(400, 300).weight.detach().numpy()
    assert abs(theirs.var() / weight.var() - 1) < 0.03
    assert np.abs(theirs).max() <= bound


def test_linear_init_is_seeded():
    mg.manual_seed(3)
    first = nn.Linear(4, 3).weight.detach().numpy()
    mg.manual_seed(3)
    assert np.array_equal(first, nn.Linear(4, 3).weight.detach().numpy())


def test_linear_state_dict_moves_between_minigrad_and_torch():
    ours = nn.Linear(6, 4)
    theirs = torch.nn.Linear(6, 4)
    theirs.load_state_dict(
        {k: torch.from_numpy(v.detach().numpy()) for k, v in ours.state_dict().items()}
    )
    x = random((3, 6), np.float32)
    assert_close(ours(mg.tensor(x)), theirs(torch.from_numpy(x)), np.float32)

    back = nn.Linear(6, 4)
    back.load_state_dict(
        {k: v.detach().numpy() for k, v in torch.nn.Linear(6, 4).state_dict().items()}
    )
    fresh = torch.nn.Linear(6, 4)
    back.load_state_dict(fresh.state_dict())  # torch tensors are accepted as they are
    assert_close(back.weight, fresh.weight, np.float32)
    assert_close(back.bias, fresh.bias, np.float32)


def test_linear_names_both_widths_when_the_input_does_not_fit():
    with pytest.raises(ValueError, match=r"784") as error:
        nn.Linear(784, 128)(mg.zeros(64, 100))
    assert "100" in str(error.value) and "(64, 100)" in str(error.value)


def test_linear_repr_matches_torch():
    assert repr(nn.Linear(784, 128)) == repr(torch.nn.Linear(784, 128))
    assert repr(nn.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))


# ---- activations and Flatten ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_values_and_grads_match_torch(device, dtype, name):
    values = random((5, 7), dtype, scale=3.0)
    values[0, :4] = [-100.0, 100.0, -1000.0, 1000.0]  # saturation must stay finite
    x, tx = pair(values, device)
    g = random((5, 7), dtype, seed=1)
    y, ty = getattr(nn, name)()(x), getattr(torch.nn, name)()(tx)
    y.backward(mg.tensor(g, device=device))
    ty.backward(torch.from_numpy(g))
    assert y.dtype == dtype
    assert np.isfinite(y.detach().numpy()).all() and np.isfinite(x.grad.detach().numpy()).all()
    assert_close(y, ty, dtype, f"{name}(x)")
    assert_close(x.grad, tx.grad, dtype, f"d{name}/dx")
    assert repr(getattr(nn, name)()) == f"{name}()"


def test_flatten_matches_torch():
    x, tx = pair(random((2, 3, 4, 5), np.float64), "cpu")
    for args in [(), (0,), (2,), (1, 2)]:
        assert nn.Flatten(*args)(x).shape == tuple(torch.nn.Flatten(*args)(tx).shape)
    y = nn.Flatten()(x)
    (y * y).sum().backward()
    assert_close(x.grad, 2 * tx.detach())
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten())


# ---- cross-entropy ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_values_and_grads_match_torch(device, dtype, reduction):
    x, tx = pair(random((6, 10), dtype, scale=4.0), device)
    labels = np.array([0, 9, 3, 3, 7, 1])
    loss = nn.CrossEntropyLoss(reduction=reduction)(x, mg.tensor(labels, device=device))
    tloss = torch.nn.CrossEntropyLoss(reduction=reduction)(tx, torch.from_numpy(labels))
    loss.backward()
    tloss.backward()
    assert loss.shape == () and loss.dtype == dtype
    assert_close(loss, tloss, dtype, "loss")
    assert_close(x.grad, tx.grad, dtype, "dloss/dx")


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_n():
    logits = random((4, 5), np.float64)
    labels = np.array([1, 0, 4, 1])
    x = mg.tensor(logits, requires_grad=True)
    F.cross_entropy(x, mg.tensor(labels)).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert_close(x.grad, (softmax - np.eye(5)[labels]) / 4)


def test_cross_entropy_is_stable_for_huge_logits():
    values = np.array([[1e4, 0.0, -1e4], [-5e3, 5e3, 0.0]], np.float32)
    x, tx = pair(values, "cpu")
    loss = F.cross_entropy(x, mg.tensor([1, 1]))
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor([1, 1]))
    loss.backward()
    tloss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.detach().numpy()).all()
    assert_close(loss, tloss, np.float32)
    assert_close(x.grad, tx.grad, np.float32)


def test_cross_entropy_takes_labels_as_arrays_or_lists():
    x = mg.tensor(random((2, 3), np.float32))
    expected = F.cross_entropy(x, mg.tensor([2, 0])).item()
    assert F.cross_entropy(x, np.array([2, 0])).item() == expected
    assert F.cross_entropy(x, [2, 0]).item() == expected


@pytest.mark.parametrize("label", [10, -1, 12])
def test_cross_entropy_names_a_label_out_of_range(label):
    with pytest.raises(IndexError, match=rf"target {label} is out of range for 10 classes"):
        F.cross_entropy(mg.zeros(3, 10), mg.tensor([1, label, 2]))


def test_cross_entropy_names_both_batch_sizes_when_they_differ():
    with pytest.raises(ValueError, match=r"\(64,\).*\(64, 10\).*\(32,\)"):
        F.cross_entropy(mg.zeros(64, 10), mg.zeros(32, dtype="int64"))


def test_cross_entropy_rejects_float_labels_and_unknown_reductions():
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(mg.zeros(2, 3), mg.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="'avg'"):
        F.cross_entropy(mg.zeros(2, 3), [0, 1], reduction="avg")


# ---- Module ----------------------------------------------------------------------------------


def test_module_registers_parameters_and_children_in_order():
    model = NeuralNet()
    names = [name for name, _ in model.named_parameters()]
    assert names == [name for name, _ in TorchNeuralNet().named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert [p.shape for p in model.parameters()] == [
        tuple(p.shape) for p in TorchNeuralNet().parameters()
    ]
    assert list(model.children()) == [model.fc1, model.relu, model.fc2, model.fc3]
    assert [name for name, _ in model.named_modules()] == ["", "fc1", "relu", "fc2", "fc3"]
    assert list(model.modules())[0] is model
    assert list(model.parameters(recurse=False)) == []


def test_module_lists_shared_parameters_and_modules_once():
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = model.a  # the same layer twice, as in weight tying
    model.c = nn.Linear(2, 2)
    model.c.weight = model.a.weight
    assert len(list(model.parameters())) == 3  # a.weight, a.bias, c.bias
    assert [name for name, _ in model.named_modules()] == ["", "a", "c"]
    assert len(list(model.children())) == 2
    # state dicts list every name, as torch's do, so tied models load into torch and back.
    tied = torch.nn.Module()
    tied.a = torch.nn.Linear(2, 2)
    tied.b = tied.a
    tied.c = torch.nn.Linear(2, 2)
    tied.c.weight = tied.a.weight
    assert list(model.state_dict()) == list(tied.state_dict())
    model.load_state_dict(tied.state_dict())
    assert_close(model.c.weight, tied.a.weight, np.float32)


def test_module_nested_names_are_dotted():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.0.weight", "2.0.bias"]
    torch_model = torch.nn.Sequential(
        torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(3, 1))
    )
    assert list(model.state_dict()) == list(torch_model.state_dict())


def test_module_unknown_attribute_raises_attribute_error():
    model = NeuralNet()
    with pytest.raises(AttributeError, match="fc4"):
        model.fc4  # noqa: B018
    assert getattr(model, "fc4", None) is None


def test_module_refuses_registration_before_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Forgetful()


def test_module_refuses_to_replace_a_parameter_with_a_plain_tensor():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="'weight'"):
        layer.weight = mg.zeros(2, 2)
    layer.weight = nn.Parameter(mg.zeros(2, 2))  # a new Parameter is fine
    assert list(layer.parameters())[0] is layer.weight  # in its old place, as in torch
    del layer.weight
    assert [name for name, _ in layer.named_parameters()] == ["bias"]


def test_zero_grad_clears_every_parameter_gradient():
    model = NeuralNet(4, 3, 3, 2)
    F.cross_entropy(model(mg.randn(5, 4)), [0, 1, 1, 0, 1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(not p.grad.detach().numpy().any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_and_eval_reach_every_module():
    model = NeuralNet()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_to_moves_parameters_in_place(device):
    model = NeuralNet(4, 3, 3, 2)
    params = list(model.parameters())
    before = [p.detach().numpy() for p in params]
    assert model.to(device) is model
    assert list(model.parameters()) == params  # the same Parameter objects (optimisers hold them)
    for p, values in zip(params, before, strict=True):
        assert p.device == device and p.array.__class__.__module__.split(".")[0] in (
            "numpy",
            "cupy",
        )
        assert np.array_equal(p.detach().numpy(), values)
    out = model(mg.randn(2, 4, device=device))
    assert out.device == device
    model.to("cpu")
    assert all(p.device == "cpu" for p in model.parameters())


def test_repr_matches_torch():
    assert repr(NeuralNet()) == repr(TorchNeuralNet()).replace("TorchNeuralNet", "NeuralNet", 1)
    ours = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.Sigmoid(), nn.Tanh())
    theirs = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.Sigmoid(), torch.nn.Tanh()
    )
    assert repr(ours) == repr(theirs)
    assert repr(nn.CrossEntropyLoss()) == repr(torch.nn.CrossEntropyLoss())
    assert repr(NeuralNet()).startswith(
        "NeuralNet(\n  (fc1): Linear(in_features=784, out_features=128, bias=True)\n"
    )


def test_sequential_indexes_iterates_and_runs_in_order():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert len(model) == 3 and isinstance(model[1], nn.Tanh) and model[-1] is model[2]
    assert list(model) == list(model.children())
    head = model[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [model[0], model[1]]
    x = mg.randn(5, 3)
    assert_close(model(x), model[2](model[1](model[0](x))), np.float32)
    with pytest.raises(TypeError, match="argument 1 is int"):
        nn.Sequential(nn.ReLU(), 3)


# ---- state dicts -----------------------------------------------------------------------------


def test_state_dict_shares_values_and_load_copies_them():
    model = NeuralNet(4, 3, 3, 2)
    state = model.state_dict()
    assert list(state) == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "fc3.weight",
        "fc3.bias",
    ]
    assert all(not t.requires_grad for t in state.values())
    other = NeuralNet(4, 3, 3, 2)
    weight = other.fc1.weight
    result = other.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert other.fc1.weight is weight  # copied into the same Parameter
    for name, value in other.state_dict().items():
        assert np.array_equal(value.detach().numpy(), state[name].detach().numpy()), name
    other.fc1.weight.array[...] = 0
    assert model.fc1.weight.detach().numpy().any()  # the two models do not share memory


def test_state_dict_moves_whole_network_to_torch_and_back():
    model = NeuralNet()
    theirs = TorchNeuralNet()
    theirs.load_state_dict(
        {k: torch.from_numpy(v.detach().numpy()) for k, v in model.state_dict().items()}
    )
    x = random((8, 784), np.float32)
    assert_close(model(mg.tensor(x)), theirs(torch.from_numpy(x)), np.float32)
    again = NeuralNet()
    again.load_state_dict(TorchNeuralNet().state_dict())
    again.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert_close(again(mg.tensor(x)), theirs(torch.from_numpy(x)), np.float32)


def test_load_state_dict_names_a_missing_key():
    model = NeuralNet(4, 3, 3, 2)
    state = model.state_dict()
    del state["fc2.bias"]
    with pytest.raises(
        RuntimeError, match=r"NeuralNet:\n\tmissing key\(s\) in state_dict: 'fc2.bias'"
    ):
        model.load_state_dict(state)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc2.bias"] and result.unexpected_keys == []


def test_load_state_dict_names_an_unexpected_key():
    model = NeuralNet(4, 3, 3, 2)
    state = dict(model.state_dict(), **{"fc4.weight": mg.zeros(2, 2)})
    with pytest.raises(RuntimeError, match=r"unexpected key\(s\) in state_dict: 'fc4.weight'"):
        model.load_state_dict(state)
    assert model.load_state_dict(state, strict=False).unexpected_keys == ["fc4.weight"]


def test_load_state_dict_names_the_key_and_both_shapes_and_changes_nothing():
    model = NeuralNet(4, 3, 3, 2)
    before = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    state = {k: mg.zeros(*v.shape) for k, v in model.state_dict().items()}
    state["fc2.weight"] = mg.zeros(3, 4)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"'fc2.weight': shape \(3, 4\).*\(3, 3\)"):
            model.load_state_dict(state, strict=strict)
    for name, value in model.state_dict().items():
        assert np.array_equal(value.detach().numpy(), before[name]), (
            f"{name} changed by a failed load"
        )


# ---- a PyTorch user's code -------------------------------------------------------------------

TUTORIAL = """
import torch
import torch.nn as nn


class NeuralNet(nn.Module):
    def __init__(self, input_size, hidden_size1, hidden_size2, num_classes):
        super(NeuralNet, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size1, hidden_size2)
        self.fc3 = nn.Linear(hidden_size2, num_classes)

    def forward(self, x):
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)
        out = self.relu(out)
        out = self.fc3(out)
        return out


def train(images, labels, initial_state, device="cpu", num_epochs=2, batch_size=8):
    model = NeuralNet(12, 16, 8, 3).to(device)
    model.load_state_dict(initial_state)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for epoch in range(num_epochs):
        for start in range(0, len(labels), batch_size):
            x = images[start:start + batch_size].reshape(-1, 12).to(device)
            y = labels[start:start + batch_size].to(device)
            outputs = model(x)
            loss = criterion(outputs, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    with torch.no_grad():
        outputs = model(images.reshape(-1, 12).to(device))
        predicted = outputs.argmax(1)
        correct = (predicted == labels.to(device)).sum().item()
    return model, losses, correct
"""


def run_tutorial(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<tutorial>", "exec"), namespace)
    return namespace


def test_a_pytorch_users_code_runs_unchanged_on_minigrad(device):
    ours = run_tutorial(
        TUTORIAL.replace("import torch\n", "import minigrad as torch\n").replace(
            "import torch.nn as nn", "import minigrad.nn as nn"
        )
    )
    theirs = run_tutorial(TUTORIAL)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((32, 3, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 32)
    initial = ours["NeuralNet"](12, 16, 8, 3).state_dict()
    model, losses, correct = ours["train"](
        mg.tensor(images), mg.tensor(labels), initial, device=device
    )
    tmodel, tlosses, tcorrect = theirs["train"](
        torch.from_numpy(images),
        torch.from_numpy(labels),
        {k: torch.from_numpy(v.detach().numpy()) for k, v in initial.items()},
    )
    assert repr(model) == repr(tmodel)
    np.testing.assert_allclose(losses, tlosses, rtol=1e-5, atol=1e-5)
    assert correct == tcorrect
    for (name, value), tvalue in zip(
        model.state_dict().items(), tmodel.state_dict().values(), strict=True
    ):
        assert_close(value, tvalue, np.float32, name)
