"""Optimizer: parameter groups, per-parameter state, zero_grad and state dicts."""

from __future__ import annotations

from ..tensor import Tensor


class Optimizer:
    """Base class: holds param_groups (a list of dicts of settings and params) and state."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}  # Parameter -> dict of its state (e.g. momentum_buffer)
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        group["params"] = list(group["params"])
        for param in group["params"]:
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise TypeError(
                    f"{type(self).__name__} can only optimise tensors that require grad, "
                    f"got {type(param).__name__}"
                )
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self.param_groups.append(group)

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None (the next backward starts from zero)."""
        for group in self.param_groups:
            for param in group["params"]:
                param.grad = None

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
        state = {
            index_of[id(param)]: {k: (v.detach() if isinstance(v, Tensor) else v) for k, v in s.items()}
            for param, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore settings and per-parameter state saved by state_dict()."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"load_state_dict: the state has {len(groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        params = {}
        for saved, group in zip(groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"load_state_dict: a saved group has {len(saved['params'])} parameters, "
                    f"the optimizer's has {len(group['params'])}"
                )
            group.update({k: v for k, v in saved.items() if k != "params"})
            params.update(zip(saved["params"], group["params"]))
        self.state = {}
        for index, saved_state in state_dict["state"].items():
            param = params[int(index)]
            self.state[param] = {
                k: (Tensor(v, dtype=param.dtype, device=param.device).data if _is_tensor_like(v) else v)
                for k, v in saved_state.items()
            }

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _is_tensor_like(value) -> bool:
    return isinstance(value, Tensor) or hasattr(value, "shape")
