"""Parameter: a Tensor that a Module owns as a weight."""

from __future__ import annotations

from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns as a weight: requires_grad defaults to True.

    `Parameter(t)` shares t's memory (and version counter), as in PyTorch.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        if not isinstance(data, Tensor):
            data = Tensor._from_data(data)
        self.array, self.device = data.array, data.device
        self._grad_fn = self._grad = self._view_of = self._hooks = None
        self._requires_grad, self._output_nr = False, 0
        self._version_counter = data._version_counter
        self._inference = data._inference
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
