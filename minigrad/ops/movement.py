"""Movement ops: where elements sit, not what they are.

Reshape (also view, flatten, squeeze, unsqueeze), transpose and basic indexing give views of the
same memory; getitem's adjoint scatters a gradient back; copies to another device or dtype; and
the functions behind the in-place methods (fill_, copy_, x[i] = v).
"""

from __future__ import annotations

import copy

from .. import backend
from ..engine.function import Op
from .reduce import normalize_dims, unbroadcast


def owned_index(index):
    """A copy of the arrays (and lists) in an index, for a backward that keeps it: the caller may
    change its index tensor or mask in place later, and the gradient must follow what ran."""
    if isinstance(index, tuple):
        return tuple(owned_index(part) for part in index)
    if backend.is_array(index):
        return index.copy()
    if isinstance(index, list):
        return copy.deepcopy(index)
    return index


class Reshape(Op):
    """z = x with a new shape (a view when the strides allow, else a copy; `view` refuses the
    copy, as PyTorch's view does);  dz/dx = grad reshaped back"""

    linear_in_tensors = True  # forward mode: the tangent is Reshape of the tangents

    @staticmethod
    def forward(ctx, x, shape, view=False):
        ctx.input_shape = x.array.shape
        try:
            z = x.array.reshape(shape)
        except (ValueError, TypeError):
            raise ValueError(
                f"{'view' if view else 'reshape'}: cannot reshape a tensor of shape "
                f"{tuple(x.array.shape)} ({x.array.size} elements) into shape {tuple(shape)}"
            ) from None
        if view and z.size and not backend.starts_at_same_place(z, x.array):
            raise RuntimeError(
                f"view size is not compatible with input tensor's size and stride (at least one "
                f"dimension spans across two contiguous subspaces): shape {tuple(x.array.shape)} "
                f"with strides {x.array.strides} into {tuple(shape)}. Use .reshape(...) instead."
            )
        return z

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape), None, None


class Transpose(Op):
    """z = x with dims d0 and d1 swapped;  dz/dx = grad with them swapped back"""

    linear_in_tensors = True  # forward mode: the tangent is Transpose of the tangents

    @staticmethod
    def forward(ctx, x, dim0, dim1):
        for d in (dim0, dim1):
            normalize_dims(d, x.array.ndim, "transpose")
        ctx.dims = (dim0, dim1)
        # A 0-d tensor's transpose is still a view of it, as in PyTorch: x.array[...], not x.array
        return x.array.swapaxes(dim0, dim1) if x.array.ndim else x.array[...]

    @staticmethod
    def backward(ctx, grad):
        return (grad.transpose(*ctx.dims) if grad.ndim else grad), None, None


class Permute(Op):
    """z = x with its dims reordered by `dims`;  dz/dx = grad with the inverse order"""

    linear_in_tensors = True  # forward mode: the tangent is Permute of the tangents

    @staticmethod
    def forward(ctx, x, dims):
        dims = tuple(dims)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"permute: repeated dim in {dims}")
        if dims:
            normalize_dims(dims, x.array.ndim, "permute")  # checks the range and types
        if len(dims) != x.array.ndim:
            raise RuntimeError(
                f"permute: number of dims don't match: the tensor has {x.array.ndim} dims, "
                f"got {len(dims)} in {dims}"
            )
        order = tuple(d % max(x.array.ndim, 1) for d in dims)
        ctx.inverse = tuple(order.index(axis) for axis in range(len(order)))
        return x.array.transpose(order)

    @staticmethod
    def backward(ctx, grad):
        return Permute.apply(grad, ctx.inverse), None


class GetItem(Op):
    """z = x[index];  dz/dx = grad scattered back to the indexed places (repeats add up)"""

    linear_in_tensors = True  # forward mode: the tangent is GetItem of the tangents

    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape = x.array.shape
        ctx.index = owned_index(index) if ctx.needs_input_grad[0] else index
        try:
            z = x.array[index]
            if not backend.is_array(z):  # NumPy gives a copied scalar for x[1]; PyTorch a view
                z = x.array[(*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)]
            elif not z.flags.c_contiguous:
                xp = backend.array_module(z)
                if not xp.may_share_memory(z, x.array):
                    # Advanced indexing copies, and NumPy may lay the copy out in its own order
                    # (x[:, [1, 0]]: the indexed dim first); PyTorch's copy is contiguous.
                    z = xp.ascontiguousarray(z)
            return z
        except IndexError as error:
            raise IndexError(
                f"index {index!r} is invalid for shape {tuple(x.array.shape)}: {error}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return ScatterAdd.apply(grad, ctx.index, ctx.input_shape), None


class AsStrided(Op):
    """z = the elements of x that `view` (an array on x's memory) shows: a view's history made
    again after x changed in place;  dz/dx = grad scattered back to those elements"""

    linear_in_tensors = True  # forward mode: the tangent is AsStrided of the tangents

    @staticmethod
    def forward(ctx, x, view):
        positions = backend.flat_positions(view, x.array)
        if positions is None:
            raise RuntimeError(
                f"a view of shape {tuple(view.shape)} cannot be followed back into its base of "
                f"shape {tuple(x.array.shape)} with strides {x.array.strides} (the base does not "
                "own its memory densely); clone() the base before making views of it"
            )
        ctx.positions, ctx.input_shape = positions, x.array.shape
        return view

    @staticmethod
    def backward(ctx, grad):
        size = 1
        for n in ctx.input_shape:
            size *= n
        flat = ScatterAdd.apply(grad, ctx.positions, (size,))
        return flat.reshape(ctx.input_shape), None


class CopySlices(Op):
    """z = x with its elements at `positions` (of x in C order) replaced by values: an in-place
    op on a view, recorded on the base;  dz/dx = 1 elsewhere, 0 there;  dz/dvalues = 1"""

    linear_in_tensors = True  # forward mode: the tangent is CopySlices of the tangents

    @staticmethod
    def forward(ctx, x, values, positions, expanded=False):
        ctx.positions, ctx.expanded = positions, expanded
        z = x.array.copy()  # C order, so reshape(-1) below is a view of z
        z.reshape(-1)[positions] = values.array if hasattr(values, "array") else values
        return z

    @staticmethod
    def backward(ctx, grad):
        needs_x, needs_values = ctx.needs_input_grad[:2]
        if needs_x and ctx.expanded:
            # PyTorch writes dz/dx through the view the op wrote through, and refuses to write
            # through an expand()ed one (one memory location at several elements).
            raise RuntimeError(
                "CopySlicesBackward: unsupported operation: more than one element of the "
                "written-to tensor refers to a single memory location (the in-place operation "
                "wrote through an expand()ed view, so its base's gradient cannot be sent back "
                "through it). Please clone() the tensor before performing the operation."
            )
        grad_x = CopySlices.apply(grad, 0.0, ctx.positions) if needs_x else None
        grad_values = grad.reshape(-1)[ctx.positions] if needs_values else None
        return grad_x, grad_values, None, None


class ScatterAdd(Op):
    """z = zeros(shape) with grad added at [index] (getitem's adjoint);  dz/dgrad = gg[index]"""

    linear_in_tensors = True  # forward mode: the tangent is ScatterAdd of the tangents

    @staticmethod
    def forward(ctx, grad, index, shape):
        ctx.index = index
        z = backend.array_module(grad.array).zeros(shape, dtype=grad.array.dtype)
        backend.scatter_add(z, index, grad.array)
        return z

    @staticmethod
    def backward(ctx, grad):
        return GetItem.apply(grad, ctx.index), None, None


class ToDevice(Op):
    """z = x copied to another device;  dz/dx = grad copied back"""

    linear_in_tensors = True  # forward mode: the tangent is ToDevice of the tangents

    @staticmethod
    def forward(ctx, x, device):
        ctx.source = x.device
        return backend.to_device(x.array, device)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.source), None


class Cast(Op):
    """z = x converted to another dtype;  dz/dx = grad converted back"""

    linear_in_tensors = True  # forward mode: the tangent is Cast of the tangents

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.source = x.array.dtype
        return x.array.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.source), None


class Clone(Op):
    """z = a copy of x in its own memory;  dz/dx = 1"""

    linear_in_tensors = True  # forward mode: the tangent is Clone of the tangents

    @staticmethod
    def forward(ctx, x):
        return x.array.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


class Fill(Op):
    """z = value everywhere (fill_, zero_, uniform_);  dz/dx = 0,  dz/dvalue = sum(grad)"""

    @staticmethod
    def forward(ctx, x, value):
        xp = backend.array_module(x.array)
        value = value.array if hasattr(value, "array") else value
        if getattr(value, "ndim", 0) and value.shape != x.array.shape:
            raise RuntimeError(
                f"fill_: only supports 0-dimension value tensor but got tensor with "
                f"{value.ndim} dimensions"
            )
        return xp.full(x.array.shape, value, dtype=x.array.dtype) if not getattr(
            value, "ndim", 0) else value.astype(x.array.dtype, copy=True)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dvalue everywhere (0 for a number)"""
        x, value = inputs
        return Fill.apply(outputs[0] * 0, 0.0 if tangents[1] is None else tangents[1])

    @staticmethod
    def backward(ctx, grad):
        grad_value = grad.sum() if ctx.needs_input_grad[1] else None
        return _no_gradient(grad), grad_value


class Copy(Op):
    """z = src broadcast to x's shape, in x's dtype (copy_);  dz/dx = 0,  dz/dsrc = 1"""

    @staticmethod
    def forward(ctx, x, src):
        xp = backend.array_module(x.array)
        src_array = src.array if hasattr(src, "array") else xp.asarray(src)
        ctx.src_shape = src_array.shape
        try:
            out = xp.broadcast_to(src_array, x.array.shape)
        except ValueError:
            raise RuntimeError(
                f"copy_: the source of shape {tuple(src_array.shape)} cannot be broadcast to "
                f"the destination's shape {tuple(x.array.shape)}"
            ) from None
        return out.astype(x.array.dtype, copy=True)

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dsrc broadcast (0 for a number)"""
        x, src = inputs
        return Copy.apply(outputs[0] * 0, 0.0 if tangents[1] is None else tangents[1])

    @staticmethod
    def backward(ctx, grad):
        grad_src = unbroadcast(grad, ctx.src_shape) if ctx.needs_input_grad[1] else None
        return _no_gradient(grad), grad_src


def without_leading_ones(value):
    """What x[index] = value writes: an array value without its leading size-1 dims, as
    PyTorch's setitem drops them (x[0] = ones(1) writes one number; NumPy would refuse it)."""
    shape = getattr(value, "shape", ())
    leading = _leading_ones(shape)
    return value.reshape(shape[leading:]) if leading else value


def assign(target, index, value) -> None:
    """target[index] = value (arrays) as PyTorch's setitem: value's leading size-1 dims
    dropped, and a value that does not broadcast to target[index] is PyTorch's RuntimeError."""
    try:
        target[index] = without_leading_ones(value)
    except ValueError as error:
        if "broadcast" not in str(error) and "sequence" not in str(error):
            raise  # (not a shape that does not fit)
        shape = getattr(value, "shape", None)
        what = f"value tensor of shape {list(shape)}" if shape is not None else f"value {value!r}"
        raise RuntimeError(f"shape mismatch: {what} cannot be broadcast to indexing result of "
                           f"shape {list(target[index].shape)}") from None


def _leading_ones(shape) -> int:
    leading = 0
    while leading < len(shape) and shape[leading] == 1:
        leading += 1
    return leading


class SetItem(Op):
    """z = x with z[index] = value;  dz/dx = 1 outside index, dz/dvalue = grad[index] summed"""

    @staticmethod
    def forward(ctx, x, value, index):
        value_array = value.array if hasattr(value, "array") else value
        ctx.index = owned_index(index) if True in ctx.needs_input_grad else index
        ctx.value_shape = getattr(value_array, "shape", ())
        z = x.array.copy()
        assign(z, index, value_array)
        return z

    @staticmethod
    def tangent(ctx, inputs, outputs, tangents):
        """dz = dx with dz[index] = dvalue (0 for a number)"""
        x, value, index = inputs
        base = outputs[0] * 0 if tangents[0] is None else tangents[0]
        return SetItem.apply(base, 0.0 if tangents[1] is None else tangents[1], index)

    @staticmethod
    def backward(ctx, grad):
        grad_x = SetItem.apply(grad, 0.0, ctx.index) if ctx.needs_input_grad[0] else None
        grad_value = None
        if ctx.needs_input_grad[1]:
            shape = ctx.value_shape  # summed to the value's shape without its leading 1s
            kept = shape[_leading_ones(shape):]
            grad_value = unbroadcast(grad[ctx.index], kept).reshape(shape)
        return grad_x, grad_value, None


class Cat(Op):
    """z = the inputs joined along dim;  dz/dx_k = grad's slice where x_k sits"""

    linear_in_tensors = True  # forward mode: the tangent is Cat of the tangents

    @staticmethod
    def forward(ctx, dim, *tensors):
        arrays = [t.array for t in tensors]
        (axis,) = normalize_dims(dim, arrays[0].ndim, "cat")
        for number, a in enumerate(arrays):
            if a.ndim != arrays[0].ndim or a.shape[:axis] + a.shape[axis + 1:] != (
                arrays[0].shape[:axis] + arrays[0].shape[axis + 1:]
            ):
                raise RuntimeError(
                    f"cat: sizes of tensors must match except in dimension {dim}: tensor 0 has "
                    f"shape {tuple(arrays[0].shape)}, tensor {number} {tuple(a.shape)}"
                )
        ctx.axis, ctx.sizes = axis, [a.shape[axis] for a in arrays]
        return backend.array_module(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        grads, start = [None], 0
        for number, size in enumerate(ctx.sizes):
            index = (slice(None),) * ctx.axis + (slice(start, start + size),)
            grads.append(grad[index] if ctx.needs_input_grad[number + 1] else None)
            start += size
        return tuple(grads)


def _no_gradient(grad):
    """Zeros shaped like grad, for a tensor that was overwritten (its slope is 0): selected, not
    multiplied, so that an inf or NaN in grad still gives 0, as in PyTorch."""
    nowhere = backend.module_for(grad.device).zeros(grad.shape, dtype=backend.bool_)
    return grad.where(nowhere, 0.0)
