"""nn.utils: gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_."""

from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm; return the
    norm they had (computed as PyTorch does: the norm of the per-parameter norms)."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(0.0)
    norm_type = float(norm_type)
    xp = backend.array_module(grads[0].array)
    if norm_type == math.inf:
        norms = [xp.abs(g.array).max() for g in grads]
        total = xp.stack(norms).max()
    else:
        norms = [(xp.abs(g.array) ** norm_type).sum() ** (1 / norm_type) for g in grads]
        total = (xp.abs(xp.stack(norms)) ** norm_type).sum() ** (1 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = xp.minimum(total.dtype.type(max_norm) / (total + total.dtype.type(1e-6)), 1.0)
    for g in grads:
        g.array *= coef.astype(g.dtype)
        g._bump_version()
    return Tensor._wrap_no_copy_no_checks(backend.ensure_array(total, xp), grads[0].device)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    for g in _grads(parameters):
        xp = backend.array_module(g.array)
        xp.clip(g.array, -clip_value, clip_value, out=g.array)
        g._bump_version()
