"""Stochastic gradient descent, exactly torch.optim.SGD's update."""

from __future__ import annotations

from .. import backend
from ..autograd.grad_mode import enable_grad
from ..cuda import kernels
from .adam import check_unsupported
from .optimizer import Optimizer


class SGD(Optimizer):
    """p -= lr * d, where d is the gradient with weight decay, momentum and nesterov applied.

        d = -g if maximize else g
        d = d + weight_decay * p
        b = d                                    (first step)
        b = momentum * b + (1 - dampening) * d   (later steps)
        d = d + momentum * b  if nesterov  else  b

    foreach and fused are accepted as PyTorch's switches between implementations of this
    same update. On the CPU both run the loop below: NumPy has no multi-tensor kernels, and
    moving a group's parameters into one flat array was measured barely faster (see
    benchmarks/README.md), not worth moving memory that users may hold. On a GPU every group
    is one kernel launch.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if foreach and fused:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        check_unsupported("SGD", dict(differentiable=differentiable))
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        self._scratch = {}  # param -> two arrays like it, for the update's intermediate values

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place; return closure() if given.

        The update works on the arrays directly, never through Function.apply, so it records
        nothing in the graph (the job torch.no_grad() does in PyTorch's optimisers).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            settings = (group["lr"], group["momentum"], group["dampening"],
                        group["weight_decay"], group["nesterov"], group["maximize"])
            on_gpu = []  # parameters for the one fused multi-tensor launch
            for param in group["params"]:
                grad = param._grad
                if grad is None:
                    continue
                if kernels.applies(param.array, grad.array):
                    on_gpu.append(param)
                    continue
                self._update_one(param, grad.array, settings)
                param._bump_version()  # a graph that saved this weight can no longer backward
            if on_gpu:  # CUDA: every parameter of the group in one kernel launch
                lr, momentum, dampening, weight_decay, nesterov, maximize = settings
                states = [self.state.setdefault(p, {}) if momentum else None for p in on_gpu]
                grads = [-p._grad.array if maximize else p._grad.array for p in on_gpu]
                kernels.sgd_update_many([p.array for p in on_gpu], grads, states, lr, momentum,
                                        dampening, weight_decay, nesterov)
                for param in on_gpu:
                    param._bump_version()
        return loss

    def _update_one(self, param, grad, settings) -> None:
        """One parameter's update, its momentum buffer kept in self.state as torch keeps it."""
        if not settings[1]:  # no momentum: no state
            _update(param.array, grad, None, self._scratch_for(param, param.array), settings)
            return
        state = self.state.setdefault(param, {})
        state["momentum_buffer"] = _update(param.array, grad, state.get("momentum_buffer"),
                                           self._scratch_for(param, param.array), settings)

    def _scratch_for(self, param, array) -> tuple:
        """Two arrays shaped and typed like `array`, made once and reused every step."""
        scratch = self._scratch.get(param)
        if scratch is None or scratch[0].shape != array.shape or scratch[0].dtype != array.dtype:
            xp = backend.array_module(array)
            scratch = self._scratch[param] = (xp.empty_like(array), xp.empty_like(array))
        return scratch


def _update(p, grad, buffer, scratch, settings):
    """p updated in place, with torch's operations in torch's order; returns the momentum buffer
    (a new one on the first step, None without momentum).

    The intermediate values go into the two scratch arrays, so a step allocates nothing: a new
    400 KB temporary per operation can cost more than its arithmetic when the allocator has to
    fetch fresh pages for it.
    """
    lr, momentum, dampening, weight_decay, nesterov, maximize = settings
    xp = backend.array_module(p)
    first, second = scratch
    d = grad
    if maximize:
        d = xp.negative(grad, out=first)
    if weight_decay:  # d = d + weight_decay * p
        xp.multiply(p, weight_decay, out=second)
        d = xp.add(d, second, out=first)
    if momentum:
        if buffer is None:
            buffer = d.copy()  # b = d on the first step
        else:
            buffer *= momentum  # b = momentum * b + (1 - dampening) * d
            if dampening == 0:
                buffer += d
            else:
                buffer += xp.multiply(d, 1 - dampening, out=second)
        if nesterov:  # d = d + momentum * b
            xp.multiply(buffer, momentum, out=second)
            d = xp.add(d, second, out=second)
        else:
            d = buffer
    p -= xp.multiply(d, lr, out=second)  # p = p - lr * d
    return buffer
