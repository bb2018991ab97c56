"""Function and Context: the one pattern every op follows.

A Function subclass writes `forward(ctx, *arrays)` and `backward(ctx, *grad_outputs)` on backend
arrays (numpy or cupy). `Fn.apply(*args)` unwraps Tensors, runs forward, and, when grad mode is on
and some input requires grad, makes the Context the result's `grad_fn`: the node of the graph that
remembers what backward needs and where the input gradients go.
"""

from __future__ import annotations

from .. import backend
from . import anomaly
from .grad_mode import grad_mode


class Context:
    """What one call of a Function keeps for its backward: saved arrays, flags and graph edges.

    `next_nodes[i]` says where the gradient of input i goes: the input's own grad_fn (a Context),
    the input Tensor itself when it is a leaf that requires grad, or None.
    """

    __slots__ = (
        "function",
        "needs_input_grad",
        "next_nodes",
        "_saved",
        "released",
        "output_shape",
        "__dict__",
        "__weakref__",
    )

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.next_nodes = ()
        self._saved = ()
        self.released = False
        self.output_shape = None

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays for backward; they are freed after backward unless retain_graph=True."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        """The arrays given to save_for_backward."""
        if self.released:
            raise RuntimeError(
                f"{self.name()}: trying to backward through the graph a second time, but its "
                "saved arrays were freed by the first backward; pass retain_graph=True to the "
                "first backward() to keep them"
            )
        return self._saved

    def release(self) -> None:
        """Free the saved arrays (called by the engine after this node's backward)."""
        self._saved = ()
        self.released = True

    def name(self) -> str:
        """PyTorch-style node name, e.g. "MulBackward"."""
        return self.function.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class Function:
    """Base class of every differentiable operation; subclass and call `apply`."""

    @staticmethod
    def forward(ctx: Context, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        """Run forward on the inputs' arrays and record the node when gradients are needed."""
        arrays = []
        needs_input_grad = []
        next_nodes = []  # where each input's gradient will go (see Context)
        device = None
        for arg in args:
            if isinstance(arg, Tensor):
                if arg.device is not device:
                    if device is not None:
                        raise RuntimeError(
                            f"{cls.__name__}: expected all tensors on the same device, "
                            f"found {device} and {arg.device}"
                        )
                    device = arg.device
                arrays.append(arg.array)
                requires_grad = arg._requires_grad
                needs_input_grad.append(requires_grad)
                # a result sends its gradient to its grad_fn; a leaf keeps it itself
                next_nodes.append((arg.grad_fn or arg) if requires_grad else None)
            else:
                arrays.append(arg)
                needs_input_grad.append(False)
                next_nodes.append(None)
        ctx = Context(cls, tuple(needs_input_grad))
        out = cls.forward(ctx, *arrays)
        if type(out) is _ndarray:
            device = _CPU
        elif isinstance(out, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return an array (e.g. numpy.ndarray), not a Tensor: "
                "forward and backward work on the arrays, as in the built-in ops"
            )
        else:  # a cupy array, or a numpy scalar from a full reduction
            out = backend.ensure_array(out, backend.array_module(out))
            device = backend.device_of(out)
        if grad_mode.anomaly:
            anomaly.check_forward(ctx, arrays, out)
        result = Tensor._wrap(out, device)
        if grad_mode.enabled and True in needs_input_grad:
            ctx.next_nodes = tuple(next_nodes)
            ctx.output_shape = out.shape
            result.grad_fn = ctx
            result._requires_grad = True
        return result


_ndarray, _CPU = backend.ndarray, backend.CPU

# Imported last: tensor.py imports the ops, which import Function from this module.
from ..tensor import Tensor  # noqa: E402
