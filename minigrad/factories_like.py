"""Factories shaped like another tensor: its shape, and unless given, its dtype and device."""

from __future__ import annotations

from . import factories
from .tensor import Tensor


def _like(make, other: Tensor, dtype, device, requires_grad, *args) -> Tensor:
    if not isinstance(other, Tensor):
        raise TypeError(f"expected a Tensor to take the shape of, got {type(other).__name__}")
    return make(other.shape, *args, dtype=dtype or other.dtype, device=device or other.device,
                requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    """An uninitialised tensor with the shape (dtype, device) of another tensor."""
    return _like(factories.empty, input, dtype, device, requires_grad)


def full_like(input: Tensor, fill_value, *, dtype=None, device=None,  # noqa: A002
              requires_grad=False) -> Tensor:
    """fill_value everywhere, with the shape (dtype, device) of another tensor."""
    return _like(factories.full, input, dtype, device, requires_grad, fill_value)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    """Uniform samples on [0, 1) with the shape (dtype, device) of another tensor."""
    return _like(factories.rand, input, dtype, device, requires_grad)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:  # noqa: A002
    """Standard normal samples with the shape (dtype, device) of another tensor."""
    return _like(factories.randn, input, dtype, device, requires_grad)
