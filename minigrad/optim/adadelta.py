"""Adadelta, computed as torch.optim.Adadelta's single-tensor path computes it.

    g = -grad if maximize else grad
    g = g + weight_decay * p
    s = rho * s + (1 - rho) * g * g
    d = sqrt(u + eps) / sqrt(s + eps) * g
    u = rho * u + (1 - rho) * d * d
    p = p - lr * d

As Adam's (see adam.py), float64 trajectories equal PyTorch's to ~1e-12, float32 to ~1e-6.
"""

from __future__ import annotations

from .. import backend
from ..grad_mode import recorded_as_one_call
from .optimizer import Optimizer, check_unsupported


class Adadelta(Optimizer):
    """Adadelta (Zeiler), with PyTorch's options: weight_decay, maximize."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        check_unsupported("Adadelta", dict(foreach=foreach, capturable=capturable,
                                           differentiable=differentiable))
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    @recorded_as_one_call
    def step(self, closure=None):
        """Update every parameter that has a gradient, in place; return closure() if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, rho, eps, weight_decay = group["lr"], group["rho"], group["eps"], \
                group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                p, grad = param.array, param.grad.array
                dtype = p.dtype.type
                xp = backend.array_module(p)
                if group["maximize"]:
                    grad = -grad
                state = self.state.setdefault(param, {})
                if not state:
                    state["step"] = 0.0
                    state["square_avg"] = xp.zeros_like(p)
                    state["acc_delta"] = xp.zeros_like(p)
                state["step"] = float(state["step"]) + 1
                if weight_decay:
                    grad = grad + dtype(weight_decay) * p
                square_avg, acc_delta = state["square_avg"], state["acc_delta"]
                square_avg *= dtype(rho)
                square_avg += dtype(1 - rho) * grad * grad
                std = xp.sqrt(square_avg + dtype(eps))
                delta = xp.sqrt(acc_delta + dtype(eps))
                delta /= std
                delta *= grad
                acc_delta *= dtype(rho)
                acc_delta += dtype(1 - rho) * delta * delta
                p += dtype(-lr) * delta
                param._bump_version()
        return loss
