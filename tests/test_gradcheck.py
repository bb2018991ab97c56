"""mg.gradcheck: every op's backward agrees with finite differences; a wrong backward is caught."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from tests.test_ops import ELEMENTWISE, INDEX, MATMUL, REDUCE, SHAPE, UNARY

ALL_OPS = ELEMENTWISE + MATMUL + REDUCE + UNARY + SHAPE + INDEX


@pytest.mark.parametrize("shapes, torch_fn, mg_fn, low, high", ALL_OPS)
def test_gradcheck_passes_on_every_op(shapes, torch_fn, mg_fn, low, high):
    rng = np.random.default_rng(0)
    inputs = [
        mg.tensor(rng.uniform(low, high, size=shape), dtype="float64", requires_grad=True)
        for shape in shapes
    ]
    assert mg.gradcheck(mg_fn or torch_fn, inputs)


class WrongSquare(mg.Function):
    """z = x**2, with a backward that is wrong at one element (index 2): the check must see it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        result = 2 * x * grad
        result[1, 0] += 0.5
        return result


def test_gradcheck_raises_naming_the_wrong_element():
    x = mg.tensor(np.arange(1.0, 7.0).reshape(2, 3), dtype="float64", requires_grad=True)
    with pytest.raises(RuntimeError, match=r"input 0 \(shape \(2, 3\)\).*index \(1, 0\)"):
        mg.gradcheck(WrongSquare.apply, [x])


def test_gradcheck_names_which_input_is_wrong():
    a = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    b = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype="float64", requires_grad=True)
    with pytest.raises(RuntimeError, match=r"input 1 \(shape \(2, 3\)\)"):
        mg.gradcheck(lambda u, v: u.sum() * WrongSquare.apply(v), [a, b])


def test_gradcheck_catches_a_nan_gradient():
    class NanGrad(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * float("nan")

    x = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    with pytest.raises(RuntimeError, match="index"):
        mg.gradcheck(NanGrad.apply, [x])


def test_gradcheck_works_on_non_contiguous_inputs():
    base = np.arange(1.0, 7.0).reshape(2, 3).T  # a transposed view: reshape(-1) would copy
    x = mg.from_numpy(base).requires_grad_()
    assert mg.gradcheck(lambda t: t * t, [x])
    np.testing.assert_array_equal(x.detach().numpy(), np.arange(1.0, 7.0).reshape(2, 3).T)


def test_gradcheck_leaves_inputs_unchanged():
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = mg.tensor(a, requires_grad=True)
    mg.gradcheck(lambda t: t.tanh(), x)
    np.testing.assert_array_equal(x.detach().numpy(), a)


def test_gradcheck_skips_inputs_that_need_no_grad():
    x = mg.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    c = mg.tensor([3.0, 4.0], dtype="float32")
    assert mg.gradcheck(lambda a, b: a * b, [x, c])


def test_gradcheck_needs_float64():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda t: t * t, [x])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="nothing to check"):
        mg.gradcheck(lambda t: t * t, [mg.tensor([1.0], dtype="float64")])
