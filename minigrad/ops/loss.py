"""Losses as single Functions, saving what PyTorch's save: cross-entropy (log-softmax and
negative log-likelihood fused into one stable Function), nll_loss, mse_loss and
binary_cross_entropy_with_logits."""

from __future__ import annotations

import math

from .. import backend, promotion
from ..engine.function import Op
from ..fused import kernels
from .activation import Sigmoid, Softplus
from .elementwise import zeros_like
from .reduce import cascade_sum, unbroadcast


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
    def forward(ctx, logits, target, reduction="mean"):
        x, t = logits.array, target.array
        fused = kernels.applies(x)  # CUDA: one kernel, which gives a bad target a NaN loss
        # (on a GPU, checking the range would wait for the device)
        check_targets(x, t, check_range=not fused)
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
    def tangent(ctx, inputs, outputs, tangents):
        """dL = sum_n (p_n - onehot(t_n)) . dx_n * s,  dp = p (dx - sum(p dx))"""
        target, dx = inputs[1], tangents[0]
        probs = outputs[1]
        onehot = _onehot(target, probs)
        loss_tangent = ((probs - onehot) * dx).sum() * ctx.scale
        probs_tangent = probs * (dx - (probs * dx).sum(1, keepdim=True))
        return loss_tangent, probs_tangent

    @staticmethod
    def backward(ctx, grad, grad_probs):
        target, probs = ctx.saved_tensors
        # (the target and the reduction have no gradient)
        grad_logits = None
        if grad is not None:
            grad_logits = CrossEntropyBackward.apply(grad, probs, target, ctx.scale)
        if grad_probs is not None:  # only a higher derivative sends one: softmax's Jacobian
            through_probs = probs * (grad_probs - (grad_probs * probs).sum(1, keepdim=True))
            grad_logits = through_probs if grad_logits is None else grad_logits + through_probs
        return grad_logits, None, None


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
    def tangent(ctx, inputs, outputs, tangents):
        """d(dL/dx) = dp g s + (p - onehot) dg s"""
        grad, probs, target, scale = inputs
        d_grad, d_probs = tangents[0], tangents[1]
        onehot = _onehot(target, probs)
        parts = [None if d_probs is None else d_probs * (grad * scale),
                 None if d_grad is None else (probs - onehot) * (d_grad * scale)]
        present = [p for p in parts if p is not None]
        return present[0] if len(present) == 1 else present[0] + present[1]

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


def check_reduction(reduction: str, who: str) -> None:
    """A loss's reduction must be "mean", "sum" or "none" (no reduction)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r} "
                         f"({reduction} is not a valid value for reduction)")


def reduce_loss(losses, reduction: str, who: str):
    """A loss's reduction, on arrays: "mean", "sum" or "none"."""
    check_reduction(reduction, who)
    if reduction == "none":
        return losses
    total = cascade_sum(losses)
    return total / losses.size if reduction == "mean" else total


class MSELoss(Op):
    """L = (x - y)**2 per element, reduced;  dL/dx = 2 (x - y) g (/ n for "mean"),  dL/dy alike,
    negated"""

    @staticmethod
    def forward(ctx, x, y, reduction):
        ctx.save_for_backward(x, y)  # as PyTorch: the slope is read off both
        diff = _minus(x.array, y.array)
        ctx.scale = 2.0 / diff.size if reduction == "mean" and diff.size else 2.0
        return reduce_loss(diff * diff, reduction, "mse_loss")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dL = the reduction of 2 (x - y) (dx - dy)"""
        x, y, reduction = inputs
        dx, dy = tangents[0], tangents[1]
        moved = dx if dy is None else (-dy if dx is None else dx - dy)
        per = 2 * (x - y) * moved
        return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        slope = ctx.scale * (x - y) * grad  # PyTorch's order: 2 / n, then the difference, then g
        return (unbroadcast(slope, x.shape) if ctx.needs_input_grad[0] else None,
                unbroadcast(-slope, y.shape) if ctx.needs_input_grad[1] else None, None)


def _minus(a, b):
    """a - b, broadcast, in PyTorch's result dtype."""
    a, b = promotion.promote(a, b)
    return a - b


class BCEWithLogits(Op):
    """L = ((1 - y) x - w_p log s(x)) w per element with s the sigmoid and w_p = 1 + (p - 1) y
    (p the pos_weight), reduced;  dL/dx = (w_p s(x) - p y) g w,  dL/dy = -(x + (p - 1) log s(x)) g w
    (over n for "mean")"""

    @staticmethod
    def forward(ctx, x, y, weight, pos_weight, reduction):
        ctx.save_for_backward(x, y, weight, pos_weight)  # as PyTorch
        ctx.count = x.array.size if reduction == "mean" else None
        a, t = x.array, y.array
        xp = backend.array_module(a)
        log_s = xp.minimum(a, 0) - xp.log1p(xp.exp(-xp.abs(a)))  # log s(x), stable
        if pos_weight is not None:
            log_s = log_s * ((pos_weight.array - 1) * t + 1)
        losses = (1 - t) * a - log_s
        if weight is not None:
            losses = losses * weight.array
        return reduce_loss(losses, reduction, "binary_cross_entropy_with_logits")

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dL = the reduction of ((w_p s(x) - p y) dx - (x + (p - 1) log s(x)) dy) w"""
        x, y, weight, pos_weight, reduction = inputs
        dx, dy = tangents[0], tangents[1]
        parts = []
        if dx is not None:
            if pos_weight is None:
                parts.append((Sigmoid.apply(x) - y) * dx)
            else:
                py = pos_weight * y
                parts.append(((py + 1 - y) * Sigmoid.apply(x) - py) * dx)
        if dy is not None:
            if pos_weight is None:
                parts.append(-x * dy)
            else:
                parts.append((Softplus.apply(-x, 1.0, math.inf) * pos_weight
                              - Softplus.apply(x, 1.0, math.inf)) * dy)
        per = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        if weight is not None:
            per = per * weight
        return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per

    @staticmethod
    def backward(ctx, grad):
        x, y, weight, pos_weight = ctx.saved_tensors
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:  # PyTorch's order of operations
            if pos_weight is None:
                grad_x = (Sigmoid.apply(x) - y) * grad
            else:
                py = pos_weight * y
                grad_x = ((py + 1 - y) * Sigmoid.apply(x) - py) * grad
            grad_x = _weigh(ctx, grad_x, weight, x.shape)
        if ctx.needs_input_grad[1]:  # log s(-x) - p log s(x) = p softplus(-x) - softplus(x)
            if pos_weight is None:
                grad_y = -x * grad
            else:
                grad_y = (Softplus.apply(-x, 1.0, math.inf) * pos_weight
                          - Softplus.apply(x, 1.0, math.inf)) * grad
            grad_y = _weigh(ctx, grad_y, weight, y.shape)
        return grad_x, grad_y, None, None, None


def _weigh(ctx, grad, weight, shape):
    """A loss's gradient times the weight, over n for "mean", summed to the input's shape."""
    if weight is not None:
        grad = grad * weight
    if ctx.count is not None:
        grad = grad / ctx.count
    return unbroadcast(grad, shape)


class NLLLoss(Op):
    """L_n = -w[t_n] x[n, t_n], or 0 where t_n is ignored, summed or averaged over the sum of
    the kept w[t_n];  dL/dx[n, t_n] = -w[t_n] g (over that sum for "mean"), 0 elsewhere"""

    @staticmethod
    def forward(ctx, x, target, weight, reduction, ignore_index):
        ctx.save_for_backward(x, target, weight)  # as PyTorch, which reads only x's shape
        ctx.reduction, ctx.ignore_index = reduction, ignore_index
        a = x.array.reshape(-1, x.array.shape[-1])
        rows, t, w = _kept_rows(target, weight, ignore_index, a.dtype)
        losses = backend.array_module(a).zeros(target.array.size, a.dtype)
        losses[rows] = -(a[rows, t] * w) if w is not None else -a[rows, t]  # the kept rows only
        if reduction == "none":
            return losses.reshape(target.array.shape)
        if reduction == "sum":
            return cascade_sum(losses)
        ctx.total = w.sum() if w is not None else a.dtype.type(rows.size)
        if rows.size == 0:  # every target ignored: NaN, as in PyTorch (not NumPy's 0/0 warning)
            return backend.array_module(a).full((), float("nan"), a.dtype)
        return cascade_sum(losses) / ctx.total

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dL = the same reduction of -w[t] dx[n, t]: linear in x"""
        x, target, weight, reduction, ignore_index = inputs
        return NLLLoss.apply(tangents[0], target, weight, reduction, ignore_index)

    @staticmethod
    def backward(ctx, grad):
        x, target, weight = ctx.saved_tensors
        total = getattr(ctx, "total", None)
        if x.ndim == 1 and ctx.reduction == "mean":  # one sample: -g whatever w, as in PyTorch
            weight, total = None, 1
        return NLLLossBackward.apply(grad, x, target, weight, ctx.reduction, ctx.ignore_index,
                                     total), None, None, None, None


class NLLLossBackward(Op):
    """dL/dx = -w[t_n] g at each kept [n, t_n] (g over the total for "mean"), 0 elsewhere;  linear
    in g, so d/dg is nll_loss itself, and d/dx = 0 (x gives only its shape, as in PyTorch)"""

    @staticmethod
    def forward(ctx, grad, x, target, weight, reduction, ignore_index, total):
        ctx.save_for_backward(target, weight)
        ctx.reduction, ctx.ignore_index = reduction, ignore_index
        g, shape = grad.array, x.array.shape
        grad_x = backend.array_module(g).zeros((target.array.size, shape[-1]), g.dtype)
        rows, t, w = _kept_rows(target, weight, ignore_index, g.dtype)
        if reduction == "none":
            picked = -g.reshape(-1)[rows]
        else:
            picked = -(g / total) if reduction == "mean" else -g
        grad_x[rows, t] = w * picked if w is not None else picked
        return grad_x.reshape(shape)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """linear in g: the same op on dg (x gives only its shape)"""
        grad, x, target, weight, reduction, ignore_index, total = inputs
        if tangents[0] is None:
            return outputs[0] * 0
        return NLLLossBackward.apply(tangents[0], x, target, weight, reduction, ignore_index,
                                     total)

    @staticmethod
    def backward(ctx, upstream):
        target, weight = ctx.saved_tensors
        loss = NLLLoss.apply(upstream, target, weight, ctx.reduction, ctx.ignore_index)
        return loss, zeros_like(upstream) if ctx.needs_input_grad[1] else None, None, None, None, \
            None, None


def _kept_rows(target, weight, ignore_index: int, dtype):
    """The rows whose targets are kept, those targets, and their weights (or None)."""
    t = target.array.reshape(-1)
    rows = backend.array_module(t).nonzero(t != ignore_index)[0]
    t = t[rows]
    return rows, t, weight.array[t].astype(dtype, copy=False) if weight is not None else None
