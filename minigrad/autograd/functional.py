"""autograd.functional: vjp, jacobian, hessian and hvp, built on autograd.grad.

Each takes a function and its inputs (a Tensor or a tuple of Tensors), as in PyTorch. Without
`create_graph`, each input is replaced by a detached tensor on the same memory that requires
grad, so nothing reaches the caller's graph. With `create_graph=True`, an input that requires grad
enters through an identity view (`view_as`), so the results stay connected to it: a loss built
from a Jacobian or a Hessian-vector product trains what the input depends on.
"""

from __future__ import annotations

from ..engine.backward import grad
from ..factories import zeros, zeros_like
from ..grad_mode import enable_grad
from ..tensor import Tensor
from ..tensor_functions import stack


def _prepare(inputs, create_graph: bool):
    single = isinstance(inputs, Tensor)
    items = (inputs,) if single else tuple(inputs)
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(f"inputs must be Tensors, got a {type(item).__name__}")
    with enable_grad():
        prepared = tuple(t.view_as(t) if create_graph and t.requires_grad
                         else t.detach().requires_grad_(True) for t in items)
    return single, prepared


def _zeros_for_none(grads, inputs):
    return tuple(g if g is not None else zeros_like(t) for g, t in zip(grads, inputs, strict=True))


def _finish(values, single: bool, create_graph: bool):
    values = tuple(v if create_graph else v.detach() for v in values)
    return values[0] if single else values


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, what one backward pass computes."""
    single, inputs = _prepare(inputs, create_graph)
    with enable_grad():
        output = func(*inputs)
        if not isinstance(output, Tensor):
            raise TypeError("vjp: func must return a single Tensor")
        if not output.requires_grad:
            grads = (None,) * len(inputs)
        else:
            grads = grad(output, inputs, v, create_graph=create_graph, allow_unused=True)
    if strict and any(g is None for g in grads):
        raise RuntimeError("vjp: the output is independent of an input (strict=True)")
    result = _finish(_zeros_for_none(grads, inputs), single, create_graph)
    return (output if create_graph else output.detach()), result


def jacobian(func, inputs, create_graph=False, strict=False):
    """d func(inputs) / d inputs, of shape output.shape + input.shape (one per input)."""
    single, inputs = _prepare(inputs, create_graph)
    with enable_grad():
        output = func(*inputs)
        if not isinstance(output, Tensor):
            raise TypeError("jacobian: func must return a single Tensor")
        flat = output.reshape(-1)
        rows = [[] for _ in inputs]
        for i in range(flat.shape[0]):
            if flat.requires_grad:
                grads = grad(flat[i], inputs, retain_graph=True, create_graph=create_graph,
                             allow_unused=True)
            else:
                grads = (None,) * len(inputs)
            if strict and any(g is None for g in grads):
                raise RuntimeError("jacobian: the output is independent of an input (strict=True)")
            for row, g in zip(rows, _zeros_for_none(grads, inputs), strict=True):
                row.append(g)
    result = []
    for row, t in zip(rows, inputs, strict=True):
        stacked = stack(row) if row else zeros((0,) + t.shape, dtype=t.dtype, device=t.device)
        result.append(stacked.reshape(output.shape + t.shape))
    return _finish(result, single, create_graph)


def hessian(func, inputs, create_graph=False, strict=False):
    """The matrix of second derivatives of a scalar func, of shape input.shape * 2."""
    single, prepared = _prepare(inputs, create_graph)

    def gradient(*xs):
        with enable_grad():
            out = func(*xs)
            if out.numel() != 1:
                raise RuntimeError(f"hessian: func must return a single-element Tensor, got "
                                   f"shape {out.shape}")
            grads = grad(out, xs, create_graph=True, allow_unused=True)
        return _zeros_for_none(grads, xs)

    if single:
        return jacobian(lambda x: gradient(x)[0], prepared[0], create_graph, strict)
    return tuple(
        jacobian(lambda *xs, i=i: gradient(*xs)[i], prepared, create_graph, strict)
        for i in range(len(prepared))
    )


def hvp(func, inputs, v, create_graph=False, strict=False):
    """(func(inputs), H v): the Hessian-vector product, by two backward passes (no Hessian)."""
    single, inputs = _prepare(inputs, create_graph)
    vs = (v,) if isinstance(v, Tensor) else tuple(v)
    with enable_grad():
        output = func(*inputs)
        if not isinstance(output, Tensor) or output.numel() != 1:
            raise RuntimeError("hvp: func must return a single-element Tensor")
        grads = _zeros_for_none(grad(output, inputs, create_graph=True, allow_unused=True), inputs)
        dot = sum((g * u).sum() for g, u in zip(grads, vs, strict=True))
        if isinstance(dot, Tensor) and dot.requires_grad:
            second = grad(dot, inputs, create_graph=create_graph, allow_unused=True)
        else:
            second = (None,) * len(inputs)
    if strict and any(g is None for g in second):
        raise RuntimeError("hvp: the output is independent of an input (strict=True)")
    result = _finish(_zeros_for_none(second, inputs), single, create_graph)
    return (output if create_graph else output.detach()), result


