"""Learning-rate schedules that set each group's lr after every epoch, as PyTorch's do.

Each schedule is computed the way torch.optim.lr_scheduler computes it: from the group's current
lr, one epoch at a time. The results equal PyTorch's bit for bit (the closed forms in the
docstrings drift from torch's recursion by up to ~1e-12 over thousands of epochs), and a change
made to group["lr"] by other code carries on into later epochs, as it does in PyTorch.
"""

from __future__ import annotations

import math
from collections import Counter

from .optimizer import Optimizer


class LRScheduler:
    """Base class: call step() once per epoch, after that epoch's optimizer steps."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(
                    f"param 'initial_lr' is not specified in param_groups[{index}] when resuming "
                    f"{type(self).__name__} with last_epoch={last_epoch}: load the optimizer's "
                    "state dict first"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()  # the initial step: epoch last_epoch + 1 starts with the groups' current lr

    def get_lr(self) -> list:
        """Each group's lr for epoch `last_epoch`, from its lr in the epoch before."""
        raise NotImplementedError

    def _initial_lrs(self) -> list:
        """The lrs of the first epoch: the groups' own (a schedule may compute its own)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Move to the next epoch (or batch, for OneCycleLR) and set each group's lr."""
        self._step_count += 1
        self.last_epoch += 1
        groups = self.optimizer.param_groups
        lrs = self._initial_lrs() if self._step_count == 1 else self.get_lr()
        for group, lr in zip(groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list:
        """The lr that step() last set, one per parameter group."""
        return self._last_lr

    def state_dict(self) -> dict:
        """Everything but the optimizer (as PyTorch's schedulers do)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what state_dict() returned."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size): multiply by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

    From base_lr at epoch 0 down to eta_min at epoch T_max (and, past it, back up again, with
    period 2 * T_max, as in PyTorch). Computed as PyTorch does: the lr moves from its previous
    value by the ratio of two consecutive (1 + cos) terms.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        epoch, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if (epoch - 1 - period) % (2 * period) == 0:
            # Leaving a minimum, where the ratio below would divide by 1 + cos(pi) = 0.
            rise = (1 - math.cos(math.pi / period)) / 2
            return [group["lr"] + (base_lr - eta_min) * rise
                    for group, base_lr in zip(groups, self.base_lrs, strict=True)]
        now, before = math.cos(math.pi * epoch / period), math.cos(math.pi * (epoch - 1) / period)
        ratio = (1 + now) / (1 + before)
        return [eta_min + ratio * (group["lr"] - eta_min) for group in groups]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch: multiply by gamma every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones reached): multiply by gamma at each one."""

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1,
                 last_epoch: int = -1):
        self.milestones = Counter(milestones)  # a milestone given twice multiplies twice
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        groups = self.optimizer.param_groups
        times = self.milestones.get(self.last_epoch, 0)
        return [group["lr"] * self.gamma ** times if times else group["lr"] for group in groups]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch), one function for all groups or one per group."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        groups = optimizer.param_groups
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(groups):
                raise ValueError(f"Expected {len(groups)} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(groups)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [base_lr * fn(self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]

    _initial_lrs = get_lr

    def state_dict(self) -> dict:
        """As the base's, without the functions (as PyTorch, which saves only callable objects)."""
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


from .one_cycle import OneCycleLR  # noqa: E402  (it builds on LRScheduler above)

__all__ = ["CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LambdaLR", "MultiStepLR",
           "OneCycleLR", "StepLR"]
