"""GPU support: availability checks here and the opt-in captured training step in graphed.py.
The fused CuPy kernels live below the Tensor, in minigrad/fused/; cuda.kernels and cuda.gemm
are those modules (mg.cuda.kernels.enabled is minigrad.fused.kernels.enabled).

Nothing here imports CuPy until a GPU is used: the kernels compile on their first launch.
"""

from .. import backend
from ..fused import gemm, kernels
from .graphed import GraphedStep, graphed_step


def is_available() -> bool:
    """True when CuPy is installed and sees a GPU; False (never an error) otherwise."""
    return backend.cuda_is_available()


def device_count() -> int:
    """The number of GPUs CuPy sees (0 without CuPy or a GPU)."""
    return backend.cuda_device_count()


def unavailable_reason() -> str | None:
    """Why CuPy cannot run here (the error's type and text), or None when it can."""
    try:
        count = backend.cupy_module().cuda.runtime.getDeviceCount()
    except Exception as error:  # ImportError, a CUDA driver or runtime error
        cause = error.__cause__
        detail = f"; caused by {type(cause).__name__}: {cause}" if cause else ""
        return f"{type(error).__name__}: {error}{detail}"
    return None if count > 0 else "CuPy sees no GPU (getDeviceCount() is 0)"


__all__ = ["GraphedStep", "device_count", "gemm", "graphed_step", "is_available", "kernels",
           "unavailable_reason"]
