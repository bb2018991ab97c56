"""Small matrix products with fused epilogues, in our own kernel (sources.GEMM), not cuBLAS.

CuPy's matmul calls cuBLAS, which CuPy refuses to call while a stream is being captured into a
CUDA graph (CuPy issue 6290). The products of a small network's step are tiny (at most a few
MFLOP), so a plain tiled kernel is fast enough, and its epilogue does the bias, the ReLU, the
ReLU's backward mask and the bias gradient in the same launch. graphed.py builds a whole training
step from these.
"""

from __future__ import annotations

from . import kernels
from .sources import TILE

BIAS, RELU, MASK, ROW_SUM = 1, 2, 4, 8  # the epilogue bits of sources.GEMM
_long, _int = kernels._long, kernels._int


def _operand(array, transpose: bool) -> tuple:
    """(rows, columns, row stride, column stride) of a C-contiguous matrix or its transpose."""
    rows, columns = array.shape
    if transpose:
        return columns, rows, 1, columns
    return rows, columns, columns, 1


def matmul(a, b, out, transpose_a=False, transpose_b=False, bias=None, relu=False, mask=None,
           row_sum=None) -> None:
    """out = op(a) @ op(b) (+ bias, then ReLU, then * ~(mask <= 0)); row_sum = op(a).sum(axis=1).

    op(x) is x or x.T; a, b, out (and bias, mask, row_sum) are C-contiguous CUDA arrays of one
    float dtype. Reference: out[...] = a @ b, then the epilogue with array code.
    """
    m, k, a_row, a_col = _operand(a, transpose_a)
    k_b, n, b_row, b_col = _operand(b, transpose_b)
    if k != k_b or out.shape != (m, n):
        raise ValueError(f"gemm: {(m, k)} @ {(k_b, n)} does not give out of shape "
                         f"{tuple(out.shape)}")
    for name, array, shape in (("bias", bias, (n,)), ("mask", mask, (m, n)),
                               ("row_sum", row_sum, (m,))):
        if array is not None and array.shape != shape:
            raise ValueError(f"gemm: {name} of shape {tuple(array.shape)}, expected {shape}")
    given = [x for x in (a, b, out, bias, mask, row_sum) if x is not None]
    if not kernels.applies(*given):
        raise ValueError("gemm: every array must be a C-contiguous CUDA float32/float64 array "
                         "of one dtype")
    epilogue = ((BIAS if bias is not None else 0) | (RELU if relu else 0)
                | (MASK if mask is not None else 0) | (ROW_SUM if row_sum is not None else 0))
    blocks = -(-m // TILE) * max(1, -(-n // TILE))
    if blocks == 0:
        return  # no rows: nothing to write
    unused = out  # a pointer the kernel never reads when its epilogue bit is off
    args = (a, _long(a_row), _long(a_col), b, _long(b_row), _long(b_col), out, _long(m),
            _long(n), _long(k), unused if bias is None else bias,
            unused if mask is None else mask, unused if row_sum is None else row_sum,
            _int(epilogue))
    kernels.launch("gemm", out.dtype, 0, args, grid=blocks)
