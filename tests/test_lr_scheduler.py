"""StepLR and CosineAnnealingLR give PyTorch's learning rates, epoch after epoch."""

from __future__ import annotations

import math
import warnings

import pytest

import minigrad as mg
from minigrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

LRS = (0.05, 0.2)  # two parameter groups with different learning rates


def optimizers():
    """The same two-group SGD in minigrad and in torch."""
    ours = mg.optim.SGD([{"params": [mg.nn.Parameter(mg.zeros(1))], "lr": lr} for lr in LRS])
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                              for lr in LRS])
    return ours, theirs


def schedulers(kind, **settings):
    ours, theirs = optimizers()
    return getattr(lr_scheduler, kind)(ours, **settings), getattr(
        torch.optim.lr_scheduler, kind)(theirs, **settings)


def assert_same_schedule(ours, theirs, epochs: int) -> None:
    """Step both for `epochs` epochs; every lr within 1e-12 relative (they are in fact equal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "lr_scheduler.step() before optimizer.step()"
        for epoch in range(epochs):
            expected = theirs.get_last_lr()
            assert ours.get_last_lr() == pytest.approx(expected, rel=1e-12, abs=1e-300), epoch
            assert [g["lr"] for g in ours.optimizer.param_groups] == ours.get_last_lr()
            ours.step()
            theirs.step()


@pytest.mark.parametrize("T_max", [1, 3, 10, 300])
@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_matches_torch_over_many_epochs(T_max, eta_min):
    ours, theirs = schedulers("CosineAnnealingLR", T_max=T_max, eta_min=eta_min)
    assert_same_schedule(ours, theirs, epochs=1000)  # past T_max, the lr rises again


@pytest.mark.parametrize(("step_size", "gamma"), [(1, 0.1), (3, 0.5), (7, 0.9), (30, 0.1)])
def test_step_lr_matches_torch_over_many_epochs(step_size, gamma):
    ours, theirs = schedulers("StepLR", step_size=step_size, gamma=gamma)
    assert_same_schedule(ours, theirs, epochs=300)


def test_cosine_annealing_follows_its_closed_form():
    ours, _ = schedulers("CosineAnnealingLR", T_max=10, eta_min=0.001)
    for epoch in range(40):  # down to eta_min at 10, back up to base at 20, and again
        for lr, base in zip(ours.get_last_lr(), LRS, strict=True):
            closed = 0.001 + (base - 0.001) * (1 + math.cos(math.pi * epoch / 10)) / 2
            assert lr == pytest.approx(closed, rel=1e-13)
        ours.step()


def test_step_lr_follows_its_closed_form():
    ours, _ = schedulers("StepLR", step_size=3, gamma=0.5)
    for epoch in range(20):
        expected = [base * 0.5 ** (epoch // 3) for base in LRS]
        assert ours.get_last_lr() == pytest.approx(expected, rel=1e-15)
        ours.step()


@pytest.mark.parametrize("kind", ["CosineAnnealingLR", "StepLR"])
def test_a_restored_scheduler_carries_on_as_torch_does(tmp_path, kind):
    settings = {"T_max": 7} if kind == "CosineAnnealingLR" else {"step_size": 2, "gamma": 0.3}
    ours, theirs = schedulers(kind, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):
            ours.step()
            theirs.step()
    mg.save({"optimizer": ours.optimizer.state_dict(), "scheduler": ours.state_dict()},
            tmp_path / "state.npz")
    state = mg.load(tmp_path / "state.npz")
    restored_optimizer, _ = optimizers()
    restored_optimizer.load_state_dict(state["optimizer"])
    restored = getattr(lr_scheduler, kind)(restored_optimizer, **settings)
    restored.load_state_dict(state["scheduler"])
    assert restored.last_epoch == 5 and restored.get_last_lr() == ours.get_last_lr()
    assert_same_schedule(restored, theirs, epochs=30)


def test_resuming_with_last_epoch_needs_initial_lr_as_in_torch():
    ours, theirs = optimizers()
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        lr_scheduler.StepLR(ours, step_size=2, last_epoch=4)
    with pytest.raises(KeyError):
        torch.optim.lr_scheduler.StepLR(theirs, step_size=2, last_epoch=4)


def test_the_lr_someone_else_sets_carries_on_as_in_torch():
    ours, theirs = schedulers("CosineAnnealingLR", T_max=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for scheduler in (ours, theirs):
            scheduler.step()
            scheduler.optimizer.param_groups[0]["lr"] *= 0.5  # e.g. a manual warm restart
            scheduler.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [("CosineAnnealingLR", {"T_max": 0}, "T_max must be a positive int, got 0"),
     ("CosineAnnealingLR", {"T_max": 2.5}, "T_max must be a positive int, got 2.5"),
     ("StepLR", {"step_size": 0}, "step_size must be a positive int, got 0")],
)
def test_bad_settings_are_refused(kind, settings, message):
    optimizer, _ = optimizers()
    with pytest.raises(ValueError, match=message):
        getattr(lr_scheduler, kind)(optimizer, **settings)


def test_a_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="StepLR needs an Optimizer, got list"):
        lr_scheduler.StepLR([], step_size=1)
