"""Functional forms of the layers: each is one Function call (see minigrad/ops)."""

from __future__ import annotations

from ..fused import kernels
from ..ops import activation, loss, matmul
from ..tensor import Tensor
from .functional_conv import (  # noqa: F401  (F.conv2d, ...: convolutional networks')
    adaptive_avg_pool2d,
    avg_pool2d,
    batch_norm,
    conv1d,
    conv2d,
    dropout2d,
    fold,
    max_pool2d,
    pad,
    unfold,
)
from .functional_loss import (  # noqa: F401  (F.mse_loss, ...: PyTorch keeps them in one place)
    all_slices,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy_options,
    dropout,
    l1_loss,
    mse_loss,
    nll_loss,
    one_hot,
)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ W^T + b, as one fused Function."""
    if not isinstance(input, Tensor):
        if type(input).__module__.startswith("torch"):
            raise TypeError("linear: input must be a minigrad Tensor, got a PyTorch "
                            f"{type(input).__name__} (convert it: mg.from_numpy(x.numpy()))")
        raise TypeError(f"linear: input must be a Tensor, got {type(input).__name__} "
                        "(make one with mg.tensor(...))")
    # bias is always passed, even as None, so backward's three gradients match three inputs.
    return matmul.Linear.apply(input, weight, bias)


def linear_relu(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = max(x @ W^T + b, 0) as one fused Function (what Sequential uses on a GPU)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"linear_relu: input must be a Tensor, got {type(input).__name__}")
    return matmul.LinearReLU.apply(input, weight, bias)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """y = max(x, 0) (with inplace=True, written into x, which is returned)"""
    return input.relu_() if inplace else activation.ReLU.apply(input)


def relu_(input: Tensor) -> Tensor:
    """x = max(x, 0), in place"""
    return input.relu_()


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


check_reduction = loss.check_reduction  # (nn.CrossEntropyLoss checks with it too)


def cross_entropy(input: Tensor, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """L = -log softmax(x)[target], averaged ("mean") or added ("sum") over the batch.

    The common case (class indices of an (N, C) input, no weights, no smoothing, no ignored
    targets) runs as one fused Function; PyTorch's other options go through
    functional_loss.cross_entropy_options.
    """
    check_reduction(reduction, "cross_entropy")
    if not isinstance(target, Tensor):
        target = Tensor._from_data(target)
    t = all_slices(target)
    probabilities = t.dtype.kind == "f" and target.shape == input.shape
    fast = (weight is None and not label_smoothing and not probabilities and ignore_index == -100
            and reduction != "none" and input.ndim == 2)
    if fast and not kernels.applies(all_slices(input)):
        if (t.dtype.kind in "iu" and target.ndim == 1 and input.ndim == 2
                and loss.labels_in_range(t, input.shape[1])):  # the one pass over the labels
            return loss.CrossEntropy.apply(input, target, reduction)[0]
        # An ignored -100 takes the general path; anything else, the fused one, which names
        # what is wrong (a bad label, a shape).
        fast = not bool((t == -100).any())
    # On a GPU the fused kernel runs without looking for ignored targets (that would wait for
    # the device); a default-ignored -100 there gives a NaN loss, as a bad label does.
    if fast:
        return loss.CrossEntropy.apply(input, target, reduction)[0]
    return cross_entropy_options(input, target, weight, ignore_index, reduction, label_smoothing)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    """y = log(1 + exp(beta x)) / beta (x itself where beta x > threshold)."""
    return activation.Softplus.apply(input, beta, threshold)
