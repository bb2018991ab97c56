"""Forward-mode AD: tangents ride along with the values, one op at a time.

Reverse mode (backward.py) records the graph, then walks it backwards once per output. Forward
mode needs no graph: each tensor may carry a *tangent* (a direction dx), and every op, as it
computes z = f(x, ...), also computes z's tangent dz = J_f dx (a Jacobian-vector product, JVP)
from its inputs' tangents. One forward pass gives J v for one v: the cheap direction when there
are few inputs and many outputs, the opposite of backward.

    with mg.autograd.forward_ad.dual_level():
        x = make_dual(primal, tangent)   # a tensor that carries a tangent
        y = f(x)
        value, jvp = unpack_dual(y)      # y and J_f(primal) @ tangent

Function.apply calls `propagate` after each op's forward while a dual level is open. An op says
how: `linear_in_tensors = True` (sums, views, casts: the tangent is the op applied to the
tangents), or a `tangent(ctx, inputs, outputs, tangents)` static method beside its backward.
"""

from __future__ import annotations

import weakref

from ..grad_mode import grad_mode
from ..tensor import Tensor

_tangents: dict = {}  # id(tensor) -> (a weak reference to it, its tangent), at the open level


def enter_level() -> int:
    if grad_mode.dual_level:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    grad_mode.dual_level = 1
    return 1


def exit_level() -> None:
    grad_mode.dual_level = 0
    _tangents.clear()  # the tangents belong to the level: outside it, tensors are plain again


def set_tangent(tensor: Tensor, tangent: Tensor) -> None:
    if grad_mode.vmap_level and grad_mode.batching.is_batched(tensor):  # on the plain tensor
        return grad_mode.batching.set_tangent(tensor, tangent, set_tangent)
    key = id(tensor)
    _tangents[key] = (weakref.ref(tensor, lambda _, key=key: _tangents.pop(key, None)), tangent)


def tangent_of(tensor) -> Tensor | None:
    """The tangent a tensor carries at the open level, or None."""
    if grad_mode.vmap_level and grad_mode.batching.is_batched(tensor):  # (func/batching.py)
        return grad_mode.batching.tangent_of(tensor, tangent_of)
    entry = _tangents.get(id(tensor))
    return entry[1] if entry is not None and entry[0]() is tensor else None


def propagate(cls, ctx, args, outputs) -> None:
    """After an op's forward: give its outputs the tangent the inputs' tangents imply."""
    tangents = [tangent_of(a) if isinstance(a, Tensor) else None for a in args]
    if all(t is None for t in tangents):
        return
    grad_mode.dual_level = 0  # the formula's own ops are plain: they carry no tangents
    try:
        if getattr(cls, "linear_in_tensors", False):  # z = L(x, y, ...): dz = L(dx, dy, ...)
            filled = [(t if t is not None else _zeros_like(a)) if isinstance(a, Tensor) else a
                      for a, t in zip(args, tangents, strict=True)]
            result = cls.apply(*filled)
        elif hasattr(cls, "tangent"):
            result = cls.tangent(ctx, args, outputs, tangents)
        elif not cls.built_in:  # a user's Function: its jvp, as PyTorch calls it
            result = _user_jvp(cls, ctx, args, tangents)
        else:
            raise NotImplementedError(
                f"forward-mode AD: {cls.__name__} has no forward derivative (tangent) yet; "
                "compute this Jacobian-vector product with autograd.functional.jvp (two "
                "reverse passes)"
            )
    finally:
        grad_mode.dual_level = 1
    results = result if type(result) is tuple else (result,)
    for out, tangent in zip(outputs, results, strict=False):
        if isinstance(out, Tensor) and tangent is not None and out.array.dtype.kind == "f":
            set_tangent(out, tangent)
            for saved in ctx._saved or ():  # an output saved for backward: backward (forward-
                if getattr(saved, "array", None) is out.array:  # over-reverse) needs its tangent
                    saved.tangent = tangent


def _user_jvp(cls, ctx, args, tangents):
    """Function.jvp(ctx, *tangents): zeros for a tensor without a tangent, None for a number;
    during the call ctx.saved_tensors gives what forward saved with save_for_forward."""
    filled = [(t if t is not None else _zeros_like(a)) if isinstance(a, Tensor) else None
              for a, t in zip(args, tangents, strict=True)]
    kept = ctx._saved
    ctx._saved = tuple(ctx._for_forward)
    try:
        return cls.jvp(ctx, *filled)
    finally:
        ctx._saved = kept


def _zeros_like(tensor: Tensor) -> Tensor:
    xp_zeros = tensor.array * 0  # (the same dtype, shape and device)
    return Tensor._wrap_no_copy_no_checks(xp_zeros, tensor.device)
