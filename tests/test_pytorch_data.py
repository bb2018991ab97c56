"""mg.utils.data and devices under PyTorch's names (issue 12, item 6), against torch."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.utils.data import DataLoader, Dataset, TensorDataset

torch = pytest.importorskip("torch")


class Squares(Dataset):
    """A map-style dataset of (array, number, dict) samples, as a user would write one."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(3, i, dtype="float32"), i * i, {"half": i / 2}


def test_tensor_dataset_batches_like_torch():
    x, y = np.arange(20.0).reshape(10, 2).astype("float32"), np.arange(10)
    mine = DataLoader(TensorDataset(mg.tensor(x), mg.tensor(y)), batch_size=4, num_workers=0,
                      pin_memory=True)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=4)
    assert len(mine) == len(theirs) == 3
    for (mx, my), (tx, ty) in zip(mine, theirs, strict=True):
        assert mx.tolist() == tx.tolist() and my.tolist() == ty.tolist()
        assert str(mx.dtype) == "float32" and str(my.dtype) == "int64"
    dataset = TensorDataset(mg.tensor(x), mg.tensor(y))
    assert len(dataset) == 10 and dataset[3][1].item() == 3


def test_map_style_dataset_is_collated_per_sample_as_torch():
    for shuffle in (False, True):
        mine = list(DataLoader(Squares(7), batch_size=3, shuffle=shuffle, drop_last=True))
        theirs = list(torch.utils.data.DataLoader(Squares(7), batch_size=3, drop_last=True))
        assert len(mine) == len(theirs) == 2
        for (ma, mb, mc), (ta, tb, tc) in zip(mine, theirs, strict=True):
            assert ma.shape == tuple(ta.shape) and str(mb.dtype) == str(tb.dtype)[6:]
            assert str(mc["half"].dtype) == str(tc["half"].dtype)[6:]
            if not shuffle:
                assert ma.tolist() == ta.tolist() and mb.tolist() == tb.tolist()
    seen = sorted(i for batch in DataLoader(Squares(7), batch_size=2, shuffle=True)
                  for i in batch[1].tolist())
    assert seen == [i * i for i in range(7)]
    custom = DataLoader(Squares(4), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(custom) == [2, 2]


def test_samples_from_another_library_are_collated():
    samples = [(torch.ones(2) * i, i) for i in range(4)]
    (x, y), = list(DataLoader(samples, batch_size=4))
    assert isinstance(x, mg.Tensor) and x.tolist() == [[i, i] for i in range(4)]


@pytest.mark.parametrize("kwargs, error", [
    ({"num_workers": -1}, ValueError), ({"batch_size": 0}, ValueError),
    ({"persistent_workers": True}, ValueError), ({"timeout": -1}, ValueError),
])
def test_bad_loader_settings_raise_as_torch(kwargs, error):
    with pytest.raises(error):
        torch.utils.data.DataLoader(Squares(3), **kwargs)
    with pytest.raises(error):
        DataLoader(Squares(3), **kwargs)


def test_unsupported_loader_settings_are_refused_not_ignored():
    torch = pytest.importorskip("torch")
    with pytest.raises(NotImplementedError, match="generator"):
        DataLoader(Squares(3), generator=torch.Generator())


def test_tensor_dataset_size_mismatch():
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(mg.ones(3), mg.ones(4))
    with pytest.raises(AssertionError):
        torch.utils.data.TensorDataset(torch.ones(3), torch.ones(4))


def test_devices_and_accelerator():
    assert mg.device("cpu") == mg.device("cpu:0") and str(mg.device("cuda:1")) == "cuda:1"
    assert repr(mg.device("cuda")) == repr(torch.device("cuda:0"))
    available = mg.accelerator.is_available()
    assert (mg.accelerator.current_accelerator() is None) == (not available)
    assert mg.accelerator.device_count() == (1 if available else 0) or available
    try:
        mg.set_default_device("cpu")
        assert mg.zeros(2).device == mg.device("cpu") and mg.tensor([1.0]).device == "cpu"
        assert mg.get_default_device() == "cpu"
    finally:
        mg.set_default_device(None)
    with pytest.raises(ValueError):
        mg.set_default_device("tpu")
