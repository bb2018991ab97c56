"""The kernels that cut launches (minigrad/fused/kernels.py, gemm.py) against NumPy, at odd sizes.

Each test runs on the CPU emulator (tests/cuda_emulator.py, with the fake CuPy) and, with
`pytest -m cuda`, on a GPU. Sizes: 1, 257 and 2000 rows; 1, 3 and 1000 classes or features;
0 elements; and past one lap of the grid-stride loops (on the emulator the grid is capped at
two blocks so that a few hundred elements already take several laps; on a GPU the sizes that
need it are real: more than BLOCK * MAX_BLOCKS elements). Set MINIGRAD_NO_MEMORY_POOL=1 to run
the GPU tests with CuPy's memory pool off, so that compute-sanitizer sees every allocation's
true bounds (benchmarks/gpu_check.sh does).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from minigrad.cuda import gemm, kernels
from tests.test_cuda_kernels import (  # noqa: F401 (fixtures)
    DTYPES,
    TOLERANCE,
    _host,
    _on,
    _random,
    emulated_kernels,
    fake_gpu,
    kernel_device,
)

ROWS, FEATURES = [1, 257, 2000], [1, 3, 1000]
PAST_ONE_LAP = kernels.BLOCK * kernels.MAX_BLOCKS + 1000  # elements, on a GPU
SMALL_ONLY = os.environ.get("MINIGRAD_SANITIZER") == "1"  # under compute-sanitizer: no big sizes


@pytest.fixture
def device(kernel_device, monkeypatch):  # noqa: F811 (the imported fixture)
    """kernel_device, with two blocks at most on the emulator and no memory pool if asked."""
    if kernel_device == "cuda":
        if os.environ.get("MINIGRAD_NO_MEMORY_POOL") == "1":
            import cupy

            previous = cupy.cuda.get_allocator()  # put back the very allocator that was there
            cupy.cuda.set_allocator(None)
            try:
                yield kernel_device
            finally:
                cupy.cuda.set_allocator(previous)
            return
    else:
        monkeypatch.setattr(kernels, "MAX_BLOCKS", 2)
    yield kernel_device


def _skip_big_on_emulator(device, elements):
    if (device != "cuda" or SMALL_ONLY) and elements > 300_000:
        pytest.skip("too slow on the CPU emulator or under compute-sanitizer (runs on a GPU)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS + [0])
@pytest.mark.parametrize("features", FEATURES)
def test_relu_backward_bias_grad_matches_reference(device, dtype, rows, features):
    z = np.maximum(_random((rows, features), dtype), 0)
    grad = _random((rows, features), dtype, seed=1)
    out, bias_grad = kernels.relu_backward_bias_grad(_on(grad), _on(z))
    expected = grad * ~(z <= 0)
    np.testing.assert_array_equal(_host(out), expected)
    np.testing.assert_allclose(_host(bias_grad), expected.sum(axis=0), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS + [0])
@pytest.mark.parametrize("features", FEATURES)
def test_relu_and_bias_relu_at_awkward_sizes(device, dtype, rows, features):
    x, bias = _random((rows, features), dtype), _random((features,), dtype, seed=1)
    np.testing.assert_allclose(_host(kernels.bias_relu_forward(_on(x), _on(bias))),
                               np.maximum(x + bias, 0), **TOLERANCE[dtype])
    z = np.maximum(x, 0)
    np.testing.assert_array_equal(_host(kernels.relu_backward(_on(x), _on(z))), x * ~(z <= 0))


@pytest.mark.cuda
@pytest.mark.skipif(SMALL_ONLY, reason="MINIGRAD_SANITIZER=1: small sizes only")
def test_elementwise_kernels_past_one_grid_stride_lap():
    x = _random((PAST_ONE_LAP,), np.float32)
    z = np.maximum(x, 0)
    np.testing.assert_array_equal(_host(kernels.relu_backward(_on(x), _on(z))), x * ~(z <= 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS + [0])
@pytest.mark.parametrize("classes", FEATURES)
@pytest.mark.parametrize("as_gradient", [False, True])
def test_cross_entropy_forward_at_awkward_sizes(device, dtype, rows, classes, as_gradient):
    _skip_big_on_emulator(device, rows * classes)
    logits = _random((rows, classes), dtype, low=-8.0, high=8.0)
    target = np.random.default_rng(2).integers(0, classes, rows)
    scale = 1.0 / rows if rows else float("nan")
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    losses = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(rows), target]
    loss, out = kernels.cross_entropy_forward(_on(logits), _on(target), scale,
                                              as_gradient=as_gradient)
    expected_loss = losses.sum() * scale
    np.testing.assert_allclose(_host(loss), expected_loss, **TOLERANCE[dtype])
    expected = probs
    if as_gradient:
        expected = probs.copy()
        expected[np.arange(rows), target] -= 1
        expected *= scale
    np.testing.assert_allclose(_host(out), expected, rtol=TOLERANCE[dtype]["rtol"],
                               atol=TOLERANCE[dtype]["atol"] * 10)
    again, _ = kernels.cross_entropy_forward(_on(logits), _on(target), scale)
    assert _host(again) == _host(loss) or np.isnan(_host(loss)), "not deterministic"


@pytest.mark.parametrize("rows", [1, 600])
def test_cross_entropy_forward_bad_target_is_nan_in_any_block(device, rows):
    logits, target = _random((rows, 4), np.float32), np.zeros(rows, dtype=np.int64)
    target[-1] = 4
    loss, grad = kernels.cross_entropy_forward(_on(logits), _on(target), 1.0, as_gradient=True)
    assert np.isnan(_host(loss)) and np.isnan(_host(grad)[-1]).all()
    assert not np.isnan(_host(grad)[:-1]).any()


def test_cross_entropy_forward_refuses_logits_without_classes(device):
    with pytest.raises(ValueError, match=r"\(3, 0\) must be \(rows, classes\)"):
        kernels.cross_entropy_forward(_on(np.zeros((3, 0), np.float32)), _on(np.zeros(3, int)), 1)


SGD_SETTINGS = [dict(momentum=0.0), dict(momentum=0.9, nesterov=True, weight_decay=0.01),
                dict(momentum=0.8, dampening=0.3, weight_decay=0.001)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", SGD_SETTINGS, ids=str)
def test_sgd_update_many_matches_one_launch_per_parameter(device, dtype, settings):
    shapes = [(7, 5), (1,), (0,), (257,), (3, 1000)]
    if device == "cuda" and not SMALL_ONLY:
        shapes.append((PAST_ONE_LAP,))
    starts = [_random(shape, dtype, seed=i) for i, shape in enumerate(shapes)]
    ours, theirs = [_on(a.copy()) for a in starts], [_on(a.copy()) for a in starts]
    our_states = [{} if settings["momentum"] else None for _ in shapes]
    their_states = [{} if settings["momentum"] else None for _ in shapes]
    hyper = (0.05, settings["momentum"], settings.get("dampening", 0.0),
             settings.get("weight_decay", 0.0), settings.get("nesterov", False))
    for step in range(3):
        grads = [_on(_random(shape, dtype, seed=10 * step + i)) for i, shape in enumerate(shapes)]
        kernels.sgd_update_many(ours, grads, our_states, *hyper)
        for param, grad, state in zip(theirs, grads, their_states, strict=True):
            kernels.sgd_update(param, grad, state, *hyper)
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(_host(mine), _host(reference))
    if settings["momentum"]:
        for mine, reference in zip(our_states, their_states, strict=True):
            np.testing.assert_array_equal(_host(mine["momentum_buffer"]),
                                          _host(reference["momentum_buffer"]))


def test_sgd_update_many_takes_more_tensors_than_one_launch_holds(device):
    count = kernels.MAX_SGD_TENSORS + 3  # two launches: 16 tensors, then 3
    ours = [_on(_random((i + 1,), np.float32, seed=i)) for i in range(count)]
    theirs = [_on(_host(a).copy()) for a in ours]
    grads = [_on(_random((i + 1,), np.float32, seed=100 + i)) for i in range(count)]
    kernels.sgd_update_many(ours, grads, [None] * count, 0.5, 0.0, 0.0, 0.0, False)
    for param, grad in zip(theirs, grads, strict=True):
        kernels.sgd_update(param, grad, None, 0.5, 0.0, 0.0, 0.0, False)
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(_host(mine), _host(reference))


def test_sgd_update_many_refuses_mixed_dtypes(device):
    params = [_on(np.zeros(3, np.float32)), _on(np.zeros(3, np.float64))]
    with pytest.raises(ValueError, match="one float dtype"):
        kernels.sgd_update_many(params, params, [None, None], 0.1, 0.0, 0.0, 0.0, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, features", [(1, 1), (257, 3), (2000, 784), (0, 5), (4, 0)])
def test_gather_batch_matches_fancy_indexing(device, dtype, rows, features):
    _skip_big_on_emulator(device, rows * features)
    count = max(rows, 1) + 3
    inputs = _random((count, features), dtype)
    targets = np.random.default_rng(1).integers(0, 10, count)
    order = np.random.default_rng(2).permutation(count)
    x, y = kernels.gather_batch(_on(inputs), _on(targets), _on(order), 2, 2 + rows)
    np.testing.assert_array_equal(_host(x), inputs[order[2 : 2 + rows]])
    np.testing.assert_array_equal(_host(y), targets[order[2 : 2 + rows]])


def test_gather_batch_marks_an_index_outside_the_data_set(device):
    inputs, targets = _random((4, 3), np.float32), np.arange(4)
    x, y = kernels.gather_batch(_on(inputs), _on(targets), _on(np.array([1, 7, -1, 0])), 0, 4)
    assert np.isnan(_host(x)[1:3]).all() and _host(y).tolist() == [1, -1, -1, 0]
    with pytest.raises(ValueError, match="outside order"):
        kernels.gather_batch(_on(inputs), _on(targets), _on(np.arange(4)), 2, 5)


def test_gather_batch_writes_into_arrays_it_is_given(device):
    inputs, targets = _random((6, 3), np.float32), np.arange(6) * 10
    order = _on(np.array([5, 0, 2, 4]))
    x, y = _on(np.full((2, 3), np.nan, np.float32)), _on(np.full(2, -7))
    returned = kernels.gather_batch(_on(inputs), _on(targets), order, 1, 3, out=(x, y))
    assert returned[0] is x and returned[1] is y
    np.testing.assert_array_equal(_host(x), inputs[[0, 2]])
    assert _host(y).tolist() == [0, 20]
    with pytest.raises(ValueError, match="out must be C-contiguous arrays of shapes"):
        kernels.gather_batch(_on(inputs), _on(targets), order, 0, 3, out=(x, y))


GEMM_SHAPES = [(1, 1, 1), (17, 33, 5), (20, 35, 19), (5, 0, 3), (0, 4, 3), (3, 4, 0)]
GPU_GEMM_SHAPES = [] if SMALL_ONLY else [(257, 784, 128), (2000, 64, 10), (64, 2000, 1000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", GEMM_SHAPES + [pytest.param(*s, marks=pytest.mark.cuda)
                                                   for s in GPU_GEMM_SHAPES])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (False, True),
                                                      (True, False), (True, True)])
def test_gemm_with_each_epilogue_matches_numpy(device, dtype, m, k, n, transpose_a, transpose_b):
    if device != "cuda" and m * n * k > 200_000:
        pytest.skip("GPU sizes")
    a = _random((k, m) if transpose_a else (m, k), dtype)
    b = _random((n, k) if transpose_b else (k, n), dtype, seed=1)
    bias, mask = _random((n,), dtype, seed=2), _random((m, n), dtype, seed=3)
    op_a, op_b = (a.T if transpose_a else a), (b.T if transpose_b else b)
    product = op_a @ op_b
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    cases = [
        (dict(), product),
        (dict(bias=bias, relu=True), np.maximum(product + bias, 0)),
        (dict(bias=bias), product + bias),
        (dict(mask=mask), np.where(mask > 0, product, 0)),
    ]
    for options, expected in cases:
        out = _on(np.full((m, n), np.nan, dtype))
        device_options = {key: _on(v) if isinstance(v, np.ndarray) else v
                          for key, v in options.items()}
        gemm.matmul(_on(a), _on(b), out, transpose_a, transpose_b, **device_options)
        np.testing.assert_allclose(_host(out), expected, **tolerance, err_msg=str(options))
    out, row_sum = _on(np.zeros((m, n), dtype)), _on(np.full(m, np.nan, dtype))
    gemm.matmul(_on(a), _on(b), out, transpose_a, transpose_b, row_sum=row_sum)
    np.testing.assert_allclose(_host(row_sum), op_a.sum(axis=1), **tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(5, 300, 7), (20, 35, 19), (1, 129, 1), (33, 64, 2)])
def test_gemm_split_along_k_matches_numpy_the_same_every_time(device, dtype, m, k, n,
                                                               monkeypatch):
    """Split-K: the slices' shares added in slice order, with the epilogue after: the NumPy
    result, the same bits at every launch, and every arrival counter back at zero."""
    monkeypatch.setattr(gemm, "MIN_SLICE_STEPS", 1)  # split even these small k
    _, slices, _ = gemm.plan(m, n, k)
    assert slices > 1
    a, b = _random((k, m), dtype), _random((k, n), dtype, seed=1)  # grad.T @ x, as a weight grad
    bias, mask = _random((n,), dtype, seed=2), _random((m, n), dtype, seed=3)
    scalars, counters = gemm.space_needed(m, n, k)
    space = gemm.make_space(kernels._cupy(), scalars, counters, dtype)
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    results = []
    for _ in range(2):
        out, row_sum = _on(np.full((m, n), np.nan, dtype)), _on(np.full(m, np.nan, dtype))
        gemm.matmul(_on(a), _on(b), out, transpose_a=True, bias=_on(bias), relu=True,
                    row_sum=row_sum, space=space)
        results.append(_host(out))
        np.testing.assert_allclose(results[-1], np.maximum(a.T @ b + bias, 0), **tolerance)
        np.testing.assert_allclose(_host(row_sum), a.T.sum(axis=1), **tolerance)
        assert not _host(space.arrived).any(), "a tile's counter was left set"
    np.testing.assert_array_equal(results[0], results[1])
    out = _on(np.full((m, n), np.nan, dtype))
    gemm.matmul(_on(a), _on(b), out, transpose_a=True, mask=_on(mask), space=space)
    np.testing.assert_allclose(_host(out), np.where(mask > 0, a.T @ b, 0), **tolerance)
    with pytest.raises(ValueError, match="workspace holds"):
        small = gemm.make_space(kernels._cupy(), scalars - 1, counters, dtype)
        gemm.matmul(_on(a), _on(b), out, transpose_a=True, space=small)


@pytest.mark.parametrize("m, n, k", [(64, 128, 784), (64, 64, 128), (512, 10, 64), (1, 1, 1),
                                     (128, 784, 64), (3, 5, 0), (0, 4, 100), (7, 9, 4097)])
def test_gemm_plan_covers_k_with_whole_tiles_and_no_empty_slice(m, n, k):
    tiles, slices, k_per_slice = gemm.plan(m, n, k)
    side = gemm.GEMM_TILE
    assert tiles == -(-m // side) * max(1, -(-n // side)) and slices >= 1
    if k:
        assert k_per_slice % gemm.K_STEP == 0 and (slices - 1) * k_per_slice < k
        assert slices * k_per_slice >= k
    if slices > 1:
        assert tiles * slices <= gemm.FILL_BLOCKS
        assert k_per_slice >= gemm.MIN_SLICE_STEPS * gemm.K_STEP
    assert gemm.plan(64, 128, 784).slices > 1  # the tutorial's first layer at batch 64


def test_gemm_refuses_shapes_that_do_not_fit(device):
    a, b = _on(np.zeros((3, 4), np.float32)), _on(np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(3, 4\) @ \(5, 2\)"):
        gemm.matmul(a, b, _on(np.zeros((3, 2), np.float32)))
    with pytest.raises(ValueError, match="bias of shape"):
        gemm.matmul(a, a, _on(np.zeros((3, 3), np.float32)), transpose_b=True,
                    bias=_on(np.zeros(4, np.float32)))
