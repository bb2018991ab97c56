"""SGD(foreach=True): the flat-buffer update gives the loop's values exactly, and torch's.

The flat path moves a group's parameters into one array (minigrad/optim/flat.py); these tests
check that nothing a user holds is lost or left behind by that move: the values, the Parameter
objects, the momentum buffers, a replaced `.data`, a loaded state dict, and a refusal when
something else shares a parameter's memory.
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
def test_foreach_gives_the_loops_values_bit_for_bit(settings, dtype):
    loop, flat = _model(dtype=dtype), _model(dtype=dtype)
    loop_opt = mg.optim.SGD(loop.parameters(), **settings)
    flat_opt = mg.optim.SGD(flat.parameters(), foreach=True, **settings)
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


def test_the_parameters_stay_the_same_objects_on_one_buffer():
    model = _model()
    params = list(model.parameters())
    optimizer = mg.optim.SGD(params, lr=0.1, momentum=0.9, foreach=True)
    _train(model, optimizer, steps=1)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    bases = {id(p.array.base) for p in params}
    assert len(bases) == 1, "each parameter should be a view of the group's one flat array"
    buffers = {id(optimizer.state[p]["momentum_buffer"].base) for p in params}
    assert len(buffers) == 1
    # What is taken from a parameter after the move follows it, as in PyTorch.
    view = params[0].detach()
    before = view.numpy().copy()
    _train(model, optimizer, steps=1, seed=2)
    assert not np.array_equal(view.numpy(), before)
    np.testing.assert_array_equal(view.numpy(), params[0].detach().numpy())


@pytest.mark.parametrize("share", [
    lambda p: p.detach(),
    lambda p: p.data,
    lambda p: p[0],
    lambda p: p.array,
    lambda p: p.array.T,
])
def test_the_move_is_refused_when_something_shares_a_parameters_memory(share):
    model = _model()
    kept = share(model[0].weight)  # noqa: F841 (held: that is the point)
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, foreach=True)
    with pytest.raises(RuntimeError, match=r"foreach=True.*parameter 0 \(shape \(5, 6\)\)"):
        _train(model, optimizer, steps=1)
    kept_array = kept.array if isinstance(kept, mg.Tensor) else kept
    assert np.shares_memory(kept_array, model[0].weight.array), "the parameter was moved anyway"


def test_a_refused_move_changes_nothing():
    model = _model()
    weight = model[0].weight
    kept = weight.detach()
    before = [p.numpy() if not p.requires_grad else p.detach().numpy().copy()
              for p in model.parameters()]
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, foreach=True)
    with pytest.raises(RuntimeError):
        _train(model, optimizer, steps=1)
    assert kept.array is weight.array, "the parameter must keep its memory"
    for p, value in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), value)


def test_replaced_data_and_a_loaded_state_move_again_and_still_match_the_loop():
    loop, flat = _model(), _model()
    loop_opt = mg.optim.SGD(loop.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    flat_opt = mg.optim.SGD(flat.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                            foreach=True)
    for model, optimizer in ((loop, loop_opt), (flat, flat_opt)):
        _train(model, optimizer, steps=2)
        model[2].bias.data = mg.tensor([0.5, -0.5, 0.25])  # a new array for one parameter
        optimizer.load_state_dict(optimizer.state_dict())  # new momentum arrays
        _train(model, optimizer, steps=2, seed=3)
    for a, b in zip(loop.parameters(), flat.parameters(), strict=True):
        np.testing.assert_array_equal(a.array, b.array)
    assert len({id(p.array.base) for p in flat.parameters()}) == 1


def test_a_parameter_without_a_gradient_is_skipped_as_by_the_loop():
    results = []
    for foreach in (False, True):
        model = _model()
        optimizer = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, foreach=foreach)
        _train(model, optimizer, steps=2)
        model[2].bias.grad = None  # this step, one parameter has no gradient
        model[0].weight.grad = mg.ones(5, 6)
        optimizer.step()
        _train(model, optimizer, steps=2, seed=4)
        results.append([p.detach().numpy().copy() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


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
