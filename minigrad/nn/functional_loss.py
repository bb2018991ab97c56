"""The loss functions of nn.functional beyond cross_entropy's fast path, with PyTorch's options.

Each is written with Tensor operations (log_softmax, indexing, where, clamp, ...), so gradients
of every order come from those ops. `reduction` is "mean" (the default), "sum" or "none".
"""

from __future__ import annotations

import warnings

from .. import backend
from ..grad_mode import grad_mode, is_grad_enabled
from ..ops import activation, loss, selection
from ..tensor import Tensor


def _reduce(losses: Tensor, reduction: str, who: str, count=None) -> Tensor:
    """Apply a loss's reduction; `count` replaces the element count of "mean" (NLL's weights)."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    loss.check_reduction(reduction, who)
    return losses.sum() / count if count is not None else losses.mean()


def _same_shape(input: Tensor, target: Tensor, who: str, strict: bool = True) -> None:  # noqa: A002
    """BCE losses need equal shapes (ValueError); mse and l1 warn and broadcast, as PyTorch."""
    if input.shape == target.shape:
        return
    if strict:
        raise ValueError(
            f"{who}: Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}) is not supported; they must match"
        )
    try:
        backend.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise RuntimeError(
            f"{who}: the input of shape {input.shape} and the target of shape {target.shape} "
            "cannot be broadcast together"
        ) from None
    warnings.warn(
        f"{who}: Using a target size ({target.shape}) that is different to the input size "
        f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
        "Please ensure they have the same size.", UserWarning, stacklevel=3)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """L = (x - y)**2 per element, then reduced."""
    _same_shape(input, target, "mse_loss", strict=False)
    return loss.MSELoss.apply(input, target, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """L = |x - y| per element, then reduced."""
    _same_shape(input, target, "l1_loss", strict=False)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def _class_targets(input: Tensor, target, who: str):  # noqa: A002
    """Check (N, C) log-probabilities against (N,) integer class targets."""
    if not isinstance(target, Tensor):
        target = Tensor._from_data(target)
    if input.ndim not in (1, 2):
        raise ValueError(f"{who}: expected input of shape (N, C) or (C,), got {input.shape} "
                         "(more dims are not supported in minigrad)")
    if target.dtype.kind not in "iu":
        raise RuntimeError(f"{who}: expected target of an integer type (class indices), got "
                           f"{target.dtype}")
    if input.ndim == 1 and target.ndim == 1:  # one sample: PyTorch takes a target of size 1
        if target.shape != (1,):
            raise ValueError(f"{who}: For 1D input, 1D target must have size 1, but got target "
                             f"size: {target.shape[0]}")
        target = target.reshape(())
    if target.shape != input.shape[:-1]:
        raise ValueError(f"{who}: expected target of shape {input.shape[:-1]} for input "
                         f"{input.shape}, got {target.shape}")
    return target


def nll_loss(input: Tensor, target, weight: Tensor | None = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """L_n = -w[t_n] * x[n, t_n] (0 where t_n = ignore_index); "mean" divides by sum of w[t_n]."""
    target = _class_targets(input, target, "nll_loss")
    classes = input.shape[-1]
    t = all_slices(target)
    keep = t != ignore_index
    bad = (t < 0) | (t >= classes)
    if bool((bad & keep).any()):
        value = int(t[bad & keep].reshape(-1)[0])
        raise IndexError(f"nll_loss: Target {value} is out of bounds for {classes} classes")
    loss.check_reduction(reduction, "nll_loss")
    _not_differentiable(weight, "weight", "nll_loss_forward")
    # Ignored rows are left out (not multiplied by 0: a NaN there stays out), and they get no
    # gradient at all: a batch with every target ignored has a NaN mean and a 0 gradient.
    return loss.NLLLoss.apply(input, target, weight, reduction, ignore_index)


def all_slices(tensor: Tensor):
    """The tensor's array; inside vmap, the array of every slice (the checks look at the values
    of the whole batch at once)."""
    if grad_mode.vmap_level:
        tensor = grad_mode.batching.plain(tensor)
    return tensor.array


def _not_differentiable(tensor, name: str, who: str) -> None:
    """PyTorch's losses take no gradient for their weights, and say so."""
    if isinstance(tensor, Tensor) and tensor.requires_grad and is_grad_enabled():
        raise RuntimeError(f"The function '{who}' is not differentiable with respect to "
                           f"argument '{name}'. This input cannot have requires_grad True.")


def _kept(target: Tensor, ignore_index: int):
    """(rows, classes) of the targets that are not ignored, as integer arrays."""
    if grad_mode.tracer is not None:
        raise RuntimeError(
            "mg.compile: cross_entropy with label_smoothing keeps the rows whose targets are "
            "not ignore_index, a selection by value that a compiled program cannot repeat; "
            "run this loss eagerly"
        )
    t = target.array.reshape(-1)
    xp = backend.array_module(t)
    rows = xp.nonzero(t != ignore_index)[0]
    return rows, t[rows]


def cross_entropy_options(input: Tensor, target, weight=None, ignore_index: int = -100,  # noqa: A002
                          reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy with PyTorch's options: class weights, ignore_index, label_smoothing,
    reduction="none", and probability targets (a float target shaped like the input)."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(
            f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    log_probs = activation.LogSoftmax.apply(input, -1)
    classes = input.shape[-1]
    if isinstance(target, Tensor) and target.dtype.kind == "f":  # class probabilities
        _same_shape(input, target, "cross_entropy")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / classes
        weighted = log_probs if weight is None else log_probs * weight
        losses = -(weighted * target).sum(-1)
        batch = input.shape[0] if input.ndim == 2 else 1
        return _reduce(losses, reduction, "cross_entropy", count=batch if batch else None)
    nll = nll_loss(log_probs, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    target = _class_targets(input, target, "cross_entropy")
    weighted = log_probs if weight is None else log_probs * weight
    if reduction == "none":
        keep = target != ignore_index
        smooth = (-weighted.sum(-1)).where(keep, 0.0)  # a select, as PyTorch's masked_fill
    else:  # only the kept targets, as in nll_loss
        rows, kept = _kept(target, ignore_index)
        smooth = -weighted.reshape(-1, classes)[rows].sum(-1)
        if reduction == "sum":
            smooth = smooth.sum()
        elif weight is None:
            smooth = smooth.sum() / rows.shape[0]
        else:
            smooth = smooth.sum() / Tensor._wrap_no_copy_no_checks(weight.array[kept],
                                                                   input.device).sum()
    return (1 - label_smoothing) * nll + (label_smoothing / classes) * smooth


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,  # noqa: A002
                         reduction: str = "mean") -> Tensor:
    """L = -(y log x + (1 - y) log(1 - x)), each log clamped to >= -100 as in PyTorch."""
    _same_shape(input, target, "binary_cross_entropy")
    a = input.array
    if bool(((a < 0) | (a > 1)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    losses = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(
        min=-100))
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None,  # noqa: A002
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """L = -(p y log s(x) + (1 - y) log(1 - s(x))) with s the sigmoid, computed stably:
    (1 - y) x + (1 + (p - 1) y) * (log(1 + exp(-|x|)) + max(-x, 0))."""
    _same_shape(input, target, "binary_cross_entropy_with_logits")
    loss.check_reduction(reduction, "binary_cross_entropy_with_logits")
    weight, pos_weight = (w if w is None or isinstance(w, Tensor) else
                          Tensor._from_data(w, dtype=input.dtype, device=input.device)
                          for w in (weight, pos_weight))
    _not_differentiable(weight, "weight", "binary_cross_entropy_with_logits")
    _not_differentiable(pos_weight, "pos_weight", "binary_cross_entropy_with_logits")
    return loss.BCEWithLogits.apply(input, target, weight, pos_weight, reduction)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zero each element with probability p and scale the rest by 1 / (1 - p) (training only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if inplace:
        raise NotImplementedError("dropout: inplace=True is not supported in minigrad")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return activation.Dropout.apply(input, p)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """An int64 tensor with one more dim: 1 at each element's class, 0 elsewhere."""
    if tensor.dtype != backend.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    t = tensor.array
    if t.size and int(t.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(t.max()) + 1 if t.size else 0
    elif t.size and int(t.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    xp = backend.array_module(t)
    classes = xp.arange(num_classes)
    return selection.NoGradient.apply(lambda a: (a[..., None] == classes).astype(backend.int64),
                                      tensor)
