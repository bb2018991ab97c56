"""nn under PyTorch's names (issue 12, item 4), against torch: losses with their options,
modules, Module's registration methods, nn.init and nn.utils."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def pair(values, dtype="float64", requires_grad=True):
    a = np.asarray(values, dtype=dtype)
    rg = requires_grad and a.dtype.kind == "f"
    return mg.tensor(a, requires_grad=rg), torch.tensor(a, requires_grad=rg)


def close(m, t, tol=1e-7):
    assert m.shape == tuple(t.shape), (m.shape, t.shape)
    assert str(m.dtype) == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 4))
LABELS = np.array([0, 3, 1, -100, 2, 3])
PROBS = RNG.uniform(0.05, 0.95, size=(6, 4))
TARGET01 = (RNG.uniform(size=(6, 4)) > 0.5).astype(float)
WEIGHT = np.array([0.5, 2.0, 1.0, 3.0])

LOSSES = {
    "mse": lambda f, x, lib: f.mse_loss(x, lib.tensor(PROBS), reduction=R),
    "l1": lambda f, x, lib: f.l1_loss(x, lib.tensor(PROBS), reduction=R),
    "nll": lambda f, x, lib: f.nll_loss(f.log_softmax(x, 1), lib.tensor(LABELS), reduction=R),
    "nll_weight": lambda f, x, lib: f.nll_loss(x, lib.tensor(LABELS), lib.tensor(WEIGHT),
                                               reduction=R),
    "nll_ignore": lambda f, x, lib: f.nll_loss(x, lib.tensor(LABELS.clip(0)), ignore_index=3,
                                               reduction=R),
    "ce_ignore": lambda f, x, lib: f.cross_entropy(x, lib.tensor(LABELS), reduction=R_CE),
    "ce_smooth": lambda f, x, lib: f.cross_entropy(x, lib.tensor(LABELS), label_smoothing=0.2,
                                                   reduction=R_CE),
    "ce_smooth_weight": lambda f, x, lib: f.cross_entropy(
        x, lib.tensor(LABELS), lib.tensor(WEIGHT), label_smoothing=0.1, reduction=R_CE),
    "ce_probs": lambda f, x, lib: f.cross_entropy(
        x, lib.tensor(PROBS / PROBS.sum(1, keepdims=True)), label_smoothing=0.1, reduction=R_CE),
    "bce": lambda f, x, lib: f.binary_cross_entropy(f.sigmoid(x), lib.tensor(TARGET01),
                                                    reduction=R),
    "bce_weight": lambda f, x, lib: f.binary_cross_entropy(
        f.sigmoid(x), lib.tensor(TARGET01), lib.tensor(WEIGHT), reduction=R),
    "bce_logits": lambda f, x, lib: f.binary_cross_entropy_with_logits(
        x * 10, lib.tensor(TARGET01), reduction=R),
    "bce_logits_pos": lambda f, x, lib: f.binary_cross_entropy_with_logits(
        x, lib.tensor(TARGET01), pos_weight=lib.tensor(WEIGHT), reduction=R),
}
R = R_CE = "mean"


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_values_gradients_and_double_backward(name, reduction):
    global R, R_CE
    R = reduction
    R_CE = reduction if reduction != "none" else "sum"
    m, t = pair(LOGITS)
    mz, tz = LOSSES[name](F, m, mg), LOSSES[name](TF, t, torch)
    close(mz, tz)
    (mg_g,) = mg.autograd.grad(mz.sum(), m, create_graph=True)
    (t_g,) = torch.autograd.grad(tz.sum(), t, create_graph=True)
    close(mg_g, t_g)
    (t_gg,) = torch.autograd.grad((t_g * t_g).sum(), t, allow_unused=True)
    if t_gg is None or t_gg._is_zerotensor() or not t_gg.any():  # a loss linear in x
        assert not mg_g.requires_grad or not mg.autograd.grad((mg_g * mg_g).sum(), m)[0].any()
    else:
        (mg_gg,) = mg.autograd.grad((mg_g * mg_g).sum(), m)
        close(mg_gg, t_gg, tol=1e-6)
    R = R_CE = "mean"


def test_loss_modules_match_functional():
    m, t = pair(LOGITS)
    labels = LABELS.clip(0)
    cases = [
        (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), PROBS),
        (nn.L1Loss(), torch.nn.L1Loss(), PROBS),
        (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), TARGET01),
        (nn.CrossEntropyLoss(label_smoothing=0.3), torch.nn.CrossEntropyLoss(label_smoothing=0.3),
         labels),
    ]
    for mine, theirs, target in cases:
        close(mine(m, mg.tensor(target)), theirs(t, torch.tensor(target)))
    close(nn.NLLLoss()(nn.LogSoftmax(dim=1)(m), mg.tensor(labels)),
          torch.nn.NLLLoss()(torch.nn.LogSoftmax(dim=1)(t), torch.tensor(labels)))
    close(nn.BCELoss()(nn.Softmax(dim=1)(m), mg.tensor(TARGET01)),
          torch.nn.BCELoss()(torch.nn.Softmax(dim=1)(t), torch.tensor(TARGET01)))


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.functional.mse_loss(lib.ones(2, 3), lib.ones(3, 2)),
    lambda lib: lib.nn.functional.nll_loss(lib.zeros(2, 3), lib.tensor([0, 3])),
    lambda lib: lib.nn.functional.nll_loss(lib.zeros(2, 3), lib.tensor([0.0, 1.0])),
    lambda lib: lib.nn.functional.binary_cross_entropy(lib.tensor([1.5]), lib.tensor([1.0])),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([0, 3]), 3),
    lambda lib: lib.nn.functional.one_hot(lib.tensor([0.0]), 3),
    lambda lib: lib.nn.MSELoss(reduction="avg")(lib.ones(1), lib.ones(1)),
    lambda lib: lib.nn.Dropout(p=1.5),
    lambda lib: lib.nn.functional.cross_entropy(lib.zeros(2, 3), lib.tensor([0, 1]),
                                                label_smoothing=1.5),
])
def test_bad_input_raises_the_error_torch_raises(make):
    with pytest.raises(Exception) as theirs:
        make(torch)
    with pytest.raises(Exception) as mine:
        make(mg)
    assert issubclass(mine.type, theirs.type.__mro__[0]) or isinstance(mine.value, theirs.type), (
        mine.type, theirs.type)


def test_one_hot_dropout_identity():
    labels = [2, 0, 1, 2]
    close(F.one_hot(mg.tensor(labels)), TF.one_hot(torch.tensor(labels)))
    close(F.one_hot(mg.tensor(labels), 5), TF.one_hot(torch.tensor(labels), 5))
    mg.manual_seed(0)
    x = mg.ones(200, 50, requires_grad=True)
    y = F.dropout(x, 0.3)
    kept = y.detach().numpy() != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-6)
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x and nn.Identity(3, foo=1)(x) is x


def make_net(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = lib.nn.ModuleList([lib.nn.Linear(3, 4), lib.nn.Linear(4, 2)])
            self.register_buffer("running", lib.ones(2))
            self.register_buffer("scratch", lib.zeros(1), persistent=False)
            self.register_parameter("extra", None)
            self.add_module("act", lib.nn.ReLU())

    return Net()


def test_module_registration_matches_torch():
    mine, theirs = make_net(mg), make_net(torch)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in mine.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in mine.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert mine.extra is None and len(mine.layers) == 2
    seen = []
    mine.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Linear", "ModuleList", "ReLU", "Net"]
    mine.requires_grad_(False)
    assert not any(p.requires_grad for p in mine.parameters())
    mine.to(mg.float64)
    assert mine.running.dtype == mg.float64 and mine.layers[0].weight.dtype == mg.float64
    mine.running = mg.full((2,), 5.0)
    assert float(mine.state_dict()["running"].sum()) == 10.0
    copy = make_net(mg).double()
    copy.load_state_dict(mine.state_dict())
    assert copy.running.tolist() == [5.0, 5.0]
    with pytest.raises(TypeError):
        mine.register_buffer("bad", [1, 2])
    with pytest.raises(KeyError):
        mine.register_parameter("a.b", None)
    with pytest.raises(TypeError):
        mine.register_parameter("w", mg.ones(2))


@pytest.mark.parametrize("name, args", [
    ("kaiming_uniform_", {}), ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("xavier_uniform_", {"gain": 2.0}), ("xavier_normal_", {}), ("uniform_", {"a": -2, "b": 3}),
    ("normal_", {"mean": 1.0, "std": 0.5}),
])
def test_init_distributions_match_torchs(name, args):
    mine, theirs = mg.empty(400, 300), torch.empty(400, 300)
    getattr(nn.init, name)(mine, **args)
    getattr(torch.nn.init, name)(theirs, **args)
    a, b = mine.numpy(), theirs.numpy()
    assert abs(a.mean() - b.mean()) < 0.02 * max(b.std(), 1)
    assert abs(a.std() / b.std() - 1) < 0.02
    assert abs(a.min() - b.min()) < 0.1 * b.std() if "uniform" in name else True


def test_init_constants_and_gain():
    t = mg.empty(3, 2)
    assert nn.init.ones_(t).tolist() == [[1.0] * 2] * 3
    assert nn.init.constant_(t, 0.5).tolist() == [[0.5] * 2] * 3
    assert nn.init.zeros_(t).tolist() == [[0.0] * 2] * 3
    for nl in ("relu", "tanh", "sigmoid", "leaky_relu", "selu"):
        assert nn.init.calculate_gain(nl) == torch.nn.init.calculate_gain(nl)
    with pytest.raises(ValueError):
        nn.init.kaiming_uniform_(mg.empty(3))
    with pytest.raises(ValueError):
        torch.nn.init.kaiming_uniform_(torch.empty(3))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_clip_grad_norm_and_value_match_torch(norm_type):
    grads = [RNG.normal(size=(4, 3)).astype("float32"), RNG.normal(size=5).astype("float32")]
    mine = [mg.zeros(g.shape, requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for m, t, g in zip(mine, theirs, grads, strict=True):
        m.grad, t.grad = mg.tensor(g), torch.tensor(g)
    close(nn.utils.clip_grad_norm_(mine, 0.5, norm_type),
          torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type), tol=1e-6)
    for m, t in zip(mine, theirs, strict=True):
        close(m.grad, t.grad, tol=1e-6)
    nn.utils.clip_grad_value_(mine, 0.05)
    torch.nn.utils.clip_grad_value_(theirs, 0.05)
    for m, t in zip(mine, theirs, strict=True):
        close(m.grad, t.grad, tol=1e-6)
    mine[0].grad = mg.tensor([[math.inf] * 3] * 4)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(mine, 1.0, norm_type, error_if_nonfinite=True)
