"""The graph and the engine: how gradients flow, accumulate, and when nothing is recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from tests.conftest import assert_close

# ---- how gradients flow ----------------------------------------------------------------------


def test_diamond_graph_adds_gradients(device):
    x = mg.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    y = x * 2.0
    z = (y.exp() + y * y).sum()  # y is used twice: its two gradients must add up
    z.backward()
    xt = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    yt = xt * 2.0
    (yt.exp() + yt * yt).sum().backward()
    assert_close(x.grad, xt.grad, np.float32)


def test_leaf_used_twice_in_one_op_adds_gradients(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), [2.0, 4.0])


def test_10000_deep_chain_needs_no_recursion(device):
    x = mg.tensor(1.0, device=device, dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    assert len(mg.autograd.tape(y)) == 10_000
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**10_000, rel=1e-9)


def test_gradients_accumulate_over_two_backward_calls(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0 + 2.0, 3.0 + 4.0])


def test_only_leaves_that_require_grad_get_gradients(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    c = mg.tensor([5.0, 6.0], device=device)
    y = x * c
    y.sum().backward()
    assert c.grad is None
    with pytest.warns(UserWarning, match="not a leaf"):  # PyTorch warns there too
        assert y.grad is None  # non-leaf gradients are not kept, as in PyTorch
    assert x.is_leaf and not y.is_leaf
    np.testing.assert_allclose(x.grad.detach().numpy(), [5.0, 6.0])


def test_branch_that_does_not_reach_a_leaf_is_skipped(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    unused = x * 10.0  # recorded, but not part of the loss
    loss = (x * 2.0).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), [2.0, 2.0])
    assert unused.grad_fn is not None


def test_backward_with_gradient_on_non_scalar(device):
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    y = x * x
    y.backward(mg.tensor([[1.0, 0.0], [0.5, 2.0]], device=device))
    np.testing.assert_allclose(x.grad.detach().numpy(), [[2.0, 0.0], [3.0, 16.0]])


def test_backward_accepts_lists_and_arrays_as_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).backward([1.0, 1.0])
    (x * 2.0).backward(np.array([0.5, 0.5]))
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0, 3.0])
    assert x.grad.dtype == mg.float32


def test_backward_without_gradient_on_one_element_tensor(device):
    x = mg.tensor([[2.0]], device=device, requires_grad=True)
    y = x @ x  # shape (1, 1), as in the tutorial
    y.backward()
    assert x.grad.shape == (1, 1)
    assert x.grad.item() == 4.0


def test_backward_on_a_leaf_sets_its_gradient():
    x = mg.tensor(3.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_retain_graph_allows_a_second_backward(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.detach().numpy().copy()  # numpy() shares the memory .grad accumulates into
    y.backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), 2 * first)


def test_second_backward_through_released_graph_says_retain_graph(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


# ---- grad mode -------------------------------------------------------------------------------


def test_no_grad_records_nothing():
    x = mg.ones(3, requires_grad=True)
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = x * 2.0 + 1.0
    assert mg.is_grad_enabled()
    assert y.grad_fn is None
    assert not y.requires_grad
    assert y.is_leaf


def test_enable_grad_inside_no_grad():
    x = mg.ones(3, requires_grad=True)
    with mg.no_grad():
        with mg.enable_grad():
            assert mg.is_grad_enabled()
            y = x * 2.0
        assert not mg.is_grad_enabled()
    assert y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), [2.0, 2.0, 2.0])


def test_no_grad_as_decorator():
    x = mg.ones(3, requires_grad=True)

    @mg.no_grad()
    def evaluate(t):
        return t * 2.0

    y = evaluate(x)
    assert y.grad_fn is None
    assert mg.is_grad_enabled()


def test_no_grad_as_decorator_without_parentheses():
    @mg.no_grad
    def evaluate():
        return mg.is_grad_enabled()

    assert evaluate() is False
    assert mg.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with mg.no_grad():
            raise ZeroDivisionError
    assert mg.is_grad_enabled()


def test_detach_cuts_the_graph(device):
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 3.0
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    np.testing.assert_array_equal(d.detach().numpy(), y.detach().numpy())
    (d * x).sum().backward()  # d is a constant now: dx = d
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0, 6.0])


def test_ops_without_grad_inputs_record_nothing():
    y = mg.ones(3) * 2.0
    assert y.grad_fn is None and not y.requires_grad


# ---- custom Functions ------------------------------------------------------------------------


class ScaledProduct(mg.Function):
    """z = x * y * k;  dz/dx = y k,  dz/dy = x k (k is a plain number: its gradient is None)"""

    calls = []

    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.k = k
        return x * y * k

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        ScaledProduct.calls.append(ctx.needs_input_grad)
        grad_x = grad * y * ctx.k if ctx.needs_input_grad[0] else None
        grad_y = grad * x * ctx.k if ctx.needs_input_grad[1] else None
        return grad_x, grad_y, None


def test_custom_function_with_needs_input_grad_and_none_gradient(device):
    ScaledProduct.calls.clear()
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = mg.tensor([3.0, 4.0], device=device)  # needs no gradient
    z = ScaledProduct.apply(x, y, 2.0)
    assert z.grad_fn is not None and z.grad_fn.name() == "ScaledProductBackward"
    z.sum().backward()
    assert ScaledProduct.calls == [(True, False, False)]
    np.testing.assert_allclose(x.grad.detach().numpy(), [6.0, 8.0])
    assert y.grad is None


def test_custom_function_wrong_number_of_gradients_is_reported():
    class Broken(mg.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = mg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"incorrect number of gradients \(expected 2, got 1\)"):
        Broken.apply(x, x).sum().backward()


def test_custom_function_gradient_of_wrong_shape_names_both_shapes():
    class WrongShape(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad[:1]

    x = mg.ones(3, requires_grad=True)
    with pytest.raises(
        RuntimeError,
        match=r"WrongShapeBackward returned an invalid gradient at index 0 - got \[1\] but "
        r"expected shape compatible with \[3\]",
    ):
        WrongShape.apply(x).sum().backward()


# ---- error messages --------------------------------------------------------------------------


def test_backward_on_non_scalar_without_gradient_asks_for_one():
    x = mg.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(2, 3\).*gradient"):
        (x * 2.0).backward()


def test_backward_gradient_of_wrong_shape_names_both_shapes():
    x = mg.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3, 2\).*shape \(2, 3\)"):
        (x * 2.0).backward(mg.ones(3, 2))


def test_backward_without_grad_says_why():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.ones(2).sum().backward()


# ---- the tape --------------------------------------------------------------------------------


def test_tape_lists_nodes_in_the_order_backward_runs_them():
    x = mg.ones(2, 3, requires_grad=True)
    w = mg.ones(3, 4, requires_grad=True)
    loss = (x @ w).relu().sum()
    tape = mg.autograd.tape(loss)
    assert [node.name() for node in tape] == ["SumBackward", "ReLUBackward", "MatMulBackward"]
    assert tape[0] is loss.grad_fn
    assert mg.autograd.tape(loss.grad_fn) == tape
    assert mg.autograd.tape(x) == []


def test_tape_puts_each_node_after_every_node_that_uses_it():
    x = mg.ones(3, requires_grad=True)
    a = x.exp()
    b = a * 2.0
    c = a + b  # a feeds c directly and through b
    tape = mg.autograd.tape(c.sum())
    position = {node: i for i, node in enumerate(tape)}
    assert len(tape) == 4
    assert position[a.grad_fn] > position[b.grad_fn] > position[c.grad_fn]


def test_tape_prints_one_line_per_node():
    x = mg.ones(2, 3, requires_grad=True)
    w = mg.ones(3, 4, requires_grad=True)
    text = str(mg.autograd.tape((x @ w).sum()))
    lines = text.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["0", "SumBackward", "out", "()", "->", "MatMulBackward"]
    assert lines[1].split()[:4] == ["1", "MatMulBackward", "out", "(2,"]
    assert lines[1].endswith("-> leaf (2, 3), leaf (3, 4)")


def test_grad_fn_repr_names_the_op():
    y = mg.ones(2, requires_grad=True) * 2.0
    assert repr(y.grad_fn) == "<MulBackward>"


# ---- gradients must be fresh arrays ----------------------------------------------------------


def test_two_leaves_never_share_a_gradient_array():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(y.grad.detach().numpy(), [1.0, 1.0])


def test_gradient_of_a_sum_is_writable():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    x.sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [0.0, 0.0])


def test_leaf_gradient_does_not_alias_the_given_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    given = np.ones(2, dtype=np.float32)
    (x + 0.0).backward(given)
    given[:] = 7.0
    np.testing.assert_array_equal(x.grad.detach().numpy(), [1.0, 1.0])


def test_a_built_in_op_that_forgets_to_unbroadcast_is_named():
    """Built-in ops (Op) must return gradients of exactly their inputs' shapes: the engine no
    longer sums a forgotten broadcast away silently, it names the op."""

    class Forgetful(mg.engine.function.Op):
        @staticmethod
        def forward(ctx, x):
            return x.array * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad.expand(2, *grad.shape)  # a broadcast gradient: one dim too many

    x = mg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"ForgetfulBackward \(a built-in op\) returned a "
                                           r"gradient of shape \[2, 3\] for input 0"):
        Forgetful.apply(x).sum().backward()


def test_a_user_function_keeps_torchs_leniency_for_broadcast_gradients():
    class Lenient(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return grad.expand(2, *grad.shape)  # PyTorch sums this down to (3,)

    x = mg.ones(3, requires_grad=True)
    Lenient.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_later_gradients_add_into_the_same_grad_tensor_as_torch():
    """PyTorch's AccumulateGrad adds a later gradient into .grad in place: a reference to .grad
    (an optimiser's, a user's) sees the sum, and zero_grad(set_to_none=False) keeps the object."""
    import torch

    for lib in (torch, mg):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        held = x.grad
        (x * 3.0).sum().backward()
        assert held is x.grad and held.tolist() == [5.0, 7.0], lib.__name__
        model = lib.nn.Linear(2, 1)
        model(lib.ones(1, 2)).sum().backward()
        weight_grad = model.weight.grad
        model.zero_grad(set_to_none=False)
        model(lib.ones(1, 2)).sum().backward()
        assert model.weight.grad is weight_grad and weight_grad.tolist() == [[1.0, 1.0]]


def test_grad_shares_memory_with_nothing_the_user_or_another_leaf_holds():
    """The one rule: .grad takes only an array a built-in op's backward made for that one edge."""
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add sends one gradient along two edges
    assert not mg.backend.numpy.shares_memory(a.grad.array, b.grad.array)
    c = mg.tensor([1.0, 2.0], requires_grad=True)
    given = mg.tensor([1.0, 1.0])
    c.backward(given)  # a leaf root: its gradient is the caller's tensor
    c.grad.add_(1.0)
    assert given.tolist() == [1.0, 1.0]
    d = mg.tensor([1.0, 2.0], requires_grad=True)
    kept = []
    d.register_hook(lambda g: kept.append(g))
    (d * 2.0).sum().backward()
    d.grad.zero_()
    assert kept[0].tolist() == [2.0, 2.0]


def test_reading_a_non_leafs_grad_warns_as_torch_unless_it_retains_it():
    import warnings

    import torch

    for lib in (torch, mg):
        x = lib.tensor([1.0], requires_grad=True)
        y = x * 2.0
        (y * 3.0).sum().backward()
        with pytest.warns(UserWarning, match="not a leaf Tensor"):
            assert y.grad is None
        z = x * 2.0
        z.retain_grad()
        (z * 3.0).sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert z.grad.tolist() == [3.0] and x.grad is not None, lib.__name__
