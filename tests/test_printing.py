"""repr(tensor) prints what PyTorch prints for the same data (minigrad/printing.py).

Each test builds the same tensor in both libraries and compares the text, after writing torch's
`torch.float64` as `minigrad.float64` and, where a grad_fn shows, both names as `<...>` (the
libraries name their backward nodes differently: MulBackward0 and MulBackward).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from hypothesis_profiles import PROFILE, examples

import minigrad as mg
from tests.test_backend_seam import FakeGpuArray, fake_gpu  # noqa: F401 (a fixture)

NAN, INF = float("nan"), float("inf")


@pytest.fixture(autouse=True)
def default_print_options():
    """Every test starts and ends with the default print options in both libraries."""
    mg.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")
    yield
    mg.set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def torch_text(tensor) -> str:
    """torch's repr in minigrad's spelling (dtype=minigrad.float64, grad_fn=<...>)."""
    return re.sub(r"grad_fn=<\w+>", "grad_fn=<...>", repr(tensor).replace("torch.", "minigrad."))


def minigrad_text(tensor) -> str:
    """minigrad's repr with the grad_fn name blanked out as in torch_text."""
    return re.sub(r"grad_fn=<\w+>", "grad_fn=<...>", repr(tensor))


def both(data, dtype: str | None = None, requires_grad: bool = False):
    """The same data as a torch tensor and a minigrad tensor (NumPy arrays keep their dtype)."""
    if isinstance(data, np.ndarray):
        theirs, ours = torch.from_numpy(data.copy()), mg.from_numpy(data.copy())
        return theirs.requires_grad_(requires_grad), ours.requires_grad_(requires_grad)
    options = {} if dtype is None else {"dtype": dtype}
    theirs = torch.tensor(data, **{k: getattr(torch, v) for k, v in options.items()},
                          requires_grad=requires_grad)
    ours = mg.tensor(data, **{k: getattr(mg, v) for k, v in options.items()},
                     requires_grad=requires_grad)
    return theirs, ours


def assert_prints_like_torch(data, dtype: str | None = None, requires_grad: bool = False):
    theirs, ours = both(data, dtype, requires_grad)
    assert minigrad_text(ours) == torch_text(theirs)


def mixed(shape, seed=0) -> np.ndarray:
    """float32 values over many magnitudes (1e-3 to 1e3, both signs)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(np.float32)


# ---- the number format ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        [0.12345679, 1.0],  # fixed, precision 4
        [1.0, 2.0],  # integer mode: `1.`
        [-1.0, 20.0, 300.0],  # integer mode, padded to one width
        [0.0, -0.0],  # only zeros: integer mode, `-0.` kept
        [0.5, -0.25, 3.0],  # negatives pad to the same width
        [-1.5, -22.25, 333.125],
        [1e8, 1.0],  # ratio 1e8 > 1000: scientific
        [1.5e8, 1.0],
        [1.5e9],  # max > 1e8: scientific
        [1e-5, 1.0],  # min < 1e-4: scientific
        [1e-5],
        [1.0, 1001.0],  # ratio just over 1000: scientific
        [1.0, 999.5],  # under 1000: fixed
        [100000.0, 1.0],
        [1.0, NAN],  # nan and inf do not count for the width
        [1.0, INF, -INF],
        [0.5, NAN, -INF],
        [1e-5, NAN],  # scientific pads nan to the width
        [NAN, INF],
        [0.0, 1e-9, 12345.678],
        [3.14159265, -2.71828183, 1e-3],
    ],
)
def test_float_format_matches_torch(data):
    assert_prints_like_torch(data)


@pytest.mark.parametrize("value", [3.5, 2.0, -0.0, 0.0, NAN, INF, -INF, 1e-7, 1.5e9, 123.456])
def test_zero_dim_float_matches_torch(value):
    assert_prints_like_torch(value)


@pytest.mark.parametrize("value, dtype", [(5, "int64"), (-7, "int32"), (True, "bool"),
                                          (False, "bool"), (2.5, "float64"), (0.1, "float16")])
def test_zero_dim_of_each_dtype_matches_torch(value, dtype):
    assert_prints_like_torch(value, dtype)


@pytest.mark.parametrize(
    "data, dtype",
    [
        ([1, 2, 3], "int64"),
        ([-5, 100, 7], "int64"),
        ([1, -2, 30000], "int32"),
        ([0, 255, 7], "uint8"),
        ([True, True], "bool"),
        ([True, False], "bool"),
        ([[True, False], [False, True]], "bool"),
        ([0.1, 2.5, -3.0], "float16"),
        ([1.0, 2.0], "float16"),
        ([1e-3, 60000.0], "float16"),
        ([0.1, 2.5, -3.0], "float64"),
        ([1.0, 1e10], "float64"),
        ([[1.0, 2.0], [3.0, 4.5]], "float64"),
    ],
)
def test_each_dtype_matches_torch(data, dtype):
    assert_prints_like_torch(data, dtype)


def test_bool_pads_true_to_the_width_of_false():
    assert repr(mg.tensor([True, False])) == "tensor([ True, False])"
    assert repr(mg.tensor([True, True])) == "tensor([True, True])"


# ---- layout: rows, wrapping, summarising -----------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        [[1.0, 2.0], [3.0, 4.0]],
        [[0.5, -1.25], [200.0, 3.0]],
        [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]],  # a blank line between matrices
        [[[[1, 2]], [[3, 4]]], [[[5, 6]], [[7, 8]]]],  # 4-d: two blank lines
        [[1.0], [2.0], [3.0]],
    ],
)
def test_nested_rows_match_torch(data):
    assert_prints_like_torch(data)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(30, dtype=np.float32) * 1.5,  # a long row wraps at 80 columns
        np.arange(100, dtype=np.int64),
        np.arange(25, dtype=np.float32).reshape(1, 25) / 7,  # wraps inside a 2-d tensor
        mixed((4, 30)),
        mixed((3, 4, 20), seed=1),
        np.linspace(-1, 1, 40).astype(np.float64),
    ],
    ids=["float-row", "int-row", "2d-row", "mixed-2d", "mixed-3d", "float64-row"],
)
def test_wide_rows_wrap_like_torch(array):
    assert_prints_like_torch(array)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(2000, dtype=np.int64),
        np.arange(1001, dtype=np.float32),
        np.arange(2000, dtype=np.float32).reshape(40, 50),
        np.arange(5000, dtype=np.float32).reshape(10, 20, 25) / 7,
        mixed((50, 50), seed=2),
        np.arange(1200, dtype=np.float32).reshape(2, 600),  # dim 0 too short to summarise
        np.arange(3000, dtype=np.int32).reshape(1000, 3),
        (np.arange(1500) % 3 == 0),
    ],
    ids=["int", "float-1001", "2d", "3d", "mixed", "short-dim", "int32-tall", "bool"],
)
def test_more_than_1000_elements_summarise_like_torch(array):
    assert_prints_like_torch(array)


def test_summary_format_looks_only_at_the_elements_shown():
    array = np.ones(2000, dtype=np.float32)
    array[1000] = 0.123456  # hidden by "...": integer mode stays
    assert_prints_like_torch(array)
    assert repr(mg.from_numpy(array)) == "tensor([1., 1., 1.,  ..., 1., 1., 1.])"


# ---- empty tensors and suffixes --------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.tensor([]),
        lambda lib: lib.zeros(0, 3),
        lambda lib: lib.zeros(2, 0, 4),
        lambda lib: lib.zeros(0, dtype=lib.int64),
        lambda lib: lib.zeros(0, 3, dtype=lib.int64),
        lambda lib: lib.tensor([], dtype=lib.bool),
        lambda lib: lib.zeros(0, dtype=lib.float64),
        lambda lib: lib.zeros(0, 2, requires_grad=True),
    ],
)
def test_empty_tensors_match_torch(make):
    assert minigrad_text(make(mg)) == torch_text(make(torch))


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
        lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) * 2,
        lambda lib: lib.tensor(3.5, requires_grad=True).exp(),
        lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True),
        lambda lib: lib.tensor([[1.0, 2.0]], dtype=lib.float64, requires_grad=True) * 2,
        lambda lib: lib.tensor([1, 2], dtype=lib.int32),
        lambda lib: lib.arange(20, dtype=lib.float64) / 3 + 100,  # the suffix wraps
        lambda lib: (lib.arange(16, dtype=lib.float32) / 3).reshape(2, 8),  # last line is short
        lambda lib: (lib.arange(16, dtype=lib.float64) / 3).reshape(2, 8),  # last line is long
        lambda lib: (lib.arange(14, dtype=lib.float64) / 3 * 1000 + 0.5).requires_grad_(),
        lambda lib: lib.arange(2000, dtype=lib.float64).requires_grad_(),
        lambda lib: (lib.arange(4, dtype=lib.float64) / 3).requires_grad_(),  # second one wraps
        lambda lib: (lib.arange(16, dtype=lib.float64) / 3).reshape(2, 8).requires_grad_(),
    ],
)
def test_suffixes_follow_the_data_like_torch(make):
    assert minigrad_text(make(mg)) == torch_text(make(torch))


def test_grad_fn_suffix_names_minigrads_node():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x * 2.0) == "tensor([2., 4.], grad_fn=<MulBackward>)"


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.tensor([1.5]),
        lambda lib: lib.tensor([1.5], dtype=lib.float32),
        lambda lib: lib.zeros(0),
        lambda lib: lib.zeros(0, dtype=lib.float32),
    ],
)
def test_the_default_dtype_is_the_one_not_printed(make):
    torch_default, mg_default = torch.get_default_dtype(), mg.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    mg.set_default_dtype(mg.float64)
    try:
        assert minigrad_text(make(mg)) == torch_text(make(torch))
    finally:
        torch.set_default_dtype(torch_default)
        mg.set_default_dtype(mg_default)


def test_parameter_prints_like_torch():
    ours = mg.nn.Parameter(mg.tensor([[0.5, -1.0], [2.0, 3.25]]))
    theirs = torch.nn.Parameter(torch.tensor([[0.5, -1.0], [2.0, 3.25]]))
    assert minigrad_text(ours) == torch_text(theirs)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: mg.tensor([[0.5, -1.0], [2.0, 3.25]], device="cuda", requires_grad=True),
         "tensor([[ 0.5000, -1.0000],\n        [ 2.0000,  3.2500]], device='cuda:0', "
         "requires_grad=True)"),
        (lambda: mg.full((11,), 0.1, dtype=mg.float64, device="cuda"),
         "tensor([0.1000, 0.1000, 0.1000, 0.1000, 0.1000, 0.1000, 0.1000, 0.1000, 0.1000,\n"
         "        0.1000, 0.1000], device='cuda:0', dtype=minigrad.float64)"),
        (lambda: (mg.arange(16, dtype=mg.float64, device="cuda") / 3).reshape(2, 8)
         .requires_grad_(),
         "tensor([[0.0000, 0.3333, 0.6667, 1.0000, 1.3333, 1.6667, 2.0000, 2.3333],\n"
         "        [2.6667, 3.0000, 3.3333, 3.6667, 4.0000, 4.3333, 4.6667, 5.0000]],\n"
         "       device='cuda:0', dtype=minigrad.float64, requires_grad=True)"),
    ],
)
def test_a_gpu_tensor_prints_its_values_and_device(fake_gpu, make, expected):  # noqa: F811
    """PyTorch's text for a CUDA tensor (checked with its _add_suffixes), from one host copy."""
    x = make()
    FakeGpuArray.host_reads = 0
    assert repr(x) == expected
    assert FakeGpuArray.host_reads == 1  # one copy to the host, not one per element


def test_str_is_repr():
    x = mg.tensor([0.1, 0.2])
    assert str(x) == repr(x) == "tensor([0.1000, 0.2000])"


# ---- set_printoptions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"precision": 2},
        {"precision": 0},
        {"precision": 8},
        {"threshold": 5},
        {"threshold": 5, "edgeitems": 1},
        {"threshold": 5, "edgeitems": 0},  # only "..." and a size= suffix
        {"edgeitems": 0},
        {"linewidth": 40},
        {"linewidth": 200},
        {"sci_mode": True},
        {"sci_mode": False},
        {"profile": "short"},
        {"profile": "full"},
        {"profile": "short", "precision": 6},
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "array",
    [
        np.array([1.123456789, 2.5, -3.0], dtype=np.float64),
        np.array([1.0, 2.0], dtype=np.float32),
        np.array([1e-6, 1.0, NAN], dtype=np.float32),
        np.arange(12, dtype=np.int64),
        np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3,
        np.arange(1500, dtype=np.float32) / 7,
        mixed((6, 14), seed=3),
    ],
    ids=["float64", "integral", "tiny-nan", "int", "3d", "long", "mixed"],
)
def test_set_printoptions_matches_torch(options, array):
    mg.set_printoptions(**options)
    torch.set_printoptions(**options)
    assert_prints_like_torch(array)


def test_set_printoptions_round_trip():
    x = mg.tensor([1.123456789, 2.0])
    mg.set_printoptions(precision=2, sci_mode=True)
    assert repr(x) == "tensor([1.12e+00, 2.00e+00])"
    mg.set_printoptions(precision=6)  # each call resets sci_mode to automatic, as in PyTorch
    assert repr(x) == "tensor([1.123457, 2.000000])"
    mg.set_printoptions(profile="default")
    assert repr(x) == "tensor([1.1235, 2.0000])"
    assert repr(mg.arange(2000)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"


def test_set_printoptions_names_an_unknown_profile():
    with pytest.raises(ValueError, match="profile must be one of.*'long'"):
        mg.set_printoptions(profile="long")


def test_set_printoptions_is_exported():
    assert mg.set_printoptions is mg.printing.set_printoptions
    assert "set_printoptions" in mg.__all__


# ---- any array ---------------------------------------------------------------------------------


def unwrapped_suffixes(text: str) -> str:
    """The text with suffixes joined to their line: `minigrad.float64` is 3 characters longer
    than `torch.float64`, so near the line width the two wrap a suffix differently."""
    return re.sub(r",\n +(size|dtype|requires_grad|grad_fn)=", r", \1=", text)


@settings(PROFILE, max_examples=examples(0.5))
@given(
    arrays(
        dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int32, np.bool_]),
        shape=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12),
    ),
    st.booleans(),
)
def test_any_array_prints_like_torch(array, requires_grad):
    requires_grad = requires_grad and array.dtype.kind == "f"
    theirs, ours = both(array, requires_grad=requires_grad)
    assert unwrapped_suffixes(minigrad_text(ours)) == unwrapped_suffixes(torch_text(theirs))
