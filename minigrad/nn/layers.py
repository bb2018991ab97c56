"""Layers: Linear, the activation modules, Flatten and Sequential."""

from __future__ import annotations

from .. import backend
from ..fused import kernels
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x @ W^T + b, with W of shape (out_features, in_features) as in PyTorch."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            try:
                if backend.as_int(size, name) >= 0:
                    continue
            except TypeError:
                pass
            raise ValueError(f"Linear: {name} must be a non-negative int, got {size!r}")
        in_features, out_features = int(in_features), int(out_features)
        self.in_features, self.out_features = in_features, out_features
        dev = backend.device(device)
        dt = backend.dtype(dtype) or backend.float32
        xp = backend.module_for(dev)
        wrap = Tensor._wrap_no_copy_no_checks
        self.weight = Parameter(wrap(xp.empty((out_features, in_features), dt), dev))
        self.bias = Parameter(wrap(xp.empty(out_features, dt), dev)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: W and b uniform in +-1/sqrt(in_features)."""
        init.kaiming_uniform_linear_(self.weight)
        if self.bias is not None:
            bound = init.linear_bound(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        """y = x @ W^T + b for input x of shape (..., in_features)."""
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        """The settings shown inside Linear(...) when printed."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class ReLU(Module):
    """y = max(x, 0)"""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """y = max(x, 0), elementwise (written into x itself with inplace=True)."""
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        """inplace=True, as PyTorch shows it (nothing otherwise)."""
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))"""

    def forward(self, input: Tensor) -> Tensor:
        """y = 1 / (1 + exp(-x)), elementwise."""
        return F.sigmoid(input)


class Tanh(Module):
    """y = tanh(x)"""

    def forward(self, input: Tensor) -> Tensor:
        """y = tanh(x), elementwise."""
        return F.tanh(input)


class Flatten(Module):
    """Merge dims start_dim..end_dim (by default all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        """The input with dims start_dim..end_dim merged into one."""
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        """The settings shown inside Flatten(...) when printed."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Modules applied one after another; children are named "0", "1", ..."""

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential: argument {index} is {type(module).__name__}, not a Module"
                )
            setattr(self, str(index), module)

    def forward(self, input):
        """Apply each module in order, feeding each one's output to the next.

        Every module is its own node, as written, on every device; only with the GPU's fused
        paths switched on (minigrad.fused.kernels.enabled) does a Linear followed by a ReLU run
        as one node there (F.linear_relu): the same values with fewer kernel launches.
        """
        modules = list(self._modules.values())
        on_gpu = type(input) is Tensor and kernels.applies(input.array)  # (not vmap's)
        i = 0
        while i < len(modules):
            module = modules[i]
            if (on_gpu and type(module) is Linear and i + 1 < len(modules)
                    and type(modules[i + 1]) is ReLU):
                input = F.linear_relu(input, module.weight, module.bias)
                i += 2
                continue
            input = module(input)
            i += 1
        return input

    def __getitem__(self, index):
        """One module by position, or a Sequential of a slice of them, as in PyTorch."""
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
