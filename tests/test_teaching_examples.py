"""The teaching examples run and check what they claim: custom_linear.py and tape.py."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import viz

REPO = Path(__file__).resolve().parent.parent


def load_example(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    path = REPO / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


# ---- examples/custom_linear.py -------------------------------------------------------------------

SEED_TUTORIAL = [REPO.parent / "shared" / "seed" / "linear-layer-tutorial.md",
                 Path("/work/shared/seed/linear-layer-tutorial.md")]


def python_cells(markdown: str) -> list:
    """The tutorial's ```python cells (its comments contain ``` too: fences are whole lines)."""
    cells, cell = [], None
    for line in markdown.split("\n"):
        if cell is None and line == "```python":
            cell = []
        elif cell is not None and line == "```":
            cells.append("\n".join(cell) + "\n")
            cell = None
        elif cell is not None:
            cell.append(line)
    return cells


def test_custom_linear_runs_and_every_check_passes():
    done = run_example("examples/custom_linear.py")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "dummy_weight.grad =\ntensor([[1., 1., 1.],\n        [1., 1., 1.]])" in out
    # Every gradient of both networks is printed with its comparisons, and all agree.
    rows = re.findall(r"^\s+([wb][123])\s+\(.*max diff: by hand .*, torch .*\s(ok|DIFFERENT)$",
                      out, re.M)
    names = [name for name in ("w1", "b1", "w2", "b2", "w3", "b3")]
    assert rows == [(name, "ok") for name in names * 2]
    assert "skipped" not in out  # PyTorch is installed with the test extras: it was compared
    assert "gradcheck(Linear_Layer): True; gradgradcheck(Linear_Layer): True" in out
    assert out.rstrip().endswith("all checks passed")


def test_custom_linear_layer_matches_the_tutorial_formulas():
    example = load_example("custom_linear")
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)  # n x f
    weights = mg.tensor(rng.standard_normal((3, 2)), requires_grad=True)  # f x h
    bias = mg.tensor(rng.standard_normal(2), requires_grad=True)
    grad = rng.standard_normal((5, 2))  # n x h
    out = example.Linear_Layer.apply(x, weights, bias)
    np.testing.assert_allclose(out.detach().numpy(), x.detach().numpy() @ weights.detach().numpy()
                               + bias.detach().numpy())
    out.backward(mg.tensor(grad))
    np.testing.assert_allclose(weights.grad.numpy(), (grad.T @ x.detach().numpy()).T)  # (G' . x)'
    np.testing.assert_allclose(x.grad.numpy(), grad @ weights.detach().numpy().T)  # G . W'
    np.testing.assert_allclose(bias.grad.numpy(), grad.sum(axis=0))


def test_custom_linear_checks_catch_a_wrong_backward(monkeypatch, capsys):
    """The example's comparisons are real: a backward that is off by 1% makes it exit 1."""
    example = load_example("custom_linear")
    right = example.Linear_Layer.backward

    def slightly_wrong(ctx, incoming_grad):
        grad_input, grad_weight, grad_bias = right(ctx, incoming_grad)
        return grad_input, grad_weight * 1.01, grad_bias

    monkeypatch.setattr(example.Linear_Layer, "backward", staticmethod(slightly_wrong))
    assert example.main() == 1
    out = capsys.readouterr().out
    assert "DIFFERENT" in out
    assert out.rstrip().endswith(
        "FAILED: dummy input, tutorial network, MNIST-sized network, gradcheck"
    )


def test_example_uses_the_tutorials_function_verbatim():
    """Linear_Layer and Linear_Layer_ are the tutorial's cells, only the import lines changed."""
    seed = next((path for path in SEED_TUTORIAL if path.exists()), None)
    if seed is None:
        pytest.skip("the seed tutorial is not in this checkout's shared/ folder")
    cells = python_cells(seed.read_text())
    function = next(cell for cell in cells if "class Linear_Layer(torch.autograd.Function)" in cell)
    manual = next(cell for cell in cells if cell.startswith("class Linear_Layer_():"))
    changed = function.replace("import torch.nn as nn\n", "import minigrad.nn as nn\n")
    changed = changed.replace("import torch\n", "import minigrad as torch\n")
    assert changed != function, "the tutorial's import lines moved"
    example = (REPO / "examples" / "custom_linear.py").read_text()
    assert changed in example
    assert manual in example


def class_statements(source: str, name: str) -> str:
    """The statements of class `name` in `source` (no comments, no docstrings), as an AST dump."""
    (cls,) = [node for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.ClassDef) and node.name == name]
    for node in ast.walk(cls):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and len(body) > 1 else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
            node.body = body[1:]  # a docstring (the tutorial's `''` placeholder stays: it is alone)
    return ast.dump(cls)


def test_docs_show_the_same_linear_layers_as_the_example():
    """docs/linear-layer.md shows Linear_Layer and Linear_Layer_ cut to their statements; the
    statements must be the example's (the tutorial's), one for one."""
    page = (REPO / "docs" / "linear-layer.md").read_text()
    example = (REPO / "examples" / "custom_linear.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```\n", page, re.S)
    for name in ("Linear_Layer", "Linear_Layer_"):
        (block,) = [b for b in blocks if f"class {name}(" in b]
        assert class_statements(block, name) == class_statements(example, name), name
    assert "import minigrad as torch\nimport minigrad.nn as nn\n" in page


# ---- examples/tape.py --------------------------------------------------------------------------

TAPE_LINE = re.compile(r"^\s*(\d+)\s+(\w+)\s+out (\([\d, ]*\))\s+-> (.*)$", re.M)


def test_tape_prints_one_line_per_node_in_backward_order(capsys):
    steps = load_example("tape").main(["--batch-size", "8"])
    out = capsys.readouterr().out
    lines = TAPE_LINE.findall(out)
    assert [(int(step), name, shape) for step, name, shape, _ in lines] == [
        (0, "CrossEntropyBackward", "()"),
        (1, "LinearBackward", "(8, 10)"),
        (2, "ReLUBackward", "(8, 64)"),
        (3, "LinearBackward", "(8, 64)"),
        (4, "ReLUBackward", "(8, 128)"),
        (5, "LinearBackward", "(8, 128)"),
    ]
    assert lines[1][3] == "ReLUBackward, leaf (10, 64), leaf (10,)"
    assert lines[5][3] == "leaf (128, 784), leaf (128,)"  # the images get no gradient
    assert [node.name() for node in steps] == [name for _, name, _, _ in lines]
    assert ".grad is set on 6 parameters" in out


def test_tape_order_puts_every_node_after_the_nodes_that_use_its_output():
    _, loss = load_example("tape").tutorial_loss(4)
    steps = mg.autograd.tape(loss)
    position = {node: index for index, node in enumerate(steps)}
    for node in steps:
        for target, _ in node.next_functions:
            if isinstance(target, mg.autograd.Context):
                assert position[target] > position[node]


def test_tape_runs_as_a_script():
    done = run_example("examples/tape.py", "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert len(TAPE_LINE.findall(done.stdout)) == 6


@pytest.mark.skipif(viz._dot_program() is None, reason="Graphviz's dot is not installed")
def test_tape_draws_the_graph(tmp_path, capsys):
    path = tmp_path / "graph.svg"
    load_example("tape").main(["--batch-size", "2", "--svg", str(path)])
    svg = path.read_text()
    assert "fc1.weight" in svg and "CrossEntropyBackward" in svg
