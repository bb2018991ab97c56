"""Tensor: an array, the flag that asks for its gradient, and the node that made it.

Every differentiable method here is one line that calls a Function from `minigrad.ops`; the math
and the backward live there, so this file only says what each operator means. The raw NumPy (or
CuPy) array is `tensor.array`; `tensor.data` is, as in PyTorch, a Tensor on the same memory that
is outside the graph. In-place methods (`add_`, `+=`, `x[i] = v`, ...) live in `inplace.py`.
"""

from __future__ import annotations

import weakref
from collections import namedtuple

from . import backend
from .autograd.grad_mode import enable_grad, grad_mode
from .inplace import InPlaceMethods
from .ops import activation, broadcast, elementwise, matmul, movement, reduce
from .tensor_methods import TensorMethods, pick_dim

MaxResult = namedtuple("MaxResult", ["values", "indices"])


class Tensor(InPlaceMethods, TensorMethods):
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
        # was made, which output of which function when that returned several views, or None)
        "_hooks",  # register_hook on a leaf
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
        if requires_grad:
            self.requires_grad = True

    @staticmethod
    def _wrap_no_copy_no_checks(array, device) -> Tensor:
        """A Tensor around a backend array: no copy, no checks (for code that made the array)."""
        t = _new_tensor(Tensor)
        t.array, t.device, t._grad_fn, t._grad, t._view_of, t._hooks = array, device, *_NONES
        t._requires_grad, t._output_nr, t._version_counter = False, 0, [0]
        return t

    # ---- attributes ------------------------------------------------------------------------

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
        """The gradient accumulated by backward (a Tensor), or None."""
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
        """The node (a Context) that made this tensor; None for a leaf."""
        if self._view_of is not None:
            self._refresh_view()
        return self._grad_fn

    @grad_fn.setter
    def grad_fn(self, node) -> None:
        self._grad_fn = node

    @property
    def requires_grad(self) -> bool:
        """Whether backward should compute a gradient for this tensor."""
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
        self._requires_grad = bool(value)

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

    @property
    def T(self) -> Tensor:
        """The transpose of a matrix (a tensor with fewer than 2 dimensions is returned as is)."""
        if self.ndim > 2:
            raise ValueError(f"T: expected a tensor with at most 2 dims, got shape {self.shape}")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def numel(self) -> int:
        """The number of elements."""
        return int(self.array.size)

    def size(self, dim: int | None = None):
        """The shape, or the size of one dimension when `dim` is given."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        """The number of dimensions (same as ndim)."""
        return self.ndim

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
        body = backend.numpy.array2string(
            backend.to_host(self.array), separator=", ", prefix="tensor("
        )
        extras = []
        if self.device is not backend.CPU:
            extras.append(f"device='{self.device}'")
        if self.dtype not in (backend.float32, backend.int64, backend.bool_):
            extras.append(f"dtype=minigrad.{self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn={self.grad_fn!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ---- autograd --------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        With `create_graph=True` the backward pass is recorded too, so the gradients can be
        differentiated again; `inputs` limits which tensors get a `.grad`.
        """
        _autograd_grad.backward((self,), (gradient,), retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no grad_fn, requires_grad False)."""
        result = Tensor._wrap_no_copy_no_checks(self.array, self.device)
        result._version_counter = self._version_counter  # in-place changes are still seen
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

    # ---- views and memory (used by Function.apply and the in-place methods) ----------------

    def _alias(self) -> Tensor:
        """A new Tensor on the same memory, seen as a view of this one."""
        result = Tensor._wrap_no_copy_no_checks(self.array, self.device)
        result._share_memory_with(self)
        return result

    def _share_memory_with(self, base: Tensor, multi_output: str | None = None) -> None:
        """This tensor is a view of `base`: one version counter, and one root base to follow.

        `multi_output` says which output of which function, when that function returned several
        views (split, chunk): PyTorch refuses in-place changes to those, and to views of them,
        when the change is recorded."""
        self._version_counter = base._version_counter
        if base._view_of is None:
            root = base
        else:  # a view of a view: follow the first base, and keep its in-place restriction
            root, _, inherited = base._view_of
            multi_output = multi_output or inherited
        self._view_of = (root, self._version_counter[0], multi_output)

    def _refresh_view(self) -> None:
        """A view whose memory was changed in place since its history was made takes its base's
        history: it becomes "these elements of the base as it is now" (PyTorch regenerates a
        view's grad_fn the same way, when the version counter they share has moved). Its
        values need nothing: they are the base's memory."""
        base, seen, multi_output = self._view_of
        if self._version_counter[0] == seen:
            return
        old, retained = self._grad_fn, self._retains_grad_at(self._grad_fn)
        if base._requires_grad:
            with enable_grad():
                rebased = movement.AsStrided.apply(base, self.array)
            self._grad_fn, self._output_nr = rebased._grad_fn, rebased._output_nr
            self._requires_grad = True
        else:  # the base is not on a graph (any more): neither is the view
            self._grad_fn, self._output_nr, self._requires_grad = None, 0, False
        self._view_of = (base, self._version_counter[0], multi_output)
        if retained:  # retain_grad() follows the view to its new node, as in PyTorch
            self._move_retain_grad(old)

    def _bump_version(self) -> None:
        """Record an in-place change of this memory (optimisers call it after writing .array)."""
        self._version_counter[0] += 1

    # ---- conversion ------------------------------------------------------------------------

    def numpy(self):
        """A NumPy copy of the data, on the host."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        host = backend.to_host(self.array)
        return host.copy() if host is self.array else host

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted, got shape {self.shape}"
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

    def clone(self) -> Tensor:
        """A copy with its own memory; gradients flow back to this tensor."""
        return movement.Clone.apply(self)

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

    # ---- arithmetic (NumPy broadcasting) ---------------------------------------------------

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

    def exp(self) -> Tensor:
        """z = exp(x), elementwise."""
        return elementwise.Exp.apply(self)

    def log(self) -> Tensor:
        """z = log(x), elementwise (natural logarithm)."""
        return elementwise.Log.apply(self)

    def sqrt(self) -> Tensor:
        """z = sqrt(x), elementwise."""
        return elementwise.Sqrt.apply(self)

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
            return elementwise.ClampByTensors.apply(self, min, max)
        return elementwise.Clamp.apply(self, min, max)

    def where(self, condition, other) -> Tensor:
        """z = self where condition is true, else other (as torch.where(condition, self, other))."""
        return elementwise.Where.apply(_mask(condition), self, _scalar(other))

    # ---- reductions ------------------------------------------------------------------------

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
            return reduce.Max.apply(self)
        indices = self.argmax(dim, keepdim=True)
        values = reduce.MaxDim.apply(self, indices.array, dim, keepdim)
        return MaxResult(values, indices if keepdim or self.ndim == 0 else indices.squeeze(dim))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the largest element (of the flattened tensor when dim is None); no grad."""
        if dim is None:
            if self.array.size == 0:
                raise RuntimeError("argmax(): Expected reduction dim to be specified for "
                                   "input.numel() == 0.")
            index = self.array.argmax()
        else:
            (axis,) = broadcast.normalize_dims(dim, self.ndim, "argmax") or (None,)
            if axis is not None and self.array.shape[axis] == 0:
                raise IndexError(f"argmax(): Expected reduction dim {dim} to have non-zero size "
                                 f"(shape {self.shape})")
            index = self.array.argmax(axis=axis, keepdims=keepdim)
        xp = backend.array_module(self.array)  # NumPy gives a scalar when no dims are left
        return Tensor._wrap_no_copy_no_checks(backend.ensure_array(index, xp), self.device)

    def sum_to_size(self, *size) -> Tensor:
        """Sum the broadcast dims away so the result has `size` (the adjoint of expand)."""
        return broadcast.SumTo.apply(self, shape_args(size))

    # ---- activations -----------------------------------------------------------------------

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

    # ---- movement: views of the same elements ----------------------------------------------

    def reshape(self, *shape) -> Tensor:
        """The same elements with a new shape: a view of the same memory when the strides allow."""
        return movement.Reshape.apply(self, shape_args(shape))

    def view(self, *shape) -> Tensor:
        """The same memory viewed with a new shape; an error where that needs a copy (as in
        PyTorch: use reshape, which copies then)."""
        return movement.Reshape.apply(self, shape_args(shape), True)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """The tensor with dims dim0 and dim1 swapped."""
        return movement.Transpose.apply(self, dim0, dim1)

    swapaxes = swapdims = transpose  # PyTorch's other names for it

    def t(self) -> Tensor:
        """Transpose of a matrix (dims 0 and 1); tensors with fewer dims are returned as is."""
        return self.T

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
        return broadcast.BroadcastTo.apply(self, shape)

    def expand_as(self, other: Tensor) -> Tensor:
        """expand to other's shape."""
        return self.expand(other.shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a size-1 dim at `dim` (negative dims count from the new end)."""
        (axis,) = broadcast.normalize_dims(dim, self.ndim + 1, "unsqueeze")
        new_shape = list(self.shape)
        new_shape.insert(axis, 1)
        return self.reshape(tuple(new_shape))

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Remove size-1 dims (only `dim`, when given; a dim of another size is kept)."""
        axes = broadcast.normalize_dims(dim, self.ndim, "squeeze")
        kept = tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1))
        return self.reshape(kept)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims start_dim..end_dim into one."""
        if self.ndim == 0:
            return self.reshape((1,))
        start, end = (
            broadcast.normalize_dims(d, self.ndim, "flatten")[0] for d in (start_dim, end_dim)
        )
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        if start == end:  # nothing to merge: PyTorch returns the tensor itself
            return self
        merged = 1
        for size in self.shape[start : end + 1]:
            merged *= size
        return self.reshape(self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def __getitem__(self, index) -> Tensor:
        return movement.GetItem.apply(self, _index_arrays(index))

    # ---- comparisons (not differentiable: bool tensors) ------------------------------------

    def _compare(self, other, op) -> Tensor:
        other = other.array if isinstance(other, Tensor) else other
        xp = backend.array_module(self.array)  # NumPy gives a scalar for 0-d tensors
        result = backend.ensure_array(op(self.array, other), xp)
        return Tensor._wrap_no_copy_no_checks(result, self.device)

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


_new_tensor = object.__new__
_NONES = (None,) * 4


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
    """A condition for where(): a bool Tensor or array, as a backend array."""
    return condition.array if isinstance(condition, Tensor) else condition


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


from .autograd import grad as _autograd_grad  # noqa: E402  (grad.py imports this module)
