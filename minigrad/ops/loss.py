"""Cross-entropy: log-softmax and negative log-likelihood fused into one stable Function."""

from __future__ import annotations

from .. import backend
from ..engine.function import Op
from ..fused import kernels


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
    if not check_range:  # checked already, or by the fused CUDA kernel on the device
        return
    if not labels_in_range(target, classes):
        bad = target[(target < 0) | (target >= classes)]
        raise IndexError(
            f"cross_entropy: target {int(bad[0])} is out of range for {classes} classes "
            f"(expected 0 to {classes - 1})"
        )


def labels_in_range(target, classes: int) -> bool:
    """Whether every integer label is in 0..classes-1, in one pass over the labels: viewed as
    unsigned, a negative label (PyTorch's ignored -100 among them) becomes huge, so one max()
    catches both ends of the range."""
    return not target.size or int(target.astype(backend.uint64, copy=False).max()) < classes


class CrossEntropy(Op):
    """L = -sum_n log softmax(x_n)[t_n] / N;  dL/dx_n = (softmax(x_n) - onehot(t_n)) / N

    Its second output is p = softmax(x), which backward uses, as PyTorch's log_softmax keeps its
    result: the logits are not saved, so changing them in place after the loss is allowed, and
    higher derivatives reach the logits through p (dp/dx = softmax's Jacobian)."""

    @staticmethod
    def forward(ctx, logits, target, reduction="mean", range_checked=False):
        x, t = logits.array, target.array
        fused = kernels.applies(x)  # CUDA: one kernel, which gives a bad target a NaN loss
        # (on a GPU, checking the range would wait for the device)
        check_targets(x, t, check_range=not (fused or range_checked))
        batch = x.shape[0]
        ctx.scale = (1.0 / batch if batch else float("nan")) if reduction == "mean" else 1.0
        ctx.set_materialize_grads(False)  # p's gradient is None unless something used p
        if fused:
            loss, probs = kernels.cross_entropy_forward(x, t, ctx.scale)
            ctx.save_for_backward(target, probs)
            return loss, probs
        xp = backend.array_module(x)
        shifted = x - x.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = xp.arange(batch)
        # -log softmax(x)[t] = log(sum(exp(shifted))) - shifted[t]; no one-hot matrix is built.
        losses = xp.log(total[:, 0]) - shifted[rows, t]
        exp /= total  # now the softmax
        ctx.save_for_backward(target, exp)
        loss = xp.asarray(losses.sum() * x.dtype.type(ctx.scale))  # a 0-d array, not a scalar
        return loss, exp

    @staticmethod
    def backward(ctx, grad, grad_probs):
        target, probs = ctx.saved_tensors
        # (the target, reduction and range_checked have no gradient)
        grad_logits = None
        if grad is not None:
            grad_logits = CrossEntropyBackward.apply(grad, probs, target, ctx.scale)
        if grad_probs is not None:  # only a higher derivative sends one: softmax's Jacobian
            through_probs = probs * (grad_probs - (grad_probs * probs).sum(1, keepdim=True))
            grad_logits = through_probs if grad_logits is None else grad_logits + through_probs
        return grad_logits, None, None, None


class CrossEntropyBackward(Op):
    """dL/dx = (p - onehot(t)) * g * s, with p = softmax(x) (CrossEntropy's second output);
    its own slopes: d/dg = sum((p - onehot(t)) * u) s,  d/dp = u g s"""

    @staticmethod
    def forward(ctx, grad, probs, target, scale):
        ctx.save_for_backward(grad, probs, target)
        ctx.scale = scale
        g, p, t = grad.array, probs.array, target.array
        if kernels.applies(p, g):  # CUDA: softmax minus one-hot, scaled, in one kernel
            return kernels.cross_entropy_backward(p, t, g, scale)
        grad_logits = p.copy()
        grad_logits[backend.array_module(p).arange(t.shape[0]), t] -= 1
        grad_logits *= g * scale
        return grad_logits

    @staticmethod
    def backward(ctx, upstream):
        grad, probs, target = ctx.saved_tensors
        grad_grad = grad_probs = None
        if ctx.needs_input_grad[0]:
            onehot = _onehot(target, probs)
            grad_grad = ((probs - onehot) * upstream).sum() * ctx.scale
        if ctx.needs_input_grad[1]:
            grad_probs = upstream * (grad * ctx.scale)
        return grad_grad, grad_probs, None, None


def _onehot(target, like):
    """onehot(t) as a constant Tensor shaped and typed like the logits."""
    xp = backend.array_module(like.array)
    onehot = xp.zeros(like.array.shape, like.array.dtype)
    onehot[xp.arange(target.array.shape[0]), target.array] = 1
    return type(like)._wrap_no_copy_no_checks(onehot, like.device)
