"""Higher-order gradients against PyTorch: double and triple backward of every op, in float64.

For each op of tests/test_ops.py (and the fused Linear and cross-entropy) both libraries compute
the first gradients with create_graph=True, then the gradient of <first, v> (the second
derivatives applied to a random v), then the gradient of <second, w> (the third). Every level
must agree with torch.autograd.grad to a relative error under 1e-10. gradgradcheck then checks
the second derivatives against finite differences, with no torch involved.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.nn.functional as F
from tests.conftest import assert_close
from tests.test_ops import ELEMENTWISE, INDEX, MATMUL, REDUCE, SHAPE, UNARY, case

FUSED = [
    case("linear", [(4, 3), (2, 3), (2,)], lambda x, w, b: torch.nn.functional.linear(x, w, b),
         lambda x, w, b: F.linear(x, w, b)),
    case("linear-no-bias", [(4, 3), (2, 3)], lambda x, w: torch.nn.functional.linear(x, w),
         lambda x, w: F.linear(x, w)),
    case("linear-relu-chain", [(4, 3), (5, 3), (2, 5)],
         lambda x, w, v: torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(x, w)), v)
         .tanh(),
         lambda x, w, v: F.linear(F.linear(x, w).relu(), v).tanh()),
    case("linear-relu-fused", [(4, 3), (5, 3), (5,)],
         lambda x, w, b: torch.relu(torch.nn.functional.linear(x, w, b)),
         lambda x, w, b: F.linear_relu(x, w, b)),
    case("cross-entropy", [(5, 4)],
         lambda x: torch.nn.functional.cross_entropy(x, torch.tensor([0, 3, 1, 1, 2])),
         lambda x: F.cross_entropy(x, mg.tensor([0, 3, 1, 1, 2]))),
    case("cross-entropy-sum", [(5, 4)],
         lambda x: torch.nn.functional.cross_entropy(x, torch.tensor([0, 3, 1, 1, 2]),
                                                     reduction="sum"),
         lambda x: F.cross_entropy(x, mg.tensor([0, 3, 1, 1, 2]), reduction="sum")),
    case("clamp", [(3, 4)], lambda x: (x * x).clamp(-1.0, 1.5)),
    case("where", [(3, 4), (3, 4)], lambda x, y: torch.where(x > 0, x * y, y.exp()),
         lambda x, y: (x * y).where(x > 0, y.exp())),
    case("clone-expand", [(3, 1)], lambda x: (x.clone() * x).expand(3, 4)),
    case("cat-stack", [(2, 3), (1, 3)], lambda x, y: torch.cat([x, y * x[:1]]).sum(0) * x,
         lambda x, y: mg.cat([x, y * x[:1]]).sum(0) * x),
]

CASES = ELEMENTWISE + MATMUL + REDUCE + UNARY + SHAPE + INDEX + FUSED


def _grads(lib, output, inputs, weights, create_graph=True):
    """d<output, weights>/d inputs, with zeros where an input is unused (None)."""
    total = (output * weights).sum()
    if not total.requires_grad:
        return [lib.zeros_like(x) for x in inputs]
    grads = lib.autograd.grad(total, inputs, create_graph=create_graph, allow_unused=True)
    return [lib.zeros_like(x) if g is None else g for g, x in zip(grads, inputs, strict=True)]


def _orders(lib, fn, arrays, vectors):
    """The output, then the first, second and third derivatives applied to the vectors."""
    make = (lambda a: torch.tensor(a, requires_grad=True)) if lib is torch else (
        lambda a: mg.tensor(a, requires_grad=True))
    inputs = [make(a) for a in arrays]
    output = fn(*inputs)
    levels = [[output]]
    weight = lib.tensor(vectors[0])
    current = _grads(lib, output, inputs, weight)
    levels.append(current)
    for order in (1, 2):
        vs = [lib.tensor(v) for v in vectors[order]]
        total = sum((g * v).sum() for g, v in zip(current, vs, strict=True))
        current = _grads(lib, total, inputs, lib.tensor(1.0), create_graph=order == 1)
        levels.append(current)
    return levels


@pytest.mark.parametrize("shapes, torch_fn, mg_fn, low, high", CASES)
def test_second_and_third_derivatives_match_torch(shapes, torch_fn, mg_fn, low, high):
    rng = np.random.default_rng(3)
    arrays = [rng.uniform(low, high, size=s).astype(np.float64) for s in shapes]
    with torch.no_grad():
        out_shape = tuple(torch_fn(*[torch.tensor(a) for a in arrays]).shape)
    vectors = [rng.standard_normal(out_shape)] + [
        [rng.standard_normal(s) for s in shapes] for _ in range(2)
    ]
    expected = _orders(torch, torch_fn, arrays, vectors)
    actual = _orders(mg, mg_fn or torch_fn, arrays, vectors)
    for order, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
        for number, (m, t) in enumerate(zip(mine, theirs, strict=True)):
            assert_close(m, t, np.float64, f"order {order}, input {number}")


GRADGRAD = [c for c in CASES if c.id not in {"bool-mask", "max", "max-0d", "sigmoid-wide"}]


@pytest.mark.parametrize("shapes, torch_fn, mg_fn, low, high", GRADGRAD)
def test_gradgradcheck_passes_on_every_op(shapes, torch_fn, mg_fn, low, high):
    rng = np.random.default_rng(4)
    inputs = [mg.tensor(rng.uniform(low, high, size=s), dtype=mg.float64, requires_grad=True)
              for s in shapes]
    assert mg.gradgradcheck(mg_fn or torch_fn, inputs, atol=1e-5, rtol=1e-4)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class WrongSecond(mg.Function):
        """z = x**3 whose backward is 3 x**2 computed from a constant: second derivative 0."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x.array.copy())  # a constant: the slope's slope is lost
            return x.array**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    x = mg.tensor([0.5, -1.0], dtype=mg.float64, requires_grad=True)
    assert mg.gradcheck(WrongSecond.apply, [x])
    with pytest.raises(RuntimeError, match="gradcheck: gradient of input 0"):
        mg.gradgradcheck(WrongSecond.apply, [x])


def test_triple_backward_through_backward_create_graph():
    x = mg.tensor([1.5, -0.5], dtype=mg.float64, requires_grad=True)
    tx = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)
    (x.exp() * x * x).sum().backward(create_graph=True)
    (tx.exp() * tx * tx).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None
    assert_close(x.grad, tx.grad, np.float64, "first")
    (g2,) = mg.autograd.grad(x.grad.sum(), x, create_graph=True)
    (t2,) = torch.autograd.grad(tx.grad.sum(), tx, create_graph=True)
    assert_close(g2, t2, np.float64, "second")
    (g3,) = mg.autograd.grad(g2.sum(), x)
    (t3,) = torch.autograd.grad(t2.sum(), tx)
    assert_close(g3, t3, np.float64, "third")


def _mlp_params(rng):
    shapes = [(128, 784), (128,), (64, 128), (64,), (10, 64), (10,)]
    return [rng.standard_normal(s) * 0.05 for s in shapes]


def _mlp_loss(lib, functional, x, y):
    def loss(w1, b1, w2, b2, w3, b3):
        h = functional.linear(x, w1, b1).relu()
        h = functional.linear(h, w2, b2).relu()
        return functional.cross_entropy(functional.linear(h, w3, b3), y)

    return loss


def test_hessian_vector_product_of_the_tutorial_mlp_matches_torch():
    rng = np.random.default_rng(5)
    params = _mlp_params(rng)
    vectors = [rng.standard_normal(p.shape) for p in params]
    images = rng.standard_normal((8, 784))
    labels = rng.integers(0, 10, size=8)

    t_loss = _mlp_loss(torch, torch.nn.functional, torch.tensor(images), torch.tensor(labels))
    t_value, t_hvp = torch.autograd.functional.hvp(
        t_loss, tuple(torch.tensor(p) for p in params), tuple(torch.tensor(v) for v in vectors)
    )
    m_loss = _mlp_loss(mg, F, mg.tensor(images), mg.tensor(labels))
    m_value, m_hvp = mg.autograd.functional.hvp(
        m_loss, tuple(mg.tensor(p) for p in params), tuple(mg.tensor(v) for v in vectors)
    )
    assert_close(m_value, t_value, np.float64, "loss")
    for number, (m, t) in enumerate(zip(m_hvp, t_hvp, strict=True)):
        assert_close(m, t, np.float64, f"Hv for parameter {number}")


def test_jacobian_and_hessian_match_torch():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3,))
    b = rng.standard_normal((2, 3))

    def f(lib):
        return lambda x, w: (w @ x).tanh() * x.sum()

    tj = torch.autograd.functional.jacobian(f(torch), (torch.tensor(a), torch.tensor(b)))
    mj = mg.autograd.functional.jacobian(f(mg), (mg.tensor(a), mg.tensor(b)))
    for m, t in zip(mj, tj, strict=True):
        assert_close(m, t, np.float64, "jacobian")

    def g(x):
        return (x.exp() * x).sum() * x.sum()

    assert_close(mg.autograd.functional.hessian(g, mg.tensor(a)),
                 torch.autograd.functional.hessian(g, torch.tensor(a)), np.float64, "hessian")
    _, mv = mg.autograd.functional.vjp(g, mg.tensor(a))
    _, tv = torch.autograd.functional.vjp(g, torch.tensor(a))
    assert_close(mv, tv, np.float64, "vjp")


def test_newtons_method_with_second_derivatives_from_the_engine():
    x = mg.tensor(2.0, dtype=mg.float64, requires_grad=True)
    for _ in range(8):  # minimise f(x) = x**4 - 3x**2 + x, starting on the right-hand slope
        f = x**4 - 3 * x**2 + x
        (slope,) = mg.autograd.grad(f, x, create_graph=True)
        (curvature,) = mg.autograd.grad(slope, x)
        with mg.no_grad():
            x -= slope / curvature
    assert abs(4 * x.item() ** 3 - 6 * x.item() + 1) < 1e-12  # f'(x) = 0 at the minimum


def test_gradient_penalty_matches_torch():
    rng = np.random.default_rng(7)
    w, xs = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    results = []
    for lib in (mg, torch):
        weight = lib.tensor(w, requires_grad=True)
        x = lib.tensor(xs, requires_grad=True)
        out = (x @ weight.T).tanh().sum()
        (gx,) = lib.autograd.grad(out, x, create_graph=True)
        penalty = (gx * gx).sum()
        penalty.backward()
        results.append(weight.grad)
    assert_close(results[0], results[1], np.float64, "penalty gradient")


def test_create_graph_records_the_backward_pass_on_the_tape():
    x = mg.tensor([1.0, 2.0], dtype=mg.float64, requires_grad=True)
    (g,) = mg.autograd.grad((x * x.exp()).sum(), x, create_graph=True)
    names = [node.name() for node in mg.autograd.tape(g)]
    assert "MulBackward" in names and "ExpBackward" in names, names
