"""What PyTorch's beginner tutorials ("Learn the Basics", "60 Minute Blitz") use, each checked
against torch: numpy() sharing memory, out=, f-strings of a loss, new_* factories, in-place
activations, ReLU(inplace=True), torch.backends, and a torchvision program run as minigrad."""

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

AS_MINIGRAD = Path(__file__).resolve().parents[1] / "examples" / "pytorch_tutorials" / \
    "as_minigrad.py"


def outcome(function):
    """('ok', value as a list) or (exception type name, first words of its message)."""
    try:
        result = function()
    except Exception as error:  # noqa: BLE001  (compared between the libraries)
        return type(error).__name__, " ".join(str(error).split()[:4])
    if hasattr(result, "tolist"):
        return "ok", result.tolist()
    return "ok", result


# ---- the bridge with NumPy ------------------------------------------------------------------


@pytest.mark.parametrize("write", ["add_", "setitem", "mul_", "numpy side", "zero_", "copy_"])
def test_numpy_shares_memory_both_ways(write):
    seen = []
    for lib in (mg, torch):
        t = lib.ones(5)
        n = t.numpy()
        if write == "add_":
            t.add_(1)
        elif write == "setitem":
            t[1] = 7.0
        elif write == "mul_":
            t.mul_(3)
        elif write == "numpy side":
            n[2] = -4.0
        elif write == "zero_":
            t.zero_()
        else:
            t.copy_(lib.arange(5.0))
        seen.append((n.tolist(), t.tolist()))
    assert seen[0] == seen[1]
    assert seen[0][0] == seen[0][1]  # the array and the tensor: one memory


def test_numpy_of_a_view_is_a_view_and_from_numpy_shares_back():
    base = mg.zeros(2, 3)
    view = base[:, 1]
    view.numpy()[:] = 5.0
    assert base.tolist() == [[0.0, 5.0, 0.0], [0.0, 5.0, 0.0]]
    array = np.ones(3, dtype=np.float32)
    t = mg.from_numpy(array)
    np.add(array, 1, out=array)
    assert t.tolist() == [2.0, 2.0, 2.0]


def test_numpy_refuses_a_tensor_that_requires_grad_unless_forced():
    for lib in (mg, torch):
        t = lib.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires "
                                               r"grad\. Use tensor\.detach\(\)\.numpy\(\)"):
            t.numpy()
        forced = t.numpy(force=True)
        forced[0] = 9.0  # still the tensor's memory
        assert t.tolist() == [9.0, 2.0]


def test_numpy_conversion_of_a_tensor_as_matplotlib_makes_it():
    for lib in (mg, torch):
        t = lib.tensor([[0.5, 1.5]])
        assert np.asarray(t).tolist() == [[0.5, 1.5]] and np.asarray(t).dtype == np.float32
        with warnings.catch_warnings():  # (torch's __array__ warns about NumPy's copy keyword)
            warnings.simplefilter("ignore", DeprecationWarning)
            assert np.asarray(t, dtype=np.float64).dtype == np.float64
            assert np.array(t).tolist() == [[0.5, 1.5]]


def test_item_of_many_elements_raises_torchs_runtime_error():
    for lib in (mg, torch):
        with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to "
                                               "Scalar"):
            lib.ones(2).item()


# ---- out= -----------------------------------------------------------------------------------


CALLS = {
    "add": lambda lib, a, b, **k: lib.add(a, b, **k),
    "add alpha": lambda lib, a, b, **k: lib.add(a, b, alpha=2, **k),
    "mul number": lambda lib, a, b, **k: lib.mul(a, 3.0, **k),
    "sub": lambda lib, a, b, **k: lib.sub(a, b, **k),
    "div": lambda lib, a, b, **k: lib.div(a, b, **k),
    "matmul": lambda lib, a, b, **k: lib.matmul(a, b.T, **k),
    "mm": lambda lib, a, b, **k: lib.mm(a, b.T, **k),
    "exp": lambda lib, a, b, **k: lib.exp(a, **k),
    "sum dim": lambda lib, a, b, **k: lib.sum(a, 1, **k),
    "cat": lambda lib, a, b, **k: lib.cat([a, b], 0, **k),
    "maximum": lambda lib, a, b, **k: lib.maximum(a, b, **k),
    "clamp": lambda lib, a, b, **k: lib.clamp(a, min=0.5, **k),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_out_receives_the_result_and_is_returned(name):
    results = []
    for lib in (mg, torch):
        a = lib.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
        b = lib.tensor([[2.0, 1.0, -1.0], [1.0, 2.0, 4.0]])
        expected = CALLS[name](lib, a, b)
        out = lib.zeros(expected.shape)
        returned = CALLS[name](lib, a, b, out=out)
        assert returned is out
        results.append(out.tolist())
        np.testing.assert_allclose(out.tolist(), expected.tolist())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_out_writes_through_a_view_and_bumps_the_version():
    for lib in (mg, torch):
        base = lib.zeros(4)
        lib.add(lib.ones(2), 1, out=base[:2])
        assert base.tolist() == [2.0, 2.0, 0.0, 0.0]
    x = mg.ones(3, requires_grad=True)
    y = x * 1.0
    z = y.exp()  # saves its output for backward
    with mg.no_grad():
        mg.mul(mg.ones(3), 2.0, out=z)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("case", ["argument requires grad", "out requires grad",
                                  "int out of a float result", "double out of matmul",
                                  "float out of an int result", "double out of mul",
                                  "out not a tensor"])
def test_out_errors_and_casts_as_torch(case):
    def run(lib):
        a = lib.ones(2, 2)
        if case == "argument requires grad":
            return lib.add(a.requires_grad_(), a, out=lib.empty(2, 2))
        if case == "out requires grad":
            return lib.add(a, a, out=lib.zeros(2, 2, requires_grad=True))
        if case == "int out of a float result":
            return lib.add(a, a, out=lib.zeros(2, 2, dtype=lib.int64))
        if case == "double out of matmul":
            return lib.matmul(a, a, out=lib.zeros(2, 2, dtype=lib.float64))
        if case == "float out of an int result":
            return lib.add(lib.ones(2, dtype=lib.int64), 1, out=lib.zeros(2))
        if case == "double out of mul":
            return lib.mul(a, 2, out=lib.zeros(2, 2, dtype=lib.float64))
        return lib.add(a, a, out=[0.0])

    mine, theirs = outcome(lambda: run(mg)), outcome(lambda: run(torch))
    assert mine[0] == theirs[0], (mine, theirs)
    if mine[0] == "ok":
        assert mine == theirs
    elif mine[0] == "RuntimeError":
        assert mine[1].lower() == theirs[1].lower(), (mine, theirs)


def test_an_empty_out_is_resized_and_one_of_another_shape_refused():
    for lib in (mg, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an empty out is resized silently
            assert lib.add(lib.ones(2), 1, out=lib.zeros(0)).tolist() == [2.0, 2.0]
    # PyTorch resizes an out with elements (deprecated, with a warning); minigrad refuses: new
    # memory would cut out off from its base (torch writes base[:3] here) and its numpy() arrays
    base = mg.zeros(5)
    with pytest.raises(RuntimeError, match=r"exp\(\): out has shape \[2\], the result \[3\]"):
        mg.exp(mg.tensor([1.0, 2.0, 3.0]), out=base[:2])
    assert base.tolist() == [0.0] * 5
    with pytest.raises(RuntimeError, match="pass an out of the result's shape"):
        mg.add(mg.ones(2, 2), 1, out=mg.zeros(3))


def test_out_sharing_part_of_an_input_raises_as_torch():
    for lib in (mg, torch):
        a = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        with pytest.raises(RuntimeError, match="some elements of the input tensor and the "
                                               "written-to tensor refer to a single memory"):
            lib.exp(a, out=a.t())
        b = lib.arange(3.0)
        with pytest.raises(RuntimeError, match="refer to a single memory location"):
            lib.add(b[:2], 1, out=b[1:])
        assert lib.add(a, a, out=a).tolist() == [[2.0, 4.0], [6.0, 8.0]]  # out = an input: fine


# ---- small names a tutorial uses --------------------------------------------------------------


def test_a_zero_dim_tensor_formats_as_its_number():
    for lib in (mg, torch):
        loss = (lib.tensor([1.25, 2.5]) * 2).sum()
        assert f"{loss:>7f}" == "7.500000" and f"{loss:.2f}" == "7.50" and f"{loss}" == "7.5"
        with pytest.raises(TypeError, match="unsupported format string passed to Tensor"):
            f"{lib.ones(2):.2f}"


def test_new_factories_take_this_tensors_dtype_and_device():
    for lib in (mg, torch):
        t = lib.ones(2, 3, dtype=lib.float64)
        cases = [t.new_ones(2), t.new_ones((1, 2)), t.new_zeros(2, 2), t.new_full((2,), 3.5),
                 t.new_tensor([1, 2]), t.new_ones(2, dtype=lib.int64),
                 t.new_zeros(1, requires_grad=True)]
        summary = [(c.tolist(), str(c.dtype).replace("torch.", ""), c.requires_grad)
                   for c in cases]
        if lib is mg:
            mine = summary
    assert mine == summary
    assert list(mg.ones(3).new_empty(2, 2).shape) == [2, 2]


def test_is_cuda_mt_and_is_tensor():
    for lib in (mg, torch):
        t = lib.arange(24.0).reshape(2, 3, 4)
        assert t.is_cuda is False
        assert tuple(t.mT.shape) == (2, 4, 3) and t.mT[1, 3, 2].item() == t[1, 2, 3].item()
        assert lib.is_tensor(t) and not lib.is_tensor([1.0])
        with pytest.raises(RuntimeError, match="only supported on matrices or batches of "
                                               "matrices. Got 1-D tensor"):
            _ = lib.ones(2).mT


@pytest.mark.parametrize("method", ["relu_", "sigmoid_", "tanh_", "exp_", "log_", "sqrt_",
                                    "abs_", "neg_", "pow_"])
def test_in_place_elementwise_methods_give_torchs_values_and_gradients(method):
    grads, values = [], []
    for lib in (mg, torch):
        x = lib.tensor([0.5, -1.5, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        y = x * 1.0 if method not in ("log_", "sqrt_") else x.abs() + 0.25
        result = getattr(y, method)(*((2,) if method == "pow_" else ()))
        assert result is y and y._version if lib is mg else result is y
        (y * lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64)).sum().backward()
        values.append(y.tolist())
        grads.append(x.grad.tolist())
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            getattr(lib.ones(2, requires_grad=True), method)(*((2,) if method == "pow_" else ()))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-12)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_relu_inplace_module_and_function_as_torch():
    results = []
    for lib in (mg, torch):
        layer = lib.nn.ReLU(inplace=True)
        assert repr(layer) == "ReLU(inplace=True)" and repr(lib.nn.ReLU()) == "ReLU()"
        assert repr(lib.nn.ReLU(True)) == "ReLU(inplace=True)"
        x = lib.tensor([-1.0, 0.5, 2.0], dtype=lib.float64, requires_grad=True)
        h = x * 2.0
        out = layer(h)
        assert out is h
        g = lib.nn.functional.relu(x * 1.0, inplace=True)
        (out * out).sum().backward()
        results.append((out.tolist(), g.tolist(), x.grad.tolist()))
    assert results[0] == results[1]


def test_backends_answer_as_pytorch_on_a_machine_without_mps_or_cudnn():
    assert mg.backends.mps.is_available() is False and mg.backends.mps.is_built() is False
    device = "cuda" if mg.cuda.is_available() else "mps" if mg.backends.mps.is_available() \
        else "cpu"
    assert device in ("cpu", "cuda")
    import minigrad.backends.cudnn as cudnn

    cudnn.benchmark = True  # accepted; changes nothing
    cudnn.deterministic = True
    mg.backends.cuda.matmul.allow_tf32 = True
    assert cudnn.is_available() is False and isinstance(mg.backends.cuda.is_built(), bool)
    cudnn.benchmark, cudnn.deterministic = False, False
    mg.backends.cuda.matmul.allow_tf32 = False


def test_linear_names_a_pytorch_tensor_given_to_it():
    with pytest.raises(TypeError, match=r"got a PyTorch Tensor \(convert it: "
                                        r"mg\.from_numpy\(x\.numpy\(\)\)\)"):
        mg.nn.Linear(2, 2)(torch.ones(2))


# ---- a torchvision program, as minigrad ------------------------------------------------------


def test_a_torchvision_program_runs_as_minigrad_with_minigrad_samples(tmp_path, data_root):
    pytest.importorskip("torchvision")
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(f"""
        import torch
        from torch import nn
        from torch.utils.data import DataLoader
        from torchvision import datasets
        from torchvision.transforms import ToTensor

        data = datasets.MNIST(root={str(data_root)!r}, train=False, download=False,
                              transform=ToTensor())
        x, y = data[0]
        print("sample", type(x).__module__, tuple(x.shape), y)
        model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
        print("logits", tuple(model(x).shape))
        device = "cuda" if torch.cuda.is_available() else "mps" \\
            if torch.backends.mps.is_available() else "cpu"
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for batch, (X, Y) in enumerate(DataLoader(data, batch_size=64)):
            loss = nn.functional.cross_entropy(model(X), Y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if batch == 3:
                break
        print(f"loss: {{loss:>7f}}", type(loss).__module__)
    """))
    run = subprocess.run([sys.executable, str(AS_MINIGRAD), str(program)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "sample minigrad.tensor (1, 28, 28) 7", lines
    assert lines[1] == "logits (1, 10)"
    assert lines[2].startswith("loss: ") and lines[2].endswith("minigrad.tensor")
    assert 0.0 < float(lines[2].split()[1]) < 3.0
