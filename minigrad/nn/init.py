"""Parameter initialisation, matching PyTorch's defaults for Linear."""

from __future__ import annotations

import math

from .. import backend
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


def uniform_(tensor: Tensor, low: float, high: float) -> Tensor:
    """Fill in place with samples of U(low, high) from the device's seeded generator."""
    rng = backend.generator(tensor.device)
    tensor.array[...] = rng.uniform(low, high, tensor.shape).astype(tensor.dtype)
    tensor._bump_version()
    return tensor


def linear_bound(fan_in: int) -> float:
    """1/sqrt(fan_in): the half-width of PyTorch's default uniform init for Linear (0 if empty)."""
    return 1 / math.sqrt(fan_in) if fan_in else 0.0


def kaiming_uniform_linear_(weight: Tensor) -> Tensor:
    """PyTorch's Linear weight init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    (torch writes it as kaiming_uniform_ with a=sqrt(5), which works out to this bound.)
    """
    bound = linear_bound(weight.shape[1])
    return uniform_(weight, -bound, bound)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill in place with zeros."""
    with no_grad():
        return tensor.zero_()
