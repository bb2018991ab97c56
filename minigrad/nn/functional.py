"""Functional forms of the layers: each is one Function call (see minigrad/ops)."""

from __future__ import annotations

from ..ops import activation, loss, matmul
from ..tensor import Tensor


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ W^T + b, as one fused Function."""
    if not isinstance(input, Tensor):
        raise TypeError(f"linear: input must be a Tensor, got {type(input).__name__} "
                        "(make one with mg.tensor(...))")
    # bias is always passed, even as None, so backward's three gradients match three inputs.
    return matmul.Linear.apply(input, weight, bias)


def relu(input: Tensor) -> Tensor:
    """y = max(x, 0)"""
    return activation.ReLU.apply(input)


def sigmoid(input: Tensor) -> Tensor:
    """y = 1 / (1 + exp(-x))"""
    return activation.Sigmoid.apply(input)


def tanh(input: Tensor) -> Tensor:
    """y = tanh(x)"""
    return activation.Tanh.apply(input)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """y = x - logsumexp(x) along dim"""
    return activation.LogSoftmax.apply(input, dim)


def softmax(input: Tensor, dim: int) -> Tensor:
    """y = exp(x) / sum(exp(x)) along dim"""
    return activation.Softmax.apply(input, dim)


def check_reduction(reduction: str, who: str) -> None:
    """Losses reduce over the batch by "mean" or "sum"; anything else is an error."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"{who}: reduction must be 'mean' or 'sum', got {reduction!r}")


def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """L = -log softmax(x)[target], averaged ("mean") or added ("sum") over the batch."""
    check_reduction(reduction, "cross_entropy")
    if not isinstance(target, Tensor):
        target = Tensor(target)
    return loss.CrossEntropy.apply(input, target, reduction)
