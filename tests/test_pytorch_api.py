"""PyTorch's everyday names (issue 12), each checked against torch: dtypes and casts, factories,
and the functions as mg.X and Tensor.X (values, gradients, dtypes, errors)."""

import math

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")


def both(values, dtype="float64", requires_grad=False):
    a = np.asarray(values, dtype=dtype)
    return (mg.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def close(m, t, tol=1e-6):
    assert m.shape == tuple(t.shape), (m.shape, t.shape)
    assert str(m.dtype) == str(t.dtype).replace("torch.", ""), (m.dtype, t.dtype)
    np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


# ---- 1. dtypes and casts ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["float", "double", "half", "long", "int", "bool", "uint8",
                                  "float16", "float32", "float64", "int8", "int16", "int32",
                                  "int64", "short"])
def test_dtype_names_are_torchs(name):
    assert str(getattr(mg, name)) == str(getattr(torch, name)).replace("torch.", "")


@pytest.mark.parametrize("cast", ["float", "double", "half", "long", "int", "bool", "short",
                                  "byte"])
def test_cast_methods(cast):
    m, t = both([[-1.7, 0.0, 2.5]])
    close(getattr(m, cast)(), getattr(t, cast)())


def test_type_to_and_default_dtype():
    m, t = both([1.5, 2.0], "float32")
    assert m.type() == t.type().replace("torch", "minigrad")
    assert m.type(mg.float64).dtype == mg.float64
    assert m.to(mg.tensor([1], dtype=mg.int32)).dtype == mg.int32
    assert mg.get_default_dtype() == mg.float32
    try:
        mg.set_default_dtype(mg.float64)
        assert mg.tensor([1.5]).dtype == mg.float64 and mg.zeros(2).dtype == mg.float64
        assert mg.arange(0.0, 1.0, 0.5).dtype == mg.float64
    finally:
        mg.set_default_dtype(mg.float32)
    with pytest.raises(TypeError, match="only floating-point"):
        mg.set_default_dtype(mg.int64)


def test_promotion_where_it_differs_from_numpy():
    assert mg.tensor([1, 2]).exp().dtype == mg.float32
    with pytest.raises(RuntimeError, match="mean"):
        mg.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError, match="dtype"):
        mg.ones(2, 2) @ mg.ones(2, 2, dtype=mg.float64)


# ---- 2. factories -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [(0, 1, 7), (-3, 5, 10), (2.0, 2.0, 1), (0, 1, 0), (1, 0, 4)])
def test_linspace_matches(args):
    # torch rounds start + step * i once (a fused multiply-add) where its vectorised kernel runs
    # (AVX2, AVX-512) and twice elsewhere (a CPU without AVX2, ATEN_CPU_CAPABILITY=default), so
    # the inner values may differ in the last bit from machine to machine: they are compared to
    # a few units in the last place. The two ends are start and end exactly everywhere.
    for dtype, tol in [(None, 1e-6), ("float64", 1e-13)]:
        m = mg.linspace(*args, dtype=dtype and getattr(mg, dtype))
        t = torch.linspace(*args, dtype=dtype and getattr(torch, dtype))
        close(m, t, tol=tol)
        m, t = m.detach().numpy(), t.detach().numpy()
        if args[2]:
            assert m[0] == t[0] == args[0] and m[-1] == t[-1] == args[1], (m, t)


def test_factories_values_and_dtypes():
    close(mg.logspace(0, 2, 5), torch.logspace(0, 2, 5), tol=1e-6)
    close(mg.logspace(0, 3, 4, base=2), torch.logspace(0, 3, 4, base=2))
    for value in (3, True, 1.5):
        close(mg.full((2, 3), value), torch.full((2, 3), value))
    close(mg.full_like(mg.ones(2), 7), torch.full_like(torch.ones(2), 7))
    close(mg.eye(3), torch.eye(3))
    close(mg.eye(2, 4, dtype=mg.int64), torch.eye(2, 4, dtype=torch.int64))
    for args in [(1.5, 4), (10,), (1, 10, 3)]:  # exactly representable: equal on any machine
        close(mg.arange(*args), torch.arange(*args), tol=0)
    for args in [(0, 1, 0.1), (0, -1, -0.3)]:  # start + i * step, rounded by two different codes
        close(mg.arange(*args), torch.arange(*args), tol=1e-6)
    assert mg.empty(2, 3).shape == (2, 3) and mg.empty((4,), dtype=mg.int64).dtype == mg.int64
    assert mg.empty_like(mg.ones(3, dtype=mg.float64)).dtype == mg.float64


def test_random_factories():
    mg.manual_seed(0)
    r = mg.randint(3, 7, (1000,))
    assert r.dtype == mg.int64 and r.shape == (1000,)
    assert set(r.tolist()) == {3, 4, 5, 6}
    assert mg.randint(5, (2, 2)).shape == (2, 2)
    p = mg.randperm(50)
    assert sorted(p.tolist()) == list(range(50)) and p.dtype == mg.int64
    like = mg.ones(4, 5, dtype=mg.float64)
    assert mg.randn_like(like).shape == (4, 5) and mg.randn_like(like).dtype == mg.float64
    u = mg.rand_like(like)
    assert float(u.min()) >= 0 and float(u.max()) < 1
    with pytest.raises(RuntimeError):
        mg.randint(5, 5, (2,))
    with pytest.raises(RuntimeError):
        torch.randint(5, 5, (2,))


@pytest.mark.parametrize("make, bad", [
    (lambda lib: lib.linspace(0, 1, -1), RuntimeError),
    (lambda lib: lib.eye(-1), RuntimeError),
    (lambda lib: lib.randperm(-1), RuntimeError),
    (lambda lib: lib.arange(0, 10, -1), RuntimeError),
    (lambda lib: lib.chunk(lib.ones(3), 0), RuntimeError),
    (lambda lib: lib.ones(2, 3).permute(0, 0), RuntimeError),
    (lambda lib: lib.ones(2, 3).permute(0), RuntimeError),
    (lambda lib: lib.ones(2, 3).repeat(2), RuntimeError),
    (lambda lib: lib.ones(4).split([1, 2]), RuntimeError),
    (lambda lib: lib.bmm(lib.ones(2, 3), lib.ones(2, 3)), RuntimeError),
])
def test_bad_input_raises_what_torch_raises(make, bad):
    with pytest.raises(bad):
        make(torch)
    with pytest.raises(bad):
        make(mg)


# ---- 3. functions as mg.X and Tensor.X ----------------------------------------------------------

X = [[0.3, -1.2, 2.0], [1.5, 0.7, -0.4]]
Y = [[1.1, 0.5, -2.0], [0.2, 0.7, 3.0]]

UNARY = {
    "exp": lambda lib, x: lib.exp(x), "log": lambda lib, x: lib.log(x.abs() + 0.5),
    "sqrt": lambda lib, x: lib.sqrt(x * x + 1), "sin": lambda lib, x: lib.sin(x),
    "cos": lambda lib, x: lib.cos(x), "tanh": lambda lib, x: lib.tanh(x),
    "sigmoid": lambda lib, x: lib.sigmoid(x), "relu": lambda lib, x: lib.relu(x),
    "abs": lambda lib, x: lib.abs(x), "neg": lambda lib, x: lib.neg(x),
    "sign": lambda lib, x: lib.sign(x) * x, "clamp": lambda lib, x: lib.clamp(x, -1, 1),
    "clip": lambda lib, x: lib.clip(x, min=0.0), "sum_dim": lambda lib, x: lib.sum(x, 1),
    "sum_axis": lambda lib, x: x.sum(axis=0, keepdims=True),
    "mean": lambda lib, x: lib.mean(x, dim=0, keepdim=True),
    "max": lambda lib, x: lib.max(x), "min": lambda lib, x: lib.min(x),
    "max_dim": lambda lib, x: lib.max(x, 1).values, "min_dim": lambda lib, x: x.min(0)[0],
    "std": lambda lib, x: lib.std(x), "std_dim": lambda lib, x: x.std(1, keepdim=True),
    "var": lambda lib, x: lib.var(x, 0, unbiased=False),
    "var_corr": lambda lib, x: x.var(dim=1, correction=0),
    "norm": lambda lib, x: lib.norm(x), "norm1": lambda lib, x: x.norm(p=1, dim=1),
    "norm3": lambda lib, x: x.norm(3),
    # The slope at a zero vector is 0, as PyTorch's (its second derivative there is NaN in
    # PyTorch and 0 in minigrad: see docs/pytorch-names.md).
    "norm_at_zero": lambda lib, x: (x * lib.tensor([[0.0], [1.0]], dtype=x.dtype)).norm(dim=1),
    "norm_inf": lambda lib, x: x.norm(math.inf),
    "softmax": lambda lib, x: lib.softmax(x, dim=1),
    "log_softmax": lambda lib, x: lib.log_softmax(x, 0),
    "reshape": lambda lib, x: lib.reshape(x, (3, 2)) * lib.arange(3.0).reshape(3, 1),
    "view_as": lambda lib, x: x.view_as(lib.ones(6)) * lib.arange(6.0),
    "reshape_as": lambda lib, x: x.reshape_as(lib.ones(3, 2)).exp(),
    "flatten": lambda lib, x: lib.flatten(x).exp(),
    "transpose": lambda lib, x: lib.transpose(x, 0, 1).exp(),
    "permute": lambda lib, x: x.unsqueeze(0).permute(2, 0, 1).exp(),
    "permute_fn": lambda lib, x: lib.permute(x, (1, 0)).exp(),
    "expand": lambda lib, x: x[:1].expand(4, 3).exp(),
    "expand_as": lambda lib, x: x[:, :1].expand_as(x).exp(),
    "repeat": lambda lib, x: x.repeat(2, 1, 3).exp(),
    "squeeze": lambda lib, x: lib.squeeze(x[:1]).exp(),
    "unsqueeze": lambda lib, x: lib.unsqueeze(x, -1).exp(),
    "chunk": lambda lib, x: lib.chunk(x, 2, 1)[1].exp(),
    "split": lambda lib, x: lib.split(x, [1, 2], dim=1)[1].exp(),
    "split_size": lambda lib, x: x.split(2, 1)[1].exp(),
    "clone": lambda lib, x: lib.clone(x).exp(),
    "contiguous": lambda lib, x: x.t().contiguous().exp(),
    "cat": lambda lib, x: lib.cat([x, x * 2], dim=1).exp(),
    "stack": lambda lib, x: lib.stack([x, x.exp()], 1),
    "pow": lambda lib, x: lib.pow(x, 3), "pow_method": lambda lib, x: x.pow(2),
    "rpow": lambda lib, x: lib.pow(2.0, x),
}

BINARY = {
    "add": lambda lib, x, y: lib.add(x, y, alpha=2), "sub": lambda lib, x, y: lib.sub(x, y),
    "mul": lambda lib, x, y: lib.mul(x, y), "div": lambda lib, x, y: lib.div(x, y),
    "add_method": lambda lib, x, y: x.add(y), "sub_method": lambda lib, x, y: x.sub(y, alpha=3),
    "mul_method": lambda lib, x, y: x.mul(y), "div_method": lambda lib, x, y: x.div(y),
    "pow_tensor": lambda lib, x, y: lib.pow(x.abs() + 1, y),
    "maximum": lambda lib, x, y: lib.maximum(x, y), "minimum": lambda lib, x, y: lib.minimum(x, y),
    "max_tensor": lambda lib, x, y: lib.max(x, y), "min_method": lambda lib, x, y: x.min(y),
    "matmul": lambda lib, x, y: lib.matmul(input=x, other=y.t()),
    "mm": lambda lib, x, y: lib.mm(x, y.t()),
    "bmm": lambda lib, x, y: lib.bmm(x.unsqueeze(0), y.t().unsqueeze(0)),
    "where": lambda lib, x, y: lib.where(x > y, x, y * 2),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_values_and_gradients(name):
    m, t = both(X, requires_grad=True)
    mz, tz = UNARY[name](mg, m), UNARY[name](torch, t)
    close(mz, tz)
    mz.sum().backward()
    tz.sum().backward()
    close(m.grad, t.grad)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_values_and_gradients(name):
    mx, tx = both(X, requires_grad=True)
    my, ty = both(Y, requires_grad=True)
    mz, tz = BINARY[name](mg, mx, my), BINARY[name](torch, tx, ty)
    close(mz, tz)
    mz.sum().backward()
    tz.sum().backward()
    close(mx.grad, tx.grad)
    close(my.grad, ty.grad)


def test_ties_share_the_gradient_as_torch():
    for fn in ("maximum", "minimum"):
        mx, tx = both([1.0, 2.0, 3.0], requires_grad=True)
        my, ty = both([1.0, 0.0, 5.0], requires_grad=True)
        getattr(mg, fn)(mx, my).sum().backward()
        getattr(torch, fn)(tx, ty).sum().backward()
        close(mx.grad, tx.grad)
        close(my.grad, ty.grad)
    m, t = both([0.0, -1.0, 2.0], requires_grad=True)
    mg.abs(m).sum().backward()
    torch.abs(t).sum().backward()
    close(m.grad, t.grad)


def test_named_pairs_argmin_and_comparisons():
    m, t = both(X)
    for fn in ("max", "min"):
        mr, tr = getattr(mg, fn)(m, 1, keepdim=True), getattr(torch, fn)(t, 1, keepdim=True)
        close(mr.values, tr.values)
        close(mr.indices, tr.indices)
        assert type(mr).__name__ == fn.capitalize() + "Result"
    close(mg.argmin(m, 1), torch.argmin(t, 1))
    close(m.argmin(), t.argmin())
    n, u = both(Y)
    for fn in ("eq", "ne", "lt", "le", "gt", "ge"):
        close(getattr(mg, fn)(m, n), getattr(torch, fn)(t, u))
        close(getattr(m, fn)(0.7), getattr(t, fn)(0.7))
    z, w = both([1.0, math.nan, math.inf, -2.0])
    close(mg.isnan(z), torch.isnan(w))
    close(z.isfinite(), w.isfinite())
    assert mg.allclose(m, m + 1e-9) and not mg.allclose(m, n)
    assert mg.equal(m, m.clone()) and not mg.equal(m, m[:1])
    assert mg.numel(m) == torch.numel(t)


# ---- double backward of every new differentiable op, against torch.autograd.grad ---------------

DOUBLE = {
    "sin": lambda lib, x: lib.sin(x), "cos": lambda lib, x: lib.cos(x),
    "abs": lambda lib, x: lib.abs(x) * x, "sign": lambda lib, x: lib.sign(x) * x * x,
    "maximum": lambda lib, x: lib.maximum(x * x, x.exp() - 1),
    "minimum": lambda lib, x: lib.minimum(x * x, x.exp() - 1),
    "permute": lambda lib, x: (x.unsqueeze(0).permute(2, 0, 1) ** 3),
    "std": lambda lib, x: x.std(1), "var": lambda lib, x: x.var(0, unbiased=False) * x.sum(),
    "norm": lambda lib, x: x.norm(), "norm3": lambda lib, x: x.norm(3, dim=1),
    "norm_dim": lambda lib, x: x.norm(dim=0, keepdim=True) * x,
    "repeat": lambda lib, x: x.repeat(2, 2) ** 3, "min": lambda lib, x: (x ** 3).min(1).values,
    "split": lambda lib, x: x.split(1, 1)[2] ** 3, "pow": lambda lib, x: lib.pow(2.0, x),
}


@pytest.mark.parametrize("name", sorted(DOUBLE))
def test_double_backward_matches_torch(name):
    m, t = both(X, requires_grad=True)
    mz, tz = DOUBLE[name](mg, m), DOUBLE[name](torch, t)
    (mg_g,) = mg.autograd.grad(mz.sum(), m, create_graph=True)
    (t_g,) = torch.autograd.grad(tz.sum(), t, create_graph=True)
    close(mg_g, t_g)
    (mg_gg,) = mg.autograd.grad((mg_g * mg_g).sum(), m)
    (t_gg,) = torch.autograd.grad((t_g * t_g).sum(), t)
    close(mg_gg, t_gg)
