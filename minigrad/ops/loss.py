"""Cross-entropy: log-softmax and negative log-likelihood fused into one stable Function."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function
from ..cuda import kernels


def check_targets(logits, target, check_range: bool = True) -> None:
    """Raise a clear error for targets that do not fit the logits (shape, dtype, range)."""
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy: expected logits of shape (batch, classes), got {tuple(logits.shape)}"
        )
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"cross_entropy: expected targets of shape ({logits.shape[0]},) to match logits "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if target.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got {target.dtype}")
    classes = logits.shape[1]
    if not check_range:  # the fused CUDA kernel checks on the device instead
        return
    # Viewed as unsigned, a negative label becomes huge: one max() catches both ends of the range.
    if target.size and int(target.astype(backend.uint64, copy=False).max()) >= classes:
        bad = target[(target < 0) | (target >= classes)]
        raise IndexError(
            f"cross_entropy: target {int(bad[0])} is out of range for {classes} classes "
            f"(expected 0 to {classes - 1})"
        )


class CrossEntropy(Function):
    """L = -sum_n log softmax(x_n)[t_n] / N;  dL/dx_n = (softmax(x_n) - onehot(t_n)) / N"""

    @staticmethod
    def forward(ctx, logits, target, reduction="mean"):
        fused = kernels.applies(logits)  # CUDA: one kernel, which gives a bad target a NaN loss
        check_targets(logits, target, check_range=not fused)  # (checking would wait for the GPU)
        batch = logits.shape[0]
        ctx.scale = (1.0 / batch if batch else float("nan")) if reduction == "mean" else 1.0
        if fused:
            loss, probs = kernels.cross_entropy_forward(logits, target, ctx.scale)
            ctx.save_for_backward(probs, target)
            return loss
        xp = backend.array_module(logits)
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = xp.arange(logits.shape[0])
        # -log softmax(x)[t] = log(sum(exp(shifted))) - shifted[t]; no one-hot matrix is built.
        losses = xp.log(total[:, 0]) - shifted[rows, target]
        exp /= total  # now the softmax, kept for backward
        ctx.save_for_backward(exp, target)
        return losses.sum() * logits.dtype.type(ctx.scale)

    @staticmethod
    def backward(ctx, grad):
        probs, target = ctx.saved_tensors
        if kernels.applies(probs, grad):  # CUDA: softmax minus one-hot, scaled, in one kernel
            return kernels.cross_entropy_backward(probs, target, grad, ctx.scale), None, None
        grad_logits = probs.copy()
        grad_logits[backend.array_module(probs).arange(target.shape[0]), target] -= 1
        grad_logits *= grad * ctx.scale
        return grad_logits, None, None
