"""mg.save / mg.load: state dicts of models and optimisers as .npz files, written atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import assert_close

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def batches(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield (
            mg.tensor(rng.standard_normal((4, 6)).astype(np.float32)),
            mg.tensor(rng.integers(0, 3, 4)),
        )


def train(model, optimizer, data) -> list:
    losses = []
    for x, y in data:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_model_state_dict_round_trips(tmp_path):
    model = small_net()
    path = tmp_path / "model.npz"
    mg.save(model.state_dict(), path)
    loaded = mg.load(path)
    assert list(loaded) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert isinstance(loaded[name], mg.Tensor) and loaded[name].dtype == value.dtype
        assert np.array_equal(loaded[name].detach().numpy(), value.detach().numpy()), name
    other = small_net()
    other.load_state_dict(loaded)
    x = mg.randn(2, 6)
    assert np.array_equal(other(x).detach().numpy(), model(x).detach().numpy())


def test_saved_model_loads_into_torch(tmp_path):
    model = small_net()
    mg.save(model.state_dict(), tmp_path / "model.npz")
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    theirs.load_state_dict(
        {
            k: torch.from_numpy(v.detach().numpy())
            for k, v in mg.load(tmp_path / "model.npz").items()
        }
    )
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    assert_close(model(mg.tensor(x)), theirs(torch.from_numpy(x)), np.float32)


def test_model_and_optimiser_checkpoint_restores_training_exactly(tmp_path):
    mg.manual_seed(0)
    model = small_net()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    data = list(batches(10))
    train(model, optimizer, data[:5])
    path = tmp_path / "checkpoint.npz"
    mg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 5}, path)
    expected = train(model, optimizer, data[5:])

    checkpoint = mg.load(path)
    assert checkpoint["epoch"] == 5
    assert sorted(checkpoint["optimizer"]["state"]) == [0, 1, 2, 3]  # int keys survive
    resumed = small_net()
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = mg.optim.SGD(resumed.parameters(), lr=1.0)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    assert resumed_optimizer.param_groups[0]["momentum"] == 0.9
    assert resumed_optimizer.param_groups[0]["nesterov"] is False
    for p, q in zip(optimizer.state, resumed_optimizer.state, strict=True):
        assert q.shape == p.shape
    assert train(resumed, resumed_optimizer, data[5:]) == expected
    for name, value in model.state_dict().items():
        assert np.array_equal(
            resumed.state_dict()[name].detach().numpy(), value.detach().numpy()
        ), name


def test_load_puts_tensors_on_the_requested_device(tmp_path, device):
    mg.save({"w": mg.ones(2, 3, dtype="float64")}, tmp_path / "w.npz")
    loaded = mg.load(tmp_path / "w.npz", device=device)["w"]
    assert loaded.device == device and loaded.dtype == np.float64
    assert np.array_equal(loaded.detach().numpy(), np.ones((2, 3)))


def test_save_keeps_numbers_strings_lists_and_nesting(tmp_path):
    obj = {
        "a": [1, 2.5, "x", None, True, np.float32(0.25), np.int64(7)],
        3: {"nested": (mg.arange(4),)},
        "array": np.eye(2, dtype=np.float64),
        "scalar": mg.tensor(1.5),
    }
    mg.save(obj, tmp_path / "obj.npz")
    loaded = mg.load(tmp_path / "obj.npz")
    assert loaded["a"] == [1, 2.5, "x", None, True, 0.25, 7]
    assert list(loaded) == ["a", 3, "array", "scalar"]
    assert np.array_equal(loaded[3]["nested"][0].detach().numpy(), np.arange(4))
    assert loaded["array"].dtype == np.float64 and loaded["scalar"].shape == ()


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        mg.save({"x": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be str or int"):
        mg.save({(1, 2): 3}, tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mg.save({}, tmp_path / "missing" / "x.npz")
    assert os.listdir(tmp_path) == []


def test_saved_file_gets_the_usual_permissions(tmp_path):
    path = tmp_path / "model.npz"
    mg.save({"x": mg.ones(1)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture
def previous_file(tmp_path):
    """A checkpoint already on disk, to be overwritten by a save that fails."""
    path = tmp_path / "model.npz"
    mg.save({"version": 1, "w": mg.ones(3)}, path)
    return path


def check_previous_file_intact(path):
    assert os.listdir(path.parent) == [path.name], "a temporary file was left behind"
    loaded = mg.load(path)
    assert loaded["version"] == 1 and np.array_equal(loaded["w"].detach().numpy(), np.ones(3))


def test_a_save_that_fails_while_writing_leaves_the_previous_file(previous_file, monkeypatch):
    original = np.savez

    def savez_then_crash(file, **arrays):
        original(file, **arrays)
        file.truncate(100)  # half a file, then the crash
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"version": 2, "w": mg.zeros(3)}, previous_file)
    check_previous_file_intact(previous_file)


def test_a_save_that_fails_at_the_rename_leaves_the_previous_file(previous_file, monkeypatch):
    def replace_fails(source, target):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", replace_fails)
    with pytest.raises(OSError, match="rename failed"):
        mg.save({"version": 2, "w": mg.zeros(3)}, previous_file)
    monkeypatch.undo()
    check_previous_file_intact(previous_file)


def test_a_save_interrupted_by_ctrl_c_leaves_the_previous_file(previous_file, monkeypatch):
    def interrupted(file, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"version": 2}, previous_file)
    check_previous_file_intact(previous_file)


def test_a_successful_save_replaces_the_previous_file(previous_file):
    mg.save({"version": 2}, previous_file)
    assert mg.load(previous_file) == {"version": 2}
    assert os.listdir(previous_file.parent) == [previous_file.name]


def test_load_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file .*nothing.npz"):
        mg.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize(
    "contents",
    [b"", b"not a zip file at all", b"PK\x03\x04" + b"\x00" * 40],
    ids=["empty", "garbage", "broken-zip"],
)
def test_load_of_a_corrupt_file_says_so(tmp_path, contents):
    path = tmp_path / "broken.npz"
    path.write_bytes(contents)
    with pytest.raises(
        RuntimeError, match="broken.npz.* is not a minigrad .npz file or is damaged"
    ):
        mg.load(path)


def test_load_of_a_truncated_checkpoint_says_so(tmp_path):
    path = tmp_path / "model.npz"
    mg.save(small_net().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="damaged"):
        mg.load(path)


def test_load_of_a_plain_numpy_archive_says_so(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.ones(2))
    with pytest.raises(RuntimeError, match="not a minigrad .npz file"):
        mg.load(path)
