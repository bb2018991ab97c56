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
from ..engine import forward
from ..grad_mode import grad_mode, no_grad
from ..tensor import Tensor
from . import movement


def modify(tensor: Tensor, op: str, compute, *others, written=None) -> Tensor:
    """Write compute(tensor), an out-of-place result, into the tensor's memory; return it.

    `others` are the op's operands, checked against the tensor's memory (refuse_overlap).
    `written` is x[i] = v's (index, value): on a view, only those elements are written into the
    base."""
    _refuse_inference(tensor)
    refuse_overlap(tensor, op, others)
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
    if tensor._view_of is not None:
        _refuse_multi_output_view(tensor, op)  # PyTorch checks this first
    if tensor._grad_fn is None and tensor._requires_grad:
        raise RuntimeError(
            f"{op}: a leaf Variable that requires grad is being used in an in-place "
            "operation. Do it under mg.no_grad() (as optimisers do), or on a clone()"
        )
    if tensor._view_of is not None:
        return _modify_view(tensor, op, compute, written)
    result = _write(tensor, op, compute(_snapshot(tensor)))
    _take_history(tensor, result)
    if result.grad_fn is not None:
        result.grad_fn.saved_output_is_now(result._output_nr, tensor)
    return tensor


def copy(tensor: Tensor, src) -> Tensor:
    """tensor.copy_(src): src's values, broadcast and converted to tensor's dtype and device."""
    if isinstance(src, Tensor) and src.device is not tensor.device:
        src = src.to(tensor.device)
    return modify(tensor, "copy_", lambda s: movement.Copy.apply(s, src), src)


def fill(tensor: Tensor, value) -> Tensor:
    """tensor.fill_(value). A number is only written, so an expand()ed tensor takes it; PyTorch
    fills from a tensor value with a kernel that refuses one memory location at several elements
    of the written-to tensor, so minigrad refuses it too."""
    if isinstance(value, Tensor):
        _refuse_internal_overlap(tensor.array, "fill_")
    return modify(tensor, "fill_", lambda s: movement.Fill.apply(s, value), value)


def setitem(tensor: Tensor, index, value) -> None:
    """tensor[index] = value (index already holds arrays, not Tensors)."""
    _refuse_inference(tensor)
    _refuse_setitem_overlap(tensor, index, value)
    dual = grad_mode.dual_level and (forward.tangent_of(tensor) is not None or (
        isinstance(value, Tensor) and forward.tangent_of(value) is not None))
    if not dual and not (grad_mode.enabled and (tensor._requires_grad or getattr(
            value, "_requires_grad", False))):
        if isinstance(value, Tensor) and value.device is not tensor.device:
            raise RuntimeError(
                f"setitem: value is on {value.device}, the tensor on {tensor.device}")
        movement.assign(tensor.array, index, value.array if isinstance(value, Tensor) else value)
        tensor._bump_version()
        if grad_mode.tracer is not None:  # mg.compile writes the write down (compiler/trace.py)
            grad_mode.tracer.record_write(tensor, index, value)
        return
    modify(tensor, "setitem", lambda s: movement.SetItem.apply(s, value, index), value,
           written=(index, value))


# ---- what PyTorch's kernels refuse to write ------------------------------------------------------
# A kernel that writes in place while it reads could read an element it has already written: when
# one memory location is several elements of the written-to tensor (an expand()ed view), or when
# an operand partly overlaps it (x -= x[0]). PyTorch refuses both, in the same words.


def _refuse_inference(tensor) -> None:
    """An inference tensor (made in inference_mode) may change in place only inside it."""
    if tensor._inference and not grad_mode.inference:
        raise RuntimeError(
            "Inplace update to inference tensor outside InferenceMode is not allowed.You can "
            "make a clone to get a normal tensor before doing inplace update.See "
            "https://github.com/pytorch/rfcs/pull/17 for more details."
        )


def refuse_overlap(tensor, op: str, others) -> None:
    """The checks of an elementwise in-place op (add_, mul_, clamp_, copy_, ...) on its operands.
    An op that only writes (fill_, x[i] = v: see fill and setitem) has checks of its own; copy_
    from the tensor's very elements returns before any check in PyTorch."""
    if op in _WRITES_ONLY:
        return
    src = others[0] if op == "copy_" else None
    if isinstance(src, Tensor) and _same_data(tensor.array, src.array):
        return
    _refuse_internal_overlap(tensor.array, op)
    for other in others:
        if isinstance(other, Tensor) and backend.partly_overlap(tensor.array, other.array):
            raise RuntimeError(_PARTLY_OVERLAPS.format(op=op))


def _refuse_setitem_overlap(tensor, index, value) -> None:
    """x[index] = value as PyTorch runs it. A basic index copies value into the view x[index]
    (copy_'s checks; filled from a number or a 0-d value, only the view is checked). An advanced
    index (index_put_) refuses a value on the written memory at all, unless the value has one
    element and the index is one mask (then it is masked_fill_, which reads the value first)."""
    region = _written_region(tensor.array, index)
    if _is_basic(index):
        source, from_one_element = _copied_from(value, region.shape)
        if source is not None and not from_one_element and _same_data(region, source):
            return  # copy_ returns at once
        _refuse_internal_overlap(region, "setitem")
        if source is not None and (backend.partly_overlap(region, source) or (
                from_one_element and any(region.strides) and backend.overlap(region, source))):
            raise RuntimeError(_PARTLY_OVERLAPS.format(op="setitem"))
    elif isinstance(value, Tensor) and not _is_masked_fill(index, value):
        if backend.overlap(region, value.array):
            raise RuntimeError(_PARTLY_OVERLAPS.format(op="setitem"))


def _same_data(array, source) -> bool:
    """PyTorch's copy_ returns at once when the source is the very elements it would write."""
    return source.dtype == array.dtype and backend.same_elements(array, source)


def _refuse_internal_overlap(array, op: str) -> None:
    """Refuse to write where one memory location is several elements (an expand()ed view)."""
    if backend.has_internal_overlap(array):
        raise RuntimeError(_OVERLAP.format(op=op))


def _written_region(array, index):
    """The view that x[index] = v writes through, as PyTorch sees it: x[index] for a basic index
    (a 0-d view, not a copied number, for ints alone), and for an advanced one the view
    index_put_ writes into: the basic parts applied, the index arrays' dims kept whole."""
    parts = index if isinstance(index, tuple) else (index,)
    if not _is_basic(index):
        parts = tuple(d for p in parts for d in (
            (p,) if _is_basic(p) else (slice(None),) * _dims_indexed(p)))
    if not any(p is Ellipsis for p in parts):
        parts += (Ellipsis,)
    return array[parts]


def _dims_indexed(part) -> int:
    """How many dims an index array (or list) takes: all of a mask's, one for integers."""
    return part.ndim if _is_mask(part) else 1


def _is_mask(part) -> bool:
    """Whether an index part is a boolean mask (an array of bools)."""
    return getattr(part, "dtype", None) is not None and part.dtype.kind == "b"


def _is_masked_fill(index, value) -> bool:
    """Whether PyTorch runs x[index] = value as masked_fill_: one mask, a one-element value."""
    arrays = [p for p in (index if isinstance(index, tuple) else (index,)) if not _is_basic(p)]
    return value.array.size == 1 and len(arrays) == 1 and _is_mask(arrays[0])


def _copied_from(value, shape):
    """(source, from_one_element): what PyTorch's x[i] = value copies into x[i]. value's array
    when the shapes are equal; None for a number or a 0-d tensor (x[i] is filled with it: nothing
    to check against); else value with its leading size-1 dims dropped and broadcast to shape
    (None where it does not broadcast: the assignment raises then). from_one_element: every dim
    was dropped (a one-element value), and PyTorch's expand of what is left, a 0-d view, gives
    every dim stride 0: unless the written elements are themselves one expanded element (every
    stride 0), sharing memory with them is a partial overlap (x[None] = x for x of shape (1,)
    raises in PyTorch, x[None] = x for shape (3,) does not)."""
    if not isinstance(value, Tensor) or value.ndim == 0:
        return None, False
    array = value.array
    if array.shape == shape:
        return array, False
    dropped = movement.without_leading_ones(array)
    try:
        source = backend.array_module(array).broadcast_to(dropped, shape)
    except ValueError:
        return None, False
    return source, dropped.ndim == 0 and len(shape) > 0


def _is_basic(index) -> bool:
    """Whether an index is basic (ints, slices, None, ...): it selects a view, not a copy."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


_WRITES_ONLY = {"fill_", "uniform_", "normal_", "setitem"}
_OVERLAP = (
    "{op}: unsupported operation: more than one element of the written-to tensor refers to a "
    "single memory location (an expand()ed view). Please clone() the tensor before performing "
    "the operation."
)
_PARTLY_OVERLAPS = (
    "{op}: unsupported operation: some elements of the input tensor and the written-to tensor "
    "refer to a single memory location. Please clone() the tensor before performing the "
    "operation."
)


# ---- recording ------------------------------------------------------------------------------


def _snapshot(tensor):
    """The tensor's current values and history, on memory of their own."""
    old = Tensor._wrap_no_copy_no_checks(tensor.array.copy(), tensor.device)
    if grad_mode.tracer is not None:  # mg.compile writes the copy down (compiler/trace.py)
        grad_mode.tracer.record_copy(tensor.array, old.array)
    if grad_mode.dual_level:  # forward mode: the old values' tangent goes with them
        tangent = forward.tangent_of(tensor)
        if tangent is not None:
            forward.set_tangent(old, tangent)
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
    base, _, _, made_in_no_grad = view._view_of
    if made_in_no_grad:
        raise RuntimeError(
            f"{op}: a view was created in no_grad mode and is being modified inplace with grad "
            "mode enabled. Given that this use case is ambiguous and error-prone, it is "
            "forbidden (as in PyTorch). Make the view and the in-place op both inside the "
            "no_grad block, or both outside it, or use clone() to get a tensor of its own"
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
        region = view.array
    else:  # x[index] = value: only the indexed elements (an expanded view may show one twice)
        index, value = written
        positions = positions[index]
        region = _written_region(view.array, index)
        values = Tensor._wrap_no_copy_no_checks(
            backend.array_module(positions).empty(positions.shape, view.dtype), view.device)
        value = movement.without_leading_ones(value)  # (a Tensor's reshape: recorded)
        new_values = movement.Copy.apply(values, value)  # value broadcast, in the view's dtype
    # Written through an expand()ed view, PyTorch's CopySlices cannot send the old base its
    # gradient back through the view: it raises in backward (see CopySlices).
    expanded = backend.has_internal_overlap(region)
    new_base = movement.CopySlices.apply(base, new_values, positions, expanded)
    _write(base, op, new_base)
    _take_history(base, new_base)
    view._refresh_view()  # "these elements of the new base"
    if written is None and new_values.grad_fn is not None:  # (x.tanh_() saves x: see modify)
        new_values.grad_fn.saved_output_is_now(new_values._output_nr, view)
    return view


def _refuse_multi_output_view(view, op: str) -> None:
    """PyTorch refuses to record an in-place op on a view that split or chunk returned (or on a
    view of one): it could not make the sibling views' histories again."""
    multi_output = view._view_of[2]
    if multi_output is not None:
        raise RuntimeError(
            f"{op}: {multi_output} is a view and is being modified "
            "inplace. This view is the output of a function that returns multiple views. Such "
            "functions do not allow the output views to be modified inplace. You should replace "
            "the inplace operation by an out-of-place one."
        )


def _write(tensor, op: str, result) -> Tensor:
    """Write an out-of-place result into the tensor's memory, as PyTorch's in-place rules allow;
    return the result (conformed: the tensor's dtype), whose history the tensor then takes."""
    result = _conform(tensor, op, result)
    tensor.array[...] = result.array
    tensor._bump_version()
    if grad_mode.dual_level:  # forward mode: the tensor now carries the result's tangent
        _write_tangent(tensor, forward.tangent_of(result))
    if grad_mode.tracer is not None:  # mg.compile writes the write down (compiler/trace.py)
        grad_mode.tracer.record_write(tensor, Ellipsis, result)
    return result


def _write_tangent(tensor, tangent) -> None:
    """Forward mode: an in-place op writes the tensor's tangent in place too (zeros where the
    result has none), as PyTorch does, so that the tangents of its views and of its base, views
    of this one, change with it: y[:2].exp_() changes y's tangent."""
    old = forward.tangent_of(tensor)
    if old is None or old.shape != tensor.shape or old.dtype != tensor.dtype or \
            not getattr(old.array.flags, "writeable", True):
        if tangent is not None:
            forward.set_tangent(tensor, tangent)
        return
    old.array[...] = 0 if tangent is None else tangent.array


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

