"""The notebooks in docs/notebooks: each runs top to bottom, shows its pictures, is stored clean.

Convention: committed notebooks carry no outputs (docs/notebooks/README.md says why and how to
strip them); this test runs each one in a fresh kernel on the offline MNIST copy instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from minigrad import viz

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "docs" / "notebooks").glob("*.ipynb"))
# shared/ holds the seed tutorial beside datasets/ (the MNIST copy the tests point at)
SHARED = [REPO.parent / "shared", Path(os.environ.get("MINIGRAD_DATA_ROOT", REPO)).parent]
SEED = next(
    (p for p in (s / "seed" / "linear-layer-tutorial.md" for s in SHARED) if p.exists()),
    SHARED[0] / "seed" / "linear-layer-tutorial.md",
)
# The only lines of the tutorial's code that the notebook changes: its imports, onto minigrad.
ON_MINIGRAD = {
    "import torch": "import minigrad as torch",
    "import torch.nn as nn": "import minigrad.nn as nn",
    "from torch import optim": "from minigrad import optim",
}
TRAINING_STEPS = 100  # per epoch; the notebook trains 3 epochs, so 300 steps


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def tagged(notebook, tag: str) -> list:
    return [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]


def kinds(cell) -> set:
    """The MIME types of a code cell's displayed outputs."""
    return {kind for out in cell.outputs if "data" in out for kind in out["data"]}


def printed(cells) -> str:
    """What the cells printed (stdout and stderr), as one string."""
    return "".join(out.get("text", "") for cell in cells for out in cell.outputs)


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["autograd_from_the_inside.ipynb", "linear_layer.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_are_stripped(path):
    notebook = read(path)
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                f"{path.name}, cell {number} has outputs: strip them (docs/notebooks/README.md)"
            )
    assert set(notebook["metadata"]) <= {"kernelspec", "language_info"}, (
        f"{path.name}: metadata {sorted(notebook['metadata'])} (widget state?): strip it"
    )


def seed_code_blocks() -> list:
    """The tutorial's python blocks: fences are lines that are exactly ```python and ```."""
    blocks, block = [], None
    for line in SEED.read_text(encoding="utf-8").splitlines():
        if block is None and line == "```python":
            block = []
        elif block is not None and line == "```":
            blocks.append("\n".join(block).strip("\n"))
            block = None
        elif block is not None:
            block.append(line)
    return blocks


def test_tutorial_cells_are_the_tutorials_code():
    if not SEED.exists():
        pytest.skip(f"the seed tutorial is not at {SEED}")
    seed = {
        "\n".join(ON_MINIGRAD.get(line, line) for line in block.split("\n"))
        for block in seed_code_blocks()
    }
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(REPO / "docs" / "notebooks" / "linear_layer.ipynb", as_version=4)
    cells = tagged(notebook, "tutorial")
    assert len(cells) >= 20
    assert "class Linear_Layer(torch.autograd.Function):" in cells[0].source
    for cell in cells:
        assert cell.source in seed, f"cell {cell.id} is tagged tutorial but is not the tutorial's"


@pytest.fixture(scope="module")
def executed(data_root, tmp_path_factory):
    """Run a notebook in a fresh kernel, in a scratch folder, on the offline MNIST copy."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    done = {}

    def run(name: str):
        if name not in done:
            notebook = nbformat.read(REPO / "docs" / "notebooks" / name, as_version=4)
            environment = {
                "MINIGRAD_DATA_ROOT": str(data_root),
                "MINIGRAD_NOTEBOOK_STEPS": str(TRAINING_STEPS),
                "OPENBLAS_NUM_THREADS": "1",  # a busy small machine: BLAS threads only wait
                "PYTHONPATH": os.pathsep.join(  # the kernel imports this tree's minigrad
                    filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
                ),
                "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            }
            saved = {key: os.environ.get(key) for key in environment}
            os.environ.update(environment)  # the kernel inherits them
            try:
                client = nbclient.NotebookClient(
                    notebook, timeout=120, kernel_name="python3",
                    resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}},
                )
                client.execute()  # raises CellExecutionError on the first cell that fails
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            done[name] = notebook
        return done[name]

    return run


def assert_graphs_drawn(notebook):
    cells = tagged(notebook, "graph")
    assert cells
    for cell in cells:
        if viz._dot_program() is None and not os.environ.get("CI"):
            assert "text/plain" in kinds(cell)  # the fallback text, saying what to install
        else:
            assert "image/svg+xml" in kinds(cell), f"cell {cell.id} drew no picture"


def test_linear_layer_notebook_runs_and_shows_its_pictures(executed):
    notebook = executed("linear_layer.ipynb")
    assert_graphs_drawn(notebook)
    assert all("text/html" in kinds(cell) for cell in tagged(notebook, "tape"))
    for tag in ("images", "curves"):
        assert all("image/png" in kinds(cell) for cell in tagged(notebook, tag)), tag
    training = printed(tagged(notebook, "training"))
    assert training.count(f"| {TRAINING_STEPS} steps") == 3
    accuracies = [float(line.split("Val. Acc:")[1].rstrip("%\n ")) for line in
                  training.splitlines() if "Val. Acc:" in line]
    assert accuracies[-1] > 60, f"300 steps should learn something: {accuracies}"
    # the learner's own Linear_Layer trains, beside minigrad's nn.Linear trained the same way
    (compare,) = [cell for cell in notebook.cells if cell.get("id") == "cell-compare"]
    text = printed([compare])  # (tqdm's bars and the prints share the output)
    ours = re.findall(r"your Linear_Layer: validation accuracy ([\d.]+)%", text)
    theirs = re.findall(r"minigrad nn.Linear: validation accuracy ([\d.]+)%", text)
    assert [float(a) for a in ours] == [accuracies[-1]], text
    assert len(theirs) == 1 and float(theirs[0]) > 60, text
    (hiplot_cell,) = tagged(notebook, "hiplot")
    try:
        import hiplot  # noqa: F401  (the kernel runs in this same environment)
    except ImportError:
        assert "HiPlot is not installed" in printed([hiplot_cell])
    else:
        assert "text/html" in kinds(hiplot_cell)
    assert "x = 1.0000" in printed(tagged(notebook, "newton")).splitlines()[-1]
    assert "from the Jacobian: True" in printed(tagged(notebook, "forward"))


def test_autograd_from_the_inside_notebook_runs(executed):
    notebook = executed("autograd_from_the_inside.ipynb")
    assert_graphs_drawn(notebook)
    (hooks,) = tagged(notebook, "hooks")
    assert "order: ['loss', 'b', 'a', 'x', 'w']" in printed([hooks])  # a leaf's hook: once
    (by_hand,) = tagged(notebook, "by-hand")
    assert "x: by hand [4.5, 0.0, 54.0], engine [4.5, 0.0, 54.0]" in printed([by_hand])
    (grads,) = tagged(notebook, "grads")  # drawn after backward(retain_graph=True)
    if "image/svg+xml" in kinds(grads):
        picture = "".join(out["data"]["image/svg+xml"] for out in grads.outputs if "data" in out)
        assert ".grad += [4.5, 0, 54]" in picture  # x's two edges, summed: its .grad
