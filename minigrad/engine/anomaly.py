"""detect_anomaly: stop at the first operation whose forward or backward produces NaN.

    with mg.autograd.detect_anomaly():
        loss = model(x).log().sum()   # raises here if log produced nan ...
        loss.backward()               # ... or here, naming the node whose backward did

As in PyTorch, anomaly mode also records where each node of the graph was created, so an error
raised in backward shows the line of the forward call that made the guilty node. It is for
debugging: every operation then checks its result, which makes training several times slower.
When the mode is off, Function.apply and the engine pay one attribute read per call.
"""

from __future__ import annotations

import functools
import os
import traceback

from .. import backend
from ..grad_mode import grad_mode

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../minigrad


def is_anomaly_enabled() -> bool:
    """True inside detect_anomaly()."""
    return grad_mode.anomaly


class detect_anomaly:
    """Context manager (and decorator) that raises at the first NaN made by an op or its backward.

    `check_nan=False` keeps only the bookkeeping (where each node was created), as in PyTorch.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self.previous = (grad_mode.anomaly, grad_mode.anomaly_check_nan)
        grad_mode.anomaly, grad_mode.anomaly_check_nan = True, self.check_nan

    def __exit__(self, *exc_info):
        grad_mode.anomaly, grad_mode.anomaly_check_nan = self.previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


def _has_nan(array) -> bool:
    dtype = getattr(array, "dtype", None)
    if dtype is None or dtype.kind not in "fc":  # ints and bools cannot hold nan
        return False
    return bool(backend.array_module(array).isnan(array).any())


def check_forward(ctx, inputs, outputs) -> None:
    """Called by Function.apply in anomaly mode: remember the call site, reject a nan output."""
    ctx.forward_stack = traceback.extract_stack()[:-2]  # without apply's frame and this one
    if not grad_mode.anomaly_check_nan or grad_mode.in_backward:
        return
    for output in outputs:
        if _has_nan(_array(output)):
            already = any(_has_nan(_array(value)) for value in inputs)
            raise RuntimeError(
                f"detect_anomaly: {ctx.function.__name__} produced nan in its output "
                f"(shape {tuple(_array(output).shape)})"
                + ("; its inputs already contained nan" if already else "")
            )


def _array(value):
    return getattr(value, "array", value)


def check_backward(node, grads) -> None:
    """Called by the engine in anomaly mode after each node's backward: reject nan gradients."""
    if not grad_mode.anomaly_check_nan:
        return
    for index, grad in enumerate(grads):
        if grad is not None and _has_nan(_array(grad)):
            raise RuntimeError(
                f"detect_anomaly: {node.name()} returned nan in its gradient for input {index} "
                f"(shape {tuple(getattr(grad, 'shape', ()))})" + _created_at(node)
            )


def _created_at(node) -> str:
    """The innermost line outside minigrad that ran the node's forward (anomaly mode records it)."""
    stack = getattr(node, "forward_stack", None)
    if not stack:
        return ""
    outside = [frame for frame in stack if _PACKAGE not in frame.filename] or list(stack)
    return "; the forward call that created this node:\n" + "".join(
        traceback.format_list(outside[-1:])
    ).rstrip()
