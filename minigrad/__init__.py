"""minigrad: a small autograd engine written from scratch on NumPy (CPU) and CuPy (GPU).

    import minigrad as mg
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([[2., 4.]])
"""

from . import autograd, backend, cuda, data, nn, optim, viz
from .autograd import (
    Function,
    enable_grad,
    gradcheck,
    gradgradcheck,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .backend import Device, float32, float64, int64, manual_seed
from .backend import device as device
from .factories import arange, from_numpy, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .functions import cat, matmul, mm, stack
from .serialization import load, save
from .tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "Device",
    "Function",
    "Tensor",
    "arange",
    "autograd",
    "backend",
    "cat",
    "cuda",
    "data",
    "device",
    "enable_grad",
    "float32",
    "float64",
    "from_numpy",
    "gradcheck",
    "gradgradcheck",
    "inference_mode",
    "int64",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "load",
    "manual_seed",
    "matmul",
    "mm",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "randn",
    "save",
    "set_grad_enabled",
    "stack",
    "tensor",
    "viz",
    "zeros",
    "zeros_like",
]
