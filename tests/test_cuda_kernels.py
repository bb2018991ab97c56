"""The fused CUDA kernels (minigrad/fused/kernels.py) against their plain array references.

Three levels, so most of it runs on a machine without a GPU:

1. nvcc compiles every kernel source, float32 and float64, for sm_90 (skipped without nvcc).
2. The same sources run on the CPU (skipped without g++): tests/cuda_emulator.py runs each
   block's threads as std::threads, and kernels._function is swapped for a ctypes launcher that
   also checks every argument against the kernel's C signature. The kernel tests, the
   ops' dispatch and a training step then run through the real Python wrappers. What this misses:
   GPU memory, warps, launch limits, NVRTC quirks, races that a CPU schedule hides.
3. On a GPU with CuPy (pytest -m cuda), the same tests run the compiled kernels for real.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad.cuda import kernels
from tests import cuda_emulator
from tests.test_backend_seam import FakeGpuArray, fake_gpu  # noqa: F401 (a fixture)

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}

# ---- 1. nvcc ------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (the CUDA toolkit) is not installed")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(kernels.SOURCES))
def test_kernel_source_compiles_with_nvcc(name, dtype, tmp_path):
    source = tmp_path / f"{name}.cu"
    source.write_text(kernels.source_for(name, dtype))
    command = ["nvcc", "--cubin", "-arch=sm_90", "-Werror", "all-warnings", str(source),
               "-o", str(tmp_path / f"{name}.cubin")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nvcc failed on {name} ({np.dtype(dtype)}):\n{result.stderr}"


# ---- 2. the kernels on the CPU ----------------------------------------------------------------


@pytest.fixture(scope="session")
def emulated_kernels():
    """{(name, dtype name): EmulatedKernel} for every kernel (tests/cuda_emulator.py)."""
    return cuda_emulator.emulated_kernels()


@pytest.fixture(params=["cpu-emulation", pytest.param("cuda", marks=pytest.mark.cuda)])
def kernel_device(request, monkeypatch):
    """Where the kernels run: on the CPU emulator (with the fake GPU), or on a real GPU."""
    if request.param == "cuda":
        monkeypatch.setattr(kernels, "enabled", True)  # the switch is off by default
        return request.param
    request.getfixturevalue("fake_gpu")
    table = request.getfixturevalue("emulated_kernels")
    monkeypatch.setattr(kernels, "enabled", True)
    monkeypatch.setattr(kernels, "_function", lambda name, dtype_name: table[name, dtype_name])
    return request.param


def _on(array):
    """A device array for the kernels: cupy on a GPU, a FakeGpuArray for the emulator."""
    return mg.tensor(array, device="cuda").array


def _host(array):
    return mg.backend.to_host(array)


def _random(shape, dtype, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_matches_reference(kernel_device, dtype):
    z = np.maximum(_random((7, 33), dtype), 0)
    grad = _random((7, 33), dtype, seed=1)
    out = kernels.relu_backward(_on(grad), _on(z))
    np.testing.assert_array_equal(_host(out), grad * ~(z <= 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_kernels_pass_nan_as_the_cpu_does(kernel_device, dtype):
    """A NaN stays NaN through ReLU and passes its gradient, on the GPU as on the CPU (torch)."""
    x = np.array([[np.nan, -1.0, 0.0, 2.0]], dtype)
    z = np.maximum(x, 0)
    grad = np.ones_like(x)
    np.testing.assert_array_equal(_host(kernels.relu_backward(_on(grad), _on(z))), [[1, 0, 0, 1]])
    out = kernels.bias_relu_forward(_on(x), _on(np.zeros(4, dtype)))
    np.testing.assert_array_equal(_host(out), z)
    relu_grad, bias_grad = kernels.relu_backward_bias_grad(_on(grad), _on(z))
    np.testing.assert_array_equal(_host(relu_grad), [[1, 0, 0, 1]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_relu_forward_matches_reference(kernel_device, dtype):
    x, bias = _random((9, 13), dtype), _random((13,), dtype, seed=1)
    out = kernels.bias_relu_forward(_on(x), _on(bias))
    np.testing.assert_allclose(_host(out), np.maximum(x + bias, 0), **TOLERANCE[dtype])


def _reference_cross_entropy(logits, target, scale):
    """CrossEntropy's plain array code (the CPU path): loss, softmax, gradient for grad 1."""
    x = mg.tensor(logits, requires_grad=True)
    loss, _ = mg.ops.CrossEntropy.apply(x, mg.tensor(target), "mean" if scale != 1 else "sum")
    loss.backward()
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return loss.detach().numpy(), probs, x.grad.detach().numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, scale", [(64, 1 / 64), (300, 1 / 300), (5, 1.0)])
def test_cross_entropy_kernels_match_reference(kernel_device, dtype, rows, scale):
    logits = _random((rows, 10), dtype, low=-8.0, high=8.0)
    target = np.random.default_rng(2).integers(0, 10, rows)
    loss, probs, grad = _reference_cross_entropy(logits, target, scale)
    on_device = _on(target)
    our_loss, our_probs = kernels.cross_entropy_forward(_on(logits), on_device,
                                                        scale)
    assert our_loss.shape == ()
    np.testing.assert_allclose(_host(our_loss), loss, **TOLERANCE[dtype])
    np.testing.assert_allclose(_host(our_probs), probs, **TOLERANCE[dtype])
    one = _on(np.ones((), dtype))
    ours = kernels.cross_entropy_backward(our_probs, on_device, one, scale)
    np.testing.assert_allclose(_host(ours), grad, **TOLERANCE[dtype])


def test_cross_entropy_kernel_gives_nan_for_a_target_out_of_range(kernel_device):
    logits = _on(_random((4, 10), np.float32))
    for bad in (10, -1):
        target = _on(np.array([1, bad, 2, 3]))
        loss, probs = kernels.cross_entropy_forward(logits, target, 0.25)
        assert np.isnan(_host(loss))
        one = _on(np.ones((), np.float32))
        grad = _host(kernels.cross_entropy_backward(probs, target, one, 0.25))
        assert np.isnan(grad[1]).all() and not np.isnan(grad[[0, 2, 3]]).any()


SGD_SETTINGS = [
    dict(momentum=0.0),
    dict(momentum=0.0, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(momentum=0.8, dampening=0.3, weight_decay=0.001),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=str)
def test_sgd_update_matches_sgd_step(kernel_device, dtype, settings):
    """Three steps of the kernel against three steps of SGD.step's array code on the CPU."""
    start = _random((5, 7), dtype)
    grads = [_random((5, 7), dtype, seed=s) for s in (1, 2, 3)]
    param = mg.tensor(start.copy(), requires_grad=True)
    optimizer = mg.optim.SGD([param], lr=0.05, **settings)
    ours, state = _on(start), {}
    for grad in grads:
        param.grad = mg.tensor(grad)
        optimizer.step()
        kernels.sgd_update(ours, _on(grad), state if settings["momentum"] else None,
                           0.05, settings["momentum"], settings.get("dampening", 0.0),
                           settings.get("weight_decay", 0.0), settings.get("nesterov", False))
    np.testing.assert_allclose(_host(ours), param.detach().numpy(), **TOLERANCE[dtype])
    if settings["momentum"]:
        expected = optimizer.state[param]["momentum_buffer"]
        np.testing.assert_allclose(_host(state["momentum_buffer"]), _host(expected),
                                   **TOLERANCE[dtype])


# ---- the ops' dispatch: a training step with the kernels --------------------------------------


def _train_a_few_steps(device, steps=3, batch=16):
    """(losses, parameters) as Tensors after a few steps of the 784-128-64-10 network."""
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((steps * batch, 784)).astype(np.float32)
    targets = rng.integers(0, 10, steps * batch)
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(784, 128), mg.nn.ReLU(), mg.nn.Linear(128, 64),
                             mg.nn.ReLU(), mg.nn.Linear(64, 10))
    model.load_state_dict(_initial_state(model))  # one start everywhere
    model.to(device)
    optimizer = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                             weight_decay=1e-4)
    loss_fn, losses = mg.nn.CrossEntropyLoss(), []
    for x, y in mg.data.DataLoader((inputs, targets), batch, device=device):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss)
    return losses, list(model.parameters())


_START: dict = {}  # the initial weights, shared by every run of _train_a_few_steps


def _initial_state(model) -> dict:
    """A private copy of the first model's weights (state_dict() shares the live arrays)."""
    if not _START:
        _START.update({k: mg.tensor(v.detach().numpy()) for k, v in model.state_dict().items()})
    return _START


def _numbers(losses, params):
    return [loss.item() for loss in losses], [p.detach().numpy() for p in params]


def test_training_step_with_the_kernels_matches_the_cpu(kernel_device, monkeypatch):
    calls = []

    def counting(name, function):
        def run(*args, **kwargs):
            calls.append(name)
            return function(*args, **kwargs)

        return run

    for name in ("bias_relu_forward", "relu_backward_bias_grad", "cross_entropy_forward",
                 "cross_entropy_backward", "sgd_update_many"):
        monkeypatch.setattr(kernels, name, counting(name, getattr(kernels, name)))
    FakeGpuArray.host_reads = 0
    losses, params = _train_a_few_steps("cuda")
    if kernel_device != "cuda":
        assert FakeGpuArray.host_reads == 0, "a training step with the kernels read the GPU"
    assert set(calls) == {"bias_relu_forward", "relu_backward_bias_grad",
                          "cross_entropy_forward", "cross_entropy_backward", "sgd_update_many"}
    losses, params = _numbers(losses, params)
    expected_losses, expected_params = _numbers(*_train_a_few_steps("cpu"))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5)
    for ours, expected in zip(params, expected_params, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
def test_kernels_switched_off_run_the_array_code_on_the_gpu(monkeypatch):
    with_kernels = _numbers(*_train_a_few_steps("cuda"))
    monkeypatch.setattr(kernels, "enabled", False)
    without = _numbers(*_train_a_few_steps("cuda"))
    np.testing.assert_allclose(with_kernels[0], without[0], rtol=1e-5)



def test_cross_entropy_launches_on_two_streams_use_two_workspaces(kernel_device, monkeypatch):
    """Launches on one stream run in turn and may share the counter and the block sums; two
    streams' may run at once, so each stream gets its own pair (else their sums would mix)."""
    xp = backend.cupy_module()
    logits = _on(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32))
    target = _on(np.array([0, 1, 2, 3, 0, 1]))
    used = []
    real_launch = kernels.launch

    def watching(name, dtype, size, args, grid=None):
        if name == "cross_entropy_forward":
            used.append(args[5])  # the finished counter of the workspace
        return real_launch(name, dtype, size, args, grid)

    monkeypatch.setattr(kernels, "launch", watching)
    first, second = xp.cuda.Stream(non_blocking=True), xp.cuda.Stream(non_blocking=True)
    results = []
    for stream in (first, second, first):
        with stream:
            loss, _ = kernels.cross_entropy_forward(logits, target, 1.0 / 6)
            results.append(float(backend.to_host(loss)))
    assert used[0] is used[2] and used[0] is not used[1]
    assert results[0] == results[1] == results[2]


def test_a_kernel_launches_on_the_device_of_its_arrays(kernel_device, monkeypatch):
    """Arrays on cuda:1 while cuda:0 is current: the launch switches to device 1 for the call."""
    if kernel_device == "cuda" and mg.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    xp = backend.cupy_module()
    seen = []
    real_function = kernels._function

    def recording(name, dtype_name):
        kernel = real_function(name, dtype_name)
        return lambda *launch: (seen.append(xp.cuda.runtime.getDevice()), kernel(*launch))[1]

    monkeypatch.setattr(kernels, "_function", recording)
    grad, z = _on(np.ones(4, np.float32)), _on(np.ones(4, np.float32))
    if kernel_device != "cuda":  # the fake's arrays say device 0; make these say device 1
        monkeypatch.setattr(type(z), "device", property(lambda self: type("D", (), {"id": 1})()))
    kernels.relu_backward(grad, z)
    assert seen == [1]
