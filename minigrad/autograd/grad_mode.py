"""Grad mode: whether `Function.apply` records the graph (`no_grad`, `enable_grad`)."""

from __future__ import annotations

import functools
import threading


class _GradMode(threading.local):
    """Per-thread switch, as in PyTorch; `apply` reads `enabled` on every call."""

    enabled = True
    anomaly = False  # detect_anomaly() (anomaly.py)
    anomaly_check_nan = True


grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations record a graph for backward."""
    return grad_mode.enabled


class _SetGradEnabled:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    mode = True

    def __new__(cls, fn=None):
        """`@no_grad` works with or without parentheses, as in PyTorch."""
        manager = super().__new__(cls)
        return manager if fn is None else manager(fn)

    def __enter__(self):
        self.previous = grad_mode.enabled
        grad_mode.enabled = self.mode

    def __exit__(self, *exc_info):
        grad_mode.enabled = self.previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_SetGradEnabled):
    """Record nothing inside: results have no grad_fn (evaluation, optimiser steps)."""

    mode = False


class enable_grad(_SetGradEnabled):
    """Record the graph again inside a `no_grad` block."""

    mode = True
