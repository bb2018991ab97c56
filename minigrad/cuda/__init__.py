"""GPU support: availability here, fused CuPy kernels in kernels.py, step capture in graph.py.

Nothing here imports CuPy until a GPU is used: kernels compile on first launch, and CapturedStep
asks the backend for CuPy when it is created.
"""

from .. import backend
from . import kernels
from .graph import CapturedStep


def is_available() -> bool:
    """True when CuPy is installed and sees a GPU; False (never an error) otherwise."""
    return backend.cuda_is_available()


def device_count() -> int:
    """The number of GPUs CuPy sees (0 without CuPy or a GPU)."""
    return backend.cuda_device_count()


__all__ = ["CapturedStep", "device_count", "is_available", "kernels"]
