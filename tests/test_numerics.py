"""Numerical robustness: huge logits stay finite, overflow looks like NumPy's, NaN propagates.

Also `mg.autograd.detect_anomaly()`, which stops at the first operation whose forward or
backward produces NaN and names it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import minigrad as mg

F = mg.nn.functional
DTYPES = ["float32", "float64"]
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def assert_matches_torch(actual: mg.Tensor, expected: torch.Tensor, dtype: str) -> None:
    """Same inf/nan places, finite values within the tolerance relative to their scale."""
    a, e = actual.detach().numpy(), expected.detach().numpy()
    assert a.shape == e.shape and a.dtype == e.dtype
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
    np.testing.assert_array_equal(np.isinf(a), np.isinf(e))
    finite = np.isfinite(e)
    scale = max(1.0, float(np.abs(e[finite]).max())) if finite.any() else 1.0
    np.testing.assert_allclose(a[finite], e[finite], rtol=0, atol=TOLERANCE[dtype] * scale)


def huge_logits(dtype: str) -> np.ndarray:
    return np.array(
        [[1e4, -1e4, 0.0, 5e3], [-1e4, -1e4 + 1, -1e4 + 2, -1e4], [1e4, 1e4, 1e4, 1e4]],
        dtype=dtype,
    )


# ---- stable log-softmax and cross-entropy ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_of_logits_of_magnitude_1e4_is_finite_and_matches_torch(dtype, reduction):
    logits, labels = huge_logits(dtype), np.array([1, 0, 3])
    x = mg.tensor(logits, requires_grad=True)
    tx = torch.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor(labels), reduction=reduction)
    expected = torch.nn.functional.cross_entropy(tx, torch.tensor(labels), reduction=reduction)
    loss.backward()
    expected.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.detach().numpy()).all()
    assert_matches_torch(loss, expected, dtype)
    assert_matches_torch(x.grad, tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["log_softmax", "softmax"])
def test_softmaxes_of_logits_of_magnitude_1e4_are_finite_and_match_torch(dtype, name):
    logits = huge_logits(dtype)
    g = np.random.default_rng(0).standard_normal(logits.shape).astype(dtype)
    for dim in (0, 1, -1):
        x = mg.tensor(logits, requires_grad=True)
        tx = torch.tensor(logits, requires_grad=True)
        out, expected = getattr(x, name)(dim), getattr(tx, name)(dim)
        out.backward(mg.tensor(g))
        expected.backward(torch.tensor(g))
        assert (
            np.isfinite(out.detach().numpy()).all() and np.isfinite(x.grad.detach().numpy()).all()
        )
        assert_matches_torch(out, expected, dtype)
        assert_matches_torch(x.grad, tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_logits_minus_inf_give_zero_probability(dtype):
    """-inf logits (masking) get probability 0 and log-probability -inf, as in PyTorch."""
    logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=dtype)
    g = np.array([[1.0, 0.0, -1.0], [0.5, 1.0, 0.0]], dtype=dtype)
    for name in ("softmax", "log_softmax"):
        x, tx = mg.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
        out, expected = getattr(x, name)(1), getattr(tx, name)(1)
        out.backward(mg.tensor(g))
        expected.backward(torch.tensor(g))
        assert_matches_torch(out, expected, dtype)
        assert_matches_torch(x.grad, tx.grad, dtype)
    loss = F.cross_entropy(mg.tensor(logits), mg.tensor([2, 1]))
    assert np.isfinite(loss.item())


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_saturate_without_nan(dtype):
    values = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    for name in ("sigmoid", "tanh"):
        x, tx = mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
        out, expected = getattr(x, name)(), getattr(tx, name)()
        out.sum().backward()
        expected.sum().backward()
        assert_matches_torch(out, expected, dtype)
        assert_matches_torch(x.grad, tx.grad, dtype)
        assert not np.isnan(x.grad.detach().numpy()).any()


# ---- overflow and invalid values behave like NumPy ---------------------------------------------


OVERFLOW_CASES = [  # (name, minigrad, NumPy, inputs)
    ("exp overflows to inf", lambda t: t.exp(), np.exp, [1000.0, 88.0, -1000.0]),
    ("log of 0 is -inf, of a negative number nan", lambda t: t.log(), np.log, [0.0, -1.0, 1.0]),
    ("sqrt of a negative number is nan", lambda t: t.sqrt(), np.sqrt, [-1.0, 0.0, 4.0]),
    (
        "division by 0 gives inf and nan",
        lambda t: t / (t * 0),
        lambda a: a / (a * 0),
        [1.0, -1.0, 0.0],
    ),
    ("pow of a negative base is nan", lambda t: t**0.5, lambda a: a**0.5, [-4.0, 4.0, 0.0]),
    ("square overflows to inf", lambda t: t * t, lambda a: a * a, [1e200, 1e30, 1.0]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, fn, numpy_fn, values", OVERFLOW_CASES, ids=[c[0] for c in OVERFLOW_CASES]
)
def test_overflow_and_invalid_values_are_not_clipped(dtype, name, fn, numpy_fn, values):
    """inf and nan come out exactly where NumPy puts them: nothing is clipped or replaced."""
    with np.errstate(all="ignore"):
        array = np.array(values, dtype=dtype)
        expected = numpy_fn(array)
        actual = fn(mg.tensor(array)).detach().numpy()
    assert actual.dtype == expected.dtype
    assert not np.isfinite(actual).all(), "the case should overflow or be invalid somewhere"
    np.testing.assert_array_equal(actual, expected)  # nan == nan here


def test_exp_gradient_at_overflow_is_inf_like_torch():
    x = mg.tensor([1000.0, 1.0], requires_grad=True)
    tx = torch.tensor([1000.0, 1.0], requires_grad=True)
    with np.errstate(over="ignore"):
        x.exp().sum().backward()
    tx.exp().sum().backward()
    assert_matches_torch(x.grad, tx.grad, "float32")
    assert np.isinf(x.grad.detach().numpy()[0])


# ---- NaN propagates ----------------------------------------------------------------------------


def test_nan_in_inputs_propagates_to_loss_and_gradients():
    """One NaN pixel makes the loss NaN and poisons the first layer's weight gradient."""
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(6, 5), mg.nn.ReLU(), mg.nn.Linear(5, 3))
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    x[2, 3] = np.nan
    loss = F.cross_entropy(model(mg.tensor(x)), mg.tensor([0, 1, 2, 0]))
    loss.backward()
    assert np.isnan(loss.item())
    first = model[0]
    assert (
        np.isnan(first.weight.grad.detach().numpy()).any()
        and np.isnan(first.bias.grad.detach().numpy()).any()
    )

    torch_model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        for p, tp in zip(model.parameters(), torch_model.parameters(), strict=True):
            tp.copy_(torch.from_numpy(p.detach().numpy()))
    torch_loss = torch.nn.functional.cross_entropy(
        torch_model(torch.tensor(x)), torch.tensor([0, 1, 2, 0])
    )
    torch_loss.backward()
    pairs = zip(model.named_parameters(), torch_model.parameters(), strict=True)
    for (name, p), tp in pairs:
        np.testing.assert_array_equal(
            np.isnan(p.grad.detach().numpy()), np.isnan(tp.grad.detach().numpy()), name
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_logit_makes_its_loss_and_gradient_row_nan(dtype):
    logits = np.array([[0.5, np.nan, 1.0], [1.0, 2.0, 3.0]], dtype=dtype)
    x, tx = mg.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    labels = [0, 2]
    loss = F.cross_entropy(x, mg.tensor(labels), reduction="sum")
    expected = torch.nn.functional.cross_entropy(tx, torch.tensor(labels), reduction="sum")
    loss.backward()
    expected.backward()
    assert np.isnan(loss.item())
    assert_matches_torch(x.grad, tx.grad, dtype)
    assert (
        np.isnan(x.grad.detach().numpy()[0]).all() and np.isfinite(x.grad.detach().numpy()[1]).all()
    )


@pytest.mark.parametrize(
    "name, fn",
    [
        ("sum", lambda t: t.sum()),
        ("mean", lambda t: t.mean(1)),
        ("max", lambda t: t.max()),
        ("max(dim)", lambda t: t.max(1)[0]),
        ("matmul", lambda t: t @ t.T),
        ("softmax", lambda t: t.softmax(1)),
        ("getitem", lambda t: t[:, 1:]),
        ("tanh", lambda t: t.tanh()),
    ],
)
def test_nan_propagates_through_ops_like_torch(name, fn):
    values = np.array([[1.0, np.nan, 2.0], [0.5, -1.0, 3.0]])
    x, tx = mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    out, expected = fn(x), fn(tx)
    with np.errstate(invalid="ignore"):
        out.sum().backward()
    expected.sum().backward()
    assert_matches_torch(out, expected, "float64")
    assert_matches_torch(x.grad, tx.grad, "float64")


# ---- detect_anomaly ----------------------------------------------------------------------------


def test_detect_anomaly_names_the_op_whose_forward_made_nan():
    x = mg.tensor([1.0, -1.0], requires_grad=True)
    y = x * 2
    with mg.autograd.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(RuntimeError, match="Log produced nan"):
            y.log()


def test_detect_anomaly_says_when_the_nan_came_in_with_the_inputs():
    x = mg.tensor([1.0, np.nan])
    with mg.autograd.detect_anomaly(), pytest.raises(RuntimeError, match="inputs already"):
        x.exp()


def test_detect_anomaly_names_the_node_whose_backward_made_nan_and_where_it_was_made():
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    with mg.autograd.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        y = x.sqrt() * 0  # forward fine; backward: 0 / (2 * sqrt(0)) = nan
        with pytest.raises(RuntimeError, match=r"SqrtBackward returned nan .* input 0") as error:
            y.sum().backward()
    assert "test_numerics.py" in str(error.value)  # the line that called sqrt
    assert "x.sqrt()" in str(error.value)


def test_detect_anomaly_accepts_inf_and_clean_graphs():
    x = mg.tensor([1000.0, 1.0], requires_grad=True)
    with mg.autograd.detect_anomaly(), np.errstate(over="ignore"):
        y = x.exp()  # inf is not an anomaly
        (x * x).sum().backward()
    assert np.isinf(y.detach().numpy()[0])
    np.testing.assert_allclose(x.grad.detach().numpy(), [2000.0, 2.0])


def test_detect_anomaly_is_off_by_default_and_restored_after_errors():
    assert not mg.autograd.is_anomaly_enabled()
    with pytest.raises(RuntimeError), mg.autograd.detect_anomaly(), np.errstate(invalid="ignore"):
        assert mg.autograd.is_anomaly_enabled()
        mg.tensor([-1.0]).log()
    assert not mg.autograd.is_anomaly_enabled()
    with np.errstate(invalid="ignore"):
        assert np.isnan(mg.tensor([-1.0]).log().item())  # off again: nan is a value


def test_detect_anomaly_works_as_a_decorator_and_per_thread():
    @mg.autograd.detect_anomaly()
    def check():
        return mg.autograd.is_anomaly_enabled()

    seen = []
    with mg.autograd.detect_anomaly():
        thread = threading.Thread(target=lambda: seen.append(mg.autograd.is_anomaly_enabled()))
        thread.start()
        thread.join()
    assert check() and seen == [False]


def test_detect_anomaly_check_nan_false_only_records():
    with mg.autograd.detect_anomaly(check_nan=False), np.errstate(invalid="ignore"):
        y = mg.tensor([-1.0], requires_grad=True).log()
    assert np.isnan(y.item())
