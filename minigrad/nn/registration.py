"""Module's methods that register parameters, buffers and child modules by name (a base class
of Module, kept in this file so that module.py stays about the tree and its state)."""

from __future__ import annotations

from ..tensor import Tensor
from .parameter import Parameter

# How many times any module's parameters, buffers, submodules or train flag were set: a
# compiled function (minigrad/compiler) looks again at the modules it uses only when it moved.
changes = [0]


class Registration:
    """register_parameter, register_buffer and add_module, with PyTorch's checks."""

    __slots__ = ()

    def _check_new_name(self, name, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'{kind} name can\'t contain "." or be empty, got {name!r}')
        taken = (name in self.__dict__ and name not in self._parameters
                 and name not in self._buffers and name not in self._modules)
        if taken:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param) -> None:
        """Add a Parameter (or None: a slot with no parameter yet) under `name`."""
        self._check_new_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (torch.nn.Parameter or None required)")
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._parameters[name] = param
        object.__setattr__(self, name, param)
        changes[0] += 1

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (in state_dict when persistent)."""
        self._check_new_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (torch Tensor or None required)")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)
        object.__setattr__(self, name, tensor)
        changes[0] += 1

    def add_module(self, name: str, module) -> None:
        """Add a child module (or None) under `name`."""
        self._check_new_name(name, "module")
        if module is not None and not isinstance(module, Registration):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules[name] = module
        object.__setattr__(self, name, module)
        changes[0] += 1

    register_module = add_module
