"""The rest of torch.autograd that PyTorch's tutorials use, against torch: post-accumulate-grad
hooks, autograd.grad(materialize_grads=True), gradcheck(raise_exception=False)."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")


def post_accumulate_log(lib):
    """What each library's post-accumulate-grad hooks see, over several kinds of backward."""
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    v = lib.tensor([3.0], requires_grad=True)
    log = []
    w.register_post_accumulate_grad_hook(lambda t: log.append(("w", t.grad.tolist())))
    handle = v.register_post_accumulate_grad_hook(lambda t: log.append(("v", t.grad.tolist())))
    (w * w + w * v).sum().backward()  # w reached by two edges: one call, with the sum
    (w * 3).sum().backward()  # accumulated onto the first .grad
    handle.remove()
    (w.sum() * v).backward()
    w.register_hook(lambda g: g * 10)  # a tensor hook first, then the post-accumulate hook
    (w * w).sum().backward()
    lib.autograd.grad((w * w).sum(), w)  # grad() accumulates nothing: no call
    (w * v).sum().backward(inputs=[v])  # w gets nothing: no call
    w.backward(lib.tensor([1.0, 1.0]))  # the root is the leaf itself
    return log


def test_post_accumulate_grad_hooks_run_as_in_pytorch():
    assert post_accumulate_log(mg) == post_accumulate_log(torch)


def test_post_accumulate_grad_hooks_run_when_the_leafs_gradient_is_complete():
    """Before backward goes on to other leaves: the hook of a leaf near the loss runs while the
    layers below still wait (what lets DistributedDataParallel start an all-reduce early)."""
    order = []
    x = mg.randn(4, 3)
    first, second = mg.randn(3, 3, requires_grad=True), mg.randn(3, 1, requires_grad=True)
    for name, leaf in (("first", first), ("second", second)):
        leaf.register_post_accumulate_grad_hook(lambda t, name=name: order.append(name))
    loss = ((x @ first).tanh() @ second).sum()
    loss.backward()
    assert order == ["second", "first"]


def test_post_accumulate_grad_hook_errors_are_pytorchs():
    w = mg.tensor([1.0], requires_grad=True)
    for lib, leaf in ((mg, w), (torch, torch.tensor([1.0], requires_grad=True))):
        with pytest.raises(RuntimeError, match="cannot be registered on non-leaf tensors"):
            (leaf * 2).register_post_accumulate_grad_hook(lambda t: None)
        with pytest.raises(RuntimeError, match="doesn't require gradient"):
            lib.ones(2).register_post_accumulate_grad_hook(lambda t: None)
        leaf.register_post_accumulate_grad_hook(lambda t: t.grad)
        with pytest.raises(RuntimeError, match="should return None"):
            (leaf * 2).sum().backward()


def test_a_compiled_function_refuses_a_leaf_with_a_post_accumulate_hook():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="hook"):
        mg.compile(lambda x: (x * w).sum().backward())(mg.ones(2))


def test_grad_materialize_grads_gives_zeros_for_unused_inputs():
    results = []
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = lib.tensor([3.0], requires_grad=True)
        gx, gy = lib.autograd.grad((x * 2).sum(), (x, y), materialize_grads=True)
        results.append((gx.tolist(), gy.tolist()))
        with pytest.raises(ValueError, match="Expected allow_unused to be True or not passed"):
            lib.autograd.grad((x * 2).sum(), (x, y), materialize_grads=True, allow_unused=False)
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            lib.autograd.grad((x * 2).sum(), (x, y))
    assert results[0] == results[1] == ([2.0, 2.0], [0.0])


class _WrongDerivative:
    """f(a) = 2a with backward 3g: gradcheck must say False (or raise)."""

    @staticmethod
    def make(lib):
        class Wrong(lib.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a * 2

            @staticmethod
            def backward(ctx, g):
                return g * 3

        return Wrong


def test_gradcheck_raise_exception_false_returns_false_as_in_pytorch():
    for lib in (mg, torch):
        wrong = _WrongDerivative.make(lib)
        a = lib.tensor(np.ones(2), dtype=lib.float64, requires_grad=True)
        assert lib.autograd.gradcheck(wrong.apply, (a,), raise_exception=False) is False
        assert lib.autograd.gradcheck(lambda t: t * 2, (a,), raise_exception=False) is True
        with pytest.raises(RuntimeError):
            lib.autograd.gradcheck(wrong.apply, (a,))
        assert lib.autograd.gradgradcheck(lambda t: t ** 3, (a,), raise_exception=False) is True
    with pytest.raises(NotImplementedError, match="check_batched_grad is not built in"):
        mg.autograd.gradcheck(lambda t: t * 2, (mg.tensor([1.0], dtype=mg.float64,
                                                           requires_grad=True),),
                              check_batched_grad=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tolerance'"):
        mg.autograd.gradcheck(lambda t: t * 2, (mg.tensor([1.0], dtype=mg.float64,
                                                           requires_grad=True),), tolerance=1)


def saved_hooks_run(lib):
    """What pack and unpack see, the gradients, and what happens to a tensor changed in place
    after it was packed (a copy was kept: no error, the old values are used)."""
    log = []

    def pack(t):
        log.append(("pack", tuple(t.shape)))
        return t * 1  # a copy

    def unpack(t):
        log.append(("unpack", tuple(t.shape)))
        return t

    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with lib.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = (x * x).sin()
    y.sum().backward()
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    with lib.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
        c = b * b
    b.add_(1)
    c.sum().backward()
    with lib.autograd.graph.saved_tensors_hooks(lambda t: ("box", t), lambda p: p[1]):
        z = (x * 3).exp()
    z.sum().backward()
    with lib.autograd.graph.save_on_cpu():
        (x * x).sum().backward()
    return log, x.grad.tolist(), a.grad.tolist()


def test_saved_tensors_hooks_and_save_on_cpu_as_in_pytorch():
    ours, theirs = saved_hooks_run(mg), saved_hooks_run(torch)
    assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    assert ours[2] == theirs[2]


def test_saved_tensors_hooks_keep_second_derivatives():
    for lib in (mg, torch):
        x = lib.tensor([0.5, 1.5], dtype=lib.float64, requires_grad=True)
        with lib.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            y = (x.exp() * x).sum()
        (g,) = lib.autograd.grad(y, x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        expected = np.exp([0.5, 1.5]) * (np.array([0.5, 1.5]) + 2)
        np.testing.assert_allclose(h.tolist(), expected, rtol=1e-12)


def inference_story(lib):
    """What PyTorch's inference tensors allow and refuse, as (step, outcome) pairs."""
    story = []
    with lib.inference_mode():
        x = lib.ones(2)
        y = x * 2
        x.add_(1)  # inside inference mode: allowed
        made = lib.ones(2, requires_grad=True)
    story.append(("made inside", x.is_inference(), y.is_inference(), x[0:1].is_inference(),
                  made.requires_grad, made.is_inference()))
    story.append(("outside", lib.ones(2).is_inference(), x.clone().is_inference(),
                  x.detach().is_inference()))
    w = lib.ones(2, requires_grad=True)
    for name, step in (("saved for backward", lambda: w * x), ("not saved", lambda: w + x),
                       ("changed in place", lambda: x.add_(1)),
                       ("set to require grad", lambda: x.requires_grad_()),
                       ("written by index", lambda: x.__setitem__(0, 5.0))):
        try:
            step()
            story.append((name, "ok"))
        except RuntimeError as error:
            story.append((name, str(error).split(".")[0]))
    with lib.no_grad():
        story.append(("no_grad multiply", (w * x).is_inference()))
    return story


def test_inference_tensors_as_in_pytorch():
    assert inference_story(mg) == inference_story(torch)


def test_gradcheck_checks_forward_mode_too_as_in_pytorch():
    class WrongTangent:
        @staticmethod
        def make(lib):
            class Sine(lib.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    ctx.save_for_forward(x)
                    ctx.save_for_backward(x)
                    return x.sin()

                @staticmethod
                def jvp(ctx, x_t):
                    (x,) = ctx.saved_tensors
                    return x.cos() * x_t * 2  # twice too large

                @staticmethod
                def backward(ctx, grad):
                    (x,) = ctx.saved_tensors
                    return grad * x.cos()

            return Sine

    for lib in (mg, torch):
        a = lib.tensor([0.5, 1.5], dtype=lib.float64, requires_grad=True)
        assert lib.autograd.gradcheck(lambda t: (t.sin() * t).exp(), (a,), check_forward_ad=True)
        wrong = WrongTangent.make(lib)
        assert lib.autograd.gradcheck(wrong.apply, (a,), check_forward_ad=True,
                                      raise_exception=False) is False
        assert lib.autograd.gradcheck(wrong.apply, (a,)) is True  # backward alone is right
    b = mg.tensor([0.5, 1.5], dtype=mg.float64, requires_grad=True)
    assert mg.autograd.gradgradcheck(lambda t: (t.tanh() * t).sum(), (b,),
                                     check_fwd_over_rev=True)  # forward over reverse
