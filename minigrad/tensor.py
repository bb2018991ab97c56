"""Tensor: an array, the flag that asks for its gradient, and the node that made it.

Every differentiable method here is one line that calls a Function from `minigrad.ops`; the math
and the backward live there, so this file only says what each operator means.
"""

from __future__ import annotations

from collections import namedtuple

from . import backend
from .autograd import engine
from .ops import activation, elementwise, matmul, reduce, shape

MaxResult = namedtuple("MaxResult", ["values", "indices"])


class Tensor:
    """An n-dimensional array on a device that can record the operations applied to it."""

    __slots__ = ("array", "grad", "grad_fn", "device", "_requires_grad", "__weakref__")
    __array_ufunc__ = None  # numpy_scalar * tensor must call Tensor.__rmul__, not numpy
    __hash__ = object.__hash__  # __eq__ compares elementwise; identity stays the hash

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.array
        if device is not None:
            dev = backend.device(device)
        else:
            dev = backend.device_of(data) if backend.is_array(data) else backend.CPU
        array = backend.as_array(data, backend.dtype(dtype), dev)
        # A copy, as torch.tensor makes: later writes to `data` must not change the tensor.
        self.array = array.copy() if array is data else array
        self.device = dev
        self.grad = None
        self.grad_fn = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, array, device) -> Tensor:
        """Wrap a backend array without copying or checking (used by Function.apply)."""
        t = Tensor.__new__(Tensor)
        t.array, t.device, t.grad, t.grad_fn, t._requires_grad = array, device, None, None, False
        return t

    # ---- attributes ------------------------------------------------------------------------

    @property
    def data(self):
        """Temporary alias of `array` (becomes PyTorch's `.data` Tensor)."""
        return self.array

    @data.setter
    def data(self, value):
        self.array = value

    @property
    def requires_grad(self) -> bool:
        """Whether backward should compute a gradient for this tensor."""
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

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad and has no grad_fn; "
                "did you create the inputs with requires_grad=True, or run under no_grad()?"
            )
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(
                    f"backward: a gradient can be created implicitly only for a tensor with one "
                    f"element (a scalar), but this one has shape {self.shape}; pass gradient="
                )
            grad = backend.module_for(self.device).ones(self.array.shape, self.array.dtype)
        else:
            grad = gradient.array if isinstance(gradient, Tensor) else gradient
            grad = backend.as_array(grad, self.dtype, self.device)
            if grad.shape != self.array.shape:
                raise RuntimeError(
                    f"backward: gradient has shape {tuple(grad.shape)}, but the tensor has "
                    f"shape {self.shape}; they must match"
                )
        engine.backward(self, grad, retain_graph=retain_graph)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no grad_fn, requires_grad False)."""
        return Tensor._wrap(self.array, self.device)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set requires_grad in place and return self."""
        self.requires_grad = requires_grad
        return self

    def zero_(self) -> Tensor:
        """Fill with zeros in place."""
        self.array[...] = 0
        return self

    # ---- conversion ------------------------------------------------------------------------

    def numpy(self):
        """A NumPy copy of the data, on the host."""
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
        if _is_dtype(device):  # x.to("float64") or x.to(mg.float64), as in PyTorch
            device, dtype = None, device
        result = self
        if dtype is not None and backend.dtype(dtype) != self.dtype:
            if not backend.is_floating(dtype):  # integers have no gradient: leave the graph
                result = result.detach()
            result = shape.Cast.apply(result, backend.dtype(dtype))
        if device is not None and backend.device(device) is not self.device:
            result = shape.ToDevice.apply(result, backend.device(device))
        return result

    def cpu(self) -> Tensor:
        """A copy on the CPU (self when it is already there)."""
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Tensor:
        """A copy on GPU `index` (self when it is already there)."""
        return self.to(f"cuda:{index}")

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
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

    def exp(self) -> Tensor:
        """z = exp(x), elementwise."""
        return elementwise.Exp.apply(self)

    def log(self) -> Tensor:
        """z = log(x), elementwise (natural logarithm)."""
        return elementwise.Log.apply(self)

    def sqrt(self) -> Tensor:
        """z = sqrt(x), elementwise."""
        return elementwise.Sqrt.apply(self)

    # ---- reductions ------------------------------------------------------------------------

    def sum(self, dim=None, keepdim: bool = False) -> Tensor:
        """z = sum of the elements, over all dims or only `dim`."""
        return reduce.Sum.apply(self, dim, keepdim)

    def mean(self, dim=None, keepdim: bool = False) -> Tensor:
        """z = mean of the elements, over all dims or only `dim`."""
        return reduce.Mean.apply(self, dim, keepdim)

    def max(self, dim: int | None = None, keepdim: bool = False):
        """The largest element; with a dim, (values, indices) along it, as in PyTorch."""
        if dim is None:
            return reduce.Max.apply(self)
        indices = self.argmax(dim, keepdim=True)
        values = reduce.MaxDim.apply(self, indices.array, dim, keepdim)
        return MaxResult(values, indices if keepdim or self.ndim == 0 else indices.squeeze(dim))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index of the largest element (of the flattened tensor when dim is None); no grad."""
        if dim is None:
            index = self.array.argmax()
        else:
            (axis,) = reduce.normalize_dims(dim, self.ndim, "argmax") or (None,)
            index = self.array.argmax(axis=axis, keepdims=keepdim)
        xp = backend.array_module(self.array)  # NumPy gives a scalar when no dims are left
        return Tensor._wrap(backend.ensure_array(index, xp), self.device)

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

    # ---- shape -----------------------------------------------------------------------------

    def reshape(self, *shape) -> Tensor:
        """The same elements viewed with a new shape (also called as view)."""
        return shape_op(self, shape_args(shape))

    view = reshape

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """The tensor with dims dim0 and dim1 swapped."""
        return shape.Transpose.apply(self, dim0, dim1)

    def t(self) -> Tensor:
        """Transpose of a matrix (dims 0 and 1); tensors with fewer dims are returned as is."""
        return self.T

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a size-1 dim at `dim` (negative dims count from the new end)."""
        rank = self.ndim + 1
        if not -rank <= dim < rank:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for {self.ndim} dimensions")
        new_shape = list(self.shape)
        new_shape.insert(dim % rank, 1)
        return shape_op(self, tuple(new_shape))

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Remove size-1 dims (only `dim`, when given; a dim of another size is kept)."""
        axes = reduce.normalize_dims(dim, self.ndim, "squeeze")
        new_shape = tuple(s for i, s in enumerate(self.shape) if not (i in axes and s == 1))
        return shape_op(self, new_shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims start_dim..end_dim into one."""
        if self.ndim == 0:
            return shape_op(self, (1,))
        start, end = (
            reduce.normalize_dims(d, self.ndim, "flatten")[0] for d in (start_dim, end_dim)
        )
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        merged = 1
        for size in self.shape[start : end + 1]:
            merged *= size
        return shape_op(self, self.shape[:start] + (merged,) + self.shape[end + 1 :])

    def __getitem__(self, index) -> Tensor:
        return shape.GetItem.apply(self, _index_arrays(index))

    # ---- comparisons (not differentiable: bool tensors) ------------------------------------

    def _compare(self, other, op) -> Tensor:
        other = other.array if isinstance(other, Tensor) else other
        xp = backend.array_module(self.array)  # NumPy gives a scalar for 0-d tensors
        return Tensor._wrap(backend.ensure_array(op(self.array, other), xp), self.device)

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


def shape_op(tensor: Tensor, new_shape: tuple) -> Tensor:
    """Every reshape-like method is one Reshape: it only changes how the elements are viewed."""
    return shape.Reshape.apply(tensor, new_shape)


def _scalar(value):
    """A NumPy scalar acts as a Python number: float32 * numpy.float64 stays float32."""
    return value.item() if isinstance(value, backend.numpy.generic) else value


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
    """Replace Tensors inside an index by their arrays (integer or boolean indexing)."""
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(i.array if isinstance(i, Tensor) else i for i in index)
    return index
