"""What PyTorch's "Forward-mode Automatic Differentiation" and torch.func "Jacobians, Hessians,
hvp, vhp" tutorials do, written here as small programs of our own that run with `lib` being
minigrad or torch, on the same data, with the same results: dual tensors (the tangent kept as
given, a transposed one copied, plain tensors' zero tangent, tangents gone after the level),
dual parameters set on a module and through functional_call, a custom Function with jvp,
jvp of a dict of parameters, Jacobians by rows, by vmap of a vjp and by jacrev/jacfwd, Hessians
three ways, batch Jacobians two ways, and Hessian-vector products two ways."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def on_both(program):
    """program(lib) on minigrad and on torch, each result as NumPy arrays."""
    def as_numpy(value):
        if isinstance(value, (tuple, list)):
            return tuple(as_numpy(v) for v in value)
        if isinstance(value, dict):
            return tuple(as_numpy(value[k]) for k in sorted(value))
        return value.detach().numpy()

    return as_numpy(program(mg)), as_numpy(program(torch))


def assert_same(ours, theirs, rtol=1e-6, atol=1e-6):
    if isinstance(ours, tuple):
        for a, b in zip(ours, theirs, strict=True):
            assert_same(a, b, rtol, atol)
        return
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


# ---- forward mode --------------------------------------------------------------------------


def test_dual_tensors_keep_the_tangent_given_and_drop_it_after_the_level():
    for lib in (mg, torch):
        fw = lib.autograd.forward_ad
        primal, tangent = lib.tensor(RNG.standard_normal((4, 4))), lib.tensor(
            RNG.standard_normal((4, 4)))
        with fw.dual_level():
            dual = fw.make_dual(primal, tangent)
            assert fw.unpack_dual(dual).tangent is tangent
            other = fw.make_dual(primal, tangent.T)
            assert fw.unpack_dual(other).tangent is not tangent
            out = dual * dual + lib.ones(4, 4) * 3  # a plain tensor's tangent is zero
            np.testing.assert_allclose(fw.unpack_dual(out).tangent.numpy(),
                                       (2 * primal * tangent).numpy(), rtol=1e-12)
        assert fw.unpack_dual(out).tangent is None


def test_dual_parameters_on_a_module_and_through_functional_call_agree_with_torch():
    weight, bias, inputs = (RNG.standard_normal((3, 5)), RNG.standard_normal(3),
                            RNG.standard_normal((7, 5)))
    directions = {"weight": RNG.standard_normal((3, 5)), "bias": RNG.standard_normal(3)}

    def program(lib):
        fw = lib.autograd.forward_ad
        model = lib.nn.Linear(5, 3).double()
        params = {"weight": lib.tensor(weight), "bias": lib.tensor(bias)}
        with fw.dual_level():
            for name, p in params.items():
                delattr(model, name)  # a plain attribute now, not a Parameter
                setattr(model, name, fw.make_dual(p, lib.tensor(directions[name])))
            on_module = fw.unpack_dual(model(lib.tensor(inputs))).tangent
        fresh = lib.nn.Linear(5, 3).double()
        with fw.dual_level():
            duals = {n: fw.make_dual(p, lib.tensor(directions[n])) for n, p in params.items()}
            called = fw.unpack_dual(lib.func.functional_call(fresh, duals,
                                                             lib.tensor(inputs))).tangent
        by_jvp = lib.func.jvp(lambda ps: lib.func.functional_call(fresh, ps, lib.tensor(inputs)),
                              (params,), ({n: lib.tensor(d) for n, d in directions.items()},))
        return on_module, called, by_jvp[1]

    ours, theirs = on_both(program)
    assert_same(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours[0], ours[1], rtol=1e-12)


def test_a_custom_function_with_jvp_that_keeps_its_result_on_ctx():
    values = RNG.standard_normal((3, 3))

    def program(lib):
        class Exp(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                result = x.exp()
                ctx.result = result  # kept on ctx for jvp, freed there
                return result

            @staticmethod
            def jvp(ctx, grad_input):
                out = grad_input * ctx.result
                del ctx.result
                return out

        fw = lib.autograd.forward_ad
        primal = lib.tensor(values, requires_grad=True)
        with fw.dual_level():
            out = Exp.apply(fw.make_dual(primal, lib.ones(3, 3, dtype=lib.float64)))
            tangent = fw.unpack_dual(out).tangent
        assert lib.autograd.gradcheck(Exp.apply, (primal,), check_forward_ad=True,
                                      check_backward_ad=False, check_undefined_grad=False,
                                      check_batched_grad=False)
        return tangent

    ours, theirs = on_both(program)
    assert_same(ours, theirs, rtol=1e-12)


def test_jvp_of_several_primals_and_of_a_partial():
    a, b, u, v = (RNG.standard_normal((4, 4)) for _ in range(4))

    def program(lib):
        def f(x, y):
            return x ** 2 + y ** 2

        both = lib.func.jvp(f, (lib.tensor(a), lib.tensor(b)), (lib.tensor(u), lib.tensor(v)))
        one = lib.func.jvp(functools.partial(f, y=lib.tensor(b)), (lib.tensor(a),),
                           (lib.tensor(u),))
        return both + one

    assert_same(*on_both(program), rtol=1e-12)


# ---- Jacobians and Hessians ----------------------------------------------------------------


def predict(lib):
    def f(weight, bias, x):
        linear = mg.nn.functional.linear if lib is mg else torch.nn.functional.linear
        return linear(x, weight, bias).tanh()

    return f


def data(d_in, d_out, batch=None):
    shape = (d_in,) if batch is None else (batch, d_in)
    return (RNG.standard_normal((d_out, d_in)).astype(np.float32),
            RNG.standard_normal(d_out).astype(np.float32),
            RNG.standard_normal(shape).astype(np.float32))


def test_the_jacobian_by_rows_by_vmap_of_a_vjp_and_by_jacrev_are_one_matrix():
    weight, bias, x = data(8, 8)

    def program(lib):
        f = predict(lib)
        w, b = lib.tensor(weight), lib.tensor(bias)
        xp = lib.tensor(x).requires_grad_()
        units = lib.eye(8)
        rows = lib.stack([lib.autograd.grad(f(w, b, xp), xp, v)[0] for v in units])
        _, vjp_fn = lib.func.vjp(functools.partial(f, w, b), lib.tensor(x))
        (by_vmap,) = lib.func.vmap(vjp_fn)(units)
        by_jacrev = lib.func.jacrev(f, argnums=2)(w, b, lib.tensor(x))
        of_parameters = lib.func.jacrev(f, argnums=(0, 1))(w, b, lib.tensor(x))
        return (rows, by_vmap, by_jacrev) + tuple(of_parameters)

    ours, theirs = on_both(program)
    assert_same(ours, theirs)
    for other in ours[1:3]:
        np.testing.assert_allclose(other, ours[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("d_in, d_out", [(4, 64), (64, 4)], ids=["tall", "wide"])
def test_jacfwd_and_jacrev_agree_on_tall_and_wide_jacobians(d_in, d_out):
    weight, bias, x = data(d_in, d_out)

    def program(lib):
        args = (lib.tensor(weight), lib.tensor(bias), lib.tensor(x))
        return (lib.func.jacfwd(predict(lib), argnums=2)(*args),
                lib.func.jacrev(predict(lib), argnums=2)(*args))

    ours, theirs = on_both(program)
    assert_same(ours, theirs)
    np.testing.assert_allclose(ours[0], ours[1], rtol=1e-5, atol=1e-6)


def test_the_hessian_three_ways_and_batched():
    weight, bias, x = data(6, 3)
    _, _, batch = data(6, 3, batch=5)

    def program(lib):
        f, F = predict(lib), lib.func
        args = (lib.tensor(weight), lib.tensor(bias), lib.tensor(x))
        return (F.hessian(f, argnums=2)(*args),
                F.jacfwd(F.jacfwd(f, argnums=2), argnums=2)(*args),
                F.jacrev(F.jacrev(f, argnums=2), argnums=2)(*args),
                F.vmap(F.hessian(f, argnums=2), in_dims=(None, None, 0))(
                    args[0], args[1], lib.tensor(batch)))

    ours, theirs = on_both(program)
    assert_same(ours, theirs, rtol=1e-5, atol=1e-5)
    for other in ours[1:3]:
        np.testing.assert_allclose(other, ours[0], rtol=1e-5, atol=1e-5)


def test_a_batch_jacobian_by_vmap_and_by_the_sum_trick():
    weight, bias, x = data(5, 7, batch=9)

    def program(lib):
        f, F = predict(lib), lib.func
        args = (lib.tensor(weight), lib.tensor(bias), lib.tensor(x))
        by_vmap = F.vmap(F.jacrev(f, argnums=2), in_dims=(None, None, 0))(*args)
        summed = F.jacrev(lambda w, b, xs: f(w, b, xs).sum(0), argnums=2)(*args).movedim(1, 0)
        return by_vmap, summed

    ours, theirs = on_both(program)
    assert_same(ours, theirs)
    np.testing.assert_allclose(ours[0], ours[1], rtol=1e-5, atol=1e-6)


def test_hessian_vector_products_forward_over_reverse_and_reverse_over_reverse():
    x, v = RNG.standard_normal(50), RNG.standard_normal(50)

    def program(lib):
        F = lib.func

        def f(t):
            return t.sin().sum()

        forward_over_reverse = F.jvp(F.grad(f), (lib.tensor(x),), (lib.tensor(v),))[1]
        _, vjp_fn = F.vjp(F.grad(f), lib.tensor(x))
        return forward_over_reverse, vjp_fn(lib.tensor(v))[0]

    ours, theirs = on_both(program)
    assert_same(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours[0], -np.sin(x) * v, rtol=1e-12)
