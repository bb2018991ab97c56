"""Optimizer: parameter groups, per-parameter state, zero_grad and state dicts."""

from __future__ import annotations

import warnings

from .. import backend
from ..grad_mode import recorded_as_one_call
from ..tensor import Tensor, reset_grad


class Optimizer:
    """Base class: holds param_groups (a list of dicts of settings and params) and state."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}  # Parameter -> dict of its state (e.g. momentum_buffer)
        if isinstance(params, Tensor):  # list(tensor) would iterate over its rows
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, "
                f"but got a single {type(params).__name__}; pass a list: [tensor]"
            )
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a dict of params (and settings that override the defaults) as a new group."""
        if not isinstance(group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(group).__name__}")
        group = dict(group)
        params = group["params"]
        if isinstance(params, (set, frozenset)):  # an order that changes between runs
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs; use a list instead"
            )
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for param in group["params"]:
            # A tensor that does not require grad is accepted, as in PyTorch: it has no .grad,
            # so step() leaves it alone until it is unfrozen (requires_grad_(True)).
            if not isinstance(param, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is "
                    f"{type(param).__name__}"
                )
            if not param.is_leaf:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (made by {param.grad_fn.name()}): its "
                    "value is computed, not stored"
                )
        self._check_duplicates(group["params"])
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self.param_groups.append(group)

    def _check_duplicates(self, params: list) -> None:
        """A parameter in two groups would be updated twice per step: refuse it, as PyTorch does.

        Twice in one group, PyTorch only warns (a future version will refuse it), so we do too.
        """
        if len({id(param) for param in params}) != len(params):
            warnings.warn(
                f"{type(self).__name__}: a parameter group holds the same parameter more than "
                "once, so step() updates it more than once (PyTorch warns here too and will "
                "make it an error)",
                UserWarning,
                stacklevel=3,
            )
        for index, other in enumerate(self.param_groups):
            taken = {id(param) for param in other["params"]}
            for position, param in enumerate(params):
                if id(param) in taken:
                    raise ValueError(
                        f"some parameters appear in more than one parameter group: parameter "
                        f"{position} of the new group (shape {param.shape}) is already in "
                        f"group {index}"
                    )

    @recorded_as_one_call
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's .grad to None (PyTorch's default), or detach it and fill it
        with zeros."""
        for group in self.param_groups:
            for param in group["params"]:
                reset_grad(param, set_to_none)

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """{"state": {index: {...}}, "param_groups": [...]}, parameters named by index."""
        index_of = {}
        groups = []
        for group in self.param_groups:
            settings = {k: v for k, v in group.items() if k != "params"}
            settings["params"] = []
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
                settings["params"].append(index_of[id(param)])
            groups.append(settings)
        # Tensors that share the live arrays (as PyTorch's do); load_state_dict copies them.
        state = {
            index_of[id(param)]: {k: _as_tensor(v, param) for k, v in s.items()}
            for param, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore settings and per-parameter state saved by state_dict().

        Everything is checked before anything changes, so a state that does not fit leaves the
        optimizer as it was.
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: the state has {len(groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        params = {}
        for saved, group in zip(groups, self.param_groups, strict=True):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"load_state_dict: a saved group has {len(saved['params'])} parameters, "
                    f"the optimizer's has {len(group['params'])}"
                )
            params.update(zip(saved["params"], group["params"], strict=True))
        state = {}
        for index, saved_state in state_dict["state"].items():
            if int(index) not in params:
                raise ValueError(
                    f"load_state_dict: state for parameter {index}, which no group has"
                )
            param = params[int(index)]
            state[param] = {k: _copy_like(v, param, k, index) for k, v in saved_state.items()}
        for saved, group in zip(groups, self.param_groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _as_tensor(value, param: Tensor):
    """A state value as it appears in state_dict(): arrays become Tensors sharing memory."""
    if isinstance(value, Tensor):
        return value.detach()
    if backend.is_array(value):
        return Tensor._wrap_no_copy_no_checks(value, backend.device_of(value))
    return value


def _copy_like(value, param: Tensor, key: str, index):
    """A private copy of a saved state value, as an array on the parameter's device and dtype."""
    if not (isinstance(value, Tensor) or hasattr(value, "shape")):
        return value
    array = value.array if isinstance(value, Tensor) else value
    if array.ndim and tuple(array.shape) != param.shape:  # 0-d values are counters, not buffers
        raise ValueError(
            f"load_state_dict: {key!r} of parameter {index} has shape {tuple(array.shape)}, "
            f"but the parameter has shape {param.shape}"
        )
    floating = backend.is_floating(array.dtype)
    array = backend.as_array(
        backend.to_host(array), param.dtype if floating else None, param.device
    )
    # A copy, so two optimisers loaded from one state dict never update one shared buffer.
    return array.copy()


_UNSUPPORTED = ("capturable", "differentiable")


def check_unsupported(name: str, options: dict) -> None:
    """PyTorch's implementation switches: foreach and fused choose how one update is computed,
    and here every choice runs the same loop over the parameters (NumPy has no multi-tensor
    kernels); capturable and differentiable change what the update is, and are refused."""
    if options.get("foreach") and options.get("fused"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    for option in _UNSUPPORTED:
        if options.get(option):
            raise NotImplementedError(f"{name}: {option}=True is not supported in minigrad")
