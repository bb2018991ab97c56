"""Regressions from an independent review of the new autograd: each was a silent wrong result
(or an unsafe one) before its fix, and is now either PyTorch's answer or a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.nn.functional as F


def test_in_place_on_overlapping_views_made_before_their_base_changed_matches_torch():
    """v2 overlaps v1 and was made before v1.mul_: it sees the doubled element and sends
    gradients through both in-place ops (it raised before the views followed their base)."""
    results = []
    for lib in (mg, torch):
        a = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        b = a * 1
        v1, v2 = b[0:2], b[1:3]
        v1.mul_(2)
        v2.mul_(3)
        (b * lib.tensor([1.0, 10.0, 100.0], dtype=lib.float64)).sum().backward()
        results.append((b.detach().numpy(), a.grad.numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_cross_entropy_reduction_none_gives_one_loss_per_sample_like_torch():
    x, t, w = [[1.0, 2.0], [3.0, 1.0]], [0, 1], [1.0, 10.0]
    grads = []
    for lib, fn in ((mg, F.cross_entropy), (torch, torch.nn.functional.cross_entropy)):
        logits = lib.tensor(x, requires_grad=True)
        losses = fn(logits, lib.tensor(t), reduction="none")
        assert tuple(losses.shape) == (2,)
        (losses * lib.tensor(w)).sum().backward()
        grads.append(logits.grad.detach().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


class Double(mg.Function):
    @staticmethod
    def forward(ctx, x):
        x.array[...] *= 2
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


def test_mark_dirty_bumps_the_version_so_an_earlier_saved_tensor_raises():
    b = mg.tensor([1.0, 2.0, 3.0], requires_grad=True).clone()
    c = b * b
    Double.apply(b)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        c.sum().backward()


def test_mark_dirty_on_a_view_is_refused_instead_of_losing_the_base_history():
    b = mg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True).clone()
    with pytest.raises(RuntimeError, match="mark_dirty on a view"):
        Double.apply(b[0:2])


def test_a_leaf_hook_sees_the_summed_gradient_once_like_torch():
    results = []
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        calls = []
        x.register_hook(lambda g, calls=calls: calls.append(1) or g.clamp(max=1.0))
        (x * 2 + x * 3).sum().backward()
        results.append((x.grad.tolist(), len(calls)))
    assert results[0] == results[1] == ([1.0, 1.0], 1)


def test_a_changed_index_or_mask_does_not_change_the_gradient_of_what_ran():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = mg.tensor([0, 1])
    y = x[idx]
    idx[0] = 2  # the forward gathered rows 0 and 1: the gradient goes there
    (y * mg.tensor([1.0, 10.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 10.0, 0.0]
    z = mg.tensor([1.0, -1.0, 2.0], requires_grad=True)
    mask = z.detach() > 0
    w = z.where(mask, 0.0)
    mask[0] = False
    w.sum().backward()
    assert z.grad.tolist() == [1.0, 0.0, 1.0]


def test_retain_grad_follows_an_in_place_op_and_runs_after_other_hooks_like_torch():
    out = []
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        h = x * 1
        h.retain_grad()
        h.mul_(3)
        (h * h).sum().backward()
        k = x * 1
        k.retain_grad()
        k.register_hook(lambda g: g * 10)
        (k * k).sum().backward()
        out.append((h.grad.tolist(), k.grad.tolist()))
    assert out[0] == out[1]


def test_a_leaf_grad_never_shares_memory_with_what_a_hook_or_a_custom_backward_keeps():
    seen = []
    x = mg.tensor([1.0, 1.0], requires_grad=True)
    h = x.clone()
    h.register_hook(seen.append)
    (h * 2).sum().backward()
    x.grad.mul_(0)
    assert seen[0].tolist() == [2.0, 2.0]

    constant = mg.ones(2)

    class ReturnsConstant(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x.array * 1

        @staticmethod
        def backward(ctx, grad):
            return constant

    y = mg.tensor([3.0, 4.0], requires_grad=True)
    ReturnsConstant.apply(y).sum().backward()
    y.grad.mul_(9)
    assert constant.tolist() == [1.0, 1.0]


def test_in_place_on_an_expanded_view_raises_like_torch():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = (a * 1).unsqueeze(1).expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        b.add_(mg.tensor([1.0, 2.0, 3.0]))
    with mg.no_grad(), pytest.raises(RuntimeError, match="more than one element"):
        b.add_(1.0)


def test_grad_of_a_repeated_input_fills_every_position_like_torch():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    g1, g2 = mg.autograd.grad((x * x).sum(), [x, x])
    assert g1.tolist() == g2.tolist() == [2.0, 4.0]


def test_x_times_two_does_not_save_x_so_changing_x_later_is_fine_like_torch():
    b = mg.tensor([1.0, 2.0, 3.0], requires_grad=True).clone()
    c = b * 2
    b.add_(1)
    c.sum().backward()  # torch saves nothing for x * 2 either


def test_linear_refuses_mixed_dtypes_and_backward_inputs_must_require_grad_like_torch():
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(mg.ones(2, 3), mg.ones(4, 3, dtype=mg.float64))
    x = mg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2).sum().backward(inputs=[mg.ones(2)])


def _both(make):
    """make(lib) for minigrad and torch; the two results as nested lists."""
    return make(mg), make(torch)


def test_a_gradient_sent_to_a_leaf_and_to_a_hook_that_changes_it_is_a_copy_like_torch():
    def run(lib):
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = b * 1.0
        h.register_hook(lambda g: g.mul_(0))  # changes the one gradient Add sent to both
        s = a + h
        (s * s).sum().backward()
        return a.grad.tolist(), b.grad.tolist()

    ours, theirs = _both(run)
    assert ours == theirs == ([4.0, 8.0, 12.0], [0.0, 0.0, 0.0])


def test_a_gradient_a_leaf_hook_keeps_is_not_the_other_leafs_grad_like_torch():
    def run(lib):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([1.0, 2.0], requires_grad=True)
        kept = []
        b.register_hook(kept.append)
        (a + b).sum().backward()
        a.grad.zero_()  # the user clears one .grad: what the hook kept must not change
        return kept[0].tolist(), b.grad.tolist()

    ours, theirs = _both(run)
    assert ours == theirs == ([1.0, 1.0], [1.0, 1.0])


def test_a_custom_backward_that_changes_its_gradient_in_place_leaves_a_leafs_grad_alone():
    def run(lib):
        class Scale(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 1.0

            @staticmethod
            def backward(ctx, grad):
                grad.mul_(3)  # the gradient Add also sent to the leaf a
                return grad

        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([1.0, 2.0], requires_grad=True)
        ((a + Scale.apply(b)) * lib.tensor([2.0, 5.0])).sum().backward()
        return a.grad.tolist(), b.grad.tolist()

    ours, theirs = _both(run)
    assert ours == theirs


def test_cross_entropy_of_one_sample_with_an_ignored_target_is_nan_like_torch():
    ours = F.cross_entropy(mg.tensor([0.5, 1.0, -1.0]), mg.tensor(-100))
    theirs = torch.nn.functional.cross_entropy(torch.tensor([0.5, 1.0, -1.0]),
                                               torch.tensor(-100))
    assert np.isnan(ours.item()) and np.isnan(theirs.item())
