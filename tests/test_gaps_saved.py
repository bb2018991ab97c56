"""Saved tensors and NaN gradients as in PyTorch: the gaps torch-saves-minigrad-does-not,
matmul-saves-3d-operand, std-of-constant-nan-grad, nan-grad-through-zero-slopes and
class-loss-ignored-rows-not-finite of tests/differential.py, each claim a program that runs
under torch and minigrad and must agree (values, errors, first and second derivatives)."""

from __future__ import annotations

import pytest
import torch

import minigrad as mg
from tests.differential import check_source

pytest.importorskip("torch")


def agrees(source: str) -> None:
    disagreement = check_source(source)
    assert disagreement is None, disagreement.describe()


# ---- what backward reads must not change in place (torch saves it) ----------------------------

SAVES_INPUT = {
    "clamp": "v1.clamp(0.0, 1.5)",
    "clamp-min": "v1.clamp(min=0.5)",
    "clip": "v1.clip(0.0, 1.5)",
    "maximum": "lib.maximum(v1, v0 * 0.5)",
    "minimum": "v1.minimum(lib.tensor([1.0, 1.0], dtype=lib.float64))",
    "clamp-tensors": "v1.clamp(v0 * 0.5, v0 * 0.5 + 0.5)",
    "amax": "v1.amax()",
    "amin": "v1.amin(dim=0)",
    "max": "v1.max()",
    "min": "v1.min()",
    "std": "v1.std()",
    "std-dim": "v1.std(dim=0)",
    "var": "v1.var()",
    "nll_loss": "F.nll_loss(v1, lib.tensor(0))",
    "mse_loss": "F.mse_loss(v1, lib.tensor([0.5, 0.5], dtype=lib.float64))",
    "bce_with_logits": "F.binary_cross_entropy_with_logits(v1, lib.tensor([0.0, 1.0], "
                       "dtype=lib.float64))",
}


@pytest.mark.parametrize("name", sorted(SAVES_INPUT))
def test_changing_an_input_in_place_after_the_op_makes_backward_raise(name):
    agrees(f"""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = {SAVES_INPUT[name]}
        v1.add_(1.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch: one of the variables needed for gradient computation has been modified


@pytest.mark.parametrize("expression", ["v1.amax(dim=0)", "v1.amin()", "v1.max()", "v1.min()"])
def test_changing_the_result_in_place_makes_backward_raise(expression):
    agrees(f"""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 * 1.0
        v2 = {expression}
        v2.mul_(2.0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)


def test_a_tensor_exponent_saves_the_power_even_when_only_the_base_needs_a_gradient():
    agrees("""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = v0 ** lib.tensor([2.0, 3.0], dtype=lib.float64)
        v1.add_(1.0)
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)


def test_nll_loss_saves_its_target_and_weight():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0], [0.5, 0.1]], dtype=lib.float64, requires_grad=True)
        v1 = lib.tensor([1, 0])
        v2 = lib.tensor([0.5, 2.0], dtype=lib.float64)
        v3 = F.nll_loss(v0 * 1.0, v1, weight=v2)
        v2.mul_(2.0)
        loss = v3.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)


# ---- matmul with a batched operand beside a matrix or vector: torch folds it, a copy ----------


@pytest.mark.parametrize("product, changed", [
    ("v0 @ v1", "v1"),  # 1-D @ 3-D
    ("(v0 * 1.0).reshape(1, 2) @ v1", "v1"),  # 2-D @ 3-D
    ("v1.transpose(2, 1) @ v2", "v1"),  # a transposed 3-D @ 2-D
    ("v1.transpose(2, 1) @ v0", "v1"),  # a transposed 3-D @ 1-D
])
def test_matmul_saves_a_folded_copy_of_the_batched_operand(product, changed):
    agrees(f"""
        v0 = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        v1 = lib.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], dtype=lib.float64)
        v2 = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
        v3 = {product}
        {changed}.add_(1.0)
        loss = (v3 * v3).sum()
        grads = lib.autograd.grad(loss, [v0, v2], allow_unused=True, create_graph=True)
    """)


def test_the_folded_copy_keeps_the_second_derivative_through_the_batched_operand():
    agrees("""
        v0 = lib.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=lib.float64, requires_grad=True)
        v9 = lib.tensor([1., 2., 3., 4., 5., 6., 7., .5], dtype=lib.float64, requires_grad=True)
        v1 = v9.reshape(2, 2, 2) * 1.0
        v2 = v0 @ v1
        v1.add_(1.0)
        loss = (v2 * v2).sum()
        grads = lib.autograd.grad(loss, [v0, v9], allow_unused=True, create_graph=True)
        loss2 = sum([(g * w).sum() for g, w in zip(grads, [1.0, 0.5]) if g is not None])
        grads2 = lib.autograd.grad(loss2, [v0, v9], allow_unused=True)
    """)


# ---- std of equal values: a zero std has a zero gradient ----------------------------------------


@pytest.mark.parametrize("expression", ["v0.std()", "v0.std(dim=0)"])
def test_the_gradient_of_a_zero_std_is_zero(expression):
    agrees(f"""
        v0 = lib.tensor([-2.0, -2.0], dtype=lib.float64, requires_grad=True)
        v1 = {expression}
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)


def test_the_std_of_equal_values_along_a_dim_is_exactly_zero():
    agrees("""
        v0 = lib.tensor([1.11, 0.35], dtype=lib.float64, requires_grad=True)
        v1 = lib.maximum(lib.tensor([[-2.0], [-2.0], [-2.0]], dtype=lib.float64), v0)
        v2 = v1.std(dim=0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # 3.33 / 3 is not 1.11: a plain two-pass std is rounding noise, its slope +-1/sqrt(6)


# ---- a NaN gradient where the slope is 0: torch selects, NaN * 0 would be NaN --------------------


@pytest.mark.parametrize("expression", [
    "v0.max(dim=-1, keepdim=True)[0]", "v0.min(dim=-1, keepdim=True)[0]", "v0.max()",
    "v0.min()", "v0 ** 0.0", "v0 ** lib.tensor([[0.0, 2.0]], dtype=lib.float64)",
])
def test_a_nan_gradient_stays_where_the_slope_is_not_zero(expression):
    agrees(f"""
        v0 = lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True)
        v1 = {expression}
        v2 = v1.reshape(-1)[:1].var(dim=0)
        loss = v2.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # var of one element is NaN, and so is its gradient


# ---- class losses leave an ignored row out, NaN or not ------------------------------------------


@pytest.mark.parametrize("loss", [
    "F.cross_entropy(v0, lib.tensor([-100, 1]), reduction='none')",
    "F.cross_entropy(v0, lib.tensor([-100, 1]), reduction='none', label_smoothing=0.1)",
    "F.nll_loss(v0, lib.tensor([-100, 1]), reduction='none')",
    "F.nll_loss(v0, lib.tensor([1, 0]), ignore_index=1, weight=lib.tensor([0.5, 2.0], "
    "dtype=lib.float64), reduction='none')",
])
def test_a_non_finite_logit_in_an_ignored_row_is_left_out(loss):
    agrees(f"""
        v0 = lib.tensor([[float("nan"), 1.0], [0.5, 1.0]], dtype=lib.float64, requires_grad=True)
        v1 = {loss}
        loss = v1.sum()
        grads = lib.autograd.grad(loss, [v0], allow_unused=True, create_graph=True)
    """)  # torch [0., ...]; multiplied by 0: [nan, ...]


def test_sums_of_bool_and_unsigned_integers_are_int64_as_in_torch():
    for values, dtype in (([1, 200, 100], "uint8"), ([True, False, True], "bool")):
        t = torch.tensor(values, dtype=getattr(torch, dtype))
        m = mg.tensor(values, dtype=getattr(mg, dtype))
        for dim in (None, 0):
            expected = t.sum() if dim is None else t.sum(dim)
            result = m.sum() if dim is None else m.sum(dim)
            assert str(result.dtype) == str(expected.dtype).removeprefix("torch.")
            assert result.item() == expected.item()
