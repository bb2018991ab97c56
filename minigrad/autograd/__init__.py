"""Autograd: Function and Context, the engine (tape, backward), grad mode, gradcheck, anomaly."""

from .anomaly import detect_anomaly, is_anomaly_enabled
from .engine import Tape, backward, tape
from .function import Context, Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck

__all__ = [
    "Context",
    "Function",
    "Tape",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "gradcheck",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "no_grad",
    "tape",
]
