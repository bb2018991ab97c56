"""Autograd: Function and Context, the engine (tape and backward), grad mode, gradcheck."""

from .engine import Tape, backward, tape
from .function import Context, Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck

__all__ = [
    "Context",
    "Function",
    "Tape",
    "backward",
    "enable_grad",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "tape",
]
