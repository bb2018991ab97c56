"""Tensor: an array, the flag that asks for its gradient, and the node that made it.

Every method of Tensor is here, grouped by op family (search for "# ----"): attributes, autograd,
views and memory, conversion, arithmetic, more elementwise math, selection, activations,
reductions, matrix products, shapes, in place, comparisons. A differentiable method is a line or
two that calls one op's `apply` (the math and its derivative live in minigrad/ops/, one small
class per op) or composes other methods (std, norm, repeat), whose gradients then come from the
ops they use. The raw NumPy (or CuPy) array is `tensor.array`; `tensor.data` is, as in PyTorch,
a Tensor on the same memory that is outside the graph.

Layers (docs/architecture.md): this module imports only backend.py and grad_mode.py at the top.
The ops and the engine build on Tensor, and Tensor's methods call them: they are imported once,
at the bottom of this file (the seam).
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections import namedtuple

from . import backend, printing
from .grad_mode import enable_grad, grad_mode

MaxResult = namedtuple("MaxResult", ["values", "indices"])
MinResult = namedtuple("MinResult", ["values", "indices"])


class Tensor:
    """An n-dimensional array on a device that can record the operations applied to it."""

    __slots__ = (
        "array",  # the backend array (numpy.ndarray or cupy.ndarray)
        "device",
        "_grad_fn",  # the node (a Context) that made this tensor, None for a leaf
        "_grad",
        "_requires_grad",
        "_output_nr",  # which output of grad_fn this tensor is
        "_version_counter",  # [number of in-place changes], shared by tensors on this memory
        "_view_of",  # for a view: (its base, the version of the memory when the view's history
        # was made, which output of which function when that returned several views, or None,
        # whether it was made under no_grad)
        "_hooks",  # register_hook on a leaf
        "_inference",  # made in inference_mode(): PyTorch's inference tensors (is_inference)
        "__weakref__",
    )

    __array_ufunc__ = None  # numpy_scalar * tensor must call Tensor.__rmul__, not numpy

    __hash__ = object.__hash__  # __eq__ compares elementwise; identity stays the hash

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        """PyTorch's legacy constructor: mg.Tensor([1, 2]) is float32 (the default float dtype);
        mg.tensor(data) infers the dtype from the data instead."""
        if dtype is None and not isinstance(data, Tensor):
            dtype = backend.get_default_dtype()
        self._init(data, dtype, device, requires_grad)

    @classmethod
    def _from_data(cls, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
        """A new tensor from data whose dtype, unless given, follows the data (mg.tensor)."""
        result = object.__new__(cls)
        result._init(data, dtype, device, requires_grad)
        return result

    def _init(self, data, dtype, device, requires_grad: bool) -> None:
        if isinstance(data, Tensor):
            data = data.array
        elif isinstance(data, (list, tuple)):
            data = _plain(data)
        if device is not None:
            dev = backend.device(device)
        else:
            dev = backend.device_of(data) if backend.is_array(data) else backend.CPU
        array = backend.as_array(data, backend.dtype(dtype), dev)
        # A copy, as torch.tensor makes: later writes to `data` must not change the tensor.
        self.array = array.copy() if array is data else array
        self.device = dev
        self._grad_fn = self._grad = self._view_of = self._hooks = None
        self._requires_grad, self._output_nr, self._version_counter = False, 0, [0]
        self._inference = grad_mode.inference
        if grad_mode.tracer is not None:  # mg.compile: a tensor made in the traced call
            grad_mode.tracer.made(self)
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _wrap_no_copy_no_checks(array, device) -> Tensor:
        """A Tensor around a backend array: no copy, no checks (for code that made the array)."""
        t = _new_tensor(Tensor)
        t.array, t.device, t._grad_fn, t._grad, t._view_of, t._hooks = array, device, *_NONES
        t._requires_grad, t._output_nr, t._version_counter = False, 0, [0]
        mode = grad_mode
        t._inference = mode.inference
        if mode.tracer is not None:  # mg.compile: a tensor made in the traced call
            mode.tracer.made(t)
        return t

    # ---- attributes ----------------------------------------------------------------------

    @property
    def data(self) -> Tensor:
        """The same memory as a Tensor outside the graph (in-place changes are not tracked)."""
        return Tensor._wrap_no_copy_no_checks(self.array, self.device)

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be set to a Tensor, got {type(value).__name__}")
        self.array, self.device = value.array, value.device

    @property
    def grad(self):
        """The gradient accumulated by backward (a Tensor), or None. A non-leaf's stays None
        unless retain_grad() was called: reading it then warns, as in PyTorch."""
        if self._grad is None and self._grad_fn is not None and not self.retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
                "non-leaf Tensor. (Backward fills .grad only for leaves: tensors no recorded "
                "operation made.)", UserWarning, stacklevel=2)
        if grad_mode.tracer is not None and self._grad is not None:  # mg.compile: whose .grad
            grad_mode.tracer.grad_read(self)
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad expected to be a Tensor or None but got grad of type "
                    f"{type(value).__name__}"
                )
            if value.shape != self.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: the tensor has shape "
                    f"{self.shape}, the gradient {value.shape}"
                )
            if value.device != self.device:
                raise RuntimeError(
                    f"assigned grad is on {value.device}, but the tensor is on {self.device}"
                )
            if value.dtype != self.dtype:
                raise RuntimeError(
                    f"assigned grad has dtype {value.dtype}, but the tensor has {self.dtype}"
                )
        self._grad = value

    @property
    def grad_fn(self):
        """The node (a Context) that made this tensor; None for a leaf. For a view whose memory
        was changed in place since, this first gives it its new history (see _refresh_view), or
        raises as PyTorch does where there is none (a piece of split or chunk)."""
        if self._view_of is not None:
            self._refresh_view()
            self._check_recordable("grad_fn")
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, node) -> None:
        self._grad_fn = node

    @property
    def requires_grad(self) -> bool:
        """Whether backward should compute a gradient for this tensor (a view first takes its
        base's new history, as grad_fn does)."""
        if self._view_of is not None:
            self._refresh_view()
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and not backend.is_floating(self.array.dtype):
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        if not value and self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad can only be switched off on leaf tensors; use detach() instead"
            )
        if value and self._inference and not grad_mode.inference:
            raise RuntimeError("Setting requires_grad=True on inference tensor outside "
                               "InferenceMode is not allowed.")
        self._requires_grad = bool(value)

    def is_inference(self) -> bool:
        """Whether this tensor was made in inference_mode() (or is a view of one that was):
        outside inference mode it cannot be saved for backward nor changed in place."""
        return self._inference

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded operation."""
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        """How many in-place operations changed this memory (shared with its views)."""
        return self._version_counter[0]

    @property
    def shape(self) -> tuple:
        """The size of each dimension, as a tuple of ints."""
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.array.ndim

    @property
    def dtype(self):
        """The element type of the data (a numpy dtype, e.g. float32)."""
        return self.array.dtype

    def numel(self) -> int:
        """The number of elements."""
        return int(self.array.size)

    def size(self, dim: int | None = None):
        """The shape, or the size of one dimension when `dim` is given."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        """The number of dimensions (same as ndim)."""
        return self.ndim

    def is_floating_point(self) -> bool:
        """True for float16, float32 and float64 tensors."""
        return backend.is_floating(self.dtype)

    def element_size(self) -> int:
        """The size of one element in bytes."""
        return int(self.dtype.itemsize)

    def is_contiguous(self) -> bool:
        """Whether the elements are laid out in row-major order."""
        return bool(self.array.flags.c_contiguous)

    @property
    def is_cuda(self) -> bool:
        """Whether the tensor lives on a GPU."""
        return self.device is not backend.CPU

    @property
    def mT(self) -> Tensor:  # noqa: N802  (PyTorch's name)
        """The last two dims swapped (a batch of matrices, each transposed)."""
        if self.ndim == 1:  # (a 0-d tensor is its own mT, as in PyTorch)
            raise RuntimeError("tensor.mT is only supported on matrices or batches of "
                               "matrices. Got 1-D tensor.")
        return self.transpose(-2, -1) if self.ndim else self

    def __format__(self, format_spec: str) -> str:
        """f"{loss:.4f}": a 0-d tensor formats as its number, as in PyTorch."""
        if self.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    # ---- new tensors with this one's dtype and device ------------------------------------

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        """A new tensor of `size` holding fill_value, with this tensor's dtype and device
        unless given."""
        shape = tuple(size) if isinstance(size, (tuple, list)) else (size,)
        host = backend.numpy.full(shape, fill_value, backend.dtype(dtype) or self.dtype)
        return Tensor._from_data(host, device=device or self.device,
                                 requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """A new tensor of zeros with this tensor's dtype and device unless given."""
        return self.new_full(_size(size), 0, dtype=dtype, device=device,
                             requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        """A new tensor of ones with this tensor's dtype and device unless given."""
        return self.new_full(_size(size), 1, dtype=dtype, device=device,
                             requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        """A new tensor with this tensor's dtype and device unless given (filled with zeros
        here: minigrad hands out no uninitialised memory)."""
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        """A new tensor holding a copy of data, with this tensor's dtype and device unless
        given."""
        if isinstance(data, Tensor):
            data = data.detach().array
        return Tensor._from_data(data, dtype=dtype or self.dtype, device=device or self.device,
                                 requires_grad=requires_grad)

    def __iter__(self):
        """The sub-tensors along dim 0 (each one indexes this tensor, so gradients flow)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        return printing.tensor_repr(self)  # (PyTorch's format, rule by rule)

    # ---- autograd ------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        With `create_graph=True` the backward pass is recorded too, so the gradients can be
        differentiated again; `inputs` limits which tensors get a `.grad`.
        """
        engine.backward((self,), (gradient,), retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no grad_fn, requires_grad False)."""
        result = Tensor._wrap_no_copy_no_checks(self.array, self.device)
        result._version_counter = self._version_counter  # in-place changes are still seen
        result._inference = self._inference
        return result

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place: it becomes a leaf."""
        if self._view_of is not None:
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. (This tensor is a view of a "
                f"tensor of shape {self._view_of[0].shape}; its history follows that tensor.)"
            )
        self.grad_fn, self._requires_grad, self._output_nr = None, False, 0
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set requires_grad in place and return self."""
        self.requires_grad = requires_grad
        return self

    def register_hook(self, hook):
        """Call hook(grad) when this tensor's gradient is computed; it may return a new grad."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self.grad_fn.hooks is None:
                self.grad_fn.hooks = {}
            hooks = self.grad_fn.hooks.setdefault(self._output_nr, [])
        # retain_grad's hook runs after every other hook, as in PyTorch (it keeps the result)
        retain = [i for i, h in enumerate(hooks) if isinstance(h, _RetainGrad)]
        if retain and not isinstance(hook, _RetainGrad):
            hooks.insert(retain[0], hook)
        else:
            hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(tensor) once per backward, after this leaf's gradient is complete in .grad
        (PyTorch's name; DistributedDataParallel starts an all-reduce there). The hook must
        return None."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        entry = _post_accumulate_hooks.get(id(self))
        if entry is None or entry[0]() is not self:
            key = id(self)
            entry = (weakref.ref(self, lambda _, key=key: _post_accumulate_hooks.pop(key, None)),
                     [])
            _post_accumulate_hooks[key] = entry
        entry[1].append(hook)
        return RemovableHandle(entry[1], hook)

    def retain_grad(self) -> None:
        """Keep .grad for this non-leaf tensor too (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self.retains_grad:
            return
        self.register_hook(_RetainGrad(self))

    def _move_retain_grad(self, old_node) -> None:
        """After an in-place op gave this tensor a new grad_fn, retain its gradient there."""
        for hooks in (old_node.hooks or {}).values():
            hooks[:] = [h for h in hooks if not (isinstance(h, _RetainGrad) and h.tensor() is self)]
        if self.grad_fn is not None:
            self.register_hook(_RetainGrad(self))

    @property
    def retains_grad(self) -> bool:
        """True for a non-leaf tensor on which retain_grad() was called."""
        node = self.grad_fn
        hooks = (node.hooks or {}).get(self._output_nr, ()) if node is not None else ()
        return any(isinstance(h, _RetainGrad) and h.tensor() is self for h in hooks)

    def _retains_grad_at(self, node) -> bool:
        """retains_grad, asked of a given node (this tensor's grad_fn before a change)."""
        hooks = (node.hooks or {}).get(self._output_nr, ()) if node is not None else ()
        return any(isinstance(h, _RetainGrad) and h.tensor() is self for h in hooks)

    # ---- views and memory (used by Function.apply and the in-place ops) ------------------

    def _alias(self) -> Tensor:
        """A new Tensor on the same memory, seen as a view of this one."""
        result = Tensor._wrap_no_copy_no_checks(self.array, self.device)
        result._share_memory_with(self)
        return result

    def _share_memory_with(self, base: Tensor, multi_output: str | None = None) -> None:
        """This tensor is a view of `base`: one version counter, and one root base to follow.

        `multi_output` says which output of which function, when that function returned several
        views (split, chunk): PyTorch refuses in-place changes to those, and to views of them,
        when the change is recorded. A view made under no_grad is marked too: PyTorch refuses
        to record an in-place change of it (or of a view of it) later, under grad mode."""
        self._version_counter = base._version_counter
        self._inference = base._inference  # a view of an inference tensor is one too
        made_in_no_grad = not grad_mode.enabled
        if base._view_of is None:
            root = base
        else:  # a view of a view: follow the first base, and keep its in-place restrictions
            root, _, inherited, inherited_no_grad = base._view_of
            multi_output = multi_output or inherited
            made_in_no_grad = made_in_no_grad or inherited_no_grad
        self._view_of = (root, self._version_counter[0], multi_output, made_in_no_grad)

    def _refresh_view(self) -> None:
        """A view whose memory was changed in place since its history was made takes its base's
        history: it becomes "these elements of the base as it is now" (PyTorch regenerates a
        view's grad_fn the same way, when the version counter they share has moved). Its
        values need nothing: they are the base's memory."""
        base, seen, multi_output, made_in_no_grad = self._view_of
        if self._version_counter[0] == seen:
            return
        if self._lost_history():
            # PyTorch keeps the old history, and says it requires grad (its old history or its
            # base does); recording any use of the view raises (_check_recordable).
            self._requires_grad = True
            return
        old, retained = self._grad_fn, self._retains_grad_at(self._grad_fn)
        if base._requires_grad:
            with enable_grad():
                rebased = movement.AsStrided.apply(base, self.array)
            self._grad_fn, self._output_nr = rebased._grad_fn, rebased._output_nr
            self._requires_grad = True
        else:  # the base is not on a graph (any more): neither is the view
            self._grad_fn, self._output_nr, self._requires_grad = None, 0, False
        self._view_of = (base, self._version_counter[0], multi_output, made_in_no_grad)
        if retained:  # retain_grad() follows the view to its new node, as in PyTorch
            self._move_retain_grad(old)

    def _lost_history(self) -> bool:
        """Whether this view's history cannot be made again: a view that split or chunk returned
        (or a view of one), whose memory was changed in place since its history was made, while
        it has a history or its base requires grad. PyTorch's view-of-many-views records no
        "these elements of the new base", so it refuses to record such a view's later uses."""
        base, seen, multi_output, _ = self._view_of
        return multi_output is not None and self._version_counter[0] != seen and (
            self._grad_fn is not None or base._requires_grad)

    def _check_recordable(self, op: str) -> None:
        """Raise, as PyTorch does, where op would record a use of a view that lost its history;
        not recording it (under no_grad) is fine."""
        if self._lost_history():
            raise RuntimeError(
                f"{op}: {self._view_of[2]} is a view and its base or another view of its base "
                "has been modified inplace. This view is the output of a function that returns "
                "multiple views. Such functions do not allow the output views to be modified "
                "inplace. You should replace the inplace operation by an out-of-place one."
            )

    def _bump_version(self) -> None:
        """Record an in-place change of this memory (optimisers call it after writing .array)."""
        self._version_counter[0] += 1

    # ---- conversion: to another device or dtype, to Python and NumPy ---------------------

    def numpy(self, *, force: bool = False):
        """The data as a NumPy array: on the CPU the tensor's own memory, as in PyTorch (a
        write through either shows in the other); a GPU tensor's is copied to the host.
        force=True allows it for a tensor that requires grad (the memory is still shared)."""
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return backend.to_host(self.array)

    def __array__(self, dtype=None, copy=None):
        """NumPy's conversion (np.asarray(t), matplotlib): numpy(), then dtype if asked."""
        array = self.numpy()
        if copy is False and dtype is not None and array.dtype != dtype:
            raise ValueError(f"__array__: cannot convert {self.dtype} to {dtype} without a copy")
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise RuntimeError(
                f"a Tensor with {self.array.size} elements cannot be converted to Scalar "
                f"(item: only one-element tensors can be converted, got shape {self.shape})"
            )
        return self.array.item()

    def tolist(self):
        """The data as nested Python lists (a number for a 0-d tensor)."""
        return backend.to_host(self.array).tolist()

    def to(self, device=None, dtype=None) -> Tensor:
        """A copy on another device and/or with another dtype (self when nothing changes)."""
        if isinstance(device, Tensor):  # x.to(other): other's device and dtype
            device, dtype = device.device, device.dtype
        elif _is_dtype(device):  # x.to("float64") or x.to(mg.float64), as in PyTorch
            device, dtype = None, device
        result = self
        if dtype is not None and backend.dtype(dtype) != self.dtype:
            if not backend.is_floating(dtype):  # integers have no gradient: leave the graph
                result = result.detach()
            result = movement.Cast.apply(result, backend.dtype(dtype))
        if device is not None and backend.device(device) is not self.device:
            result = movement.ToDevice.apply(result, backend.device(device))
        return result

    def cpu(self) -> Tensor:
        """A copy on the CPU (self when it is already there)."""
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Tensor:
        """A copy on GPU `index` (self when it is already there)."""
        return self.to(f"cuda:{index}")

    def float(self):
        """A float32 copy (self when it is float32 already)."""
        return self.to(backend.float32)

    def double(self):
        """A float64 copy (self when it is float64 already)."""
        return self.to(backend.float64)

    def half(self):
        """A float16 copy (self when it is float16 already)."""
        return self.to(backend.float16)

    def long(self):
        """An int64 copy (values are truncated towards zero, as in PyTorch)."""
        return self.to(backend.int64)

    def int(self):
        """An int32 copy (values are truncated towards zero)."""
        return self.to(backend.int32)

    def short(self):
        """An int16 copy."""
        return self.to(backend.int16)

    def byte(self):
        """A uint8 copy."""
        return self.to(backend.uint8)

    def bool(self):
        """A bool copy: True where the value is not zero."""
        return self.to(backend.bool_)

    def type(self, dtype=None):
        """With no argument, the legacy type name ('minigrad.FloatTensor'); else to(dtype)."""
        if dtype is None:
            return "minigrad." + backend.TYPE_NAMES.get(self.dtype, str(self.dtype))
        return self.to(dtype)

    def type_as(self, other):
        """A copy with other's dtype."""
        return self.to(other.dtype)

    def clone(self) -> Tensor:
        """A copy with its own memory; gradients flow back to this tensor."""
        return movement.Clone.apply(self)

    def contiguous(self):
        """A tensor whose elements are laid out in row-major order (self when they are)."""
        return self if self.array.flags.c_contiguous else self.clone()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.array)

    # ---- arithmetic (ops/elementwise.py; NumPy broadcasting) -----------------------------

    def __add__(self, other):
        return elementwise.Add.apply(self, _scalar(other))

    def __radd__(self, other):
        return elementwise.Add.apply(_scalar(other), self)

    def __sub__(self, other):
        return elementwise.Sub.apply(self, _scalar(other))

    def __rsub__(self, other):
        return elementwise.Sub.apply(_scalar(other), self)

    def __mul__(self, other):
        return elementwise.Mul.apply(self, _scalar(other))

    def __rmul__(self, other):
        return elementwise.Mul.apply(_scalar(other), self)

    def __truediv__(self, other):
        return elementwise.Div.apply(self, _scalar(other))

    def __rtruediv__(self, other):
        if isinstance(other, (int, float)):  # as PyTorch: reciprocal, which saves its result
            return elementwise.Reciprocal.apply(self) * other
        return elementwise.Div.apply(_scalar(other), self)

    def __pow__(self, other):
        return elementwise.Pow.apply(self, _scalar(other))

    def __rpow__(self, other):
        return elementwise.Pow.apply(_scalar(other), self)

    def __neg__(self):
        return elementwise.Neg.apply(self)

    def add(self, other, *, alpha=1):
        """z = self + alpha * other."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        """z = self - alpha * other."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        """z = self * other."""
        return self * other

    def div(self, other, *, rounding_mode=None):
        """z = self / other (true division; rounding_mode is not supported)."""
        if rounding_mode is not None:
            raise NotImplementedError(
                f"div: rounding_mode={rounding_mode!r} is not supported in minigrad; use "
                "(a / b).floor() or (a / b).trunc()"
            )
        return self / other

    def pow(self, exponent):
        """z = self ** exponent."""
        return self ** exponent

    def reciprocal(self):
        """z = 1 / self."""
        return elementwise.Reciprocal.apply(self)

    def neg(self):
        """z = -self."""
        return -self

    def abs(self):
        """z = |self|, elementwise."""
        return elementwise.Abs.apply(self)

    # PyTorch's other names for the same methods
    subtract, multiply, divide, true_divide = sub, mul, div, div

    negative, absolute = neg, abs

    # ---- more elementwise math (ops/elementwise.py) --------------------------------------

    def exp(self) -> Tensor:
        """z = exp(x), elementwise."""
        return elementwise.Exp.apply(self)

    def log(self) -> Tensor:
        """z = log(x), elementwise (natural logarithm)."""
        return elementwise.Log.apply(self)

    def sqrt(self) -> Tensor:
        """z = sqrt(x), elementwise."""
        return elementwise.Sqrt.apply(self)

    def sin(self):
        """z = sin(self), elementwise."""
        return elementwise.Sin.apply(self)

    def cos(self):
        """z = cos(self), elementwise."""
        return elementwise.Cos.apply(self)

    def sign(self):
        """z = -1, 0 or 1 by the sign of each element (no gradient: its slope is 0)."""
        return elementwise.Sign.apply(self)

    def log1p(self) -> Tensor:
        """z = log(1 + x), elementwise, accurate for small x."""
        return elementwise.Log1p.apply(self)

    def expm1(self) -> Tensor:
        """z = exp(x) - 1, elementwise, accurate for small x."""
        return elementwise.Expm1.apply(self)

    def log2(self) -> Tensor:
        """z = log(x) / log(2), elementwise."""
        return self.log() / math.log(2.0)

    def log10(self) -> Tensor:
        """z = log(x) / log(10), elementwise."""
        return self.log() / math.log(10.0)

    def square(self) -> Tensor:
        """z = x ** 2, elementwise."""
        return self ** 2

    def rsqrt(self) -> Tensor:
        """z = 1 / sqrt(x), elementwise."""
        return self.sqrt().reciprocal()

    def floor(self) -> Tensor:
        """The largest whole number <= x, elementwise (no gradient: its slope is 0)."""
        return elementwise.Round.apply(self, "floor")

    def ceil(self) -> Tensor:
        """The smallest whole number >= x, elementwise (no gradient: its slope is 0)."""
        return elementwise.Round.apply(self, "ceil")

    def trunc(self) -> Tensor:
        """x without its fraction (towards 0), elementwise (no gradient: its slope is 0)."""
        return elementwise.Round.apply(self, "trunc")

    def round(self, decimals: int = 0) -> Tensor:
        """The nearest whole number (halves to even), or multiple of 10**-decimals; no
        gradient (its slope is 0)."""
        if decimals == 0:
            return elementwise.Round.apply(self, "round")
        scale = 10.0 ** decimals
        return elementwise.Round.apply(self * scale, "round") / scale

    # ---- selection: each element from one input (ops/selection.py) -----------------------

    def clamp(self, min=None, max=None) -> Tensor:  # noqa: A002  (PyTorch's argument names)
        """z = min(max(x, min), max), elementwise; either bound may be None. The bounds are both
        numbers or both tensors, as in PyTorch (a 0-d tensor beside a number counts as a number);
        one tensor bound alone is maximum's or minimum's."""
        numbers = [b for b in (min, max) if b is not None and not isinstance(b, Tensor)]
        if numbers and (isinstance(min, Tensor) or isinstance(max, Tensor)):
            # A number and a tensor: PyTorch reads a 0-d tensor outside the graph as a number.
            min, max = (_bound_as_number(b, name) for b, name in ((min, "min"), (max, "max")))
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            if max is None:
                return self.maximum(min)
            if min is None:
                return self.minimum(max)
            return selection.ClampByTensors.apply(self, min, max)
        return selection.Clamp.apply(self, min, max)

    def clip(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        """Another name for clamp."""
        return self.clamp(min, max)

    def maximum(self, other):
        """z = the larger of self and other, elementwise."""
        return selection.Maximum.apply(self, other)

    def minimum(self, other):
        """z = the smaller of self and other, elementwise."""
        return selection.Minimum.apply(self, other)

    def where(self, condition, other) -> Tensor:
        """z = self where condition is true, else other (as torch.where(condition, self, other))."""
        return selection.Where.apply(_mask(condition), self, _scalar(other))

    def masked_fill(self, mask, value) -> Tensor:
        """z = value where mask is true, else x (mask a bool tensor, broadcast; value a number
        or a 0-d tensor)."""
        _check_masked_fill(mask, value)
        if isinstance(value, Tensor):  # the result keeps x's dtype, as in PyTorch
            value = value.to(self.dtype)
        else:
            value = backend.numpy.asarray(value).astype(self.dtype).item()
        return selection.Where.apply(_mask(mask), _scalar(value), self)

    def masked_fill_(self, mask, value) -> Tensor:
        """x = value where mask is true, in place."""
        _check_masked_fill(mask, value)
        return inplace.modify(self, "masked_fill_", lambda s: s.masked_fill(mask, value), value)

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of each matrix (elements on and below the `diagonal`-th diagonal),
        zeros elsewhere."""
        return self._triangle("tril", diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of each matrix (elements on and above the `diagonal`-th diagonal),
        zeros elsewhere."""
        return self._triangle("triu", diagonal)

    def _triangle(self, op: str, diagonal: int) -> Tensor:
        if self.ndim < 2:
            raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions")
        rows, columns = self.shape[-2:]
        xp = backend.array_module(self.array)
        below = xp.tri(rows, columns, diagonal if op == "tril" else diagonal - 1, dtype=bool)
        kept = below if op == "tril" else ~below
        return selection.Where.apply(kept, self, backend.numpy.zeros((), self.dtype).item())

    # ---- activations (ops/activation.py) -------------------------------------------------

    def relu(self) -> Tensor:
        """z = max(x, 0), elementwise."""
        return activation.ReLU.apply(self)

    def sigmoid(self) -> Tensor:
        """z = 1 / (1 + exp(-x)), elementwise."""
        return activation.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        """z = tanh(x), elementwise."""
        return activation.Tanh.apply(self)

    def log_softmax(self, dim: int) -> Tensor:
        """z = x - log(sum(exp(x))) along `dim`, computed stably."""
        return activation.LogSoftmax.apply(self, dim)

    def softmax(self, dim: int) -> Tensor:
        """z = exp(x) / sum(exp(x)) along `dim`, computed stably."""
        return activation.Softmax.apply(self, dim)

    # ---- reductions (ops/reduce.py) ------------------------------------------------------

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None,
            keepdims=None) -> Tensor:
        """z = sum of the elements, over all dims or only `dim` (`axis`, `keepdims` as NumPy)."""
        x = self if dtype is None else self.to(dtype)
        keepdim = keepdim if keepdims is None else keepdims
        return reduce.Sum.apply(x, pick_dim(dim, axis, "sum"), keepdim)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None, axis=None,
             keepdims=None) -> Tensor:
        """z = mean of the elements, over all dims or only `dim` (floating point only)."""
        x = self if dtype is None else self.to(dtype)
        keepdim = keepdim if keepdims is None else keepdims
        return reduce.Mean.apply(x, pick_dim(dim, axis, "mean"), keepdim)

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """The largest element; with a dim, (values, indices) along it, as in PyTorch; with a
        tensor, the elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        dim = pick_dim(dim, axis, "max")
        keepdim = keepdim if keepdims is None else keepdims
        if dim is None:
            return selection.Max.apply(self)
        indices = self.argmax(dim, keepdim=True)
        values = selection.MaxDim.apply(self, _mask(indices), dim, keepdim)
        return MaxResult(values, indices if keepdim or self.ndim == 0 else indices.squeeze(dim))

    def min(self, dim=None, keepdim: bool = False):
        """The smallest element; with a dim, (values, indices) along it, as in PyTorch."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return selection.Min.apply(self)
        indices = self.argmin(dim, keepdim=True)
        values = selection.MaxDim.apply(self, _mask(indices), dim, keepdim)  # picks at the indices
        return MinResult(values, indices if keepdim or self.ndim == 0 else indices.squeeze(dim))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the largest element (of the flattened tensor when dim is None); no grad."""
        return self._index_of_extreme("argmax", dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the smallest element (of the flattened tensor when dim is None); no grad."""
        return self._index_of_extreme("argmin", dim, keepdim)

    def _index_of_extreme(self, op: str, dim, keepdim: bool) -> Tensor:
        if dim is None:
            if self.numel() == 0:
                raise RuntimeError(f"{op}(): Expected reduction dim to be specified for "
                                   "input.numel() == 0.")
            return selection.NoGradient.apply(lambda a: getattr(a, op)(), self)
        (axis,) = reduce.normalize_dims(dim, self.ndim, op) or (None,)
        if axis is not None and self.shape[axis] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {dim} to have non-zero size "
                             f"(shape {self.shape})")
        return selection.NoGradient.apply(
            lambda a: getattr(a, op)(axis=axis, keepdims=keepdim), self)

    def cumsum(self, dim: int, *, dtype=None) -> Tensor:
        """z_i = x_1 + ... + x_i along dim (integers sum in int64)."""
        source = self if dtype is None else self.to(dtype=dtype)
        return reduce.CumSum.apply(source, dim)

    def logsumexp(self, dim, keepdim: bool = False) -> Tensor:
        """z = log(sum(exp(x))) over dim, computed stably."""
        return reduce.LogSumExp.apply(self, dim, keepdim)

    def amax(self, dim=None, keepdim: bool = False):
        """The largest values over `dim` (an int or a tuple; all dims when None); ties share the
        gradient."""
        return selection.AMax.apply(self, dim, keepdim)

    def amin(self, dim=None, keepdim: bool = False):
        """The smallest values over `dim` (an int or a tuple; all dims when None); ties share the
        gradient."""
        return selection.AMin.apply(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None,
            axis=None):
        """z = sum((x - mean)**2) / (n - correction); correction 1 (unbiased) by default."""
        return reduce.Var.apply(self, *_var_dim(dim, unbiased, correction, axis, "var"), keepdim)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None,
            axis=None):
        """z = sqrt(var), with var's correction (1, unbiased, by default)."""
        return reduce.Std.apply(self, *_var_dim(dim, unbiased, correction, axis, "std"), keepdim)

    def norm(self, p="fro", dim=None, keepdim: bool = False):
        """The p-norm (2 and 'fro' by default: sqrt(sum(x**2))); also 1, inf, -inf, any p > 0."""
        if p in ("fro", 2, 2.0):
            return reduce.Norm.apply(self, dim, keepdim)
        if p in (1, 1.0):
            return self.abs().sum(dim, keepdim=keepdim)
        if p == math.inf:
            return self.abs().amax(dim, keepdim)
        if p == -math.inf:
            return self.abs().amin(dim, keepdim)
        if isinstance(p, (int, float)) and p > 0:
            return (self.abs() ** p).sum(dim, keepdim=keepdim) ** (1.0 / p)
        raise ValueError(f"norm: p must be 'fro', inf, -inf or a positive number, got {p!r}")

    def sum_to_size(self, *size) -> Tensor:
        """Sum the broadcast dims away so the result has `size` (the adjoint of expand)."""
        return reduce.SumTo.apply(self, shape_args(size))

    # ---- matrix products (ops/matmul.py) -------------------------------------------------

    def __matmul__(self, other):
        return matmul.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return matmul.MatMul.apply(other, self)

    def matmul(self, other) -> Tensor:
        """z = self @ other, the matrix product (see ops.matmul.MatMul)."""
        return matmul.MatMul.apply(self, other)

    def mm(self, other) -> Tensor:
        """z = self @ other for two matrices (2-D tensors)."""
        if self.ndim != 2 or getattr(other, "ndim", 0) != 2:
            raise RuntimeError(
                f"mm: expected two matrices, got shapes {self.shape} and "
                f"{tuple(getattr(other, 'shape', ()))}"
            )
        return matmul.MatMul.apply(self, other)

    def bmm(self, mat2):
        """Batched matrix products: (b, n, m) @ (b, m, p) -> (b, n, p)."""
        if self.ndim != 3 or getattr(mat2, "ndim", 0) != 3:
            raise RuntimeError(
                f"bmm: expected two 3-D tensors, got shapes {self.shape} and "
                f"{tuple(getattr(mat2, 'shape', ()))}"
            )
        if self.shape[0] != mat2.shape[0]:
            raise RuntimeError(
                f"bmm: batch sizes differ: {self.shape[0]} and {mat2.shape[0]}"
            )
        return self.matmul(mat2)

    # ---- shapes: views of the same memory (ops/movement.py), and repeat, a copy ----------

    def reshape(self, *shape) -> Tensor:
        """The same elements with a new shape: a view of the same memory when the strides allow."""
        return movement.Reshape.apply(self, shape_args(shape))

    def view(self, *shape) -> Tensor:
        """The same memory viewed with a new shape; an error where that needs a copy (as in
        PyTorch: use reshape, which copies then)."""
        return movement.Reshape.apply(self, shape_args(shape), True)

    def view_as(self, other):
        """The same elements viewed with other's shape."""
        return self.view(other.shape)

    def reshape_as(self, other):
        """The same elements with other's shape."""
        return self.reshape(other.shape)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """The tensor with dims dim0 and dim1 swapped."""
        return movement.Transpose.apply(self, dim0, dim1)

    swapaxes = swapdims = transpose  # PyTorch's other names for it

    def t(self) -> Tensor:
        """Transpose of a matrix (dims 0 and 1); a tensor with fewer dims gives a view of itself."""
        return self.T

    @property
    def T(self) -> Tensor:
        """The transpose of a matrix; a tensor with fewer than 2 dimensions gives a view of itself
        (as in PyTorch: a view, so that it shares the tensor's version counter and history)."""
        if self.ndim > 2:
            raise ValueError(f"T: expected a tensor with at most 2 dims, got shape {self.shape}")
        return self.transpose(0, 1) if self.ndim == 2 else self.transpose(0, 0)

    def permute(self, *dims):
        """The tensor with its dims reordered (permute(1, 0) is a transpose)."""
        return movement.Permute.apply(self, shape_args(dims))

    def movedim(self, source, destination) -> Tensor:
        """A view with the dims at `source` moved to `destination` (an int or a tuple each), the
        other dims keeping their order."""
        sources = (source,) if isinstance(source, int) else tuple(source)
        targets = (destination,) if isinstance(destination, int) else tuple(destination)
        if len(sources) != len(targets):
            raise RuntimeError(f"movedim: Invalid source or destination dims: source "
                               f"({list(sources)} dims) should contain the same number of dims "
                               f"as destination ({list(targets)} dims)")
        sources = tuple(reduce.normalize_dims(d, self.ndim, "movedim")[0] for d in sources)
        targets = tuple(reduce.normalize_dims(d, self.ndim, "movedim")[0] for d in targets)
        for name, dims, given in (("source", sources, source), ("destination", targets,
                                                                  destination)):
            if len(set(dims)) != len(dims):
                raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(given)})")
        order = [None] * self.ndim
        for s, t in zip(sources, targets, strict=True):
            order[t] = s
        rest = iter(d for d in range(self.ndim) if d not in sources)
        return self.permute(*[next(rest) if d is None else d for d in order])

    moveaxis = movedim

    def expand(self, *sizes) -> Tensor:
        """A view with size-1 dims repeated to `sizes` (-1 keeps a dim), as in PyTorch."""
        sizes = shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise RuntimeError(
                f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal "
                f"to the number of dimensions in the tensor ({self.ndim})"
            )
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s
                      for i, s in enumerate(sizes))
        return reduce.BroadcastTo.apply(self, shape)

    def expand_as(self, other: Tensor) -> Tensor:
        """expand to other's shape."""
        return self.expand(other.shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a size-1 dim at `dim` (negative dims count from the new end)."""
        (axis,) = reduce.normalize_dims(dim, self.ndim + 1, "unsqueeze")
        new_shape = list(self.shape)
        new_shape.insert(axis, 1)
        return self.reshape(tuple(new_shape))

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Remove size-1 dims (only `dim`, when given; a dim of another size is kept)."""
        axes = reduce.normalize_dims(dim, self.ndim, "squeeze")
        kept = tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1))
        return self.reshape(kept)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims start_dim..end_dim into one."""
        if self.ndim == 0:
            return self.reshape((1,))
        start, end = (
            reduce.normalize_dims(d, self.ndim, "flatten")[0] for d in (start_dim, end_dim)
        )
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        if start == end:  # nothing to merge: PyTorch returns the tensor itself
            return self
        merged = 1
        for size in self.shape[start : end + 1]:
            merged *= size
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def flip(self, *dims, **keywords) -> Tensor:
        """A copy with the order of the elements along each of `dims` reversed (flip(0, 1),
        flip([0, 1]) or flip(dims=[0, 1]))."""
        dims = shape_args(dims) if dims else tuple(keywords.pop("dims", ()))
        if keywords:
            raise TypeError(f"flip() got an unexpected keyword argument {next(iter(keywords))!r}")
        result = self
        for axis in reduce.normalize_dims(dims, self.ndim, "flip") if dims else ():
            backwards = list(range(self.shape[axis] - 1, -1, -1))
            result = result[(slice(None),) * axis + (backwards,)]
        return result if result is not self else self.clone()

    def outer(self, vec2) -> Tensor:
        """z_ij = x_i y_j (two 1-D tensors)."""
        for name, vector in (("self", self), ("vec2", vec2)):
            if vector.ndim != 1:
                raise RuntimeError(f"outer: Expected 1-D argument {name}, but got "
                                   f"{vector.ndim}-D")
        return self.unsqueeze(1) * vec2.unsqueeze(0)

    def dot(self, other) -> Tensor:
        """z = sum_i x_i y_i (two 1-D tensors of one length and dtype)."""
        if self.ndim != 1 or other.ndim != 1:
            raise RuntimeError(f"1D tensors expected, but got {self.ndim}D and {other.ndim}D "
                               "tensors")
        if self.shape != other.shape:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{self.shape[0]}] and src "
                f"[{other.shape[0]}] to have the same number of elements, but got "
                f"{self.shape[0]} and {other.shape[0]} elements respectively")
        if self.dtype != other.dtype:
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                               f"{backend.scalar_name(self.dtype)} and "
                               f"{backend.scalar_name(other.dtype)}")
        return (self * other).sum()

    def __getitem__(self, index) -> Tensor:
        return movement.GetItem.apply(self, _index_arrays(index))

    def split(self, split_size_or_sections, dim: int = 0):
        """Pieces along dim: of split_size each (the last may be smaller), or of the given sizes."""
        (axis,) = reduce.normalize_dims(dim, self.ndim, "split")
        length = self.shape[axis]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0 and length:
                raise RuntimeError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, length - s) for s in range(0, length, step)] if length else [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != length:
                raise RuntimeError(
                    f"split: split_with_sizes expects split_sizes to sum exactly to {length} "
                    f"(input tensor's size at dimension {dim}), but got split_sizes={sizes}"
                )
        pieces, start = [], 0
        for number, size in enumerate(sizes):
            piece = self[(slice(None),) * axis + (slice(start, start + size),)]
            if piece._view_of is not None:  # several views of one base: no in-place on them
                root, version, _, made_in_no_grad = piece._view_of
                piece._view_of = (root, version, f"Output {number} of Split", made_in_no_grad)
            pieces.append(piece)
            start += size
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0):
        """Up to `chunks` pieces along dim, each of ceil(size / chunks) (the last smaller)."""
        if not isinstance(chunks, int) or chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        (axis,) = reduce.normalize_dims(dim, self.ndim, "chunk")
        return self.split(max(-(-self.shape[axis] // chunks), 1), dim)

    def repeat(self, *sizes):
        """The tensor tiled sizes[i] times along each dim (as numpy.tile)."""
        sizes = shape_args(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(
                f"repeat: number of dimensions of repeat dims ({len(sizes)}) can not be smaller "
                f"than number of dimensions of tensor ({self.ndim})"
            )
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        # Put a size-1 dim before each dim, stretch it to the repeat count, then merge the pair.
        spaced = self.reshape(tuple(d for s in shape for d in (1, s)))
        tiled = spaced.expand(tuple(d for r, s in zip(sizes, shape, strict=True) for d in (r, s)))
        result = tiled.reshape(tuple(r * s for r, s in zip(sizes, shape, strict=True)))
        return result.clone() if result._view_of is not None else result  # new memory, always

    # ---- in place (ops/inplace.py records them) ------------------------------------------

    def add_(self, other, alpha=1):
        """self += alpha * other, in place."""
        scaled = other if alpha == 1 else other * alpha
        return inplace.modify(self, "add_", lambda s: s + scaled, other)

    def sub_(self, other, alpha=1):
        """self -= alpha * other, in place."""
        scaled = other if alpha == 1 else other * alpha
        return inplace.modify(self, "sub_", lambda s: s - scaled, other)

    def mul_(self, other):
        """self *= other, in place."""
        return inplace.modify(self, "mul_", lambda s: s * other, other)

    def div_(self, other):
        """self /= other, in place."""
        return inplace.modify(self, "div_", lambda s: s / other, other)

    def clamp_(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        """self = clamp(self, min, max), in place."""
        return inplace.modify(self, "clamp_", lambda s: s.clamp(min, max), min, max)

    def pow_(self, exponent):
        """self = self ** exponent, in place."""
        return inplace.modify(self, "pow_", lambda s: s ** exponent, exponent)

    def relu_(self):
        """self = max(self, 0), in place."""
        return inplace.modify(self, "relu_", lambda s: s.relu())

    def sigmoid_(self):
        """self = 1 / (1 + exp(-self)), in place."""
        return inplace.modify(self, "sigmoid_", lambda s: s.sigmoid())

    def tanh_(self):
        """self = tanh(self), in place."""
        return inplace.modify(self, "tanh_", lambda s: s.tanh())

    def exp_(self):
        """self = exp(self), in place."""
        return inplace.modify(self, "exp_", lambda s: s.exp())

    def log_(self):
        """self = log(self), in place."""
        return inplace.modify(self, "log_", lambda s: s.log())

    def sqrt_(self):
        """self = sqrt(self), in place."""
        return inplace.modify(self, "sqrt_", lambda s: s.sqrt())

    def abs_(self):
        """self = |self|, in place."""
        return inplace.modify(self, "abs_", lambda s: s.abs())

    def neg_(self):
        """self = -self, in place."""
        return inplace.modify(self, "neg_", lambda s: -s)

    def zero_(self):
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self, value):
        """Fill with one value in place (a number or a one-element tensor)."""
        return inplace.fill(self, value)

    def copy_(self, src):
        """Copy src's values (broadcast, converted to self's dtype and device) into self."""
        return inplace.copy(self, src)

    def uniform_(self, a: float = 0.0, b: float = 1.0):
        """Fill with samples of the uniform distribution on [a, b)."""
        values = backend.generator(self.device).uniform(a, b, self.shape).astype(self.dtype)
        return inplace.modify(self, "uniform_", lambda s: movement.Fill.apply(s, values))

    def normal_(self, mean: float = 0.0, std: float = 1.0):
        """Fill with samples of the normal distribution N(mean, std**2)."""
        # mean + std * N(0, 1): cupy.random.Generator has standard_normal but no normal
        values = (backend.generator(self.device).standard_normal(self.shape) * std
                  + mean).astype(self.dtype)
        return inplace.modify(self, "normal_", lambda s: movement.Fill.apply(s, values))

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
        inplace.setitem(self, _index_arrays(index), value)

    # ---- comparisons and tests (bool results, no gradient) -------------------------------

    def _compare(self, other, op) -> Tensor:
        op.elementwise = True  # (vmap's batching rule may run it on the whole batch)
        return selection.NoGradient.apply(op, self, other)

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def eq(self, other):
        """self == other, elementwise."""
        return self == other

    def ne(self, other):
        """self != other, elementwise."""
        return self != other

    def lt(self, other):
        """self < other, elementwise."""
        return self < other

    def le(self, other):
        """self <= other, elementwise."""
        return self <= other

    def gt(self, other):
        """self > other, elementwise."""
        return self > other

    def ge(self, other):
        """self >= other, elementwise."""
        return self >= other

    def isnan(self):
        """True where an element is NaN."""
        return selection.NoGradient.apply(backend.module_for(self.device).isnan, self)

    def isfinite(self):
        """True where an element is neither infinite nor NaN."""
        return selection.NoGradient.apply(backend.module_for(self.device).isfinite, self)

    def any(self, dim=None, keepdim: bool = False):
        """True where any element (along dim, or of all) is nonzero (a bool tensor)."""
        axes = reduce.normalize_dims(dim, self.ndim, "any") if dim is not None else None
        return selection.NoGradient.apply(lambda a: a.any(axis=axes, keepdims=keepdim), self)

    def all(self, dim=None, keepdim: bool = False):
        """True where every element (along dim, or of all) is nonzero (a bool tensor)."""
        axes = reduce.normalize_dims(dim, self.ndim, "all") if dim is not None else None
        return selection.NoGradient.apply(lambda a: a.all(axis=axes, keepdims=keepdim), self)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan=False) -> bool:
        """Whether |self - other| <= atol + rtol * |other| everywhere (shapes broadcast)."""
        xp = backend.array_module(self.array)
        return bool(xp.allclose(self.array, other.array, rtol=rtol, atol=atol,
                                equal_nan=equal_nan))

    def equal(self, other) -> bool:
        """Whether both tensors have the same shape and the same values."""
        return self.shape == other.shape and bool((self.array == other.array).all())


_new_tensor = object.__new__
_NONES = (None,) * 4
# id(leaf) -> (a weak reference to it, its post-accumulate-grad hooks): few tensors have them
_post_accumulate_hooks: dict = {}


def post_accumulate_hooks(tensor) -> list:
    """The hooks register_post_accumulate_grad_hook gave this tensor (the engine runs them)."""
    entry = _post_accumulate_hooks.get(id(tensor))
    return entry[1] if entry is not None and entry[0]() is tensor else []


class RemovableHandle:
    """What register_hook returns: `handle.remove()` takes the hook away again."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class _RetainGrad:
    """The hook behind retain_grad(): store the gradient on the (non-leaf) tensor."""

    def __init__(self, tensor: Tensor):
        self.tensor = weakref.ref(tensor)  # the hook lives on the tensor's grad_fn: no cycle

    def __call__(self, grad: Tensor) -> None:
        tensor = self.tensor()
        if tensor is None:
            return
        if grad_mode.enabled:  # create_graph: keep the graph of the gradient
            tensor._grad = grad.clone() if tensor._grad is None else tensor._grad + grad
        else:
            previous = tensor._grad
            array = grad.array.copy() if previous is None else previous.array + grad.array
            tensor._grad = Tensor._wrap_no_copy_no_checks(array, grad.device)


def _bound_as_number(bound, name: str):
    """clamp's bound, where the other one is a number: a number too, or torch's TypeError."""
    if not isinstance(bound, Tensor):
        return bound
    if bound.ndim != 0 or bound.requires_grad:
        raise TypeError(
            f"clamp(): received an invalid combination of arguments: {name} is a Tensor of shape "
            f"{bound.shape}{' that requires grad' if bound.requires_grad else ''} and the other "
            "bound a number; pass both bounds as Tensors or both as numbers"
        )
    return bound.item()


def reset_grad(tensor: Tensor, set_to_none: bool = True) -> None:
    """What Module.zero_grad and Optimizer.zero_grad do to each parameter: .grad = None, or, as
    PyTorch does, cut .grad from any graph (backward(create_graph=True) leaves one on it) and
    fill it with zeros in place."""
    if set_to_none:
        tensor.grad = None
    elif tensor.grad is not None:
        tensor.grad.detach_()
        tensor.grad.zero_()


def _check_masked_fill(mask, value) -> None:
    """PyTorch's two checks: a bool mask, and a number or 0-d tensor to fill with."""
    dtype = getattr(mask, "dtype", None)
    if dtype != backend.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{dtype}")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")


def _size(size: tuple) -> tuple:
    """new_zeros(2, 3) and new_zeros((2, 3)) both mean the shape (2, 3)."""
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size


def _plain(data):
    """Nested lists with Tensors inside (mg.tensor([mg.tensor(1.), ...])): their host arrays."""
    if isinstance(data, Tensor):
        return backend.to_host(data.array)
    if isinstance(data, (list, tuple)):
        return [_plain(item) for item in data]
    return data


def _scalar(value):
    """A NumPy scalar acts as a Python number: float32 * numpy.float64 stays float32."""
    return value.item() if isinstance(value, backend.numpy.generic) else value


def _mask(condition):
    """A condition for where() (or max's indices): a bool Tensor or array, as a backend array
    (inside vmap the Tensor itself, which may be batched)."""
    if isinstance(condition, Tensor) and not grad_mode.vmap_level:
        return condition.array
    return condition


def _is_dtype(spec) -> bool:
    """Whether to()'s first argument names a dtype rather than a device."""
    if isinstance(spec, str):
        return spec in backend.dtype_names()
    return spec is not None and not isinstance(spec, backend.Device)


def shape_args(args: tuple) -> tuple:
    """A shape given as separate ints or as one tuple: reshape(2, 3) and reshape((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def _index_arrays(index):
    """Replace Tensors inside an index by their arrays (integer or boolean indexing); a 0-d
    integer tensor is an int, as in PyTorch (so x[t] is a view, like x[1])."""
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _index_part(part):
    if not isinstance(part, Tensor):
        return part
    if part.ndim == 0 and part.dtype.kind in "iu":
        return int(part.item())
    return part.array


def pick_dim(dim, axis, op: str):
    """PyTorch accepts NumPy's `axis` as another name for `dim`; giving both is an error."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both dim={dim!r} and axis={axis!r}; give one")
        return axis
    return dim



def _var_dim(dim, unbiased, correction, axis, op: str) -> tuple:
    """var and std's (dim, correction): x.var(False) is the legacy positional `unbiased`."""
    dim = pick_dim(dim, axis, op)
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, correction

# ---- the seam ------------------------------------------------------------------------------
# Tensor's methods call the ops and the engine, which are written on top of Tensor (they make
# Tensors): the layers above this one. So they are imported here, after Tensor exists. This is
# the one import in minigrad that points up (docs/architecture.md; tests/test_layers.py).
from .engine import backward as engine  # noqa: E402
from .ops import (  # noqa: E402
    activation,
    elementwise,
    inplace,
    matmul,
    movement,
    reduce,
    selection,
)
