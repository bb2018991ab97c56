"""mg.Function behaves like torch.autograd.Function: Tensors in and out, several outputs, the ctx
methods, once_differentiable, hooks and grad modes; and the seed tutorial's cells run verbatim."""

from __future__ import annotations

import pathlib
import threading

import numpy as np
import pytest
import torch

import minigrad as mg
from tests.conftest import assert_close

SEED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "seed" / (
    "linear-layer-tutorial.md")


def tutorial_cells() -> list:
    """The tutorial's python cells (a cell ends at a line that is exactly ```)."""
    cells, current = [], None
    for line in SEED.read_text().split("\n"):
        if current is None and line.strip() == "```python":
            current = []
        elif current is not None and line.strip() == "```":
            cells.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return cells


@pytest.mark.skipif(not SEED.exists(), reason="the seed tutorial is not next to the checkout")
def test_the_tutorials_linear_layer_cells_run_verbatim_with_torchs_gradients():
    cells = tutorial_cells()[:19]  # the Function, the manual backward, the Linear module
    source = "\n".join(cells)
    assert source.startswith("import torch\nimport torch.nn as nn")
    source = source.replace("import torch\nimport torch.nn as nn",
                            "import minigrad as torch\nimport minigrad.nn as nn", 1)
    scope: dict = {}
    exec(compile(source, "linear-layer-tutorial", "exec"), scope)  # noqa: S102
    assert scope["dummy_weight"].grad.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    # The last forward pass (cell 13) ran the tutorial's Function; redo it in torch.
    names = ["weight1", "weight2", "weight3", "bias1", "bias2", "bias3"]
    ours = {n: scope[n] for n in names}
    theirs = {n: torch.tensor(ours[n].detach().numpy(), requires_grad=True) for n in names}
    out = torch.ones(1, 2)
    for i in (1, 2, 3):
        out = out @ theirs[f"weight{i}"] + theirs[f"bias{i}"]
    out.backward()
    for name in names:
        assert ours[name].grad is not None, name
        assert_close(ours[name].grad, theirs[name].grad, np.float32, name)


class SplitSigns(mg.Function):
    """(relu(x), relu(-x)): two outputs, each with its own gradient."""

    @staticmethod
    def forward(ctx, x):
        assert not mg.is_grad_enabled(), "forward must run with grad mode off"
        ctx.save_for_backward(x)
        return x.relu(), (-x).relu()

    @staticmethod
    def backward(ctx, grad_pos, grad_neg):
        (x,) = ctx.saved_tensors
        assert isinstance(grad_pos, mg.Tensor) and isinstance(x, mg.Tensor)
        return grad_pos * (x > 0) - grad_neg * (x < 0)


def test_a_function_with_two_outputs_gets_one_gradient_per_output():
    x = mg.tensor([-1.0, 2.0, -3.0], requires_grad=True)
    pos, neg = SplitSigns.apply(x)
    assert pos.grad_fn is neg.grad_fn
    (pos * 2 + neg * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-5.0, 2.0, -5.0])
    y = mg.tensor([-1.0, 2.0], requires_grad=True)
    pos, _ = SplitSigns.apply(y)  # the unused output's gradient is materialised as zeros
    pos.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 1.0])


def test_set_materialize_grads_false_gives_none_and_extra_trailing_nones_are_accepted():
    seen = []

    class Pair(mg.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.set_materialize_grads(False)
            return x * k, x + k

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append(g2)
            return g1 * 3.0, None, None, None  # more Nones than inputs, as PyTorch accepts

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    first, _ = Pair.apply(x, 3.0)
    first.sum().backward()
    assert seen == [None]
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_mark_non_differentiable_and_mark_dirty_follow_torch():
    class SortIndex(mg.Function):
        @staticmethod
        def forward(ctx, x):
            index = x.argmax()
            ctx.mark_non_differentiable(index)
            return x * 2.0, index

        @staticmethod
        def backward(ctx, grad, grad_index):
            return grad * 2.0

    x = mg.tensor([1.0, 3.0], requires_grad=True)
    doubled, index = SortIndex.apply(x)
    assert doubled.requires_grad and not index.requires_grad

    class AddOneInPlace(mg.Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1.0)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    y = x * 1.0
    z = AddOneInPlace.apply(y)
    assert z is y and z.grad_fn.name() == "AddOneInPlaceBackward"
    (z * z).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        AddOneInPlace.apply(mg.ones(2, requires_grad=True))


def test_once_differentiable_refuses_a_second_backward():
    class Cube(mg.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.array**3

        @staticmethod
        @mg.autograd.once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    x = mg.tensor([2.0], requires_grad=True)
    v = mg.tensor([1.0], requires_grad=True)  # as in PyTorch, a grad_output on the graph marks it
    (g,) = mg.autograd.grad(Cube.apply(x), x, v, create_graph=True)
    assert g.item() == 12.0
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_returning_an_input_gives_a_new_tensor_on_the_same_memory():
    class Identity(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = Identity.apply(x)
    assert y is not x and y.array is x.array and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_hooks_change_gradients_and_can_be_removed_like_torch():
    results = []
    for lib in (mg, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3.0
        handle = y.register_hook(lambda g: g * 10)
        x.register_hook(lambda g: g + 1)
        y.retain_grad()
        (y * y).sum().backward(retain_graph=True)
        results.append((x.grad.detach().numpy().copy(), y.grad.detach().numpy().copy()))
        handle.remove()
        x.grad = None
        (y * y).sum().backward()  # a new graph above y
        results.append((x.grad.detach().numpy().copy(),))
    np.testing.assert_allclose(results[0][0], results[2][0])
    np.testing.assert_allclose(results[0][1], results[2][1])
    np.testing.assert_allclose(results[1][0], results[3][0])


def test_backward_inputs_and_grad_allow_unused_follow_torch():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    w = mg.tensor([3.0, 4.0], requires_grad=True)
    unused = mg.tensor([0.0], requires_grad=True)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None and w.grad.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        mg.autograd.grad((x * w).sum(), [x, unused])
    gx, gu = mg.autograd.grad((x * w).sum(), [x, unused], allow_unused=True)
    assert gx.tolist() == [3.0, 4.0] and gu is None
    h = x * w  # a non-leaf input
    (gh,) = mg.autograd.grad((h * h).sum(), h)
    assert gh.tolist() == [6.0, 16.0]


def test_grad_modes_follow_torch():
    x = mg.ones(2, requires_grad=True)
    with mg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert mg.is_grad_enabled()
    with mg.inference_mode():
        assert mg.is_inference_mode_enabled() and not (x * 2).requires_grad
    assert not mg.is_inference_mode_enabled()

    @mg.no_grad()
    def generator():
        for _ in range(2):
            yield x * 2

    assert not any(y.requires_grad for y in generator())
    assert (x * 2).requires_grad


def test_accumulating_into_one_leaf_from_four_threads_loses_nothing():
    w = mg.zeros(1000, requires_grad=True)

    def work():
        for _ in range(50):
            (w * 1.0).sum().backward()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert float(w.grad.sum()) == 4 * 50 * 1000
