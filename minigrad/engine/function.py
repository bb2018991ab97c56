"""Function and Context: the one pattern every op follows, as in torch.autograd.Function.

A Function subclass writes `forward(ctx, *args)` and `backward(ctx, *grad_outputs)`. forward
receives the Tensors (and any other arguments as given) and runs with grad mode off; it returns a
Tensor or a tuple of them (the built-in ops compute on `x.array` and may return backend arrays,
which apply wraps). backward receives one gradient Tensor per output and returns one gradient
(a Tensor or None) per input; it is written with Tensor operations, so when the engine runs it
with `create_graph=True` the derivative formula is itself recorded on the tape and can be
differentiated again.

`Fn.apply(*args)` runs forward and, when grad mode is on and some input requires grad, makes the
Context the outputs' `grad_fn`: the node of the graph that remembers what backward needs
(saved tensors, flags) and where each input gradient goes (`next_functions`).

Beside PyTorch: the Context is both the `ctx` that forward and backward receive and the node
that `tensor.grad_fn` names (PyTorch has two objects, e.g. MulBackward0 and its ctx). An edge to
a leaf leads to the leaf Tensor itself, where PyTorch puts an AccumulateGrad node in between:
the engine adds into the leaf's `.grad` when a gradient reaches it.
"""

from __future__ import annotations

from .. import backend
from ..grad_mode import grad_mode
from ..tensor import Tensor
from . import anomaly, forward


class Context:
    """What one call of a Function keeps for its backward: saved tensors, flags and graph edges.

    `next_functions[i]` says where the gradient of input i goes, as a pair (target, output_nr):
    the input's own grad_fn and which of its outputs the input was, the input Tensor itself when
    it is a leaf that requires grad (its gradient is accumulated into `.grad`), or (None, 0).
    The gradient must have the shape, dtype and device of what the edge leads to: that output
    of the next node (its `output_metadata`), or the leaf.
    """

    __slots__ = (
        "function",
        "needs_input_grad",
        "next_functions",
        "output_metadata",
        "_saved",
        "_to_save",
        "_scalars",
        "__dict__",
        "__weakref__",
    )

    # Defaults, read from the class until a call sets its own (one Context is made per op call,
    # and most set none of these, so they cost nothing).
    materialize_grads = True
    hooks = None  # {output_nr: [hook, ...]} from Tensor.register_hook on non-leaves
    _dirty = ()
    _non_differentiable = ()
    _for_forward = ()

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.next_functions = self.output_metadata = ()  # (shape, dtype, device) per output
        self._saved = self._to_save = self._scalars = ()  # _scalars: see _as_output

    # ---- what forward may call -------------------------------------------------------------

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (inputs, outputs, or others) for backward; freed after backward.

        An input or output saved here stays on the graph for a second backward, and backward
        raises if it was modified in place since. Anything else saved (a built-in op may save a
        backend array it computed) is a constant to the second pass.
        """
        self._to_save = tensors

    def save_for_forward(self, *tensors) -> None:
        """Keep tensors for jvp (forward mode): ctx.saved_tensors gives them back there."""
        self._for_forward = tensors

    def mark_dirty(self, *tensors) -> None:
        """Say that forward modified these inputs in place (they must be returned as outputs)."""
        self._dirty = tensors

    def mark_non_differentiable(self, *outputs) -> None:
        """Say that these outputs have no gradient (e.g. indices); they will not require grad."""
        self._non_differentiable = outputs

    def set_materialize_grads(self, value: bool) -> None:
        """With False, backward gets None (not zeros) for outputs that received no gradient."""
        self.materialize_grads = bool(value)

    # ---- what backward may read ------------------------------------------------------------

    @property
    def released(self) -> bool:
        """Whether backward has freed the saved tensors (see release)."""
        return self._saved is None

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to save_for_backward, checked against in-place modification."""
        if self._saved is None:
            raise RuntimeError(
                f"{self.name()}: trying to backward through the graph a second time (or to "
                "access saved tensors after they have already been freed); the saved tensors "
                "were freed by the first backward. Pass retain_graph=True to the first "
                "backward() (or autograd.grad()) to keep them"
            )
        values = []
        for value in self._saved:
            values.append(value.unpack(self) if type(value) in _SAVED_KINDS else value)
        return tuple(values)

    def saved_output_is_now(self, output_nr: int, tensor) -> None:
        """An in-place op wrote this node's output into `tensor` (ops/inplace.py): what was
        saved of that output is the tensor from now on, as in PyTorch, where the two are one
        tensor (x.tanh_() saves x itself): changing it in place again makes backward raise."""
        for value in self._saved or ():
            if type(value) is SavedTensor and value.output_nr == output_nr:
                value.array, value.device = tensor.array, tensor.device
                value.counter, value.version = tensor._version_counter, tensor._version

    def release(self) -> None:
        """Free the saved tensors (called by the engine after this node's backward)."""
        self._saved = None

    def name(self) -> str:
        """PyTorch-style node name, e.g. "MulBackward"."""
        return self.function.__name__ + "Backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"


class Function:
    """Base class of every differentiable operation; subclass and call `apply`."""

    # False for a Function a user writes: as in PyTorch, a gradient that broadcasts to its
    # input's shape is summed down to it, and the tensors backward returns may be ones it keeps
    # (so a leaf's .grad copies them). minigrad's own ops are Op, which sets it True.
    built_in = False

    @staticmethod
    def forward(ctx: Context, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grad_outputs):
        raise NotImplementedError

    @staticmethod
    def jvp(ctx: Context, *grad_inputs):
        """Forward mode: the outputs' tangents from one tangent per input (zeros for a tensor
        without one, None for anything else); ctx.saved_tensors holds save_for_forward's."""
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")

    @classmethod
    def apply(cls, *args):
        """Run forward with grad mode off; record the node when some input requires grad."""
        if grad_mode.tracer is not None:  # mg.compile is writing this call down (compiler/)
            return grad_mode.tracer.record_apply(cls, args)
        if grad_mode.vmap_level:  # inside mg.func.vmap: a batched argument takes its rule
            batched = grad_mode.batching.dispatch(cls, args)
            if batched is not None:
                return batched
        device = None
        needs_input_grad = []
        for arg in args:
            if isinstance(arg, Tensor):
                if arg.device is not device:
                    if device is not None:
                        raise RuntimeError(
                            f"{cls.__name__}: expected all tensors on the same device, "
                            f"found {device} and {arg.device}"
                        )
                    device = arg.device
                if arg._view_of is not None:  # a view whose base changed takes its new history
                    arg._refresh_view()
                    if grad_mode.enabled:
                        arg._check_recordable(cls.__name__)
                needs_input_grad.append(arg._requires_grad)
            else:
                needs_input_grad.append(False)
        ctx = Context(cls, tuple(needs_input_grad))
        if grad_mode.enabled:
            record = True in ctx.needs_input_grad
            grad_mode.enabled = False  # forward is not recorded: its result is one node
            try:
                raw = cls.forward(ctx, *args)
            finally:
                grad_mode.enabled = True
        else:  # inside no_grad, or a backward pass without create_graph
            record = False
            raw = cls.forward(ctx, *args)
        if type(raw) is not tuple:
            if type(raw) is _ndarray and raw.base is None:  # the common case: one new array
                outputs = (_wrap(raw, _CPU),)
            else:
                outputs = (_as_output(raw, args, ctx),)
        else:
            outputs = []
            for out in raw:
                if type(out) is _ndarray and out.base is None:
                    out = _wrap(out, _CPU)
                elif out is not None:  # (a gradient that was not needed, say)
                    out = _as_output(out, args, ctx)
                outputs.append(out)
            outputs = tuple(outputs)
        for dirty in ctx._dirty:  # modified in place: what saved it earlier must not use it
            dirty._bump_version()
        if grad_mode.anomaly:
            anomaly.check_forward(ctx, args, outputs)
        if record:
            _record(ctx, args, outputs)
        if grad_mode.dual_level:  # forward-mode AD: the outputs' tangents (engine/forward.py)
            forward.propagate(cls, ctx, args, outputs)
        return outputs[0] if type(raw) is not tuple else outputs


class Op(Function):
    """A built-in op (minigrad/ops): its backward returns gradients of exactly its inputs'
    shapes, or the engine names it (a forgotten unbroadcast), and arrays of its own."""

    built_in = True


def _as_output(out, args, ctx):
    """One value forward returned, as the Tensor apply hands back (arrays are wrapped)."""
    if isinstance(out, Tensor):
        if any(out is arg for arg in args) and not any(out is d for d in ctx._dirty):
            return out._alias()  # an input returned as is: a new Tensor on the same memory
        return out
    if type(out) is _ndarray:
        array = out
    elif backend.is_array(out):
        array = out  # a cupy array
    elif backend.is_scalar(out):  # NumPy gives scalars for 0-d results: make them 0-d arrays
        array = backend.ensure_array(out, backend.array_module(out))
        ctx._scalars += ((out, array),)  # so that saving the scalar saves this output
    else:
        return out  # forward may return non-Tensor values too (ints, None)
    result = Tensor._wrap_no_copy_no_checks(
        array, _CPU if type(array) is _ndarray else backend.device_of(array)
    )
    base = array.base
    if base is not None and not backend.is_array(base):  # as_strided keeps its input one deeper
        base = base.base
    if base is not None:  # a view of an input (reshape, transpose, basic indexing, expand)
        for arg in args:
            if isinstance(arg, Tensor) and (arg.array is base or arg.array.base is base):
                result._share_memory_with(arg)
                break
    return result


def _record(ctx: Context, args, outputs) -> None:
    """Make ctx the grad_fn of the outputs and remember where each input's gradient goes."""
    edges = []
    # needed: a Tensor that requires grad (the lengths are equal)
    for arg, needed in zip(args, ctx.needs_input_grad, strict=False):
        if needed:
            grad_fn = arg._grad_fn
            edges.append((arg, 0) if grad_fn is None else (grad_fn, arg._output_nr))
        else:
            edges.append(_NO_EDGE)
    ctx.next_functions = tuple(edges)
    for tensor in ctx._dirty:
        _check_dirty(ctx, tensor, args, outputs)
    output_metadata = []
    number = 0
    for out in outputs:
        if isinstance(out, Tensor):
            array = out.array
            output_metadata.append((array.shape, array.dtype, out.device))
            # Integers and outputs marked non-differentiable have no gradient.
            if array.dtype.kind == "f" and not (
                    ctx._non_differentiable and any(out is nd for nd in ctx._non_differentiable)):
                out._grad_fn, out._output_nr, out._requires_grad = ctx, number, True
        else:
            output_metadata.append(None)
        number += 1
    ctx.output_metadata = tuple(output_metadata)
    if ctx._to_save:
        saved = []
        hooks = grad_mode.saved_hooks
        for value in ctx._to_save:
            if hooks is not None:  # autograd.graph.saved_tensors_hooks: pack it the user's way
                saved.append(PackedTensor.make(value, args, outputs, ctx._scalars, hooks))
            else:
                saved.append(SavedTensor.make(value, args, outputs, ctx._scalars))
        ctx._saved = tuple(saved)
        ctx._to_save = ()


def _check_dirty(ctx: Context, tensor, args, outputs) -> None:
    """mark_dirty: the tensor must be an input, returned, and not a leaf that requires grad."""
    if not any(tensor is arg for arg in args):
        raise RuntimeError(
            f"{ctx.function.__name__}: mark_dirty was given a tensor that is not "
            "an input of forward"
        )
    if not any(tensor is out for out in outputs):
        raise RuntimeError(
            f"{ctx.function.__name__}: an input marked dirty (modified in place) "
            "must be returned as an output of forward"
        )
    if tensor.grad_fn is None and tensor._requires_grad:
        raise RuntimeError(
            f"{ctx.function.__name__}: a leaf Variable that requires grad is being used in an "
            "in-place operation."
        )
    if tensor._view_of is not None:
        raise RuntimeError(
            f"{ctx.function.__name__}: mark_dirty on a view (a slice, reshape or transpose of "
            f"a tensor of shape {tensor._view_of[0].shape}) is not supported by minigrad: its "
            "base's history would not change; pass the base tensor, or a clone() of the view"
        )


# ---- saved tensors --------------------------------------------------------------------------
# SavedTensor: what save_for_backward keeps, and the version check that makes in-place safe.
#
# Every Tensor has a version counter, shared by the tensors that share its memory (views, detach()),
# that each in-place operation increments. Saving a tensor for backward records its version; when
# backward unpacks it, a different version means the values backward needs were overwritten, and
# using them would give a silently wrong gradient, so backward raises instead (as PyTorch does).
#
# A saved output is kept as its array, not as the Tensor: the Tensor's grad_fn is the very node
# that saves it, and holding it would make a reference cycle. Unpacking rebuilds a Tensor on the
# same memory whose grad_fn is that node, so a second backward still flows through it.


class SavedTensor:
    """One saved tensor: an input or other tensor, an output of the node, or a constant array."""

    __slots__ = ("tensor", "array", "device", "counter", "version", "output_nr", "origin",
                 "tangent")

    def __init__(self, tensor, array, device, counter, version, output_nr):
        self.tensor, self.array, self.device = tensor, array, device
        self.counter, self.version, self.output_nr = counter, version, output_nr
        self.tangent = None  # forward mode: a saved output's tangent, which unpack passes on
        # which node made a saved input, named in the error (an in-place op may rebind it later)
        self.origin = None
        if tensor is not None and tensor.grad_fn is not None:
            self.origin = (tensor.grad_fn, tensor._output_nr)

    @classmethod
    def make(cls, value, args, outputs, scalars=()):
        """Record `value` (given to save_for_backward) once the node's outputs are known."""
        if isinstance(value, Tensor) and value._inference:
            raise RuntimeError(_SAVING_INFERENCE)
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
        if self.tangent is not None and grad_mode.dual_level:  # forward-over-reverse
            forward.set_tangent(result, self.tangent)
        return result

    def _describe(self, node) -> str:
        array = self.tensor.array if self.tensor is not None else self.array
        where = ""
        if self.output_nr is not None:
            where = f", which is output {self.output_nr} of {node.name()}"
        elif self.origin is not None and self.origin[0] is not None:
            where = f", which is output {self.origin[1]} of {self.origin[0].name()}"
        return f"{array.dtype} tensor of shape {tuple(array.shape)}{where}"


class PackedTensor:
    """A saved tensor kept the user's way, under autograd.graph.saved_tensors_hooks(pack, unpack):
    forward keeps pack(tensor), whatever it returns; backward gets unpack(that). As in PyTorch,
    no version check is made (what was packed is usually a copy)."""

    __slots__ = ("packed", "unpack_hook", "output_nr")

    def __init__(self, packed, unpack_hook, output_nr):
        self.packed, self.unpack_hook, self.output_nr = packed, unpack_hook, output_nr

    @classmethod
    def make(cls, value, args, outputs, scalars, hooks):
        pack, unpack = hooks
        if value is None or type(value) in (int, float, bool):
            return value  # not a tensor: kept as it is, as SavedTensor does
        if isinstance(value, Tensor) and value._inference:
            raise RuntimeError(_SAVING_INFERENCE)
        for scalar, array in scalars:
            if value is scalar:
                value = array
        output_nr = None
        for number, out in enumerate(outputs):
            if out is value or (isinstance(out, Tensor) and not isinstance(value, Tensor)
                                and out.array is value):
                value, output_nr = out, (number if out.grad_fn is not None else None)
                break
        if not isinstance(value, Tensor):
            value = Tensor._wrap_no_copy_no_checks(
                backend.ensure_array(value, backend.array_module(value)),
                backend.device_of(value) if backend.is_array(value) else backend.CPU)
        return cls(pack(value), unpack, output_nr)

    def unpack(self, node):
        result = self.unpack_hook(self.packed)
        if not isinstance(result, Tensor):
            raise TypeError(
                f"{node.name()}: the unpack hook of saved_tensors_hooks returned a "
                f"{type(result).__name__}; it must return a Tensor"
            )
        if self.output_nr is not None:  # the node's own output: still on its graph
            result = Tensor._wrap_no_copy_no_checks(result.array, result.device)
            result.grad_fn, result._output_nr, result._requires_grad = node, self.output_nr, True
        return result


_SAVED_KINDS = (SavedTensor, PackedTensor)
_SAVING_INFERENCE = (
    "Inference tensors cannot be saved for backward. Please do not use Tensors created in "
    "inference mode in computation tracked by autograd. To work around this, you can make a "
    "clone to get a normal tensor and use it in autograd, or use `torch.no_grad()` instead of "
    "`torch.inference_mode()`."
)
_ndarray, _CPU = backend.ndarray, backend.CPU
_NO_EDGE = (None, 0)

_wrap = Tensor._wrap_no_copy_no_checks
