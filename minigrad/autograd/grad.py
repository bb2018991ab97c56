"""autograd.grad and autograd.backward: the engine's two entry points, as in PyTorch.

`grad(outputs, inputs)` returns d(outputs)/d(inputs) without touching any `.grad`;
`backward(tensors)` accumulates into the leaves' `.grad` (what `Tensor.backward` calls).
With `create_graph=True` the returned gradients carry a graph of their own, so they can be
differentiated again: that is how second derivatives, Hessian-vector products and gradient
penalties are computed.
"""

from __future__ import annotations

from .. import backend
from . import engine


def _as_tuple(value, name: str) -> tuple:
    if isinstance(value, Tensor):
        return (value,)
    if value is None:
        return ()
    try:
        result = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a Tensor or a sequence of Tensors, got "
                        f"{type(value).__name__}") from None
    for item in result:
        if not isinstance(item, Tensor):
            raise TypeError(f"{name} must hold Tensors, got a {type(item).__name__}")
    return result


def _root_grads(outputs: tuple, grad_outputs, op: str) -> tuple:
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor) or backend.is_array(grad_outputs):
        grad_outputs = (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"{op}: grad_outputs has {len(grad_outputs)} entries, but there are "
            f"{len(outputs)} outputs"
        )
    for number, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"{op}: element {number} of tensors does not require grad and does not have a "
                "grad_fn; did you create the inputs with requires_grad=True, or run under "
                "no_grad()?"
            )
    return tuple([_root_gradient(out, g, op) for out, g in zip(outputs, grad_outputs, strict=True)])


def _root_gradient(root, gradient, op: str) -> Tensor:
    """The gradient backward starts from: ones for a one-element root, else the given one."""
    if gradient is None:
        if root.array.size != 1:
            raise RuntimeError(
                f"{op}: grad can be implicitly created only for scalar outputs (a tensor with "
                f"one element), but this one has shape {root.shape}; pass gradient="
            )
        ones = backend.module_for(root.device).empty(root.array.shape, root.array.dtype)
        ones.fill(1)  # (numpy.ones is a Python function that does the same, more slowly)
        return Tensor._wrap_no_copy_no_checks(ones, root.device)
    if not isinstance(gradient, Tensor):
        gradient = Tensor(gradient, dtype=root.dtype, device=root.device)
    if gradient.shape != root.shape:
        raise RuntimeError(
            f"{op}: gradient has shape {gradient.shape}, but the tensor has shape {root.shape}; "
            "they must match"
        )
    if gradient.device is not root.device:
        raise RuntimeError(f"{op}: gradient is on {gradient.device}, the tensor on {root.device}")
    return gradient if gradient.dtype == root.dtype else gradient.to(root.dtype)


def _inputs(inputs, op: str) -> tuple:
    """The tensors to differentiate with respect to: at least one, each requiring grad."""
    inputs = _as_tuple(inputs, "inputs")
    if not inputs:
        raise RuntimeError(f"{op}: inputs= was given as an empty sequence")
    for number, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"{op}: input {number} of inputs (One of the differentiated "
                               "Tensors) does not require grad")
    return inputs


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, as a tuple of Tensors."""
    outputs = _as_tuple(outputs, "outputs")
    inputs = _inputs(inputs, "grad")
    roots = _root_grads(outputs, grad_outputs, "grad")
    retain = create_graph if retain_graph is None else retain_graph
    captured = engine.run_backward(outputs, roots, retain, create_graph, inputs, capture=True)
    for number, g in enumerate(captured):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {number}: One of the differentiated Tensors appears to not have "
                "been used in the graph. Set allow_unused=True if this is the desired behavior."
            )
    if not create_graph:  # plain gradients: cut from the graph of the backward pass
        captured = [g if g is None else g.detach() for g in captured]
    return tuple(captured)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of `tensors` into the leaves' (or `inputs`') `.grad`."""
    tensors = _as_tuple(tensors, "tensors")
    roots = _root_grads(tensors, grad_tensors, "backward")
    inputs = None if inputs is None else _inputs(inputs, "backward")
    retain = create_graph if retain_graph is None else retain_graph
    engine.run_backward(tensors, roots, retain, create_graph, inputs)


from ..tensor import Tensor  # noqa: E402  (tensor.py imports the engine)
