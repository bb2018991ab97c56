"""Stochastic gradient descent, exactly torch.optim.SGD's update."""

from __future__ import annotations

from .. import backend
from ..fused import kernels
from ..grad_mode import enable_grad, recorded_as_one_call
from .optimizer import Optimizer, check_unsupported


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
        check_unsupported("SGD", dict(foreach=foreach, differentiable=differentiable, fused=fused))
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        self._scratch = {}  # param -> two arrays like it, for the update's intermediate values

    @recorded_as_one_call
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
            numbers, numbers_dtype = None, None  # the settings in the parameters' dtype
            for param in group["params"]:
                grad = param._grad
                if grad is None:
                    continue
                if kernels.applies(param.array, grad.array):
                    on_gpu.append(param)
                    continue
                if param.array.dtype is not numbers_dtype:
                    numbers, numbers_dtype = _numbers(settings, param.array), param.array.dtype
                self._update_one(param, grad.array, settings, numbers)
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

    def _update_one(self, param, grad, settings, numbers) -> None:
        """One parameter's update, its momentum buffer kept in self.state as torch keeps it."""
        array = param.array
        scratch = self._scratch.get(param)  # two arrays like the parameter, made once
        if (scratch is None or scratch[0].shape != array.shape
                or scratch[0].dtype is not array.dtype or scratch[0].strides != array.strides):
            xp = backend.array_module(array)
            scratch = self._scratch[param] = (xp.empty_like(array), xp.empty_like(array))
        if not settings[1]:  # no momentum: no state
            _update(array, grad, None, scratch, settings, numbers)
            return
        state = self.state.setdefault(param, {})
        state["momentum_buffer"] = _update(array, grad, state.get("momentum_buffer"), scratch,
                                           settings, numbers)


def _numbers(settings, array) -> tuple:
    """lr, momentum, 1 - dampening and weight_decay as 0-d NumPy arrays of the array's dtype:
    NumPy multiplies by one of those in half the time it takes for a Python float, with the
    same result (a Python float is cast to the array's dtype either way)."""
    lr, momentum, dampening, weight_decay, _, _ = settings
    values = (lr, momentum, 1 - dampening, weight_decay)
    if type(array) is not backend.ndarray:  # CuPy: Python numbers go to the kernel as they are
        return values
    numpy = backend.module_for(backend.CPU)
    return tuple([numpy.asarray(v, array.dtype) for v in values])


def _update(p, grad, buffer, scratch, settings, numbers):
    """p updated in place, with torch's operations in torch's order; returns the momentum buffer
    (a new one on the first step, None without momentum).

    The intermediate values go into the two scratch arrays, so a step allocates nothing: a new
    400 KB temporary per operation can cost more than its arithmetic when the allocator has to
    fetch fresh pages for it.
    """
    _, momentum, dampening, weight_decay, nesterov, maximize = settings
    lr_, momentum_, undamped_, weight_decay_ = numbers
    xp = backend.array_module(p)
    first, second = scratch
    d = grad
    if maximize:
        d = xp.negative(grad, first)
    if weight_decay:  # d = d + weight_decay * p
        xp.multiply(p, weight_decay_, second)
        d = xp.add(d, second, first)
    if momentum:
        if buffer is None:
            buffer = d.copy(order="K")  # b = d on the first step (in the parameter's layout)
        else:
            xp.multiply(buffer, momentum_, buffer)  # b = momentum * b + (1 - dampening) * d
            buffer += d if dampening == 0 else xp.multiply(d, undamped_, second)
        if nesterov:  # d = d + momentum * b
            xp.multiply(buffer, momentum_, second)
            d = xp.add(d, second, second)
        else:
            d = buffer
    p -= xp.multiply(d, lr_, second)  # p = p - lr * d
    return buffer
