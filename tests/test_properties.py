"""Property-based tests: random compositions of public ops agree with PyTorch, values and grads.

Each example draws a dtype, a leaf tensor of random shape (0-d and size-1 dims included) and 2
to 6 operations from the public API. Binary operations take a new leaf of a shape that
broadcasts with the current value, a Python number, the value itself, or an earlier value (a
diamond in the graph). Every operation runs in minigrad and in PyTorch side by side; at the end
the outputs and the gradient of every leaf must agree within the dtype's tolerance.

Inputs are kept in each operation's safe domain, so a disagreement is a bug, not a domain error:
log, sqrt and pow bases see values >= 0.25 (otherwise x*x + 0.5 is taken first), divisors are
at least 0.25 away from zero, and a value entering an operation is rescaled (times a Python
number) to magnitude <= 8, so exp cannot overflow.

On failure Hypothesis prints the program as minigrad code (the `note` lines), ready to become a
test in tests/test_regressions.py. MINIGRAD_HYPOTHESIS_PROFILE=long runs 5,000+ examples.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import torch
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from hypothesis_profiles import PROFILE, examples

import minigrad as mg

TOLERANCE = {np.dtype("float64"): 1e-9, np.dtype("float32"): 1e-4}
BOUND = 8.0  # largest magnitude allowed into an operation
SAFE = 0.25  # smallest value allowed into log/sqrt/pow bases and divisors
MAX_SIZE = 256  # elements per leaf

MG = SimpleNamespace(F=mg.nn.functional, nn=mg.nn, index=mg.tensor)
TORCH = SimpleNamespace(F=torch.nn.functional, nn=torch.nn, index=torch.tensor)


class Var:
    """One value in both frameworks: `m` (minigrad), `t` (torch), and its name in the program."""

    def __init__(self, name: str, m, t):
        self.name, self.m, self.t = name, m, t

    def __str__(self) -> str:
        return self.name

    @property
    def shape(self) -> tuple:
        return self.m.shape

    @property
    def ndim(self) -> int:
        return self.m.ndim

    def host(self) -> np.ndarray:
        return self.m.detach().numpy()


class Program:
    """Applies operations to Vars and writes them down as minigrad code for the failure report."""

    def __init__(self, data, dtype: np.dtype):
        self.data, self.dtype = data, dtype
        self.tolerance = TOLERANCE[dtype]  # the loosest of the dtypes in the program
        self.leaves: list[Var] = []
        self.values: list[Var] = []  # every intermediate value, for diamonds
        self.lines: list[str] = []

    def draw(self, strategy, label: str):
        return self.data.draw(strategy, label=label)

    def write(self, line: str) -> None:
        self.lines.append(line)
        note(line)

    def leaf(self, shape: tuple, dtype: np.dtype | None = None) -> Var:
        dtype = dtype or self.dtype
        self.tolerance = max(self.tolerance, TOLERANCE[dtype])
        elements = st.floats(-2, 2, width=dtype.itemsize * 8, allow_subnormal=False)
        array = self.draw(arrays(dtype, shape, elements=elements), "leaf values")
        requires_grad = self.draw(st.sampled_from([True, True, False]), "leaf requires_grad")
        name = f"x{len(self.leaves)}"
        var = Var(
            name,
            mg.tensor(array.copy(), requires_grad=requires_grad),
            torch.tensor(array.copy(), requires_grad=requires_grad),
        )
        self.write(
            f"{name} = mg.tensor(np.array({array.tolist()!r}, dtype=np.{dtype}), "
            f"requires_grad={requires_grad})"
        )
        self.leaves.append(var)
        self.values.append(var)
        return var

    def apply(self, fn, *args, code: str) -> Var:
        """fn(lib, *values) runs once with minigrad and once with torch; code is its mg spelling."""
        name = f"v{len(self.values)}"
        self.write(f"{name} = {code}")
        t = fn(TORCH, *[a.t if isinstance(a, Var) else a for a in args])
        m = fn(MG, *[a.m if isinstance(a, Var) else a for a in args])
        var = Var(name, m, t)
        check_agree(var, f"{name} = {code}", self.tolerance)
        self.values.append(var)
        return var


# ---- comparing ---------------------------------------------------------------------------------


def check_agree(var: Var, what: str, tolerance: float) -> None:
    """Same shape, dtype and values (within the tolerance) in both frameworks."""
    check_arrays(var.m.detach().numpy(), var.t.detach().numpy(), what, tolerance)


def check_arrays(actual: np.ndarray, expected: np.ndarray, what: str, tolerance=0.0) -> None:
    """Equal shapes and dtypes; equal inf/nan places; finite values within tolerance * scale.

    The tolerance is relative to the largest magnitude in `expected` (at least 1). It is the
    loosest of the program's dtypes: a float32 step that rounds differently in the two
    frameworks stays visible after a later promotion to float64.
    """
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if not actual.size:
        return
    if expected.dtype.kind != "f":  # indices
        assert np.array_equal(actual, expected), f"{what}: {actual} != {expected}"
        return
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(actual), finite), f"{what}: inf/nan at other places"
    assert np.array_equal(actual[~finite], expected[~finite], equal_nan=True), what
    if not finite.any():
        return
    scale = max(1.0, float(np.abs(expected[finite]).max()))
    error = float(np.abs(actual[finite].astype(np.float64) - expected[finite]).max())
    tolerance = max(tolerance, TOLERANCE[expected.dtype]) * scale
    assert error <= tolerance, f"{what}: max error {error:.3g} > {tolerance:.3g}"


# ---- keeping values in safe domains ------------------------------------------------------------


def bounded(p: Program, v: Var, bound: float = BOUND) -> Var:
    """v rescaled by a Python number so that its magnitude is at most `bound`."""
    largest = float(np.abs(v.host()).max())
    if largest <= bound:
        return v
    scale = bound / 2 / largest
    return p.apply(lambda L, a: a * scale, v, code=f"{v} * {scale!r}")


def positive(p: Program, v: Var) -> Var:
    """v itself when every element is >= SAFE, else v * v + 0.5."""
    if float(v.host().min()) >= SAFE:
        return v
    return p.apply(lambda L, a: a * a + 0.5, v, code=f"{v} * {v} + 0.5")


def away_from_zero(p: Program, v: Var) -> Var:
    """v itself when every element is at least SAFE away from zero, else v * v + 0.5."""
    if float(np.abs(v.host()).min()) >= SAFE:
        return v
    return positive(p, v)


# ---- shapes and dims ---------------------------------------------------------------------------


def shapes(max_dims: int = 4):
    return st.lists(st.sampled_from([1, 1, 2, 3, 4]), max_size=max_dims).map(tuple)


def broadcastable_shape(p: Program, base: tuple) -> tuple:
    """A shape that broadcasts with `base`: dims kept, set to 1, stretched from 1, or dropped."""
    dims = []
    for size in base:
        options = [1, 2, 3] if size == 1 else [size, 1]
        dims.append(p.draw(st.sampled_from(options), "broadcast dim"))
    dims = dims[p.draw(st.integers(0, len(dims)), "leading dims dropped") :]
    if len(dims) == len(base) < 4 and p.draw(st.booleans(), "extra leading dim"):
        dims.insert(0, p.draw(st.integers(1, 3), "extra dim size"))
    if math.prod(np.broadcast_shapes(base, tuple(dims))) > MAX_SIZE:
        return base
    return tuple(dims)


def a_dim(p: Program, ndim: int, label: str = "dim") -> int:
    rank = max(ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    return p.draw(st.integers(-rank, rank - 1), label)


def some_dims(p: Program, ndim: int):
    """None, one dim, or a tuple of distinct dims (some written as negative numbers)."""
    kind = p.draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "int"]), "dims")
    if kind == "none":
        return None
    if kind == "int":
        return a_dim(p, ndim)
    dims = p.draw(
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True), "dims"
    )
    return tuple(d - ndim if p.draw(st.booleans(), "negative") else d for d in dims)


def same_argmax(v: Var, dim: int) -> bool:
    """True when both frameworks find the maximum along dim at the same places, with no ties."""
    m, t = v.host(), v.t.detach().numpy()
    m_top, t_top = m == m.max(axis=dim, keepdims=True), t == t.max(axis=dim, keepdims=True)
    return bool(np.array_equal(m_top, t_top) and (m_top.sum(axis=dim) == 1).all())


def same_signs(v: Var) -> bool:
    """True when x > 0 holds at the same places in both frameworks (relu agrees exactly)."""
    return bool(np.array_equal(v.host() > 0, v.t.detach().numpy() > 0))


# ---- the operations ----------------------------------------------------------------------------

UNARY = {
    "neg": (lambda L, a: -a, "-{}"),
    "exp": (lambda L, a: a.exp(), "{}.exp()"),
    "log": (lambda L, a: a.log(), "{}.log()"),
    "sqrt": (lambda L, a: a.sqrt(), "{}.sqrt()"),
    "relu": (lambda L, a: a.relu(), "{}.relu()"),
    "sigmoid": (lambda L, a: a.sigmoid(), "{}.sigmoid()"),
    "tanh": (lambda L, a: a.tanh(), "{}.tanh()"),
    "F.relu": (lambda L, a: L.F.relu(a), "F.relu({})"),
    "F.sigmoid": (lambda L, a: L.F.sigmoid(a), "F.sigmoid({})"),
    "F.tanh": (lambda L, a: L.F.tanh(a), "F.tanh({})"),
    "nn.ReLU": (lambda L, a: L.nn.ReLU()(a), "nn.ReLU()({})"),
    "nn.Tanh": (lambda L, a: L.nn.Tanh()(a), "nn.Tanh()({})"),
}


def op_unary(p: Program, v: Var) -> Var:
    name = p.draw(st.sampled_from(sorted(UNARY)), "unary op")
    if "relu" in name.lower() and not same_signs(v):
        name = "tanh"  # rounding put an element on the other side of the kink at 0
    if name in ("log", "sqrt"):
        v = positive(p, v)
    fn, code = UNARY[name]
    return p.apply(fn, v, code=code.format(v))


BINARY = {
    "+": lambda L, a, b: a + b,
    "-": lambda L, a, b: a - b,
    "*": lambda L, a, b: a * b,
    "/": lambda L, a, b: a / b,
    "**": lambda L, a, b: a**b,
}


def op_binary(p: Program, v: Var) -> Var:
    op = p.draw(st.sampled_from(sorted(BINARY)), "binary op")
    earlier = [w for w in p.values if w is not v and _broadcasts(w.shape, v.shape)]
    kinds = ["leaf", "number", "self"] + (["earlier"] if earlier else [])
    kind = p.draw(st.sampled_from(kinds), "other operand")
    if kind == "leaf":
        # Now and then the other dtype: float32 with float64 promotes as in PyTorch, where a
        # 0-d tensor does not raise a higher-dimensional one's dtype.
        mixed = p.draw(st.sampled_from([False, False, False, True]), "other dtype")
        dtype = np.dtype("float64" if p.dtype == np.float32 else "float32") if mixed else None
        other = p.leaf(broadcastable_shape(p, v.shape), dtype)
    elif kind == "earlier":
        other = bounded(p, p.draw(st.sampled_from(earlier), "earlier value"), 3.0)
    elif kind == "self":
        other = v
    else:
        other = p.draw(_numbers(op), "number")
    left, right = (other, v) if p.draw(st.booleans(), "swap") else (v, other)
    if op == "/" and isinstance(right, Var):
        right = away_from_zero(p, right)
    if op == "**":
        if isinstance(left, Var):
            left = positive(p, left)
        else:
            left = p.draw(st.sampled_from([0.5, 1.5, 2, 3.0]), "positive base")
        if isinstance(right, Var):
            right = bounded(p, right, 3.0)
    return p.apply(BINARY[op], left, right, code=f"{left!s} {op} {right!s}")


def _numbers(op: str):
    if op == "/":
        return st.sampled_from([0.5, -2.0, 3, 1e-1 * 7, -1.5])
    if op == "**":
        return st.sampled_from([2, 3, 0.5, -0.5, -1.0, 1.5, -2.0, 1, 0])
    return st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False, allow_subnormal=False))


def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        return math.prod(np.broadcast_shapes(a, b)) <= MAX_SIZE
    except ValueError:
        return False


def op_reduce(p: Program, v: Var) -> Var:
    name = p.draw(st.sampled_from(["sum", "mean"]), "reduction")
    dim, keepdim = some_dims(p, v.ndim), p.draw(st.booleans(), "keepdim")
    return p.apply(
        lambda L, a: getattr(a, name)(dim=dim, keepdim=keepdim),
        v,
        code=f"{v}.{name}(dim={dim!r}, keepdim={keepdim})",
    )


def op_max(p: Program, v: Var) -> Var:
    if p.draw(st.booleans(), "max over everything"):
        host, t = v.host(), v.t.detach().numpy()
        if np.array_equal(host == host.max(), t == t.max()):  # else ties differ by rounding
            return p.apply(lambda L, a: a.max(), v, code=f"{v}.max()")
    dim, keepdim = a_dim(p, v.ndim), p.draw(st.booleans(), "keepdim")
    ties = v.ndim > 0 and not same_argmax(v, dim)
    m_values, m_indices = v.m.max(dim=dim, keepdim=keepdim)
    t_values, t_indices = v.t.max(dim=dim, keepdim=keepdim)
    if ties:  # PyTorch may pick another of the tied places: route its gradient through ours
        index = torch.from_numpy(v.m.argmax(dim=dim, keepdim=True).detach().numpy())
        t_values = v.t.gather(dim, index) if v.ndim else v.t
        t_values = t_values if keepdim or not v.ndim else t_values.squeeze(dim)
    else:
        check_arrays(
            m_indices.detach().numpy(), t_indices.detach().numpy(), f"{v}.max(dim={dim}).indices"
        )
    name = f"v{len(p.values)}"
    p.write(f"{name} = {v}.max(dim={dim}, keepdim={keepdim}).values")
    var = Var(name, m_values, t_values)
    check_agree(var, f"{name} = {v}.max(dim={dim}, keepdim={keepdim})", p.tolerance)
    p.values.append(var)
    return var


def op_matmul(p: Program, v: Var) -> Var:
    n = v.shape[-1]
    form = p.draw(st.sampled_from(["v @ w", "w @ v", "F.linear"]), "matmul form")
    k = p.draw(st.integers(1, 4), "output features")
    same = np.dtype(v.m.dtype)  # PyTorch's matmul refuses mixed dtypes (NumPy would promote)
    if form == "F.linear":
        weight = p.leaf((k, n), same)
        if p.draw(st.booleans(), "bias"):
            bias = p.leaf((k,), same)
            return p.apply(
                lambda L, a, w, b: L.F.linear(a, w, b),
                v,
                weight,
                bias,
                code=f"F.linear({v}, {weight}, {bias})",
            )
        return p.apply(lambda L, a, w: L.F.linear(a, w), v, weight, code=f"F.linear({v}, {weight})")
    batch = v.shape[:-2]
    if form == "v @ w":
        shape = p.draw(st.sampled_from([(n,), (n, k), (2, n, k), (1, n, k)]), "right operand")
        if len(shape) == 3 and len(batch) > 1:  # keep the batch dims broadcastable
            shape = shape[1:]
        if len(shape) == 3 and batch and shape[0] not in (1, batch[-1]):
            shape = (1,) + shape[1:]
        w = p.leaf(shape, same)
        return p.apply(lambda L, a, b: a @ b, v, w, code=f"{v} @ {w}")
    inner = v.shape[-2] if v.ndim > 1 else n
    shape = p.draw(st.sampled_from([(inner,), (k, inner), (1, k, inner)]), "left operand")
    w = p.leaf(shape, same)
    if p.draw(st.booleans(), "method"):
        return p.apply(lambda L, a, b: a.matmul(b), w, v, code=f"{w}.matmul({v})")
    return p.apply(lambda L, a, b: a @ b, w, v, code=f"{w} @ {v}")


def op_softmax(p: Program, v: Var) -> Var:
    name = p.draw(st.sampled_from(["softmax", "log_softmax"]), "softmax kind")
    dim = a_dim(p, v.ndim)
    if p.draw(st.booleans(), "functional"):
        return p.apply(
            lambda L, a: getattr(L.F, name)(a, dim=dim), v, code=f"F.{name}({v}, dim={dim})"
        )
    return p.apply(lambda L, a: getattr(a, name)(dim), v, code=f"{v}.{name}({dim})")


def random_shape_like(p: Program, size: int) -> tuple:
    """A shape with `size` elements: its prime factors spread over up to 4 dims, plus 1s."""
    factors, rest, f = [], size, 2
    while rest > 1:
        while rest % f == 0:
            factors.append(f)
            rest //= f
        f += 1
    ndim = p.draw(st.integers(1 if factors else 0, 4), "reshape dims")
    dims = [1] * ndim
    for factor in factors:
        dims[p.draw(st.integers(0, ndim - 1), "factor goes to")] *= factor
    if dims and p.draw(st.booleans(), "use -1"):
        dims[p.draw(st.integers(0, ndim - 1), "-1 goes to")] = -1
    return tuple(dims)


def op_shape(p: Program, v: Var) -> Var:
    kinds = ["reshape", "view", "unsqueeze", "squeeze", "transpose", "transpose", "flatten"]
    kinds += ["T", "t()"] if v.ndim <= 2 else []
    kind = p.draw(st.sampled_from(kinds), "shape op")
    if kind in ("reshape", "view"):
        shape = random_shape_like(p, v.m.numel())
        star = p.draw(st.booleans(), "reshape(*shape)")
        code = f"{v}.{kind}({', '.join(map(str, shape)) if star else repr(shape)})"
        return p.apply(lambda L, a: a.reshape(shape), v, code=code)
    if kind == "unsqueeze":
        dim = p.draw(st.integers(-v.ndim - 1, v.ndim), "dim")
        return p.apply(lambda L, a: a.unsqueeze(dim), v, code=f"{v}.unsqueeze({dim})")
    if kind == "squeeze":
        dim = p.draw(st.none() | st.integers(-max(v.ndim, 1), max(v.ndim, 1) - 1), "dim")
        code = f"{v}.squeeze()" if dim is None else f"{v}.squeeze({dim})"
        return p.apply(lambda L, a: a.squeeze() if dim is None else a.squeeze(dim), v, code=code)
    if kind == "transpose":
        d0, d1 = a_dim(p, v.ndim), a_dim(p, v.ndim)
        if d0 % max(v.ndim, 1) == d1 % max(v.ndim, 1) and v.ndim > 1:  # mostly a real swap
            d1 = (d0 + p.draw(st.integers(1, v.ndim - 1), "other dim")) % v.ndim
        return p.apply(lambda L, a: a.transpose(d0, d1), v, code=f"{v}.transpose({d0}, {d1})")
    if kind == "flatten":
        if v.ndim == 0:
            return p.apply(lambda L, a: a.flatten(), v, code=f"{v}.flatten()")
        start = p.draw(st.integers(0, v.ndim - 1), "start_dim")
        end = p.draw(st.integers(start, v.ndim - 1), "end_dim")
        end = end - v.ndim if p.draw(st.booleans(), "negative end") else end
        return p.apply(lambda L, a: a.flatten(start, end), v, code=f"{v}.flatten({start}, {end})")
    if kind == "T":
        return p.apply(lambda L, a: a.T, v, code=f"{v}.T")
    return p.apply(lambda L, a: a.t(), v, code=f"{v}.t()")


def op_getitem(p: Program, v: Var) -> Var:
    if v.ndim == 0:
        index = p.draw(st.sampled_from([(), None, Ellipsis]), "index of a 0-d tensor")
        return p.apply(lambda L, a: a[index], v, code=f"{v}[{index!r}]")
    size = v.shape[0]
    kinds = ["int", "slices", "int array", "int array", "ellipsis", "none"]
    kind = p.draw(st.sampled_from(kinds), "index")
    if kind == "int array":  # repeats must add up in backward
        rows = p.draw(st.lists(st.integers(-size, size - 1), min_size=2, max_size=6), "rows")
        return p.apply(lambda L, a: a[L.index(rows)], v, code=f"{v}[mg.tensor({rows!r})]")
    if kind == "int":
        index = p.draw(st.integers(-size, size - 1), "index")
    elif kind == "ellipsis":
        index = (Ellipsis, p.draw(st.integers(-v.shape[-1], v.shape[-1] - 1), "last index"))
    elif kind == "none":
        index = (None, slice(None, None, p.draw(st.sampled_from([None, 2]), "step")))
    else:
        count = p.draw(st.integers(1, v.ndim), "sliced dims")
        index = tuple(_a_slice(p, n) for n in v.shape[:count])
        index = index if len(index) > 1 else index[0]
    return p.apply(lambda L, a: a[index], v, code=f"{v}[{_index_code(index)}]")


def _a_slice(p: Program, n: int) -> slice:
    """A non-empty slice of range(n), bounds sometimes negative or omitted, step 1 to 3."""
    start = p.draw(st.integers(0, n - 1), "start")
    stop = p.draw(st.integers(start + 1, n), "stop")
    step = p.draw(st.sampled_from([None, 1, 2, 3]), "step")
    start = p.draw(st.sampled_from([start, start - n] if start else [0, None]), "start form")
    stop = p.draw(st.sampled_from([stop, None] if stop == n else [stop, stop - n]), "stop form")
    return slice(start, stop, step)


def _index_code(index) -> str:
    parts = index if isinstance(index, tuple) else (index,)
    text = []
    for part in parts:
        if isinstance(part, slice):
            text.append(
                ":".join(
                    "" if x is None else str(x) for x in (part.start, part.stop, part.step)
                ).rstrip(":")
                or ":"
            )
        else:
            text.append("..." if part is Ellipsis else repr(part))
    return ", ".join(text) + ("," if len(parts) == 1 and isinstance(index, tuple) else "")


OPS = {
    "unary": op_unary,
    "binary": op_binary,
    "reduce": op_reduce,
    "max": op_max,
    "matmul": op_matmul,
    "softmax": op_softmax,
    "shape": op_shape,
    "getitem": op_getitem,
}


def run_program(p: Program, steps: int) -> Var:
    v = p.leaf(p.draw(shapes(), "shape"))
    for _ in range(steps):
        names = [name for name in sorted(OPS) if name != "matmul" or v.ndim > 0]
        op = OPS[p.draw(st.sampled_from(names), "op")]
        v = op(p, bounded(p, v))
    return v


def check_gradients(p: Program, out: Var, twice: bool) -> None:
    """Send the same output gradient back through both graphs; compare every leaf's gradient."""
    assert out.m.requires_grad == out.t.requires_grad, "requires_grad of the output differs"
    if not out.t.requires_grad:
        return
    if out.m.numel() == 1 and p.draw(st.booleans(), "implicit gradient"):
        p.write(f"{out}.backward()")
        calls = [(lambda m: m.backward(), lambda t: t.backward())]
    else:
        dtype = np.dtype(out.m.dtype)
        elements = st.floats(-2, 2, width=dtype.itemsize * 8, allow_subnormal=False)
        g = p.draw(arrays(dtype, out.shape, elements=elements), "output gradient")
        p.write(f"{out}.backward(mg.tensor(np.array({g.tolist()!r}, dtype=np.{dtype})))")
        calls = [(lambda m: m.backward(mg.tensor(g)), lambda t: t.backward(torch.tensor(g)))]
    if twice:  # the first call keeps the graph; gradients add up
        p.write("# ... twice, the first with retain_graph=True")
        first = [
            (
                lambda m: m.backward(mg.tensor(np.ones(out.shape, out.m.dtype)), retain_graph=True),
                lambda t: t.backward(torch.ones(out.shape, dtype=t.dtype), retain_graph=True),
            )
        ]
        calls = first + calls
    nodes = mg.autograd.tape(out.m)
    for m_call, t_call in calls:
        t_call(out.t)
        m_call(out.m)
    assert all(node.released for node in nodes), "backward kept saved arrays without retain_graph"
    check_gradients_are_own_arrays(p)
    for leaf in p.leaves:
        if not leaf.t.requires_grad:
            assert leaf.m.grad is None, f"{leaf} does not require grad but got a gradient"
            continue
        assert (leaf.m.grad is None) == (leaf.t.grad is None), f"{leaf}.grad presence differs"
        if leaf.t.grad is not None:
            check_arrays(
                leaf.m.grad.detach().numpy(),
                leaf.t.grad.detach().numpy(),
                f"{leaf}.grad",
                p.tolerance,
            )


def check_gradients_are_own_arrays(p: Program) -> None:
    """Each leaf's .grad is a writable array that shares memory with no other leaf's."""
    grads = [(leaf, leaf.m.grad.array) for leaf in p.leaves if leaf.m.grad is not None]
    for i, (leaf, grad) in enumerate(grads):
        assert isinstance(grad, np.ndarray), f"{leaf}.grad.array is a {type(grad).__name__}"
        assert grad.flags.writeable, f"{leaf}.grad is read-only"
        for other, other_grad in grads[:i]:
            assert not np.shares_memory(grad, other_grad), f"{leaf} and {other} share a .grad"


@settings(PROFILE)
@given(st.data())
def test_random_compositions_match_torch(data):
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    p = Program(data, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: .T on 0-d tensors is deprecated
        out = run_program(p, data.draw(st.integers(2, 6), label="number of ops"))
        check_gradients(p, out, twice=data.draw(st.booleans(), label="backward twice"))


@settings(PROFILE, max_examples=examples(0.5))
@given(st.data())
def test_cross_entropy_after_random_ops_matches_torch(data):
    """A classifier head: random ops make (N, C) logits, then cross-entropy with random labels."""
    dtype = np.dtype(data.draw(st.sampled_from(["float32", "float64"]), label="dtype"))
    p = Program(data, dtype)
    n = data.draw(st.integers(1, 5), label="batch")
    c = data.draw(st.integers(1, 5), label="classes")
    v = p.leaf((n, c))
    for _ in range(data.draw(st.integers(0, 3), label="ops before the loss")):
        v = p.draw(st.sampled_from([op_unary, op_binary]), "op")(p, bounded(p, v))
        if v.shape != (n, c):  # broadcasting grew it: fold back to (n, c)
            v = p.apply(
                lambda L, a: a.reshape(-1, n, c).sum(0),
                v,
                code=f"{v}.reshape(-1, {n}, {c}).sum(0)",
            )
    labels = data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n), label="labels")
    reduction = data.draw(st.sampled_from(["mean", "sum"]), label="reduction")
    module = data.draw(st.booleans(), label="module")

    def loss(L, a):
        target = L.index(labels)
        if module:
            return L.nn.CrossEntropyLoss(reduction=reduction)(a, target)
        return L.F.cross_entropy(a, target, reduction=reduction)

    code = f"F.cross_entropy({v}, mg.tensor({labels!r}), reduction={reduction!r})"
    out = p.apply(loss, v, code=code)
    check_gradients(p, out, twice=False)
