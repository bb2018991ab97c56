"""Pictures of the graph behind a tensor: Graphviz DOT text, SVG or PNG files, notebook displays.

    dot_text = mg.viz.to_dot(loss, params=model.named_parameters())
    mg.viz.render(loss, "graph.svg", params=model)
    mg.viz.draw(loss, params=model)         # last in a notebook cell: the graph as a picture
    mg.viz.tape_table(loss, params=model)   # last in a notebook cell: the tape as a table

`to_dot` and `tape_table` need nothing but minigrad. `render` and `draw` hand the text to
Graphviz: the `graphviz` Python package when it is installed, else the `dot` program on PATH.
In Jupyter, `draw` and `tape_table` return objects with `_repr_svg_` / `_repr_html_`, the methods
Jupyter calls to show an object as a picture or a table; elsewhere they print as plain text.

The picture reads like the forward pass: every arrow goes from an input to the operation that
used it, so the leaves (parameters, inputs) are at the top and the root (the loss) is at the
bottom. backward() walks the same arrows the other way. Op nodes are named `op0`, `op1`, ... in
the order backward runs them, the order that `mg.autograd.tape(tensor)` prints.
"""

from __future__ import annotations

import html
import importlib
import os
import re
import shutil
import subprocess

from .engine.backward import tape
from .engine.function import Context
from .serialization import atomic_write

FORMATS = ("svg", "png", "pdf")

_INSTALL_HINT = (
    "mg.viz.render needs Graphviz's `dot` program, and neither the `graphviz` Python package nor "
    "a `dot` program on PATH could draw the graph. Install Graphviz: `apt-get install graphviz` "
    "(Debian, Ubuntu), `brew install graphviz` (macOS) or `conda install graphviz`. "
    "`pip install graphviz` alone is not enough: it is a wrapper that runs the same `dot` "
    "program. Without Graphviz, mg.viz.to_dot(tensor) still gives the DOT text, which any "
    "Graphviz viewer can draw."
)


def to_dot(tensor, params=None) -> str:
    """Graphviz DOT text for the graph that backward() would walk from `tensor`.

    Nodes: one box per operation (its grad_fn name and output shape) and one per leaf tensor
    that requires grad (its name from `params` when given, else "leaf", and its shape). Edges:
    from each input to the operation that used it, one per use, so a tensor used twice has two.
    `params` names the leaves: a dict {name: tensor}, pairs such as model.named_parameters(),
    or a Module.
    """
    names = _leaf_names(params)
    root = tensor.grad_fn
    lines = [
        "digraph minigrad {",
        '  node [shape=box, fontname="Helvetica", fontsize=11];',
    ]
    if root is None:
        if not tensor.requires_grad:
            raise ValueError(
                "to_dot: this tensor has no graph: it has no grad_fn and does not require grad "
                "(were its inputs made with requires_grad=True, and not under mg.no_grad()?)"
            )
        lines.append(_leaf_line("leaf0", tensor, names, is_root=True))
        return "\n".join(lines + ["}"]) + "\n"

    nodes = tape(root)  # op i is the i-th node backward runs
    op_ids = {node: f"op{step}" for step, node in enumerate(nodes)}
    leaf_ids: dict = {}  # id(leaf tensor) -> node id, in order of first appearance
    edges = []
    for node in nodes:
        fill = "#c9e4a6" if node is root else "#e8e8e8"
        label = f"{_escape(node.name())}\\nout {_shape(node.output_metadata[0][0])}"
        lines.append(
            f'  {op_ids[node]} [label="{label}", style="rounded,filled", fillcolor="{fill}"];'
        )
        for target, _ in node.next_functions:
            if target is None:  # an input that needs no gradient (data, a constant)
                continue
            if isinstance(target, Context):
                edges.append(f"  {op_ids[target]} -> {op_ids[node]};")
            else:
                if id(target) not in leaf_ids:
                    leaf_ids[id(target)] = f"leaf{len(leaf_ids)}"
                    lines.append(_leaf_line(leaf_ids[id(target)], target, names))
                edges.append(f"  {leaf_ids[id(target)]} -> {op_ids[node]};")
    return "\n".join(lines + edges + ["}"]) + "\n"


def render(tensor, path, params=None) -> str:
    """Draw the graph behind `tensor` into `path` (.svg, .png or .pdf) with Graphviz; return path.

    Uses the `graphviz` Python package when installed, else the `dot` program on PATH; raises
    RuntimeError saying what to install when neither can draw.
    """
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(
            f"render: cannot tell the format from {path!r}: the name must end in "
            + ", ".join("." + f for f in FORMATS)
        )
    image = _draw(to_dot(tensor, params), fmt)
    atomic_write(path, lambda file: file.write(image), who="render")
    return path


def draw(tensor, params=None) -> Graph:
    """The graph behind `tensor` as a Graph: a picture in Jupyter, its DOT text in `.dot`."""
    return Graph(to_dot(tensor, params))


class Graph:
    """DOT text that Jupyter shows as an SVG picture (through Graphviz), and plain text elsewhere.

    Without Graphviz, `_repr_svg_` returns None and Jupyter falls back to the repr, which says
    what to install; `.dot` always holds the text.
    """

    def __init__(self, dot: str):
        self.dot = dot

    def svg(self) -> str:
        """The picture as SVG text; RuntimeError saying what to install when Graphviz is absent."""
        text = _draw(self.dot, "svg").decode()
        return text[text.find("<svg"):]  # drop the XML prolog: the SVG goes inside a page

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except RuntimeError:
            return None

    def __repr__(self) -> str:
        ops = len(re.findall(r"^  op\d+ \[", self.dot, re.MULTILINE))
        leaves = len(re.findall(r"^  leaf\d+ \[", self.dot, re.MULTILINE))
        text = f"<minigrad graph: {_count(ops, 'op')}, {_count(leaves, 'leaf')}; "
        text += ".dot holds its DOT text"
        if _dot_program() is None:
            text += "; install Graphviz to see it drawn: apt-get install graphviz"
        return text + ">"


def tape_table(tensor_or_tape, params=None) -> TapeTable:
    """The tape backward() runs from a tensor (or a Tape itself), as a table for Jupyter."""
    nodes = tensor_or_tape if isinstance(tensor_or_tape, list) else tape(tensor_or_tape)
    return TapeTable(nodes, _leaf_names(params))


class TapeTable:
    """One row per node of a tape: step, node, output shape, where its input gradients go.

    Jupyter shows it as an HTML table (`_repr_html_`); elsewhere it prints like the Tape itself.
    `rows` holds the same cells as tuples of strings.
    """

    def __init__(self, nodes, names: dict | None = None):
        self.nodes = list(nodes)
        names = names or {}
        self.rows = [
            (
                str(step),
                node.name(),
                _shape(node.output_metadata[0][0]) if node.output_metadata[0] else "()",
                ", ".join(_target(t, names) for t, _ in node.next_functions if t is not None),
            )
            for step, node in enumerate(self.nodes)
        ]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("step", "node", "output shape", "sends to"))
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return "\n".join(f"{s:>3}  {n:<22} out {o:<14} -> {t}" for s, n, o, t in self.rows)


# ---- helpers ---------------------------------------------------------------------------------


def _draw(dot_text: str, fmt: str) -> bytes:
    """DOT text to image bytes: the graphviz package first, then the dot program."""
    package = _graphviz_package()
    if package is not None:
        try:
            return package.Source(dot_text).pipe(format=fmt)
        except package.ExecutableNotFound:
            pass  # the package is there but the program it runs is not
    program = _dot_program()
    if program is None:
        raise RuntimeError(_INSTALL_HINT)
    done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"render: {program} -T{fmt} failed (exit {done.returncode}): "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout


def _graphviz_package():
    """The `graphviz` Python package, or None when it is not installed."""
    try:
        return importlib.import_module("graphviz")
    except ImportError:
        return None


def _dot_program() -> str | None:
    """The path of Graphviz's `dot` program, or None when it is not on PATH."""
    return shutil.which("dot")


def _leaf_names(params) -> dict:
    """{id(tensor): name} from a dict, (name, tensor) pairs, or a Module."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    pairs = params.items() if isinstance(params, dict) else params
    return {id(t): str(name) for name, t in pairs}


def _count(number: int, word: str) -> str:
    """'1 op', '2 ops', '3 leaves'."""
    plural = word[:-1] + "ves" if word.endswith("f") else word + "s"
    return f"{number} {word if number == 1 else plural}"


def _target(target, names: dict) -> str:
    """Where a gradient goes: the next node's name, or the leaf's name and shape."""
    if isinstance(target, Context):
        return target.name()
    return f"{names.get(id(target), 'leaf')} {_shape(target.shape)}"


def _leaf_line(node_id: str, leaf, names: dict, is_root: bool = False) -> str:
    name = _escape(names.get(id(leaf), "leaf"))
    fill = "#c9e4a6" if is_root else "#cfe2f3"
    return f'  {node_id} [label="{name}\\n{_shape(leaf.shape)}", style=filled, fillcolor="{fill}"];'


def _shape(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _escape(text: str) -> str:
    """Make text safe inside a double-quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
