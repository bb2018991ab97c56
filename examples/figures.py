"""Draw the figures of the docs from what minigrad computes: every number in them is real.

    python examples/figures.py docs/images

broadcast_adjoint.svg   y = x + b with b broadcast over rows; b's gradient is summed back down
views_share_buffer.svg  x, a column of x and x.t() read one buffer and share one version counter
linear_shapes.svg       the Linear layer's shapes, forward and backward, receiver and intermediate
grads_graph.svg         mg.viz.draw(loss, grads=True) for the running example (needs Graphviz)
unfold_conv.svg         a convolution as unfold and a product; fold adds the columns back

All but grads_graph.svg need matplotlib (the `examples` extra); the last Graphviz's `dot` program.
Colours follow mg.viz: orange for a gradient that lands in a leaf's .grad (the tutorial's
"receiver" gradients), blue for one that goes on to another operation ("intermediate").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import minigrad as mg
from minigrad.serialization import atomic_write

RECEIVER, INTERMEDIATE, DATA = "#d9480f", "#1f6fb2", "#9a9a9a"  # as in minigrad/viz.py


def grid(ax, left, top, values, color="#ffffff", label=None, edge="#333333"):
    """Draw a 2-D list of numbers (or of "" for shape-only cells) as a grid of unit squares."""
    for row, line in enumerate(values):
        for col, value in enumerate(line):
            ax.add_patch(_square(left + col, top - row - 1, color, edge))
            text = value if isinstance(value, str) else f"{value:g}"
            ax.text(left + col + 0.5, top - row - 0.5, text, ha="center", va="center", size=10)
    if label:
        ax.text(left + len(values[0]) / 2, top + 0.35, label, ha="center", va="bottom", size=10)


def arrow(ax, start, end, text, color="#333333", text_side=0.3):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color=color, lw=1.5))
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + text_side)
    ax.text(*middle, text, ha="center", va="bottom", size=9, color=color)


def broadcast_adjoint(path):
    """Forward copies b into every row; backward sums the rows of y's gradient into b's."""
    x = mg.zeros(2, 3, requires_grad=True)
    b = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x + b
    y_grad = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y.backward(y_grad)

    fig, ax = _canvas(13, 6.4)
    ax.text(0, 6.1, "forward: y = x + b", size=11, weight="bold")
    grid(ax, 0.5, 4.6, [b.tolist()], "#cfe2f3", "b, shape (3,)")
    arrow(ax, (3.8, 4.1), (8.2, 4.1), "broadcast:\nb is read by both rows")
    grid(ax, 8.5, 5.1, [b.tolist(), b.tolist()], "#cfe2f3", "b as y sees it, (2, 3)")

    ax.text(0, 2.4, "backward: the gradient of b", size=11, weight="bold")
    grid(ax, 8.5, 1.5, y_grad.tolist(), "#e8e8e8", "gradient of y, (2, 3)")
    arrow(ax, (8.2, 0.5), (3.8, 0.5), "unbroadcast:\nsum the rows", RECEIVER)
    grid(ax, 0.5, 1.0, [b.grad.tolist()], "#fbe3d6", "b.grad, shape (3,)")
    ax.text(11.9, 0.5, "each b[j] was used twice,\nso its gradient is the sum\nof both uses",
            size=9, va="center")
    _save(fig, path)


def views_share_buffer(path):
    """x, x[:, 1] and x.t(): three tensors, one buffer, one version counter."""
    x = mg.arange(6.0).reshape(2, 3)
    column, transposed = x[:, 1], x.t()
    before = x.flatten().tolist()
    column.mul_(10)  # writes through the view into the shared buffer
    after = x.flatten().tolist()

    fig, ax = _canvas(13, 6.6)
    ax.text(0, 6.2, "one buffer, three tensors: x = mg.arange(6.).reshape(2, 3);  "
            "column = x[:, 1];  t = x.t()", size=10)
    grid(ax, 0.5, 4.8, [after[0:3], after[3:6]], "#cfe2f3", "x  (2, 3)")
    grid(ax, 5.0, 4.8, [[v] for v in column.tolist()], "#fbe3d6", "column  (2,)")
    grid(ax, 8.0, 4.8, transposed.tolist(), "#e8e8e8", "t  (3, 2)")
    buffer_left = 2.5
    grid(ax, buffer_left, 1.2, [after], "#ffffff")
    ax.text(buffer_left + 3, -0.15, "the buffer: 6 floats in a row, x's rows one after the other",
            ha="center", va="top", size=9)
    for position in (1, 4):  # column's two elements are cells 1 and 4 of the buffer
        ax.annotate("", xy=(buffer_left + position + 0.5, 1.25),
                    xytext=(6.05, 4.8 - position // 3 - 0.5),
                    arrowprops=dict(arrowstyle="->", color="#555555", lw=1.2))
    before = "[" + ", ".join(f"{v:g}" for v in before) + "]"
    ax.text(11.2, 4.2, f"before column.mul_(10):\n{before}", size=9, va="top")
    ax.text(11.2, 2.9, "after: cells 1 and 4 changed,\nand x and t see it", size=9, va="top")
    versions = (x._version, column._version, transposed._version)
    ax.text(buffer_left, -1.1, "one version counter: x._version, column._version, t._version = "
            f"{versions}", size=10)
    _save(fig, path)


def linear_shapes(path):
    """Y = X @ weight.T + b with B=4, in=6, out=3, and the shapes of its three gradients."""
    batch, n_in, n_out = 4, 6, 3
    X = mg.randn(batch, n_in)
    layer = mg.nn.Linear(n_in, n_out)
    layer(X).sum().backward()
    assert layer.weight.grad.shape == layer.weight.shape  # the picture's claims, checked

    def cells(rows, cols):
        return [[""] * cols for _ in range(rows)]

    fig, ax = _canvas(15, 12.5, bottom=-3.2)
    ax.text(0, 12.3, f"nn.Linear with B = {batch} rows, in = {n_in}, out = {n_out}, its weight "
            "stored (out, in)\n(the tutorial's first layer: B = 64, in = 784, out = 128)",
            size=10, va="top")
    ax.text(0, 10.6, "forward:  Y = X @ weight.T + b", size=11, weight="bold")
    grid(ax, 0, 9.5, cells(batch, n_out), "#e8e8e8", "Y (B, out)")
    ax.text(3.5, 7.5, "=", size=14)
    grid(ax, 4.3, 9.5, cells(batch, n_in), "#eeeeee", "X (B, in): data")
    ax.text(10.5, 7.5, "@", size=14)
    grid(ax, 11.3, 10.5, cells(n_in, n_out), "#cfe2f3", "weight.T (in, out)")
    ax.text(14.5, 7.5, "+ b (out,)", size=10)

    ax.text(0, 3.9, "backward, from dY = d loss / d Y (B, out):", size=11, weight="bold")
    grid(ax, 0, 3.0, cells(batch, n_in), "#dbe8f6", None, INTERMEDIATE)
    ax.text(0, 3.2, "dX = dY @ weight  (B, in)", size=10, color=INTERMEDIATE)
    ax.text(0, -1.3, "intermediate: goes on to\nthe layer below", size=9, color=INTERMEDIATE,
            va="top")
    grid(ax, 7.2, 3.0, cells(n_out, n_in), "#fbe3d6", None, RECEIVER)
    ax.text(7.2, 3.2, "d weight = dY.T @ X  (out, in)", size=10, color=RECEIVER)
    ax.text(7.2, -0.3, "receiver: into weight.grad,\nthe shape of weight", size=9, color=RECEIVER,
            va="top")
    grid(ax, 14.0, 3.0, cells(1, n_out), "#fbe3d6", None, RECEIVER)
    ax.text(14.0, 3.2, "db = dY.sum(0)  (out,)", size=10, color=RECEIVER)
    ax.text(14.0, 1.7, "receiver: into bias.grad\n(b was broadcast over\nthe batch: summed back)",
            size=9, color=RECEIVER, va="top")
    _save(fig, path)


def grads_graph(path):
    """The running example of docs/autograd.md, its gradients on the edges."""
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = mg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    loss = (x * w + x).sum()
    mg.viz.render(loss, path, params={"x": x, "w": w}, grads=True)


def unfold_conv(path):
    """A convolution as unfold and a product: a 4 x 4 image's 3 x 3 patches become columns, the
    kernel (flattened) times the columns is the output; fold of ones counts the patches over
    each pixel, where backward's gradients add up."""
    F = mg.nn.functional
    x = mg.arange(16.0).reshape(1, 1, 4, 4)
    kernel = mg.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    cols = F.unfold(x, 3)[0]  # (9, 4)
    y = F.conv2d(x, kernel.reshape(1, 1, 3, 3))[0, 0]
    counts = F.fold(mg.ones(1, 9, 4), (4, 4), 3)[0, 0]
    patch, column, plain = "#fbe3d6", "#fbe3d6", "#ffffff"

    fig, ax = _canvas(19, 11.5, bottom=-0.3)
    image = x[0, 0].tolist()
    for row in range(4):
        for col in range(4):
            inside = row < 3 and col < 3  # the first patch
            ax.add_patch(_square(0.5 + col, 9.5 - row - 1, patch if inside else plain, "#333333"))
            ax.text(1 + col, 9 - row, f"{image[row][col]:g}", ha="center", va="center", size=10)
    ax.text(2.5, 9.85, "x, 4 x 4 (one channel)", ha="center", va="bottom", size=10)
    grid(ax, 1, 4.5, kernel.tolist(), "#e8e8e8", "W, 3 x 3")
    arrow(ax, (4.8, 7.5), (7.2, 7.5), "unfold:\neach 3 x 3 patch\na column")
    values = cols.tolist()
    for row in range(9):
        for col in range(4):
            color = column if col == 0 else plain
            ax.add_patch(_square(7.5 + col, 9.5 - row - 1, color, "#333333"))
            ax.text(8 + col, 9 - row, f"{values[row][col]:g}", ha="center", va="center", size=10)
    ax.text(9.5, 9.85, "cols, 9 x 4 (one column per position)", ha="center", va="bottom", size=10)
    arrow(ax, (11.8, 8.0), (14.2, 8.0), "W (as 1 x 9)\n@ cols")
    grid(ax, 14.5, 9.0, y.tolist(), "#cfe2f3", "y, 2 x 2")
    arrow(ax, (11.8, 3.0), (14.2, 3.0), "fold (backward):\nadd each column\nback", RECEIVER)
    grid(ax, 14.5, 4.5, counts.tolist(), "#fbe3d6", "fold(ones): patches per pixel")
    _save(fig, path)


FIGURES = {
    "broadcast_adjoint.svg": broadcast_adjoint,
    "views_share_buffer.svg": views_share_buffer,
    "linear_shapes.svg": linear_shapes,
    "grads_graph.svg": grads_graph,
    "unfold_conv.svg": unfold_conv,
}


def _canvas(width, height, bottom=-1.5):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable files
    matplotlib.rcParams["svg.hashsalt"] = "minigrad"  # the same SVG from the same figure
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width * 0.55, height * 0.55))
    ax.set_xlim(-0.3, width + 2.5)
    ax.set_ylim(bottom, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _square(left, bottom, color, edge):
    from matplotlib.patches import Rectangle

    return Rectangle((left, bottom), 1, 1, facecolor=color, edgecolor=edge, lw=1)


def _save(fig, path):
    """Write the figure atomically (a reader never sees half a file); the format from the name."""
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lstrip(".")
    metadata = {"Date": None} if fmt == "svg" else None
    atomic_write(path, lambda file: fig.savefig(file, format=fmt, bbox_inches="tight",
                                                metadata=metadata), who="figures")
    plt.close(fig)


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the SVG files (docs/images)")
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="draw only these")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in args.only or FIGURES:
        FIGURES[name](folder / name)
        written.append(folder / name)
        print(f"drew {folder / name}")
    return written


if __name__ == "__main__":
    main()
