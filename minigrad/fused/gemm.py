"""Small matrix products with fused epilogues, in our own kernel (sources.GEMM), not cuBLAS.

CuPy's matmul calls cuBLAS, which CuPy refuses to call while a stream is being captured into a
CUDA graph (CuPy issue 6290). The products of a small network's step are tiny (at most a few
MFLOP), so a tiled kernel does (each thread computes 2 x 2 elements of a 32 x 32 tile), and its
epilogue does the bias, the ReLU, the ReLU's backward mask and the bias gradient in the same
launch. What such small products lack is parallelism: at batch 64 the first layer's forward is
8 tiles over 49 steps of k, so `plan` cuts k into slices that run on blocks of their own, and
the last block of each tile adds the slices' shares in a fixed order (split-K, deterministic).
graphed.py builds a whole training step from these.
"""

from __future__ import annotations

import functools
from collections import namedtuple

from .. import backend
from . import kernels
from .sources import GEMM_TILE, K_STEP

BIAS, RELU, MASK, ROW_SUM = 1, 2, 4, 8  # the epilogue bits of sources.GEMM
_long, _int = kernels._long, kernels._int

# Split-K (sources.GEMM): cut k into slices when the tiles alone would not fill the GPU.
FILL_BLOCKS = 256  # blocks that keep a GPU of ~130 SMs busy (an H100 has 132)
MIN_SLICE_STEPS = 4  # K_STEP-wide steps of k per slice at least: fewer cost more than they save

Plan = namedtuple("Plan", "tiles slices k_per_slice")
Space = namedtuple("Space", "partial arrived")  # the split-K workspace (make_space)


def plan(m: int, n: int, k: int) -> Plan:
    """How gemm covers an (m, k) @ (k, n) product: tiles of c, slices of k, k per slice."""
    tiles = -(-m // GEMM_TILE) * max(1, -(-n // GEMM_TILE))
    steps = -(-k // K_STEP)
    slices = 1
    if tiles and tiles < FILL_BLOCKS // 2:
        slices = max(1, min(steps // MIN_SLICE_STEPS, FILL_BLOCKS // tiles))
    k_per_slice = -(-steps // slices) * K_STEP if k else 0
    if k_per_slice:
        slices = -(-k // k_per_slice)  # no empty slice
    return Plan(tiles, slices, k_per_slice)


def space_needed(m: int, n: int, k: int) -> tuple:
    """(scalars, counters) the workspace needs for this product (0, 0 without split-K)."""
    tiles, slices, _ = plan(m, n, k)
    return (slices * (m * n + m), tiles) if slices > 1 else (0, 0)


def make_space(xp, scalars: int, counters: int, dtype) -> Space:
    """A split-K workspace: the shares, and one arrival counter per tile (zero; each launch
    leaves them at zero). Products that run one after another on a stream may share one."""
    return Space(xp.empty(max(1, scalars), dtype=dtype),
                 xp.zeros(max(1, counters), dtype=backend.uint64))


@functools.lru_cache(maxsize=32)
def _default_space(device_id: int, dtype_name: str, stream: int, scalars: int, counters: int):
    xp = kernels._cupy()
    with xp.cuda.Device(device_id):
        return make_space(xp, scalars, counters, dtype_name)


def _operand(array, transpose: bool) -> tuple:
    """(rows, columns, row stride, column stride) of a C-contiguous matrix or its transpose."""
    rows, columns = array.shape
    if transpose:
        return columns, rows, 1, columns
    return rows, columns, columns, 1


def matmul(a, b, out, transpose_a=False, transpose_b=False, bias=None, relu=False, mask=None,
           row_sum=None, space=None) -> None:
    """out = op(a) @ op(b) (+ bias, then ReLU, then * ~(mask <= 0)); row_sum = op(a).sum(axis=1).

    op(x) is x or x.T; a, b, out (and bias, mask, row_sum) are C-contiguous CUDA arrays of one
    float dtype. Reference: out[...] = a @ b, then the epilogue with array code. `space` is the
    split-K workspace (make_space, at least space_needed); a captured graph must pass its own,
    made before the capture; without it one per device, dtype, stream and size is made and kept.
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
    tiles, slices, k_per_slice = plan(m, n, k)
    if tiles == 0:
        return  # no rows: nothing to write
    scalars, counters = space_needed(m, n, k)
    if space is None:
        xp = kernels._cupy()
        space = _default_space(out.device.id, out.dtype.name, xp.cuda.get_current_stream().ptr,
                               max(1, scalars), max(1, counters))
    if space.partial.size < scalars or space.arrived.size < counters:
        raise ValueError(f"gemm: the workspace holds {space.partial.size} numbers and "
                         f"{space.arrived.size} counters; this product needs {scalars} and "
                         f"{counters}")
    unused = out  # a pointer the kernel never reads when its epilogue bit is off
    args = (a, _long(a_row), _long(a_col), b, _long(b_row), _long(b_col), out, _long(m),
            _long(n), _long(k), unused if bias is None else bias,
            unused if mask is None else mask, unused if row_sum is None else row_sum,
            _int(epilogue), _int(slices), _long(k_per_slice), space.partial, space.arrived)
    kernels.launch("gemm", out.dtype, 0, args, grid=tiles * slices)
