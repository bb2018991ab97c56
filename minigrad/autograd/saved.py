"""SavedTensor: what save_for_backward keeps, and the version check that makes in-place safe.

Every Tensor has a version counter, shared by the tensors that share its memory (views, detach()),
that each in-place operation increments. Saving a tensor for backward records its version; when
backward unpacks it, a different version means the values backward needs were overwritten, and
using them would give a silently wrong gradient, so backward raises instead (as PyTorch does).

A saved output is kept as its array, not as the Tensor: the Tensor's grad_fn is the very node
that saves it, and holding it would make a reference cycle. Unpacking rebuilds a Tensor on the
same memory whose grad_fn is that node, so a second backward still flows through it.
"""

from __future__ import annotations

from .. import backend


class SavedTensor:
    """One saved tensor: an input or other tensor, an output of the node, or a constant array."""

    __slots__ = ("tensor", "array", "device", "counter", "version", "output_nr", "origin")

    def __init__(self, tensor, array, device, counter, version, output_nr):
        self.tensor, self.array, self.device = tensor, array, device
        self.counter, self.version, self.output_nr = counter, version, output_nr
        # which node made a saved input, named in the error (an in-place op may rebind it later)
        self.origin = None
        if tensor is not None and tensor.grad_fn is not None:
            self.origin = (tensor.grad_fn, tensor._output_nr)

    @classmethod
    def make(cls, value, args, outputs, scalars=()):
        """Record `value` (given to save_for_backward) once the node's outputs are known."""
        if isinstance(value, Tensor):  # an input, an output, or another tensor
            for number, out in enumerate(outputs):
                if out is value:
                    return cls._output(out, number)
            counter = value._version_counter
            return cls(value, None, value.device, counter, counter[0], None)
        if value is None or type(value) in (int, float, bool):
            return value  # None, or a built-in op's Python-number operand, kept as it is
        for scalar, array in scalars:  # a 0-d output that forward returned as a numpy scalar
            if value is scalar:
                value = array
                break
        if type(value) is not _ndarray:
            if backend.is_scalar(value):
                value = backend.ensure_array(value, backend.array_module(value))
            if not backend.is_array(value):
                raise TypeError(
                    "save_for_backward can only save tensors (or None), got "
                    f"{type(value).__name__}"
                )
        for number, out in enumerate(outputs):  # a built-in op saves its output's array
            if isinstance(out, Tensor) and out.array is value:
                return cls._output(out, number)
        for arg in args:
            if isinstance(arg, Tensor) and arg.array is value:
                counter = arg._version_counter
                return cls(arg, None, arg.device, counter, counter[0], None)
        return cls(None, value, backend.device_of(value), None, 0, None)  # a constant

    @classmethod
    def _output(cls, out, number: int):
        number = number if out.grad_fn is not None else None  # a non-differentiable output
        counter = out._version_counter
        return cls(None, out.array, out.device, counter, counter[0], number)

    def unpack(self, node):
        """The saved Tensor, after checking that nothing modified it in place since."""
        if self.counter is not None and self.counter[0] != self.version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{self._describe(node)}] is at version {self.counter[0]}; "
                f"expected version {self.version} instead. It was saved by {node.name()}. "
                "Hint: compute on a copy (clone()) or do the in-place operation after backward; "
                "mg.autograd.detect_anomaly() shows the forward call that created the node"
            )
        if self.tensor is not None:
            return self.tensor
        result = Tensor._wrap_no_copy_no_checks(self.array, self.device)
        if self.counter is not None:
            result._version_counter = self.counter
        if self.output_nr is not None:  # the node's own output: still on the graph
            result.grad_fn, result._output_nr, result._requires_grad = node, self.output_nr, True
        return result

    def _describe(self, node) -> str:
        array = self.tensor.array if self.tensor is not None else self.array
        where = ""
        if self.output_nr is not None:
            where = f", which is output {self.output_nr} of {node.name()}"
        elif self.origin is not None and self.origin[0] is not None:
            where = f", which is output {self.origin[1]} of {self.origin[0].name()}"
        return f"{array.dtype} tensor of shape {tuple(array.shape)}{where}"


_ndarray = backend.ndarray

from ..tensor import Tensor  # noqa: E402  (tensor.py imports the ops, which import this)
