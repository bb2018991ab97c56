"""autograd.functional's jvp, vhp, hvp, vjp, jacobian and hessian against PyTorch, in float64.

Every test runs the same Python function in minigrad and in torch and compares: the values (the
products and matrices, tuples included), the second derivatives of a loss built from a result
taken with create_graph=True, and the text of the errors for bad arguments and in strict mode.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import minigrad as mg
from tests.conftest import assert_close

RNG = np.random.default_rng(2024)
X = RNG.standard_normal(3)
Y = RNG.standard_normal(3)
W1 = RNG.standard_normal((3, 4))
W2 = RNG.standard_normal((4, 2))
M = RNG.standard_normal((2, 3))


def elementwise(x):
    return x.sin() * x ** 2


def mlp(x, w1, w2):
    return (x @ w1).tanh() @ w2


def two_outputs(x, y):
    return x * y.exp(), (x ** 2).sum() + (y * x).sum()


def scalar(x):
    return (x.exp() * x).sum() * x.sum()


def mlp_loss(x, w1, w2):
    return (((x @ w1).tanh() @ w2) ** 2).sum()


def pair_loss(x, y):
    return (x.sin() * y ** 3).sum() + (x * y).sum() ** 2


# (name, function, input arrays, output shapes): the functions every value test runs
FUNCTIONS = {
    "elementwise": (elementwise, (X,)),
    "mlp": (mlp, (X, W1, W2)),
    "two_outputs": (two_outputs, (X, Y)),
}
SCALAR_FUNCTIONS = {
    "scalar": (scalar, (X,)),
    "mlp_loss": (mlp_loss, (X, W1, W2)),
    "pair_loss": (pair_loss, (X, Y)),
}


def tensors(lib, arrays, single: bool, requires_grad: bool = False):
    made = tuple(lib.tensor(a, requires_grad=requires_grad) for a in arrays)
    return made[0] if single else made


def output_arrays(function, arrays):
    """Random cotangents shaped like function's outputs (computed once, in torch)."""
    out = function(*(torch.tensor(a) for a in arrays))
    return tuple(RNG.standard_normal(o.shape) for o in (out if isinstance(out, tuple) else (out,)))


def assert_same(m, t, name):
    """Same nesting of tuples, same values, both sides."""
    if isinstance(t, tuple):
        assert isinstance(m, tuple) and len(m) == len(t), f"{name}: {type(m)} != tuple({len(t)})"
        for number, (mi, ti) in enumerate(zip(m, t, strict=True)):
            assert_same(mi, ti, f"{name}[{number}]")
        return
    assert isinstance(m, mg.Tensor), f"{name}: got {type(m).__name__}"
    assert m.requires_grad == t.requires_grad, f"{name}: requires_grad {m.requires_grad}"
    assert_close(m.detach(), t.detach(), np.float64, name)


def both(call):
    """call(lib) for minigrad and for torch."""
    return call(mg), call(torch)


# ---- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("single", [True, False])
def test_jvp_matches_torch(name, single):
    function, arrays = FUNCTIONS[name]
    if single and len(arrays) > 1:
        pytest.skip("one input only")
    vectors = tuple(RNG.standard_normal(a.shape) for a in arrays)
    m, t = both(lambda lib: lib.autograd.functional.jvp(
        function, tensors(lib, arrays, single), tensors(lib, vectors, single)))
    assert_same(m, t, f"jvp {name}")


def test_jvp_without_v_for_a_one_element_input():
    m, t = both(lambda lib: lib.autograd.functional.jvp(
        lambda x: (x.exp(), x * 3.0), lib.tensor([0.7], dtype=lib.float64)))
    assert_same(m, t, "jvp v=None")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_vjp_matches_torch(name):
    function, arrays = FUNCTIONS[name]
    outs = output_arrays(function, arrays)
    single_out = name != "two_outputs"
    m, t = both(lambda lib: lib.autograd.functional.vjp(
        function, tensors(lib, arrays, False), tensors(lib, outs, single_out)))
    assert_same(m, t, f"vjp {name}")


@pytest.mark.parametrize("product", ["vhp", "hvp"])
@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_vhp_and_hvp_match_torch(product, name):
    function, arrays = SCALAR_FUNCTIONS[name]
    single = len(arrays) == 1
    vectors = tuple(RNG.standard_normal(a.shape) for a in arrays)
    m, t = both(lambda lib: getattr(lib.autograd.functional, product)(
        function, tensors(lib, arrays, single), tensors(lib, vectors, single)))
    assert_same(m, t, f"{product} {name}")


@pytest.mark.parametrize("product", ["vhp", "hvp"])
def test_vhp_and_hvp_without_v_for_a_one_element_input(product):
    m, t = both(lambda lib: getattr(lib.autograd.functional, product)(
        lambda x: (x ** 3).sum(), lib.tensor([1.5], dtype=lib.float64)))
    assert_same(m, t, f"{product} v=None")


JACOBIAN_MODES = [
    {},
    {"vectorize": True},
    {"vectorize": True, "strategy": "reverse-mode"},
    {"vectorize": True, "strategy": "forward-mode"},
]


# The reference is torch's default mode: its forward mode answers lists for tuples, fails on
# a vector @ matrix under vmap (the mlp), and marks a Hessian as requiring grad even when nothing
# it came from does. minigrad gives every mode the default's answer.


@pytest.mark.parametrize("mode", JACOBIAN_MODES, ids=str)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_jacobian_in_every_mode_matches_torch(name, mode):
    function, arrays = FUNCTIONS[name]
    single = len(arrays) == 1
    m = mg.autograd.functional.jacobian(function, tensors(mg, arrays, single), **mode)
    t = torch.autograd.functional.jacobian(function, tensors(torch, arrays, single))
    assert_same(m, t, f"jacobian {name}")


def test_forward_mode_jacobian_of_tuples_matches_torchs_forward_mode():
    m, t = both(lambda lib: lib.autograd.functional.jacobian(
        two_outputs, tensors(lib, (X, Y), False), vectorize=True, strategy="forward-mode"))
    assert_same(m, tuple(tuple(row) for row in t), "forward-mode jacobian")


@pytest.mark.parametrize("mode", [{}, {"vectorize": True},
                                  {"vectorize": True, "outer_jacobian_strategy": "forward-mode"}],
                         ids=str)
@pytest.mark.parametrize("name", SCALAR_FUNCTIONS)
def test_hessian_in_every_mode_matches_torch(name, mode):
    function, arrays = SCALAR_FUNCTIONS[name]
    single = len(arrays) == 1
    m = mg.autograd.functional.hessian(function, tensors(mg, arrays, single), **mode)
    t = torch.autograd.functional.hessian(function, tensors(torch, arrays, single))
    assert_same(m, t, f"hessian {name}")


def test_forward_mode_jacobian_stays_differentiable_like_torch():
    grads = []
    for lib in (mg, torch):
        x = lib.tensor(X, requires_grad=True)
        jac = lib.autograd.functional.jacobian(elementwise, x, vectorize=True,
                                               strategy="forward-mode")
        assert jac.requires_grad
        (jac ** 2).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_results_are_detached_without_create_graph():
    x = mg.tensor(X, requires_grad=True)
    out, product = mg.autograd.functional.jvp(elementwise, x, mg.tensor(Y))
    assert not out.requires_grad and not product.requires_grad and x.grad is None


# ---- create_graph=True: second derivatives through the results ---------------------------------


def _loss_through(lib, kind, create_graph=True):
    """A loss built from a functional result whose inputs and v depend on leaves w and s."""
    w = lib.tensor(X, requires_grad=True)
    s = lib.tensor(Y, requires_grad=True)
    x = w * 2.0  # not a leaf: the gradient must flow on to w
    v = s.tanh()  # v with a graph: jvp, vjp, vhp and hvp are differentiable in v too
    functional = lib.autograd.functional
    if kind == "jvp":
        out, result = functional.jvp(two_outputs, (x, w), (v, s), create_graph=create_graph)
        loss = (result[0] ** 2).sum() + result[1] * out[1]
    elif kind == "vjp":
        out, result = functional.vjp(elementwise, x, v, create_graph=create_graph)
        loss = (result ** 2).sum() + (out * result).sum()
    elif kind in ("vhp", "hvp"):
        out, result = getattr(functional, kind)(pair_loss, (x, w), (v, s),
                                                create_graph=create_graph)
        loss = (result[0] * result[1]).sum() + out
    elif kind == "hessian":
        result = functional.hessian(pair_loss, (x, s), create_graph=create_graph)
        loss = sum((h ** 2).sum() for row in result for h in row)
    else:  # jacobian, tuple in and out
        result = functional.jacobian(two_outputs, (x, s), create_graph=create_graph)
        loss = sum((j.sin()).sum() for row in result for j in row)
    loss.backward()
    return w.grad, s.grad


@pytest.mark.parametrize("kind", ["jvp", "vjp", "vhp", "hvp", "hessian", "jacobian"])
def test_create_graph_second_derivatives_match_torch(kind):
    (mw, ms), (tw, ts) = both(lambda lib: _loss_through(lib, kind))
    assert_close(mw, tw, np.float64, f"{kind}: d loss / d w")
    assert_close(ms, ts, np.float64, f"{kind}: d loss / d s")


def test_jvp_twice_gives_the_second_directional_derivative():
    """d/dt of J(x + t u) v at t=0 is the Hessian of f in directions u and v: jvp of jvp."""
    results = []
    for lib in (mg, torch):
        u, v = lib.tensor(Y), lib.tensor(X)

        def directional(x, lib=lib, v=v):
            return lib.autograd.functional.jvp(elementwise, x, v, create_graph=True)[1]

        results.append(lib.autograd.functional.jvp(directional, lib.tensor(X), u)[1])
    assert_close(results[0], results[1], np.float64, "second directional derivative")


# ---- errors -------------------------------------------------------------------------------------


def _normalise(message: str) -> str:
    """torch's wording with minigrad's names: shapes as tuples, minigrad for torch."""
    def as_tuple(match):
        return str(tuple(int(n) for n in match.group(1).split(",") if n.strip()))

    message = re.sub(r"torch\.Size\(\[([^\]]*)\]\)", as_tuple, message)
    return message.replace("torch.autograd", "minigrad.autograd").replace("isonly", "is only")


def _x(lib):
    return lib.tensor(X)


def _xy(lib):
    return lib.tensor(X), lib.tensor(Y)


def _f(lib):
    return lib.autograd.functional


ERRORS = {
    # bad inputs and v
    "jvp list inputs": lambda lib: _f(lib).jvp(elementwise, [_x(lib)], _x(lib)),
    "jvp array in tuple": lambda lib: _f(lib).jvp(elementwise, (_x(lib), X)),
    "jvp v a list": lambda lib: _f(lib).jvp(elementwise, _x(lib), [_x(lib)]),
    "jvp v None": lambda lib: _f(lib).jvp(elementwise, _x(lib)),
    "jvp v None tuple": lambda lib: _f(lib).jvp(two_outputs, _xy(lib)),
    "jvp v wrong shape": lambda lib: _f(lib).jvp(elementwise, _x(lib), lib.tensor([1.0, 2.0])),
    "jvp v wrong shape entry": lambda lib: _f(lib).jvp(
        two_outputs, _xy(lib), (_x(lib), lib.tensor([1.0]))),
    "jvp v too long": lambda lib: _f(lib).jvp(two_outputs, _xy(lib), _xy(lib) + (_x(lib),)),
    "jvp v tuple for one input": lambda lib: _f(lib).jvp(elementwise, _x(lib), _xy(lib)),
    "jvp output a float": lambda lib: _f(lib).jvp(lambda x: 1.0, _x(lib), _x(lib)),
    "jvp output a list": lambda lib: _f(lib).jvp(lambda x: [x * 2], _x(lib), _x(lib)),
    "vjp v None": lambda lib: _f(lib).vjp(elementwise, _x(lib)),
    "vjp v wrong shape": lambda lib: _f(lib).vjp(elementwise, _x(lib), lib.tensor([1.0])),
    "vjp v single for tuple": lambda lib: _f(lib).vjp(two_outputs, _xy(lib), _x(lib)),
    "vhp tuple output": lambda lib: _f(lib).vhp(lambda x: (x.sum(),), _x(lib), _x(lib)),
    "vhp many elements": lambda lib: _f(lib).vhp(elementwise, _x(lib), _x(lib)),
    "vhp v None": lambda lib: _f(lib).vhp(scalar, _x(lib)),
    "hvp tuple output": lambda lib: _f(lib).hvp(lambda x: (x.sum(),), _x(lib), _x(lib)),
    "hvp many elements": lambda lib: _f(lib).hvp(elementwise, _x(lib), _x(lib)),
    "hvp v wrong shape": lambda lib: _f(lib).hvp(scalar, _x(lib), lib.tensor([1.0])),
    "hessian list": lambda lib: _f(lib).hessian(scalar, [_x(lib)]),
    "hessian tuple output": lambda lib: _f(lib).hessian(lambda x: (x.sum(),), _x(lib)),
    "hessian many elements": lambda lib: _f(lib).hessian(elementwise, _x(lib)),
    # vectorize and strategy
    "jacobian bad strategy": lambda lib: _f(lib).jacobian(elementwise, _x(lib), strategy="fwd"),
    "jacobian forward needs vectorize": lambda lib: _f(lib).jacobian(
        elementwise, _x(lib), strategy="forward-mode"),
    "jacobian forward create_graph": lambda lib: _f(lib).jacobian(
        elementwise, _x(lib), create_graph=True, vectorize=True, strategy="forward-mode"),
    "jacobian forward strict": lambda lib: _f(lib).jacobian(
        elementwise, _x(lib), strict=True, vectorize=True, strategy="forward-mode"),
    "jacobian forward list": lambda lib: _f(lib).jacobian(
        elementwise, [_x(lib)], strategy="forward-mode"),
    "jacobian vectorize strict": lambda lib: _f(lib).jacobian(
        elementwise, _x(lib), strict=True, vectorize=True),
    "hessian bad strategy": lambda lib: _f(lib).hessian(
        scalar, _x(lib), outer_jacobian_strategy="fwd"),
    "hessian forward needs vectorize": lambda lib: _f(lib).hessian(
        scalar, _x(lib), outer_jacobian_strategy="forward-mode"),
    "hessian forward create_graph": lambda lib: _f(lib).hessian(
        scalar, _x(lib), create_graph=True, vectorize=True,
        outer_jacobian_strategy="forward-mode"),
    "hessian vectorize strict": lambda lib: _f(lib).hessian(
        scalar, _x(lib), strict=True, vectorize=True),
}


def _y_ignored(x, y):
    return x * 2.0, (x ** 2).sum()


# each takes strict=, so the same call can be made without it
STRICT_ERRORS = {
    "jvp constant output": lambda lib, strict=True: _f(lib).jvp(
        lambda x: lib.ones(3, dtype=lib.float64), _x(lib), _x(lib), strict=strict),
    "jvp independent input": lambda lib, strict=True: _f(lib).jvp(
        lambda x, y: x * 2.0, _xy(lib), _xy(lib), strict=strict),
    "jvp linear create_graph": lambda lib, strict=True: _f(lib).jvp(
        lambda x: x * 2.0, _x(lib), _x(lib), create_graph=True, strict=strict),
    "vjp constant output": lambda lib, strict=True: _f(lib).vjp(
        lambda x: lib.ones(3, dtype=lib.float64), _x(lib), _x(lib), strict=strict),
    "vjp independent input": lambda lib, strict=True: _f(lib).vjp(
        lambda x, y: x * 2.0, _xy(lib), _x(lib), strict=strict),
    "vjp linear create_graph": lambda lib, strict=True: _f(lib).vjp(
        lambda x: x * 2.0, _x(lib), _x(lib), create_graph=True, strict=strict),
    "jacobian independent input": lambda lib, strict=True: _f(lib).jacobian(
        _y_ignored, _xy(lib), strict=strict),
    "jacobian constant output": lambda lib, strict=True: _f(lib).jacobian(
        lambda x: lib.ones(2, dtype=lib.float64), _x(lib), strict=strict),
    "jacobian linear create_graph": lambda lib, strict=True: _f(lib).jacobian(
        lambda x: x * 2.0, _x(lib), create_graph=True, strict=strict),
    "hessian linear": lambda lib, strict=True: _f(lib).hessian(
        lambda x: x.sum() * 2.0, _x(lib), strict=strict),
    "hessian separable": lambda lib, strict=True: _f(lib).hessian(
        lambda x, y: (x ** 3).sum() + (y ** 3).sum(), _xy(lib), strict=strict),
    "hessian independent input": lambda lib, strict=True: _f(lib).hessian(
        lambda x, y: (x ** 3).sum(), _xy(lib), strict=strict),
    "hessian x*x create_graph": lambda lib, strict=True: _f(lib).hessian(
        lambda x: (x * x).sum(), _x(lib), create_graph=True, strict=strict),
    "vhp linear": lambda lib, strict=True: _f(lib).vhp(
        lambda x: x.sum() * 2.0, _x(lib), _x(lib), strict=strict),
    "vhp independent input": lambda lib, strict=True: _f(lib).vhp(
        lambda x, y: (x ** 3).sum(), _xy(lib), _xy(lib), strict=strict),
    "vhp x*x create_graph": lambda lib, strict=True: _f(lib).vhp(
        lambda x: (x * x).sum(), _x(lib), _x(lib), create_graph=True, strict=strict),
    "hvp linear": lambda lib, strict=True: _f(lib).hvp(
        lambda x: x.sum() * 2.0, _x(lib), _x(lib), strict=strict),
    "hvp constant output": lambda lib, strict=True: _f(lib).hvp(
        lambda x: lib.ones((), dtype=lib.float64), _x(lib), _x(lib), strict=strict),
    "hvp x*x create_graph": lambda lib, strict=True: _f(lib).hvp(
        lambda x: (x * x).sum(), _x(lib), _x(lib), create_graph=True, strict=strict),
}


@pytest.mark.parametrize("case", list(ERRORS) + list(STRICT_ERRORS))
def test_errors_match_torch(case):
    call = ERRORS.get(case) or STRICT_ERRORS[case]
    with pytest.raises(Exception) as torch_error:
        call(torch)
    with pytest.raises(torch_error.type) as minigrad_error:
        call(mg)
    assert str(minigrad_error.value) == _normalise(str(torch_error.value))


@pytest.mark.parametrize("case", STRICT_ERRORS)
def test_without_strict_the_same_calls_give_torchs_zeros(case):
    m, t = both(lambda lib: STRICT_ERRORS[case](lib, strict=False))
    assert_same(m, t, case)
