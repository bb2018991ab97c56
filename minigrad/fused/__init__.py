"""Fused CuPy kernels (CUDA C in sources.py, launches in kernels.py, a tiled GEMM in gemm.py):
array code below the Tensor, used only on a GPU and only when switched on
(`minigrad.fused.kernels.enabled`, also reached as `minigrad.cuda.kernels.enabled`). Nothing here
imports CuPy until a kernel runs."""
