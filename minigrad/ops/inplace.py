"""How an in-place operation (`add_`, `+=`, `x[i] = v`, ...) runs and is recorded, as in PyTorch.

An in-place operation writes into the tensor's own memory, so everything sharing that memory
(views, `.data`, `detach()`) sees the new values, and it increments the version counter the
tensor shares with them. That counter is what makes in-place safe: a tensor that a node saved
for backward and that was modified since makes backward raise instead of silently using the new
values (see SavedTensor in engine/function.py).

Under grad mode, when the tensor or the other operand requires grad, the operation is recorded:
the result is computed out of place from a copy of the old values, written into the tensor, and
the tensor's history (grad_fn) becomes that operation. On a view, the base's history changes
instead (CopySlices, below), and every view of it follows. A leaf that requires grad cannot be
modified this way (its gradient would have nowhere to go); under `no_grad()` it can, which is
how optimisers update parameters. Tensor's in-place methods (tensor.py) each call `modify`.
"""

from __future__ import annotations

from .. import backend
from ..grad_mode import grad_mode, no_grad
from ..tensor import Tensor
from . import movement


def modify(tensor: Tensor, op: str, compute, *others, written=None) -> Tensor:
    """Write compute(tensor), an out-of-place result, into the tensor's memory; return it.

    An op that reads what it overwrites (add_, mul_, copy_, ...) refuses an expand()ed tensor,
    where one memory location is several elements; one that only writes (fill_, and x[i] = v,
    checked in setitem) does not, as in PyTorch. `written` is x[i] = v's (index, value): on a
    view, only those elements are written into the base."""
    if op not in _WRITES_ONLY and backend.has_internal_overlap(tensor.array):
        raise RuntimeError(_OVERLAP.format(op=op))
    if tensor._view_of is not None:
        tensor._refresh_view()
    recording = grad_mode.enabled and (
        tensor._requires_grad or any(getattr(o, "_requires_grad", False) for o in others)
    )
    if not recording:
        with no_grad():
            result = compute(tensor)
        _write(tensor, op, result)
        return tensor
    if tensor._grad_fn is None and tensor._requires_grad:
        raise RuntimeError(
            f"{op}: a leaf Variable that requires grad is being used in an in-place "
            "operation. Do it under mg.no_grad() (as optimisers do), or on a clone()"
        )
    if tensor._view_of is not None:
        return _modify_view(tensor, op, compute, written)
    result = _write(tensor, op, compute(_snapshot(tensor)))
    _take_history(tensor, result)
    return tensor


def copy(tensor: Tensor, src) -> Tensor:
    """tensor.copy_(src): src's values, broadcast and converted to tensor's dtype and device."""
    if isinstance(src, Tensor) and src.device is not tensor.device:
        src = src.to(tensor.device)
    if isinstance(src, Tensor) and backend.partly_overlap(tensor.array, src.array):
        raise RuntimeError(
            "copy_: unsupported operation: some elements of the input tensor and the "
            "written-to tensor refer to a single memory location. Please clone() the tensor "
            "before performing the operation."
        )
    return modify(tensor, "copy_", lambda s: movement.Copy.apply(s, src), src)


def setitem(tensor: Tensor, index, value) -> None:
    """tensor[index] = value (index already holds arrays, not Tensors)."""
    if _is_basic(index) and backend.has_internal_overlap(tensor.array[index]):
        raise RuntimeError(_OVERLAP.format(op="setitem"))  # (index_put_ writes through)
    if not (grad_mode.enabled and (tensor._requires_grad or getattr(value, "_requires_grad",
                                                                     False))):
        if isinstance(value, Tensor) and value.device is not tensor.device:
            raise RuntimeError(
                f"setitem: value is on {value.device}, the tensor on {tensor.device}")
        tensor.array[index] = value.array if isinstance(value, Tensor) else value
        tensor._bump_version()
        return
    modify(tensor, "setitem", lambda s: movement.SetItem.apply(s, value, index), value,
           written=(index, value))


def _is_basic(index) -> bool:
    """Whether an index is basic (ints, slices, None, ...): it selects a view, not a copy."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


def _snapshot(tensor):
    """The tensor's current values and history, on memory of their own."""
    old = Tensor._wrap_no_copy_no_checks(tensor.array.copy(), tensor.device)
    _take_history(old, tensor)
    return old


def _take_history(tensor, source) -> None:
    """tensor's history becomes source's; a retain_grad() on tensor follows it, as in PyTorch."""
    old = tensor.grad_fn
    retained = tensor.retains_grad if old is not None and old is not source.grad_fn else False
    tensor.grad_fn, tensor._output_nr = source.grad_fn, source._output_nr
    tensor._requires_grad = source._requires_grad
    if retained:
        tensor._move_retain_grad(old)


def _modify_view(view, op: str, compute, written=None):
    """A recorded in-place op on a view changes its base (PyTorch's CopySlices): the base's
    history becomes "the old base with the view's elements replaced", and every view of it,
    this one and any made before, reads its history from the new base."""
    base, _, multi_output = view._view_of
    if multi_output is not None:
        raise RuntimeError(
            f"{op}: {multi_output} is a view and is being modified "
            "inplace. This view is the output of a function that returns multiple views. Such "
            "functions do not allow the output views to be modified inplace. You should replace "
            "the inplace operation by an out-of-place one."
        )
    if base._grad_fn is None and base._requires_grad:
        raise RuntimeError(
            f"{op}: a view of a leaf Variable that requires grad is being used in an in-place "
            "operation. Do it under mg.no_grad() (as optimisers do), or on a clone()"
        )
    positions = backend.flat_positions(view.array, base.array)
    if positions is None:
        raise RuntimeError(
            f"{op}: minigrad cannot record an in-place operation on this view (its base of "
            f"shape {base.shape} does not lay out its own memory densely); apply it to a "
            "clone() of the view"
        )
    if written is None:
        new_values = _conform(view, op, compute(_snapshot(view)))
    else:  # x[index] = value: only the indexed elements (an expanded view may show one twice)
        index, value = written
        positions = positions[index]
        region = Tensor._wrap_no_copy_no_checks(
            backend.array_module(positions).empty(positions.shape, view.dtype), view.device)
        new_values = movement.Copy.apply(region, value)  # value broadcast, in the view's dtype
    new_base = movement.CopySlices.apply(base, new_values, positions)
    _write(base, op, new_base)
    _take_history(base, new_base)
    view._refresh_view()  # "these elements of the new base"
    return view


_WRITES_ONLY = {"fill_", "uniform_", "normal_", "setitem"}
_OVERLAP = (
    "{op}: unsupported operation: more than one element of the written-to tensor refers to a "
    "single memory location (an expand()ed view). Please clone() the tensor before performing "
    "the operation."
)


def _write(tensor, op: str, result) -> None:
    """Write an out-of-place result into the tensor's memory, as PyTorch's in-place rules allow."""
    result = _conform(tensor, op, result)
    tensor.array[...] = result.array
    tensor._bump_version()
    return result


def _conform(tensor, op: str, result):
    """The result of an in-place op, checked to fit the tensor it is written into: the same
    shape (no broadcasting of the tensor itself), a dtype it can be cast to, the same device."""
    if result.shape != tensor.shape:
        raise RuntimeError(
            f"{op}: output with shape {list(tensor.shape)} doesn't match the broadcast shape "
            f"{list(result.shape)}"
        )
    if result.dtype != tensor.dtype:
        if not backend.can_cast(result.dtype, tensor.dtype):
            raise RuntimeError(
                f"{op}: result type {result.dtype} can't be cast to the desired output type "
                f"{tensor.dtype}"
            )
        result = result.to(tensor.dtype)
    if result.device is not tensor.device:
        raise RuntimeError(f"{op}: the result is on {result.device}, the tensor on {tensor.device}")
    return result

