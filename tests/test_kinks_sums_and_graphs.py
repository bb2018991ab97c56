"""Results that were silently wrong: slopes at kinks, float32 sums, graphs kept or lost.

Each test here failed before its fix (issue 20, "Silent wrong results and leaks"); each compares
with PyTorch, the reference.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
import minigrad.nn.functional as MF

NAN = float("nan")
# Every kink of the ops below sits at one of these: 0, the clamp bounds 0 and 1, ties, and NaN.
POINTS = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, NAN]
TIES = [[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]


def _value_and_grads(lib, fn, *values):
    """fn(lib, *tensors), and the gradients of its sum with respect to each tensor (float64)."""
    tensors = [lib.tensor(v, dtype=lib.float64, requires_grad=True) for v in values]
    out = fn(lib, *tensors)
    out.sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in tensors]


def _check_against_torch(fn, *values):
    ours = _value_and_grads(mg, fn, *values)
    theirs = _value_and_grads(torch, fn, *values)
    for name, a, b in zip(["value"] + [f"grad {i}" for i in range(len(values))], ours, theirs,
                          strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, equal_nan=True, err_msg=name)


ONE_INPUT = {
    "relu": lambda m, x: x.relu(),
    "clamp(0, 1)": lambda m, x: x.clamp(0, 1),
    "clamp(min=0)": lambda m, x: x.clamp(min=0),
    "clamp(max=1)": lambda m, x: x.clamp(max=1),
    "clamp(1, 0)": lambda m, x: x.clamp(1, 0),
    "clamp(.5, .5)": lambda m, x: x.clamp(0.5, 0.5),
    "clip(0, 1)": lambda m, x: x.clip(0, 1),
    "abs": lambda m, x: x.abs(),
    "sign * x": lambda m, x: x.sign() * x,
    "max()": lambda m, x: x.max(),
    "min()": lambda m, x: x.min(),
    "amax()": lambda m, x: x.amax(),
    "amin()": lambda m, x: x.amin(),
    "norm(1)": lambda m, x: x.norm(p=1),
    "sqrt(x * x)": lambda m, x: (x * x).sqrt(),
    "|x| ** 1.5": lambda m, x: x.abs() ** 1.5,
    "softplus": lambda m, x: (MF if m is mg else TF).softplus(x),
    "l1_loss": lambda m, x: (MF if m is mg else TF).l1_loss(x, x.detach() * 0),
}


@pytest.mark.parametrize("name", ONE_INPUT)
def test_slopes_at_kinks_match_torch(name):
    """clamp(0, 1) at [-1, 0, .5, 1, 2] has slopes [0, 0, 1, 0, 0] in torch (it was 1 at the
    bounds), relu passes a NaN's gradient, softplus has slope 1/2 at 0, sign(NaN) is 0."""
    fn = ONE_INPUT[name]
    _check_against_torch(fn, POINTS)
    _check_against_torch(fn, TIES)


def test_norm_inf_ties_share_the_gradient_like_torch():
    _check_against_torch(lambda m, x: x.norm(p=float("inf")), [1.0, -3.0, 3.0])
    _check_against_torch(lambda m, x: x.norm(p=float("-inf"), dim=1), [[1.0, -3.0, 3.0]])


TWO_INPUTS = {
    "maximum": lambda m, x, y: m.maximum(x, y),
    "minimum": lambda m, x, y: m.minimum(x, y),
    "clamp(x, y, y + 1)": lambda m, x, y: m.clamp(x, y, y + 1),
    "clamp(x, min=y)": lambda m, x, y: m.clamp(x, min=y),
    "clamp(x, max=y)": lambda m, x, y: m.clamp(x, max=y),
    "clamp(x, y, y - 1)": lambda m, x, y: m.clamp(x, y, y - 1),
    "clamp(x, y, y)": lambda m, x, y: m.clamp(x, y, y),
}
OTHERS = [1.0, -1.0, -0.5, 0.0, 0.7, 1.0, 3.0, 0.0]


@pytest.mark.parametrize("name", TWO_INPUTS)
def test_two_input_kinks_match_torch(name):
    """Ties give each side half the gradient, a NaN gives both sides all of it, as in torch."""
    _check_against_torch(TWO_INPUTS[name], POINTS, OTHERS)


def test_clamp_with_tensor_bounds_matches_torch_everywhere():
    """Bounds that are tensors: every combination of x, lo and hi from {0, 1, 2, NaN}."""
    values = np.array([0.0, 1.0, 2.0, NAN])
    grid = np.stack(np.meshgrid(values, values, values, indexing="ij")).reshape(3, -1)
    x, lo, hi = (list(row) for row in grid)
    _check_against_torch(lambda m, x, lo, hi: m.clamp(x, lo, hi), x, lo, hi)


def test_clamp_with_a_number_and_a_tensor_as_bounds_does_what_torch_does():
    """A 0-d tensor outside the graph beside a number is read as a number (scalar slopes); any
    other tensor beside a number is torch's TypeError."""
    _check_against_torch(lambda m, x: x.clamp(min=m.tensor(0.0, dtype=m.float64), max=1.0),
                         POINTS)
    for lib in (mg, torch):
        x = lib.tensor([0.5])
        with pytest.raises(TypeError, match="invalid combination"):
            x.clamp(min=lib.tensor([0.0]), max=1.0)
        with pytest.raises(TypeError, match="invalid combination"):
            x.clamp(lib.tensor(0.0, requires_grad=True), 1.0)


@pytest.mark.parametrize("dim", [1, 0, (0, 1), None, -1])
@pytest.mark.parametrize("which", ["amax", "amin"])
def test_amax_and_amin_share_the_gradient_between_ties(which, dim):
    """[[1,3,3],[2,2,0]].amax(1) gives [[0,.5,.5],[.5,.5,0]] in torch (it was [[0,1,0],[1,0,0]])."""
    _check_against_torch(lambda m, x: getattr(x, which)(dim=dim), TIES)
    _check_against_torch(lambda m, x: getattr(x, which)(dim=dim, keepdim=True) * 2.0, TIES)


def test_amax_of_an_empty_tensor_raises_torchs_errors():
    with pytest.raises(RuntimeError, match="Expected reduction dim to be specified"):
        mg.zeros(0).amax()
    with pytest.raises(IndexError, match="reduction dim 1 to have non-zero size"):
        mg.zeros(2, 0).amax(1)
    assert mg.zeros(2, 0).amax(0).shape == (0,)


@pytest.mark.parametrize("name", ["clamp(0, 1)", "relu", "softplus", "abs"])
def test_second_derivatives_at_and_near_kinks_match_torch(name):
    fn = ONE_INPUT[name]
    values = [-1.0, 0.0, 0.25, 1.0, 2.0]
    results = []
    for lib in (mg, torch):
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad((fn(lib, x) ** 2).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        results.append((g.detach().numpy(), gg.numpy()))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ---- float32 sums: a cascade on every axis, as PyTorch --------------------------------------


def test_a_long_column_of_ones_sums_exactly():
    """Adding rows one at a time stops at 2**24 = 16,777,216 in float32; torch gives 2e7."""
    total = mg.ones(20_000_000, 2).sum(dim=0)
    np.testing.assert_array_equal(total.numpy(), [2e7, 2e7])
    assert total.dtype == mg.float32


def test_a_long_column_of_halves_averages_to_a_half():
    """Adding 0.5s one at a time stops at 2**23; 20 million of them averaged to 0.419."""
    np.testing.assert_array_equal(mg.full((20_000_000, 2), 0.5).mean(0).numpy(), [0.5, 0.5])


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("layout", ["rows", "transposed", "middle"])
def test_float32_reductions_are_as_accurate_as_torchs(op, layout):
    """Random data, a long reduced axis in three memory layouts: within 4x torch's own error."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((400_000, 16)).astype(np.float32) + 1.0  # a mean far from 0
    if layout == "transposed":
        data, dim = data.T, 1
    elif layout == "middle":
        data, dim = data.reshape(200_000, 2, 16).transpose(1, 0, 2), 1
    else:
        dim = 0
    exact = getattr(data.astype(np.float64), op)(axis=dim)
    ours = getattr(mg.tensor(data), op)(dim).numpy()
    theirs = getattr(torch.from_numpy(np.ascontiguousarray(data)), op)(dim).numpy()
    scale = np.abs(exact).max()
    our_error = np.abs(ours - exact).max() / scale
    torch_error = np.abs(theirs - exact).max() / scale
    assert our_error <= max(4 * torch_error, 1e-7), (our_error, torch_error)


def test_gradients_summed_over_the_batch_are_accurate():
    """Broadcasting's adjoint and Linear's bias gradient sum over the batch axis too."""
    rows = 300_000
    bias = mg.zeros(3, requires_grad=True)
    (mg.zeros(rows, 3) + bias).sum().backward()
    np.testing.assert_array_equal(bias.grad.numpy(), [rows] * 3)
    layer = mg.nn.Linear(2, 3)
    layer(mg.ones(rows, 2) * 1e-3).sum().backward()
    np.testing.assert_allclose(layer.bias.grad.numpy(), [rows] * 3, rtol=1e-6)


# ---- graphs kept where torch keeps them, and freed where torch frees them -------------------


@pytest.mark.parametrize("owner", ["optimizer", "module"])
def test_zero_grad_without_set_to_none_detaches_the_gradient(owner):
    """After backward(create_graph=True), .grad is on a graph; zero_grad(set_to_none=False)
    must cut it (as torch does), or the next step backpropagates into the old graph."""
    model = mg.nn.Linear(3, 1, bias=False)
    w = model.weight
    opt = mg.optim.SGD([w], lr=0.1)
    clear = opt.zero_grad if owner == "optimizer" else model.zero_grad
    for _ in range(3):
        clear(set_to_none=False)
        (w ** 3).sum().backward(create_graph=True)
        mg.autograd.grad(w.grad.sum(), w)  # raised "backward through the graph a second time"
        opt.step()
    clear(set_to_none=False)
    assert w.grad.grad_fn is None and not w.grad.requires_grad
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((1, 3)))


def test_zero_grad_without_set_to_none_frees_the_old_graph():
    """The graph left on .grad was kept alive step after step (11 nodes a step on the tutorial's
    network); after zero_grad nothing of it may survive."""
    w = mg.nn.Parameter(mg.ones(3))
    opt = mg.optim.SGD([w], lr=0.1)
    (w ** 3).sum().backward(create_graph=True)
    node = w.grad.grad_fn
    import weakref

    ref = weakref.ref(node)
    del node
    opt.zero_grad(set_to_none=False)
    gc.collect()
    assert ref() is None


def test_jacobian_with_create_graph_stays_connected_to_its_input():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    jacobian = mg.autograd.functional.jacobian(lambda t: t ** 3, x, create_graph=True)
    jacobian.sum().backward()
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    torch.autograd.functional.jacobian(lambda t: t ** 3, tx, create_graph=True).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())  # [6, 12]; it was None


@pytest.mark.parametrize("name", ["vjp", "hvp", "hessian", "jacobian"])
def test_functional_create_graph_results_train_the_caller(name):
    """A loss built from each function's result reaches the parameters the input depends on."""
    grads = []
    for lib in (mg, torch):
        w = lib.tensor([0.5, -1.5, 2.0], dtype=lib.float64, requires_grad=True)
        x = w * 2.0  # an input that is not a leaf: the gradient must flow on to w
        v = lib.tensor([1.0, 0.5, -1.0], dtype=lib.float64)
        functional = lib.autograd.functional

        def func(t):
            return (t ** 3).sum() if name in ("hvp", "hessian") else t ** 3

        if name == "vjp":
            result = functional.vjp(func, x, v, create_graph=True)[1]
        elif name == "hvp":
            result = functional.hvp(func, x, v, create_graph=True)[1]
        else:
            result = getattr(functional, name)(func, x, create_graph=True)
        (result ** 2).sum().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_functional_without_create_graph_leaves_the_caller_alone():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    jacobian = mg.autograd.functional.jacobian(lambda t: t ** 3, x)
    assert not jacobian.requires_grad and x.grad is None
