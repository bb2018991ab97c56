"""Convolutional layers against PyTorch in float64: values, first and second derivatives of every
input (the same random weights on the outputs and on the first gradients), gradcheck, forward
mode, PyTorch's errors for bad shapes, and the modules' settings, buffers and init."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minigrad as mg
from tests.test_backend_seam import FakeGpuArray, fake_gpu  # noqa: F401  (the fixture)

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def arrays(*shapes):
    return [RNG.standard_normal(s) for s in shapes]


def derivatives(lib, fn, values):
    """fn's output, the gradients of sum(out * u) and the gradients of sum(grads * v)."""
    inputs = [lib.tensor(v, requires_grad=True) for v in values]
    out = fn(lib, *inputs)
    u = lib.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape)))
    grads = lib.autograd.grad((out * u).sum(), inputs, create_graph=True, allow_unused=True)
    used = [(g, x) for g, x in zip(grads, inputs, strict=True) if g is not None]
    vs = [lib.tensor(np.random.default_rng(2 + k).standard_normal(tuple(g.shape)))
          for k, (g, _) in enumerate(used)]
    total = sum((g * v).sum() for (g, _), v in zip(used, vs, strict=True))
    second = lib.autograd.grad(total, inputs, allow_unused=True) if total.requires_grad else \
        [None] * len(inputs)  # (a gradient that does not depend on the inputs: zero)
    return ([out.detach().numpy()] + [g.detach().numpy() for g, _ in used]
            + [np.zeros(x.shape) if s is None else s.detach().numpy()
               for s, x in zip(second, inputs, strict=True)])


def F(lib):
    return mg.nn.functional if lib is mg else torch.nn.functional


CASES = {  # name: (fn(lib, *tensors), input shapes)
    "conv2d": (lambda lib, x, w, b: F(lib).conv2d(x, w, b), ((2, 3, 6, 5), (4, 3, 3, 2), (4,))),
    "conv2d stride padding": (lambda lib, x, w, b: F(lib).conv2d(x, w, b, stride=2, padding=1),
                              ((2, 3, 7, 6), (4, 3, 3, 3), (4,))),
    "conv2d same, even kernel": (lambda lib, x, w: F(lib).conv2d(x, w, padding="same"),
                                 ((1, 2, 5, 6), (3, 2, 2, 4))),
    "conv2d valid, dilation": (lambda lib, x, w: F(lib).conv2d(x, w, padding="valid",
                                                               dilation=(2, 1)),
                               ((2, 2, 7, 5), (3, 2, 2, 3))),
    "conv2d groups": (lambda lib, x, w, b: F(lib).conv2d(x, w, b, groups=2, stride=(1, 2)),
                      ((2, 4, 5, 6), (6, 2, 3, 3), (6,))),
    "conv2d unbatched": (lambda lib, x, w: F(lib).conv2d(x, w, padding=(0, 1)),
                         ((3, 5, 5), (2, 3, 3, 3))),
    "conv1d": (lambda lib, x, w, b: F(lib).conv1d(x, w, b, stride=2, padding=2, dilation=2),
               ((2, 3, 11), (4, 3, 3), (4,))),
    "conv1d same, groups": (lambda lib, x, w: F(lib).conv1d(x, w, padding="same", groups=3),
                            ((2, 3, 8), (6, 1, 4))),
    "unfold": (lambda lib, x: F(lib).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
               ((2, 3, 5, 6),)),
    "fold": (lambda lib, c: F(lib).fold(c, (5, 6), (2, 3), padding=1, stride=(2, 1)),
             ((2, 18, 18),)),
    "pad": (lambda lib, x: F(lib).pad(x, (1, 2, 0, 1), value=0.5) ** 2, ((2, 3, 4),)),
    "max_pool2d": (lambda lib, x: F(lib).max_pool2d(x, 2), ((2, 3, 6, 6),)),
    "max_pool2d stride padding dilation": (
        lambda lib, x: F(lib).max_pool2d(x, 3, stride=2, padding=1, dilation=(1, 2)),
        ((2, 2, 7, 9),)),
    "max_pool2d ceil_mode": (lambda lib, x: F(lib).max_pool2d(x, 2, ceil_mode=True),
                             ((1, 2, 5, 7),)),
    "avg_pool2d": (lambda lib, x: F(lib).avg_pool2d(x, 2), ((2, 3, 6, 6),)),
    "avg_pool2d padding, no pad count": (
        lambda lib, x: F(lib).avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
        ((2, 2, 7, 6),)),
    "avg_pool2d padding counted, ceil_mode": (
        lambda lib, x: F(lib).avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        ((1, 2, 6, 6),)),
    "avg_pool2d divisor_override": (lambda lib, x: F(lib).avg_pool2d(x, 2, divisor_override=3),
                                    ((1, 2, 4, 4),)),
    "adaptive_avg_pool2d": (lambda lib, x: F(lib).adaptive_avg_pool2d(x, (3, 2)),
                            ((2, 3, 7, 5),)),
    "adaptive_avg_pool2d to 1": (lambda lib, x: F(lib).adaptive_avg_pool2d(x, 1),
                                 ((2, 3, 4, 4),)),
    "batch_norm training": (
        lambda lib, x, w, b: F(lib).batch_norm(x, None, None, w, b, training=True),
        ((4, 3, 2, 2), (3,), (3,))),
    "batch_norm eval": (
        lambda lib, x, w, b: F(lib).batch_norm(x, lib.tensor([0.1, -0.2, 0.3], dtype=lib.float64),
                                               lib.tensor([1.5, 0.5, 2.0], dtype=lib.float64),
                                               w, b, training=False),
        ((4, 3, 5), (3,), (3,))),
}


@pytest.mark.parametrize("name", CASES)
def test_first_and_second_derivatives_equal_torch(name):
    fn, shapes = CASES[name]
    values = arrays(*shapes)
    ours, theirs = derivatives(mg, fn, values), derivatives(torch, fn, values)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["conv2d stride padding", "conv2d groups", "conv1d",
                                  "max_pool2d stride padding dilation",
                                  "avg_pool2d padding, no pad count", "batch_norm training"])
def test_gradcheck_and_forward_mode(name):
    fn, shapes = CASES[name]
    inputs = tuple(mg.tensor(v, requires_grad=True) for v in arrays(*shapes))
    assert mg.autograd.gradcheck(lambda *t: fn(mg, *t), inputs, check_forward_ad=True)
    assert mg.autograd.gradgradcheck(lambda *t: fn(mg, *t), inputs)


def test_max_pool_indices_and_ties_as_torch():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 3] = 2.0  # windows with ties (the zeros) and single maxima
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}):
        ours = mg.nn.functional.max_pool2d(mg.tensor(x, requires_grad=True), return_indices=True,
                                           **kwargs)
        theirs = torch.nn.functional.max_pool2d(torch.tensor(x, requires_grad=True),
                                                return_indices=True, **kwargs)
        np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
        np.testing.assert_array_equal(ours[0].detach().numpy(), theirs[0].detach().numpy())


def test_a_nan_gradient_stays_at_the_max_tap_as_in_torch():
    """Max pooling's backward places the gradient at each window's max (a select): a NaN
    coming back does not spread over the window (found by the fuzzer, seed 44)."""
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    weights = np.ones((1, 2, 2, 2))
    weights[0, 0, 0, 1] = weights[0, 1, 1, 0] = np.nan
    found = []
    for lib in (torch, mg):
        xs = lib.tensor(x, requires_grad=True)
        pooled = lib.nn.functional.max_pool2d(xs, 2)
        (g,) = lib.autograd.grad((pooled * pooled * lib.tensor(weights)).sum(), [xs],
                                 create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), [xs])
        found.append((g.detach().numpy(), gg.numpy()))
    assert np.isnan(found[0][0]).sum() == 2  # torch: only at the two windows' max taps
    np.testing.assert_array_equal(found[1][0], found[0][0])  # NaN in the same places
    np.testing.assert_array_equal(found[1][1], found[0][1])


def test_modules_match_torch_with_the_same_weights():
    layers = [("Conv2d", (3, 4, 3), {"stride": 2, "padding": 1}),
              ("Conv2d", (4, 4, 2), {"groups": 2, "bias": False, "padding": "same"}),
              ("Conv1d", (3, 2, 3), {"dilation": 2}),
              ("MaxPool2d", (2,), {}), ("AvgPool2d", (3,), {"stride": 1, "padding": 1}),
              ("AdaptiveAvgPool2d", ((2, 3),), {}), ("BatchNorm2d", (3,), {"momentum": None}),
              ("BatchNorm1d", (3,), {"affine": False})]
    for name, args, kwargs in layers:
        ours, theirs = getattr(mg.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args,
                                                                                       **kwargs)
        assert repr(ours) == repr(theirs)
        ours.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in
                              theirs.state_dict().items()})
        shape = (2, 3, 9) if name.endswith("1d") else (2, args[0] if name[0] == "C" else 3, 6, 6)
        x = RNG.standard_normal(shape).astype(np.float32)
        for _ in range(2):  # twice: BatchNorm's running statistics move
            a, b = ours(mg.tensor(x)), theirs(torch.tensor(x))
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5,
                                       atol=1e-5)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-5,
                                       atol=1e-6)
        ours.eval(), theirs.eval()
        np.testing.assert_allclose(ours(mg.tensor(x)).detach().numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_default_init_has_torchs_bounds():
    layer = mg.nn.Conv2d(8, 16, (3, 5))
    bound = 1 / np.sqrt(8 * 15)
    assert layer.weight.shape == (16, 8, 3, 5) and layer.bias.shape == (16,)
    weights = np.abs(layer.weight.detach().numpy())
    assert bound * 0.9 < weights.max() <= bound


def test_dropout2d_zeros_whole_channels():
    mg.manual_seed(0)
    x = mg.ones(4, 8, 5, 5)
    y = mg.nn.functional.dropout2d(x, 0.5).numpy()
    per_channel = y.reshape(4, 8, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()  # a channel is all kept or all not
    assert mg.nn.functional.dropout2d(x, 0.5, training=False) is x


ERRORS = {
    "2-D input": (lambda lib: F(lib).conv2d(lib.zeros(2, 3), lib.zeros(8, 3, 3, 3)),
                  "Expected 3D (unbatched) or 4D (batched) input to conv2d"),
    "channels": (lambda lib: F(lib).conv2d(lib.zeros(2, 4, 5, 5), lib.zeros(8, 3, 3, 3)),
                 "expected input[2, 4, 5, 5] to have 3 channels, but got 4 channels instead"),
    "groups": (lambda lib: F(lib).conv2d(lib.zeros(2, 4, 5, 5), lib.zeros(3, 2, 3, 3), groups=2),
               "expected weight to be divisible by 2 at dimension 0"),
    "kernel larger than the input": (
        lambda lib: F(lib).conv2d(lib.zeros(1, 3, 2, 2), lib.zeros(8, 3, 3, 3)),
        "Calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3)"),
    "same and strided": (lambda lib: F(lib).conv2d(lib.zeros(1, 3, 5, 5), lib.zeros(8, 3, 3, 3),
                                                   stride=2, padding="same"),
                         "padding='same' is not supported for strided convolutions"),
    "padding string": (lambda lib: F(lib).conv2d(lib.zeros(1, 3, 5, 5), lib.zeros(8, 3, 3, 3),
                                                 padding="foo"), "Invalid padding string"),
    "bias": (lambda lib: F(lib).conv2d(lib.zeros(1, 3, 5, 5), lib.zeros(8, 3, 3, 3),
                                       lib.zeros(7)), "expected bias to be 1-dimensional with 8"),
    "negative padding": (lambda lib: F(lib).conv2d(lib.zeros(1, 3, 5, 5), lib.zeros(8, 3, 3, 3),
                                                   padding=-1), "negative padding"),
    "zero stride": (lambda lib: F(lib).conv2d(lib.zeros(1, 3, 5, 5), lib.zeros(8, 3, 3, 3),
                                              stride=0), "non-positive stride"),
    "conv1d of 4-D": (lambda lib: F(lib).conv1d(lib.zeros(1, 3, 5, 5), lib.zeros(8, 3, 3)),
                      "Expected 2D (unbatched) or 3D (batched) input to conv1d"),
    "fold channels": (lambda lib: F(lib).fold(lib.zeros(1, 5, 9), (4, 4), 2),
                      "divisible by the product of kernel_size"),
    "fold blocks": (lambda lib: F(lib).fold(lib.zeros(1, 4, 8), (4, 4), 2),
                    "calculated number of sliding blocks 3 * 3 = 9, but got input.size(2)=8"),
    "pool padding": (lambda lib: F(lib).max_pool2d(lib.zeros(1, 1, 5, 5), 3, padding=2),
                     "pad should be at most half of effective kernel size"),
    "pool too small": (lambda lib: F(lib).max_pool2d(lib.zeros(1, 1, 2, 2), 3),
                       "Output size is too small"),
    "pool 2-D": (lambda lib: F(lib).max_pool2d(lib.zeros(5, 5), 2),
                 "non-empty 3D or 4D (batch mode) tensor expected for input"),
    "batch norm sizes": (lambda lib: F(lib).batch_norm(lib.zeros(2, 3, 4, 4), lib.zeros(4),
                                                       lib.ones(4)),
                         "running_mean should contain 3 elements not 4"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_shapes_raise_torchs_errors(name):
    fn, message = ERRORS[name]
    for lib in (torch, mg):
        with pytest.raises(RuntimeError, match=re.escape(message)):
            fn(lib)


def test_batch_norm_refuses_one_value_per_channel_in_training():
    for lib in (torch, mg):
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            F(lib).batch_norm(lib.zeros(1, 3, 1, 1), lib.zeros(3), lib.ones(3), training=True)


def _small_cnn():
    nn = mg.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, groups=2),
                         nn.AvgPool2d(2, ceil_mode=True), nn.Dropout2d(0.0), nn.Flatten(),
                         nn.Linear(6, 3))


def test_a_cnn_trains_on_a_gpu_array_module_as_on_the_cpu_and_never_waits(fake_gpu):  # noqa: F811
    """Unfold, the GEMMs, fold, pooling and batch norm run on the device's arrays (the fake
    CuPy of tests/test_backend_seam.py), read nothing back on the host, and give the CPU's
    numbers."""
    images = np.random.default_rng(0).standard_normal((6, 1, 9, 9)).astype(np.float32)
    labels = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0], dtype=np.float32)
    start = _small_cnn().state_dict()
    results = {}
    for device in ("cpu", "cuda"):
        model = _small_cnn().to(device)
        model.load_state_dict(start)
        optimizer = mg.optim.Adadelta(model.parameters(), lr=1.0)
        x, y = mg.tensor(images, device=device), mg.tensor(labels, device=device)
        FakeGpuArray.host_reads = 0
        for _ in range(2):
            out = model(x)  # (a loss that checks no labels: those checks read the host)
            loss = ((out - y.reshape(-1, 1)) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if device == "cuda":
            assert type(model[0].weight.array) is FakeGpuArray
            assert FakeGpuArray.host_reads == 0, "a training step read a value on the host"
        results[device] = [t.detach().numpy() for t in model.state_dict().values()]
    for ours, expected in zip(results["cuda"], results["cpu"], strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_a_batch_too_large_for_the_columns_limit_is_convolved_in_chunks(monkeypatch):
    """With the unfolded columns limited to about one image's, every order of derivative is the
    same as in one piece (and as torch's)."""
    fn, shapes = CASES["conv2d groups"]
    values = arrays(*shapes)
    whole = derivatives(mg, fn, values)
    from minigrad.ops import conv
    monkeypatch.setattr(conv, "COLUMNS_LIMIT_BYTES", 1)  # one image per chunk
    chunked = derivatives(mg, fn, values)
    assert len(conv._chunks(2, 100, 8)) == 2
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(chunked[0], derivatives(torch, fn, values)[0], rtol=1e-10)
