"""Activations: relu, sigmoid, tanh, and the numerically stable softmax and log_softmax."""

from __future__ import annotations

from .. import backend
from ..engine.function import Op
from ..fused import kernels
from .reduce import normalize_dims
from .selection import Where


class ReLU(Op):
    """z = max(x, 0);  dz/dx = 0 where z <= 0, else 1 (0 at x = 0; a NaN passes, as in PyTorch)"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x.array).maximum(x.array, 0)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx where z > 0, else 0"""
        return ReLUBackward.apply(tangents[0], outputs[0])

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return ReLUBackward.apply(grad, z)


class ReLUBackward(Op):
    """g' = 0 where z <= 0, else g (ReLU's slope applied to g);  dg'/dg = the same mask"""

    @staticmethod
    def forward(ctx, grad, z):
        ctx.save_for_backward(z)  # z's own slope is 0: the mask is piecewise constant
        if kernels.applies(grad.array, z.array):  # CUDA: one kernel, not a compare and a multiply
            return kernels.relu_backward(grad.array, z.array)
        # PyTorch's threshold rule: 0 where z <= 0, the gradient as it is elsewhere (so a NaN z
        # passes it). A multiply, as xp.where is several times slower on NumPy; an infinite
        # gradient where ReLU is flat would give inf * 0 = NaN there, so those are set to 0.
        g = grad.array
        if backend.is_cuda_array(g):  # one kernel there, and no host read of a finiteness check
            return backend.array_module(g).where(z.array <= 0, g.dtype.type(0), g)
        kept = ~(z.array <= 0)
        xp = backend.array_module(g)
        if not xp.isfinite(g).all():  # rare: a select, so that inf or NaN times 0 gives 0
            return xp.where(kept, g, g.dtype.type(0))
        return g * kept

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dg' = dg where z > 0, else 0 (the mask is piecewise constant)"""
        grad, z = inputs
        dgrad = tangents[0]
        return ReLUBackward.apply(dgrad if dgrad is not None else grad * 0, z)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return ReLUBackward.apply(grad, z), None


class Softplus(Op):
    """z = log(1 + exp(beta x)) / beta (x itself where beta x > threshold);  dz/dx = sigmoid(beta
    x) (1 above the threshold)"""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        xp = backend.array_module(x.array)
        bx = x.array * beta
        # log(1 + exp(bx)) = log(1 + exp(-|bx|)) + max(bx, 0): exp never overflows
        soft = (xp.log1p(xp.exp(-xp.abs(bx))) + xp.maximum(bx, 0)) / beta
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        return xp.where(bx > threshold, x.array, soft).astype(x.array.dtype, copy=False)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = sigmoid(beta x) dx (dx above the threshold)"""
        x, beta, threshold = inputs
        bx = x * beta
        return tangents[0] * Where.apply(bx.array > threshold, 1.0, Sigmoid.apply(bx))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        bx = x * ctx.beta
        return grad * Where.apply(bx.array > ctx.threshold, 1.0, Sigmoid.apply(bx)), None, None


class Sigmoid(Op):
    """z = 1 / (1 + exp(-x));  dz/dx = z (1 - z)"""

    @staticmethod
    def forward(ctx, x):
        xp = backend.array_module(x.array)
        # exp of a non-positive number never overflows: use the form that keeps it so.
        e = xp.exp(-xp.abs(x.array))
        z = xp.where(x.array >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = z (1 - z) dx"""
        z = outputs[0]
        return z * (1 - z) * tangents[0]

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * z * (1 - z)


class Tanh(Op):
    """z = tanh(x);  dz/dx = 1 - z**2"""

    @staticmethod
    def forward(ctx, x):
        z = backend.array_module(x.array).tanh(x.array)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = (1 - z**2) dx"""
        z = outputs[0]
        return (1 - z * z) * tangents[0]

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * (1 - z * z)


def softmax_axis(x, dim: int, op: str):
    """The axis softmax-like ops work along (None for a 0-d tensor)."""
    if not isinstance(dim, int):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if x.dtype.kind != "f":  # PyTorch has no integer kernel; NumPy would give float64
        raise NotImplementedError(f"{op}: not implemented for '{backend.scalar_name(x.dtype)}' "
                                  "tensors (as in PyTorch); convert with .float() first")
    axis = normalize_dims(dim, x.ndim, op)  # also checks the range: [-1, 0] for a 0-d tensor
    return axis[0] if x.ndim else None


class LogSoftmax(Op):
    """z = x - max(x) - log(sum(exp(x - max(x))));  dL/dx = g - softmax(x) * sum(g)"""

    @staticmethod
    def forward(ctx, x, dim):
        xp = backend.array_module(x.array)
        axis = ctx.axis = softmax_axis(x.array, dim, "log_softmax")
        shifted = x.array - x.array.max(axis=axis, keepdims=True)
        z = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx - sum(softmax(x) dx) along dim"""
        dim = inputs[1]
        return tangents[0] - (outputs[0].exp() * tangents[0]).sum(dim, keepdim=True)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad - z.exp() * _sum(grad, ctx.axis), None


class Softmax(Op):
    """z = exp(x - max(x)) / sum(exp(x - max(x)));  dL/dx = z * (g - sum(g * z))"""

    @staticmethod
    def forward(ctx, x, dim):
        xp = backend.array_module(x.array)
        axis = ctx.axis = softmax_axis(x.array, dim, "softmax")
        e = xp.exp(x.array - x.array.max(axis=axis, keepdims=True))
        z = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = z (dx - sum(z dx) along dim)"""
        z, dim = outputs[0], inputs[1]
        return z * (tangents[0] - (z * tangents[0]).sum(dim, keepdim=True))

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return z * (grad - _sum(grad * z, ctx.axis)), None


def _sum(t, axis):
    """Sum along the softmax axis, keeping it (all of a 0-d tensor)."""
    return t.sum(axis, keepdim=True) if axis is not None else t


class Dropout(Op):
    """y = x * m / (1 - p), with m ~ Bernoulli(1 - p) drawn anew on every call;  dy/dx = m / (1 - p)

    The mask is drawn inside forward, so every run of the op (a replayed mg.compile program
    too) draws its own; backward reuses the one forward drew."""

    @staticmethod
    def forward(ctx, x, p):
        keep = backend.generator(x.device).random(x.array.shape) >= p
        scale = (keep / (1 - p)).astype(x.array.dtype)
        ctx.save_for_backward(scale)  # a constant to backward: no gradient flows into it
        ctx.scale = scale  # (forward mode reads it too, recorded or not)
        return x.array * scale

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx m / (1 - p), the same mask"""
        return tangents[0] * ctx.scale

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensors
        return grad * scale, None
