"""In-place operations and version counters, against PyTorch.

The silent wrong results these guard against: a gradient computed from values that changed
after they were saved (an optimiser step between forward and backward, y.zero_() on a saved
result), and `p -= lr * p.grad` that rebinds instead of updating.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from tests.conftest import assert_close

MODIFIED = "modified by an inplace operation"


def both(array, requires_grad=True):
    return (mg.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def test_backward_after_an_optimizer_step_raises_like_torch():
    for lib in (mg, torch):
        lib.manual_seed(0)
        layer = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
        opt = lib.optim.SGD(layer.parameters(), lr=0.1)
        loss = layer(lib.ones(4, 3)).sum()
        loss.backward(retain_graph=True)
        opt.step()
        with pytest.raises(RuntimeError, match=MODIFIED):
            loss.backward()


def test_zeroing_a_saved_result_makes_backward_raise_naming_shape_and_versions():
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x.exp()
        z = (y * y).sum()
        y.zero_()
        with pytest.raises(RuntimeError, match=MODIFIED):
            z.backward()
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    z = (y * y).sum()
    y.zero_()
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*ExpBackward.*at version 1; expected "
                                           r"version 0.*saved by MulBackward"):
        z.backward()


def test_update_under_no_grad_keeps_the_same_tensor_and_trains():
    w = mg.tensor([1.0, -2.0], requires_grad=True)
    original = w
    for _ in range(3):
        loss = ((w - 3.0) ** 2).sum()
        loss.backward()
        with mg.no_grad():
            w -= 0.25 * w.grad
            w.grad = None
    assert w is original and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.detach().numpy(), [2.75, 2.375])


def test_updating_parameters_in_a_loop_changes_the_model():
    model = mg.nn.Linear(2, 1)
    before = model.weight.detach().numpy().copy()
    model(mg.ones(3, 2)).sum().backward()
    with mg.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    np.testing.assert_allclose(model.weight.detach().numpy(), before - 0.1 * 3)


def test_in_place_on_a_leaf_that_requires_grad_raises_under_grad_mode_like_torch():
    for lib in (mg, torch):
        w = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            w += 1
        with lib.no_grad():
            w += 1
        assert w.requires_grad and w.is_leaf


@pytest.mark.parametrize("op", [
    lambda t, o: t.add_(o), lambda t, o: t.add_(o, alpha=-2.0), lambda t, o: t.sub_(o),
    lambda t, o: t.mul_(o), lambda t, o: t.div_(o), lambda t, o: t.copy_(o),
    lambda t, o: t.clamp_(-0.5, 0.5), lambda t, o: t.zero_(), lambda t, o: t.fill_(2.5),
    lambda t, o: t.__iadd__(o), lambda t, o: t.__isub__(o), lambda t, o: t.__imul__(o),
    lambda t, o: t.__itruediv__(o),
])
def test_in_place_ops_in_the_graph_match_torch(op):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2.0, (2, 3)), rng.uniform(0.5, 2.0, (3,))
    results = []
    for lib in (mg, torch):
        x, other = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        y = x * 1.5
        same = op(y, other)
        assert same is y
        (y * y).sum().backward()
        results.append((y, x.grad, other.grad))
    (my, mx, mo), (ty, tx, to) = results
    assert_close(my, ty, np.float64, "value")
    assert_close(mx, tx, np.float64, "grad of x")
    if to is None:
        assert mo is None or not np.any(mo.detach().numpy())
    else:
        assert_close(mo if mo is not None else mg.zeros(3), to, np.float64, "grad of other")


@pytest.mark.parametrize("index", [
    (slice(None), 1), 0, (slice(0, 1), slice(1, None)), "mask", "ints",
])
def test_setitem_values_and_gradients_match_torch(index):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    grads = []
    for lib in (mg, torch):
        x = lib.tensor(a, requires_grad=True)
        y = x * 2.0
        if index == "mask":
            where, value = y > 0, lib.tensor(7.0, requires_grad=True)
        elif index == "ints":
            where = (lib.tensor([0, 2]), lib.tensor([1, 3]))
            value = lib.tensor(np.array([5.0, 6.0]), requires_grad=True)
        else:
            where = index
            value = lib.tensor(np.ones(y[where].shape) * 3.0, requires_grad=True)
        y[where] = value * value
        (y * y).sum().backward()
        grads.append((y, x.grad, value.grad))
    for m, t in zip(grads[0], grads[1], strict=True):
        assert_close(m, t, np.float64, "setitem")


def test_setitem_without_grad_writes_and_bumps_the_version():
    x = mg.zeros(2, 3)
    x[0, 1] = 5.0
    x[x > 1] = 2.0
    x[:, 2] = mg.tensor([1.0, 1.0])
    assert x._version == 3
    np.testing.assert_array_equal(x.numpy(), [[0, 2, 1], [0, 0, 1]])


def test_in_place_on_a_view_in_the_graph_updates_the_base_like_torch():
    a = np.arange(6.0).reshape(2, 3)
    out = []
    for lib in (mg, torch):
        x = lib.tensor(a, requires_grad=True)
        y = x * 2.0
        y[0].mul_(3.0)
        y.t()[1].zero_()
        (y * y).sum().backward()
        out.append((y, x.grad))
    assert_close(out[0][0], out[1][0], np.float64, "value")
    assert_close(out[0][1], out[1][1], np.float64, "grad")


def test_a_view_made_before_an_in_place_change_of_its_base_follows_the_base_like_torch():
    """PyTorch regenerates the view's history from the changed base (AsStridedBackward): the
    view sees the new values and sends its gradient through the in-place op."""
    results = []
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = x * 2.0
        v = y[0:1]
        y.mul_(3.0)
        (v * 5.0).sum().backward()
        results.append((v.detach().numpy(), x.grad.numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])  # [6.]
    np.testing.assert_array_equal(results[0][1], results[1][1])  # [30., 0.]


def test_a_view_of_a_constant_made_before_a_recorded_in_place_op_requires_grad_like_torch():
    """x = [1, 2]; v = x[:]; x += w: v now depends on w (it was a constant, silently)."""
    results = []
    for lib in (mg, torch):
        w = lib.tensor(3.0, dtype=lib.float64, requires_grad=True)
        x = lib.tensor([1.0, 2.0], dtype=lib.float64)
        v = x[:]
        x += w
        ((v * 1.5).sum() + x.sum()).backward()
        results.append((v.requires_grad, w.grad.item()))
    assert results[0] == results[1] == (True, 5.0)


def test_version_counter_is_shared_by_views_and_detach_but_not_data():
    for lib in (mg, torch):
        x = lib.zeros(2, 3)
        view, detached, data = x[0], x.detach(), x.data
        x.add_(1.0)
        assert x._version == view._version == detached._version == 1
        data.add_(1.0)  # .data is outside version tracking, as in PyTorch
        assert x._version == 1
        assert float(x.sum()) == 12.0


def test_the_tutorial_step_through_data_works():
    w = mg.nn.Parameter(mg.ones(2, 3))
    (w * 2.0).sum().backward()
    w.data.add_(w.grad, alpha=-0.5)
    np.testing.assert_allclose(w.detach().numpy(), np.zeros((2, 3)))
    assert w.requires_grad and w.is_leaf


def test_in_place_result_type_and_shape_errors_match_torch():
    for lib in (mg, torch):
        i = lib.tensor([1, 2, 3])
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            i += 0.5
        a = lib.zeros(3)
        with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
            a += lib.ones(2, 3)


def test_grad_assignment_checks_type_shape_and_dtype_like_torch():
    x = mg.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match="expected to be a Tensor or None"):
        x.grad = np.zeros(3)
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = mg.zeros(2)
    with pytest.raises(RuntimeError, match="dtype"):
        x.grad = mg.zeros(3, dtype=mg.float64)
    x.grad = mg.ones(3)
    assert x.grad.shape == (3,)


def test_uniform_and_normal_fill_in_place():
    mg.manual_seed(0)
    x = mg.zeros(20000)
    assert x.uniform_(-1.0, 3.0) is x
    assert -1.0 <= x.numpy().min() and float(x.max()) < 3.0
    assert abs(float(x.mean()) - 1.0) < 0.05
    x.normal_(2.0, 0.5)
    values = x.numpy()
    assert abs(values.mean() - 2.0) < 0.02 and abs(values.std() - 0.5) < 0.02
    assert x._version == 2
