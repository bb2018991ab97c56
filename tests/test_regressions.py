"""Regression tests: minimal cases found by the property tests and the reliability review.

Each test is the shrunk example, compared with what PyTorch does, with a note of what went
wrong and where it was fixed. All of them are fixed; they stay so that they stay fixed. A bug
that cannot be fixed at once goes in marked `@bug("where and why")`, an xfail(strict=True): the
day the fix lands, pytest reports the XPASS as a failure and whoever fixed it removes the marker.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg

F = mg.nn.functional


def bug(reason: str):
    """Mark a regression test whose bug is still open."""
    return pytest.mark.xfail(strict=True, reason=reason)


# ---- leaf gradients must be their own, writable arrays (engine._accumulate) ---------------------
# All four fixed in engine/backward.py (_accumulate: .grad takes only an array a built-in op's
# backward made for that one edge, copies anything else, wraps scalars).


def test_grad_of_a_summed_leaf_can_be_zeroed_in_place():
    # Found by: x.sum().backward(); x.grad.zero_()  ->  ValueError: assignment destination is
    # read-only. The classic manual loop (w -= lr * w.grad; w.grad.zero_()) hits it.
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.sum().backward()
    x.grad.zero_()
    np.testing.assert_array_equal(x.grad.detach().numpy(), [0.0, 0.0, 0.0])


def test_two_leaves_never_share_one_gradient_array():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(mg.tensor([1.0, 1.0]))
    a.grad.array *= 0.5  # e.g. gradient clipping, one parameter at a time
    np.testing.assert_array_equal(b.grad.detach().numpy(), [1.0, 1.0])


def test_leaf_gradient_does_not_alias_the_gradient_passed_to_backward():
    g = np.array([1.0, 1.0], dtype=np.float32)
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x + 0).backward(g)
    g[:] = 7.0  # the caller reuses its buffer
    np.testing.assert_array_equal(x.grad.detach().numpy(), [1.0, 1.0])


def test_accumulated_grad_of_a_0d_leaf_is_an_array():
    # Shrunk from a property-test program: x0 ** x0 on a 0-d leaf (two edges into x0). Was: the
    # sum of two 0-d gradients is a NumPy scalar, stored as .grad.array, so zero_() raised.
    x = mg.tensor(2.0, requires_grad=True)
    (x * x).backward()
    assert isinstance(x.grad.array, np.ndarray), type(x.grad.array)
    x.grad.zero_()  # TypeError: 'numpy.float32' object does not support item assignment
    assert x.grad.item() == 0.0


# ---- NaN through max ----------------------------------------------------------------------------


def test_max_backward_with_nan_input_routes_gradient_to_the_nan():
    # Was: x == max is False everywhere when the max is nan, so 0 / 0 = nan went to every
    # element. Fixed in ops/reduce.py Max.backward.
    values = np.array([[1.0, np.nan, 2.0], [0.5, -1.0, 3.0]])
    x, tx = mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    with np.errstate(invalid="ignore"):
        x.max().backward()
    tx.max().backward()
    np.testing.assert_array_equal(
        x.grad.detach().numpy(), tx.grad.detach().numpy()
    )  # one 1 at the nan, 0s


# ---- empty batches -------------------------------------------------------------------------------


def test_cross_entropy_of_an_empty_batch_is_nan_like_torch():
    # Was ZeroDivisionError (1.0 / logits.shape[0]); fixed in ops/loss.py.
    loss = F.cross_entropy(mg.zeros(0, 3), mg.tensor(np.zeros(0, dtype=np.int64)))
    assert np.isnan(loss.item())


# ---- state dicts ---------------------------------------------------------------------------------


def test_load_state_dict_names_a_value_that_is_not_an_array():
    # Was: AttributeError "'list' object has no attribute 'shape'". Fixed in nn/module.py.
    model = mg.nn.Linear(2, 1)
    with pytest.raises((TypeError, RuntimeError), match="weight"):
        model.load_state_dict({"weight": [[1.0, 2.0]], "bias": mg.zeros(1)})


# ---- making tensors, saving, shapes, dtypes -----------------------------------------------------


def test_tensor_from_a_ragged_list_says_so():
    with pytest.raises(ValueError, match="ragged nested list"):
        mg.tensor([[1.0, 2.0], [3.0]])


def test_tensor_from_an_array_of_strings_is_refused():
    with pytest.raises(TypeError, match="<U3 elements"):
        mg.tensor(np.array(["abc"]))


def test_save_under_a_file_names_the_file(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        mg.save({"a": 1}, tmp_path / "model.npz" / "inner.npz")
    assert (tmp_path / "model.npz").read_bytes() == b"x"


def test_transpose_twice_of_a_0d_leaf_still_sends_its_gradient():
    # From the property tests: .T of a 0-d/1-d tensor returns the tensor itself (PyTorch makes
    # a view node); harmless, but the gradient must still arrive.
    x = mg.tensor(0.0, requires_grad=True)
    x.T.T.backward()
    assert x.grad.item() == 1.0


def test_float64_0d_tensor_does_not_promote_a_float32_tensor():
    # Was NumPy's rule (float64); PyTorch keeps float32 when the float64 operand is 0-d, and the
    # gradient of each input keeps that input's dtype. Fixed in backend/ops (dtype promotion).
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    s = mg.tensor(np.array(3.0), requires_grad=True)  # float64, 0-d
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    ts = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    y, ty = x * s, tx * ts
    assert str(y.dtype) == str(ty.dtype).removeprefix("torch.") == "float32"
    y.sum().backward()
    ty.sum().backward()
    assert x.grad.dtype == np.float32 and s.grad.dtype == np.float64
    np.testing.assert_allclose(s.grad.item(), ts.grad.item(), rtol=1e-6)


def test_linear_on_one_sample_gives_gradients_like_torch():
    # Found by the property tests: a 1-D input (one sample) to F.linear, after Linear.backward
    # stopped folding 2-D gradients.
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([[0.5, -1.0], [2.0, 3.0], [1.0, 1.0]], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    tw = torch.tensor([[0.5, -1.0], [2.0, 3.0], [1.0, 1.0]], requires_grad=True)
    F.linear(x, w).sum().backward()
    torch.nn.functional.linear(tx, tw).sum().backward()
    np.testing.assert_allclose(w.grad.detach().numpy(), tw.grad.detach().numpy())
    np.testing.assert_allclose(x.grad.detach().numpy(), tx.grad.detach().numpy())
