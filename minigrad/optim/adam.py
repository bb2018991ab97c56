"""Adam and AdamW, computed as torch.optim.Adam's single-tensor (CPU) path computes them.

    g = -grad if maximize else grad
    g = g + weight_decay * p                  (Adam: L2 penalty in the gradient)
    p = p * (1 - lr * weight_decay)           (AdamW: decoupled weight decay)
    m = m + (1 - beta1) * (g - m)             (torch's lerp)

In float64 the trajectories equal PyTorch's to ~1e-12; in float32 to ~1e-6 relative, not bit
for bit: PyTorch's CPU kernels round `a + b * c` once (a fused multiply-add, in add(alpha=),
addcmul and lerp), and its float32 sqrt is not always correctly rounded, while NumPy rounds
each operation exactly.
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                     (amsgrad; used instead of v below)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
"""

from __future__ import annotations

import math

from .. import backend
from ..grad_mode import recorded_as_one_call
from .optimizer import Optimizer, check_unsupported


class Adam(Optimizer):
    """Adam (Kingma and Ba), with PyTorch's options: amsgrad, weight_decay, maximize."""

    decoupled = False  # AdamW sets True: weight decay applied to the weights, not the gradient

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for index in (0, 1):
            if not 0.0 <= betas[index] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {index}: {betas[index]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        check_unsupported(type(self).__name__, dict(
            foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused))
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    @recorded_as_one_call
    def step(self, closure=None):
        """Update every parameter that has a gradient, in place; return closure() if given."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay = group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                self._update(param, group, lr, beta1, beta2, eps, weight_decay)
                param._bump_version()
        return loss

    def _update(self, param, group, lr, beta1, beta2, eps, weight_decay) -> None:
        p, grad = param.array, param.grad.array
        dtype = p.dtype.type  # Python numbers enter each operation in the parameter's dtype
        if group["maximize"]:
            grad = -grad
        state = self.state.setdefault(param, {})
        if not state:
            xp = backend.array_module(p)
            state["step"] = 0.0
            state["exp_avg"] = xp.zeros_like(p)
            state["exp_avg_sq"] = xp.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p)
        if weight_decay:
            if self.decoupled:
                p *= dtype(1 - lr * weight_decay)
            else:
                grad = grad + dtype(weight_decay) * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] = step = float(state["step"]) + 1
        m += dtype(1 - beta1) * (grad - m)
        v *= dtype(beta2)
        v += dtype(1 - beta2) * grad * grad
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        if group["amsgrad"]:
            xp = backend.array_module(p)
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = backend.array_module(p).sqrt(v) / dtype(bias_correction2_sqrt)
        denom += dtype(eps)
        p += dtype(-lr / (1 - beta1**step)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): weight_decay 0.01 by default."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, **options):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **options)
