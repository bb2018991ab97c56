"""once_differentiable, from torch.autograd.function: a backward run without a graph."""

from __future__ import annotations

import functools

from ..engine.function import Op
from ..grad_mode import grad_mode
from ..tensor import Tensor


def once_differentiable(backward):
    """Decorate a backward that cannot itself be differentiated: it runs under no_grad, and a
    second backward through its results raises instead of giving a silently wrong answer."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        recording = grad_mode.enabled
        grad_mode.enabled = False
        try:
            grads = backward(ctx, *grad_outputs)
        finally:
            grad_mode.enabled = recording
        if not recording:
            return grads
        single = not isinstance(grads, tuple)
        sources = [g for g in grad_outputs if isinstance(g, Tensor) and g.requires_grad]
        if not sources:
            return grads
        marked = tuple(
            _DelayedError.apply(g, ctx.name(), *sources) if isinstance(g, Tensor) else g
            for g in ((grads,) if single else grads)
        )
        return marked[0] if single else marked

    return wrapper


class _DelayedError(Op):
    """Passes a gradient through; differentiating it raises (see once_differentiable)."""

    @staticmethod
    def forward(ctx, grad, name, *sources):
        ctx.node_name = name
        return grad.array

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            f"trying to differentiate twice a function that was marked with "
            f"@once_differentiable ({ctx.node_name})"
        )
