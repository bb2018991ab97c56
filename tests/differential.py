"""A differential fuzzer: random straight-line programs, run under PyTorch and under minigrad.

A program is Python source, one statement a line, that runs unchanged with `lib` bound to `torch`
or to `minigrad` (and `F` to `lib.nn.functional`), all in float64:

    v0 = lib.tensor([[0.5, -1.25], [2.0, 0.75]], dtype=lib.float64, requires_grad=True)
    v1 = v0.exp()
    v2 = v1.sum(dim=1, keepdim=True)
    v1.mul_(v2)                                     # mode "inplace" only

The two runs go side by side and must agree after every statement: the statement raises in both
(any exception type; both messages are kept) or in neither, and every tensor variable has the
same shape, dtype, requires_grad and values (relative error 1e-9, NaN equal to NaN). At the end a
scalar loss, a weighted sum of the variables that require grad, is differentiated with respect
to every leaf that requires grad (`autograd.grad(..., create_graph=True, allow_unused=True)`),
and a weighted sum of those gradients is differentiated again: gradients of both orders agree.

Generation is deterministic from (seed, mode, index). The generator runs each statement under
both libraries as it writes it, so it picks the next one knowing the shapes and values so far
(log sees positive values, divisors stay away from zero, exp sees small ones). Mode "pure" uses
no in-place operation; mode "inplace" adds add_/mul_/sub_/div_/clamp_/zero_/fill_/copy_, +=,
and x[index] = value on intermediates, views of them and bases that have views.

The classes of disagreement already known are the entries of KNOWN_GAPS, each a predicate the
generator consults before it runs a statement; it leaves out every statement that enters a gap,
unless told to generate that gap (`--gap NAME`, `--with-gaps` for all, `--per-gap` for one run
per gap, which counts how often each disagrees). A disagreement is shrunk (statements removed,
constants simplified) while it keeps disagreeing the same way and in the same class, and printed
as source for both libraries.

    python -m tests.differential --programs 2000 --seed 0 --mode inplace
    python -m tests.differential --programs 2000 --per-gap
    python -m tests.differential --show 17 --mode inplace      # program 17, and where it raised
"""

from __future__ import annotations

import argparse
import ast
import math
import random
import re
import sys
import textwrap
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import torch

import minigrad as mg

RTOL = 1e-9  # relative error allowed between the two libraries' float64 values
MAX_NUMEL = 48  # no tensor the generator makes on purpose has more elements
LIBRARIES = (torch, mg)


# ---- programs ------------------------------------------------------------------------------------


@dataclass
class Statement:
    """One line of a program, with what the shrinker and the known-gap predicates need."""

    text: str
    tag: str  # the operation, as "family:form" ("reduce:sum-dim", "setitem:mask", ...)
    defines: tuple = ()  # the variables it creates
    uses: tuple = ()  # the variables it reads (a statement is removed with those it needs)
    target: str | None = None  # the variable an in-place statement writes into
    gaps: tuple = ()  # the KNOWN_GAPS it enters (found when generated or replayed)

    @property
    def inplace(self) -> bool:
        return self.target is not None


@dataclass
class Program:
    """Statements, then the two gradient passes over `outputs` with respect to `leaves`."""

    statements: list
    outputs: list = field(default_factory=list)  # (variable, weights literal) pairs of the loss
    leaves: list = field(default_factory=list)  # the leaves that require grad
    weights2: dict = field(default_factory=dict)  # leaf -> weights of its gradient in loss2
    label: str = ""

    def grad_statements(self) -> list:
        """The loss, its gradients, their weighted sum and its gradients, as statements."""
        defined = {name for s in self.statements for name in s.defines}
        outputs = [(name, w) for name, w in self.outputs if name in defined]
        leaves = [name for name in self.leaves if name in defined]
        if not outputs or not leaves:
            return []
        loss = " + ".join(_weighted_sum(name, w) for name, w in outputs)
        names = ", ".join(leaves)
        weights = ", ".join(self.weights2.get(name, "1.0") for name in leaves)
        return [
            Statement(f"loss = {loss}", "loss", ("loss",), tuple(n for n, _ in outputs)),
            Statement(f"grads = lib.autograd.grad(loss, [{names}], allow_unused=True, "
                      "create_graph=True)", "grad", ("grads",), ("loss", *leaves)),
            Statement(f"loss2 = sum([(g * w).sum() for g, w in zip(grads, [{weights}]) "
                      "if g is not None])", "loss2", ("loss2",), ("grads",)),
            Statement(f"grads2 = lib.autograd.grad(loss2, [{names}], allow_unused=True) "
                      "if getattr(loss2, 'requires_grad', False) else None", "grad2",
                      ("grads2",), ("loss2", *leaves)),
        ]

    def all_statements(self) -> list:
        return list(self.statements) + self.grad_statements()

    @classmethod
    def from_source(cls, source: str) -> Program:
        """A program from its source (as `source()` or `report()` print it): the statements,
        the loss, grads, loss2 and grads2 lines included as they are."""
        statements = []
        for line in source.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "import ", "F = ")):
                continue
            assigned = re.match(r"^(\w+(?:, *\w+)*,?) = ", line)
            if assigned:
                names = tuple(n.strip() for n in assigned.group(1).split(",") if n.strip())
                tag = names[0] if names[0] in ("loss", "grads", "loss2", "grads2") else "source"
                tag = {"grads": "grad", "grads2": "grad2"}.get(tag, tag)
                statements.append(Statement(line, tag, names))
            else:  # in place: x.add_(...), x += ..., x[...] = ..., with lib.no_grad(): ...
                target = re.search(r"(?<![\w.])v\d+\b", line.split(":", 1)[-1])
                statements.append(Statement(line, "source", target=target.group() if target
                                            else "?"))
        return cls(statements)

    def source(self, library: str = "torch", upto: int | None = None) -> str:
        """The program as a script for `library` ("torch" or "minigrad"), to statement `upto`."""
        lines = [f"import {library} as lib", "F = lib.nn.functional"]
        lines += [s.text for s in self.all_statements()[: None if upto is None else upto + 1]]
        return "\n".join(lines) + "\n"


def _weighted_sum(name: str, weights: str) -> str:
    return f"{name}.sum()" if weights == "1.0" else f"({name} * {weights}).sum()"


def literal(values) -> str:
    """A float64 tensor literal: `lib.tensor([[0.5, -1.0]], dtype=lib.float64)`."""
    return f"lib.tensor({_nested(values)}, dtype=lib.float64)"


def _nested(values) -> str:
    return repr(np.asarray(values, dtype=np.float64).tolist())


# ---- running and comparing -----------------------------------------------------------------------


@dataclass
class Disagreement:
    """The first place where the two libraries part: which statement, what differs, both errors."""

    kind: str  # value shape dtype requires_grad type missing-error spurious-error
    index: int  # of the statement in program.all_statements()
    tag: str
    detail: str
    torch_error: str = ""
    minigrad_error: str = ""

    @property
    def signature(self) -> tuple:
        """What shrinking must keep: the kind of difference and the operation it shows at."""
        return (self.kind, self.tag)

    def describe(self) -> str:
        lines = [f"{self.kind} at statement {self.index} ({self.tag}): {self.detail}"]
        if self.torch_error:
            lines.append(f"  torch raised:    {self.torch_error}")
        if self.minigrad_error:
            lines.append(f"  minigrad raised: {self.minigrad_error}")
        return "\n".join(lines)


class Run:
    """One program executing under torch and minigrad in step, compared after each statement."""

    def __init__(self):
        self.spaces = {lib: {"lib": lib, "F": lib.nn.functional} for lib in LIBRARIES}
        self.errors = []  # (index, torch message, minigrad message) where both raised
        self.count = 0

    @property
    def torch_space(self) -> dict:
        return self.spaces[torch]

    def step(self, statement: Statement) -> tuple:
        """Run one statement in both; (torch raised?, Disagreement or None)."""
        index, self.count = self.count, self.count + 1
        code = _compiled(statement.text)
        t_error, m_error = (_execute(code, self.spaces[lib]) for lib in LIBRARIES)
        if t_error is not None or m_error is not None:
            if t_error is None:
                return False, Disagreement("spurious-error", index, statement.tag,
                                           "minigrad raised, torch did not",
                                           minigrad_error=_message(m_error))
            if m_error is None:
                return True, Disagreement("missing-error", index, statement.tag,
                                          "torch raised, minigrad did not",
                                          torch_error=_message(t_error))
            self.errors.append((index, _message(t_error), _message(m_error)))
            return True, None
        names = self.variables() if statement.inplace else statement.defines
        for name in names:
            detail = compare(name, self.spaces[torch].get(name), self.spaces[mg].get(name),
                             statement.tag)
            if detail is not None:
                return False, Disagreement(detail[0], index, statement.tag, detail[1])
        return False, None

    def check_all(self, tag: str = "end") -> Disagreement | None:
        """Compare every variable (after the last statement: nothing changed behind our back)."""
        for name in self.variables():
            detail = compare(name, self.spaces[torch][name], self.spaces[mg].get(name), tag)
            if detail is not None:
                return Disagreement(detail[0], self.count - 1, tag, detail[1])
        return None

    def variables(self) -> list:
        return [n for n, v in self.spaces[torch].items() if n[0] == "v" and torch.is_tensor(v)]


_CODE_CACHE: dict = {}


def _compiled(text: str):
    code = _CODE_CACHE.get(text)
    if code is None:
        if len(_CODE_CACHE) > 50_000:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[text] = compile(text, "<program>", "exec")
    return code


def _execute(code, space: dict):
    try:
        exec(code, space)
    except Exception as error:  # any exception type is acceptable where torch raises too
        return error
    return None


def _message(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def compare(name: str, t, m, tag: str) -> tuple | None:
    """(kind, detail) where minigrad's value of a variable differs from torch's, else None."""
    if tag in ("grad", "grad2"):
        return _compare_gradients(name, t, m, none_is_zero=tag == "grad2")
    if tag == "loss2" and not torch.is_tensor(t) and not isinstance(m, mg.Tensor):
        return None if t == m else ("value", f"{name}: {m!r} != torch's {t!r}")
    return _compare_tensors(name, t, m, check_requires_grad=tag != "loss2")


def _compare_tensors(name: str, t, m, check_requires_grad: bool = True) -> tuple | None:
    if not isinstance(m, mg.Tensor):
        return ("type", f"{name}: minigrad gave {type(m).__name__}, torch a tensor")
    if tuple(t.shape) != m.shape:
        return ("shape", f"{name}: shape {m.shape} != torch's {tuple(t.shape)}")
    t_dtype, m_dtype = _dtype_name(t.dtype), _dtype_name(m.dtype)
    if t_dtype != m_dtype:
        return ("dtype", f"{name}: dtype {m_dtype} != torch's {t_dtype}")
    expected, actual = _torch_array(t), m.detach().numpy()
    error = _difference(actual, expected)
    if error is not None:
        return ("value", f"{name}: {error}\n    torch:    {_show(expected)}\n"
                         f"    minigrad: {_show(actual)}")
    if check_requires_grad and t.requires_grad != m.requires_grad:
        return ("requires_grad", f"{name}: requires_grad {m.requires_grad} != torch's "
                                 f"{t.requires_grad}")
    return None


def _compare_gradients(name: str, t, m, none_is_zero: bool) -> tuple | None:
    """Tuples of gradients (None where unused); for second order None counts as zeros."""
    t, m = (() if x is None else tuple(x) for x in (t, m))
    count = max(len(t), len(m))
    t, m = t + (None,) * (count - len(t)), m + (None,) * (count - len(m))
    for number, (tg, mg_) in enumerate(zip(t, m, strict=True)):
        what = f"{name}[{number}]"
        if tg is None or mg_ is None:
            if none_is_zero:
                present = tg if tg is not None else mg_
                if present is None or not _show_array(present).any():
                    continue
                return ("value", f"{what}: torch {'None' if tg is None else _show(tg)}, "
                                 f"minigrad {'None' if mg_ is None else _show(mg_)}")
            if tg is not mg_:
                return ("value", f"{what}: torch gives {'None' if tg is None else 'a tensor'}, "
                                 f"minigrad {'None' if mg_ is None else 'a tensor'}")
            continue
        detail = _compare_tensors(what, tg, mg_, check_requires_grad=False)
        if detail is not None:
            return detail
    return None


def _torch_array(t) -> np.ndarray:
    """A torch tensor's values (a gradient may be a ZeroTensor, which has no memory to read)."""
    if t._is_zerotensor():
        return np.zeros(tuple(t.shape), dtype=torch.empty((), dtype=t.dtype).numpy().dtype)
    return t.detach().numpy(force=True)


_DTYPE_NAMES: dict = {}


def _dtype_name(dtype) -> str:
    """'float64' for torch.float64 and for numpy's float64 (str() of either is slow)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def _difference(actual: np.ndarray, expected: np.ndarray) -> str | None:
    if actual.tobytes() == expected.tobytes():
        return None
    if expected.dtype.kind != "f":
        if np.array_equal(actual, expected):
            return None
        return "values differ"
    if np.array_equal(actual, expected, equal_nan=True):
        return None
    nan = np.isnan(expected)
    if not np.array_equal(nan, np.isnan(actual)):
        return "NaN in different places"
    finite = np.isfinite(expected)
    if not np.array_equal(actual[~finite & ~nan], expected[~finite & ~nan]) or not np.all(
            np.isfinite(actual[finite])):
        return "infinities differ"
    scale = max(1.0, float(np.abs(expected[finite]).max())) if finite.any() else 1.0
    error = np.abs(actual[finite] - expected[finite])
    allowed = RTOL * (np.abs(expected[finite]) + scale)
    if np.all(error <= allowed):
        return None
    return f"max error {float(error.max()):.3g}"


def _show_array(value) -> np.ndarray:
    if torch.is_tensor(value):
        return _torch_array(value)
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def _show(value) -> str:
    text = np.array2string(_show_array(value), precision=6, separator=", ", threshold=40)
    return text.replace("\n", "")


def check_source(source: str) -> Disagreement | None:
    """Run a program's source under both libraries; the first disagreement, or None."""
    return run_program(Program.from_source(textwrap.dedent(source)))


def run_program(program: Program) -> Disagreement | None:
    """Run a whole program under both libraries; the first disagreement, or None."""
    with _Quiet():
        run = Run()
        for statement in program.statements:
            _, disagreement = run.step(statement)
            if disagreement is not None:
                return disagreement
        disagreement = run.check_all()
        if disagreement is not None:
            return disagreement
        for statement in program.grad_statements():
            _, disagreement = run.step(statement)
            if disagreement is not None:
                return disagreement
    return None


class _Quiet:
    """NumPy's and torch's warnings off (log of a negative number is meant to give NaN here),
    and torch on one thread (its thread pool costs milliseconds per small op on two cores)."""

    def __enter__(self):
        self.errstate = np.errstate(all="ignore")
        self.errstate.__enter__()
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
        self.warnings.__exit__(*exc)
        self.errstate.__exit__(*exc)


# ---- generation ----------------------------------------------------------------------------------


class StopProgram(Exception):
    """The program ends here: the two libraries disagreed (args[0]), or torch raised on three
    statements (args[0] is None)."""


@dataclass
class Variable:
    """What the generator knows of a variable besides its torch value."""

    made_by: str  # the tag of the statement that made it
    made_at: int  # that statement's number
    storage: int  # torch's data pointer: variables with the same one share memory
    alias_break: str = ""  # why it aliases its input differently in the two libraries, if so
    layout: str = ""  # the tag of the operation that laid it out differently in the two


class Generator:
    """Writes one program at a time from (seed, mode, index), running it as it goes; or replays
    a given program the same way, to learn which known gaps its statements enter."""

    def __init__(self, seed: int = 0, mode: str = "pure", with_gaps=()):
        """with_gaps: the KNOWN_GAPS to generate too (True: all of them); the others are left
        out, and so is every statement that enters one of them."""
        if mode not in ("pure", "inplace"):
            raise ValueError(f"mode must be 'pure' or 'inplace', got {mode!r}")
        self.seed, self.mode = seed, mode
        self.allowed = set(KNOWN_GAPS) if with_gaps is True else set(with_gaps or ())
        unknown = self.allowed - set(KNOWN_GAPS)
        if unknown:
            raise ValueError(f"not in KNOWN_GAPS: {sorted(unknown)}")

    def _start(self, rng_seed: str) -> None:
        self.rng = random.Random(rng_seed)
        self.run, self.info, self.names = Run(), {}, 0
        self.statements, self.torch_errors, self.replaying = [], 0, False
        self.readers = {}  # torch storage -> tags of the recorded operations that read it

    def program(self, index: int) -> tuple:
        """(Program, the first Disagreement or None) for program number `index`."""
        self._start(f"{self.seed}:{self.mode}:{index}")
        program = Program(self.statements, label=f"seed {self.seed} {self.mode} #{index}")
        menu = PURE_MENU + (INPLACE_MENU if self.mode == "inplace" else [])
        weights = [w for w, _ in menu]
        with _Quiet():
            try:
                for _ in range(self.rng.randint(1, 3)):
                    self.leaf(self.random_shape(), requires_grad=self.rng.random() < 0.8)
                for _ in range(self.rng.randint(3, 14)):
                    for _attempt in range(8):
                        make = self.rng.choices(menu, weights)[0][1]
                        try:
                            statement = make(self)
                        except RuntimeError:  # torch refuses to look into a variable
                            statement = None
                        if statement is not None and self.offer(statement):
                            break
                self.choose_loss(program)
                return program, self._finish(program)
            except StopProgram as stop:
                return program, stop.args[0]

    def replay(self, program: Program) -> tuple:
        """Run a given program as generation would: (the program with each statement's gaps
        recorded, its first Disagreement or None)."""
        self._start("replay")
        self.replaying = True
        names = [int(n[1:]) for s in program.statements for n in s.defines if n[1:].isdigit()]
        self.names = max(names, default=-1) + 1
        replayed = replace(program, statements=self.statements)
        with _Quiet():
            try:
                for statement in program.statements:
                    self.emit(replace(statement, gaps=self.gaps_of(statement)))
                return replayed, self._finish(replayed)
            except StopProgram as stop:
                return replayed, stop.args[0]

    def _finish(self, program: Program):
        disagreement = self.run.check_all()
        if disagreement is not None:
            return disagreement
        for statement in program.grad_statements():
            _, disagreement = self.run.step(statement)
            if disagreement is not None:
                return disagreement
        return None

    def gaps_of(self, statement: Statement) -> tuple:
        """The names of the known gaps the statement would enter, run where the program is."""
        try:
            return tuple(name for name, gap in KNOWN_GAPS.items() if gap.applies(self, statement))
        except RuntimeError:  # torch refuses to look into a variable
            return ()

    def offer(self, statement: Statement) -> bool:
        """Run the statement unless rounding would decide it or it enters a known gap left out;
        False when refused."""
        if _rounding_decides(self, statement):
            return False
        gaps = self.gaps_of(statement)
        if not self.allowed.issuperset(gaps):
            return False
        self.emit(replace(statement, gaps=gaps))
        return True

    def emit(self, statement: Statement) -> bool:
        """Run a statement in both libraries and record it; True when torch ran it."""
        self.statements.append(statement)
        number = len(self.statements) - 1
        raised, disagreement = self.run.step(statement)
        if disagreement is not None:
            raise StopProgram(disagreement)
        if raised:
            self.torch_errors += 1
            if self.torch_errors >= 3 and not self.replaying:
                raise StopProgram(None)
            return False
        recorded = False
        for name in statement.defines:
            value = self.value(name)
            if torch.is_tensor(value):
                self.info[name] = Variable(statement.tag, number, _storage(value),
                                           self.alias_break(statement, name),
                                           self.layout_origin(statement, name))
                recorded |= value.requires_grad
        if statement.target is not None:
            recorded = self.value(statement.target).requires_grad and not \
                statement.text.startswith("with lib.no_grad()")
        if recorded:
            for name in statement.uses:
                if name in self.info:
                    self.readers.setdefault(self.storage(name), []).append(statement.tag)
        return True

    def alias_break(self, statement: Statement, name: str) -> str:
        """How variable `name` aliases an input of the statement differently in the two
        libraries: "copies:<cause>" (a view in torch, a copy in minigrad), "aliases:<tag>" (the
        other way round), "untracked:<tag>" (both share memory, but minigrad does not share the
        version counter, as a view must); "" when they agree."""
        t, m = self.value(name), self.run.spaces[mg].get(name)
        if not isinstance(m, mg.Tensor) or t.numel() == 0:
            return ""
        for other in statement.uses:
            if other not in self.info or self.value(other).numel() == 0:
                continue
            m_other = self.run.spaces[mg][other]
            in_torch = self.storage(other) == _storage(t)
            in_minigrad = _root(m_other.array) is _root(m.array)
            if in_torch and not in_minigrad:
                if t.dim() == 0 and "[" in statement.text:
                    return "copies:index-to-0d"
                return "copies:" + (self.info[other].layout or statement.tag)
            if in_minigrad and not in_torch:
                return "aliases:" + statement.tag
            if in_torch and t._is_view() and getattr(m, "_version_counter", None) is not \
                    getattr(m_other, "_version_counter", None):
                return "untracked:" + statement.tag
        return ""

    def layout_origin(self, statement: Statement, name: str) -> str:
        """The tag of the operation that laid `name` out in memory differently in the two
        libraries (it may have passed the difference on from an input), or ""."""
        if not _layout_differs(self, name):
            return ""
        for other in statement.uses:
            if other in self.info and self.info[other].layout:
                return self.info[other].layout
        return statement.tag

    def preview(self, statement: Statement, lib=torch):
        """(exception or None, namespace) of an out-of-place statement run in a copy of the
        program's namespace for `lib`: what it would do, without doing it."""
        space = dict(self.run.spaces[lib])
        return _execute(_compiled(statement.text), space), space

    def neighbours(self, name: str) -> list:
        """The variable and those on its memory, in torch or in minigrad."""
        storage, root = self.storage(name), _root(self.run.spaces[mg][name].array)
        return [n for n in self.variables("fbi") if self.info[n].storage == storage
                or _root(self.run.spaces[mg][n].array) is root]

    def choose_loss(self, program: Program) -> None:
        """The loss's terms (variables that require grad) and the leaves to differentiate."""
        candidates = [n for n in self.variables() if self.value(n).requires_grad]
        self.rng.shuffle(candidates)
        for name in candidates[: self.rng.randint(1, 6)]:
            weights = "1.0" if self.rng.random() < 0.3 else literal(self.values(self.shape(name)))
            program.outputs.append((name, weights))
        program.leaves = [n for n in self.variables()
                          if self.value(n).requires_grad and _is_leaf(self.value(n))]
        program.weights2 = {n: literal(self.values(self.shape(n))) for n in program.leaves}

    # -- what the menu's functions use --

    def new_name(self) -> str:
        name, self.names = f"v{self.names}", self.names + 1
        return name

    def value(self, name: str):
        return self.run.torch_space.get(name)

    def shape(self, name: str) -> tuple:
        return tuple(self.value(name).shape)

    def variables(self, kind: str = "f") -> list:
        """Live tensor variables whose dtype kind is in `kind` ("f" float, "b" bool, "i" int)."""
        return [n for n in self.info if torch.is_tensor(self.value(n))
                and _kind(self.value(n)) in kind]

    def pick(self, test=None, kind: str = "f") -> str | None:
        """A variable, recent ones more often, passing test(name) when given."""
        names = [n for n in self.variables(kind)
                 if self.value(n).numel() > 0 and (test is None or test(n))]
        if not names:
            return None
        weights = [1.0 + i for i in range(len(names))]
        return self.rng.choices(names, weights)[0]

    def storage(self, name: str) -> int:
        return _storage(self.value(name))

    def aliases(self, name: str) -> list:
        """Other live variables on the same memory."""
        ptr = self.storage(name)
        return [n for n in self.variables("fbi") if n != name and self.info[n].storage == ptr
                and self.value(n).numel() > 0]

    def random_shape(self, ndim: int | None = None) -> tuple:
        if ndim is None:
            ndim = self.rng.choices([0, 1, 2, 3, 4], [1, 4, 6, 4, 1])[0]
        while True:
            shape = tuple(self.rng.choice([1, 2, 2, 3, 3, 4]) for _ in range(ndim))
            if math.prod(shape) <= MAX_NUMEL:
                return shape

    def values(self, shape: tuple, low: float = -2.0, high: float = 2.0):
        flat = [round(self.rng.uniform(low, high), 2) for _ in range(math.prod(shape))]
        return np.array(flat, dtype=np.float64).reshape(shape)

    def leaf(self, shape: tuple, requires_grad: bool = True, low: float = -2.0,
             high: float = 2.0) -> str:
        """A new leaf variable (emitted at once); its name."""
        name = self.new_name()
        grad = ", requires_grad=True" if requires_grad else ""
        text = f"{name} = lib.tensor({_nested(self.values(shape, low, high))}, " \
               f"dtype=lib.float64{grad})"
        self.emit(Statement(text, "leaf", (name,)))
        return name

    def operand(self, shape: tuple, allow_number: bool = True) -> tuple:
        """The other side of a binary operation on `shape`: (source text, variables it uses)."""
        roll = self.rng.random()
        if allow_number and roll < 0.2:
            return repr(round(self.rng.uniform(-2, 2), 2)), ()
        if roll < 0.55:
            found = self.pick(lambda n: _broadcasts(self.shape(n), shape))
            if found is not None:
                return found, (found,)
        other = self.broadcastable_shape(shape)
        if roll < 0.7:
            return literal(self.values(other)), ()
        name = self.leaf(other, requires_grad=self.rng.random() < 0.7)
        return name, (name,)

    def broadcastable_shape(self, shape: tuple) -> tuple:
        """A shape that broadcasts with `shape` to `shape` (or, rarely, to a larger one)."""
        dims = list(shape[self.rng.randint(0, len(shape)):]) if shape else []
        dims = [1 if self.rng.random() < 0.3 else d for d in dims]
        if self.rng.random() < 0.1 and math.prod(shape) * 2 <= MAX_NUMEL and len(shape) < 4:
            return (2, *(1 for _ in shape)) if self.rng.random() < 0.5 else (2, *shape)
        return tuple(dims)

    def safe(self, name: str, domain: str) -> str:
        """The variable as an expression whose values suit `domain` (positive, nonzero, small)."""
        v = self.value(name).detach()
        finite = bool(torch.isfinite(v).all()) if v.numel() else True
        if domain == "positive" and finite and (v.numel() == 0 or float(v.min()) > 0.1):
            return name
        if domain == "nonzero" and finite and (v.numel() == 0 or float(v.abs().min()) > 0.2):
            return name
        if domain == "small" and finite and (v.numel() == 0 or float(v.abs().max()) < 8):
            return name
        if domain == "small":
            return f"{name}.tanh()"
        return f"({name} * {name} + 0.5)"


def _is_leaf(value) -> bool:
    """torch's is_leaf, False where torch refuses to say (a split output whose base changed)."""
    try:
        return value.is_leaf
    except RuntimeError:
        return False


def _root(array):
    """The array that owns the memory a NumPy array views."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


# Branches: x > c, relu/abs/sign at 0, maximum/minimum/clamp at a tie, the largest element.
COMPARISON = re.compile(r"\b(v\d+) (?:>|<|>=|<=|==|!=) (v\d+|-?\d+(?:\.\d+)?)\b")
TIE = re.compile(r"(?:maximum|minimum)\((v\d+), (v\d+)\)|\b(v\d+)\.(?:maximum|minimum)\((v\d+)\)"
                 r"|\b(v\d+)\.clamp\((?:min=)?(v\d+)")
AT_ZERO = re.compile(r"\b(v\d+)\.(?:relu|abs|absolute|sign)\(\)|(?:F\.relu|lib\.abs)\((v\d+)\)")
EXTREME = re.compile(r"\b(v\d+)\.(?:max|min|amax|amin|argmax|argmin)\((?:dim=(-?\d+|\(.*?\)))?")


def _rounding_decides(g: Generator, s: Statement) -> bool:
    """Whether the statement branches (x > c, relu at 0, maximum at a tie, which element is
    the largest) where the two libraries' inputs, equal up to rounding (sums in another
    order), fall on different sides: rounding would decide, not either library. The generator
    does not write such statements; exact ties and zeros it does write."""
    def both(name: str):
        if name not in g.info:  # a number
            return float(name), float(name)
        t, m = _torch_array(g.value(name)), g.run.spaces[mg][name].detach().numpy()
        return t, m

    def sides_differ(a: str, b: str | None) -> bool:
        (ta, ma), (tb, mb) = both(a), both(b) if b else (0.0, 0.0)
        if np.shape(ta) != np.shape(ma) or np.shape(tb) != np.shape(mb):
            return False
        with np.errstate(all="ignore"):
            return bool((np.sign(ta - tb) != np.sign(ma - mb)).any())

    for pattern in (COMPARISON, TIE):
        for match in pattern.finditer(s.text):
            a, b = [x for x in match.groups() if x][:2]
            if sides_differ(a, b):
                return True
    for match in AT_ZERO.finditer(s.text):
        if sides_differ(next(x for x in match.groups() if x), None):
            return True
    for match in EXTREME.finditer(s.text):
        name, dim = match.group(1), match.group(2)
        if name not in g.info or _kind(g.value(name)) != "f":
            continue
        t, m = both(name)
        if not t.ndim or t.shape != m.shape or t.size == 0:
            continue
        axis = None if dim is None else ast.literal_eval(dim)
        for extreme in (np.max, np.min):
            try:
                if not np.array_equal(t == extreme(t, axis=axis, keepdims=True),
                                      m == extreme(m, axis=axis, keepdims=True)):
                    return True
            except (ValueError, IndexError):  # a dim out of range: the statement raises
                break
    return False


def _storage(value) -> int:
    return value.untyped_storage().data_ptr()


def _kind(value) -> str:
    return "b" if value.dtype == torch.bool else ("f" if value.is_floating_point() else "i")


def _broadcasts(small: tuple, big: tuple) -> bool:
    """Whether `small` broadcasts to exactly `big`."""
    if len(small) > len(big):
        return False
    return all(s in (1, b) for s, b in zip(small[::-1], big[::-1], strict=False))


def _fits_setitem(value: tuple, indexed: tuple) -> bool:
    """Whether x[index] = value takes a value of this shape: its leading size-1 dims dropped
    (as torch's setitem drops them), it broadcasts to exactly the indexed part."""
    while value and value[0] == 1:
        value = value[1:]
    return _broadcasts(value, indexed)


def _dims(g: Generator, ndim: int) -> int:
    return g.rng.randrange(-ndim, ndim) if ndim else 0


# -- the menu: each function returns a Statement for the generator to offer, or None --


def op_leaf(g: Generator):
    g.leaf(g.random_shape(), requires_grad=g.rng.random() < 0.8)
    return None


# Each form has a name: the statement's tag is "<family>:<name>", which KNOWN_GAPS can match.
UNARY = {"exp": "{x}.exp()", "tanh": "{x}.tanh()", "sigmoid": "{x}.sigmoid()",
         "relu": "{x}.relu()", "abs": "{x}.abs()", "sin": "{x}.sin()", "cos": "{x}.cos()",
         "neg": "-{x}", "neg()": "{x}.neg()", "sign": "{x}.sign()", "lib.exp": "lib.exp({x})",
         "F.relu": "F.relu({x})", "F.softplus": "F.softplus({x})", "pow2": "{x} ** 2",
         "pow3": "{x} ** 3", "pow(2)": "{x}.pow(2)", "lib.tanh": "lib.tanh({x})",
         "F.sigmoid": "F.sigmoid({x})", "absolute": "{x}.absolute()",
         "negative": "{x}.negative()", "lib.abs": "lib.abs({x})", "expm1": "{x}.expm1()",
         "square": "{x}.square()", "floor": "{x}.floor()", "ceil": "lib.ceil({x})",
         "trunc": "{x}.trunc()", "round": "{x}.round()", "round-decimals": "{x}.round(decimals=1)"}
POSITIVE = {"log": "{x}.log()", "sqrt": "{x}.sqrt()", "pow0.5": "{x} ** 0.5",
            "pow(1.5)": "{x}.pow(1.5)", "lib.log": "lib.log({x})", "lib.sqrt": "lib.sqrt({x})",
            "log1p": "{x}.log1p()", "log2": "lib.log2({x})", "log10": "{x}.log10()",
            "rsqrt": "{x}.rsqrt()"}
NONZERO = {"rdiv": "1.0 / {x}", "rdiv2": "2.0 / {x}", "pow-1": "{x} ** -1"}


def op_unary(g: Generator):
    x = g.pick()
    if x is None:
        return None
    roll = g.rng.random()
    forms, domain = ((UNARY, "small") if roll < 0.65 else
                     (POSITIVE, "positive") if roll < 0.85 else (NONZERO, "nonzero"))
    kind = g.rng.choice(list(forms))
    if kind in ROUNDINGS:  # a step function turns a last-bit difference upstream into a whole
        x = g.pick(lambda n: g.info[n].made_by == "leaf")  # one: only literals go in
        if x is None:
            return None
    name = g.new_name()
    text = f"{name} = " + forms[kind].format(x=g.safe(x, domain))
    return Statement(text, f"unary:{kind}", (name,), (x,))


ROUNDINGS = ("floor", "ceil", "trunc", "round", "round-decimals")


SCALAR = {"mul": "{x} * {c}", "add": "{x} + {c}", "sub": "{x} - {c}", "rsub": "{c} - {x}",
          "div": "{x} / {c}", "rmul": "{c} * {x}", "mul()": "{x}.mul({c})",
          "add()": "{x}.add({c})", "lib.pow-number-base": "lib.pow({p}, {x})",
          "rpow": "{p} ** {x}", "clamp": "{x}.clamp({c}, {d})", "clamp-min": "{x}.clamp(min={c})",
          "clamp-max": "{x}.clamp(max={c})", "lib.clamp": "lib.clamp({x}, {c}, {d})",
          "clip": "{x}.clip({c}, {d})", "add-alpha": "{x}.add({y}, alpha={c})",
          "lib.sub-alpha": "lib.sub({x}, {y}, alpha={c})"}


def op_scalar(g: Generator):
    x = g.pick()
    if x is None:
        return None
    kind = g.rng.choice(list(SCALAR))
    form = SCALAR[kind]
    c, d = sorted(round(g.rng.uniform(-1.5, 1.5), 2) for _ in range(2))
    p = round(g.rng.uniform(0.5, 2.5), 2)
    uses = (x,)
    y = ""
    if "{y}" in form:
        y, more = g.operand(g.shape(x), allow_number=False)
        uses = (x, *more)
    if kind == "div" and c == 0:
        c = 0.5
    name = g.new_name()
    source = form.format(x=g.safe(x, "small") if "{p}" in form else x, c=c, d=d, p=p, y=y)
    return Statement(f"{name} = {source}", f"scalar:{kind}", (name,), uses)


BINARY = {"add": "{x} + {y}", "sub": "{x} - {y}", "mul": "{x} * {y}", "div": "{x} / {ny}",
          "lib.maximum": "lib.maximum({x}, {y})", "lib.minimum": "lib.minimum({x}, {y})",
          "lib.add": "lib.add({x}, {y})", "lib.mul": "lib.mul({x}, {y})", "sub()": "{x}.sub({y})",
          "div()": "{x}.div({ny})", "where-max": "lib.where({x} > {y}, {x}, {y})",
          "where": "lib.where({x} > 0, {y}, {x})", "maximum": "{x}.maximum({y})",
          "pow": "{px} ** {y}", "clamp-min-tensor": "{x}.clamp(min={y})",
          "clamp-tensors": "{x}.clamp({y}, {y} + 1.0)", "multiply": "{x}.multiply({y})",
          "subtract": "{x}.subtract({y})", "divide": "{x}.divide({ny})",
          "lib.div": "lib.div({x}, {ny})"}


def op_more(g: Generator):
    """cumsum, logsumexp, flip, tril/triu, masked_fill, outer and dot."""
    x = g.pick()
    if x is None:
        return None
    shape, name = g.shape(x), g.new_name()
    ndim = len(shape)
    kind = g.rng.choice(["cumsum", "logsumexp", "flip", "triangle", "masked_fill", "outer",
                         "dot"])
    dim = g.rng.randrange(-max(ndim, 1), max(ndim, 1))
    if kind == "cumsum":
        text = f"{x}.cumsum({dim})" if g.rng.random() < 0.7 else f"lib.cumsum({x}, dim={dim})"
    elif kind == "logsumexp":
        text = f"{x}.logsumexp({dim}, keepdim={g.rng.random() < 0.4})"
    elif kind == "flip" and ndim:
        dims = g.rng.sample(range(ndim), g.rng.randint(1, ndim))
        text = f"{x}.flip({', '.join(map(str, dims))})"
    elif kind == "triangle" and ndim >= 2:
        text = f"{x}.{g.rng.choice(['tril', 'triu'])}({g.rng.randint(-1, 1)})"
    elif kind == "masked_fill":
        text = f"{x}.masked_fill({x} > {round(g.rng.uniform(-1, 1), 2)}, " \
               f"{round(g.rng.uniform(-2, 2), 2)})"
    elif kind in ("outer", "dot") and ndim == 1:
        y, uses = g.operand(shape, allow_number=False)
        if kind == "outer":
            return Statement(f"{name} = {x}.outer({y})", "more:outer", (name,), (x, *uses))
        return Statement(f"{name} = lib.dot({x}, {y})", "more:dot", (name,), (x, *uses))
    else:
        return None
    return Statement(f"{name} = {text}", f"more:{kind}", (name,), (x,))


def op_binary(g: Generator):
    x = g.pick()
    if x is None:
        return None
    kind = g.rng.choice(list(BINARY))
    form = BINARY[kind]
    y, uses = g.operand(g.shape(x), allow_number="clamp" not in kind and "max" not in kind
                        and "min" not in kind)
    uses = (x, *uses)
    if g.rng.random() < 0.3 and y in g.info:  # the other order: the operand's shape first
        x, y = y, x
    ny = y
    if "{ny}" in form:
        if y in g.info:
            ny = g.safe(y, "nonzero")
        elif y.startswith("lib.tensor"):
            ny = f"({y} * {y} + 0.5)"
        elif abs(float(y)) < 0.2:
            ny = "0.5"
    px = g.safe(x, "positive") if "{px}" in form else x
    if "{px}" in form and y in g.info:
        y = g.safe(y, "small")
    name = g.new_name()
    text = f"{name} = " + form.format(x=x, y=y, ny=ny, px=px)
    if kind == "pow" and not y.startswith(("lib.", "v", "(")):
        kind = "pow-number"
    return Statement(text, f"binary:{kind}", (name,), tuple(dict.fromkeys(uses)))


def op_reduce(g: Generator):
    x = g.pick()
    if x is None:
        return None
    ndim = g.value(x).dim()
    method = g.rng.choice(["sum", "sum", "sum", "mean", "amax", "amin", "std", "var", "norm",
                           "max", "min"])
    keepdim = g.rng.random() < 0.4
    name = g.new_name()
    if method in ("max", "min"):
        if ndim == 0 or g.rng.random() < 0.3:
            return Statement(f"{name} = {x}.{method}()", f"reduce:{method}-all", (name,), (x,))
        idx = g.new_name()
        d = _dims(g, ndim)
        return Statement(f"{name}, {idx} = {x}.{method}(dim={d}, keepdim={keepdim})",
                         f"reduce:{method}-dim", (name, idx), (x,))
    if ndim == 0 or g.rng.random() < 0.25:
        form = f"{x}.{method}()" if g.rng.random() < 0.7 else f"lib.{method}({x})"
        if method in ("std", "var") and g.value(x).numel() < 2:
            form = f"{x}.{method}(correction=0)"
        return Statement(f"{name} = {form}", f"reduce:{method}-all", (name,), (x,))
    if method in ("sum", "mean", "amax", "amin") and ndim >= 2 and g.rng.random() < 0.3:
        dims = tuple(sorted(g.rng.sample(range(ndim), 2)))
        dim = repr(dims)
    else:
        dim = str(_dims(g, ndim))
    if method in ("std", "var"):
        extra = ", correction=0" if g.rng.random() < 0.5 else ""
        text = f"{name} = {x}.{method}(dim={dim}{extra}, keepdim={keepdim})"
    elif method == "norm":
        text = f"{name} = {x}.norm(dim={dim}, keepdim={keepdim})"
    else:
        text = f"{name} = {x}.{method}(dim={dim}, keepdim={keepdim})"
    return Statement(text, f"reduce:{method}-dim", (name,), (x,))


def op_softmax(g: Generator):
    x = g.pick()
    if x is None:
        return None
    ndim = g.value(x).dim()
    d = _dims(g, max(ndim, 1))
    form = g.rng.choice(["{x}.softmax({d})", "{x}.log_softmax(dim={d})", "F.softmax({x}, dim={d})",
                         "F.log_softmax({x}, dim={d})", "lib.softmax({x}, {d})",
                         "lib.log_softmax({x}, dim={d})"])
    name = g.new_name()
    tag = "softmax:" + ("log_softmax" if "log" in form else "softmax")
    return Statement(f"{name} = " + form.format(x=g.safe(x, "small"), d=d), tag, (name,), (x,))


def op_matmul(g: Generator):
    x = g.pick(lambda n: 1 <= g.value(n).dim() <= 3)
    if x is None:
        return None
    shape = g.shape(x)
    k = shape[-1]
    if len(shape) == 1:
        other = g.rng.choice([(k,), (k, g.rng.randint(1, 3)), (2, k, g.rng.randint(1, 3))])
    elif len(shape) == 2:
        other = g.rng.choice([(k,), (k, g.rng.randint(1, 4))])
    else:
        other = g.rng.choice([(k, g.rng.randint(1, 3)), (shape[0], k, g.rng.randint(1, 3))])
    found = g.pick(lambda n: g.shape(n) == other) if g.rng.random() < 0.4 else None
    y = found or g.leaf(other, requires_grad=g.rng.random() < 0.8)
    forms = ["{x} @ {y}", "lib.matmul({x}, {y})", "{x}.matmul({y})"]
    if len(shape) == 2 and len(other) == 2:
        forms += ["{x}.mm({y})", "lib.mm({x}, {y})"]
    if len(shape) == 3 and len(other) == 3:
        forms += ["lib.bmm({x}, {y})", "{x}.bmm({y})"]
    if len(other) == 2 and g.rng.random() < 0.3:  # F.linear(x, W, b) with W = y.t()
        name = g.new_name()
        bias = g.leaf((other[1],))
        return Statement(f"{name} = F.linear({x}, {y}.t(), {bias})", "linear", (name,),
                         (x, y, bias))
    form = g.rng.choice(forms)
    name = g.new_name()
    strided = "" if g.value(x).is_contiguous() else "-strided"
    tag = f"matmul:{len(shape)}x{len(other)}{strided}"
    return Statement(f"{name} = " + form.format(x=x, y=y), tag, (name,), (x, y))


def _factorizations(n: int, parts: int) -> list:
    if parts == 1:
        return [(n,)]
    found = []
    for d in range(1, n + 1):
        if n % d == 0:
            found += [(d, *rest) for rest in _factorizations(n // d, parts - 1)]
    return found


def op_view(g: Generator):
    x = g.pick()
    if x is None:
        return None
    shape, ndim = g.shape(x), g.value(x).dim()
    name = g.new_name()
    choices = ["reshape", "view", "flatten", "unsqueeze", "squeeze", "expand", "clone",
               "contiguous", "detach", "repeat", "view-1", "swap", "as"]
    if ndim >= 2:
        choices += ["transpose", "permute", "transpose", "permute"]
    if ndim <= 2:
        choices += ["t"]
    if ndim == 2:
        choices += ["T"]
    kind = g.rng.choice(choices)
    if kind in ("reshape", "view"):
        new = g.rng.choice(_factorizations(math.prod(shape), g.rng.randint(1, 3)))
        if g.rng.random() < 0.3 and new:
            new = tuple(-1 if i == 0 else s for i, s in enumerate(new))
        form = g.rng.choice([f"{x}.{kind}({', '.join(map(str, new))})",
                             f"{x}.{kind}({tuple(new)!r})",
                             f"lib.reshape({x}, {tuple(new)!r})" if kind == "reshape"
                             else f"{x}.view({', '.join(map(str, new))})"])
    elif kind == "view-1":
        form = f"{x}.view(-1)"
    elif kind == "flatten":
        form = g.rng.choice([f"{x}.flatten()", f"lib.flatten({x})"]) if ndim < 2 or \
            g.rng.random() < 0.5 else f"{x}.flatten({g.rng.randint(0, ndim - 2)}, {ndim - 1})"
    elif kind == "unsqueeze":
        d = g.rng.randint(-ndim - 1, ndim)
        form = g.rng.choice([f"{x}.unsqueeze({d})", f"lib.unsqueeze({x}, {d})"])
    elif kind == "squeeze":
        form = g.rng.choice([f"{x}.squeeze()", f"lib.squeeze({x})"]) if ndim == 0 or \
            g.rng.random() < 0.4 else f"{x}.squeeze({_dims(g, ndim)})"
    elif kind == "as":  # view_as, reshape_as, expand_as another variable
        numel = math.prod(shape)
        y = g.pick(lambda n: math.prod(g.shape(n)) == numel and n != x, kind="fbi")
        z = g.pick(lambda n: _broadcasts(shape, g.shape(n)) and n != x, kind="fbi")
        forms = ([f"{x}.view_as({y})", f"{x}.reshape_as({y})"] if y else []) + \
            ([f"{x}.expand_as({z})"] if z else [])
        if not forms:
            return None
        form = g.rng.choice(forms)
        kind = form.split(".")[1].split("(")[0]
        other = z if kind == "expand_as" else y
        return Statement(f"{name} = {form}", f"view:{kind}", (name,), (x, other))
    elif kind == "expand":
        sizes = [(g.rng.randint(2, 3) if s == 1 and g.rng.random() < 0.7 else
                  (-1 if g.rng.random() < 0.3 else s)) for s in shape]
        lead = [2] if g.rng.random() < 0.3 and len(shape) < 4 else []
        if math.prod(abs(s) for s in lead + sizes) > MAX_NUMEL:
            lead, sizes = [], list(shape)
        form = f"{x}.expand({', '.join(map(str, lead + sizes))})" if lead + sizes else \
            f"{x}.expand(())"
    elif kind == "repeat":
        reps = [g.rng.choice([1, 1, 2]) for _ in range(ndim + g.rng.randint(0, 1))] or [1]
        if math.prod(reps) * math.prod(shape) > MAX_NUMEL:
            reps = [1] * len(reps)
        form = f"{x}.repeat({', '.join(map(str, reps))})"
    elif kind == "transpose":
        a, b = g.rng.sample(range(ndim), 2)
        form = g.rng.choice([f"{x}.transpose({a}, {b})", f"lib.transpose({x}, {a}, {b})"])
    elif kind == "swap":
        if ndim < 2:
            return None
        a, b = g.rng.sample(range(ndim), 2)
        form = g.rng.choice([f"{x}.swapaxes({a}, {b})", f"lib.swapaxes({x}, {a}, {b})",
                             f"{x}.swapdims({a}, {b})"])
    elif kind == "permute":
        order = list(range(ndim))
        g.rng.shuffle(order)
        form = g.rng.choice([f"{x}.permute({', '.join(map(str, order))})",
                             f"lib.permute({x}, {tuple(order)!r})"])
    elif kind == "t":
        form = f"{x}.t()"
    elif kind == "T":
        form = f"{x}.T"
    else:
        form = f"{x}.{kind}()"
    return Statement(f"{name} = {form}", f"view:{kind}", (name,), (x,))


def op_getitem(g: Generator):
    x = g.pick(lambda n: g.value(n).dim() >= 1, kind="fb")
    if x is None:
        return None
    index, tag, uses = _an_index(g, x)
    name = g.new_name()
    return Statement(f"{name} = {x}[{index}]", f"getitem:{tag}", (name,), (x, *uses))


def _an_index(g: Generator, x: str) -> tuple:
    """(index source, kind, variables used) for indexing variable x."""
    shape = g.shape(x)
    ndim = len(shape)
    roll = g.rng.random()
    if roll < 0.45:  # basic: ints, slices, None, ...
        parts, kinds = [], set()
        for size in shape[: g.rng.randint(1, ndim)]:
            r = g.rng.random()
            if r < 0.35:
                parts.append(str(g.rng.randrange(-size, size)))
                kinds.add("int")
            elif r < 0.9:
                start = g.rng.randint(0, size - 1)
                stop = g.rng.randint(start + 1, size)
                step = g.rng.choice([1, 1, 2])
                text = f"{start if start else ''}:{stop if stop != size else ''}"
                parts.append(text + (f":{step}" if step != 1 else ""))
                kinds.add("slice")
            else:
                parts.append(":")
        if g.rng.random() < 0.15:
            parts.insert(g.rng.randint(0, len(parts)), "None")
            kinds.add("none")
        if g.rng.random() < 0.15 and len(parts) < ndim:
            parts.append("...")
            kinds.add("ellipsis")
        ints = sum(p.lstrip("-").isdigit() for p in parts)
        if ints == ndim and "None" not in parts:
            kinds = {"0d"}
        return ", ".join(parts), "-".join(sorted(kinds)) or "full", ()
    if roll < 0.7:  # a list or an index tensor along one dim
        dim = g.rng.randrange(ndim)
        picks = [g.rng.randrange(-shape[dim], shape[dim]) for _ in range(g.rng.randint(1, 3))]
        as_tensor = g.rng.random() < 0.4
        index = f"lib.tensor({picks!r})" if as_tensor else repr(picks)
        return ", ".join([":"] * dim + [index]), "tensor" if as_tensor else "list", ()
    if roll < 0.8 and ndim >= 2:  # two lists, paired
        n = g.rng.randint(1, 3)
        a = [g.rng.randrange(shape[0]) for _ in range(n)]
        b = [g.rng.randrange(shape[1]) for _ in range(n)]
        return f"{a!r}, {b!r}", "pair", ()
    if _kind(g.value(x)) == "f":  # a mask
        return f"{x} > {round(g.rng.uniform(-1, 1), 2)}", "mask", ()
    mask = [g.rng.random() < 0.5 for _ in range(shape[0])]
    return f"lib.tensor({mask!r})", "mask-dim0", ()


def op_split(g: Generator):
    x = g.pick(lambda n: g.value(n).dim() >= 1 and max(g.shape(n)) >= 2)
    if x is None:
        return None
    shape = g.shape(x)
    dims = [d for d in range(len(shape)) if shape[d] >= 2]
    dim = g.rng.choice(dims)
    if g.rng.random() < 0.5:
        size = g.rng.randint(1, shape[dim] - 1)
        form = g.rng.choice([f"{x}.split({size}, dim={dim})", f"lib.split({x}, {size}, {dim})"])
        count = len(g.value(x).split(size, dim))
        tag = "split"
    else:
        chunks = g.rng.randint(2, shape[dim])
        form = g.rng.choice([f"{x}.chunk({chunks}, dim={dim})", f"lib.chunk({x}, {chunks}, {dim})"])
        count = len(g.value(x).chunk(chunks, dim))
        tag = "chunk"
    names = tuple(g.new_name() for _ in range(count))
    left = ", ".join(names) + ("," if count == 1 else "")
    return Statement(f"{left} = {form}", tag, names, (x,))


def op_cat(g: Generator):
    x = g.pick(lambda n: g.value(n).dim() >= 1)
    if x is None:
        return None
    shape = g.shape(x)
    stack = g.rng.random() < 0.4
    dim = g.rng.randrange(len(shape) + (1 if stack else 0))
    if stack:
        other = shape
    else:
        other = tuple(g.rng.randint(1, 2) if i == dim else s for i, s in enumerate(shape))
    if math.prod(shape) * 2 > MAX_NUMEL * 2:
        return None
    found = g.pick(lambda n: g.shape(n) == other and n != x)
    y = found or g.leaf(other, requires_grad=g.rng.random() < 0.6)
    name = g.new_name()
    if stack:
        form = g.rng.choice([f"lib.stack([{x}, {y}], dim={dim})", f"lib.stack(({y}, {x}), {dim})"])
    else:
        form = g.rng.choice([f"lib.cat([{x}, {y}], dim={dim})", f"lib.cat(({y}, {x}), {dim})",
                             f"lib.concat([{x}, {y}], dim={dim})"])
    return Statement(f"{name} = {form}", "stack" if stack else "cat", (name,), (x, y))


def op_compare(g: Generator):
    x = g.pick()
    if x is None:
        return None
    y, uses = g.operand(g.shape(x))
    op = g.rng.choice([">", "<", ">=", "<=", "==", "!="])
    name = g.new_name()
    return Statement(f"{name} = {x} {op} {y}", "compare", (name,), (x, *uses))


def op_argmax(g: Generator):
    x = g.pick(lambda n: g.value(n).dim() >= 1)
    if x is None:
        return None
    name = g.new_name()
    fn = g.rng.choice(["argmax", "argmin"])
    dim = _dims(g, g.value(x).dim())
    return Statement(f"{name} = {x}.{fn}(dim={dim})", "argmax", (name,), (x,))


def op_loss(g: Generator):
    kind = g.rng.choice(["cross_entropy", "cross_entropy", "nll_loss", "mse_loss", "l1_loss",
                         "bce_logits", "bce"])
    name = g.new_name()
    reduction = g.rng.choice(["mean", "mean", "sum", "none"])
    if kind in ("cross_entropy", "nll_loss"):
        x = g.pick(lambda n: g.value(n).dim() in (1, 2))
        if x is None:
            return None
        shape = g.shape(x)
        classes = shape[-1]
        labels = [g.rng.randrange(classes) for _ in range(shape[0] if len(shape) == 2 else 1)]
        ignore = g.rng.random() < 0.2
        if ignore:
            labels = [-100 if g.rng.random() < 0.5 else t for t in labels]
        target = f"lib.tensor({labels!r})" if len(shape) == 2 else f"lib.tensor({labels[0]})"
        options = ""
        if g.rng.random() < 0.25:
            options += ", weight=" + literal(g.values((classes,), 0.1, 2.0))
        if kind == "cross_entropy" and g.rng.random() < 0.2:
            options += ", label_smoothing=0.1"
        if kind == "cross_entropy" and g.rng.random() < 0.08 and not ignore:  # probabilities
            target = f"{literal(g.values(shape, 0.0, 1.0))}.softmax(-1)"
        if reduction != "mean":
            options += f", reduction={reduction!r}"
        xs = g.safe(x, "small")
        if kind == "nll_loss":
            xs = f"F.log_softmax({xs}, dim={len(shape) - 1})"
        return Statement(f"{name} = F.{kind}({xs}, {target}{options})", f"loss:{kind}",
                         (name,), (x,))
    x = g.pick()
    if x is None:
        return None
    shape = g.shape(x)
    found = g.pick(lambda n: g.shape(n) == shape and n != x) if g.rng.random() < 0.4 else None
    if kind in ("mse_loss", "l1_loss"):
        y = found or literal(g.values(shape))
        text = f"{name} = F.{kind}({x}, {y}, reduction={reduction!r})"
    elif kind == "bce_logits":
        y = literal(g.values(shape, 0.0, 1.0))
        text = f"{name} = F.binary_cross_entropy_with_logits({g.safe(x, 'small')}, {y}, " \
               f"reduction={reduction!r})"
    else:
        y = literal(g.values(shape, 0.0, 1.0))
        text = f"{name} = F.binary_cross_entropy({g.safe(x, 'small')}.sigmoid(), {y}, " \
               f"reduction={reduction!r})"
    uses = (x, found) if found and found in text else (x,)
    return Statement(text, f"loss:{kind}", (name,), uses)


def op_conv(g: Generator):
    """A convolutional op on a 4-D (N, C, H, W) tensor: conv2d, a pooling or unfold."""
    x = g.pick(lambda n: g.value(n).dim() == 4 and min(g.shape(n)[2:]) >= 2)
    if x is None:
        x = g.leaf((g.rng.randint(1, 2), g.rng.randint(1, 3), g.rng.randint(2, 5),
                    g.rng.randint(2, 5)))
    _, channels, height, width = g.shape(x)
    k = g.rng.randint(1, min(height, width, 3))
    stride = g.rng.randint(1, 2)
    padding = g.rng.randint(0, k // 2)
    kind = g.rng.choice(["conv2d", "conv2d", "max_pool2d", "avg_pool2d", "unfold"])
    name = g.new_name()
    if kind == "conv2d":
        groups = g.rng.choice([d for d in (1, channels) if channels % d == 0])
        weight = g.leaf((g.rng.randint(1, 2) * groups, channels // groups, k, k))
        pad = "'same'" if stride == 1 and g.rng.random() < 0.3 else padding
        text = f"{name} = F.conv2d({x}, {weight}, stride={stride}, padding={pad}, groups={groups})"
        return Statement(text, "conv2d", (name,), (x, weight))
    if kind == "unfold":
        text = f"{name} = F.unfold({x}, {k}, padding={padding}, stride={stride})"
    else:
        text = f"{name} = F.{kind}({x}, {k}, stride={stride}, padding={padding})"
    return Statement(text, kind, (name,), (x,))


def op_misuse(g: Generator):
    """A statement that is often an error in torch: both libraries must raise, or neither."""
    x = g.pick(kind="fbi")
    if x is None:
        return None
    shape, ndim = g.shape(x), g.value(x).dim()
    name = g.new_name()
    forms = [f"{x}.softmax({ndim})", f"{x}.softmax({ndim + 1})", f"{x}.sum(dim={ndim})",
             f"{x}.view({math.prod(shape) + 1})",
             f"{x}.transpose(0, {ndim})", f"{x}.expand({', '.join(['3'] * max(ndim, 1))})",
             f"{x} + lib.ones({tuple(s + 1 for s in shape)!r}, dtype=lib.float64)",
             f"{x}.unsqueeze({ndim + 2})", f"{x}.squeeze({ndim})"]
    if ndim:
        forms += [f"{x}[{shape[0]}]", f"{x}[..., {shape[-1]}]", f"{x}[{[shape[0]]!r}]",
                  f"{x}.permute({', '.join(['0'] * ndim)})", f"{x}.split(0)",
                  f"{x}.chunk(0)", f"{x} @ {x}" if ndim != 2 else f"{x}.mm({x}.t().t()[:1])",
                  f"{x}.max(dim={ndim})", f"lib.cat([{x}, {x}.unsqueeze(0)])",
                  f"{x}.log_softmax(dim=-{ndim + 1})"]
    form = g.rng.choice(forms)
    return Statement(f"{name} = {form}", "misuse", (name,), (x,))


# -- in-place --

INPLACE = {"add_": "{x}.add_({y})", "sub_": "{x}.sub_({y})", "mul_": "{x}.mul_({y})",
           "div_": "{x}.div_({ny})", "+=": "{x} += {y}", "-=": "{x} -= {y}", "*=": "{x} *= {y}",
           "/=": "{x} /= {ny}", "add_-alpha": "{x}.add_({y}, alpha={c})",
           "clamp_": "{x}.clamp_({c}, {d})", "clamp_-min": "{x}.clamp_(min={c})",
           "clamp_-max": "{x}.clamp_(max={d})", "relu_": "{x}.relu_()",
           "sigmoid_": "{x}.sigmoid_()", "tanh_": "{x}.tanh_()", "exp_": "{x}.exp_()",
           "abs_": "{x}.abs_()", "neg_": "{x}.neg_()", "pow_": "{x}.pow_(2)",
           "relu-inplace": "F.relu({x}, inplace=True)"}


def _inplace_target(g: Generator) -> str | None:
    """A float variable to write into: intermediates, views, bases with views; leaves rarely."""
    names = g.variables()
    if not names:
        return None
    weights = []
    for n in names:
        t = g.value(n)
        if _is_leaf(t) and t.requires_grad:  # torch refuses: the error must match
            weights.append(0.1)
        elif t._is_view() or g.aliases(n):
            weights.append(4.0)
        elif _is_leaf(t):
            weights.append(1.0)
        else:
            weights.append(2.5)
    return g.rng.choices(names, weights)[0]


def op_inplace(g: Generator):
    x = _inplace_target(g)
    if x is None:
        return None
    kind = g.rng.choice(list(INPLACE))
    form = INPLACE[kind]
    y, uses = g.operand(g.shape(x))
    c, d = sorted(round(g.rng.uniform(-1.5, 1.5), 2) for _ in range(2))
    ny = y
    if "{ny}" in form:
        if y in g.info:
            ny = g.safe(y, "nonzero")
        elif y.startswith("lib.tensor"):
            ny = f"({y} * {y} + 0.5)"
        elif abs(float(y)) < 0.2:
            ny = "0.5"
    text = form.format(x=x, y=y, ny=ny, c=c, d=d)
    if g.rng.random() < 0.1:
        text = "with lib.no_grad(): " + text
    if "{y}" not in form and "{ny}" not in form:
        uses = ()
    return Statement(text, f"inplace:{kind}", (), (x, *uses), target=x)


def op_fill(g: Generator):
    x = _inplace_target(g)
    if x is None:
        return None
    kind = g.rng.choice(["fill_", "zero_", "copy_", "copy_", "fill_-tensor"])
    uses = (x,)
    if kind == "fill_":
        text = f"{x}.fill_({round(g.rng.uniform(-2, 2), 2)})"
    elif kind == "zero_":
        text = f"{x}.zero_()"
    elif kind == "fill_-tensor":
        y = g.pick(lambda n: g.value(n).dim() == 0)
        if y is None:
            return None
        text, uses = f"{x}.fill_({y})", (x, y)
    else:
        y, more = g.operand(g.shape(x), allow_number=False)
        text, uses = f"{x}.copy_({y})", (x, *more)
    if g.rng.random() < 0.1:
        text = "with lib.no_grad(): " + text
    return Statement(text, f"inplace:{kind}", (), uses, target=x)


def op_setitem(g: Generator):
    x = _inplace_target(g)
    if x is None or g.value(x).dim() == 0 or g.value(x).numel() == 0:
        return None
    index, kind, index_uses = _an_index(g, x)
    indexed = tuple(g.value(x)[_evaluate_index(g, x, index)].shape)
    roll = g.rng.random()
    if roll < 0.5:
        value, uses = repr(round(g.rng.uniform(-2, 2), 2)), ()
    elif roll < 0.7:  # a constant that broadcasts to the indexed part (never grows it)
        shape = g.broadcastable_shape(indexed)[-len(indexed):] if indexed else ()
        if g.rng.random() < 0.15:  # leading size-1 dims, which torch drops (x[0] = ones(1))
            shape = (1,) * g.rng.randint(1, 2) + shape
        value, uses = literal(g.values(shape)), ()
    else:
        found = g.pick(lambda n: _fits_setitem(g.shape(n), indexed) and n != x)
        if found is None:
            found = g.leaf(g.broadcastable_shape(indexed), requires_grad=g.rng.random() < 0.6)
            if not _fits_setitem(g.shape(found), indexed):
                return None
        value, uses = found, (found,)
    text = f"{x}[{index}] = {value}"
    if g.rng.random() < 0.1:
        text = "with lib.no_grad(): " + text
    return Statement(text, f"setitem:{kind}", (), (x, *index_uses, *uses), target=x)


def _evaluate_index(g: Generator, x: str, index: str):
    return eval(f"_index[{index}]", {"lib": torch, "_index": _IndexOf(), x: g.value(x)})


class _IndexOf:
    def __getitem__(self, index):
        return index


def op_view_then(g: Generator):
    """Make a view of an intermediate (so that later in-place statements have views to use)."""
    x = g.pick(lambda n: g.value(n).dim() >= 1 and not _is_leaf(g.value(n)))
    if x is None:
        return None
    name = g.new_name()
    shape = g.shape(x)
    form = g.rng.choice([f"{x}[{g.rng.randrange(shape[0])}]", f"{x}[:{max(1, shape[0] - 1)}]",
                         f"{x}.view(-1)" if g.value(x).is_contiguous() else f"{x}.reshape(-1)",
                         f"{x}.t()" if len(shape) <= 2 else f"{x}.transpose(0, 1)",
                         f"{x}.unsqueeze(0)", f"{x}[..., :1]"])
    return Statement(f"{name} = {form}", "view-of-intermediate", (name,), (x,))


def op_requires_grad(g: Generator):
    x = g.pick(lambda n: not g.value(n).requires_grad)
    if x is None:
        return None
    name = g.new_name()
    form = g.rng.choice([f"{x}.detach().requires_grad_()", f"{x}.clone().requires_grad_()"])
    return Statement(f"{name} = {form}", "requires_grad_", (name,), (x,))


PURE_MENU = [(3, op_leaf), (14, op_unary), (7, op_scalar), (14, op_binary), (10, op_reduce),
             (4, op_softmax), (6, op_matmul), (14, op_view), (10, op_getitem), (4, op_split),
             (4, op_cat), (2, op_compare), (2, op_argmax), (5, op_loss), (2, op_misuse),
             (1, op_requires_grad), (3, op_conv), (4, op_more)]
INPLACE_MENU = [(22, op_inplace), (8, op_fill), (14, op_setitem), (8, op_view_then)]


# ---- known gaps ----------------------------------------------------------------------------------


# Each gap's predicate sees the generator (the program so far, run in both libraries) and the
# statement about to run. The order matters only to name a disagreement whose program entered
# several gaps (classify): the more specific come first.


def _tag_is(*tags: str):
    return lambda g, s: s.tag in tags


def _reduces_to_zero(*tags: str):
    """A reduction (std, norm) with a result of zero, or of rounding errors only (std of equal
    values): its derivative has a kink there, and near it amplifies rounding errors."""
    def applies(g: Generator, s: Statement) -> bool:
        if not s.tag.startswith(tags):
            return False
        error, space = g.preview(s)
        if error is not None:
            return False
        scale = max(1.0, float(g.value(s.uses[0]).detach().abs().max()))
        return bool((space[s.defines[0]].abs() <= 1e-9 * scale).any())
    return applies


def _layout_differs(g: Generator, name: str) -> bool:
    """Whether the variable's dims lie in memory in another order in the two libraries (then
    contiguity, view() and reshape()'s copies differ, now or after slicing)."""
    t, m = g.value(name), g.run.spaces[mg].get(name)
    if not isinstance(m, mg.Tensor) or t.numel() == 0:
        return False
    return _dim_order(t.shape, t.stride()) != _dim_order(m.shape, m.array.strides)


def _dim_order(shape, strides) -> tuple:
    """The dims of size > 1 from the largest stride to the smallest."""
    return tuple(sorted((d for d in range(len(shape)) if shape[d] > 1),
                        key=lambda d: (-strides[d], d)))


def _layout_from(*origins: str):
    """A view (or reshape) of a tensor laid out differently in the two libraries, the
    difference made by an operation in `origins`; or an in-place write near a reshape that
    copied because of it."""
    def applies(g: Generator, s: Statement) -> bool:
        viewed = s.uses[0] if s.tag.startswith(("view", "getitem", "split", "chunk")) else None
        if viewed in g.info and g.info[viewed].layout.startswith(origins):
            return True
        return any(g.info[n].alias_break.startswith(tuple("copies:" + o for o in origins))
                   for n in _written(g, s))
    return applies


def _written(g: Generator, s: Statement) -> list:
    """The variables whose memory an in-place statement writes (in torch or in minigrad)."""
    return g.neighbours(s.target) if s.inplace and s.target in g.info else []


def _overlapping_operand(g: Generator, s: Statement) -> bool:
    """An operand sharing memory with the written tensor, one of the two with gaps in memory
    (torch checks overlap only between dense tensors)."""
    written = set(_written(g, s))
    operands = [n for n in s.uses if n in written and n != s.target]
    return any(_has_gaps(g.value(n)) or _has_gaps(g.value(s.target)) for n in operands)


def _same_elements_other_size_1_strides(g: Generator, s: Statement) -> bool:
    """An in-place op whose operand is the written tensor's very elements (one start, one
    shape) with torch strides that differ only on size-1 dims, where a stride moves nothing."""
    if not s.inplace or s.target not in g.info:
        return False
    written, target = set(_written(g, s)), _written_view(g, s)
    for name in s.uses:
        if name in written and name != s.target:
            t = g.value(name)
            if (t.data_ptr() == target.data_ptr() and t.squeeze().shape == target.squeeze().shape
                    and t.squeeze().stride() == target.squeeze().stride()
                    and t.stride() != target.stride()):
                return True
    return False


def _written_view(g: Generator, s: Statement):
    """What an in-place statement writes through in torch: x[index] for x[index] = v with a
    basic index (copy_ into that view: v3[::2] = v2 for a size-1 v3 compares the strides of
    v3[::2] and v2), the target itself otherwise."""
    target = g.value(s.target)
    text = s.text.removeprefix("with lib.no_grad(): ")
    if not s.tag.startswith("setitem:") or not text.startswith(f"{s.target}["):
        return target
    index_text = text[len(s.target) + 1:].rsplit("] = ", 1)[0]
    try:
        index = eval(f"_index[{index_text}]", {"lib": torch, "_index": _IndexOf()})
    except NameError:  # an index naming tensors is advanced: index_put_, no view
        return target
    parts = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(p, int | slice) or p is None or p is Ellipsis for p in parts):
        return target
    return target[index]


def _has_gaps(t) -> bool:
    """Whether a torch tensor's elements leave gaps in the memory they span (not dense)."""
    dims = sorted((st, size) for size, st in zip(t.shape, t.stride(), strict=True) if size > 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return True
        expected *= size
    return False


@dataclass(frozen=True)
class Gap:
    """A class of disagreement known on the current core: why, and which statements enter it."""

    reason: str
    applies: object  # (generator, statement) -> bool, asked before the statement runs


KNOWN_GAPS: dict = {
    # -- missing names and different results of single operations --
    "norm-at-zero-second-derivative": Gap(
        "the second derivative of norm() at a zero vector: NaN in torch, finite in minigrad "
        "(documented in docs/pytorch-names.md as 0; it is the identity: x / 1 there)",
        _reduces_to_zero("reduce:norm")),
    "bce-double-backward-torch-eps": Gap(
        "second derivatives of F.binary_cross_entropy: torch's formula adds 1e-12 to x and "
        "1 - x, so torch is off by ~1e-9 relative where x(1-x) is small; minigrad's is exact "
        "(checked against finite differences)", _tag_is("loss:bce")),
    # -- views and aliasing --
    "result-layout-differs": Gap(
        "results laid out differently in memory: advanced indexing of a non-contiguous "
        "tensor (torch's result follows the input's layout, minigrad's is contiguous, as torch's "
        "is for a contiguous input), cat/stack of transposed tensors, "
        "softmax/log_softmax of one and sum/mean/amax over the outer dim of a permuted one keep "
        "NumPy's order (not contiguous; torch's are), x.t().clone() is contiguous (torch keeps "
        "the strides), a + b of a transposed a and a contiguous b follows NumPy's choice (torch "
        "follows a), a loss with reduction='none' of a permuted input, flip, cumsum, "
        "masked_fill or tril/triu of a transposed one: view() raises where "
        "torch's works or the other way round, reshape() copies where torch's views, and "
        "overlap checks (which torch makes only between dense tensors) differ",
        _layout_from("getitem:list", "getitem:tensor", "getitem:pair", "getitem:mask",
                     "softmax:", "cat", "stack", "view:clone", "requires_grad_", "binary:",
                     "scalar:", "reduce:", "loss:", "more:")),
    "inplace-overlapping-operand": Gap(
        "an in-place op whose operand shares memory with the written tensor while one of them "
        "has gaps in memory (v0 *= v0[:, :1]): torch checks no overlap there and reads values "
        "it has already overwritten, in its loop's order; minigrad computes from the old "
        "values (or refuses, as torch does for dense operands)", _overlapping_operand),
    "overlap-by-size-1-strides": Gap(
        "an in-place op whose operand is the written tensor's very elements with other strides "
        "on size-1 dims (v2 = v0.t().reshape(1, 2); v2 -= v0.t(), or v3[::2] = v2 for a "
        "size-1 v2 and v3 = v2.expand_as(v2)): torch compares strides on size-1 dims too and "
        "calls the two a partial overlap; minigrad ignores strides on size-1 dims (NumPy's "
        "there are often not torch's: reshape keeps the old one), so it sees the same "
        "elements and computes (the values torch gives on a clone)",
        _same_elements_other_size_1_strides),
}


# ---- shrinking -----------------------------------------------------------------------------------


def shrink(program: Program, disagreement: Disagreement, budget: int = 400) -> tuple:
    """A smaller program that still disagrees the same way (the same kind, at the same kind of
    statement, in the same class): (program, its disagreement)."""
    goal = (disagreement.signature, classify(program, disagreement))
    replayer = Generator()
    runs = 0

    def still(candidate: Program):
        nonlocal runs, best_replayed
        runs += 1
        replayed, found = replayer.replay(candidate)
        if found is None or (found.signature, classify(replayed, found)) != goal:
            return None
        best_replayed = replayed
        return found

    best, best_found, best_replayed = program, disagreement, program
    # Cut what follows the disagreement, then remove statements (with those that need them).
    if disagreement.index < len(program.statements):
        cut = replace(program, statements=program.statements[: disagreement.index + 1],
                      outputs=[])
        found = still(cut)
        if found is not None:
            best, best_found = cut, found
    changed = True
    while changed and runs < budget:
        changed = False
        for chunk in (8, 4, 2, 1):
            i = len(best.statements) - 1
            while i >= 0 and runs < budget:
                drop = set(range(max(0, i - chunk + 1), i + 1))
                candidate = _without(best, drop)
                if candidate is not None and len(candidate.statements) < len(best.statements):
                    found = still(candidate)
                    if found is not None:
                        best, best_found, changed = candidate, found, True
                        i = min(i, len(best.statements)) - 1
                        continue
                i -= chunk
        for candidate in _bypasses(best):
            if runs >= budget:
                break
            found = still(candidate)
            if found is not None:
                best, best_found, changed = candidate, found, True
                break
        for k in range(len(best.outputs) - 1, -1, -1):
            if runs >= budget or len(best.outputs) <= 1:
                break
            candidate = replace(best, outputs=best.outputs[:k] + best.outputs[k + 1:])
            found = still(candidate)
            if found is not None:
                best, best_found, changed = candidate, found, True
    best, best_found = _simplify_constants(best, best_found, still, lambda: runs < budget)
    still(best)  # once more, to return the program with the gaps its statements enter
    return best_replayed, best_found


def _without(program: Program, drop: set) -> Program | None:
    """The program without statements `drop` and every later statement that needs them (when
    that leaves the loss with no term, a leaf is its term)."""
    gone, kept = set(), []
    for number, statement in enumerate(program.statements):
        if number in drop or gone.intersection(statement.uses):
            gone.update(statement.defines)
        else:
            kept.append(statement)
    if len(kept) == len(program.statements):
        return None
    leaves = [n for n in program.leaves if n not in gone]
    outputs = [(n, w) for n, w in program.outputs if n not in gone]
    if program.outputs and not outputs:
        outputs = [(n, "1.0") for n in leaves[:1]]
    return replace(program, statements=kept, leaves=leaves, outputs=outputs)


def _bypasses(program: Program):
    """Programs that skip one statement: its variable, where later statements read it, replaced
    by one of the variables it was computed from (`v3 = v2.sin()` after `v2 = v1.maximum(v0)`
    becomes `v3 = v1.sin()`); replay refuses those whose shapes no longer fit."""
    statements = program.statements
    for number in range(len(statements) - 1, -1, -1):
        statement = statements[number]
        if statement.inplace or len(statement.defines) != 1:
            continue
        name = statement.defines[0]
        if name in program.leaves:
            continue
        later = statements[number + 1:]
        if not any(name in s.uses for s in later):
            continue
        word = re.compile(rf"\b{name}\b")
        for source in dict.fromkeys(statement.uses):
            rerouted = [replace(s, text=word.sub(source, s.text),
                                uses=tuple(source if u == name else u for u in s.uses),
                                target=source if s.target == name else s.target)
                        if name in s.uses else s for s in later]
            outputs = [(source if n == name else n, w) for n, w in program.outputs]
            yield replace(program, statements=statements[:number] + rerouted, outputs=outputs)


FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?")


def _simplify_constants(program: Program, found: Disagreement, still, more) -> tuple:
    """Round the float literals of each statement (and the loss weights) while it still fails."""

    def rounded(text: str, how) -> str:
        return FLOAT.sub(lambda m: repr(float(how(float(m.group())))), text)

    for number in range(len(program.statements)):
        for how in (lambda v: 1.0, lambda v: round(v), lambda v: round(v, 1)):
            if not more():
                return program, found
            statement = program.statements[number]
            text = rounded(statement.text, how)
            if text == statement.text:
                continue
            statements = list(program.statements)
            statements[number] = replace(statement, text=text)
            candidate = replace(program, statements=statements)
            result = still(candidate)
            if result is not None:
                program, found = candidate, result
                break
    for simpler in (
        lambda p: replace(p, outputs=[(n, "1.0") for n, _ in p.outputs]),
        lambda p: replace(p, weights2={n: "1.0" for n in p.weights2}),
    ):
        if more():
            candidate = simpler(program)
            result = still(candidate)
            if result is not None:
                program, found = candidate, result
    return program, found


def report(program: Program, disagreement: Disagreement) -> str:
    """The program as runnable source for both libraries, and what differs (variables renamed
    v0, v1, ... in order of appearance)."""
    body = "\n".join(program.source("torch", disagreement.index).splitlines()[2:])
    names: dict = {}
    body = VARIABLE.sub(lambda m: names.setdefault(m.group(), f"v{len(names)}"), body)
    detail = VARIABLE.sub(lambda m: names.get(m.group(), m.group()), disagreement.describe())
    return "\n".join([f"# {program.label}", detail, "",
                      "import torch as lib  # or: import minigrad as lib",
                      "F = lib.nn.functional", body])


VARIABLE = re.compile(r"\bv\d+\b")


# ---- fuzzing -------------------------------------------------------------------------------------


@dataclass
class Result:
    """What a fuzzing run found: counts per class and one shrunk example of each."""

    programs: int = 0
    seconds: float = 0.0
    statements: int = 0
    both_raised: int = 0  # statements where torch and minigrad both raised (that agrees)
    classes: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # class -> (program, disagreement)

    @property
    def disagreements(self) -> int:
        return sum(self.classes.values())


def classify(program: Program, disagreement: Disagreement) -> str:
    """The class of a disagreement: the known gap its program entered before it, several
    joined by "+" (run one gap at a time, `--per-gap`, to tell them apart), or
    `new:<kind>:<tag>` when it entered none."""
    gaps = sorted({gap for statement in program.all_statements()[: disagreement.index + 1]
                   for gap in statement.gaps})
    return "+".join(gaps) if gaps else f"new:{disagreement.kind}:{disagreement.tag}"


def fuzz(programs: int, seed: int = 0, mode: str = "pure", with_gaps=(),
         shrink_examples: bool = True, start: int = 0, progress=None) -> Result:
    """Generate and compare `programs` programs; shrink the first example of each class."""
    generator = Generator(seed, mode, with_gaps)
    result = Result()
    began = time.perf_counter()
    for index in range(start, start + programs):
        program, disagreement = generator.program(index)
        result.programs += 1
        result.statements += len(program.statements)
        result.both_raised += len(generator.run.errors)
        if disagreement is not None:
            name = classify(program, disagreement)
            result.classes[name] += 1
            if name not in result.examples:
                if shrink_examples:
                    program, disagreement = shrink(program, disagreement)
                result.examples[name] = (program, disagreement)
        if progress is not None:
            progress(index, result)
    result.seconds = time.perf_counter() - began
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=1000, help="programs per mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=["pure", "inplace", "both"], default="both")
    parser.add_argument("--start", type=int, default=0, help="the first program's index")
    parser.add_argument("--with-gaps", action="store_true",
                        help="generate the KNOWN_GAPS too (disagreements in several are joined)")
    parser.add_argument("--gap", action="append", default=[], metavar="NAME",
                        help="generate this known gap too (repeatable)")
    parser.add_argument("--per-gap", action="store_true",
                        help="one run per known gap, each with only that gap: counts per class")
    parser.add_argument("--no-shrink", action="store_true")
    parser.add_argument("--show", type=int, default=None, metavar="N",
                        help="print program number N (and compare it) instead of fuzzing")
    args = parser.parse_args(argv)
    modes = ["pure", "inplace"] if args.mode == "both" else [args.mode]
    with_gaps = True if args.with_gaps else args.gap
    if args.show is not None:
        for mode in modes:
            generator = Generator(args.seed, mode, with_gaps)
            program, disagreement = generator.program(args.show)
            print(program.source("torch"))
            for index, torch_error, minigrad_error in generator.run.errors:
                print(f"# statement {index} raised in both:\n#   torch:    {torch_error}\n"
                      f"#   minigrad: {minigrad_error}")
            print(disagreement.describe() if disagreement else "# agrees")
        return 0
    runs = [(name, [name]) for name in KNOWN_GAPS] if args.per_gap else [("", with_gaps)]
    new_classes = False
    for mode in modes:
        for label, gaps in runs:
            result = fuzz(args.programs, args.seed, mode, gaps, not args.no_shrink, args.start)
            rate = result.programs / result.seconds if result.seconds else float("inf")
            print(f"== mode {mode}{' gap ' + label if label else ''}: {result.programs} programs "
                  f"({result.statements} statements, {result.both_raised} raised in both) in "
                  f"{result.seconds:.1f} s, {rate:.0f} programs/s; {result.disagreements} "
                  "disagree", flush=True)
            for name, count in result.classes.most_common():
                program, disagreement = result.examples[name]
                print(f"\n-- {name}: {count} programs; smallest example:")
                print(report(program, disagreement), flush=True)
            new_classes |= any(name.startswith("new:") for name in result.classes)
    return 1 if new_classes else 0


if __name__ == "__main__":
    sys.exit(main())
