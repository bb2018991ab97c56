"""The backend: device names, dtypes, array conversion, and the errors around devices."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend

# ---- devices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, type, index",
    [
        ("cpu", "cpu", None),
        (None, "cpu", None),
        ("cuda", "cuda", 0),
        ("cuda:0", "cuda", 0),
        ("cuda:3", "cuda", 3),
        (" cuda:1 ", "cuda", 1),
    ],
)
def test_device_names_are_parsed(spec, type, index):
    dev = mg.device(spec)
    assert (dev.type, dev.index) == (type, index)
    assert mg.device(spec) is dev  # interned: `is` compares devices
    assert mg.device(dev) is dev


def test_device_str_repr_and_equality():
    assert str(mg.device("cpu")) == "cpu" and str(mg.device("cuda")) == "cuda:0"
    assert repr(mg.device("cpu")) == "device(type='cpu')"
    assert repr(mg.device("cuda:1")) == "device(type='cuda', index=1)"
    assert mg.device("cuda") == "cuda:0" and mg.device("cpu") == "cpu"
    assert mg.device("cpu") != mg.device("cuda")
    assert hash(mg.device("cuda:0")) == hash(mg.Device("cuda", 0))


def test_hand_made_devices_are_interned():
    assert mg.device(mg.Device("cpu", None)) is backend.CPU
    assert mg.device(mg.Device("cuda", 2)) is mg.device("cuda:2")
    t = mg.tensor([1.0], device=mg.Device("cpu", None))
    assert t.device is backend.CPU
    assert (t + mg.tensor([2.0])).tolist() == [3.0]


@pytest.mark.parametrize("spec", ["tpu", "gpu", "cuda:x", "cpu:0:1", "CUDA", ""])
def test_unknown_device_is_named_in_the_error(spec):
    with pytest.raises(ValueError, match=f"unknown device {spec!r}"):
        mg.device(spec)
    with pytest.raises(ValueError, match=f"unknown device {spec!r}"):
        mg.tensor([1.0], device=spec)


def test_device_must_be_a_string():
    with pytest.raises(TypeError, match="device must be a string"):
        mg.device(0)


def test_ops_between_devices_raise_a_clear_error():
    # No GPU is needed: a tensor that merely claims to be on cuda:0 takes the same path.
    on_cpu = mg.ones(2, requires_grad=True)
    on_cuda = mg.Tensor._wrap_no_copy_no_checks(np.ones(2, dtype=np.float32), mg.device("cuda:0"))
    message = "Add: expected all tensors on the same device, found cpu and cuda:0"
    with pytest.raises(RuntimeError, match=message):
        on_cpu + on_cuda
    with pytest.raises(RuntimeError, match="MatMul: .*same device, found cuda:0 and cpu"):
        on_cuda @ on_cpu


@pytest.mark.skipif(mg.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_without_cupy_or_gpu_says_what_is_missing():
    assert mg.cuda.is_available() is False and mg.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="cuda"):
        mg.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="cuda"):
        mg.ones(2).to("cuda")


@pytest.mark.cuda
def test_missing_cuda_index_names_the_device():
    with pytest.raises(RuntimeError, match="cuda:99"):
        mg.zeros(2, device="cuda:99")


@pytest.mark.cuda
def test_to_moves_between_devices_and_back_with_gradients():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.cuda()
    assert y.device == "cuda:0" and y.grad_fn is not None
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]
    assert y.cpu().device == "cpu"


# ---- dtypes and arrays -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("float32", np.float32),
        ("float", np.float32),
        ("double", np.float64),
        ("long", np.int64),
        (np.float64, np.float64),
        (np.dtype("int32"), np.int32),
        (mg.float64, np.float64),
    ],
)
def test_dtype_specs(spec, expected):
    assert backend.dtype(spec) == np.dtype(expected)


def test_unknown_dtype_is_named():
    assert backend.dtype(None) is None
    with pytest.raises(TypeError, match="unknown dtype 'quad'"):
        backend.dtype("quad")
    with pytest.raises(TypeError, match="unknown dtype"):
        backend.dtype(object())


def test_only_floats_are_floating():
    assert backend.is_floating(mg.float32) and backend.is_floating("float16")
    assert not backend.is_floating(mg.int64) and not backend.is_floating(np.bool_)


def test_as_array_follows_pytorch_defaults():
    assert backend.as_array(1.5).dtype == np.float32
    assert backend.as_array([1, 2]).dtype == np.int64
    assert backend.as_array(np.zeros(2)).dtype == np.float64
    assert backend.as_array([1, 2], np.dtype("float64")).dtype == np.float64


def test_host_helpers_on_cpu():
    a = np.arange(3.0)
    assert backend.array_module(a) is np and backend.module_for(backend.CPU) is np
    assert backend.device_of(a) is backend.CPU and backend.is_array(a)
    assert not backend.is_array([1.0])
    assert backend.to_host(a) is a and backend.to_device(a, backend.CPU) is a
    assert isinstance(backend.ensure_array(np.float32(1.0), np), np.ndarray)


def test_scatter_add_adds_repeated_indices():
    target = np.zeros(3)
    backend.scatter_add(target, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(target, [4.0, 0.0, 2.0])


def test_generators_restart_from_the_seed():
    mg.manual_seed(7)
    first = backend.generator(backend.CPU).standard_normal(3)
    mg.manual_seed(7)
    np.testing.assert_array_equal(backend.generator(backend.CPU).standard_normal(3), first)
