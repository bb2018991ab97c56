"""PyTorch's type promotion: the dtype of `x op y`, where it differs from NumPy's.

NumPy lets the larger dtype win (float32 array * float64 0-d array is float64); PyTorch lets a
higher category win (bool < integer < floating point), and within a category the operands with
dimensions decide before 0-d tensors and Python numbers. Users compare minigrad with PyTorch, so
arithmetic follows PyTorch.
"""

from __future__ import annotations

from .backend import bool_, float32, int64, numpy

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # bool < integer < floating point


def promote_types(a, b) -> numpy.dtype:
    """PyTorch's promote_types: a higher category wins outright (int64 + float32 is float32)."""
    category_a, category_b = _CATEGORY.get(a.kind, 2), _CATEGORY.get(b.kind, 2)
    if category_a != category_b:
        return a if category_a > category_b else b
    return numpy.result_type(a, b)


def result_dtype(x, y, true_divide: bool = False) -> numpy.dtype:
    """The dtype PyTorch gives `x op y` for arrays and Python numbers.

    Arrays with dimensions decide; a 0-d array, then a Python number, changes the result only
    when it is of a higher category (float32 array * 0-d float64 array is float32, an int array
    * 0.5 is float32). True division of integers gives float32.
    """
    dtype = None
    for group in (
        [a for a in (x, y) if getattr(a, "ndim", 0)],
        [a for a in (x, y) if getattr(a, "ndim", 1) == 0],
    ):
        if group:
            dtypes = [a.dtype for a in group]
            group_dtype = dtypes[0] if len(dtypes) == 1 else promote_types(*dtypes)
            if dtype is None or _CATEGORY.get(group_dtype.kind, 2) > _CATEGORY.get(dtype.kind, 2):
                dtype = group_dtype
    for number in (v for v in (x, y) if not hasattr(v, "dtype")):
        category = 0 if isinstance(number, bool) else 1 if isinstance(number, int) else 2
        if dtype is None or category > _CATEGORY.get(dtype.kind, 2):
            dtype = (bool_, int64, float32)[category]
    if true_divide and dtype.kind != "f":
        dtype = float32
    return dtype


def promote(x, y, true_divide: bool = False):
    """Cast x and y (arrays or Python numbers) so that NumPy computes in PyTorch's result dtype."""
    x_dtype, y_dtype = getattr(x, "dtype", None), getattr(y, "dtype", None)
    if x_dtype is y_dtype and (not true_divide or x_dtype.kind == "f"):
        return x, y  # the common case: two arrays of one dtype
    if (
        x_dtype is None and y_dtype is not None and y_dtype.kind == "f" and type(x) is not bool
    ) or (y_dtype is None and x_dtype is not None and x_dtype.kind == "f" and type(y) is not bool):
        return x, y  # a float array and a Python number: NumPy keeps the array's dtype too
    dtype = result_dtype(x, y, true_divide)
    return _cast(x, dtype), _cast(y, dtype)


def _cast(value, dt):
    if hasattr(value, "dtype"):
        return value if value.dtype == dt else value.astype(dt)
    return value  # a Python number adapts to the array it meets (NumPy's weak scalars)
