"""optim: SGD's update, settings and state dicts, checked against torch.optim.SGD."""

from __future__ import annotations

import ast
import itertools

import numpy as np
import pytest
import torch
from conftest import assert_close

import minigrad as mg
from minigrad import nn

SHAPES = [(4, 3), (3,), (1,)]
SETTINGS = [
    dict(momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
    for momentum, dampening, nesterov, weight_decay in itertools.product(
        (0.0, 0.9), (0.0, 0.5), (False, True), (0.0, 1e-2)
    )
]


def settings_id(settings: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in settings.items())


def torch_rejects(settings: dict) -> bool:
    return settings["nesterov"] and (settings["momentum"] <= 0 or settings["dampening"] != 0)


def make_params(dtype, device="cpu"):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    ours = [nn.Parameter(mg.tensor(v, device=device)) for v in values]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    return ours, theirs


def gradients(step: int, dtype):
    rng = np.random.default_rng(100 + step)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def run_both(ours, theirs, optimizer, torch_optimizer, steps, dtype, device="cpu", first=0):
    for step in range(first, first + steps):
        for p, tp, g in zip(ours, theirs, gradients(step, dtype), strict=True):
            p.grad = mg.tensor(g, device=device)
            tp.grad = torch.from_numpy(g)
        optimizer.step()
        torch_optimizer.step()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("settings", [s for s in SETTINGS if not torch_rejects(s)], ids=settings_id)
def test_sgd_matches_torch_for_twenty_steps(device, settings, dtype):
    ours, theirs = make_params(dtype, device)
    arrays = [p.array for p in ours]
    optimizer = mg.optim.SGD(ours, lr=0.05, **settings)
    torch_optimizer = torch.optim.SGD(theirs, lr=0.05, **settings)
    for step in range(20):
        run_both(ours, theirs, optimizer, torch_optimizer, 1, dtype, device, first=step)
        for index, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(p, tp, dtype, f"param {index} after step {step + 1}")
    # In place: the parameters keep their arrays (and the optimizer's buffers stay private).
    assert all(p.array is array for p, array in zip(ours, arrays, strict=True))
    assert all(p.dtype == dtype for p in ours)
    if settings["momentum"]:
        for index, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
            buffer = optimizer.state[p]["momentum_buffer"]
            assert_close(
                buffer, torch_optimizer.state[tp]["momentum_buffer"], dtype, f"buffer {index}"
            )


def test_sgd_updates_a_zero_dim_parameter_like_torch():
    settings = dict(lr=0.1, momentum=0.9, weight_decay=1e-2)
    ours = [nn.Parameter(mg.tensor(np.float64(0.5)))]
    theirs = [torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))]
    optimizer = mg.optim.SGD(ours, **settings)
    torch_optimizer = torch.optim.SGD(theirs, **settings)
    for step in range(3):
        ours[0].grad = mg.tensor(np.float64(step + 1.0))
        theirs[0].grad = torch.tensor(step + 1.0, dtype=torch.float64)
        optimizer.step()
        torch_optimizer.step()
    assert_close(ours[0], theirs[0], name="0-d parameter")
    assert isinstance(optimizer.state_dict()["state"][0]["momentum_buffer"], mg.Tensor)


@pytest.mark.parametrize("settings", [s for s in SETTINGS if torch_rejects(s)], ids=settings_id)
def test_sgd_rejects_the_settings_torch_rejects(settings):
    with pytest.raises(ValueError) as theirs:
        torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, **settings)
    with pytest.raises(ValueError) as ours:
        mg.optim.SGD([nn.Parameter(mg.ones(1))], lr=0.1, **settings)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
        (dict(lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
        (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    ],
)
def test_sgd_rejects_bad_settings_like_torch(settings, message):
    with pytest.raises(ValueError, match=message):
        torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], **settings)
    with pytest.raises(ValueError, match=message):
        mg.optim.SGD([nn.Parameter(mg.ones(1))], **settings)


def test_sgd_rejects_what_it_cannot_optimise():
    weight = nn.Parameter(mg.ones(3, 2))
    with pytest.raises(TypeError, match="single Parameter"):
        mg.optim.SGD(weight, lr=0.1)  # would otherwise iterate over the rows
    with pytest.raises(ValueError, match="empty"):
        mg.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, but one of the params is int"):
        mg.optim.SGD([1], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        mg.optim.SGD([weight * 2], lr=0.1)


def test_frozen_parameters_are_accepted_and_left_alone_as_in_pytorch():
    """The tutorial's freeze-then-replace-the-head program: an optimiser over every parameter,
    some frozen (requires_grad False): they get no .grad, so step() does not move them."""
    torch = pytest.importorskip("torch")
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            theirs.copy_(torch.tensor(mine.detach().numpy()))
    for frozen in (model[0].weight, model[0].bias):
        frozen.requires_grad_(False)
    for frozen in (reference[0].weight, reference[0].bias):
        frozen.requires_grad_(False)
    ours = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    for _ in range(3):
        ours.zero_grad()
        theirs.zero_grad()
        model(mg.tensor(x)).sum().backward()
        reference(torch.tensor(x)).sum().backward()
        ours.step()
        theirs.step()
    for mine, expected in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(mine.detach().numpy(), expected.detach().numpy(), rtol=1e-5)
    assert model[0].weight.grad is None


def test_sgd_skips_parameters_without_gradients():
    ours, theirs = make_params(np.float64)
    optimizer = mg.optim.SGD(ours, lr=0.1, momentum=0.9)
    torch_optimizer = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    run_both(ours, theirs, optimizer, torch_optimizer, 3, np.float64)
    ours[1].grad = None
    theirs[1].grad = None
    before = ours[1].detach().numpy()
    optimizer.step()
    torch_optimizer.step()
    assert np.array_equal(ours[1].detach().numpy(), before)
    for p, tp in zip(ours, theirs, strict=True):
        assert_close(p, tp)


def test_sgd_param_groups_match_torch():
    ours, theirs = make_params(np.float64)
    optimizer = mg.optim.SGD(
        [{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5, "nesterov": True}],
        lr=0.1,
        momentum=0.9,
    )
    torch_optimizer = torch.optim.SGD(
        [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.5, "nesterov": True}],
        lr=0.1,
        momentum=0.9,
    )
    run_both(ours, theirs, optimizer, torch_optimizer, 5, np.float64)
    for p, tp in zip(ours, theirs, strict=True):
        assert_close(p, tp)
    optimizer.param_groups[0]["lr"] = 0.01  # a schedule changes lr between steps
    torch_optimizer.param_groups[0]["lr"] = 0.01
    run_both(ours, theirs, optimizer, torch_optimizer, 2, np.float64, first=5)
    for p, tp in zip(ours, theirs, strict=True):
        assert_close(p, tp)


def test_sgd_records_nothing_in_the_graph():
    p = nn.Parameter(mg.ones(2))
    p.grad = mg.ones(2)
    mg.optim.SGD([p], lr=0.1, momentum=0.9).step()
    assert p.is_leaf and p.requires_grad and p.grad_fn is None


def test_zero_grad_sets_gradients_to_none_or_zero():
    params = [nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(3))]
    optimizer = mg.optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = mg.ones(*p.shape)
    optimizer.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.detach().numpy().any() for p in params)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_repr_matches_torch_for_the_settings_both_have():
    ours = repr(mg.optim.SGD([nn.Parameter(mg.ones(1))], lr=0.1, momentum=0.9))
    theirs = repr(torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, momentum=0.9))
    assert ours.splitlines()[:2] == ["SGD (", "Parameter Group 0"] == theirs.splitlines()[:2]
    assert ours.splitlines()[-1] == ")"
    torch_lines = {line.split(":")[0]: line for line in theirs.splitlines()}
    for line in ours.splitlines()[2:-1]:
        key, value = line.split(": ")
        assert ast.literal_eval(value) == ast.literal_eval(torch_lines[key].split(": ")[1]), line
    assert "    lr: 0.1" in ours and "    momentum: 0.9" in ours and "    nesterov: False" in ours


def test_state_dict_restores_training_exactly():
    ours, theirs = make_params(np.float64)
    optimizer = mg.optim.SGD(ours, lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True)
    torch_optimizer = torch.optim.SGD(
        theirs, lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True
    )
    run_both(ours, theirs, optimizer, torch_optimizer, 5, np.float64)

    state = optimizer.state_dict()
    assert set(state) == {"state", "param_groups"}
    assert state["param_groups"][0]["params"] == [0, 1, 2]
    assert state["param_groups"][0]["momentum"] == 0.9
    torch_state = torch_optimizer.state_dict()
    assert sorted(state["state"]) == sorted(torch_state["state"]) == [0, 1, 2]
    for index in range(3):
        buffer = state["state"][index]["momentum_buffer"]
        assert isinstance(buffer, mg.Tensor)
        assert_close(buffer, torch_state["state"][index]["momentum_buffer"])

    # A fresh optimiser over copies of the parameters continues exactly like the original.
    copies = [nn.Parameter(mg.tensor(p.detach().numpy())) for p in ours]
    restored = mg.optim.SGD(copies, lr=0.5)
    restored.load_state_dict(state)
    assert restored.param_groups[0]["lr"] == 0.1 and restored.param_groups[0]["nesterov"]
    for step in range(5, 10):
        for p, copy, g in zip(ours, copies, gradients(step, np.float64), strict=True):
            p.grad, copy.grad = mg.tensor(g), mg.tensor(g)
        optimizer.step()
        restored.step()
    for p, copy in zip(ours, copies, strict=True):
        assert np.array_equal(p.detach().numpy(), copy.detach().numpy())


def test_loaded_state_is_a_copy():
    p, q = nn.Parameter(mg.ones(3)), nn.Parameter(mg.ones(3))
    first = mg.optim.SGD([p], lr=0.1, momentum=0.9)
    second = mg.optim.SGD([q], lr=0.1, momentum=0.9)
    p.grad = mg.ones(3)
    first.step()
    second.load_state_dict(first.state_dict())
    buffer = second.state[q]["momentum_buffer"]
    q.grad = mg.ones(3)
    second.step()
    assert np.array_equal(first.state[p]["momentum_buffer"], np.ones(3, np.float32))
    assert buffer is second.state[q]["momentum_buffer"]
    assert np.allclose(buffer, 1.9)


def test_load_state_dict_rejects_a_state_that_does_not_fit():
    params = [nn.Parameter(mg.ones(3)), nn.Parameter(mg.ones(2))]
    optimizer = mg.optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = mg.ones(*p.shape)
    optimizer.step()
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match="a saved group has 2 parameters, the optimizer's has 1"):
        mg.optim.SGD([nn.Parameter(mg.ones(3))], lr=0.1).load_state_dict(state)
    with pytest.raises(
        ValueError, match=r"'momentum_buffer' of parameter 1 has shape \(2,\).*\(5,\)"
    ):
        optimizer = mg.optim.SGD([nn.Parameter(mg.ones(3)), nn.Parameter(mg.ones(5))], lr=0.5)
        optimizer.load_state_dict(state)
    assert optimizer.param_groups[0]["lr"] == 0.5 and optimizer.state == {}  # nothing changed


# ---- param groups: a parameter in one place only, as PyTorch checks ---------------------------


def test_a_parameter_in_two_groups_is_refused_like_torch():
    ours, theirs = make_params(np.float64)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        torch.optim.SGD([{"params": theirs[:2]}, {"params": theirs[1:]}], lr=0.1)
    with pytest.raises(ValueError, match=r"more than one parameter group: parameter 0 of the new "
                                         r"group \(shape \(3,\)\) is already in group 0"):
        mg.optim.SGD([{"params": ours[:2]}, {"params": ours[1:]}], lr=0.1)


def test_add_param_group_refuses_a_parameter_already_present():
    ours, _ = make_params(np.float64)
    optimizer = mg.optim.SGD(ours[:2], lr=0.1)
    with pytest.raises(ValueError, match="is already in group 0"):
        optimizer.add_param_group({"params": [ours[2], ours[0]], "lr": 0.5})
    assert len(optimizer.param_groups) == 1  # nothing was added
    optimizer.add_param_group({"params": ours[2:], "lr": 0.5})
    assert [len(group["params"]) for group in optimizer.param_groups] == [2, len(ours) - 2]


def test_a_duplicate_inside_one_group_warns_like_torch():
    ours, theirs = make_params(np.float64)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        torch.optim.SGD([theirs[0], theirs[0]], lr=0.1)
    with pytest.warns(UserWarning, match="holds the same parameter more than once"):
        mg.optim.SGD([ours[0], ours[0]], lr=0.1)


def test_params_in_a_set_are_refused_like_torch():
    ours, theirs = make_params(np.float64)
    with pytest.raises(TypeError, match="ordering of tensors in sets"):
        torch.optim.SGD([{"params": {theirs[0]}}], lr=0.1)
    with pytest.raises(TypeError, match="ordering of tensors in sets"):
        mg.optim.SGD([{"params": {ours[0]}}], lr=0.1)
