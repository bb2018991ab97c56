"""mg.func.vmap with batching rules, against torch.func.vmap and against a Python loop over the
slices: each rule, the ops without a rule (the per-slice fallback), transforms composed with
vmap (per-sample gradients, Jacobians, Hessians, vmap of a vjp), and the errors.

`no_fallback` checks that a computation ran on the whole batch: no op fell back to running once
per slice, so the speed of vmap is there, not only its numbers."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.func import batching

torch = pytest.importorskip("torch")
tfunc = torch.func

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3, 5))  # a batch of 4 slices of shape (3, 5)
Y = RNG.standard_normal((3, 5))
Z = RNG.standard_normal((4, 5))
W = RNG.standard_normal((2, 5))
B = RNG.standard_normal(2)


@pytest.fixture
def fallbacks(monkeypatch):
    """The names of the ops that ran once per slice during the test."""
    seen = []
    original = batching.one_slice_at_a_time

    def counting(cls, args, level):
        seen.append(cls.__name__)
        return original(cls, args, level)

    monkeypatch.setattr(batching, "one_slice_at_a_time", counting)
    return seen


def run_both(fn, arrays, **options):
    """vmap(fn) on minigrad and on torch, each result as NumPy arrays (a tuple for several)."""
    results = []
    for lib, vmap in ((mg, mg.func.vmap), (torch, tfunc.vmap)):
        args = [lib.tensor(a) if isinstance(a, np.ndarray) else a for a in arrays]
        out = vmap(lambda *a, lib=lib: fn(lib, *a), **options)(*args)
        out = out if isinstance(out, tuple) else (out,)
        results.append(tuple(o.detach().numpy() for o in out))
    return results


def loop(fn, arrays, in_dims):
    """The same as vmap, by a loop over the slices on minigrad (in_dims 0 or None only)."""
    size = next(a.shape[0] for a, d in zip(arrays, in_dims, strict=True) if d is not None)
    rows = []
    for i in range(size):
        args = [mg.tensor(a[i] if d is not None else a) if isinstance(a, np.ndarray) else a
                for a, d in zip(arrays, in_dims, strict=True)]
        rows.append(fn(mg, *args).detach().numpy())
    return np.stack(rows)


F_LINEAR = {mg: mg.nn.functional.linear, torch: torch.nn.functional.linear}
F_CE = {mg: mg.nn.functional.cross_entropy, torch: torch.nn.functional.cross_entropy}
F_NLL = {mg: mg.nn.functional.nll_loss, torch: torch.nn.functional.nll_loss}
F_MSE = {mg: mg.nn.functional.mse_loss, torch: torch.nn.functional.mse_loss}

RULES = [  # (name, f(lib, *slices), arrays, in_dims): every one runs without the fallback
    ("add, one unbatched", lambda lib, a, b: a + b, (X, Y), (0, None)),
    ("mul, broadcast slices", lambda lib, a, b: a * b, (X, Z), (0, 0)),
    ("div, pow, neg", lambda lib, a: -(a.abs() + 1) ** 1.5 / (a * a + 1), (X,), (0,)),
    ("exp log sqrt sin cos", lambda lib, a: a.exp() + (a.abs() + 1).log() + a.abs().sqrt()
     + a.sin() * a.cos(), (X,), (0,)),
    ("relu tanh sigmoid", lambda lib, a: a.relu() + a.tanh() + a.sigmoid(), (X,), (0,)),
    ("where and a comparison", lambda lib, a: lib.where(a > 0, a, a * 0.1), (X,), (0,)),
    ("maximum", lambda lib, a, b: lib.maximum(a, b), (X, Y), (0, None)),
    ("clamp", lambda lib, a: a.clamp(-0.5, 0.5), (X,), (0,)),
    ("sum over a dim", lambda lib, a: a.sum(1), (X,), (0,)),
    ("sum of all", lambda lib, a: a.sum(), (X,), (0,)),
    ("mean keepdim", lambda lib, a: a.mean(-1, keepdim=True), (X,), (0,)),
    ("var", lambda lib, a: a.var(0), (X,), (0,)),
    ("amax", lambda lib, a: a.amax(1), (X,), (0,)),
    ("softmax", lambda lib, a: a.softmax(0), (X,), (0,)),
    ("log_softmax", lambda lib, a: a.log_softmax(-1), (X,), (0,)),
    ("t", lambda lib, a: a.t(), (X,), (0,)),
    ("permute", lambda lib, a: a.permute(1, 0), (X,), (0,)),
    ("reshape", lambda lib, a: a.reshape(-1), (X,), (0,)),
    ("view", lambda lib, a: a.view(5, 3), (X,), (0,)),
    ("unsqueeze expand", lambda lib, a: a[:, None].expand(3, 2, 5), (X,), (0,)),
    ("basic index", lambda lib, a: a[1:, 2], (X,), (0,)),
    ("cat with an unbatched", lambda lib, a, b: lib.cat([a, b], 0), (X, Y), (0, None)),
    ("stack", lambda lib, a, b: lib.stack([a, b], 1), (X, X), (0, 0)),
    ("matrix @ vector", lambda lib, a, b: a @ b, (X, Z), (0, 0)),
    ("matrix @ unbatched matrix", lambda lib, a, b: a @ b, (X, Y.T.copy()), (0, None)),
    ("vector @ vector", lambda lib, a, b: a @ b, (Z, Z), (0, 0)),
    ("unbatched @ matrix", lambda lib, a, b: a @ b, (Y, X.transpose(0, 2, 1).copy()), (None, 0)),
    ("linear", lambda lib, a, w, b: F_LINEAR[lib](a, w, b), (X, W, B), (0, None, None)),
    ("linear, batched weight", lambda lib, a, w, b: F_LINEAR[lib](a, w, b),
     (Y, RNG.standard_normal((4, 2, 5)), B), (None, 0, None)),
    ("cross_entropy", lambda lib, a, t: F_CE[lib](a, t), (X, RNG.integers(0, 5, (4, 3))), (0, 0)),
    ("nll_loss", lambda lib, a, t: F_NLL[lib](a.log_softmax(-1), t),
     (X, RNG.integers(0, 5, (4, 3))), (0, 0)),
    ("nll_loss, weights and an ignored label", lambda lib, a, t, w: F_NLL[lib](
        a.log_softmax(-1), t, weight=w, ignore_index=1),
     (X, RNG.integers(0, 5, (4, 3)), RNG.random(5)), (0, 0, None)),
    ("mse_loss", lambda lib, a, b: F_MSE[lib](a, b), (X, Y), (0, None)),
    ("max and min of all", lambda lib, a: a.max() - a.min(), (X,), (0,)),
    ("norm", lambda lib, a: a.norm(dim=1), (X,), (0,)),
]


@pytest.mark.parametrize("name, fn, arrays, in_dims", RULES, ids=[r[0] for r in RULES])
def test_each_batching_rule_equals_torch_and_a_loop_without_the_fallback(name, fn, arrays,
                                                                         in_dims, fallbacks):
    ours, theirs = run_both(fn, arrays, in_dims=in_dims)
    assert fallbacks == []
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[0], loop(fn, arrays, in_dims), rtol=1e-12, atol=1e-12)


WITHOUT_RULES = [  # ops that run once per slice: the same numbers
    ("max over a dim", lambda lib, a: a.max(1)[0] + a.argmax(1)),
    ("argmax", lambda lib, a: a.argmax(0)),
    ("advanced index", lambda lib, a: a[[0, 2, 2]]),
    ("cumsum of a scalar's sum", lambda lib, a: a.sum(0)[0]),
]


@pytest.mark.parametrize("name, fn", WITHOUT_RULES, ids=[w[0] for w in WITHOUT_RULES])
def test_ops_without_a_rule_run_per_slice_with_the_same_numbers(name, fn):
    ours, theirs = run_both(fn, (X,))
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[0], loop(fn, (X,), (0,)), rtol=1e-12)


def test_in_dims_out_dims_nesting_chunks_and_pytrees_as_torch():
    x = X.transpose(1, 0, 2).copy()  # the batch in dim 1
    ours, theirs = run_both(lambda lib, a: a.exp(), (x,), in_dims=1, out_dims=1)
    np.testing.assert_allclose(ours[0], theirs[0])
    ours, theirs = run_both(lambda lib, a: lib.func.vmap(lambda r: r.sum() * r)(a)
                            if lib is mg else tfunc.vmap(lambda r: r.sum() * r)(a), (X,))
    np.testing.assert_allclose(ours[0], theirs[0])
    whole = mg.func.vmap(lambda a: a.softmax(-1))(mg.tensor(X))
    chunked = mg.func.vmap(lambda a: a.softmax(-1), chunk_size=3)(mg.tensor(X))
    np.testing.assert_allclose(whole.numpy(), chunked.numpy())
    params = {"w": mg.tensor(W), "b": mg.tensor(B)}
    got = mg.func.vmap(lambda p, a: a @ p["w"].t() + p["b"], in_dims=({"w": None, "b": None}, 0))(
        params, mg.tensor(X))
    np.testing.assert_allclose(got.numpy(), X @ W.T + B, rtol=1e-12)
    pair = mg.func.vmap(lambda a: (a.sum(), a * 2), out_dims=(0, 1))(mg.tensor(X))
    assert pair[0].shape == (4,) and pair[1].shape == (3, 4, 5)
    unbatched = mg.func.vmap(lambda a: mg.tensor(Y))(mg.tensor(X))  # copied along the batch
    assert unbatched.shape == (4, 3, 5)


# ---- transforms composed with vmap, on the tutorial's MLP -------------------------------------


W1, B1 = RNG.standard_normal((6, 4)), RNG.standard_normal(6)
W2, B2 = RNG.standard_normal((3, 6)), RNG.standard_normal(3)
INPUTS = RNG.standard_normal((5, 4))
LABELS = RNG.integers(0, 3, 5)


def mlp(lib):
    linear = F_LINEAR[lib]

    def predict(x, w1, b1, w2, b2):
        return linear(linear(x, w1, b1).relu(), w2, b2)

    return predict


def tensors(lib):
    return [lib.tensor(a) for a in (INPUTS, W1, B1, W2, B2)]


def as_numpy(value):
    if isinstance(value, (tuple, list)):
        return tuple(as_numpy(v) for v in value)
    return value.detach().numpy()


COMPOSED = {
    "jacrev": lambda lib, F: F.jacrev(mlp(lib))(*tensors(lib)),
    "jacfwd": lambda lib, F: F.jacfwd(mlp(lib))(*tensors(lib)),
    "jacrev of the weights": lambda lib, F: F.jacrev(mlp(lib), argnums=1)(*tensors(lib)),
    "jacfwd argnums": lambda lib, F: F.jacfwd(mlp(lib), argnums=(1, 2))(*tensors(lib)),
    "batch jacobian, vmap(jacrev)": lambda lib, F: F.vmap(
        F.jacrev(mlp(lib)), in_dims=(0, None, None, None, None))(*tensors(lib)),
    "batch jacobian, vmap(jacfwd)": lambda lib, F: F.vmap(
        F.jacfwd(mlp(lib)), in_dims=(0, None, None, None, None))(*tensors(lib)),
    "per-sample gradients": lambda lib, F: F.vmap(
        F.grad(lambda w1, b1, w2, b2, x, t: F_CE[lib](mlp(lib)(x.unsqueeze(0), w1, b1, w2, b2),
                                                      t.unsqueeze(0)), argnums=(0, 1, 2, 3)),
        in_dims=(None,) * 4 + (0, 0))(*tensors(lib)[1:], tensors(lib)[0], lib.tensor(LABELS)),
    "hessian": lambda lib, F: F.hessian(
        lambda x: (mlp(lib)(x, *tensors(lib)[1:]) ** 2).sum())(tensors(lib)[0][0]),
    "jacrev of jacrev": lambda lib, F: F.jacrev(F.jacrev(
        lambda x: (mlp(lib)(x, *tensors(lib)[1:]) ** 2).sum()))(tensors(lib)[0][0]),
    "vmap(hessian)": lambda lib, F: F.vmap(F.hessian(
        lambda x: (mlp(lib)(x, *tensors(lib)[1:]) ** 2).sum()))(tensors(lib)[0]),
    "vmap(grad(grad))": lambda lib, F: F.vmap(F.grad(F.grad(lambda x: x.sin() * x)))(
        tensors(lib)[0][:, 0]),
    "vmap of jvp": lambda lib, F: F.vmap(lambda x, v: F.jvp(
        lambda y: mlp(lib)(y, *tensors(lib)[1:]), (x,), (v,))[1])(tensors(lib)[0],
                                                                  tensors(lib)[0] * 2),
}


@pytest.mark.parametrize("name", COMPOSED)
def test_transforms_through_vmap_equal_torch_func_without_the_fallback(name, fallbacks):
    ours = as_numpy(COMPOSED[name](mg, mg.func))
    assert fallbacks == []
    theirs = as_numpy(COMPOSED[name](torch, tfunc))
    ours, theirs = (ours if isinstance(ours, tuple) else (ours,),
                    theirs if isinstance(theirs, tuple) else (theirs,))
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_vmap_of_a_vjp_function_gives_the_jacobian_as_the_torch_func_tutorial_computes_it(
        fallbacks):
    """The tutorial's `ft_jacobian, = vmap(vjp_fn)(unit_vectors)`: one forward, one batched
    backward through a graph that is not batched."""
    results = []
    for lib, F in ((mg, mg.func), (torch, tfunc)):
        x, *params = tensors(lib)
        _, vjp_fn = F.vjp(lambda a, params=params, lib=lib: mlp(lib)(a, *params), x)
        unit_vectors = lib.eye(15, dtype=x.dtype).reshape(15, 5, 3)
        (jacobian,) = F.vmap(vjp_fn)(unit_vectors)
        results.append(jacobian.detach().numpy())
        if lib is mg:
            assert fallbacks == []
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10, atol=1e-12)


def test_dropout_and_random_factories_follow_the_randomness_flag():
    x = mg.ones(8, 100)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        mg.func.vmap(lambda a: mg.nn.functional.dropout(a, 0.5))(x)
    different = mg.func.vmap(lambda a: mg.nn.functional.dropout(a, 0.5),
                             randomness="different")(x)
    same = mg.func.vmap(lambda a: mg.nn.functional.dropout(a, 0.5), randomness="same")(x)
    assert set(np.unique(different.numpy())) <= {0.0, 2.0}
    assert not (different.numpy() == different.numpy()[0]).all()
    assert (same.numpy() == same.numpy()[0]).all()
    with pytest.raises(RuntimeError, match="randomness error mode"):
        mg.func.vmap(lambda a: a + mg.rand(100))(x)
    noise = mg.func.vmap(lambda a: a + mg.randn(100), randomness="different")(x)
    assert noise.shape == (8, 100) and not (noise.numpy() == noise.numpy()[0]).all()
    noise = mg.func.vmap(lambda a: a + mg.randn_like(a), randomness="same")(x)
    assert (noise.numpy() == noise.numpy()[0]).all()
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        mg.func.vmap(lambda a: a, randomness="sometimes")


def test_errors_name_what_is_wrong():
    x = mg.tensor(X)
    with pytest.raises(ValueError, match=r"same size in the mapped dimension, got sizes \[4, 3\]"):
        mg.func.vmap(lambda a, b: a + b)(x, mg.tensor(Y))
    with pytest.raises(ValueError, match="at least one Tensor"):
        mg.func.vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="expected in_dim to satisfy -3 <= in_dim < 3"):
        mg.func.vmap(lambda a: a, in_dims=3)(x)
    with pytest.raises(ValueError, match="cannot vmap over non-Tensor arguments"):
        mg.func.vmap(lambda a, n: a * n, in_dims=(0, 0))(x, 2)
    with pytest.raises(ValueError, match="in_dims is not compatible"):
        mg.func.vmap(lambda a: a, in_dims=(0, 0))(x)
    with pytest.raises(ValueError, match="can not return a BatchedTensor when out_dim is None"):
        mg.func.vmap(lambda a: a, out_dims=None)(x)
    with pytest.raises(RuntimeError, match="reads the values of a batched tensor"):
        mg.func.vmap(lambda a: a * a.sum().item())(x)
    with pytest.raises(RuntimeError, match="reads the values of a batched tensor"):
        mg.func.vmap(lambda a: a if a.sum() > 0 else -a)(x)
    with pytest.raises((IndexError, RuntimeError, ValueError), match="5"):  # a bad label
        mg.func.vmap(lambda a, t: mg.nn.functional.cross_entropy(a, t))(
            x, mg.tensor(np.full((4, 3), 5)))
    with pytest.raises(RuntimeError, match="in place"):
        mg.func.vmap(lambda a: a.clone().fill_(1.0))(x)
    w = mg.tensor(W, requires_grad=True)
    with pytest.raises(RuntimeError, match="would add up every slice's"):
        mg.func.vmap(lambda a: mg.autograd.grad((a @ w.t()).sum(), w))(x)
    with pytest.raises(RuntimeError, match="backward"):
        mg.func.vmap(lambda a: (a @ w.t()).sum().backward())(x)


def test_the_engine_runs_unchanged_outside_vmap():
    """No batched tensor outside vmap: the switch is off again after a vmap and after an error."""
    with pytest.raises(RuntimeError):
        mg.func.vmap(lambda a: a.sum().item())(mg.tensor(X))
    assert mg.grad_mode.grad_mode.vmap_level == 0
    y = mg.tensor(Y, requires_grad=True)
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * Y)
