"""The build-up in examples/steps/: each step runs, and its point holds against torch."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

STEPS = Path(__file__).resolve().parent.parent / "examples" / "steps"


@pytest.fixture(scope="module")
def step():
    sys.path.insert(0, str(STEPS))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(STEPS))


@pytest.mark.parametrize("script", sorted(STEPS.glob("step*.py")), ids=lambda p: p.stem)
def test_each_step_runs_and_names_where_minigrad_does_it(script):
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "minigrad" in done.stdout
    assert "minigrad/" in script.read_text().split('"""')[1]  # the docstring points at the code


def test_step1_the_measured_slope_is_autograds(step):
    s = step("step1_finite_differences")
    x = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    s.f(x).backward()
    assert s.central_difference(s.f, 1.5) == pytest.approx(x.grad.item(), rel=1e-9)
    assert s.slope_by_hand(1.5) == pytest.approx(x.grad.item(), rel=1e-15)
    assert abs(s.central_difference(s.f, 1.5, h=1e-13) - x.grad.item()) > 1e-6  # rounding wins


def test_step3_adding_gives_torchs_gradient_and_assigning_does_not(step):
    s = step("step3_diamond")
    x = torch.tensor(3.0, requires_grad=True)
    (x * x).backward()
    assert s.grad_of_square(3.0, add=True) == x.grad.item()
    assert s.grad_of_square(3.0, add=False) != x.grad.item()


def test_step4_only_the_topological_order_gives_torchs_gradient(step):
    s = step("step4_order")
    x = torch.tensor(1.0, requires_grad=True)
    a = x * 2.0
    b = a + a
    (a * b + b).backward()
    assert s.grad_of_x(1.0, s.topological_backward) == x.grad.item()
    assert s.grad_of_x(1.0, s.naive_backward) != x.grad.item()


def test_step5_unbroadcast_gives_torchs_gradient_of_a_broadcast_input(step):
    import numpy as np

    s = step("step5_unbroadcast")
    x = torch.arange(6.0, dtype=torch.float64).reshape(3, 2).requires_grad_()
    for b_shape in ((2,), (1, 2), (3, 1), ()):
        b = torch.ones(b_shape, dtype=torch.float64, requires_grad=True)
        weights = torch.arange(6.0, dtype=torch.float64).reshape(3, 2) + 1
        x.grad = None
        ((x + b) * weights).sum().backward()
        grad_x, grad_b = s.add_backward(weights.numpy(), (3, 2), b_shape)
        assert np.array_equal(grad_b, b.grad.numpy()) and grad_b.shape == b_shape
        assert np.array_equal(grad_x, x.grad.numpy())


def test_step7_the_version_check_raises_where_torch_does(step):
    s = step("step7_saved_and_version")
    assert s.mul_then_change(check=False) == 0.0  # what an unchecked engine would use
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.mul_then_change(check=True)
    x = torch.tensor(2.0, requires_grad=True)
    y = torch.tensor(4.0, requires_grad=True) * 1.0
    z = x * y
    y.mul_(0.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_step6_no_grad_records_nothing_and_restores_the_switch(step):
    s = step("step6_no_grad")
    assert s.nodes_recorded(False) == 100 and s.nodes_recorded(True) == 0  # x and 99 products
    with pytest.raises(ValueError), s.no_grad():
        raise ValueError
    assert s.recording[0] is True  # restored, also after an error
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    with torch.no_grad():
        assert (w * 2.0).grad_fn is None


def test_step8_writing_through_a_view_gives_torchs_gradients(step):
    import numpy as np

    s = step("step8_view_inplace")
    x0 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    w = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    x = x0 * 1.0
    x[0].mul_(w)
    (x * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    grad_x0, grad_w = s.gradients_by_hand(np.array([1.0, 2.0, 3.0]), 5.0)
    assert np.array_equal(grad_x0, x0.grad.numpy()) and grad_w == w.grad.item()


def test_step2_the_chain_of_local_slopes_is_torchs_gradient(step):
    s = step("step2_function_and_ctx")
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    y = (x.sin() * 3.0).exp()
    y.backward()
    value, slope = s.value_and_slope(0.5)
    assert value == pytest.approx(y.item(), rel=1e-15)
    assert slope == pytest.approx(x.grad.item(), rel=1e-15)
