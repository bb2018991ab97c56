"""Module and Parameter: how layers hold their weights and find each other's.

Assigning a Parameter or a Module to an attribute registers it (in `_parameters` or `_modules`)
as well as storing it as a normal attribute, so `self.fc1` costs nothing extra in forward.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

from .. import backend
from ..grad_mode import recorded_as_one_call
from ..tensor import Tensor, reset_grad
from .parameter import Parameter
from .registration import Registration, changes

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module(Registration):
    """Base class of layers and models: subclass, assign layers in __init__, write forward."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        """The module's computation; every subclass writes its own."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __setattr__(self, name: str, value) -> None:
        changes[0] += 1  # (any attribute: a compiled function looks at its modules again)
        if isinstance(value, (Parameter, Module)) and "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        parameters = self.__dict__.get("_parameters", {})
        modules = self.__dict__.get("_modules", {})
        buffers = self.__dict__.get("_buffers", {})
        if name in buffers:  # self.running_mean = new_tensor keeps it a buffer, as in PyTorch
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                "(a Tensor or None expected)")
            buffers[name] = value
            object.__setattr__(self, name, value)
            return
        # Replacing a weight by a plain tensor would silently drop it from parameters().
        if name in parameters and not isinstance(value, Parameter) and value is not None:
            raise TypeError(
                f"cannot assign {type(value).__name__} as parameter {name!r} of "
                f"{type(self).__name__} (a Parameter or None expected)"
            )
        if name in modules and not isinstance(value, Module) and value is not None:
            raise TypeError(
                f"cannot assign {type(value).__name__} as child module {name!r} of "
                f"{type(self).__name__} (a Module or None expected)"
            )
        # A replaced parameter or module keeps its place in the order, as in PyTorch.
        if isinstance(value, Parameter):
            modules.pop(name, None)
            parameters[name] = value
        elif isinstance(value, Module):
            parameters.pop(name, None)
            modules[name] = value
        else:
            parameters.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        changes[0] += 1
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    # ---- walking the tree ------------------------------------------------------------------

    def named_children(self):
        """(name, module) for each direct child; a module assigned twice appears once."""
        seen = set()
        for name, module in self._modules.items():
            if id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        """The direct submodules, in the order they were assigned."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "", _seen: set | None = None):
        """This module and every module below it, depth first, with dotted names; each once."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

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
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True):
        """Every Parameter of this module and (with recurse) its submodules, each once."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        """(dotted name, buffer) pairs, each buffer once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, buffer in module._buffers.items():
                if buffer is not None and id(buffer) not in seen:
                    seen.add(id(buffer))
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self, recurse: bool = True):
        """Every buffer of this module and (with recurse) its submodules."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn) -> Module:
        """Call fn(module) on every submodule (children first) and on self; return self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set requires_grad on every parameter; return self."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    # ---- training helpers ------------------------------------------------------------------

    @recorded_as_one_call
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: .grad = None (PyTorch's default), or detach it and
        fill it with zeros."""
        for param in self.parameters():
            reset_grad(param, set_to_none)

    def train(self, mode: bool = True) -> Module:
        """Set the training flag on this module and every submodule; return self."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        changes[0] += 1
        return self

    def eval(self) -> Module:
        """Same as train(False): switch every submodule to evaluation mode."""
        return self.train(False)

    def to(self, device=None, dtype=None) -> Module:
        """Move every parameter (and gradient) and buffer to a device and/or cast the floating
        ones to a floating dtype, in place: model.to("cuda"), model.to(mg.float64)."""
        if isinstance(device, Tensor):
            device, dtype = device.device, device.dtype
        elif device is not None and not isinstance(device, (str, backend.Device)):
            device, dtype = None, device  # model.to(mg.float64)
        dev = None if device is None else backend.device(device)
        dt = backend.dtype(dtype)
        if dt is not None and not backend.is_floating(dt):
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got {dt}")
        for param in self.parameters():
            _move(param, dev, dt)
            if param.grad is not None:
                param._grad = _moved(param.grad.detach(), dev, dt)
        for module in self.modules():
            for buffer in module._buffers.values():
                if buffer is not None:
                    _move(buffer, dev, dt)
        return self

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64."""
        return self.to(dtype=backend.float64)

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32."""
        return self.to(dtype=backend.float32)

    def cpu(self) -> Module:
        """Move everything to the CPU."""
        return self.to("cpu")

    def cuda(self, device: int = 0) -> Module:
        """Move everything to GPU `device`."""
        return self.to(f"cuda:{device}")

    # ---- state dicts -----------------------------------------------------------------------

    def _parameter_slots(self, prefix: str = ""):
        """Every (dotted name, Parameter or buffer) slot: a tied weight appears under each name."""
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent:
                yield prefix + name, buffer
        for name, child in self._modules.items():
            if child is not None:
                yield from child._parameter_slots(f"{prefix}{name}.")

    def state_dict(self) -> OrderedDict:
        """Every parameter and persistent buffer by dotted name, as tensors sharing their arrays.

        As in PyTorch, a parameter shared by two layers is listed under both names.
        """
        return OrderedDict((name, p.detach()) for name, p in self._parameter_slots())

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters in place; names (when strict) and shapes must match.

        Nothing is copied unless every check passes, so a failed load leaves the model as it was.
        """
        own = dict(self._parameter_slots())
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        arrays = {}
        problems = []
        if strict and missing:
            problems.append("missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            problems.append("unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        for name, param in own.items():
            if name not in state_dict:
                continue
            value = state_dict[name]
            arrays[name] = value.array if isinstance(value, Tensor) else value
            if not hasattr(arrays[name], "shape"):  # arrays, or tensors of other libraries
                problems.append(
                    f"{name!r} is a {type(value).__name__} in the state dict, not a tensor or array"
                )
            elif tuple(arrays[name].shape) != param.shape:
                problems.append(
                    f"size mismatch for {name!r}: shape {tuple(arrays[name].shape)} in the "
                    f"state dict, {param.shape} in the model"
                )
        if problems:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(problems)
            )
        for name, array in arrays.items():
            param = own[name]
            param.array[...] = backend.as_array(backend.to_host(array), param.dtype, param.device)
            param._bump_version()
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


def _moved(tensor: Tensor, dev, dt) -> Tensor:
    """tensor on dev, with a floating tensor cast to dt (None: unchanged)."""
    if dt is not None and backend.is_floating(tensor.dtype):
        tensor = tensor.to(dtype=dt)
    return tensor if dev is None else tensor.to(dev)


def _move(tensor: Tensor, dev, dt) -> None:
    """Move or cast a parameter or buffer in place: it stays the same Python object."""
    moved = _moved(tensor.detach(), dev, dt)
    if moved.array is not tensor.array:
        tensor.array, tensor.device = moved.array, moved.device
        tensor._bump_version()
