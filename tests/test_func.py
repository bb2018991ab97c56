"""mg.func (torch.func's transforms) against torch.func, on plain functions and on the tutorial's
MLP: per-sample gradients (vmap of grad through functional_call), Jacobians by reverse and
forward mode, Hessians, vjp, jvp, argnums, has_aux, composition, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")


def both(fn):
    """fn(lib, func) for minigrad and torch, as NumPy arrays (nested tuples kept)."""
    def as_numpy(value):
        if isinstance(value, tuple):
            return tuple(as_numpy(v) for v in value)
        return value.detach().numpy()

    return as_numpy(fn(mg, mg.func)), as_numpy(fn(torch, torch.func))


def assert_same(ours, theirs, rtol=1e-10):
    if isinstance(ours, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            assert_same(a, b, rtol)
        return
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-12)


X = np.random.default_rng(0).standard_normal((3, 4))
V = np.random.default_rng(1).standard_normal((3, 4))


def f(lib, x):
    return (x.sin() * x).sum()


@pytest.mark.parametrize("case", [
    lambda lib, F: F.grad(lambda x: f(lib, x))(lib.tensor(X)),
    lambda lib, F: F.grad_and_value(lambda x: f(lib, x))(lib.tensor(X)),
    lambda lib, F: F.grad(lambda x, y: (x * y.exp()).sum(), argnums=(0, 1))(lib.tensor(X),
                                                                            lib.tensor(V)),
    lambda lib, F: F.grad(lambda x: ((x * x).sum(), x.sum()), has_aux=True)(lib.tensor(X)),
    lambda lib, F: F.grad(lambda x: F.grad(lambda y: (y ** 3).sum())(x).sum())(lib.tensor(X)),
    lambda lib, F: F.vjp(lambda x: x.tanh() * 2, lib.tensor(X))[1](lib.tensor(V)),
    lambda lib, F: F.jvp(lambda x: x.tanh() * x, (lib.tensor(X),), (lib.tensor(V),)),
    lambda lib, F: F.jacrev(lambda x: x.sin() @ x.T)(lib.tensor(X)),
    lambda lib, F: F.jacfwd(lambda x: x.sin() @ x.T)(lib.tensor(X)),
    lambda lib, F: F.jacrev(lambda x, y: x * y, argnums=(0, 1))(lib.tensor(X[0]),
                                                                lib.tensor(V[0])),
    lambda lib, F: F.hessian(lambda x: (x.tanh() ** 2).sum())(lib.tensor(X[0])),
    lambda lib, F: F.vmap(lambda a, b: (a * b).sum(), in_dims=(0, None))(lib.tensor(X),
                                                                        lib.tensor(V[0])),
], ids=["grad", "grad_and_value", "argnums", "has_aux", "grad of grad", "vjp", "jvp",
        "jacrev", "jacfwd", "jacrev argnums", "hessian", "vmap"])
def test_each_transform_agrees_with_torch_func(case):
    ours, theirs = both(lambda lib, F: case(lib, F))
    assert_same(ours, theirs)


def tutorial_mlp(lib):
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                    torch.nn.Linear(128, 64), torch.nn.ReLU(),
                                    torch.nn.Linear(64, 10)).double()
    if lib is torch:
        return reference
    model = mg.nn.Sequential(mg.nn.Linear(784, 128), mg.nn.ReLU(), mg.nn.Linear(128, 64),
                             mg.nn.ReLU(), mg.nn.Linear(64, 10)).double()
    model.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in
                           reference.state_dict().items()})
    return model


def test_per_sample_gradients_of_the_tutorials_mlp_as_the_torch_func_tutorial_computes_them():
    rng = np.random.default_rng(2)
    images, labels = rng.standard_normal((5, 784)), rng.integers(0, 10, 5)

    def per_sample(lib, F):
        model = tutorial_mlp(lib)
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(params, image, label):
            logits = F.functional_call(model, params, (image.unsqueeze(0),))
            return lib.nn.functional.cross_entropy(logits, label.unsqueeze(0))

        grads = F.vmap(F.grad(loss), in_dims=(None, 0, 0))(params, lib.tensor(images),
                                                          lib.tensor(labels))
        return tuple(grads[name] for name in sorted(grads))

    ours, theirs = both(per_sample)
    assert_same(ours, theirs, rtol=1e-9)


def test_jacobians_of_the_mlp_by_reverse_and_forward_mode():
    image = np.random.default_rng(3).standard_normal(784)

    def jacobians(lib, F):
        model = tutorial_mlp(lib)
        x = lib.tensor(image)
        return F.jacrev(model)(x), F.jacfwd(model)(x)

    (ours_rev, ours_fwd), (theirs_rev, theirs_fwd) = both(jacobians)
    assert ours_rev.shape == (10, 784)
    assert_same(ours_rev, theirs_rev, rtol=1e-9)
    assert_same(ours_fwd, theirs_rev, rtol=1e-9)
    assert_same(theirs_fwd, theirs_rev, rtol=1e-9)


def test_functional_call_puts_the_parameters_back():
    model = mg.nn.Linear(3, 2)
    before = model.weight
    out = mg.func.functional_call(model, {"weight": mg.zeros(2, 3), "bias": mg.ones(2)},
                                  (mg.ones(1, 3),))
    assert out.tolist() == [[1.0, 1.0]] and model.weight is before
    with pytest.raises(RuntimeError, match="missing"):
        mg.func.functional_call(model, {"weight": mg.zeros(2, 3)}, (mg.ones(1, 3),),
                                strict=True)


def test_errors_are_torch_funcs():
    for lib in (mg, torch):
        with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar"):
            lib.func.grad(lambda x: x.sin())(lib.tensor([1.0, 2.0]))
