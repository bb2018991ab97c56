"""Grad mode: whether `Function.apply` records the graph (`no_grad`, `enable_grad`, ...)."""

from __future__ import annotations

import functools
import inspect
import threading


class _GradMode(threading.local):
    """Per-thread switch, as in PyTorch; `apply` reads `enabled` on every call."""

    enabled = True
    inference = False  # inside inference_mode()
    in_backward = False  # the engine is running a node's backward (anomaly.py checks it)
    anomaly = False  # detect_anomaly() (anomaly.py)
    anomaly_check_nan = True
    tracer = None  # mg.compile's recorder while it traces a call (minigrad/compiler/trace.py)
    saved_hooks = None  # (pack, unpack) of autograd.graph.saved_tensors_hooks, innermost
    dual_level = 0  # 1 inside autograd.forward_ad.dual_level() (engine/forward.py)
    vmap_level = 0  # how many mg.func.vmap calls are open (func/batching.py)
    batching = None  # func/batching.py's hooks, set by the first vmap


grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when operations record a graph for backward."""
    return grad_mode.enabled


def is_inference_mode_enabled() -> bool:
    """True inside inference_mode()."""
    return grad_mode.inference


class _SetGradEnabled:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    mode = True
    inference = None  # None: leave inference mode as it is

    def __new__(cls, fn=None):
        """`@no_grad` works with or without parentheses, as in PyTorch."""
        manager = super().__new__(cls)
        return manager if fn is None or not callable(fn) else manager(fn)

    def __enter__(self):
        self.previous = (grad_mode.enabled, grad_mode.inference)
        grad_mode.enabled = self.mode
        if self.inference is not None:
            grad_mode.inference = self.inference

    def __exit__(self, *exc_info):
        grad_mode.enabled, grad_mode.inference = self.previous

    def clone(self):
        return self.__class__()

    def __call__(self, fn):
        """Decorate a function (or a generator function: each resumption is covered too)."""
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def generator(*args, **kwargs):
                gen = fn(*args, **kwargs)
                try:
                    with self.clone():
                        value = gen.send(None)
                    while True:
                        try:
                            sent = yield value
                        except GeneratorExit:
                            with self.clone():
                                gen.close()
                            raise
                        except BaseException as error:
                            with self.clone():
                                value = gen.throw(error)
                        else:
                            with self.clone():
                                value = gen.send(sent)
                except StopIteration as stop:
                    return stop.value

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)

        return wrapper




class no_grad(_SetGradEnabled):
    """Record nothing inside: results have no grad_fn (evaluation, optimiser steps)."""

    mode = False


class enable_grad(_SetGradEnabled):
    """Record the graph again inside a `no_grad` block."""

    mode = True


class inference_mode(_SetGradEnabled):
    """Like no_grad, for evaluation: nothing is recorded inside (mode=False: grad mode on)."""

    mode = False
    inference = True

    def __new__(cls, mode=True):
        manager = object.__new__(cls)
        if callable(mode):  # @inference_mode without parentheses
            return manager(mode)
        manager.mode, manager.inference = not mode, bool(mode)
        return manager

    def clone(self):
        return inference_mode(self.inference)


class set_grad_enabled(_SetGradEnabled):
    """Switch grad mode on or off: at once when called, and back on exit when used with `with`."""

    def __new__(cls, mode: bool):
        manager = object.__new__(cls)
        manager.mode = bool(mode)
        manager.previous = (grad_mode.enabled, grad_mode.inference)
        grad_mode.enabled = manager.mode  # set_grad_enabled(False) as a plain call works too
        return manager

    def __enter__(self):
        grad_mode.enabled = self.mode

    def clone(self):
        return enable_grad() if self.mode else no_grad()

    def __call__(self, fn):
        grad_mode.enabled, _ = self.previous  # as a decorator, the call itself changes nothing
        return super().__call__(fn)


def recorded_as_one_call(method):
    """Mark a method that changes state outside the graph (an optimiser's step, zero_grad): while
    mg.compile traces a function, a call of it is recorded as one instruction that the compiled
    program makes again on every replay (minigrad/compiler/trace.py)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        tracer = grad_mode.tracer
        if tracer is None:
            return method(self, *args, **kwargs)
        return tracer.record_call(method, self, args, kwargs)

    return wrapper

