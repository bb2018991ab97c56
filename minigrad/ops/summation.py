"""Sums as accurate as PyTorch's on every axis: the rounding error grows as log(n), not n.

NumPy sums pairwise only along an array's contiguous last axis. Along any other axis it adds the
rows one at a time, so a float32 total drifts once it is large next to each row: a column of
20 million ones sums to 16,777,216 (2**24, where adding 1 no longer changes a float32). PyTorch
sums in a cascade on every axis, and so does `cascade_sum`: it adds the rows 16 at a time into
partial sums, then those 16 at a time, and so on, so each total is a sum of 16 numbers of like
size at every level. Each level is one NumPy sum over a view (an axis split in two), no Python
loop over the rows.
"""

from __future__ import annotations

from .. import backend

# Along an axis this short, adding one row at a time is accurate enough (NumPy's own sum).
SHORT = 64
# Longer axes: rows are added one at a time within blocks of BLOCK, the blocks' sums the same way,
# level by level (PyTorch's cascade also adds 16 at a level).
BLOCK = 16
# Rows of at least this many elements are summed block by block (see _cascade_along).
WIDE = 512
# Fewer columns than this (a (n, 2) array summed over n): a contiguous copy summed pairwise by
# NumPy is faster than adding rows this short one at a time.
NARROW = 16


def cascade_sum(array, axis=None, keepdims: bool = False):
    """array.sum(axis, keepdims) with PyTorch's accuracy on every axis (float arrays on the CPU)."""
    if isinstance(axis, int) and array.shape[axis] <= SHORT:  # the common short case, at once
        return array.sum(axis=axis, keepdims=keepdims)
    if array.dtype.kind != "f" or backend.is_cuda_array(array):
        return array.sum(axis=axis, keepdims=keepdims)  # exact (integers) or a GPU's own tree
    axes = tuple(range(array.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    if array.dtype == backend.float16:  # accumulate in float32, as PyTorch does
        return cascade_sum(array.astype(backend.float32), axes, keepdims).astype(array.dtype)
    if len(axes) == array.ndim and array.flags.c_contiguous:  # one contiguous run: pairwise
        total = array.reshape(-1).sum()
        return total.reshape((1,) * array.ndim) if keepdims else total
    for a in sorted(axes, reverse=True):
        array = _cascade_along(array, a)
    return array if keepdims else array.squeeze(axis=tuple(axes))


def _cascade_along(array, axis: int):
    """The sum along one axis, kept as a size-1 axis: the sums of blocks of BLOCK slices, then the
    sums of blocks of those, and so on (what is left over after the last whole block is added at
    its level)."""
    length = array.shape[axis]
    contiguous_last = axis == array.ndim - 1 and array.strides[axis] == array.itemsize
    if length <= SHORT or contiguous_last:  # NumPy's own sum is accurate enough here
        return array.sum(axis=axis, keepdims=True)
    if array.size < NARROW * length:
        xp = backend.array_module(array)
        lined_up = xp.ascontiguousarray(xp.moveaxis(array, axis, -1))
        return xp.expand_dims(lined_up.sum(axis=-1), axis)
    whole = length - length % BLOCK
    head, tail = array.shape[:axis], array.shape[axis + 1:]
    part = array[(slice(None),) * axis + (slice(0, whole),)]
    # Split the axis in two (a view) and sum BLOCK slices into each partial sum, in one NumPy
    # call. Which half is summed is only a matter of speed: slices of a long row are added block
    # by block (each block's sum stays in cache); short rows are added as whole rows of partial
    # sums, BLOCK of them, one row length at a time, which NumPy vectorises better.
    if array.size // length >= WIDE:
        partial = part.reshape(head + (whole // BLOCK, BLOCK) + tail).sum(axis=axis + 1)
    else:
        partial = part.reshape(head + (BLOCK, whole // BLOCK) + tail).sum(axis=axis)
    total = _cascade_along(partial, axis)
    if whole < length:
        total += array[(slice(None),) * axis + (slice(whole, length),)].sum(axis=axis,
                                                                           keepdims=True)
    return total
