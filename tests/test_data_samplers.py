"""DataLoader's sampler=, batch_sampler= and generator=, and the samplers, against torch."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad.cuda import kernels
from minigrad.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)
from tests import cuda_emulator
from tests.test_backend_seam import FakeGpuArray, fake_gpu  # noqa: F401 (a fixture)

torch = pytest.importorskip("torch")
tdata = torch.utils.data


def numbered(count: int):
    """Inputs whose row i is all i, and targets i: a batch shows which samples it holds."""
    inputs = np.repeat(np.arange(count, dtype=np.float32)[:, None], 3, axis=1)
    return inputs, np.arange(count, dtype=np.int64)


def both_datasets(count: int):
    """The same numbered rows as a minigrad TensorDataset and a torch TensorDataset."""
    x, y = numbered(count)
    return (TensorDataset(mg.tensor(x), mg.tensor(y)),
            tdata.TensorDataset(torch.tensor(x), torch.tensor(y)))


class Squares(Dataset):
    """A map-style dataset read sample by sample: (i as a vector, i * i)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(2, i, dtype="float32"), i * i


class EvensFirst(Sampler[int]):
    """A user's sampler without __len__: the even indices, then the odd ones."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter([*range(0, self.n, 2), *range(1, self.n, 2)])


def as_lists(batches) -> list:
    """Each batch as nested lists (minigrad or torch tensors alike)."""
    return [[part.tolist() for part in batch] for batch in batches]


def error_of(call):
    """(type name, message) of what call() raises."""
    with pytest.raises(Exception) as info:
        call()
    return type(info.value).__name__, str(info.value)


# ---- deterministic samplers -------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 7])
def test_sequential_sampler_matches_torch(count):
    ours, theirs = SequentialSampler(range(count)), tdata.SequentialSampler(range(count))
    assert list(ours) == list(theirs) and len(ours) == len(theirs) == count


@pytest.mark.parametrize("count", [0, 1, 9, 10, 11])
@pytest.mark.parametrize("batch_size", [1, 3, 10, 12])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_matches_torch(count, batch_size, drop_last):
    ours = BatchSampler(range(count), batch_size, drop_last)
    theirs = tdata.BatchSampler(range(count), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("batch_size, drop_last", [
    (0, False), (-2, False), (True, False), (2.0, False), (None, False), (2, 1), (2, None),
])
def test_batch_sampler_argument_errors_match_torch(batch_size, drop_last):
    assert error_of(lambda: BatchSampler(range(4), batch_size, drop_last)) == error_of(
        lambda: tdata.BatchSampler(range(4), batch_size, drop_last))


# ---- random samplers --------------------------------------------------------------------------


def drawn_twice(make_sampler, seed: int = 3):
    """Two epochs of a fresh sampler after mg.manual_seed(seed)."""
    mg.manual_seed(seed)
    sampler = make_sampler()
    return list(sampler), list(sampler)


def test_random_sampler_is_a_permutation_that_repeats_under_manual_seed():
    first, second = drawn_twice(lambda: RandomSampler(range(50)))
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second  # a new order each epoch
    assert all(type(i) is int for i in first)
    assert drawn_twice(lambda: RandomSampler(range(50))) == (first, second)
    assert drawn_twice(lambda: RandomSampler(range(50)), seed=4) != (first, second)
    assert len(RandomSampler(range(50))) == len(tdata.RandomSampler(range(50))) == 50


@pytest.mark.parametrize("num_samples", [3, 10, 25])
def test_random_sampler_num_samples_without_replacement_joins_permutations(num_samples):
    drawn, _ = drawn_twice(lambda: RandomSampler(range(10), num_samples=num_samples))
    theirs = list(tdata.RandomSampler(range(10), num_samples=num_samples))
    assert len(drawn) == len(theirs) == num_samples
    for start in range(0, num_samples, 10):  # each block of 10 is part of one permutation
        block = drawn[start:start + 10]
        assert len(set(block)) == len(block) and set(block) <= set(range(10))


def test_random_sampler_with_replacement_draws_num_samples_in_range():
    drawn, again = drawn_twice(lambda: RandomSampler(range(4), replacement=True, num_samples=400))
    assert len(drawn) == len(RandomSampler(range(4), True, 400)) == 400
    assert set(drawn) == set(range(4)) and drawn != again  # repeats: with replacement
    assert drawn_twice(lambda: RandomSampler(range(4), True, 400))[0] == drawn


@pytest.mark.parametrize("args", [
    (range(5), 1), (range(5), None), (range(5), False, 0), (range(5), False, -1),
    (range(5), False, 2.0), ([],), (range(5), True, "3"),
])
def test_random_sampler_argument_errors_match_torch(args):
    assert error_of(lambda: RandomSampler(*args)) == error_of(lambda: tdata.RandomSampler(*args))


def test_subset_random_sampler_permutes_the_given_indices():
    indices = [5, 11, 2, 40, 7]
    first, second = drawn_twice(lambda: SubsetRandomSampler(indices))
    assert sorted(first) == sorted(second) == sorted(indices) and first != second
    assert drawn_twice(lambda: SubsetRandomSampler(indices)) == (first, second)
    assert len(SubsetRandomSampler(indices)) == len(tdata.SubsetRandomSampler(indices)) == 5
    assert sorted(tdata.SubsetRandomSampler(indices)) == sorted(first)


def test_weighted_sampler_with_replacement_follows_the_weights():
    weights = [0.0, 1.0, 3.0, 0.0, 4.0]
    drawn, again = drawn_twice(lambda: WeightedRandomSampler(weights, 8000))
    assert drawn_twice(lambda: WeightedRandomSampler(weights, 8000)) == (drawn, again)
    assert len(drawn) == len(WeightedRandomSampler(weights, 8000)) == 8000
    ours = np.bincount(drawn, minlength=5) / 8000
    theirs = np.bincount(list(tdata.WeightedRandomSampler(weights, 8000)), minlength=5) / 8000
    np.testing.assert_allclose(ours, np.array(weights) / 8, atol=0.03)
    np.testing.assert_allclose(ours, theirs, atol=0.04)


def test_weighted_sampler_without_replacement_draws_each_index_once_like_torch():
    weights = [1.0, 0.0, 6.0, 3.0]
    mg.manual_seed(0)
    ours = [list(WeightedRandomSampler(weights, 4, replacement=False)) for _ in range(3000)]
    torch.manual_seed(0)
    theirs = [list(tdata.WeightedRandomSampler(weights, 4, replacement=False))
              for _ in range(3000)]
    assert all(sorted(draw) == [0, 1, 2, 3] and draw[-1] == 1 for draw in ours)  # zero: last
    for position in range(3):  # how often each index comes first, second, third
        mine = np.bincount([draw[position] for draw in ours], minlength=4) / 3000
        torchs = np.bincount([draw[position] for draw in theirs], minlength=4) / 3000
        np.testing.assert_allclose(mine, torchs, atol=0.05)
    first = np.bincount([draw[0] for draw in ours], minlength=4) / 3000
    np.testing.assert_allclose(first, [0.1, 0.0, 0.6, 0.3], atol=0.04)


@pytest.mark.parametrize("args", [
    ([1.0, 2.0], 0), ([1.0, 2.0], True), ([1.0, 2.0], 2.5), ([1.0, 2.0], 2, 1),
    ([[1.0, 2.0]], 2), (5.0, 2),
])
def test_weighted_sampler_argument_errors_match_torch(args):
    assert error_of(lambda: WeightedRandomSampler(*args)) == error_of(
        lambda: tdata.WeightedRandomSampler(*args))


@pytest.mark.parametrize("weights, num_samples, replacement", [
    ([1.0, 2.0], 3, False), ([1.0, -2.0], 2, True), ([0.0, 0.0], 2, True), ([], 2, True),
    ([1.0, float("nan")], 1, True), ([1.0, float("inf")], 1, False), ([0.0, 0.0], 3, False),
])
def test_weighted_sampler_bad_weights_fail_when_drawn_as_torch(weights, num_samples, replacement):
    ours = WeightedRandomSampler(weights, num_samples, replacement)
    theirs = tdata.WeightedRandomSampler(weights, num_samples, replacement)
    assert error_of(lambda: list(ours)) == error_of(lambda: list(theirs))


def test_weighted_sampler_takes_tensors_and_arrays():
    for weights in (mg.tensor([0.0, 2.0]), np.array([0.0, 2.0]), torch.tensor([0.0, 2.0])):
        sampler = WeightedRandomSampler(weights, 3)
        assert list(sampler) == [1, 1, 1] and sampler.weights.dtype == np.float64


# ---- generator= -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda g: DataLoader(Squares(3), generator=g),
    lambda g: RandomSampler(range(3), generator=g),
    lambda g: SubsetRandomSampler([0, 1], generator=g),
    lambda g: WeightedRandomSampler([1.0, 2.0], 2, generator=g),
])
def test_a_generator_object_is_refused_and_none_accepted(make):
    make(None)  # PyTorch's default
    with pytest.raises(NotImplementedError, match="generator= must be None.*mg.manual_seed"):
        make(torch.Generator())


# ---- DataLoader(sampler=) ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_with_a_sampler_batches_like_torch(batch_size, drop_last):
    order = [9, 0, 4, 4, 7, 1, 2, -1]  # repeats and a negative index, as torch allows
    ours_set, torch_set = both_datasets(10)
    for ours_data, torch_data in ((ours_set, torch_set), (Squares(10), Squares(10))):
        for sampler, torch_sampler in ((order, order), (EvensFirst(10), EvensFirst(10))):
            ours = DataLoader(ours_data, batch_size, sampler=sampler, drop_last=drop_last)
            theirs = tdata.DataLoader(torch_data, batch_size, sampler=torch_sampler,
                                      drop_last=drop_last)
            assert as_lists(ours) == as_lists(theirs)
            assert isinstance(ours.batch_sampler, BatchSampler) and ours.sampler is sampler


def test_loader_with_a_sampler_of_arrays_keeps_dtypes_and_rows_with_labels():
    x, y = numbered(10)
    for dataset in ((x, y), (mg.tensor(x), mg.tensor(y))):
        batches = list(DataLoader(dataset, batch_size=4, sampler=SequentialSampler(range(10))))
        assert [len(b[1]) for b in batches] == [4, 4, 2]
        for inputs, targets in batches:
            assert str(inputs.dtype) == "float32" and str(targets.dtype) == "int64"
            assert inputs.tolist() == [[float(t)] * 3 for t in targets.tolist()]


def test_loader_with_a_sampler_is_not_a_view_of_the_data():
    x, y = numbered(6)
    inputs, _ = next(iter(DataLoader((x, y), batch_size=3, sampler=[0, 1, 2])))
    inputs.array[:] = -1
    assert x[0, 0] == 0


def test_loader_with_a_random_sampler_repeats_under_manual_seed():
    ours_set, _ = both_datasets(23)

    def two_epochs():
        mg.manual_seed(5)
        loader = DataLoader(ours_set, batch_size=5, sampler=RandomSampler(ours_set))
        return [[v for _, y in loader for v in y.tolist()] for _ in range(2)]

    first, second = two_epochs()
    assert sorted(first) == sorted(second) == list(range(23)) and first != second
    assert two_epochs() == [first, second]


def test_loader_sampler_indices_out_of_range_raise_index_error_as_torch():
    ours_set, torch_set = both_datasets(4)
    with pytest.raises(IndexError):
        list(tdata.DataLoader(torch_set, sampler=[4]))
    for bad in ([4], [-5]):
        with pytest.raises(IndexError, match=f"index {bad[0]}, out of bounds .* size 4"):
            list(DataLoader(ours_set, sampler=bad))
    with pytest.raises(TypeError, match="index 1.5"):
        list(DataLoader(ours_set, sampler=[1.5]))


def test_loader_with_a_sampler_passes_keys_to_the_dataset_as_given():
    class Letters(Dataset):
        def __getitem__(self, key):
            return float(ord(key))

    batches = list(DataLoader(Letters(), batch_size=2, sampler=["a", "b", "c"]))
    assert [b.tolist() for b in batches] == [[97.0, 98.0], [99.0]]


# ---- DataLoader(batch_sampler=) ---------------------------------------------------------------


def test_loader_with_a_batch_sampler_batches_like_torch():
    batches = [[3, 1], [0], [2, 2, 4]]
    ours_set, torch_set = both_datasets(5)
    for ours_data, torch_data in ((ours_set, torch_set), (Squares(5), Squares(5))):
        ours = DataLoader(ours_data, batch_sampler=batches)
        theirs = tdata.DataLoader(torch_data, batch_sampler=batches)
        assert as_lists(ours) == as_lists(theirs) and len(ours) == len(theirs) == 3
        assert ours.batch_size is theirs.batch_size is None
        assert ours.drop_last is theirs.drop_last is False
    sampler = BatchSampler(range(5), 2, drop_last=True)
    ours = DataLoader(ours_set, batch_sampler=sampler)
    theirs = tdata.DataLoader(torch_set, batch_sampler=tdata.BatchSampler(range(5), 2, True))
    assert as_lists(ours) == as_lists(theirs) and len(ours) == len(theirs) == 2


def test_loader_with_a_random_batch_sampler_covers_every_row_once():
    ours_set, _ = both_datasets(17)
    mg.manual_seed(2)
    loader = DataLoader(ours_set, batch_sampler=BatchSampler(RandomSampler(ours_set), 4, False))
    seen = [v for _, y in loader for v in y.tolist()]
    assert sorted(seen) == list(range(17)) and seen != list(range(17)) and len(loader) == 5


# ---- errors and len(loader) -------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"sampler": [0, 1], "shuffle": True},
    {"batch_sampler": [[0]], "batch_size": 2},
    {"batch_sampler": [[0]], "batch_size": None},
    {"batch_sampler": [[0]], "shuffle": True},
    {"batch_sampler": [[0]], "sampler": [0]},
    {"batch_sampler": [[0]], "drop_last": True},
    {"drop_last": 1},
])
def test_loader_option_conflicts_raise_torch_errors(kwargs):
    assert error_of(lambda: DataLoader(Squares(3), **kwargs)) == error_of(
        lambda: tdata.DataLoader(Squares(3), **kwargs))


def test_len_without_a_sized_sampler_is_a_type_error_as_in_torch():
    for kwargs in ({"sampler": EvensFirst(4)}, {"batch_sampler": iter([[0]])}):
        with pytest.raises(TypeError):
            len(tdata.DataLoader(Squares(4), **kwargs))
        with pytest.raises(TypeError):
            len(DataLoader(Squares(4), **kwargs))


@pytest.mark.parametrize("count", [1, 2, 7, 10, 12, 13])
@pytest.mark.parametrize("batch_size", [1, 3, 5, 12])
@pytest.mark.parametrize("drop_last", [False, True])
def test_len_of_the_loader_matches_torch(count, batch_size, drop_last):
    ours_set, torch_set = both_datasets(count)
    options = dict(batch_size=batch_size, drop_last=drop_last)
    pairs = [
        ({}, {}),
        ({"sampler": SequentialSampler(ours_set)}, {"sampler": tdata.SequentialSampler(torch_set)}),
        ({"sampler": RandomSampler(ours_set, True, 2 * count + 1)},
         {"sampler": tdata.RandomSampler(torch_set, True, 2 * count + 1)}),
        ({"sampler": list(range(count))[::2]}, {"sampler": list(range(count))[::2]}),
    ]
    for ours_kwargs, torch_kwargs in pairs:
        ours = DataLoader(ours_set, **options, **ours_kwargs)
        theirs = tdata.DataLoader(torch_set, **options, **torch_kwargs)
        assert len(ours) == len(theirs) == len(list(ours))


def test_samplers_are_exported_under_mg_data():
    for name in ("Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
                 "WeightedRandomSampler", "BatchSampler"):
        assert getattr(mg.data, name) is globals()[name] and name in mg.data.__all__


# ---- device= ----------------------------------------------------------------------------------


@pytest.fixture(params=["cpu", "fake-gpu", "emulated-kernel",
                        pytest.param("cuda", marks=pytest.mark.cuda)])
def loader_device(request, monkeypatch):
    """Where a sampled loader gathers: the CPU, the fake CuPy (array path), the fused gather
    kernel on the CPU emulator, or a real GPU (kernels on)."""
    if request.param in ("fake-gpu", "emulated-kernel"):
        request.getfixturevalue("fake_gpu")
    if request.param == "emulated-kernel":
        table = cuda_emulator.emulated_kernels()
        monkeypatch.setattr(kernels, "enabled", True)
        monkeypatch.setattr(kernels, "_function", lambda name, dtype_name: table[name, dtype_name])
    if request.param == "cuda":
        monkeypatch.setattr(kernels, "enabled", True)
    return "cpu" if request.param == "cpu" else "cuda"


def test_sampled_batches_are_gathered_on_the_loader_device(loader_device):
    x, y = numbered(11)
    cpu = DataLoader((x, y), batch_size=4, sampler=[10, 3, 3, -2, 0, 7])
    ours = DataLoader((x, y), batch_size=4, sampler=[10, 3, 3, -2, 0, 7], device=loader_device)
    for (cx, cy), (dx, dy) in zip(cpu, ours, strict=True):
        assert dx.device == mg.device(loader_device) and dy.device == mg.device(loader_device)
        assert dx.tolist() == cx.tolist() and dy.tolist() == cy.tolist()
    if loader_device == "cuda" and not isinstance(dx.array, FakeGpuArray):
        assert type(dx.array).__module__.startswith("cupy")
    batches = [[1, 2], [], [10]]
    shapes = [tuple(b[0].shape) for b in DataLoader((x, y), batch_sampler=batches,
                                                    device=loader_device)]
    assert shapes == [(2, 3), (0, 3), (1, 3)]
