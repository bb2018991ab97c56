"""Tensor basics: dtype rules, factories, seeding, conversions, in-place helpers, repr."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg

# ---- mg.tensor dtype rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, mg.float32),
        ([1.0, 2.0], mg.float32),
        ([[1, 2], [3.5, 4]], mg.float32),
        (3, mg.int64),
        ([1, 2, 3], mg.int64),
        (True, np.dtype("bool")),
        (np.zeros(2, dtype=np.float64), mg.float64),
        (np.zeros(2, dtype=np.float32), mg.float32),
        (np.zeros(2, dtype=np.int32), np.dtype("int32")),
        (np.zeros(2, dtype=np.uint8), np.dtype("uint8")),
        (np.float64(2.0), mg.float64),
    ],
)
def test_tensor_dtype_follows_pytorch(data, dtype):
    assert mg.tensor(data).dtype == dtype
    assert mg.tensor(data).dtype == torch.tensor(data).detach().numpy().dtype


@pytest.mark.parametrize("name", ["float64", "double", "float32", "float", "int64", "long"])
def test_dtype_strings_are_accepted(name):
    expected = torch.zeros(1, dtype=getattr(torch, name)).detach().numpy().dtype
    assert mg.tensor([1, 2], dtype=name).dtype == expected
    assert mg.zeros(2, dtype=name).dtype == expected


def test_dtype_argument_converts_arrays():
    t = mg.tensor(np.arange(3), dtype=mg.float64)
    assert t.dtype == mg.float64
    assert mg.tensor([1.0, 2.0], dtype=np.float16).dtype == np.float16


def test_unknown_dtype_string_lists_the_known_ones():
    with pytest.raises(TypeError, match=r"unknown dtype 'float8'.*float64"):
        mg.tensor([1.0], dtype="float8")


def test_tensor_and_Tensor_are_the_same(device):
    a, b = mg.tensor([1.0, 2.0], device=device), mg.Tensor([1.0, 2.0], device=device)
    assert type(a) is type(b) is mg.Tensor
    assert a.dtype == b.dtype and a.device == b.device == device


def test_tensor_copies_its_data():
    array = np.array([1.0, 2.0])
    t = mg.tensor(array)
    array[0] = 100.0
    assert t.tolist() == [1.0, 2.0]
    u = mg.tensor(t)
    u.zero_()
    assert t.tolist() == [1.0, 2.0]


def test_ragged_or_string_data_is_rejected():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        mg.tensor("abc")
    with pytest.raises((TypeError, ValueError)):
        mg.tensor([[1.0, 2.0], [3.0]])


def test_integer_tensor_cannot_require_grad():
    message = "only floating-point tensors can require gradients, got dtype int64"
    with pytest.raises(RuntimeError, match=message):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        mg.arange(3).requires_grad_()


def test_requires_grad_cannot_be_switched_off_on_a_non_leaf():
    y = mg.ones(2, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad = False


# ---- factories -------------------------------------------------------------------------------


def test_zeros_and_ones(device):
    z = mg.zeros(2, 3, device=device)
    assert z.shape == (2, 3) and z.dtype == mg.float32 and z.device == device
    assert z.tolist() == [[0.0] * 3] * 2
    o = mg.ones((2, 3), dtype="float64", device=device, requires_grad=True)
    assert o.shape == (2, 3) and o.dtype == mg.float64 and o.requires_grad
    assert o.is_leaf and o.grad is None
    assert mg.zeros(()).shape == ()


def test_factories_reject_bad_shapes():
    with pytest.raises(ValueError, match="non-negative ints"):
        mg.zeros(2, -1)


def test_randn_and_rand(device):
    mg.manual_seed(0)
    n = mg.randn(1000, device=device)
    assert n.shape == (1000,) and n.dtype == mg.float32
    assert abs(n.detach().numpy().mean()) < 0.2 and 0.8 < n.detach().numpy().std() < 1.2
    u = mg.rand(2, 500, dtype="float64", device=device)
    assert u.dtype == mg.float64
    assert 0.0 <= u.detach().numpy().min() and u.detach().numpy().max() < 1.0


def test_manual_seed_makes_draws_reproducible(device):
    mg.manual_seed(123)
    a, b = mg.randn(5, device=device), mg.rand(3, device=device)
    mg.manual_seed(123)
    np.testing.assert_array_equal(mg.randn(5, device=device).detach().numpy(), a.detach().numpy())
    np.testing.assert_array_equal(mg.rand(3, device=device).detach().numpy(), b.detach().numpy())
    mg.manual_seed(124)
    assert not np.array_equal(mg.randn(5, device=device).detach().numpy(), a.detach().numpy())


def test_manual_seed_needs_an_int():
    with pytest.raises(TypeError, match="int"):
        mg.manual_seed(1.5)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((5,), {}),
        ((2, 7), {}),
        ((0, 10, 3), {}),
        ((0.0, 1.0, 0.25), {}),
        ((4,), {"dtype": "float64"}),
    ],
)
def test_arange_matches_torch(args, kwargs):
    got = mg.arange(*args, **kwargs)
    expected = (
        torch.arange(*args, **{k: getattr(torch, v) for k, v in kwargs.items()}).detach().numpy()
    )
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.detach().numpy(), expected)


def test_arange_step_zero_is_an_error():
    with pytest.raises(ValueError, match="step"):
        mg.arange(0, 5, 0)


def test_zeros_like_and_ones_like(device):
    base = mg.tensor([[1, 2, 3]], dtype="float64", device=device)
    z = mg.zeros_like(base)
    assert z.shape == (1, 3) and z.dtype == mg.float64 and z.device == device
    o = mg.ones_like(base, dtype=mg.float32, requires_grad=True)
    assert o.dtype == mg.float32 and o.requires_grad
    assert o.tolist() == [[1.0, 1.0, 1.0]]


def test_from_numpy_shares_memory_and_keeps_dtype():
    array = np.zeros(3, dtype=np.float64)
    t = mg.from_numpy(array)
    assert t.dtype == mg.float64
    array[1] = 5.0
    assert t.tolist() == [0.0, 5.0, 0.0]
    with pytest.raises(TypeError, match="numpy.ndarray"):
        mg.from_numpy([1.0, 2.0])


# ---- conversions and in-place helpers --------------------------------------------------------


def test_item_tolist_numpy(device):
    t = mg.tensor([[1.5, 2.5]], device=device)
    assert t.tolist() == [[1.5, 2.5]]
    assert mg.tensor([[4.0]], device=device).item() == 4.0
    assert isinstance(mg.tensor(3, device=device).item(), int)
    with pytest.raises(RuntimeError, match=r"with 2 elements cannot be converted.*\(1, 2\)"):
        t.item()
    host = t.detach().numpy()
    assert isinstance(host, np.ndarray)
    host[0, 0] = 100.0  # on the CPU the tensor's own memory, as in PyTorch; a GPU's is a copy
    assert t.tolist() == ([[100.0, 2.5]] if device == "cpu" else [[1.5, 2.5]])
    t.detach().add_(1.0)
    assert host.tolist() == ([[101.0, 3.5]] if device == "cpu" else [[100.0, 2.5]])
    assert np.asarray(t).tolist() == t.tolist() and np.asarray(t, dtype=np.float64).dtype == "f8"


def test_attributes(device):
    t = mg.zeros(2, 3, 4, device=device)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tuple)
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and len(t) == 2
    assert isinstance(t.device, mg.Device)
    assert str(t.device) == ("cpu" if device == "cpu" else "cuda:0")
    assert mg.zeros(3, 4).T.shape == (4, 3) and mg.zeros(3).T.shape == (3,)
    with pytest.raises(ValueError, match="at most 2 dims"):
        _ = t.T


def test_detach_shares_data_but_not_the_graph():
    x = mg.ones(2, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.zero_()
    assert x.tolist() == [0.0, 0.0]  # same data, as in PyTorch


def test_requires_grad_(device):
    x = mg.zeros(2, device=device)
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad


def test_zero_(device):
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert x.zero_() is x
    assert x.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_to_changes_dtype_and_keeps_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    for y in (x.to("float64"), x.to(dtype=mg.float64), x.to(mg.float64)):
        assert y.dtype == mg.float64
    y = x.to(mg.float64)
    (y * y).sum().backward()
    assert x.grad.dtype == mg.float32 and x.grad.tolist() == [2.0, 4.0]
    assert x.to("cpu") is x and x.cpu() is x


def test_comparisons_return_bool_tensors(device):
    a = mg.tensor([1.0, 2.0, 3.0], device=device)
    b = mg.tensor([3.0, 2.0, 1.0], device=device)
    assert (a == b).tolist() == [False, True, False]
    assert (a != b).tolist() == [True, False, True]
    assert (a < b).tolist() == [True, False, False]
    assert (a <= 2.0).tolist() == [True, True, False]
    assert (a > b).tolist() == [False, False, True]
    assert (a >= b).tolist() == [False, True, True]
    assert (a == b).dtype == np.dtype("bool")
    assert (a > 1.0).grad_fn is None


def test_comparisons_of_0d_tensors_are_0d_tensors():
    result = mg.tensor(2.0) > 1.0
    assert isinstance(result.array, np.ndarray)
    assert result.shape == () and result.dtype == np.dtype("bool") and bool(result)


def test_argmax(device):
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    t = mg.tensor(a, device=device)
    assert t.argmax().item() == 3 and t.argmax().shape == ()
    assert t.argmax(1).tolist() == [1, 0]
    assert t.argmax(dim=0, keepdim=True).tolist() == [[1, 0, 1]]
    assert t.argmax(-1).dtype == mg.int64
    one_d = mg.tensor([1.0, 9.0, 2.0], device=device).argmax(0)
    assert isinstance(one_d.array, type(t.array)) and one_d.shape == () and one_d.item() == 1
    assert (mg.tensor([3.0, 1.0], requires_grad=True) * 2.0).argmax().grad_fn is None


def test_bool_and_float_conversions():
    assert bool(mg.tensor([1.0])) and not bool(mg.tensor(0.0))
    assert float(mg.tensor(2.5)) == 2.5 and int(mg.tensor([[7]])) == 7
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(mg.ones(2))


def test_numpy_scalar_on_the_left_calls_the_tensor():
    result = np.float32(2.0) * mg.ones(2)
    assert isinstance(result, mg.Tensor) and result.tolist() == [2.0, 2.0]


# ---- repr ------------------------------------------------------------------------------------


def test_repr_looks_like_pytorch():
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(mg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(mg.tensor(3.0)) == "tensor(3.)"
    assert repr(mg.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=minigrad.float64)"
    assert repr(mg.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(mg.tensor([1.0], requires_grad=True) * 2.0) == "tensor([2.], grad_fn=<MulBackward>)"
    assert repr(mg.zeros(2, 2)) == "tensor([[0., 0.],\n        [0., 0.]])"
