"""The layers of minigrad (docs/architecture.md): every import points down, except one seam.

Bottom to top: the arrays (backend, dtypes, grad mode, the fused CUDA kernels), the Tensor, the
engine (Function, the tape, backward), the ops, the torch-like library (autograd, factories,
mg.X functions, save/load), then models and tools (nn, optim, data, cuda, viz). A module may
import its own layer and the layers below. The one exception is the seam: Tensor's methods call
the ops and the engine, which make Tensors, so tensor.py imports them at its end. Every other
import of a minigrad module is at the top of its file, where a reader looks for it.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "minigrad"

# (layer, module-name prefixes), bottom first. A prefix "minigrad.ops" covers the package's
# __init__ and every module in it.
LAYERS = [
    ("arrays", ["minigrad.backend", "minigrad.promotion", "minigrad.grad_mode", "minigrad.fused",
                "minigrad.printing"]),
    ("tensor", ["minigrad.tensor"]),
    ("engine", ["minigrad.engine"]),
    ("ops", ["minigrad.ops"]),
    ("library", ["minigrad.autograd", "minigrad.factories", "minigrad.factories_like",
                 "minigrad.tensor_functions", "minigrad.serialization"]),
    ("models and tools", ["minigrad.nn", "minigrad.optim", "minigrad.data", "minigrad.utils",
                          "minigrad.cuda", "minigrad.viz", "minigrad.accelerator",
                          "minigrad.compiler", "minigrad.func", "minigrad.distributed",
                          "minigrad.backends"]),
    ("the package", ["minigrad"]),
]
SEAM_FILE = "minigrad.tensor"
SEAM_TARGETS = ("minigrad.engine", "minigrad.ops")


def layer_of(module: str) -> int:
    """The layer of a module: the longest prefix in LAYERS that names it or its package."""
    best, best_length = None, -1
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = number, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to the docs)")
    return best


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: pathlib.Path):
    """(target module, line, at_top) for every import of a minigrad module in a file. at_top:
    a module-level statement before the file's first def or class."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    first_definition = min((n.lineno for n in tree.body
                            if isinstance(n, (ast.FunctionDef, ast.ClassDef))), default=10**9)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` and `from .ops import x` may name submodules: count each one
            targets = [module + "." + alias.name for alias in node.names]
            targets = [t if _is_module(t) else module for t in targets]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        at_top = node in tree.body and node.lineno < first_definition
        for target in dict.fromkeys(targets):
            if target == "minigrad" or target.startswith("minigrad."):
                found.append((target, node.lineno, at_top))
    return found


def _is_module(name: str) -> bool:
    relative = pathlib.Path(*name.split("."))
    root = PACKAGE.parent
    return ((root / relative.with_suffix(".py")).exists()
            or (root / relative / "__init__.py").exists())


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_imports_point_down_and_sit_at_the_top(path):
    source = module_name(path)
    problems = []
    for target, line, at_top in imports_of(path):
        seam = source == SEAM_FILE and target.startswith(SEAM_TARGETS)
        if seam:
            continue
        if layer_of(target) > layer_of(source):
            problems.append(f"line {line}: {target} ({LAYERS[layer_of(target)][0]}) is above "
                            f"{source} ({LAYERS[layer_of(source)][0]})")
        if not at_top:
            problems.append(f"line {line}: the import of {target} is not at the top of the file")
    assert not problems, f"{source}:\n  " + "\n  ".join(problems)


def test_the_seam_is_tensor_py_importing_the_ops_and_the_engine_at_its_end():
    path = PACKAGE / "tensor.py"
    tree = ast.parse(path.read_text())
    class_end = max(n.end_lineno for n in tree.body if isinstance(n, ast.ClassDef))
    seam = [(t, line) for t, line, _ in imports_of(path) if t.startswith(SEAM_TARGETS)]
    assert seam, "tensor.py no longer calls the ops: update LAYERS and docs/architecture.md"
    assert all(line > class_end for _, line in seam), (
        f"tensor.py imports {seam}: the seam must come after class Tensor")


def test_without_the_seam_the_imports_have_no_cycle():
    graph = {module_name(p): set() for p in FILES}
    for path in FILES:
        source = module_name(path)
        for target, _, _ in imports_of(path):
            if source == SEAM_FILE and target.startswith(SEAM_TARGETS):
                continue
            if target != source and target in graph:
                graph[source].add(target)
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                cycle = trail[trail.index(child):] + [child]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if child not in state:
                visit(child, trail + [child])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_every_module_is_in_a_layer():
    for path in FILES:
        layer_of(module_name(path))


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule can fail: an op importing nn (a layer above) is reported."""
    assert layer_of("minigrad.nn.layers") > layer_of("minigrad.ops.elementwise")
    assert layer_of("minigrad.tensor_functions") > layer_of("minigrad.tensor")
    assert layer_of("minigrad.fused.kernels") < layer_of("minigrad.tensor")


def test_reading_distance_of_a_product_and_its_backward():
    """The issue's goal, counted by tracing (tests/reading_distance.py says how): `x * y` runs
    code in at most 3 of minigrad's files, `(x * y).sum().backward()` in at most 6."""
    from tests import reading_distance

    forward = reading_distance.forward_of_mul()
    backward = reading_distance.backward_of_mul_sum()
    assert len(forward) <= 3, forward
    assert len(backward) <= 6, backward


def test_every_built_in_op_carries_its_math_in_its_docstrings_first_line():
    """One small class per op, its math on the first line (z = ...; dz/dx = ...), as STYLE asks."""
    import inspect

    import minigrad.ops as ops
    from minigrad.engine.function import Op

    found = [obj for module in (getattr(ops, n) for n in dir(ops))
             if inspect.ismodule(module)
             for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, Op) and obj is not Op]
    assert len(found) > 40
    missing = [cls.__qualname__ for cls in found
               if "=" not in (cls.__doc__ or "").strip().split("\n")[0]]
    assert not missing, f"ops without a math docstring: {missing}"
