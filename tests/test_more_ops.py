"""The ops added for PyTorch's everyday code (log1p, expm1, log2, log10, square, rsqrt, the
roundings, cumsum, logsumexp, flip, tril/triu, masked_fill, outer, dot): values, first and
second derivatives and forward mode against torch in float64, and torch's errors."""

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

DATA = np.random.default_rng(7).standard_normal((3, 4))

OPS = {
    "log1p": lambda x: (x * x).log1p(),
    "expm1": lambda x: x.expm1(),
    "log2": lambda x: (x * x + 0.1).log2(),
    "log10": lambda x: (x * x + 0.1).log10(),
    "square": lambda x: x.square(),
    "rsqrt": lambda x: (x * x + 0.1).rsqrt(),
    "floor": lambda x: (x * 3).floor() * x,
    "ceil": lambda x: (x * 3).ceil() * x,
    "trunc": lambda x: (x * 3).trunc() * x,
    "round": lambda x: (x * 3).round() * x,
    "round decimals": lambda x: (x * 3).round(decimals=1) * x,
    "cumsum 0": lambda x: (x * x).cumsum(0),
    "cumsum -1": lambda x: (x * x).cumsum(-1),
    "logsumexp": lambda x: (x * x).logsumexp(1),
    "logsumexp keepdim": lambda x: (x * x).logsumexp((0, 1), keepdim=True),
    "logsumexp 0": lambda x: (x * x).logsumexp(0),
    "flip": lambda x: (x * x).flip(0, 1),
    "flip list": lambda x: (x * x).flip([1]),
    "tril": lambda x: (x * x).tril(),
    "triu 1": lambda x: (x * x).triu(1),
    "tril -1": lambda x: (x * x).tril(-1),
    "masked_fill": lambda x: (x * x).masked_fill(x > 0, 2.0),
    "masked_fill 0-d": lambda x: (x * x).masked_fill(x > 0, x[0, 0]),
    "outer": lambda x: (x[0] * x[0]).outer(x[1]),
    "dot": lambda x: (x[0] * x[0]).dot(x[1]),
}


def run(lib, op):
    """The op's value, gradient and second derivative (of the squared gradient's sum)."""
    x = lib.tensor(DATA, requires_grad=True)
    y = OPS[op](x)
    (g,) = lib.autograd.grad((y * 0.7).sum(), [x], create_graph=True)
    (gg,) = lib.autograd.grad((g * g).sum(), [x], allow_unused=True)
    return [y.detach().numpy().copy(), g.detach().numpy().copy(),
            None if gg is None else gg.numpy().copy()]


@pytest.mark.parametrize("op", list(OPS))
def test_values_and_two_derivatives_equal_torchs(op):
    mine, theirs = run(mg, op), run(torch, op)
    for a, b in zip(mine, theirs, strict=True):
        if b is None:  # torch: the gradient does not depend on x
            assert a is None or not np.any(a), a
            continue
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", ["log1p", "expm1", "cumsum 0", "logsumexp", "logsumexp keepdim",
                                "flip", "tril", "masked_fill", "outer", "dot", "rsqrt"])
def test_gradcheck_with_forward_mode(op):
    x = mg.tensor(DATA, requires_grad=True)
    assert mg.autograd.gradcheck(OPS[op], (x,), check_forward_ad=True)


def test_small_arguments_keep_their_precision():
    tiny = mg.tensor([1e-10, -1e-12], dtype=mg.float64)
    assert tiny.log1p().tolist() == pytest.approx([1e-10, -1e-12], rel=1e-9)
    assert tiny.expm1().tolist() == pytest.approx([1e-10, -1e-12], rel=1e-9)


def test_roundings_halves_to_even_and_integers_as_torch():
    values = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51]
    for name in ("floor", "ceil", "trunc", "round"):
        assert getattr(mg.tensor(values), name)().tolist() == \
            getattr(torch.tensor(values), name)().tolist(), name
    assert mg.tensor([3, -2]).floor().tolist() == [3, -2]
    assert mg.tensor([3, -2]).floor().dtype == mg.int64


def test_logsumexp_of_minus_infinity_and_of_integers_as_torch():
    for lib in (mg, torch):
        assert lib.tensor([[-float("inf")] * 2]).logsumexp(1).tolist() == [-float("inf")]
    assert mg.tensor([1, 2]).logsumexp(0).item() == pytest.approx(
        torch.tensor([1, 2]).logsumexp(0).item(), rel=1e-6)
    assert str(mg.tensor([1, 2]).logsumexp(0).dtype) == "float32"


def test_cumsum_of_integers_is_int64_and_takes_a_dtype():
    for lib in (mg, torch):
        assert str(lib.tensor([1, 2], dtype=lib.int32).cumsum(0).dtype).endswith("int64")
        out = lib.tensor([1, 2]).cumsum(0, dtype=lib.float64)
        assert out.tolist() == [1.0, 3.0] and str(out.dtype).endswith("float64")


@pytest.mark.parametrize("name", ["cumsum", "logsumexp", "tril", "outer", "dot",
                                  "log1p", "round"])
def test_functions_and_out_as_torch(name):
    args = {"cumsum": (1,), "logsumexp": (1,), "flip": ([0],), "tril": (), "outer": (),
            "dot": (), "log1p": (), "round": ()}[name]
    results = []
    for lib in (mg, torch):
        x = lib.tensor(DATA) if name not in ("outer", "dot") else lib.tensor(DATA[0])
        extra = (x,) if name in ("outer", "dot") else ()
        if name == "log1p":
            x = x * x
        expected = getattr(lib, name)(x, *extra, *args)
        out = lib.zeros(tuple(expected.shape), dtype=lib.float64)
        assert getattr(lib, name)(x, *extra, *args, out=out) is out
        results.append(out.tolist())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


ERRORS = {
    "tril of a vector": lambda lib: lib.ones(3).tril(),
    "outer of a matrix": lambda lib: lib.ones(3).outer(lib.ones(2, 2)),
    "dot of two lengths": lambda lib: lib.ones(3).dot(lib.ones(2)),
    "dot of two dtypes": lambda lib: lib.ones(3).dot(lib.ones(3, dtype=lib.float64)),
    "dot of a matrix": lambda lib: lib.ones(2, 2).dot(lib.ones(3)),
    "masked_fill with a float mask": lambda lib: lib.ones(2).masked_fill(lib.ones(2), 0.0),
    "masked_fill with a 1-d value": lambda lib: lib.ones(2).masked_fill(
        lib.ones(2, dtype=lib.bool), lib.ones(2)),
    "cumsum out of range": lambda lib: lib.ones(2, 3).cumsum(2),
    "flip out of range": lambda lib: lib.ones(2).flip(1),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_as_torch(case):
    with pytest.raises(Exception) as theirs:
        ERRORS[case](torch)
    with pytest.raises(type(theirs.value)) as mine:
        ERRORS[case](mg)
    if type(theirs.value) is RuntimeError:  # the same words (minigrad may add the values)
        first = " ".join(str(theirs.value).split()[:3])
        assert first.lower() in str(mine.value).lower(), (str(mine.value), str(theirs.value))


def test_masked_fill_in_place_as_torch():
    results = []
    for lib in (mg, torch):
        x = lib.tensor(DATA, requires_grad=True)
        y = x * 1.0
        y.masked_fill_(x < 0, 0.5)
        (y * y).sum().backward()
        results.append((y.tolist(), x.grad.tolist()))
    assert results[0] == results[1]


def test_a_long_float32_running_sum_does_not_drift():
    values = np.full(1_000_000, 0.1, np.float32)
    mine = mg.from_numpy(values).cumsum(0)[-1].item()
    theirs = torch.from_numpy(values).cumsum(0)[-1].item()
    assert mine == pytest.approx(theirs, rel=1e-6) and mine == pytest.approx(1e5, rel=1e-6)
    half = (np.arange(5000) / 1000).astype(np.float16)
    assert mg.from_numpy(half).cumsum(0)[-1].item() == torch.from_numpy(half).cumsum(0)[-1].item()


def test_flip_of_no_dims_is_a_copy_and_takes_dims_by_keyword():
    for lib in (mg, torch):
        x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
        assert x.flip(()).tolist() == x.tolist() and x.flip([]).tolist() == x.tolist()
        assert lib.flip(x, dims=(1,)).tolist() == [[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]]
        assert x.flip(dims=[0, 1]).tolist() == [[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]


@pytest.mark.parametrize("case", ["int filled with a float", "bool tril", "float16 with a 0-d "
                                  "float32", "bool filled with an int", "int in place"])
def test_masked_fill_and_triangles_keep_the_input_dtype(case):
    def run(lib):
        if case == "int filled with a float":
            x = lib.tensor([1, 2, 3])
            return x.masked_fill(x > 1, 2.5)
        if case == "bool tril":
            return lib.ones(2, 2, dtype=lib.bool).tril()
        if case == "float16 with a 0-d float32":
            x = lib.ones(3, dtype=lib.float16)
            return x.masked_fill(x > 0, lib.tensor(0.5))
        if case == "bool filled with an int":
            x = lib.tensor([True, False])
            return x.masked_fill(lib.tensor([True, True]), 0)
        x = lib.tensor([1, 2, 3])
        return x.masked_fill_(x > 1, 2.5)

    mine, theirs = run(mg), run(torch)
    assert mine.tolist() == theirs.tolist()
    assert str(mine.dtype) == str(theirs.dtype).replace("torch.", "")


def test_logsumexp_over_nothing_is_minus_infinity_and_mt_of_a_number_is_itself():
    for lib in (mg, torch):
        assert lib.zeros(0).logsumexp(0).item() == -float("inf")
        assert lib.zeros(2, 0).logsumexp(1).tolist() == [-float("inf")] * 2
        assert lib.tensor(3.0).mT.item() == 3.0
