"""Inputs a new user passes to the core (issue 13, items 14 and 16): NumPy integers, matrices,
masked arrays, lists of tensors, lists where a Tensor belongs, empty reductions."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg


def test_numpy_integers_work_where_ints_are_expected_as_in_torch():
    assert mg.zeros(np.int64(3)).shape == (3,)
    mg.manual_seed(np.int64(1))
    layer = mg.nn.Linear(np.prod((28, 28)), 10)
    assert layer.in_features == 784 and type(layer.in_features) is int
    with pytest.raises(TypeError, match="seed must be an int"):
        mg.manual_seed(1.5)


def test_a_matrix_becomes_a_plain_array_and_a_masked_array_is_refused():
    t = mg.tensor(np.matrix([[1.0, 2.0]]))
    assert type(t.array) is np.ndarray and t.reshape(-1).shape == (2,)
    with pytest.raises(TypeError, match="masked array"):
        mg.tensor(np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0]))


def test_a_list_of_tensors_makes_a_tensor():
    assert mg.tensor([mg.tensor(1.0), mg.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert mg.tensor([[mg.tensor(1.0)], [mg.tensor(3.0)]]).shape == (2, 1)


def test_a_list_where_a_tensor_belongs_gets_a_clear_error():
    with pytest.raises(TypeError, match="linear: input must be a Tensor, got list"):
        mg.nn.Linear(2, 1)([1.0, 2.0])
    with pytest.raises(TypeError, match="matmul: expected two Tensors"):
        mg.ones(2, 2) @ [[1.0], [2.0]]


def test_max_and_argmax_over_an_empty_dim_raise_like_torch():
    with pytest.raises(IndexError, match="non-zero size"):
        mg.zeros(3, 0).max(1)
    with pytest.raises(IndexError, match="non-zero size"):
        mg.zeros(0, 2).argmax(0)
    with pytest.raises(RuntimeError, match="numel"):
        mg.zeros(0).argmax()
