"""Adam, AdamW, Adadelta and the new schedulers against torch (issue 12, item 5)."""

import math

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

CONFIGS = [
    ("Adam", {}), ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"weight_decay": 0.1, "maximize": True}),
    ("Adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01, "amsgrad": True}),
    ("AdamW", {}), ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("AdamW", {"maximize": True}),
    ("Adadelta", {}), ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    ("Adadelta", {"maximize": True, "eps": 1e-4}),
]


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("name, options", CONFIGS)
def test_updates_equal_torchs_for_the_same_gradients(name, options, dtype, tol):
    """300 steps from the same gradients (torch's fused multiply-adds and float32 sqrt round
    differently from NumPy's exact rounding, so float32 agrees to ~1e-6, not bit for bit)."""
    rng = np.random.default_rng(1)
    start = rng.normal(size=(5, 4)).astype(dtype)
    mine = mg.tensor(start, requires_grad=True)
    theirs = torch.tensor(start, requires_grad=True)
    opt_m = getattr(mg.optim, name)([mine], **options)
    opt_t = getattr(torch.optim, name)([theirs], **options)
    for _ in range(300):
        grad = rng.normal(size=start.shape).astype(dtype)
        mine.grad, theirs.grad = mg.tensor(grad), torch.tensor(grad)
        opt_m.step()
        opt_t.step()
    np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=tol,
                               atol=tol)


def mlp(lib, weights):
    model = lib.nn.Sequential(lib.nn.Linear(8, 16), lib.nn.ReLU(), lib.nn.Linear(16, 3))
    with lib.no_grad():
        for p, w in zip(model.parameters(), weights, strict=True):
            p.copy_(lib.tensor(w))
    return model


@pytest.mark.parametrize("name, options", CONFIGS[::3])
def test_tutorial_mlp_trajectories_match_torch(name, options):
    rng = np.random.default_rng(2)
    weights = [rng.normal(scale=0.3, size=s) for s in [(16, 8), (16,), (3, 16), (3,)]]
    x, y = rng.normal(size=(32, 8)), rng.integers(0, 3, 32)
    losses = {}
    for lib in (mg, torch):
        model = mlp(lib, weights).double()
        opt = getattr(lib.optim, name)(model.parameters(), **options)
        inputs, targets = lib.tensor(x), lib.tensor(y)
        for _ in range(200):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(inputs), targets)
            loss.backward()
            opt.step()
        losses[lib.__name__] = (loss.item(), [p.detach().numpy() for p in model.parameters()])
    assert losses["minigrad"][0] == pytest.approx(losses["torch"][0], rel=1e-9)
    for a, b in zip(losses["minigrad"][1], losses["torch"][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name, options", CONFIGS[1::3])
def test_state_dict_round_trips(name, options):
    params = [mg.ones(3, requires_grad=True)]
    opt = getattr(mg.optim, name)(params, **options)
    for value in (0.5, -0.2, 0.1):
        params[0].grad = mg.full((3,), value)
        opt.step()
    saved = opt.state_dict()
    copy_params = [params[0].detach().clone().requires_grad_()]
    copy = getattr(mg.optim, name)(copy_params, **options)
    copy.load_state_dict(saved)
    for p in (params[0], copy_params[0]):
        p.grad = mg.full((3,), 0.3)
    opt.step()
    copy.step()
    np.testing.assert_array_equal(params[0].detach().numpy(), copy_params[0].detach().numpy())
    assert copy.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adadelta"])
def test_bad_settings_raise_as_torch(name):
    p = mg.ones(2, requires_grad=True)
    tp = torch.ones(2, requires_grad=True)
    for bad in ({"lr": -1.0}, {"eps": -1.0}, {"weight_decay": -0.1}):
        with pytest.raises(ValueError):
            getattr(torch.optim, name)([tp], **bad)
        with pytest.raises(ValueError):
            getattr(mg.optim, name)([p], **bad)
    with pytest.raises(ValueError, match="more than one parameter group"):
        getattr(mg.optim, name)([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([{"params": [tp]}, {"params": [tp]}])


SCHEDULES = [
    ("ExponentialLR", {"gamma": 0.93}),
    ("MultiStepLR", {"milestones": [3, 7, 7, 20], "gamma": 0.5}),
    ("LambdaLR", {"lr_lambda": lambda epoch: 0.95 ** epoch / (1 + epoch)}),
    ("OneCycleLR", {"max_lr": 0.4, "total_steps": 60}),
    ("OneCycleLR", {"max_lr": [0.4, 0.2], "epochs": 6, "steps_per_epoch": 10,
                    "anneal_strategy": "linear", "three_phase": True, "pct_start": 0.25}),
]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("name, options", SCHEDULES)
def test_schedulers_equal_torchs_bit_for_bit(name, options, optimizer):
    seen = {}
    for lib in (mg, torch):
        groups = [{"params": [lib.ones(1, requires_grad=True)]},
                  {"params": [lib.ones(1, requires_grad=True)], "lr": 0.03}]
        extra = {"momentum": 0.9} if optimizer == "SGD" else {}
        opt = getattr(lib.optim, optimizer)(groups, lr=0.1, **extra)
        sched = getattr(lib.optim.lr_scheduler, name)(opt, **options)
        trace = []
        for _ in range(59):
            opt.step()
            sched.step()
            trace.append(tuple(sched.get_last_lr()) + tuple(
                g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups))
        seen[lib.__name__] = trace
    assert seen["minigrad"] == seen["torch"]


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_one_cycle_errors_as_torch():
    for lib in (mg, torch):
        opt = lib.optim.SGD([lib.ones(1, requires_grad=True)], lr=0.1)
        with pytest.raises(ValueError):
            lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0)
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2,
                                                  cycle_momentum=False)
        sched.step()
        sched.step()
        with pytest.raises(ValueError, match="Tried to step 3 times"):
            sched.step()
    assert math.isfinite(opt.param_groups[0]["lr"])
