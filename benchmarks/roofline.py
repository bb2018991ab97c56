"""The machine's limit for a training epoch: its matrix-product FLOPs at the measured sgemm peak.

Nearly all the arithmetic of an MLP step is in its matrix products, so an epoch cannot take less
than (their FLOPs) / (the fastest float32 matrix product this machine runs). The peak is measured
in the same run, with the same threads, on a large square product where BLAS is at its best.
"""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np


def matmul_flops_per_sample(sizes) -> int:
    """FLOPs of the matrix products of one training sample through Linear layers of `sizes`.

    Each layer's forward (x @ W.T) and weight gradient (g.T @ x) cost 2 * in * out per sample;
    so does the input gradient (g @ W), except in the first layer, whose input needs none. The
    biases, ReLU, loss and optimiser are left out: they are O(in + out), not O(in * out).
    """
    layers = list(pairwise(sizes))
    return sum(2 * n_in * n_out * (2 if i == 0 else 3) for i, (n_in, n_out) in enumerate(layers))


def sgemm_gflops(matmul, make, size: int, calls: int) -> float:
    """The best of `calls` timed calls of matmul(a, b, out) on float32 squares, in GFLOP/s."""
    a, b, out = make(size), make(size), make(size)
    matmul(a, b, out)  # warm-up: pages touched, BLAS threads started
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        matmul(a, b, out)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def sgemm_peak(torch=None, size: int = 2048, calls: int = 5) -> dict:
    """Measured float32 GEMM speed of NumPy's BLAS and PyTorch's (if given), and the larger one.

    The best call, not the median: the peak is what the machine can do, and on a shared machine
    the other calls are slowed by other work.
    """
    rng = np.random.default_rng(0)

    def numpy_square(n):
        return rng.standard_normal((n, n), dtype=np.float32)

    def numpy_matmul(a, b, out):
        np.matmul(a, b, out=out)

    result = {"size": size, "numpy": sgemm_gflops(numpy_matmul, numpy_square, size, calls)}
    if torch is not None:

        def torch_square(n):
            return torch.from_numpy(numpy_square(n))

        result["torch"] = sgemm_gflops(
            lambda a, b, out: torch.mm(a, b, out=out), torch_square, size, calls
        )
    result["peak_gflops"] = max(v for k, v in result.items() if k in ("numpy", "torch"))
    return result
