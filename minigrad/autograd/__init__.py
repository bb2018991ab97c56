"""torch.autograd's names: Function, grad, backward, grad modes, anomaly mode, gradcheck,
functional. The engine itself lives in minigrad/engine/; this package is what a user imports."""

from ..engine.anomaly import detect_anomaly, is_anomaly_enabled
from ..engine.backward import Tape, backward, grad, tape
from ..engine.function import Context, Function
from ..grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from . import forward_ad, functional, graph
from .gradcheck import gradcheck, gradgradcheck
from .once_differentiable import once_differentiable

__all__ = [
    "Context",
    "Function",
    "Tape",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "forward_ad",
    "functional",
    "grad",
    "gradcheck",
    "graph",
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
