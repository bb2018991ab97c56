"""MNIST's IDX reader, the torchvision download path, and the device-resident DataLoader."""

from __future__ import annotations

import os
import socket
import sys
import types

import numpy as np
import pytest

import minigrad as mg
from minigrad.data.mnist import FILES, MEAN, STD, read_idx

RAW_NAMES = [name for pair in FILES.values() for name, _ in pair]


def write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file: 0, 0, 0x08, ndim, big-endian sizes, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_fake_mnist(root, count: int = 5, seed: int = 0):
    """A root in torchvision's layout with small random train and test files; returns the data."""
    rng = np.random.default_rng(seed)
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    data = {}
    for train, ((images_name, _), (labels_name, _)) in FILES.items():
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        write_idx(folder / images_name, images)
        write_idx(folder / labels_name, labels)
        data[train] = images, labels
    return data


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails at once (so a download attempt shows up)."""

    def refuse(*args, **kwargs):
        raise AssertionError("this test must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---- IDX files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 3, 4, 5)])
def test_read_idx_reads_what_was_written(tmp_path, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    write_idx(tmp_path / "file", array)
    result = read_idx(tmp_path / "file")
    assert result.dtype == np.uint8 and result.shape == shape
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\x00",
        b"\x01\x00\x08\x01" + bytes(8),
        b"\x00\x00\x0d\x01" + bytes(8),
        b"\x00\x00\x08\x00" + bytes(8),
        b"\x00\x00\x08\x09" + bytes(8),
    ],
    ids=["empty", "short", "nonzero-first-byte", "float-type", "zero-dims", "nine-dims"],
)
def test_read_idx_rejects_a_bad_magic_number(tmp_path, content):
    (tmp_path / "file").write_bytes(content)
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        read_idx(tmp_path / "file")


def test_read_idx_rejects_a_truncated_header(tmp_path):
    (tmp_path / "file").write_bytes(b"\x00\x00\x08\x03" + (60000).to_bytes(4, "big"))
    with pytest.raises(ValueError, match=r"truncated header \(8 bytes, expected at least 16\)"):
        read_idx(tmp_path / "file")


@pytest.mark.parametrize("change", [-1, -100, +1])
def test_read_idx_names_the_file_and_expected_size_when_data_is_cut_or_padded(tmp_path, change):
    write_idx(tmp_path / "file", np.zeros((10, 28, 28), np.uint8))
    content = (tmp_path / "file").read_bytes()
    content = content[:change] if change < 0 else content + b"\x00" * change
    (tmp_path / "file").write_bytes(content)
    expected = f"expected 7,856 bytes for shape \\(10, 28, 28\\), found {7856 + change:,}"
    with pytest.raises(ValueError, match=expected) as error:
        read_idx(tmp_path / "file")
    assert str(tmp_path / "file") in str(error.value)


# ---- MNIST on small files the test writes --------------------------------------------------------


@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_uint8_images_and_int64_labels(tmp_path, train):
    images, labels = make_fake_mnist(tmp_path)[train]
    dataset = mg.data.MNIST(tmp_path, train=train, download=False)
    assert dataset.data.dtype == np.uint8 and dataset.data.shape == (5, 28, 28)
    assert dataset.targets.dtype == np.int64
    np.testing.assert_array_equal(dataset.data, images)
    np.testing.assert_array_equal(dataset.targets, labels)
    assert len(dataset) == 5
    assert dataset[2][1] == int(labels[2])


def test_mnist_arrays_are_flat_normalised_float32(tmp_path):
    images, labels = make_fake_mnist(tmp_path)[True]
    inputs, targets = mg.data.MNIST(tmp_path).arrays()
    assert inputs.dtype == np.float32 and inputs.shape == (5, 784)
    expected = (images.reshape(5, 784).astype(np.float32) / 255 - MEAN) / STD
    np.testing.assert_allclose(inputs, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(targets, labels)


def test_mnist_without_files_names_the_folder_and_sizes(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        mg.data.MNIST(tmp_path, train=False, download=False)
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in message
    assert "7,840,016 bytes" in message and "download=True" in message


def test_mnist_truncated_file_names_the_file_and_expected_size(tmp_path):
    make_fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError) as error:
        mg.data.MNIST(tmp_path)
    message = str(error.value)
    assert str(path) in message and "expected 3,936 bytes" in message
    assert "the original MNIST file is 47,040,016 bytes" in message


def test_mnist_rejects_images_and_labels_that_disagree(tmp_path):
    make_fake_mnist(tmp_path)
    write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"disagree: images \(5, 28, 28\) and labels \(4,\)"):
        mg.data.MNIST(tmp_path)


def test_mnist_rejects_labels_that_are_not_digits(tmp_path):
    make_fake_mnist(tmp_path)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.full(5, 12, np.uint8))
    with pytest.raises(ValueError, match="label 12 is not a digit"):
        mg.data.MNIST(tmp_path, train=False)


# ---- the torchvision path ------------------------------------------------------------------------


def fake_torchvision(monkeypatch, mnist):
    """Put a stand-in torchvision whose datasets.MNIST is `mnist` where `import` will find it."""
    module = types.ModuleType("torchvision")
    module.datasets = types.SimpleNamespace(MNIST=mnist)
    monkeypatch.setitem(sys.modules, "torchvision", module)


def test_torchvision_is_asked_only_when_files_are_missing(tmp_path, monkeypatch):
    calls = []

    def fake_download(root, train, download):
        calls.append((root, train, download))
        make_fake_mnist(tmp_path)

    fake_torchvision(monkeypatch, fake_download)
    first = mg.data.MNIST(tmp_path, train=False, download=True)
    assert calls == [(str(tmp_path), False, True)]
    second = mg.data.MNIST(tmp_path, train=False, download=True)
    assert len(calls) == 1  # the files are there now: no second download
    np.testing.assert_array_equal(first.data, second.data)


def test_missing_files_without_torchvision_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(FileNotFoundError) as error:
        mg.data.MNIST(tmp_path, download=True)
    message = str(error.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "pip install torchvision" in message and "train-images-idx3-ubyte" in message


def test_failed_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    def failing_download(root, train, download):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirror 1 ...")

    fake_torchvision(monkeypatch, failing_download)
    with pytest.raises(RuntimeError) as error:
        mg.data.MNIST(tmp_path)
    message = str(error.value)
    assert f"could not download MNIST into {tmp_path / 'MNIST' / 'raw'}" in message
    assert "(RuntimeError: Error downloading train-images-idx3-ubyte.gz)" in message
    assert "copy the uncompressed IDX files" in message


@pytest.fixture
def linked_root(tmp_path, data_root):
    """A fresh root whose MNIST/raw holds symlinks to the real files (as after a download)."""
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in RAW_NAMES:
        os.symlink(data_root / "MNIST" / "raw" / name, folder / name)
    return tmp_path


def test_torchvision_finds_a_prepared_root_without_the_network(linked_root, no_network):
    torchvision = pytest.importorskip("torchvision")
    ours = mg.data.MNIST(linked_root, train=False, download=True)
    theirs = torchvision.datasets.MNIST(linked_root, train=False, download=True)
    np.testing.assert_array_equal(ours.data, theirs.data.detach().numpy())
    np.testing.assert_array_equal(ours.targets, theirs.targets.detach().numpy())


# ---- the real MNIST ----------------------------------------------------------------------------


def test_real_mnist_has_the_published_counts_labels_and_statistics(data_root, no_network):
    train = mg.data.MNIST(data_root, train=True, download=True)
    test = mg.data.MNIST(data_root, train=False, download=True)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    assert train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = np.bincount(train.data.ravel(), minlength=256)  # statistics from a histogram
    values = np.arange(256) / 255.0
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    assert abs(mean - MEAN) < 5e-5 and abs(std - STD) < 5e-5


# ---- DataLoader --------------------------------------------------------------------------------


def numbered(count: int):
    """Inputs whose row i is all i, and targets i: a batch shows which samples it holds."""
    inputs = np.repeat(np.arange(count, dtype=np.float32)[:, None], 3, axis=1)
    return inputs, np.arange(count, dtype=np.int64)


def epoch_order(loader) -> list:
    return [int(v) for _, y in loader for v in y.detach().numpy()]


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_yields_every_sample_once_per_epoch(device, shuffle):
    mg.manual_seed(0)
    loader = mg.data.DataLoader(numbered(103), batch_size=10, shuffle=shuffle, device=device)
    assert len(loader) == 11
    for _ in range(2):
        batches = list(loader)
        assert [len(y) for _, y in batches] == [10] * 10 + [3]
        for x, y in batches:
            assert isinstance(x, mg.Tensor) and x.device == mg.device(device)
            assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(y), 3)
            np.testing.assert_array_equal(
                x.detach().numpy()[:, 0], y.detach().numpy()
            )  # rows stay with labels
        order = [int(v) for _, y in batches for v in y.detach().numpy()]
        assert sorted(order) == list(range(103))
        assert (order == list(range(103))) is not shuffle


def test_loader_drop_last_skips_the_short_batch():
    loader = mg.data.DataLoader(numbered(103), batch_size=10, shuffle=True, drop_last=True)
    assert len(loader) == 10
    order = epoch_order(loader)
    assert len(order) == 100 and len(set(order)) == 100


def test_loader_shuffle_differs_between_epochs_and_repeats_with_the_seed(device):
    def two_epochs():
        mg.manual_seed(42)
        loader = mg.data.DataLoader(numbered(500), batch_size=64, shuffle=True, device=device)
        return epoch_order(loader), epoch_order(loader)

    first, second = two_epochs()
    assert first != second
    assert two_epochs() == (first, second)
    mg.manual_seed(43)
    loader = mg.data.DataLoader(numbered(500), batch_size=64, shuffle=True, device=device)
    assert epoch_order(loader) != first


def test_loader_puts_mnist_on_the_device_once(tmp_path, device):
    make_fake_mnist(tmp_path, count=7)
    dataset = mg.data.MNIST(tmp_path)
    loader = mg.data.DataLoader(dataset, batch_size=4, device=device)
    assert mg.backend.device_of(loader.inputs) == mg.device(device)
    assert loader.inputs.shape == (7, 784) and loader.inputs.dtype == np.float32
    (x, y), _ = list(loader)
    expected_x, expected_y = dataset.arrays()
    np.testing.assert_allclose(x.detach().numpy(), expected_x[:4], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y.detach().numpy(), expected_y[:4])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_loader_rejects_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        mg.data.DataLoader(numbered(4), batch_size=batch_size)


def test_loader_rejects_inputs_and_targets_of_different_lengths():
    inputs, targets = numbered(4)
    with pytest.raises(ValueError, match="4 inputs but 3 targets"):
        mg.data.DataLoader((inputs, targets[:3]))


# ---- roots that are almost right, files that hold nothing, downloads that fail ----------------


@pytest.mark.parametrize("too_deep", ["MNIST", "MNIST/raw"])
def test_a_root_one_level_too_deep_is_recognised_and_named(tmp_path, monkeypatch, too_deep):
    make_fake_mnist(tmp_path)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # a download attempt would fail
    with pytest.raises(
        FileNotFoundError, match=f"so root '{tmp_path / too_deep}' is too deep"
    ) as error:
        mg.data.MNIST(tmp_path / too_deep, train=False)
    assert f"pass root '{tmp_path}'" in str(error.value)
    assert not (tmp_path / too_deep / "MNIST").exists()  # nothing made inside it


def test_a_zero_sample_idx_file_is_refused_by_name(tmp_path):
    make_fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(0, np.uint8))
    with pytest.raises(
        ValueError,
        match=r"train-images-idx3-ubyte: holds 0 images .*shape "
        r"\(0, 28, 28\).* holds 60,000",
    ):
        mg.data.DataLoader(mg.data.MNIST(tmp_path, download=False), batch_size=4)


@pytest.mark.parametrize("existing", ["", "root", "root/MNIST"])
def test_a_failed_download_leaves_no_folders_behind(tmp_path, monkeypatch, existing):
    root = tmp_path / "root"
    if existing:
        (tmp_path / existing).mkdir(parents=True)
    before = sorted(str(p) for p in tmp_path.rglob("*"))

    def download_that_fails(root, train, download):
        raw = os.path.join(root, "MNIST", "raw")
        os.makedirs(raw, exist_ok=True)  # as torchvision does before fetching
        with open(os.path.join(raw, "train-images-idx3-ubyte.gz"), "wb") as file:
            file.write(b"half a download")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    fake_torchvision(monkeypatch, download_that_fails)
    with pytest.raises(RuntimeError, match="could not download MNIST"):
        mg.data.MNIST(root)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
