"""GPU support: availability checks here, fused CuPy kernels in kernels.py.

Nothing here imports CuPy until a GPU is used: the kernels compile on their first launch.
"""

from .. import backend
from . import kernels


def is_available() -> bool:
    """True when CuPy is installed and sees a GPU; False (never an error) otherwise."""
    return backend.cuda_is_available()


def device_count() -> int:
    """The number of GPUs CuPy sees (0 without CuPy or a GPU)."""
    return backend.cuda_device_count()


__all__ = ["device_count", "is_available", "kernels"]
