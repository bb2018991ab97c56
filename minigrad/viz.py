"""Pictures of the graph behind a tensor: Graphviz DOT text, SVG or PNG files, notebook displays.

    dot_text = mg.viz.to_dot(loss, params=model.named_parameters())
    mg.viz.render(loss, "graph.svg", params=model)
    mg.viz.draw(loss, params=model)         # last in a notebook cell: the graph as a picture
    mg.viz.draw(loss, params=model, grads=True)  # each edge labelled with its gradient
    mg.viz.tape_table(loss, params=model)   # last in a notebook cell: the tape as a table

`to_dot` and `tape_table` need nothing but minigrad. `render` and `draw` hand the text to
Graphviz: the `graphviz` Python package when it is installed, else the `dot` program on PATH.
In Jupyter, `draw` and `tape_table` return objects with `_repr_svg_` / `_repr_html_`, the methods
Jupyter calls to show an object as a picture or a table; elsewhere they print as plain text.

The picture has the leaves (parameters) at the top and the root (the loss) at the bottom. Every
arrow joins an input to the operation that used it: pointing the way the forward pass went, or,
with `grads=True`, the way backward sends the gradient, labelled with it. Orange arrows end in a
leaf's `.grad`, blue ones at another operation; grey nodes are data an operation saved for its
backward. Op nodes are named `op0`, `op1`, ... in the order backward runs them, the order that
`mg.autograd.tape(tensor)` prints.
"""

from __future__ import annotations

import html
import importlib
import os
import re
import shutil
import subprocess

from . import backend
from .engine.backward import _root_gradient, run_backward, tape
from .engine.function import Context, SavedTensor
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


def to_dot(tensor, params=None, grads=False, gradient=None) -> str:
    """Graphviz DOT text for the graph that backward() would walk from `tensor`.

    Nodes: one box per operation (its grad_fn name, output shape, and the numbers it saved,
    such as the 3 of `x ** 3`), one blue node per leaf tensor that requires grad (its name from
    `params` when given, else "leaf", and its shape), and one grey node per data tensor an
    operation saved for its backward (an input that needs no gradient, such as a batch of
    images). Edges: from each input to the operation that used it, one per use, so a tensor used
    twice has two; edges into a leaf (whose gradient lands in `.grad`) are orange, edges between
    operations blue, data edges grey and dashed. `params` names the leaves (and data): a dict
    {name: tensor}, pairs such as model.named_parameters(), or a Module.

    With `grads=True` the arrows point the way backward sends gradients, and each is labelled
    with the gradient it carries: its values when it has at most 4, else its shape. To see
    them, to_dot runs one more backward pass from `tensor` (starting from `gradient`, ones for
    a one-element tensor, as backward() does) that changes no `.grad` and keeps the graph; so
    draw before backward(), or after backward(retain_graph=True).
    """
    names = _leaf_names(params)
    root = tensor.grad_fn
    lines = [
        "digraph minigrad {",
        '  node [shape=box, fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10];',
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
    sent, leaf_grads = _edge_gradients(tensor, nodes, gradient) if grads else ({}, {})
    op_ids = {node: f"op{step}" for step, node in enumerate(nodes)}
    leaf_ids: dict = {}  # id(leaf) -> node id, in order of first appearance
    data_ids: dict = {}  # id(data tensor) -> node id
    edges = []
    for node in nodes:
        fill = "#c9e4a6" if node is root else "#e8e8e8"
        label = f"{_escape(node.name())}\\nout {_shape(node.output_metadata[0][0])}"
        numbers = _saved_numbers(node)
        if numbers:
            word = "constant" if len(numbers) == 1 else "constants"
            label += f"\\n{word} " + _escape(", ".join(numbers))
        lines.append(
            f'  {op_ids[node]} [label="{label}", style="rounded,filled", fillcolor="{fill}"];'
        )
        for number, (target, _) in enumerate(node.next_functions):
            if target is None:  # an input that needs no gradient: drawn below if it was saved
                continue
            if isinstance(target, Context):
                source, color = op_ids[target], _INTERMEDIATE
            else:
                if id(target) not in leaf_ids:
                    leaf_ids[id(target)] = f"leaf{len(leaf_ids)}"
                    lines.append(_leaf_line(leaf_ids[id(target)], target, names,
                                            grad=leaf_grads.get(id(target))))
                source, color = leaf_ids[id(target)], _RECEIVER
            style = f"color=\"{color}\""
            if grads:  # the arrow points the way the gradient goes, labelled with it
                grad = sent.get((node, number))
                text = "no gradient" if grad is None else _gradient_text(grad)
                style += f', fontcolor="{color}", dir=back, label=" {_escape(text)}"'
            edges.append(f"  {source} -> {op_ids[node]} [{style}];")
        for data in _saved_data(node):
            if id(data) not in data_ids:
                data_ids[id(data)] = f"data{len(data_ids)}"
                lines.append(_data_line(data_ids[id(data)], data, names))
            edges.append(f'  {data_ids[id(data)]} -> {op_ids[node]} [color="{_DATA}", '
                         'style=dashed];')
    if grads:
        lines.append(
            '  label="gradients: orange into a leaf\'s .grad, blue to another operation; '
            'grey dashed: data saved for backward"; fontname="Helvetica"; fontsize=10;'
        )
    return "\n".join(lines + edges + ["}"]) + "\n"


def render(tensor, path, params=None, grads=False, gradient=None) -> str:
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
    image = _draw(to_dot(tensor, params, grads, gradient), fmt)
    atomic_write(path, lambda file: file.write(image), who="render")
    return path


def draw(tensor, params=None, grads=False, gradient=None) -> Graph:
    """The graph behind `tensor` as a Graph: a picture in Jupyter, its DOT text in `.dot`.

    `grads=True` labels every edge with the gradient backward sends along it (see to_dot).
    """
    return Graph(to_dot(tensor, params, grads, gradient))


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
        data = len(re.findall(r"^  data\d+ \[", self.dot, re.MULTILINE))
        text = f"<minigrad graph: {_count(ops, 'op')}, {_count(leaves, 'leaf')}"
        text += f", {data} saved data; " if data else "; "
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

_RECEIVER, _INTERMEDIATE, _DATA = "#d9480f", "#1f6fb2", "#9a9a9a"  # orange, blue, grey


def _edge_gradients(tensor, nodes, gradient) -> tuple:
    """{(node, input number): the gradient backward sends along that edge} and {id(leaf): the
    sum of its edges' gradients, what backward adds to its .grad}, from one more backward pass
    that captures instead of touching `.grad`, and keeps the graph."""
    leaves = []
    for node in nodes:
        for target, _ in node.next_functions:
            if target is not None and not isinstance(target, Context):
                if not any(target is leaf for leaf in leaves):
                    leaves.append(target)
    sent = {}

    def on_send(node, number, grad):
        sent[(node, number)] = grad

    start = _root_gradient(tensor, gradient, "draw(grads=True)")
    try:
        sums = run_backward([tensor], [start], retain_graph=True, inputs=leaves, capture=True,
                            on_send=on_send)
    except RuntimeError as error:
        if "second time" not in str(error):
            raise
        raise RuntimeError(
            "draw(grads=True) runs backward once more to see the gradient on every edge, but an "
            f"earlier backward already freed what a node saved ({error}). Draw before "
            "backward(), or call backward(retain_graph=True)"
        ) from error
    return sent, {id(leaf): total for leaf, total in zip(leaves, sums, strict=True)}


def _gradient_text(grad) -> str:
    """A gradient as an edge label: its values when it has at most 4, else its shape."""
    if grad.array.size > 4:
        return f"grad of shape {_shape(grad.shape)}"
    values = backend.to_host(grad.array).tolist()
    return "grad " + _numbers_text(values)


def _numbers_text(values) -> str:
    """Nested lists of numbers, each printed with 3 significant digits: [[0.5, -1], [2, 3]]."""
    if isinstance(values, list):
        return "[" + ", ".join(_numbers_text(v) for v in values) + "]"
    return f"{values + 0.0:.3g}" if isinstance(values, float) else str(values)  # no "-0"


def _saved_numbers(node) -> list:
    """The numbers a node saved for its backward (the 3 of x ** 3, the 2 of 2 * x), as text."""
    saved = node._saved
    if not saved:  # nothing saved, or already freed by backward
        return []
    numbers = []
    for value in saved:
        if type(value) in (int, float, bool):
            numbers.append(_numbers_text(value))
        elif type(value) is SavedTensor and value.tensor is None and value.counter is None:
            if value.array.size == 1:  # a one-element constant array the op made
                numbers.append(_numbers_text(backend.to_host(value.array).item()))
    return numbers


def _saved_data(node) -> list:
    """The tensors a node saved that need no gradient: data, such as a batch of inputs."""
    saved = node._saved
    if not saved:
        return []
    return [value.tensor for value in saved if type(value) is SavedTensor
            and value.tensor is not None and not value.tensor.requires_grad]



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


def _data_line(node_id: str, data, names: dict) -> str:
    small = data.array.size <= 4  # shown with its values: a constant such as a start gradient
    name = _escape(names.get(id(data), "constant" if small else "data"))
    label = f"{name}\\n{_shape(data.shape)}"
    if data.dtype.kind != "f":  # labels and indices: say they are integers
        label += f" {data.dtype}"
    if small:
        label += "\\n" + _escape(_numbers_text(backend.to_host(data.array).tolist()))
    return (f'  {node_id} [label="{label}", style=filled, fillcolor="#eeeeee", '
            f'fontcolor="#555555", color="{_DATA}"];')


def _leaf_line(node_id: str, leaf, names: dict, is_root: bool = False, grad=None) -> str:
    name = _escape(names.get(id(leaf), "leaf"))
    fill = "#c9e4a6" if is_root else "#cfe2f3"
    label = f"{name}\\n{_shape(leaf.shape)}"
    if grad is not None:  # grads=True: what this backward adds to .grad, the edges' sum
        label += "\\n" + _escape(_gradient_text(grad).replace("grad", ".grad +=", 1))
    return f'  {node_id} [label="{label}", style=filled, fillcolor="{fill}"];'


def _shape(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _escape(text: str) -> str:
    """Make text safe inside a double-quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
