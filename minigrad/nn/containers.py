"""More modules under PyTorch's names: ModuleList, Identity, Dropout, Softmax, LogSoftmax."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class ModuleList(Module):
    """A list of modules, each registered (so its parameters are the list's), named "0", ..."""

    def __init__(self, modules=None):
        super().__init__()
        for module in modules or ():
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        """Add a module at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        """Add each module at the end."""
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        return ModuleList(modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Identity(Module):
    """y = x (a placeholder; any constructor arguments are ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        """The input itself."""
        return input


class Dropout(Module):
    """In training, zero each element with probability p and scale the rest by 1 / (1 - p)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:
        """Dropout in training mode; the input itself in eval mode."""
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        """The settings shown inside Dropout(...) when printed."""
        return f"p={self.p}, inplace={self.inplace}"


class Softmax(Module):
    """y = exp(x) / sum(exp(x)) along dim."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        """The softmax of the input along self.dim."""
        if self.dim is None:
            raise TypeError("Softmax: give dim= (minigrad does not guess it, as old PyTorch did)")
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        """The settings shown inside Softmax(...) when printed."""
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """y = x - log(sum(exp(x))) along dim."""

    def forward(self, input: Tensor) -> Tensor:
        """The log-softmax of the input along self.dim."""
        if self.dim is None:
            raise TypeError("LogSoftmax: give dim= (minigrad does not guess it)")
        return F.log_softmax(input, self.dim)
