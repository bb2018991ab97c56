"""Pictures of the graph behind a tensor: Graphviz DOT text, and SVG or PNG files made from it.

    dot_text = mg.viz.to_dot(loss, params=model.named_parameters())
    mg.viz.render(loss, "graph.svg", params=model)

`to_dot` needs nothing but minigrad. `render` hands the text to Graphviz: the `graphviz` Python
package when it is installed, else the `dot` program on PATH.

The picture reads like the forward pass: every arrow goes from an input to the operation that
used it, so the leaves (parameters, inputs) are at the top and the root (the loss) is at the
bottom. backward() walks the same arrows the other way. Op nodes are named `op0`, `op1`, ... in
the order backward runs them, the order that `mg.autograd.tape(tensor)` prints.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess

from .autograd.engine import tape
from .autograd.function import Context

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
    with open(path, "wb") as file:
        file.write(image)
    return path


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


def _leaf_line(node_id: str, leaf, names: dict, is_root: bool = False) -> str:
    name = _escape(names.get(id(leaf), "leaf"))
    fill = "#c9e4a6" if is_root else "#cfe2f3"
    return f'  {node_id} [label="{name}\\n{_shape(leaf.shape)}", style=filled, fillcolor="{fill}"];'


def _shape(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _escape(text: str) -> str:
    """Make text safe inside a double-quoted DOT string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
