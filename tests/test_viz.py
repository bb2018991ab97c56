"""mg.viz: DOT text for the graph behind a tensor, render's files and errors, notebook displays."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

import minigrad as mg
from minigrad import viz

REPO = Path(__file__).resolve().parent.parent
NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', re.MULTILINE)
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[.*\])?;", re.MULTILINE)
EDGE_WITH_STYLE = re.compile(r"^\s*(\w+) -> (\w+) \[(.*)\];", re.MULTILINE)


def nodes_and_edges(dot: str):
    """{node id: label} and a Counter of (from, to) edges, read back from DOT text."""
    return dict(NODE.findall(dot)), Counter(EDGE.findall(dot))


def used_twice():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = mg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    return x, w, (x * w + x).sum()


def test_to_dot_gives_the_nodes_and_edges_of_a_small_graph():
    x, w, loss = used_twice()
    nodes, edges = nodes_and_edges(mg.viz.to_dot(loss, params={"x": x, "w": w}))
    assert nodes == {
        "op0": r"SumBackward\nout ()",
        "op1": r"AddBackward\nout (3,)",
        "op2": r"MulBackward\nout (3,)",
        "leaf0": r"x\n(3,)",
        "leaf1": r"w\n(3,)",
    }
    # Inputs point at the op that used them; x is used by Add and by Mul.
    assert edges == Counter(
        {
            ("op1", "op0"): 1,
            ("op2", "op1"): 1,
            ("leaf0", "op1"): 1,
            ("leaf0", "op2"): 1,
            ("leaf1", "op2"): 1,
        }
    )


def test_op_ids_follow_the_tape_order():
    _, _, loss = used_twice()
    nodes, _ = nodes_and_edges(mg.viz.to_dot(loss))
    names = [node.name() for node in mg.autograd.tape(loss)]
    assert [nodes[f"op{i}"].split("\\n")[0] for i in range(len(names))] == names


def test_a_tensor_used_twice_by_one_op_has_two_edges():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = nodes_and_edges(mg.viz.to_dot(x * x))
    assert nodes == {"op0": r"MulBackward\nout (2,)", "leaf0": r"leaf\n(2,)"}
    assert edges == Counter({("leaf0", "op0"): 2})


def test_saved_data_is_grey_and_parameters_are_named():
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(4, 3), mg.nn.ReLU(), mg.nn.Linear(3, 2))
    images, labels = mg.randn(5, 4), mg.tensor([0, 1, 0, 1, 1])
    loss = mg.nn.functional.cross_entropy(model(images), labels)
    for params in (model, model.named_parameters(), dict(model.named_parameters())):
        nodes, edges = nodes_and_edges(mg.viz.to_dot(loss, params=params))
        leaves = sorted(label for key, label in nodes.items() if key.startswith("leaf"))
        assert leaves == [
            r"0.bias\n(3,)",
            r"0.weight\n(3, 4)",
            r"2.bias\n(2,)",
            r"2.weight\n(2, 3)",
        ]
        ops = [nodes[f"op{i}"].split("\\n")[0] for i in range(4)]
        assert ops == ["CrossEntropyBackward", "LinearBackward", "ReLUBackward", "LinearBackward"]
        # The first Linear saved the images (its weight's gradient needs them), the loss saved
        # the labels: both are data, drawn grey, with a dashed edge and no gradient.
        data = sorted(label for key, label in nodes.items() if key.startswith("data"))
        assert data == [r"data\n(5, 4)", r"data\n(5,) int64"]
        assert sum(edges.values()) == 3 + 4 + 2  # op-to-op chain, one per parameter, data
    named = {"images": images, "labels": labels, **dict(model.named_parameters())}
    nodes, _ = nodes_and_edges(mg.viz.to_dot(loss, params=named))
    assert r"images\n(5, 4)" in nodes.values() and r"labels\n(5,) int64" in nodes.values()


def test_receiver_edges_are_coloured_apart_from_intermediate_and_data_edges():
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(4, 3), mg.nn.ReLU())
    dot = mg.viz.to_dot(model(mg.randn(2, 4)).sum(), params=model)
    colours = {}
    for source, _, style in EDGE_WITH_STYLE.findall(dot):
        kind = re.match(r"[a-z]+", source).group()
        colours.setdefault(kind, set()).add(re.search(r'color="(#\w+)"', style).group(1))
    assert colours == {"leaf": {viz._RECEIVER}, "op": {viz._INTERMEDIATE}, "data": {viz._DATA}}


def test_grads_labels_every_edge_with_the_gradient_it_carries():
    x, w, loss = used_twice()  # (x * w + x).sum()
    dot = mg.viz.to_dot(loss, params={"x": x, "w": w}, grads=True)
    labels = {(a, b): re.search(r'label=" ([^"]*)"', style).group(1)
              for a, b, style in EDGE_WITH_STYLE.findall(dot) if a != b}
    assert all("dir=back" in style for *_, style in EDGE_WITH_STYLE.findall(dot))
    # Sum sends ones; Add passes them on; Mul sends w to x and x to w.
    assert labels == {
        ("op1", "op0"): "grad [1, 1, 1]",
        ("op2", "op1"): "grad [1, 1, 1]",
        ("leaf0", "op1"): "grad [1, 1, 1]",
        ("leaf0", "op2"): "grad [0.5, -1, 2]",
        ("leaf1", "op2"): "grad [1, 2, 3]",
    }
    nodes, _ = nodes_and_edges(dot)
    assert nodes["leaf0"] == r"x\n(3,)\n.grad += [1.5, 0, 3]"  # the sum of x's two edges
    # Drawing ran a backward of its own: no .grad was touched, and the graph is still there.
    assert x.grad is None and w.grad is None
    loss.backward()
    assert x.grad.tolist() == [1.5, 0.0, 3.0] and w.grad.tolist() == [1.0, 2.0, 3.0]


def test_grads_agree_with_torch_and_show_shapes_of_large_gradients():
    torch = pytest.importorskip("torch")
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(4, 3), mg.nn.Tanh(), mg.nn.Linear(3, 1))
    inputs = mg.randn(5, 4)
    loss = model(inputs).pow(2).mean()
    dot = mg.viz.to_dot(loss, params=model, grads=True)
    nodes, _ = nodes_and_edges(dot)
    assert r"0.weight\n(3, 4)\n.grad += of shape (3, 4)" in nodes.values()  # 12 numbers
    last_bias = next(label for label in nodes.values() if label.startswith(r"2.bias"))
    drawn = float(last_bias.split("[")[1].rstrip("]"))

    reference = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
            theirs.copy_(torch.tensor(mine.detach().numpy()))
    reference(torch.tensor(inputs.numpy())).pow(2).mean().backward()
    assert drawn == pytest.approx(reference[2].bias.grad.item(), rel=2e-3)  # 3 digits drawn


def test_grads_needs_the_graph_and_a_start_for_a_tensor_of_many_elements():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        mg.viz.to_dot(y, grads=True)
    dot = mg.viz.to_dot(y, grads=True, gradient=mg.tensor([1.0, 10.0]))
    assert dot.count('label=" grad [1, 20]"') == 2  # x * x: each use sends x times the start
    y.sum().backward()  # frees what Mul saved
    with pytest.raises(RuntimeError, match=r"retain_graph=True"):
        mg.viz.to_dot(y, grads=True, gradient=mg.tensor([1.0, 1.0]))


def test_constants_a_node_saved_are_labelled():
    x = mg.tensor(2.0, requires_grad=True)
    f = x**4 - 2 * x**2  # Newton's example: the two Pow nodes differ by their exponents
    labels = sorted(mg.viz.to_dot(f).split("\n"))
    assert any(r"PowBackward\nout ()\nconstant 4" in line for line in labels)
    assert any(r"PowBackward\nout ()\nconstant 2" in line for line in labels)
    assert any(r"MulBackward\nout ()\nconstant 2" in line for line in labels)


def test_to_dot_of_a_leaf_and_of_a_tensor_without_graph():
    leaf = mg.zeros(2, 3, requires_grad=True)
    nodes, edges = nodes_and_edges(mg.viz.to_dot(leaf, params={"p": leaf}))
    assert nodes == {"leaf0": r"p\n(2, 3)"} and not edges
    with pytest.raises(ValueError, match="no graph"):
        mg.viz.to_dot(mg.zeros(2))
    with mg.no_grad():
        made_without_graph = leaf * 2
    with pytest.raises(ValueError, match="no_grad"):
        mg.viz.to_dot(made_without_graph)


def test_to_dot_escapes_names_and_works_after_backward_and_on_deep_chains():
    x = mg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):  # far deeper than Python's recursion limit
        y = y * 1.0
    y.backward()  # frees saved arrays; the graph's shape stays
    dot = mg.viz.to_dot(y, params={'say "hi" \\': x})
    nodes, edges = nodes_and_edges(dot)
    assert len(nodes) == 5001 and sum(edges.values()) == 5000
    assert r'label="say \"hi\" \\\n(1,)"' in dot


def fake_graphviz(works: bool):
    """A stand-in for the graphviz package: it draws, or it cannot find the dot program."""
    module = types.ModuleType("graphviz")

    class ExecutableNotFound(RuntimeError):
        pass

    class Source:
        def __init__(self, text):
            self.text = text

        def pipe(self, format):
            if not works:
                raise ExecutableNotFound("failed to execute 'dot'")
            return f"<{format}>{self.text}".encode()

    module.ExecutableNotFound, module.Source = ExecutableNotFound, Source
    return module


def test_render_uses_the_graphviz_package_when_present(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", fake_graphviz(works=True))
    monkeypatch.setattr(viz, "_dot_program", lambda: None)
    _, _, loss = used_twice()
    path = viz.render(loss, tmp_path / "graph.svg")
    assert Path(path).read_text() == "<svg>" + viz.to_dot(loss)


def test_render_says_what_to_install_when_graphviz_is_absent(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz raises ImportError
    monkeypatch.setattr(viz, "_dot_program", lambda: None)
    assert viz._graphviz_package() is None
    _, _, loss = used_twice()
    with pytest.raises(RuntimeError, match="apt-get install graphviz") as error:
        viz.render(loss, tmp_path / "graph.svg")
    assert "pip install graphviz" in str(error.value) and "to_dot" in str(error.value)
    assert not (tmp_path / "graph.svg").exists()


def test_render_error_when_the_package_cannot_find_dot(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", fake_graphviz(works=False))
    monkeypatch.setattr(viz, "_dot_program", lambda: None)
    _, _, loss = used_twice()
    with pytest.raises(RuntimeError, match="brew install graphviz"):
        viz.render(loss, tmp_path / "graph.png")


def test_render_rejects_an_unknown_format(tmp_path):
    _, _, loss = used_twice()
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf"):
        viz.render(loss, tmp_path / "graph.jpg")


# In CI (.ci/run installs Graphviz) a missing dot is a failure, not a skip: the test runs and fails.
needs_dot = pytest.mark.skipif(
    viz._dot_program() is None and not os.environ.get("CI"),
    reason="Graphviz's dot is not installed",
)


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".png", b"\x89PNG")])
def test_render_draws_with_the_dot_program(tmp_path, monkeypatch, suffix, magic):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # force the dot-program path
    x, w, loss = used_twice()
    path = tmp_path / f"graph{suffix}"
    assert viz.render(loss, path, params={"x": x, "w": w}) == str(path)
    assert magic in path.read_bytes()[:300]


def test_draw_shows_as_svg_in_a_notebook(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", fake_graphviz(works=True))
    x, w, loss = used_twice()
    graph = mg.viz.draw(loss, params={"x": x, "w": w})
    assert graph.dot == mg.viz.to_dot(loss, params={"x": x, "w": w})
    assert graph._repr_svg_() == graph.svg() == "<svg>" + graph.dot


def test_draw_without_graphviz_falls_back_to_text_that_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    monkeypatch.setattr(viz, "_dot_program", lambda: None)
    _, _, loss = used_twice()
    graph = mg.viz.draw(loss)
    assert graph._repr_svg_() is None  # Jupyter then shows the repr
    assert repr(graph) == (
        "<minigrad graph: 3 ops, 2 leaves; .dot holds its DOT text; "
        "install Graphviz to see it drawn: apt-get install graphviz>"
    )
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        graph.svg()


@needs_dot
def test_draw_gives_an_svg_with_every_label(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # the dot program itself
    x, w, loss = used_twice()
    graph = mg.viz.draw(loss, params={"x": x, "w": w})
    svg = graph._repr_svg_()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in nodes_and_edges(graph.dot)[0].values():
        assert all(line in texts for line in label.split("\\n")), label
    assert repr(graph) == "<minigrad graph: 3 ops, 2 leaves; .dot holds its DOT text>"


def test_tape_table_prints_like_the_tape_and_names_the_leaves():
    x, w, loss = used_twice()
    assert repr(mg.viz.tape_table(loss)) == str(mg.autograd.tape(loss))
    assert repr(mg.viz.tape_table(mg.autograd.tape(loss))) == str(mg.autograd.tape(loss))
    table = mg.viz.tape_table(loss, params={"x": x, "w": w})
    assert table.rows == [
        ("0", "SumBackward", "()", "AddBackward"),
        ("1", "AddBackward", "(3,)", "MulBackward, x (3,)"),
        ("2", "MulBackward", "(3,)", "x (3,), w (3,)"),
    ]


def test_tape_table_is_an_html_table_with_escaped_cells():
    x = mg.tensor([1.0], requires_grad=True)
    table = mg.viz.tape_table(x * 2.0, params={"<b>x</b>": x})
    page = table._repr_html_()
    assert page.startswith("<table>") and page.endswith("</table>")
    assert page.count("<tr>") == 2  # the header and one node
    assert "<td>&lt;b&gt;x&lt;/b&gt; (1,)</td>" in page and "<b>" not in page


def test_render_writes_through_a_link_and_replaces_the_file_whole(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", fake_graphviz(works=True))
    _, _, loss = used_twice()
    target = tmp_path / "real.svg"
    target.write_text("old picture")
    (tmp_path / "link.svg").symlink_to(target)
    viz.render(loss, tmp_path / "link.svg")
    assert (tmp_path / "link.svg").is_symlink()
    assert target.read_text() == "<svg>" + viz.to_dot(loss)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.svg", "real.svg"]


def load_example(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_picture_shows_the_tutorial_network():
    """docs/images/tutorial_graph.svg has every label that to_dot gives examples/tape.py's graph."""
    svg = (REPO / "docs" / "images" / "tutorial_graph.svg").read_text()
    model, loss, images, labels = load_example("tape").tutorial_loss(64, with_data=True)
    names = {**dict(model.named_parameters()), "images": images, "labels": labels}
    dot = mg.viz.to_dot(loss, params=names, grads=True)
    nodes, _ = nodes_and_edges(dot)
    assert len(nodes) == 6 + 6 + 2  # six ops, six parameters, the images and the labels
    texts = {html.unescape(text).strip() for text in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    edge_labels = re.findall(r'label=" ([^"]*)"', dot)
    for line in [line for label in nodes.values() for line in label.split("\\n")] + edge_labels:
        assert line in texts, f"{line!r} is not in the SVG: remake it (see docs/README.md)"


def test_figures_are_drawn_from_what_minigrad_computes(tmp_path):
    """examples/figures.py draws each figure; the committed ones carry the same numbers."""
    pytest.importorskip("matplotlib")
    figures = load_example("figures")
    names = ["broadcast_adjoint.svg", "views_share_buffer.svg", "linear_shapes.svg",
             "unfold_conv.svg"]
    figures.main([str(tmp_path), "--only", *names])
    for name in names:
        drawn = re.findall(r"<text[^>]*>([^<]*)</text>", (tmp_path / name).read_text())
        committed = (REPO / "docs" / "images" / name).read_text()
        assert drawn and all(text in committed for text in drawn), f"remake docs/images/{name}"
    broadcast = (tmp_path / "broadcast_adjoint.svg").read_text()
    assert all(f">{value}<" in broadcast for value in ("5", "7", "9"))  # b.grad: rows summed
