"""SGD with PyTorch's whole signature: maximize, foreach, fused, step(closure), against torch.

foreach and fused choose between implementations of one update, so every setting must give the
plain loop's values exactly, and torch's (which runs its foreach path) to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg

SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.9, maximize=True, weight_decay=1e-3),
]


def _model(seed=0, dtype=mg.float32):
    mg.manual_seed(seed)
    return mg.nn.Sequential(mg.nn.Linear(6, 5), mg.nn.ReLU(), mg.nn.Linear(5, 3)).to(dtype)


def _train(model, optimizer, steps=4, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = mg.tensor(rng.standard_normal((4, 6)), dtype=model[0].weight.dtype)
        y = mg.tensor(rng.integers(0, 3, 4))
        optimizer.zero_grad()
        mg.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("dtype", [mg.float32, mg.float64])
@pytest.mark.parametrize("switch", [dict(foreach=True), dict(fused=True), dict(foreach=False)])
def test_foreach_and_fused_give_the_loops_values_bit_for_bit(settings, dtype, switch):
    loop, flat = _model(dtype=dtype), _model(dtype=dtype)
    loop_opt = mg.optim.SGD(loop.parameters(), **settings)
    flat_opt = mg.optim.SGD(flat.parameters(), **switch, **settings)
    _train(loop, loop_opt)
    _train(flat, flat_opt)
    for a, b in zip(loop.parameters(), flat.parameters(), strict=True):
        np.testing.assert_array_equal(a.array, b.array)
    if settings.get("momentum"):
        for a, b in zip(loop.parameters(), flat.parameters(), strict=True):
            np.testing.assert_array_equal(loop_opt.state[a]["momentum_buffer"],
                                          flat_opt.state[b]["momentum_buffer"])


@pytest.mark.parametrize("settings", SETTINGS)
def test_foreach_matches_torch(settings):
    model = _model(dtype=mg.float64)
    reference = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(),
                                    torch.nn.Linear(5, 3)).double()
    with torch.no_grad():
        for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(ours.array.copy()))
    optimizer = mg.optim.SGD(model.parameters(), foreach=True, **settings)
    torch_optimizer = torch.optim.SGD(reference.parameters(), foreach=True, **settings)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
        optimizer.zero_grad()
        mg.nn.functional.cross_entropy(model(mg.tensor(x)), mg.tensor(y)).backward()
        optimizer.step()
        torch_optimizer.zero_grad()
        torch.nn.functional.cross_entropy(reference(torch.from_numpy(x)),
                                          torch.from_numpy(y)).backward()
        torch_optimizer.step()
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(ours.array, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_foreach_and_fused_together_is_torchs_error():
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        mg.optim.SGD(_model().parameters(), lr=0.1, foreach=True, fused=True)
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, foreach=True, fused=True)


def test_step_returns_the_closures_loss():
    model = _model()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, foreach=True)
    x, y = mg.randn(4, 6), mg.tensor([0, 1, 2, 0])

    def closure():
        optimizer.zero_grad()
        loss = mg.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert isinstance(loss, mg.Tensor) and loss.grad_fn is not None


@pytest.mark.parametrize("make", [
    lambda params, **kw: mg.optim.Adam(params, lr=0.01, **kw),
    lambda params, **kw: mg.optim.AdamW(params, lr=0.01, **kw),
    lambda params, **kw: mg.optim.Adadelta(params, **kw),
])
def test_the_other_optimisers_take_the_same_switches(make):
    loop, switched = _model(), _model()
    loop_opt = make(loop.parameters())
    switched_opt = make(switched.parameters(), foreach=True)
    _train(loop, loop_opt)
    _train(switched, switched_opt)
    for a, b in zip(loop.parameters(), switched.parameters(), strict=True):
        np.testing.assert_array_equal(a.array, b.array)
    with pytest.raises(NotImplementedError, match="capturable=True is not supported"):
        make(_model().parameters(), capturable=True)
    with pytest.raises(NotImplementedError, match="differentiable=True is not supported"):
        make(_model().parameters(), differentiable=True)
