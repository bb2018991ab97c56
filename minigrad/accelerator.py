"""mg.accelerator: which accelerator (GPU) this machine has, as torch.accelerator says it."""

from __future__ import annotations

from . import backend


def is_available() -> bool:
    """True when a CUDA GPU can be used (CuPy imports and sees a device)."""
    return backend.cuda_is_available()


def current_accelerator():
    """The accelerator's device type (device(type='cuda')), or None when there is none."""
    return backend.Device("cuda", None) if is_available() else None


def device_count() -> int:
    """The number of GPUs minigrad can use."""
    return backend.cuda_device_count()
