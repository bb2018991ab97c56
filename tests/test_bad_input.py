"""Bad input: every public entry point that takes user data fails with a clear error.

One table row per mistake: what the user calls, the exception type, and a fragment of the
message that names the problem (and, where it helps, the values involved). Failing saves must
also leave every file that existed before untouched, and no temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.data.mnist import read_idx

F = mg.nn.functional
REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "mnist.py"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def row(id, call, error, match, marks=()):
    """call(tmp_path) must raise `error` with a message matching the regex `match`."""
    return pytest.param(call, error, match, id=id, marks=marks)


def on_fake_gpu(tensor: mg.Tensor) -> mg.Tensor:
    """The same tensor labelled as living on cuda:0 (enough to test the device check)."""
    tensor.device = mg.device("cuda:0")
    return tensor


def write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def valid_npz(folder: Path) -> bytes:
    mg.save({"weight": mg.ones(2, 3), "step": 3}, folder / "valid.npz")
    return (folder / "valid.npz").read_bytes()


def npz_with(folder: Path, name: str, **arrays) -> Path:
    np.savez(folder / name, **arrays)
    return folder / name


def idx(dims: tuple, payload: int | None = None, magic: bytes | None = None) -> bytes:
    """An IDX file of unsigned bytes; payload: how many data bytes (default: the right count)."""
    header = (magic or bytes([0, 0, 8, len(dims)])) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + bytes(int(np.prod(dims)) if payload is None else payload)


def linear() -> mg.nn.Module:
    return mg.nn.Linear(3, 2)


def logits() -> mg.Tensor:
    return mg.zeros(4, 10, requires_grad=True)


CUDA_MISSING = "CuPy|not available"
no_gpu = pytest.mark.skipif(mg.cuda.is_available(), reason="needs a machine without a GPU")

TENSORS = [
    row("tensor from a ragged list", lambda tmp: mg.tensor([[1, 2], [3]]), ValueError,
        "ragged nested list: every row must have the same length"),
    row("tensor from a string", lambda tmp: mg.tensor("1.5"), TypeError, "from str"),
    row("tensor from a list of strings", lambda tmp: mg.tensor(["1", "2"]), TypeError,
        "expected numbers"),
    row("tensor from an array of strings", lambda tmp: mg.tensor(np.array(["a"])), TypeError,
        "ndarray with <U1 elements"),
    row("tensor from None", lambda tmp: mg.tensor(None), TypeError, "NoneType"),
    row("tensor from a list with None", lambda tmp: mg.tensor([1.0, None]), TypeError,
        "object elements"),
    row("tensor from a dict", lambda tmp: mg.tensor({"a": 1}), TypeError, "from dict"),
    row("unknown dtype name", lambda tmp: mg.tensor([1.0], dtype="float8"), TypeError,
        "unknown dtype 'float8'"),
    row("unknown device name", lambda tmp: mg.tensor([1.0], device="gpu"), ValueError,
        "unknown device 'gpu'"),
    row("device of a wrong type", lambda tmp: mg.tensor([1.0], device=0), TypeError,
        "device must be a string"),
    row("cuda without a GPU", lambda tmp: mg.tensor([1.0], device="cuda"), RuntimeError,
        CUDA_MISSING, marks=no_gpu),
    row("requires_grad on integers", lambda tmp: mg.tensor([1, 2], requires_grad=True),
        RuntimeError, "only floating-point tensors can require gradients, got dtype int64"),
    row("negative size", lambda tmp: mg.zeros(2, -1), ValueError, "non-negative ints"),
    row("fractional size", lambda tmp: mg.randn(2.5), TypeError, "non-negative ints"),
    row("from_numpy of a list", lambda tmp: mg.from_numpy([1.0]), TypeError,
        "expects a numpy.ndarray, got list"),
    row("arange with step 0", lambda tmp: mg.arange(0, 5, 0), ValueError, "step must not be zero"),
    row("manual_seed with a string", lambda tmp: mg.manual_seed("42"), TypeError,
        "seed must be an int"),
    row("item of many elements", lambda tmp: mg.zeros(2).item(), RuntimeError,
        r"only one-element tensors.*shape \(2,\)"),
    row("truth value of many elements", lambda tmp: bool(mg.zeros(2)), RuntimeError,
        "ambiguous"),
]

SHAPES = [
    row("add with shapes that do not broadcast", lambda tmp: mg.zeros(2, 3) + mg.zeros(4),
        ValueError, r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast together"),
    row("sub with shapes that do not broadcast", lambda tmp: mg.zeros(2, 3) - mg.zeros(2),
        ValueError, r"sub: shapes \(2, 3\) and \(2,\)"),
    row("mul with shapes that do not broadcast", lambda tmp: mg.zeros(3) * mg.zeros(2, 2),
        ValueError, r"mul: shapes \(3,\) and \(2, 2\)"),
    row("div by an array that does not broadcast", lambda tmp: mg.zeros(3) / np.ones(4),
        ValueError, r"div: shapes \(3,\) and \(4,\)"),
    row("pow with shapes that do not broadcast", lambda tmp: mg.ones(3) ** mg.ones(2),
        ValueError, r"pow: shapes \(3,\) and \(2,\)"),
    row("matmul with inner sizes that differ", lambda tmp: mg.zeros(64, 784) @ mg.zeros(128, 10),
        ValueError, r"matmul: shapes \(64, 784\) and \(128, 10\) cannot be multiplied "
        r"\(784 != 128\)"),
    row("matmul with batch dims that differ", lambda tmp: mg.zeros(2, 3, 4) @ mg.zeros(5, 4, 2),
        ValueError, "batch dims"),
    row("matmul of a 0-d tensor", lambda tmp: mg.tensor(2.0) @ mg.zeros(2), ValueError,
        "at least 1 dimension"),
    row("Linear fed the wrong number of features",
        lambda tmp: mg.nn.Linear(784, 10)(mg.zeros(2, 28)),
        ValueError, r"input of shape \(2, 28\) has 28 features, but the layer expects 784"),
    row("reshape to another size", lambda tmp: mg.zeros(2, 3).reshape(4), ValueError,
        r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into shape \(4,\)"),
    row("sum over a dim out of range", lambda tmp: mg.zeros(2, 3).sum(2), IndexError,
        "sum: dim 2 is out of range for a tensor with 2 dimensions"),
    row("mean over a dim out of range", lambda tmp: mg.zeros(2, 3).mean(-3), IndexError,
        "mean: dim -3 is out of range"),
    row("max over a dim out of range", lambda tmp: mg.zeros(2, 3).max(5), IndexError,
        "dim 5 is out of range"),
    row("max of an empty tensor", lambda tmp: mg.zeros(0).max(), RuntimeError, "empty"),
    row("softmax over a dim out of range", lambda tmp: mg.zeros(2, 3).softmax(2), IndexError,
        "softmax: dim 2 is out of range"),
    row("log_softmax without an int dim", lambda tmp: mg.zeros(2, 3).log_softmax(None),
        TypeError, "log_softmax: dim must be an int"),
    row("transpose of a dim out of range", lambda tmp: mg.zeros(2, 3).transpose(0, 2),
        IndexError, "transpose: dim 2 is out of range"),
    row("unsqueeze at a dim out of range", lambda tmp: mg.zeros(2, 3).unsqueeze(4), IndexError,
        "unsqueeze: dim 4 is out of range"),
    row("index out of range", lambda tmp: mg.zeros(2, 3)[5], IndexError,
        r"index 5 is invalid for shape \(2, 3\)"),
    row("index with floats", lambda tmp: mg.zeros(2, 3)[mg.tensor([0.5])], IndexError,
        "integer"),
    row("backward of many elements without a gradient",
        lambda tmp: (mg.zeros(2, requires_grad=True) * 2).backward(), RuntimeError,
        r"only for scalar outputs .* shape \(2,\); pass gradient="),
    row("backward with a gradient of another shape",
        lambda tmp: (mg.zeros(2, requires_grad=True) * 2).backward(mg.ones(3)), RuntimeError,
        r"gradient has shape \(3,\), but the tensor has shape \(2,\)"),
    row("backward of a tensor that needs no grad", lambda tmp: mg.zeros(2).sum().backward(),
        RuntimeError, "does not require grad"),
    row("backward twice through a freed graph", lambda tmp: _backward_twice(), RuntimeError,
        "second time.*retain_graph=True"),
]


def _backward_twice():
    y = (mg.ones(2, requires_grad=True).exp()).sum()
    y.backward()
    y.backward()


DEVICES = [
    row("add across devices", lambda tmp: on_fake_gpu(mg.zeros(2)) + mg.zeros(2), RuntimeError,
        "expected all tensors on the same device, found cuda:0 and cpu"),
    row("matmul across devices", lambda tmp: mg.zeros(2, 2) @ on_fake_gpu(mg.zeros(2, 2)),
        RuntimeError, "same device, found cpu and cuda:0"),
    row("linear with weights on another device",
        lambda tmp: F.linear(mg.zeros(1, 3), on_fake_gpu(mg.zeros(2, 3))), RuntimeError,
        "same device"),
    row("cross_entropy with labels on another device",
        lambda tmp: F.cross_entropy(logits(), on_fake_gpu(mg.tensor([0, 1, 2, 3]))), RuntimeError,
        "same device"),
    row("model to a missing GPU", lambda tmp: linear().to("cuda:0"), RuntimeError, CUDA_MISSING,
        marks=no_gpu),
    row("DataLoader to an unknown device",
        lambda tmp: mg.data.DataLoader((np.zeros((4, 2)), np.zeros(4)), device="tpu"), ValueError,
        "unknown device 'tpu'"),
]

LABELS = [
    row("float labels", lambda tmp: F.cross_entropy(logits(), mg.tensor([0.0, 1.0, 2.0, 3.0])),
        TypeError, "targets must be integer class indices, got float32"),
    row("label out of range", lambda tmp: F.cross_entropy(logits(), mg.tensor([0, 1, 10, 3])),
        IndexError, r"target 10 is out of range for 10 classes \(expected 0 to 9\)"),
    row("negative label", lambda tmp: F.cross_entropy(logits(), mg.tensor([0, -1, 2, 3])),
        IndexError, "target -1 is out of range"),
    row("too few labels", lambda tmp: F.cross_entropy(logits(), mg.tensor([0, 1])), ValueError,
        r"expected targets of shape \(4,\) to match logits \(4, 10\), got \(2,\)"),
    row("labels as a matrix", lambda tmp: F.cross_entropy(logits(), mg.zeros(4, 1, dtype="int64")),
        ValueError, r"expected targets of shape \(4,\)"),
    row("one sample's logits with two targets",
        lambda tmp: F.cross_entropy(mg.zeros(10), mg.tensor([1, 2])),
        ValueError, r"For 1D input, 1D target must have size 1, but got target size: 2"),
    row("unknown reduction", lambda tmp: F.cross_entropy(logits(), mg.tensor([0, 1, 2, 3]),
                                                         reduction="avg"),
        ValueError, "reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    row("CrossEntropyLoss with an unknown reduction",
        lambda tmp: mg.nn.CrossEntropyLoss(reduction="average"), ValueError, "got 'average'"),
]

STATE_ERROR = (RuntimeError, KeyError, ValueError)  # PyTorch raises RuntimeError for all three

STATE_DICTS = [
    row("load_state_dict with a missing key",
        lambda tmp: linear().load_state_dict({"weight": mg.zeros(2, 3)}), STATE_ERROR,
        "missing key.*'bias'"),
    row("load_state_dict with an unexpected key",
        lambda tmp: linear().load_state_dict(
            {"weight": mg.zeros(2, 3), "bias": mg.zeros(2), "scale": mg.zeros(1)}),
        STATE_ERROR, "unexpected key.*'scale'"),
    row("load_state_dict with a wrong shape",
        lambda tmp: linear().load_state_dict({"weight": mg.zeros(3, 2), "bias": mg.zeros(2)}),
        STATE_ERROR, r"'weight'.* \(3, 2\) in the state dict.* \(2, 3\) in the model"),
    row("load_state_dict(strict=False) still checks shapes",
        lambda tmp: linear().load_state_dict({"bias": mg.zeros(5)}, strict=False), STATE_ERROR,
        r"'bias'.* \(5,\) in the state dict"),
    row("optimizer state for another number of groups",
        lambda tmp: mg.optim.SGD(linear().parameters(), lr=0.1).load_state_dict(
            {"state": {}, "param_groups": []}),
        ValueError, "0 parameter groups"),
    row("SGD with a negative learning rate",
        lambda tmp: mg.optim.SGD(linear().parameters(), lr=-0.1), ValueError,
        "Invalid learning rate: -0.1"),
    row("SGD with no parameters", lambda tmp: mg.optim.SGD([], lr=0.1), ValueError,
        "empty parameter list"),
    row("SGD of something that is not a tensor", lambda tmp: mg.optim.SGD([2.0], lr=0.1),
        TypeError, "optimizer can only optimize Tensors, but one of the params is float"),
    row("SGD nesterov without momentum",
        lambda tmp: mg.optim.SGD(linear().parameters(), lr=0.1, nesterov=True), ValueError,
        "Nesterov momentum requires a momentum"),
    row("Sequential of a non-module", lambda tmp: mg.nn.Sequential(mg.nn.ReLU(), "relu"),
        TypeError, "argument 1 is str, not a Module"),
    row("DataLoader with batch_size 0",
        lambda tmp: mg.data.DataLoader((np.zeros((4, 2)), np.zeros(4)), batch_size=0),
        ValueError, "batch_size must be a positive int, got 0"),
    row("DataLoader with fewer targets than inputs",
        lambda tmp: mg.data.DataLoader((np.zeros((4, 2)), np.zeros(3)), batch_size=2),
        ValueError, "4 inputs but 3 targets"),
]

FILES = [
    row("load a missing file", lambda tmp: mg.load(tmp / "nope.npz"), FileNotFoundError,
        "no such file"),
    row("load random bytes", lambda tmp: mg.load(write(tmp, "x.npz", os.urandom(300))),
        RuntimeError, "is not a minigrad .npz file or is damaged"),
    row("load an empty file", lambda tmp: mg.load(write(tmp, "x.npz", b"")), RuntimeError,
        "is not a minigrad .npz file or is damaged"),
    row("load a truncated file",
        lambda tmp: mg.load(write(tmp, "x.npz", valid_npz(tmp)[:-100])), RuntimeError,
        "damaged"),
    row("load a file with a flipped byte",
        lambda tmp: mg.load(write(tmp, "x.npz", _flip_byte(valid_npz(tmp)))), RuntimeError,
        "damaged"),
    row("load a plain NumPy .npz", lambda tmp: mg.load(npz_with(tmp, "x.npz", a=np.ones(2))),
        RuntimeError, "not a minigrad .npz file"),
    row("load an .npz holding pickled objects",
        lambda tmp: mg.load(npz_with(tmp, "x.npz", a=np.array([{}], dtype=object))),
        RuntimeError, "not a minigrad .npz file"),
    row("load an .npz whose structure names a missing array",
        lambda tmp: mg.load(npz_with(tmp, "x.npz", __structure__=_structure('{"tensor": "t7"}'))),
        RuntimeError, "structure does not match its arrays"),
    row("load a folder", lambda tmp: mg.load(tmp), RuntimeError, "not a minigrad .npz file"),
    row("load onto an unknown device",
        lambda tmp: mg.load(write(tmp, "x.npz", valid_npz(tmp)), device="tpu"), ValueError,
        "unknown device 'tpu'"),
    row("IDX file with a wrong magic number",
        lambda tmp: read_idx(write(tmp, "x-idx1-ubyte", idx((3,), magic=b"PK\x03\x04"))),
        ValueError, "not an IDX file of unsigned bytes"),
    row("empty IDX file", lambda tmp: read_idx(write(tmp, "x-idx1-ubyte", b"")), ValueError,
        "magic number missing"),
    row("IDX file with a truncated header",
        lambda tmp: read_idx(write(tmp, "x-idx3-ubyte", idx((2, 28, 28))[:9])), ValueError,
        "truncated header"),
    row("IDX file with truncated data",
        lambda tmp: read_idx(write(tmp, "x-idx3-ubyte", idx((2, 28, 28), payload=1000))),
        ValueError, r"expected 1,?584 bytes for shape \(2, 28, 28\), found 1,?016"),
    row("IDX file with extra bytes",
        lambda tmp: read_idx(write(tmp, "x-idx1-ubyte", idx((3,), payload=4))), ValueError,
        r"shape \(3,\)"),
    row("IDX file that does not exist", lambda tmp: read_idx(tmp / "nope-idx1-ubyte"),
        FileNotFoundError, "nope-idx1-ubyte"),
    row("MNIST folder without the files",
        lambda tmp: mg.data.MNIST(tmp, download=False), FileNotFoundError,
        "MNIST files not found"),
    row("MNIST with a truncated image file", lambda tmp: mg.data.MNIST(_broken_mnist(tmp),
                                                                       download=False),
        ValueError, "train-images-idx3-ubyte.*truncated"),
]


def _structure(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _flip_byte(content: bytes) -> bytes:
    """Flip a byte inside the first array's data (the zip's CRC catches it)."""
    position = content.index(b"\x00\x00\x80?")  # the first 1.0f of the ones(2, 3)
    return content[:position] + b"\x00\x00\x80\x3e" + content[position + 4 :]


def _broken_mnist(tmp: Path) -> Path:
    raw = tmp / "MNIST" / "raw"
    write(raw, "train-images-idx3-ubyte", idx((5, 28, 28), payload=100))
    write(raw, "train-labels-idx1-ubyte", idx((5,)))
    return tmp


@pytest.mark.parametrize(
    "call, error, match", TENSORS + SHAPES + DEVICES + LABELS + STATE_DICTS + FILES
)
def test_bad_input_raises_a_clear_error(call, error, match, tmp_path):
    with np.errstate(all="ignore"), pytest.raises(error, match=match):
        call(tmp_path)


def test_failed_load_state_dict_leaves_the_model_unchanged():
    model = mg.nn.Sequential(mg.nn.Linear(3, 2), mg.nn.Linear(2, 2))
    before = {name: p.detach().numpy() for name, p in model.named_parameters()}
    state = {name: mg.ones(*p.shape) for name, p in model.named_parameters()}
    state["1.weight"] = mg.ones(5, 5)  # the last entry is wrong: nothing may be copied
    with pytest.raises(STATE_ERROR, match="'1.weight'"):
        model.load_state_dict(state)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(), before[name], err_msg=name)


# ---- mg.save: clear errors, and nothing that existed before is damaged ------------------------


def snapshot(folder: Path) -> dict:
    """Every file under folder, by relative path, with the SHA-256 of its content."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


STATE = {"weight": mg.ones(2, 3), "bias": mg.zeros(2)}

SAVES = [
    row("save into a folder that does not exist",
        lambda tmp: mg.save(STATE, tmp / "missing" / "model.npz"), FileNotFoundError,
        "folder .*missing' does not exist"),
    row("save into a 'folder' that is a file",
        lambda tmp: mg.save(STATE, tmp / "model.npz" / "inner.npz"), NotADirectoryError,
        "model.npz' is a file, not a folder"),
    row("save over a folder", lambda tmp: mg.save(STATE, tmp / "folder"), IsADirectoryError,
        "folder"),
    row("save an object it cannot store",
        lambda tmp: mg.save({"weight": {1, 2}}, tmp / "model.npz"), TypeError,
        "cannot store a set"),
    row("save a dict with a tuple key", lambda tmp: mg.save({(1, 2): 3}, tmp / "model.npz"),
        TypeError, r"dict keys must be str or int, got \(1, 2\)"),
    row("save into a read-only folder", lambda tmp: mg.save(STATE, tmp / "locked" / "m.npz"),
        PermissionError, "Permission denied",
        marks=pytest.mark.skipif(IS_ROOT, reason="root can write into read-only folders")),
]


@pytest.mark.parametrize("call, error, match", SAVES)
def test_failed_save_raises_a_clear_error_and_damages_nothing(call, error, match, tmp_path):
    mg.save({"weight": mg.randn(4, 4)}, tmp_path / "model.npz")  # the previous good file
    (tmp_path / "folder").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "m.npz").write_bytes(b"earlier content")
    (tmp_path / "locked").chmod(0o555)
    before = snapshot(tmp_path)
    try:
        with pytest.raises(error, match=match):
            call(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert snapshot(tmp_path) == before, "a failed save changed, removed or left files"
    assert mg.load(tmp_path / "model.npz")["weight"].shape == (4, 4)


def test_save_that_fails_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    """A crash mid-write (disk full, say) must leave the previous file whole."""
    target = tmp_path / "model.npz"
    mg.save({"weight": mg.randn(4, 4)}, target)
    before = snapshot(tmp_path)

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        mg.save(STATE, target)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert mg.load(target)["weight"].shape == (4, 4)


# ---- examples/mnist.py command line ------------------------------------------------------------

CLI_ROWS = [  # (arguments, message fragment on stderr)
    (["--epochs", "0"], "argument --epochs: must be positive, got 0"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--batch-size", "-64"], "argument --batch-size: must be positive, got -64"),
    (["--lr", "0"], "argument --lr: must be positive, got 0"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--momentum", "-0.5"], "argument --momentum: must be zero or more, got -0.5"),
    (["--weight-decay", "nan"], "argument --weight-decay: must be zero or more, got nan"),
    (["--schedule", "linear"], "argument --schedule: invalid choice: 'linear'"),
    (["--device", "gpu"], "argument --device: unknown device 'gpu'"),
    (["--device", "cuda:7"], "argument --device: 'cuda:7' is not available"),
    (["--out", "{file}/run"], "argument --out: cannot write to"),
    (["--resume", "--out", "{tmp}/empty-run"], "argument --resume: no checkpoint.npz"),
    (["--data-root", "{mnist}", "--out", "{tmp}/run"], "train-images-idx3-ubyte"),
]


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/mnist.py is not there yet")
@pytest.mark.parametrize("args, message", CLI_ROWS, ids=[" ".join(a) for a, _ in CLI_ROWS])
def test_mnist_example_rejects_bad_command_line_values(args, message, tmp_path):
    file = write(tmp_path, "a-file", b"not a folder")
    mnist = _broken_mnist(tmp_path / "data")
    args = [a.format(tmp=tmp_path, file=file, mnist=mnist) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "run")]
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--no-progress", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "run" / "checkpoint.npz").exists()
