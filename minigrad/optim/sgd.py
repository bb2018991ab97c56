"""Stochastic gradient descent, exactly torch.optim.SGD's update."""

from __future__ import annotations

from .. import backend
from ..cuda import kernels
from .optimizer import Optimizer


class SGD(Optimizer):
    """p -= lr * d, where d is the gradient with weight decay, momentum and nesterov applied.

        d = g + weight_decay * p
        b = d                                    (first step)
        b = momentum * b + (1 - dampening) * d   (later steps)
        d = d + momentum * b  if nesterov  else  b
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)
        self._scratch = {}  # param -> two arrays like it, for _update's intermediate values

    def step(self) -> None:
        """Update every parameter that has a gradient, in place.

        The update works on the arrays directly, never through Function.apply, so it records
        nothing in the graph (the job torch.no_grad() does in PyTorch's optimisers).
        """
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            on_gpu = []  # (param, grad array) pairs for the one fused multi-tensor launch
            for param in group["params"]:
                grad = param._grad
                if grad is None:
                    continue
                if kernels.applies(param.array, grad.array):
                    on_gpu.append(param)
                    continue
                self._update(param, grad.array, lr, momentum, dampening, weight_decay, nesterov)
                param._bump_version()  # a graph that saved this weight can no longer backward
            if on_gpu:  # CUDA: every parameter of the group in one kernel launch
                states = [self.state.setdefault(p, {}) if momentum else None for p in on_gpu]
                kernels.sgd_update_many([p.array for p in on_gpu],
                                        [p._grad.array for p in on_gpu], states, lr, momentum,
                                        dampening, weight_decay, nesterov)
                for param in on_gpu:
                    param._bump_version()

    def _update(self, param, d, lr, momentum, dampening, weight_decay, nesterov) -> None:
        """One parameter's update in place: the same operations, in the same order, as torch.

        The intermediate values go into two scratch arrays kept between steps (`_scratch`), so
        a step allocates nothing: a new 400 KB temporary per operation costs more than the
        arithmetic when the allocator has to fetch fresh pages for it.
        """
        p = param.array
        xp = backend.array_module(p)
        scratch = self._scratch.get(param)
        if scratch is None or scratch[0].shape != p.shape or scratch[0].dtype != p.dtype:
            scratch = self._scratch[param] = (xp.empty_like(p), xp.empty_like(p))
        first, second = scratch
        if weight_decay:  # d = g + weight_decay * p
            xp.multiply(p, weight_decay, out=first)
            xp.add(d, first, out=first)
            d = first
        if momentum:
            state = self.state.setdefault(param, {})
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = d.copy()  # b = d on the first step
            else:
                buffer *= momentum  # b = momentum * b + (1 - dampening) * d
                if dampening == 0:
                    buffer += d
                else:
                    xp.multiply(d, 1 - dampening, out=second)
                    buffer += second
            if nesterov:  # d = d + momentum * b
                xp.multiply(buffer, momentum, out=second)
                xp.add(d, second, out=second)
                d = second
            else:
                d = buffer
        xp.multiply(d, lr, out=second)  # p = p - lr * d
        p -= second
