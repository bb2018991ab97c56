"""More Tensor methods under PyTorch's names: casts, math, shapes and comparisons.

A base class of Tensor (as InPlaceMethods is), so that tensor.py stays about the core. Each
method is a line or two over the Functions in `minigrad.ops` or over other Tensor methods;
composites (std, var, norm, repeat, chunk) are written with Tensor operations, so their
gradients (and gradients of gradients) come from the ops they use.
"""

from __future__ import annotations

import math
from collections import namedtuple

from . import backend
from .ops import broadcast, elementwise, movement, pointwise, reduce

MinResult = namedtuple("MinResult", ["values", "indices"])


def pick_dim(dim, axis, op: str):
    """PyTorch accepts NumPy's `axis` as another name for `dim`; giving both is an error."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got both dim={dim!r} and axis={axis!r}; give one")
        return axis
    return dim


class TensorMethods:
    """Tensor methods beyond the core ones (a base class of Tensor)."""

    __slots__ = ()

    # ---- dtype casts (each is self.to(dtype)) ------------------------------------------------

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

    def is_floating_point(self) -> bool:
        """True for float16, float32 and float64 tensors."""
        return backend.is_floating(self.dtype)

    def element_size(self) -> int:
        """The size of one element in bytes."""
        return int(self.array.itemsize)

    # ---- math ------------------------------------------------------------------------------

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
                "(a / b).floor() in PyTorch terms, which minigrad does not have either"
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
        return pointwise.Abs.apply(self)

    # PyTorch's other names for the same methods
    subtract, multiply, divide, true_divide = sub, mul, div, div
    negative, absolute = neg, abs

    def sign(self):
        """z = -1, 0 or 1 by the sign of each element (no gradient: its slope is 0)."""
        return pointwise.Sign.apply(self)

    def sin(self):
        """z = sin(self), elementwise."""
        return pointwise.Sin.apply(self)

    def cos(self):
        """z = cos(self), elementwise."""
        return pointwise.Cos.apply(self)

    def clip(self, min=None, max=None):  # noqa: A002  (PyTorch's argument names)
        """Another name for clamp."""
        return self.clamp(min, max)

    def maximum(self, other):
        """z = the larger of self and other, elementwise."""
        return pointwise.Maximum.apply(self, other)

    def minimum(self, other):
        """z = the smaller of self and other, elementwise."""
        return pointwise.Minimum.apply(self, other)

    def min(self, dim=None, keepdim: bool = False):
        """The smallest element; with a dim, (values, indices) along it, as in PyTorch."""
        if isinstance(dim, TensorMethods):
            return self.minimum(dim)
        if dim is None:
            return -reduce.Max.apply(-self)
        indices = self.argmin(dim, keepdim=True)
        values = reduce.MaxDim.apply(self, indices.array, dim, keepdim)  # picks at the indices
        return MinResult(values, indices if keepdim or self.ndim == 0 else indices.squeeze(dim))

    def argmin(self, dim=None, keepdim: bool = False):
        """Index of the smallest element (of the flattened tensor when dim is None); no grad."""
        if dim is None:
            index = self.array.argmin()
        else:
            (axis,) = broadcast.normalize_dims(dim, self.ndim, "argmin") or (None,)
            index = self.array.argmin(axis=axis, keepdims=keepdim)
        xp = backend.array_module(self.array)
        return self._wrap_no_copy_no_checks(backend.ensure_array(index, xp), self.device)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None,
            axis=None):
        """z = sum((x - mean)**2) / (n - correction); correction 1 (unbiased) by default."""
        dim = pick_dim(dim, axis, "var")
        if isinstance(dim, bool):  # x.var(False): the legacy positional `unbiased`
            dim, unbiased = None, dim
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        axes = broadcast.normalize_dims(dim, self.ndim, "var")
        count = 1
        for a in axes:
            count *= self.shape[a]
        centred = self - self.mean(dim, keepdim=True)
        return (centred * centred).sum(dim, keepdim=keepdim) / max(count - correction, 0)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None,
            axis=None):
        """z = sqrt(var), with var's correction (1, unbiased, by default)."""
        return self.var(dim, unbiased, keepdim, correction=correction, axis=axis).sqrt()

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

    def amax(self, dim=None, keepdim: bool = False):
        """The largest values over `dim` (an int or a tuple; all dims when None); ties share the
        gradient."""
        return reduce.AMax.apply(self, dim, keepdim)

    def amin(self, dim=None, keepdim: bool = False):
        """The smallest values over `dim` (an int or a tuple; all dims when None); ties share the
        gradient."""
        return reduce.AMin.apply(self, dim, keepdim)

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

    # ---- shapes ----------------------------------------------------------------------------

    def view_as(self, other):
        """The same elements viewed with other's shape."""
        return self.view(other.shape)

    def reshape_as(self, other):
        """The same elements with other's shape."""
        return self.reshape(other.shape)

    def permute(self, *dims):
        """The tensor with its dims reordered (permute(1, 0) is a transpose)."""
        from .tensor import shape_args

        return movement.Permute.apply(self, shape_args(dims))

    def repeat(self, *sizes):
        """The tensor tiled sizes[i] times along each dim (as numpy.tile)."""
        from .tensor import shape_args

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

    def split(self, split_size_or_sections, dim: int = 0):
        """Pieces along dim: of split_size each (the last may be smaller), or of the given sizes."""
        (axis,) = broadcast.normalize_dims(dim, self.ndim, "split")
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
                root, version, _ = piece._view_of
                piece._view_of = (root, version, f"Output {number} of Split")
            pieces.append(piece)
            start += size
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0):
        """Up to `chunks` pieces along dim, each of ceil(size / chunks) (the last smaller)."""
        if not isinstance(chunks, int) or chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        (axis,) = broadcast.normalize_dims(dim, self.ndim, "chunk")
        return self.split(max(-(-self.shape[axis] // chunks), 1), dim)

    def contiguous(self):
        """A tensor whose elements are laid out in row-major order (self when they are)."""
        return self if self.array.flags.c_contiguous else self.clone()

    def is_contiguous(self) -> bool:
        """Whether the elements are laid out in row-major order."""
        return bool(self.array.flags.c_contiguous)

    # ---- comparisons and tests (bool results, no gradient) ---------------------------------

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
        return self._wrap_no_copy_no_checks(
            backend.array_module(self.array).isnan(self.array), self.device)

    def isfinite(self):
        """True where an element is neither infinite nor NaN."""
        return self._wrap_no_copy_no_checks(
            backend.array_module(self.array).isfinite(self.array), self.device)

    def any(self, dim=None, keepdim: bool = False):
        """True where any element (along dim, or of all) is nonzero (a bool tensor)."""
        axes = broadcast.normalize_dims(dim, self.ndim, "any") if dim is not None else None
        xp = backend.array_module(self.array)
        return self._wrap_no_copy_no_checks(
            backend.ensure_array(self.array.any(axis=axes, keepdims=keepdim), xp), self.device)

    def all(self, dim=None, keepdim: bool = False):
        """True where every element (along dim, or of all) is nonzero (a bool tensor)."""
        axes = broadcast.normalize_dims(dim, self.ndim, "all") if dim is not None else None
        xp = backend.array_module(self.array)
        return self._wrap_no_copy_no_checks(
            backend.ensure_array(self.array.all(axis=axes, keepdims=keepdim), xp), self.device)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan=False) -> bool:
        """Whether |self - other| <= atol + rtol * |other| everywhere (shapes broadcast)."""
        xp = backend.array_module(self.array)
        return bool(xp.allclose(self.array, other.array, rtol=rtol, atol=atol,
                                equal_nan=equal_nan))

    def equal(self, other) -> bool:
        """Whether both tensors have the same shape and the same values."""
        return self.shape == other.shape and bool((self.array == other.array).all())


def where(condition, input, other):  # noqa: A002  (PyTorch's argument names)
    """input where condition is true, else other (either may be a Python number)."""
    cond = condition.array if hasattr(condition, "array") else condition
    return elementwise.Where.apply(cond, input, other)
