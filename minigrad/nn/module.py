"""Module and Parameter: how layers hold their weights and find each other's.

Assigning a Parameter or a Module to an attribute registers it (in `_parameters` or `_modules`)
as well as storing it as a normal attribute, so `self.fc1` costs nothing extra in forward.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

from .. import backend
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module owns as a weight: requires_grad defaults to True."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data)
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclass, assign layers in __init__, write forward."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        """The module's computation; every subclass writes its own."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, (Parameter, Module)) and "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        registries = (self.__dict__.get("_parameters", {}), self.__dict__.get("_modules", {}))
        for registry in registries:
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ---- walking the tree ------------------------------------------------------------------

    def named_children(self):
        yield from self._modules.items()

    def children(self):
        """The direct submodules, in the order they were assigned."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = ""):
        """This module and every module below it, depth first, with dotted names."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        """This module and every module below it, depth first."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, Parameter) pairs; a parameter shared by two layers appears once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True):
        """Every Parameter of this module and (with recurse) its submodules, each once."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    # ---- training helpers ------------------------------------------------------------------

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (sets .grad to None, as PyTorch does by default)."""
        for param in self.parameters():
            param.grad = None

    def train(self, mode: bool = True) -> Module:
        """Set the training flag on this module and every submodule; return self."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Same as train(False): switch every submodule to evaluation mode."""
        return self.train(False)

    def to(self, device) -> Module:
        """Move every parameter (and its gradient) to a device, in place."""
        dev = backend.device(device)
        for param in self.parameters():
            param.data = backend.to_device(param.data, dev)
            param.device = dev
            if param.grad is not None:
                param.grad = param.grad.to(dev)
        return self

    # ---- state dicts -----------------------------------------------------------------------

    def state_dict(self) -> OrderedDict:
        """Every parameter by dotted name, as tensors that share the parameters' arrays."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters in place; names and shapes must match."""
        own = dict(self.named_parameters())
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            array = value.data if isinstance(value, Tensor) else value
            if tuple(array.shape) != param.shape:
                raise ValueError(
                    f"load_state_dict for {type(self).__name__}: {name!r} has shape "
                    f"{tuple(array.shape)} in the state dict but {param.shape} in the model"
                )
        for name, param in own.items():
            if name in state_dict:
                value = state_dict[name]
                array = value.data if isinstance(value, Tensor) else value
                param.data[...] = backend.as_array(backend.to_host(array), param.dtype, param.device)
        return IncompatibleKeys(missing, unexpected)

    # ---- printing --------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The settings a subclass shows inside its parentheses when printed."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"
