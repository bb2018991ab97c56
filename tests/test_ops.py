"""Every differentiable op against PyTorch: forward values and gradients, float64 and float32.

One table row per case: the input shapes, a torch function and (when the spelling differs) a
minigrad function. `check_op` runs both on the same random inputs, compares the outputs, then
sends the same random output gradient back through both and compares every input's gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from tests.conftest import assert_close

DTYPES = [np.float64, np.float32]


def check_op(device, dtype, shapes, torch_fn, mg_fn=None, low=-2.0, high=2.0, seed=0):
    """Compare mg_fn (default: torch_fn) with torch_fn on random inputs: values and gradients."""
    mg_fn = mg_fn or torch_fn
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(rng.uniform(low, high, size=shape), dtype=dtype) for shape in shapes]
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    mg_inputs = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]

    expected, actual = torch_fn(*torch_inputs), mg_fn(*mg_inputs)
    assert isinstance(actual, mg.Tensor)
    assert actual.device == device
    assert actual.dtype == dtype, f"result dtype {actual.dtype}, expected {np.dtype(dtype)}"
    assert_close(actual, expected, dtype, "forward")

    out_grad = np.asarray(rng.standard_normal(tuple(expected.shape)), dtype=dtype)
    expected.backward(torch.tensor(out_grad))
    actual.backward(mg.tensor(out_grad, device=device))
    for i, (m, t) in enumerate(zip(mg_inputs, torch_inputs, strict=True)):
        assert m.grad is not None, f"input {i} got no gradient"
        assert m.grad.dtype == dtype
        assert_close(m.grad, t.grad, dtype, f"gradient of input {i}")


def case(id, shapes, torch_fn, mg_fn=None, low=-2.0, high=2.0):
    return pytest.param(shapes, torch_fn, mg_fn, low, high, id=id)


# Positive inputs where the math needs them (log, sqrt, pow with a tensor exponent, division).
POS = dict(low=0.5, high=2.0)

ELEMENTWISE = [
    case("add", [(3, 4), (3, 4)], lambda x, y: x + y),
    case("add-0d", [(), (3, 4)], lambda x, y: x + y),
    case("add-col-row", [(3, 1), (1, 4)], lambda x, y: x + y),
    case("add-row-matrix", [(4,), (3, 4)], lambda x, y: x + y),
    case("add-scalar", [(3, 4)], lambda x: x + 2.5),
    case("radd-scalar", [(3, 4)], lambda x: 2.5 + x),
    case("add-same-tensor", [(3, 4)], lambda x: x + x),
    case("sub", [(3, 4), (3, 4)], lambda x, y: x - y),
    case("sub-col-row", [(3, 1), (1, 4)], lambda x, y: x - y),
    case("sub-row-matrix", [(4,), (3, 4)], lambda x, y: x - y),
    case("sub-scalar", [(3, 4)], lambda x: x - 1.5),
    case("rsub-scalar", [(3, 4)], lambda x: 1.5 - x),
    case("sub-0d", [(3, 4), ()], lambda x, y: x - y),
    case("mul", [(3, 4), (3, 4)], lambda x, y: x * y),
    case("mul-0d", [(), (3, 4)], lambda x, y: x * y),
    case("mul-col-row", [(3, 1), (1, 4)], lambda x, y: x * y),
    case("mul-row-matrix", [(3, 4), (4,)], lambda x, y: x * y),
    case("mul-scalar", [(3, 4)], lambda x: x * 3.0),
    case("rmul-scalar", [(3, 4)], lambda x: 3 * x),
    case("div", [(3, 4), (3, 4)], lambda x, y: x / y, **POS),
    case("div-col-row", [(3, 1), (1, 4)], lambda x, y: x / y, **POS),
    case("div-row-matrix", [(4,), (3, 4)], lambda x, y: x / y, **POS),
    case("div-0d", [(3, 4), ()], lambda x, y: x / y, **POS),
    case("div-scalar", [(3, 4)], lambda x: x / 4.0),
    case("rdiv-scalar", [(3, 4)], lambda x: 2.0 / x, **POS),
    case("pow-int", [(3, 4)], lambda x: x**2),
    case("pow-float", [(3, 4)], lambda x: x**1.5, **POS),
    case("pow-negative", [(3, 4)], lambda x: x**-0.5, **POS),
    case("pow-tensor", [(3, 4), (3, 4)], lambda x, y: x**y, **POS),
    case("pow-col-row", [(3, 1), (1, 4)], lambda x, y: x**y, **POS),
    case("pow-0d-exponent", [(3, 4), ()], lambda x, y: x**y, **POS),
    case("rpow-scalar", [(3, 4)], lambda x: 2.0**x),
    case("neg", [(3, 4)], lambda x: -x),
    case("neg-0d", [()], lambda x: -x),
    case("exp", [(3, 4)], lambda x: x.exp()),
    case("log", [(3, 4)], lambda x: x.log(), **POS),
    case("sqrt", [(3, 4)], lambda x: x.sqrt(), **POS),
    case("chain", [(3, 4), (4,)], lambda x, y: ((x * y + 1.0) / (y * y + 1.0)).exp() - x),
]

MATMUL = [
    case("matrix-matrix", [(3, 4), (4, 5)], lambda x, y: x @ y),
    case("vector-vector", [(4,), (4,)], lambda x, y: x @ y),
    case("vector-matrix", [(4,), (4, 5)], lambda x, y: x @ y),
    case("matrix-vector", [(3, 4), (4,)], lambda x, y: x @ y),
    case("batched", [(2, 3, 4), (2, 4, 5)], lambda x, y: x @ y),
    case("batched-matrix", [(2, 3, 4), (4, 5)], lambda x, y: x @ y),
    case("matrix-batched", [(3, 4), (2, 4, 5)], lambda x, y: x @ y),
    case("broadcast-batch", [(2, 1, 3, 4), (5, 4, 2)], lambda x, y: x @ y),
    case("vector-batched", [(4,), (2, 4, 5)], lambda x, y: x @ y),
    case("batched-vector", [(2, 3, 4), (4,)], lambda x, y: x @ y),
    case("matmul-method", [(3, 4), (4, 5)], lambda x, y: x.matmul(y)),
]

REDUCE = [
    case("sum", [(3, 4)], lambda x: x.sum()),
    case("sum-dim0", [(3, 4)], lambda x: x.sum(0)),
    case("sum-dim-neg-keepdim", [(2, 3, 4)], lambda x: x.sum(-1, keepdim=True)),
    case("sum-dims", [(2, 3, 4)], lambda x: x.sum((0, 2))),
    case("sum-dims-keepdim", [(2, 3, 4)], lambda x: x.sum((0, -1), keepdim=True)),
    case("sum-keyword", [(2, 3, 4)], lambda x: x.sum(dim=1, keepdim=False)),
    case("sum-0d", [()], lambda x: x.sum()),
    case("mean", [(3, 4)], lambda x: x.mean()),
    case("mean-dim1", [(3, 4)], lambda x: x.mean(1)),
    case("mean-dim-neg-keepdim", [(2, 3, 4)], lambda x: x.mean(-2, keepdim=True)),
    case("mean-dims", [(2, 3, 4)], lambda x: x.mean((0, 1))),
    case("max", [(3, 4)], lambda x: x.max()),
    case("max-0d", [()], lambda x: x.max()),
    case("max-dim-values", [(3, 4)], lambda x: x.max(1).values),
    case("max-dim0-values", [(3, 4)], lambda x: x.max(dim=0)[0]),
    case("max-neg-dim-keepdim", [(2, 3, 4)], lambda x: x.max(-2, keepdim=True).values),
    case("max-vector-dim", [(5,)], lambda x: x.max(0).values),
]

UNARY = [
    case("relu", [(3, 4)], lambda x: x.relu()),
    case("sigmoid", [(3, 4)], lambda x: x.sigmoid()),
    case("sigmoid-wide", [(3, 4)], lambda x: x.sigmoid(), low=-30.0, high=30.0),
    case("tanh", [(3, 4)], lambda x: x.tanh()),
    case("log_softmax", [(3, 4)], lambda x: x.log_softmax(1)),
    case("log_softmax-dim0", [(3, 4)], lambda x: x.log_softmax(0)),
    case("log_softmax-neg-dim", [(2, 3, 4)], lambda x: x.log_softmax(-1)),
    case("log_softmax-large", [(3, 4)], lambda x: x.log_softmax(1), low=50.0, high=90.0),
    case("softmax", [(3, 4)], lambda x: x.softmax(1)),
    case("softmax-dim0", [(3, 4)], lambda x: x.softmax(dim=0)),
    case("softmax-neg-dim", [(2, 3, 4)], lambda x: x.softmax(-2)),
    case("softmax-large", [(3, 4)], lambda x: x.softmax(-1), low=50.0, high=90.0),
]

SHAPE = [
    case("reshape", [(3, 4)], lambda x: x.reshape(2, 6)),
    case("reshape-tuple", [(3, 4)], lambda x: x.reshape((4, 3))),
    case("reshape-minus-one", [(2, 3, 4)], lambda x: x.reshape(-1, 4)),
    case("view", [(3, 4)], lambda x: x.view(12)),
    case("transpose", [(3, 4)], lambda x: x.transpose(0, 1)),
    case("transpose-neg", [(2, 3, 4)], lambda x: x.transpose(-1, 0)),
    case("t", [(3, 4)], lambda x: x.t()),
    case("t-vector", [(4,)], lambda x: x.t()),
    case("T", [(3, 4)], lambda x: x.T * 1.0),
    case("unsqueeze", [(3, 4)], lambda x: x.unsqueeze(0)),
    case("unsqueeze-neg", [(3, 4)], lambda x: x.unsqueeze(-1)),
    case("unsqueeze-middle", [(3, 4)], lambda x: x.unsqueeze(1)),
    case("squeeze", [(3, 1, 4, 1)], lambda x: x.squeeze()),
    case("squeeze-dim", [(3, 1, 4, 1)], lambda x: x.squeeze(1)),
    case("squeeze-neg-dim", [(3, 1, 4, 1)], lambda x: x.squeeze(-1)),
    case("squeeze-not-one", [(3, 1, 4, 1)], lambda x: x.squeeze(0)),
    case("flatten", [(2, 3, 4)], lambda x: x.flatten()),
    case("flatten-start", [(2, 3, 4)], lambda x: x.flatten(1)),
    case("flatten-range", [(2, 3, 4)], lambda x: x.flatten(0, 1)),
    case("flatten-neg", [(2, 3, 4, 5)], lambda x: x.flatten(-3, -2)),
]

INDEX = [
    case("int", [(3, 4)], lambda x: x[1]),
    case("negative-int", [(3, 4)], lambda x: x[-1]),
    case("int-int", [(3, 4)], lambda x: x[2, 1]),
    case("slice", [(5, 4)], lambda x: x[1:3]),
    case("slice-step", [(5, 4)], lambda x: x[::2, 1:]),
    case("column", [(3, 4)], lambda x: x[:, 1]),
    case("ellipsis", [(2, 3, 4)], lambda x: x[..., 0]),
    case("int-list-repeated", [(3, 4)], lambda x: x[[0, 2, 0, 0]]),
    case(
        "int-array-repeated",
        [(3, 4)],
        lambda x: x[torch.tensor([2, 0, 2])],
        lambda x: x[np.array([2, 0, 2])],
    ),
    case(
        "int-tensor-repeated",
        [(3, 4)],
        lambda x: x[torch.tensor([1, 1, 1])],
        lambda x: x[mg.tensor([1, 1, 1])],
    ),
    case("pairs-repeated", [(3, 4)], lambda x: x[[0, 2, 0], [1, 3, 1]]),
    case("slice-and-array", [(3, 4)], lambda x: x[1:, [0, 0, 3]]),
    case("bool-mask", [(3, 4)], lambda x: x[x > 0]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shapes, torch_fn, mg_fn, low, high", ELEMENTWISE + MATMUL + REDUCE + UNARY + SHAPE + INDEX
)
def test_op_matches_torch(device, dtype, shapes, torch_fn, mg_fn, low, high):
    check_op(device, dtype, shapes, torch_fn, mg_fn, low, high)


# ---- results that are not gradients ----------------------------------------------------------


@pytest.mark.parametrize("dim, keepdim", [(0, False), (1, False), (-1, True), (-2, True)])
def test_max_dim_indices_match_torch(device, dim, keepdim):
    a = np.random.default_rng(1).standard_normal((3, 4))
    values, indices = mg.tensor(a, device=device).max(dim, keepdim=keepdim)
    expected = torch.tensor(a).max(dim, keepdim=keepdim)
    assert_close(values, expected.values)
    assert indices.dtype == mg.int64
    assert indices.shape == tuple(expected.indices.shape)
    np.testing.assert_array_equal(indices.detach().numpy(), expected.indices.detach().numpy())


def test_max_full_shares_gradient_between_ties_like_torch(device):
    a = np.array([[1.0, 3.0], [3.0, 2.0]])
    x = mg.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    x.max().backward()
    t.max().backward()
    assert_close(x.grad, t.grad)


def test_reductions_of_everything_are_0d(device):
    x = mg.ones(2, 3, device=device, requires_grad=True)
    assert x.sum().shape == ()
    assert x.mean().shape == ()
    assert x.max().shape == ()
    assert (x @ x.T).sum().shape == ()


def test_python_scalars_keep_float32():
    x = mg.ones(2, requires_grad=True)
    for result in (x + 1.5, 2.0 * x, x / 3, 1 - x, x**2, 2**x, np.float64(2.0) * x):
        assert result.dtype == mg.float32, result


def test_ops_on_ints_stay_ints():
    x = mg.tensor([1, 2, 3])
    assert (x + 1).dtype == mg.int64
    assert (x * x).sum().item() == 14


# ---- error messages --------------------------------------------------------------------------


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(64, 784\) and \(128, 10\).*784 != 128"):
        mg.zeros(64, 784) @ mg.zeros(128, 10)


def test_matmul_batch_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(5, 4, 2\)"):
        mg.zeros(2, 3, 4) @ mg.zeros(5, 4, 2)


def test_matmul_of_0d_says_it_needs_a_dimension():
    with pytest.raises(ValueError, match=r"at least 1 dimension.*\(\) and \(3,\)"):
        mg.tensor(2.0) @ mg.zeros(3)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("add", lambda x, y: x + y),
        ("sub", lambda x, y: x - y),
        ("mul", lambda x, y: x * y),
        ("div", lambda x, y: x / y),
        ("pow", lambda x, y: x**y),
    ],
)
def test_broadcast_mismatch_names_both_shapes(name, fn):
    message = rf"{name}: shapes \(3, 4\) and \(3,\) cannot be broadcast together"
    with pytest.raises(ValueError, match=message):
        fn(mg.ones(3, 4), mg.ones(3))


def test_reshape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"shape \(3, 4\) \(12 elements\) into shape \(5, 2\)"):
        mg.zeros(3, 4).reshape(5, 2)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x.sum(2),
        lambda x: x.mean(-3),
        lambda x: x.max(5),
        lambda x: x.softmax(2),
        lambda x: x.transpose(0, 2),
        lambda x: x.unsqueeze(3),
    ],
)
def test_dim_out_of_range_says_so(fn):
    with pytest.raises(IndexError, match="out of range"):
        fn(mg.zeros(3, 4))


def test_index_out_of_range_names_shape():
    with pytest.raises(IndexError, match=r"shape \(3, 4\)"):
        mg.zeros(3, 4)[5]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 0 ** -1 inside the formula
def test_pow_gradients_at_zero_match_torch(device):
    base, exponent = np.array([0.0, 0.0, 2.0, 0.0]), np.array([0.0, 2.0, 0.0, 3.0])
    x = mg.tensor(base, device=device, requires_grad=True)
    y = mg.tensor(exponent, device=device, requires_grad=True)
    xt, yt = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    (x**y).sum().backward()
    (xt**yt).sum().backward()
    assert_close(x.grad, xt.grad, name="d/dx")
    assert_close(y.grad, yt.grad, name="d/dy")
    x.grad = None
    (x**0).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 0.0]
