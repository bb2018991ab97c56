"""Functions of several tensors, called as mg.X(...): cat and stack."""

from __future__ import annotations

from .ops import movement
from .tensor import Tensor


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (their other dims must match)."""
    tensors = tuple(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of Tensors")
    return movement.Cat.apply(dim, *tensors)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    tensors = tuple(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of Tensors")
    shape = tensors[0].shape
    for number, t in enumerate(tensors):
        if t.shape != shape:
            raise RuntimeError(
                f"stack: expects each tensor to be equal size, but got {shape} at entry 0 and "
                f"{t.shape} at entry {number}"
            )
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def mm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002  (PyTorch's argument names)
    """The matrix product of two matrices (2-D tensors)."""
    return input.mm(mat2)


def matmul(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The matrix product, with NumPy's rules for 1-D and batched operands."""
    return input.matmul(other)
