"""Movement ops: reshape (also view, flatten, squeeze, unsqueeze), transpose, indexing, devices."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function


class Reshape(Function):
    """z = x viewed with a new shape;  dz/dx = grad reshaped back"""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                f"({x.size} elements) into shape {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None


class Transpose(Function):
    """z = x with dims d0 and d1 swapped;  dz/dx = grad with them swapped back"""

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        for d in (dim0, dim1):
            if not -max(x.ndim, 1) <= d < max(x.ndim, 1):
                raise IndexError(
                    f"transpose: dim {d} is out of range for a tensor with {x.ndim} dimensions"
                )
        ctx.dims = (dim0, dim1)
        return x.swapaxes(dim0, dim1) if x.ndim else x

    @staticmethod
    def backward(ctx, grad):
        return (grad.swapaxes(*ctx.dims) if grad.ndim else grad), None, None


class GetItem(Function):
    """z = x[index];  dz/dx = grad scattered back to the indexed places (repeats add up)"""

    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape = x.shape
        ctx.save_for_backward(index)
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(
                f"index {index!r} is invalid for shape {tuple(x.shape)}: {error}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        xp = backend.array_module(grad)
        grad_x = xp.zeros(ctx.input_shape, dtype=grad.dtype)
        (index,) = ctx.saved_tensors
        backend.scatter_add(grad_x, index, grad)
        return grad_x, None


class ToDevice(Function):
    """z = x copied to another device;  dz/dx = grad copied back"""

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return backend.to_device(grad, ctx.source), None



class Cast(Function):
    """z = x converted to another dtype;  dz/dx = grad converted back"""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.source = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.source), None
