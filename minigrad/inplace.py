"""In-place operations: `add_`, `mul_`, `+=`, `x[i] = v`, ..., with PyTorch's safety rules.

An in-place operation writes into the tensor's own memory, so everything sharing that memory
(views, `.data`, `detach()`) sees the new values, and it increments the version counter the
tensor shares with them. That counter is what makes in-place safe: a tensor that a node saved
for backward and that was modified since makes backward raise instead of silently using the new
values (see autograd/saved.py).

Under grad mode, when the tensor or the other operand requires grad, the operation is recorded:
the result is computed out of place from a copy of the old values, written into the tensor, and
the tensor's history (grad_fn) becomes that operation. A leaf that requires grad cannot be
modified this way (its gradient would have nowhere to go); under `no_grad()` it can, which is
how optimisers update parameters.
"""

from __future__ import annotations

from . import backend
from .autograd.grad_mode import grad_mode, no_grad
from .ops import movement


class InPlaceMethods:
    """The in-place methods of Tensor (a base class of it, kept in this file)."""

    __slots__ = ()

    def _inplace(self, op: str, compute, *others, written=None):
        """Write compute(self), an out-of-place result, into self's memory; return self.

        An op that reads what it overwrites (add_, mul_, copy_, ...) refuses an expand()ed
        tensor, where one memory location is several elements; one that only writes (fill_,
        and x[i] = v, checked in __setitem__) does not, as in PyTorch. `written` is x[i] = v's
        (index, value): on a view, only those elements are written into the base."""
        if op not in _WRITES_ONLY and backend.has_internal_overlap(self.array):
            raise RuntimeError(_OVERLAP.format(op=op))
        if self._view_of is not None:
            self._refresh_view()
        recording = grad_mode.enabled and (
            self._requires_grad or any(getattr(o, "_requires_grad", False) for o in others)
        )
        if not recording:
            with no_grad():
                result = compute(self)
            _write(self, op, result)
            return self
        if self._grad_fn is None and self._requires_grad:
            raise RuntimeError(
                f"{op}: a leaf Variable that requires grad is being used in an in-place "
                "operation. Do it under mg.no_grad() (as optimisers do), or on a clone()"
            )
        if self._view_of is not None:
            return _inplace_on_view(self, op, compute, written)
        result = _write(self, op, compute(_snapshot(self)))
        _take_history(self, result)
        return self

    def add_(self, other, alpha=1):
        """self += alpha * other, in place."""
        return self._inplace("add_", lambda s: s + _scaled(other, alpha), other)

    def sub_(self, other, alpha=1):
        """self -= alpha * other, in place."""
        return self._inplace("sub_", lambda s: s - _scaled(other, alpha), other)

    def mul_(self, other):
        """self *= other, in place."""
        return self._inplace("mul_", lambda s: s * other, other)

    def div_(self, other):
        """self /= other, in place."""
        return self._inplace("div_", lambda s: s / other, other)

    def clamp_(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        """self = clamp(self, min, max), in place."""
        return self._inplace("clamp_", lambda s: s.clamp(min, max))

    def zero_(self):
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self, value):
        """Fill with one value in place (a number or a one-element tensor)."""
        return self._inplace("fill_", lambda s: movement.Fill.apply(s, value), value)

    def copy_(self, src):
        """Copy src's values (broadcast, converted to self's dtype and device) into self."""
        if isinstance(src, type(self)) and src.device is not self.device:
            src = src.to(self.device)
        if isinstance(src, type(self)) and backend.partly_overlap(self.array, src.array):
            raise RuntimeError(
                "copy_: unsupported operation: some elements of the input tensor and the "
                "written-to tensor refer to a single memory location. Please clone() the tensor "
                "before performing the operation."
            )
        return self._inplace("copy_", lambda s: movement.Copy.apply(s, src), src)

    def uniform_(self, a: float = 0.0, b: float = 1.0):
        """Fill with samples of the uniform distribution on [a, b)."""
        values = backend.generator(self.device).uniform(a, b, self.shape).astype(self.dtype)
        return self._inplace("uniform_", lambda s: movement.Fill.apply(s, values))

    def normal_(self, mean: float = 0.0, std: float = 1.0):
        """Fill with samples of the normal distribution N(mean, std**2)."""
        values = backend.generator(self.device).normal(mean, std, self.shape).astype(self.dtype)
        return self._inplace("normal_", lambda s: movement.Fill.apply(s, values))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, index, value):
        """self[index] = value (slices, integer and boolean masks), in place."""
        from .tensor import _index_arrays

        index = _index_arrays(index)
        if _is_basic(index) and backend.has_internal_overlap(self.array[index]):
            raise RuntimeError(_OVERLAP.format(op="setitem"))  # (index_put_ writes through)
        if not (grad_mode.enabled and (self._requires_grad or getattr(value, "_requires_grad",
                                                                       False))):
            array = value.array if isinstance(value, type(self)) else value
            if isinstance(value, type(self)) and value.device is not self.device:
                raise RuntimeError(
                    f"setitem: value is on {value.device}, the tensor on {self.device}"
                )
            self.array[index] = array
            self._bump_version()
            return
        self._inplace("setitem", lambda s: movement.SetItem.apply(s, value, index), value,
                      written=(index, value))


def _is_basic(index) -> bool:
    """Whether an index is basic (ints, slices, None, ...): it selects a view, not a copy."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice)) or p is None or p is Ellipsis for p in parts)


def _snapshot(tensor):
    """The tensor's current values and history, on memory of their own."""
    old = type(tensor)._wrap_no_copy_no_checks(tensor.array.copy(), tensor.device)
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


def _inplace_on_view(view, op: str, compute, written=None):
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
        region = type(view)._wrap_no_copy_no_checks(
            backend.array_module(positions).empty(positions.shape, view.dtype), view.device)
        new_values = movement.Copy.apply(region, value)  # value broadcast, in the view's dtype
    new_base = movement.CopySlices.apply(base, new_values, positions)
    _write(base, op, new_base)
    _take_history(base, new_base)
    view._refresh_view()  # "these elements of the new base"
    return view


def _scaled(other, alpha):
    return other if alpha == 1 else other * alpha


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

