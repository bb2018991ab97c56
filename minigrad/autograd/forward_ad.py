"""torch.autograd.forward_ad: dual tensors for forward-mode AD (engine/forward.py explains it).

    import minigrad.autograd.forward_ad as fwAD
    with fwAD.dual_level():
        x = fwAD.make_dual(primal, tangent)
        value, jvp = fwAD.unpack_dual(f(x))
"""

from __future__ import annotations

from collections import namedtuple

from ..engine import forward
from ..grad_mode import grad_mode
from ..tensor import Tensor

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class dual_level:  # noqa: N801  (PyTorch's name)
    """The scope of forward-mode AD: tangents exist inside it and are dropped on exit."""

    def __enter__(self):
        return forward.enter_level()

    def __exit__(self, *exc_info):
        forward.exit_level()


def enter_dual_level() -> int:
    return forward.enter_level()


def exit_dual_level(*, level=None) -> None:
    forward.exit_level()


def make_dual(tensor: Tensor, tangent: Tensor, *, level=None) -> Tensor:
    """A view of `tensor` that carries `tangent` (of the same shape) at the open level."""
    if not grad_mode.dual_level:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, "
                           "make sure to enter_dual_level() first.")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError("make_dual: the primal and the tangent must be Tensors")
    if tangent.shape != tensor.shape:
        raise RuntimeError(
            "Trying to set a forward gradient that has a different size than that of the "
            f"original Tensor, this is not supported. Tensor is of size {list(tensor.shape)} "
            f"while the given forward gradient is of size {list(tangent.shape)}."
        )
    if not tensor.dtype.kind == "f":
        raise ValueError(f"make_dual: expected a floating point tensor, got {tensor.dtype}")
    if grad_mode.vmap_level and (grad_mode.batching.is_batched(tensor)
                                 or grad_mode.batching.is_batched(tangent)):
        return grad_mode.batching.make_dual(tensor, tangent, make_dual)  # on the plain tensors
    # A view: on the primal's graph when it requires grad, so reverse mode goes through it
    # (forward-over-reverse: the gradient's tangent is a Hessian-vector product).
    dual = tensor.view(tensor.shape) if tensor.requires_grad and grad_mode.enabled else \
        tensor._alias()
    forward.set_tangent(dual, tangent)
    return dual


def unpack_dual(tensor: Tensor, *, level=None) -> UnpackedDualTensor:
    """(primal, tangent): the value as a tensor without tangent, and the tangent (or None)."""
    if grad_mode.vmap_level and grad_mode.batching.is_batched(tensor):
        return UnpackedDualTensor(*grad_mode.batching.unpack_dual(tensor, unpack_dual))
    tangent = forward.tangent_of(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(tensor._alias(), tangent)


__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual",
           "UnpackedDualTensor"]
