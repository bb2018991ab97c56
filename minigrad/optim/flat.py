"""Flat buffers for SGD(foreach=True): a group's parameters and momentum as one array each.

NumPy pays a fixed cost of about a microsecond per call. Updating the tutorial's six parameters
with eight operations each is 48 calls, most of them on small biases where the cost is all
call. With every parameter a view of one flat array, the same update is eight calls on the
whole group (plus one to gather the gradients), which is what PyTorch's foreach path does with
its multi-tensor kernels. The values are the same, operation for operation.

Moving the parameters into one array changes where their memory is. The Parameter objects stay
the same, but an array that shared a parameter's memory before the move (a view, `.detach()`,
`.data`, `state_dict()`, a kept `.array`) would silently stop following it. So the move is
refused, with an error, when anything else holds a parameter's array.
"""

from __future__ import annotations

import sys

from .. import backend

numpy = backend.module_for(backend.CPU)  # the flat path is the CPU's


class _Holder:
    __slots__ = ("array",)


def _unshared_count() -> int:
    """What sys.getrefcount reports for an array only a Tensor holds (it differs by version)."""
    holder = _Holder()
    holder.array = numpy.empty(1)
    return sys.getrefcount(holder.array)


_UNSHARED = _unshared_count()


class FlatGroup:
    """One group's parameters as views of `params`, their momentum buffers as views of
    `momentum` (None until the first step makes them), and `grads`, where each step gathers
    the gradients."""

    def __init__(self, tensors: list, state: dict, optimizer: str):
        for number, tensor in enumerate(tensors):
            # Any reference beyond the Tensor's own is someone else sharing this memory.
            if sys.getrefcount(tensor.array) > _UNSHARED:
                raise RuntimeError(
                    f"{optimizer}(foreach=True) moves each parameter into one flat buffer, but "
                    f"something else holds the array of parameter {number} (shape "
                    f"{tensor.shape}): a view, .detach(), .data, state_dict() or .array, which "
                    "would stop following the parameter. Make the optimizer before taking "
                    "those, or use foreach=False"
                )
        dtype = tensors[0].array.dtype
        self.sizes = [tensor.array.size for tensor in tensors]
        self.params = numpy.empty(sum(self.sizes), dtype)
        self.grads = numpy.empty_like(self.params)
        self.param_views = self._views(self.params, tensors)
        for tensor, view in zip(tensors, self.param_views, strict=True):
            view[...] = tensor.array
            tensor.array = view
        self.momentum = None
        self.momentum_views = ()
        buffers = [state.get(tensor, {}).get("momentum_buffer") for tensor in tensors]
        if all(buffer is not None for buffer in buffers):  # loaded, or made by foreach=False
            self.momentum = numpy.empty_like(self.params)
            self.momentum_views = self._views(self.momentum, tensors)
            for tensor, buffer, view in zip(tensors, buffers, self.momentum_views, strict=True):
                view[...] = buffer
                state[tensor]["momentum_buffer"] = view

    def _views(self, flat, tensors) -> list:
        views, start = [], 0
        for tensor, size in zip(tensors, self.sizes, strict=True):
            views.append(flat[start:start + size].reshape(tensor.array.shape))
            start += size
        return views

    def is_current(self, tensors: list, state: dict) -> bool:
        """Whether every parameter (and momentum buffer) still lives in these flat arrays: a
        `.data =`, `load_state_dict` or a new parameter list means making the group again."""
        if len(tensors) != len(self.param_views):
            return False
        for tensor, view in zip(tensors, self.param_views, strict=True):
            if tensor.array is not view:
                return False
        if self.momentum is None:
            return all("momentum_buffer" not in state.get(tensor, ()) for tensor in tensors)
        for tensor, view in zip(tensors, self.momentum_views, strict=True):
            if state.get(tensor, {}).get("momentum_buffer") is not view:
                return False
        return True

    def gather_grads(self, tensors: list):
        """The gradients, copied into `grads` in the parameters' order."""
        start = 0
        for tensor, size in zip(tensors, self.sizes, strict=True):
            self.grads[start:start + size] = tensor._grad.array.reshape(-1)
            start += size
        return self.grads

    def keep_momentum(self, momentum, tensors: list, state: dict) -> None:
        """After the first step: the new momentum array, and each parameter's buffer a view."""
        self.momentum = momentum
        self.momentum_views = self._views(momentum, tensors)
        for tensor, view in zip(tensors, self.momentum_views, strict=True):
            state.setdefault(tensor, {})["momentum_buffer"] = view


def can_flatten(tensors: list) -> bool:
    """The flat path takes CPU parameters of one floating dtype, each with a gradient."""
    first = tensors[0].array
    return all(
        type(t.array) is backend.ndarray and t.array.dtype == first.dtype and t._grad is not None
        for t in tensors
    )
