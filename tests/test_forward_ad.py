"""Forward-mode AD (autograd.forward_ad): each op's tangent against torch.autograd.forward_ad and
a central finite difference in float64, forward-over-reverse Hessian-vector products against
reverse-over-reverse, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
import minigrad.autograd.forward_ad as fw
from minigrad.engine.function import Op

torch = pytest.importorskip("torch")
tfw = torch.autograd.forward_ad

TARGET = np.array([0, 2, 1])
CASES = [  # name, function of either library's tensors (lib given), input shapes
    ("add broadcast", lambda lib, a, b: a + b, [(3, 4), (4,)]),
    ("sub and number", lambda lib, a, b: a - b * 2 + 1, [(3, 4), (3, 4)]),
    ("mul broadcast", lambda lib, a, b: a * b + 3, [(3, 4), (1, 4)]),
    ("div", lambda lib, a, b: a / (b * b + 1), [(3, 4), (3, 4)]),
    ("pow number", lambda lib, a: (a * a + 1) ** 1.5, [(5,)]),
    ("pow tensor", lambda lib, a, b: (a * a + 1) ** b, [(5,), (5,)]),
    ("reciprocal", lambda lib, a: (a * a + 1).reciprocal(), [(5,)]),
    ("exp log", lambda lib, a: (a.exp() + 1).log(), [(5,)]),
    ("sqrt", lambda lib, a: (a * a + 1).sqrt(), [(5,)]),
    ("sin cos", lambda lib, a: a.sin() * a.cos(), [(5,)]),
    ("abs neg", lambda lib, a: -a.abs(), [(5,)]),
    ("tanh sigmoid", lambda lib, a: a.tanh() + a.sigmoid(), [(5,)]),
    ("relu", lambda lib, a: a.relu(), [(6,)]),
    ("matmul", lambda lib, a, b: a @ b, [(3, 4), (4, 2)]),
    ("linear", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), [(3, 4), (2, 4), (2,)]),
    ("sum mean", lambda lib, a: a.sum(0) + a.mean(1).sum(), [(3, 4)]),
    ("views", lambda lib, a: a.t().reshape(2, 6)[1:, ::2].permute(1, 0), [(3, 4)]),
    ("log_softmax", lambda lib, a: lib.nn.functional.log_softmax(a, 1), [(3, 4)]),
    ("softmax", lambda lib, a: lib.nn.functional.softmax(a, 1), [(3, 4)]),
    ("where", lambda lib, a, b: lib.where(a > 0, a, b), [(3, 4), (3, 4)]),
    ("cat", lambda lib, a, b: lib.cat([a, b], 0), [(3, 4), (2, 4)]),
    ("cross_entropy", lambda lib, a: lib.nn.functional.cross_entropy(a, lib.tensor(TARGET)),
     [(3, 4)]),
    ("maximum", lambda lib, a, b: lib.maximum(a, b), [(3, 4), (4,)]),
    ("minimum", lambda lib, a, b: lib.minimum(a, b), [(3, 4), (3, 4)]),
    ("clamp", lambda lib, a: a.clamp(-0.5, 0.5), [(3, 4)]),
    ("max", lambda lib, a: a.max(), [(3, 4)]),
    ("amax amin", lambda lib, a: a.amax(1) + a.amin(1), [(3, 4)]),
    ("max along dim", lambda lib, a: a.max(1)[0], [(3, 4)]),
    ("softplus", lambda lib, a: lib.nn.functional.softplus(a, beta=2.0), [(3, 4)]),
    ("mse_loss", lambda lib, a, b: lib.nn.functional.mse_loss(a, b), [(3, 4), (3, 4)]),
    ("norm", lambda lib, a: a.norm() + a.norm(dim=1).sum(), [(3, 4)]),
    ("var std", lambda lib, a: a.var(0, keepdim=True).sum() + a.std(1), [(3, 4)]),
    ("nll_loss", lambda lib, a: lib.nn.functional.nll_loss(a, lib.tensor(TARGET)), [(3, 4)]),
    ("advanced index", lambda lib, a: a[lib.tensor([0, 2, 2])], [(3, 4)]),
    ("setitem", lambda lib, a, b: _written(a, lambda c: c.__setitem__(1, b[0])), [(3, 4), (3, 4)]),
    ("setitem number", lambda lib, a: _written(a, lambda c: c.__setitem__((slice(None), 0), 5.0)),
     [(3, 4)]),
    ("masked setitem", lambda lib, a: _written(a, lambda c: c.__setitem__(a < 0, 0.0)), [(3, 4)]),
    ("copy_", lambda lib, a, b: _written(a, lambda c: c.copy_(b)), [(3, 4), (4,)]),
    ("fill_", lambda lib, a: _written(a, lambda c: c.fill_(2.0)), [(3, 4)]),
    ("mul_", lambda lib, a, b: _written(a, lambda c: c.mul_(b)), [(3, 4), (3, 4)]),
    ("bce with logits", lambda lib, a, b: lib.nn.functional.binary_cross_entropy_with_logits(
        a, b.sigmoid(), pos_weight=lib.tensor([2.0, 1.0, 0.5, 3.0], dtype=lib.float64)),
     [(3, 4), (3, 4)]),
    ("bce none", lambda lib, a, b: lib.nn.functional.binary_cross_entropy_with_logits(
        a, b.sigmoid(), reduction="none"), [(3, 4), (3, 4)]),
    ("clamp by tensors", lambda lib, a, b, c: lib.clamp(a, b - 1, c + 1), [(3, 4), (3, 4), (4,)]),
]


def _written(a, write):
    """A copy of a, changed in place by write(copy): its tangent follows the write."""
    c = a * 1
    write(c)
    return c


def jvp_of(lib, module, fn, primals, tangents):
    with module.dual_level():
        duals = [module.make_dual(lib.tensor(p, dtype=lib.float64),
                                  lib.tensor(t, dtype=lib.float64))
                 for p, t in zip(primals, tangents, strict=True)]
        value, tangent = module.unpack_dual(fn(lib, *duals))
        return value.detach().numpy(), tangent.detach().numpy()


@pytest.mark.parametrize(("name", "fn", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_each_ops_tangent_matches_torch_and_finite_differences(name, fn, shapes):
    rng = np.random.default_rng(len(name))
    primals = [rng.standard_normal(s) for s in shapes]
    tangents = [rng.standard_normal(s) for s in shapes]
    value, tangent = jvp_of(mg, fw, fn, primals, tangents)
    expected_value, expected_tangent = jvp_of(torch, tfw, fn, primals, tangents)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tangent, expected_tangent, rtol=1e-10, atol=1e-12)
    eps = 1e-6  # the directional derivative, measured: (f(x + eps t) - f(x - eps t)) / 2 eps

    def f(step):
        with mg.no_grad():
            return fn(mg, *[mg.tensor(p + step * t) for p, t in
                            zip(primals, tangents, strict=True)]).numpy()

    np.testing.assert_allclose(tangent, (f(eps) - f(-eps)) / (2 * eps), rtol=1e-6, atol=1e-7)


def test_forward_over_reverse_gives_the_hessian_vector_product_of_reverse_over_reverse():
    """The tutorial's kind of network, cross-entropy: the tangent of the gradient is H v."""
    rng = np.random.default_rng(0)
    mg.manual_seed(0)
    net = mg.nn.Sequential(mg.nn.Linear(6, 5), mg.nn.ReLU(), mg.nn.Linear(5, 3)).double()
    x, y = mg.tensor(rng.standard_normal((4, 6))), mg.tensor([0, 2, 1, 1])
    params = [p.detach() for p in net.parameters()]
    vs = [mg.tensor(rng.standard_normal(p.shape)) for p in params]

    def loss(ws):
        hidden = mg.nn.functional.linear(x, ws[0], ws[1]).relu()
        return mg.nn.functional.cross_entropy(mg.nn.functional.linear(hidden, ws[2], ws[3]), y)

    ws = [p.clone().requires_grad_() for p in params]
    grads = mg.autograd.grad(loss(ws), ws, create_graph=True)
    reverse_over_reverse = mg.autograd.grad(grads, ws, grad_outputs=vs)
    with fw.dual_level():
        duals = [fw.make_dual(p.clone().requires_grad_(), v) for p, v in
                 zip(params, vs, strict=True)]
        forward_over_reverse = [fw.unpack_dual(g).tangent
                                for g in mg.autograd.grad(loss(duals), duals)]
    for a, b in zip(forward_over_reverse, reverse_over_reverse, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


def test_dual_levels_and_their_errors():
    x = mg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="no level exists"):
        fw.make_dual(x, mg.ones(2))
    with fw.dual_level():
        with pytest.raises(RuntimeError, match="different size"):
            fw.make_dual(x, mg.ones(3))
        dual = fw.make_dual(x, mg.tensor([1.0, 0.5]))
        assert fw.unpack_dual(x).tangent is None  # the primal itself carries none
        y = dual * dual
        assert fw.unpack_dual(y).tangent.tolist() == [2.0, 2.0]
        with pytest.raises(RuntimeError, match="Nested forward mode"):
            fw.enter_dual_level()
        with pytest.raises(NotImplementedError, match="no forward derivative"):
            _NoTangent.apply(dual)
    assert fw.unpack_dual(y).tangent is None  # tangents end with their level


def custom_function_tangent(lib, module):
    class SinTimes(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, k):
            ctx.save_for_forward(x, y)
            ctx.k = k
            return x.sin() * y * k

        @staticmethod
        def jvp(ctx, x_t, y_t, k_t):
            assert k_t is None  # a number has no tangent
            x, y = ctx.saved_tensors
            return (x.cos() * y * x_t + x.sin() * y_t) * ctx.k

        @staticmethod
        def backward(ctx, grad):
            return None, None, None

    x, y = lib.tensor([1.0, 2.0], dtype=lib.float64), lib.tensor([3.0, 4.0], dtype=lib.float64)
    with module.dual_level():
        out = SinTimes.apply(module.make_dual(x, lib.ones(2, dtype=lib.float64)), y, 2.0)
        return module.unpack_dual(out).tangent.numpy()


def test_a_custom_functions_jvp_with_save_for_forward_as_in_pytorch():
    np.testing.assert_allclose(custom_function_tangent(mg, fw),
                               custom_function_tangent(torch, tfw), rtol=1e-12)

    class Twice(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    with fw.dual_level(), pytest.raises(NotImplementedError, match="must implement the jvp"):
        Twice.apply(fw.make_dual(mg.ones(2), mg.ones(2)))


class _NoTangent(Op):
    """z = 2 x: an op with a backward and no tangent formula"""

    @staticmethod
    def forward(ctx, x):
        return x.array * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


def test_every_built_in_op_has_a_forward_derivative():
    """A new op in minigrad/ops joins forward mode: linear_in_tensors, or a tangent formula."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    missing = sorted({op.__name__ for op in subclasses(Op) if op.__module__.startswith(
        "minigrad.ops") and not hasattr(op, "tangent") and not getattr(op, "linear_in_tensors",
                                                                       False)})
    assert not missing, f"ops without a forward derivative: {missing}"


@pytest.mark.parametrize("case", ["view exp_", "view mul_ seen by a sibling view", "fill_",
                                  "the tangent given to make_dual", "view setitem"])
def test_an_in_place_op_changes_the_tangent_in_place_as_torch(case):
    """PyTorch writes an in-place op's tangent into the tensor's tangent, so the tangents of its
    base and of its other views (views of one another) change with it."""

    def run(lib, fw):
        given = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64)
        with fw.dual_level():
            if case == "the tangent given to make_dual":
                x = fw.make_dual(lib.tensor([0.5, 1.5, -2.0], dtype=lib.float64), given)
                x.mul_(2.0)
                return given.tolist(), fw.unpack_dual(x).tangent.tolist()
            y = fw.make_dual(lib.tensor([0.5, 1.5, -2.0], dtype=lib.float64), given) * 1.0
            view, sibling = y[:2], y[1:]
            if case == "view exp_":
                view.exp_()
            elif case == "view mul_ seen by a sibling view":
                view.mul_(3.0)
            elif case == "fill_":
                y.fill_(1.0)
            else:
                view[1] = fw.make_dual(lib.tensor(4.0, dtype=lib.float64),
                                       lib.tensor(-1.0, dtype=lib.float64))
            return (fw.unpack_dual(y).tangent.tolist(), fw.unpack_dual(sibling).tangent.tolist(),
                    fw.unpack_dual(view).tangent.tolist())

    mine, theirs = run(mg, fw), run(torch, tfw)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
