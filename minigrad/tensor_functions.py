"""Functions called as mg.X(...), with PyTorch's names and keywords (`input`, `other`, `dim`).

Most are the Tensor method of the same name (mg.exp(x) is x.exp()); cat and stack join several
tensors. Python numbers are accepted where PyTorch accepts them (mg.add(x, 2)). The functions
PyTorch gives an `out=` keyword take it too (`with_out`, first below): the result is written
into `out`, which is returned.
"""

from __future__ import annotations

import builtins  # (this module defines any, all, max, min, sum and round: PyTorch's names)
import functools

from . import backend
from .grad_mode import grad_mode, no_grad
from .ops import inplace, movement, selection
from .tensor import Tensor


def with_out(function=None, *, exact_dtype: bool = False):
    """function with PyTorch's out= keyword: out[...] = function(...), and out is returned
    (@with_out, or @with_out(exact_dtype=True)).

    As in PyTorch: not differentiable (with grad enabled, an argument or out that requires grad
    is an error); an empty out is resized to the result's shape (see _resize for one with
    elements); the result is cast to out's dtype when that stays within its kind (float64 ->
    float32, int -> float, not float -> int); matmul, mm and bmm want out's dtype exactly
    (exact_dtype); out may be an input, but not share only some of its memory."""
    if function is None:
        return lambda f: with_out(f, exact_dtype=exact_dtype)

    @functools.wraps(function)
    def wrapped(*args, out=None, **kwargs):
        if out is None:
            return function(*args, **kwargs)
        name = function.__name__
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        tensors += [t for a in args if isinstance(a, list | tuple) for t in a
                    if isinstance(t, Tensor)]  # cat and stack
        if grad_mode.enabled and builtins.any(t.requires_grad for t in (*tensors, out)):
            raise RuntimeError(
                f"{name}(): functions with out=... arguments don't support automatic "
                "differentiation, but one of the arguments requires grad.")
        with no_grad():
            result = function(*args, **kwargs)
        _check_out_dtype(result.dtype, out.dtype, exact_dtype)
        if out.shape != result.shape:
            _resize(out, result.shape, name)
        inplace.refuse_overlap(out, f"{name}()", tensors)  # copy_'s checks, against the inputs
        with no_grad():
            out.copy_(result)
        return out

    return wrapped


def _check_out_dtype(result, out, exact: bool) -> None:
    """PyTorch's two rules for out's dtype (see with_out)."""
    if exact and result != out:
        raise RuntimeError(
            f"Expected out tensor to have dtype {backend.scalar_name(result).lower()}, "
            f"but got {backend.scalar_name(out).lower()} instead")
    if not backend.numpy.can_cast(result, out, casting="same_kind"):
        raise RuntimeError(
            f"result type {backend.scalar_name(result)} can't be cast to the desired output "
            f"type {backend.scalar_name(out)}")


def _resize(out: Tensor, shape: tuple, name: str) -> None:
    """Give an empty out new memory of the result's shape, as PyTorch's resize_ does.

    PyTorch also resizes an out with elements (with a warning that this is deprecated);
    minigrad refuses that: new memory would cut out off from its views, its base and the arrays
    numpy() gave, silently."""
    if out.numel() or out._view_of is not None:
        raise RuntimeError(
            f"{name}(): out has shape {list(out.shape)}, the result {list(shape)}. PyTorch "
            "resizes such an out (a deprecated behaviour); minigrad does not, as the new memory "
            "would no longer be shared with out's views and numpy() arrays: pass an out of the "
            "result's shape, or an empty one (mg.empty(0))")
    out.array = backend.array_module(out.array).empty(shape, out.dtype)
    out._bump_version()


@with_out
def cat(tensors, dim: int = 0, *, axis=None) -> Tensor:
    """Join tensors along an existing dim (their other dims must match)."""
    tensors = tuple(tensors)
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of Tensors")
    return movement.Cat.apply(dim if axis is None else axis, *tensors)


concatenate = concat = cat


@with_out
def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    tensors = tuple(tensors)
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of Tensors")
    shape = tensors[0].shape
    for number, t in enumerate(tensors):
        if t.shape != shape:
            raise RuntimeError(
                f"stack: expects each tensor to be equal size, but got {shape} at entry 0 and "
                f"{t.shape} at entry {number}"
            )
    return cat([t.unsqueeze(dim) for t in tensors], dim)


@with_out(exact_dtype=True)
def mm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002  (PyTorch's argument names)
    """The matrix product of two matrices (2-D tensors)."""
    return input.mm(mat2)


@with_out(exact_dtype=True)
def matmul(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The matrix product, with NumPy's rules for 1-D and batched operands."""
    return input.matmul(other)


@with_out(exact_dtype=True)
def bmm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """Batched matrix products: (b, n, m) @ (b, m, p) -> (b, n, p)."""
    return _tensor(input, "bmm").bmm(mat2)


def is_tensor(obj) -> bool:
    """Whether obj is a minigrad Tensor."""
    return isinstance(obj, Tensor)


def _tensor(value, op: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(value).__name__}")
    return value


def _operands(input, other, op: str):  # noqa: A002
    """For add/sub/mul/...: at least one operand is a Tensor; numbers stay numbers."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(
            f"{op}(): expected at least one Tensor argument, got {type(input).__name__} and "
            f"{type(other).__name__}"
        )
    return input if isinstance(input, Tensor) else Tensor(input), other


@with_out
def add(input, other, *, alpha=1) -> Tensor:  # noqa: A002
    """input + alpha * other."""
    x, y = _operands(input, other, "add")
    return x.add(y, alpha=alpha)


@with_out
def sub(input, other, *, alpha=1) -> Tensor:  # noqa: A002
    """input - alpha * other."""
    x, y = _operands(input, other, "sub")
    return x.sub(y, alpha=alpha)


subtract = sub


@with_out
def mul(input, other) -> Tensor:  # noqa: A002
    """input * other."""
    x, y = _operands(input, other, "mul")
    return x * y


multiply = mul


@with_out
def div(input, other, *, rounding_mode=None) -> Tensor:  # noqa: A002
    """input / other (true division)."""
    x, y = _operands(input, other, "div")
    return x.div(y, rounding_mode=rounding_mode)


divide = true_divide = div


@with_out
def pow(input, exponent) -> Tensor:  # noqa: A001, A002
    """input ** exponent (input may be a number when exponent is a Tensor)."""
    if not isinstance(input, Tensor) and isinstance(exponent, Tensor):
        return exponent.__rpow__(input)  # the number keeps its precision, as in PyTorch
    x, y = _operands(input, exponent, "pow")
    return x ** y


@with_out
def maximum(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The larger of input and other, elementwise."""
    return _tensor(input, "maximum").maximum(other)


@with_out
def minimum(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The smaller of input and other, elementwise."""
    return _tensor(input, "minimum").minimum(other)


@with_out
def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """min(max(input, min), max), elementwise; either bound may be None."""
    return _tensor(input, "clamp").clamp(min, max)


clip = clamp


@with_out
def max(input: Tensor, dim=None, keepdim: bool = False, **aliases):  # noqa: A001, A002
    """The largest element; with a dim, (values, indices); with a tensor, the maximum."""
    return _tensor(input, "max").max(dim, keepdim, **aliases)


@with_out
def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001, A002
    """The smallest element; with a dim, (values, indices); with a tensor, the minimum."""
    return _tensor(input, "min").min(dim, keepdim)


@with_out
def sum(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:  # noqa: A001, A002
    """The sum of the elements, over all dims or only `dim`."""
    return _tensor(input, "sum").sum(dim, keepdim, **aliases)


@with_out
def mean(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:  # noqa: A002
    """The mean of the elements, over all dims or only `dim` (floating point only)."""
    return _tensor(input, "mean").mean(dim, keepdim, **aliases)


def reshape(input: Tensor, shape) -> Tensor:  # noqa: A002
    """The same elements with a new shape (one dim may be -1)."""
    return _tensor(input, "reshape").reshape(shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:  # noqa: A002
    """Merge dims start_dim..end_dim into one."""
    return _tensor(input, "flatten").flatten(start_dim, end_dim)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:  # noqa: A002
    """The tensor with dims dim0 and dim1 swapped."""
    return _tensor(input, "transpose").transpose(dim0, dim1)


swapaxes = swapdims = transpose


def permute(input: Tensor, dims) -> Tensor:  # noqa: A002
    """The tensor with its dims reordered."""
    return _tensor(input, "permute").permute(dims)


def movedim(input: Tensor, source, destination) -> Tensor:  # noqa: A002
    """The tensor with the dims at `source` moved to `destination`."""
    return _tensor(input, "movedim").movedim(source, destination)


moveaxis = movedim


def squeeze(input: Tensor, dim=None) -> Tensor:  # noqa: A002
    """Remove size-1 dims (only `dim`, when given)."""
    return _tensor(input, "squeeze").squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:  # noqa: A002
    """Insert a size-1 dim at `dim`."""
    return _tensor(input, "unsqueeze").unsqueeze(dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:  # noqa: A002
    """Up to `chunks` pieces of input along dim."""
    return _tensor(input, "chunk").chunk(chunks, dim)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of split_size along dim, or pieces of the given sizes."""
    return _tensor(tensor, "split").split(split_size_or_sections, dim)


@with_out
def clone(input: Tensor) -> Tensor:  # noqa: A002
    """A copy with its own memory (gradients flow back)."""
    return _tensor(input, "clone").clone()


def allclose(input: Tensor, other: Tensor, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:  # noqa: A002
    """Whether |input - other| <= atol + rtol * |other| everywhere."""
    return _tensor(input, "allclose").allclose(other, rtol, atol, equal_nan)


def equal(input: Tensor, other: Tensor) -> bool:  # noqa: A002
    """Whether both tensors have the same shape and values."""
    return _tensor(input, "equal").equal(other)


def numel(input: Tensor) -> int:  # noqa: A002
    """The number of elements."""
    return _tensor(input, "numel").numel()


@with_out
def where(condition, input, other):  # noqa: A002  (PyTorch's argument names)
    """input where condition is true, else other (either may be a Python number)."""
    if isinstance(condition, Tensor) and not grad_mode.vmap_level:  # (vmap: a batched mask)
        condition = condition.array
    return selection.Where.apply(condition, input, other)


def _method(name: str, doc: str):
    """mg.name(input, *args, **kwargs) is input.name(*args, **kwargs)."""

    def function(input, *args, **kwargs):  # noqa: A002
        return _tensor(input, name).__getattribute__(name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


# Functions of one tensor that are exactly its method: listed once here, each with its math.
_ONE_TENSOR = {
    "exp": "exp(x), elementwise.", "log": "log(x), elementwise.", "sqrt": "sqrt(x), elementwise.",
    "sin": "sin(x), elementwise.", "cos": "cos(x), elementwise.", "tanh": "tanh(x), elementwise.",
    "sigmoid": "1 / (1 + exp(-x)), elementwise.", "relu": "max(x, 0), elementwise.",
    "abs": "|x|, elementwise.", "sign": "-1, 0 or 1 by sign, elementwise.", "neg": "-x.",
    "reciprocal": "1 / x, elementwise.",
    "argmax": "Index of the largest element.", "argmin": "Index of the smallest element.",
    "std": "Standard deviation (correction 1 by default).",
    "var": "Variance (correction 1 by default).", "norm": "The p-norm (2 by default).",
    "softmax": "exp(x) / sum(exp(x)) along dim.", "log_softmax": "x - logsumexp(x) along dim.",
    "eq": "input == other.", "ne": "input != other.", "lt": "input < other.",
    "le": "input <= other.", "gt": "input > other.", "ge": "input >= other.",
    "isnan": "True where NaN.", "isfinite": "True where finite.",
    "amax": "The largest values over dim.", "amin": "The smallest values over dim.",
    "log1p": "log(1 + x), elementwise.", "expm1": "exp(x) - 1, elementwise.",
    "log2": "log(x) / log(2), elementwise.", "log10": "log(x) / log(10), elementwise.",
    "square": "x ** 2, elementwise.", "rsqrt": "1 / sqrt(x), elementwise.",
    "floor": "The largest whole number <= x.", "ceil": "The smallest whole number >= x.",
    "trunc": "x without its fraction.", "round": "The nearest whole number (halves to even).",
    "cumsum": "z_i = x_1 + ... + x_i along dim.", "logsumexp": "log(sum(exp(x))) over dim.",
    "flip": "The elements along dims in reverse order.", "tril": "The lower triangle.",
    "triu": "The upper triangle.", "outer": "z_ij = x_i y_j.", "dot": "sum_i x_i y_i.",
    "masked_fill": "value where mask, else input.", "all": "Whether every element is nonzero.",
    "any": "Whether some element is nonzero.",
}
for _name, _doc in _ONE_TENSOR.items():
    globals()[_name] = with_out(_method(_name, _doc))
absolute, negative = globals()["abs"], globals()["neg"]

