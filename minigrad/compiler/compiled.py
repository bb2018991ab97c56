"""mg.compile(fn): trace a call once, then replay its program for calls that look the same.

    step = mg.compile(train_step)   # train_step(x, y): zero_grad, forward, backward, step
    loss = step(x, y)               # first call: eager, traced; later calls: the program
    print(step.program)             # what a replay runs, one line per instruction

A call *looks the same* when its signature matches: every Tensor argument's shape, dtype, device
and requires_grad, every other argument's value, grad mode, and the train/eval flags of the
modules the function uses. Each signature gets its own program (a few are kept, the oldest
dropped). A replay also checks that the tensors it reads live (parameters) kept their shape,
dtype and device, and traces again when one did not.

What a trace freezes (as jax.jit and CUDA graphs do): Python control flow and Python values the
function reads from tensors (`if loss.item() > 1:` takes the branch it took when traced);
tensors the function makes with factories (`mg.randn` inside it draws once, at trace time);
Python side effects (a print runs once). `mg.compile(fn, check=True)` runs the eager function
beside the program for the first calls and raises on any difference.
"""

from __future__ import annotations

from collections import OrderedDict

from .. import backend
from ..grad_mode import grad_mode
from ..nn import registration
from ..nn.module import Module
from ..tensor import Tensor
from . import passes
from .program import Stale
from .trace import TraceError, Tracer, copy_state

CHECKED_CALLS = 3  # replays that check=True compares with the eager function


class CompileCheckError(AssertionError):
    """check=True found the program and the eager function disagreeing."""


MODES = ("default", "max-autotune")


def compile(fn=None, *, mode: str = "default", check: bool = False, cache_size: int = 8,  # noqa: A001
            optimize: bool = True):
    """Compile `fn` (a training step, a model, any function of Tensors) into a replayed program.

    As torch.compile: use it on a function or as a decorator (`@mg.compile` or
    `@mg.compile(check=True)`). `optimize=False` replays the program as traced, without passes.
    `mode="max-autotune"` also lets the program store Linear weights in the layout its products
    read fastest (the relayout pass): their shapes and values stay, but `weight.view(-1)` then
    needs `reshape`, and an alias of `weight.data` taken before no longer follows the weight.
    """
    if mode not in MODES:
        raise ValueError(f"mg.compile: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if fn is None:
        return lambda f: Compiled(f, check, cache_size, optimize, mode)
    return Compiled(fn, check, cache_size, optimize, mode)


class Compiled:
    """A compiled function: call it like the function; `.program` is the latest program."""

    def __init__(self, fn, check: bool, cache_size: int, optimize: bool, mode: str = "default"):
        if not callable(fn):
            raise TypeError(f"mg.compile expects a function or a Module, got {type(fn).__name__}")
        if cache_size < 1:
            raise ValueError(f"mg.compile: cache_size must be at least 1, got {cache_size}")
        self.fn, self.check, self.cache_size, self.optimize = fn, check, cache_size, optimize
        self.mode = mode
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.programs = OrderedDict()  # signature -> Program
        self.program = None
        self.traces = 0  # how many times a call was traced
        self.modules = _modules_used_by(fn)
        self._checked = {}  # signature -> replays compared so far
        self._modules_seen, self._modules_parts = None, ()
        self._global_scope = getattr(fn, "__globals__", {})
        code = getattr(fn, "__code__", None)
        self._global_tensors = [name for name in (code.co_names if code else ())
                                if isinstance(self._global_scope.get(name), (Tensor, Module))]

    def __call__(self, *args, **kwargs):
        key = self._signature(args, kwargs)
        program = self.programs.get(key)
        if program is not None:
            self.programs.move_to_end(key)
            self.program = program
            try:
                if self.check and self._checked.get(key, 0) < CHECKED_CALLS:
                    self._checked[key] = self._checked.get(key, 0) + 1
                    return self._checked_replay(program, args, kwargs)
                return program.run(args)
            except Stale:
                del self.programs[key]  # a parameter changed shape or device: trace again
        return self._trace(key, args, kwargs)

    def _trace(self, key, args, kwargs):
        if grad_mode.tracer is not None:
            raise TraceError("mg.compile: a compiled function called inside another one's trace "
                             "is not supported; compile the outer function only")
        names = {id(p): n for m in self.modules for n, p in m.named_parameters()}
        tracer = Tracer(self.name, names)
        for position, arg in enumerate(args):
            if isinstance(arg, Tensor):
                tracer.input_slot(arg, position)
                tracer.snapshot.add_tensor(arg)
        grad_mode.tracer = tracer
        try:
            result = self.fn(*args, **kwargs)
        finally:
            grad_mode.tracer = None
        program = tracer.finish(result)
        program.finalize()
        program.before_passes = str(program)
        # Undo the traced run and let the program make this call too: every call's result then
        # comes from the program, whichever call happened to trace it.
        tracer.snapshot.restore()
        if self.optimize:
            passes.run_all(program, relayout=self.mode == "max-autotune")
        self.traces += 1
        self.programs[key] = program
        self.program = program
        while len(self.programs) > self.cache_size:
            self.programs.popitem(last=False)
        return program.run(args)

    def _signature(self, args, kwargs) -> tuple:
        parts = [grad_mode.enabled, grad_mode.inference]
        arrays = {}  # id(array) -> the first argument holding it: f(x, x) is not f(a, b)
        for position, value in enumerate(args):
            if isinstance(value, Tensor):
                parts.append(arrays.setdefault(id(value.array), position))
            elif isinstance(value, Module):  # a model passed in: its flags and parameters too
                parts.append(_module_signature(value))
        for value in (*args, *kwargs.items()):
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Tensor):
                raise TypeError("mg.compile: pass Tensors as positional arguments "
                                f"({value[0]}= is a Tensor)")
            if isinstance(value, Tensor):
                array = value.array
                parts.append((array.shape, array.dtype, value.device, value.requires_grad))
            else:
                try:
                    hash(value)
                except TypeError:
                    raise TypeError(
                        f"mg.compile: an argument of type {type(value).__name__} is neither a "
                        "Tensor nor a hashable value; a compiled function's other arguments "
                        "are part of its signature"
                    ) from None
                parts.append(value)
        parts.append(self._modules_signature())
        scope = self._global_scope
        for name in self._global_tensors:  # a global tensor or module rebound: a new trace
            parts.append(id(scope.get(name)))
        return tuple(parts)

    def _modules_signature(self) -> tuple:
        """The train flags and parameter identities of the modules the function uses (looked at
        again only when some module changed: registration.changes counts the changes)."""
        if self._modules_seen != registration.changes[0]:
            self._modules_parts = tuple(_module_signature(m) for m in self.modules)
            self._modules_seen = registration.changes[0]
        return self._modules_parts

    # ---- check=True --------------------------------------------------------------------------

    def _checked_replay(self, program, args, kwargs):
        """Run the program, put the state back, run the eager function, compare everything."""
        state = _State(program)
        replayed = program.run(args)
        after_replay = _State(program)
        state.restore()
        eager = self.fn(*args, **kwargs)  # (the same random numbers: the generator was put back)
        after_eager = _State(program)
        where = f"mg.compile(check=True): {self.name}, call {self._checked_count()}"
        _compare(replayed, eager, f"{where}: the result", program)
        after_replay.compare(after_eager, where)
        return replayed  # every result comes from the program, checked or not

    def _checked_count(self) -> int:
        return self.traces + sum(self._checked.values())


class _State:
    """Copies of what a step changes: live tensors, their gradients, optimiser state."""

    def __init__(self, program):
        self.program = program
        self.tensors = [(t, t.array.copy(), None if t._grad is None else t._grad.array.copy())
                        for t, _, _ in program.live]
        self.objects = [(i.obj, copy_state(i.obj.state)) for i in program.instructions
                        if hasattr(getattr(i, "obj", None), "state")]
        self.rng = backend.get_rng_state(backend.CPU)

    def restore(self) -> None:
        xp_copy = backend.module_for
        for tensor, array, grad in self.tensors:
            xp_copy(tensor.device).copyto(tensor.array, array)
            tensor._grad = None if grad is None else Tensor._wrap_no_copy_no_checks(
                grad.copy(), tensor.device)
        for obj, state in self.objects:
            obj.state.clear()
            obj.state.update(copy_state(state))
        backend.set_rng_state(backend.CPU, self.rng)

    def compare(self, other, where: str) -> None:
        for (tensor, array, grad), (_, array2, grad2) in zip(self.tensors, other.tensors,
                                                             strict=True):
            name = self.program.slots[_slot_of(self.program, tensor)].label
            _close(array, array2, f"{where}: {name} after the call")
            if (grad is None) != (grad2 is None):
                raise CompileCheckError(f"{where}: {name}.grad is "
                                        f"{'None' if grad is None else 'set'} after the program "
                                        f"but {'None' if grad2 is None else 'set'} after eager")
            if grad is not None:
                _close(grad, grad2, f"{where}: {name}.grad")


def _slot_of(program, tensor) -> int:
    return next(s for t, s, _ in program.live if t is tensor)


def _compare(a, b, where: str, program) -> None:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        _close(a.array, b.array, where)
    elif isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
        for number, (x, y) in enumerate(zip(a, b, strict=True)):
            _compare(x, y, f"{where}[{number}]", program)
    elif isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for key in a:
            _compare(a[key], b[key], f"{where}[{key!r}]", program)
    elif a != b:
        raise CompileCheckError(f"{where}: the program gave {a!r}, the eager function {b!r}")


def _close(a, b, where: str) -> None:
    """Equal to float rounding: a fused program may add in another order."""
    a, b = backend.to_host(a), backend.to_host(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        raise CompileCheckError(f"{where}: the program gave {a.dtype} {a.shape}, the eager "
                                f"function {b.dtype} {b.shape}")
    numpy = backend.module_for(backend.CPU)
    if a.dtype.kind != "f":
        if not numpy.array_equal(a, b):
            raise CompileCheckError(f"{where}: the program and the eager function differ")
        return
    tolerance = 1e-4 if a.dtype.itemsize <= 4 else 1e-10
    if not numpy.allclose(a, b, rtol=tolerance, atol=tolerance, equal_nan=True):
        worst = float(numpy.nanmax(numpy.abs(a.astype("float64") - b)))
        raise CompileCheckError(
            f"{where}: the program and the eager function differ by up to {worst:.3g} "
            "(Python control flow or a tensor made inside the function, frozen at trace time?)"
        )


def _module_signature(module) -> tuple:
    """A module's train flags and the identities of its parameters and buffers."""
    return (tuple(m.training for m in module.modules()),
            tuple(id(p) for p in module.parameters()),
            tuple(id(b) for _, b in module.named_buffers()))


def _modules_used_by(fn) -> list:
    """The Modules a function can reach by name: itself, its self (and its self's attributes),
    its globals, closure and default arguments."""
    found = []
    owner = getattr(fn, "__self__", None)
    candidates = [fn, owner, *(getattr(fn, "__defaults__", None) or ())]
    if owner is not None and not isinstance(owner, Module):
        candidates += list(getattr(owner, "__dict__", {}).values())
    code = getattr(fn, "__code__", None)
    if code is not None:
        scope = getattr(fn, "__globals__", {})
        candidates += [scope.get(name) for name in code.co_names]
        candidates += [cell.cell_contents for cell in (fn.__closure__ or ())
                       if _cell_is_set(cell)]
    for value in candidates:
        if isinstance(value, Module) and not any(value is m for m in found):
            found.append(value)
    return found


def _cell_is_set(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True
