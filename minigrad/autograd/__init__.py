"""Autograd: Function and Context, the engine (tape, backward, grad), grad mode, checks."""

from . import functional
from .anomaly import detect_anomaly, is_anomaly_enabled
from .engine import Tape, tape
from .function import Context, Function, once_differentiable
from .grad import backward, grad
from .grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .gradcheck import gradcheck, gradgradcheck

__all__ = [
    "Context",
    "Function",
    "Tape",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inference_mode",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "once_differentiable",
    "set_grad_enabled",
    "tape",
]
