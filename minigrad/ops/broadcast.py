"""unbroadcast: the one place where NumPy broadcasting is undone for gradients."""

from __future__ import annotations


def unbroadcast(grad, shape: tuple):
    """Sum `grad` down to `shape`: the adjoint of broadcasting `shape` up to grad.shape.

    Broadcasting prepends dimensions and stretches size-1 ones; each copy of an input element
    received a gradient, so the input's gradient is their sum.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad
