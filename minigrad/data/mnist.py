"""MNIST: torchvision fetches the files (only when they are missing); we read the IDX files."""

from __future__ import annotations

import os
import shutil

from .. import backend

MEAN, STD = 0.1307, 0.3081  # of the training pixels scaled to [0, 1]
FILES = {  # split -> (images, labels), each (name, size in bytes)
    True: (("train-images-idx3-ubyte", 47_040_016), ("train-labels-idx1-ubyte", 60_008)),
    False: (("t10k-images-idx3-ubyte", 7_840_016), ("t10k-labels-idx1-ubyte", 10_008)),
}
_UBYTE = 0x08  # IDX type code of unsigned bytes, the only type MNIST uses


def read_idx(path) -> backend.ndarray:
    """Read an IDX file of unsigned bytes into a uint8 array (its shape comes from the header).

    The format: two zero bytes, a type byte (0x08), the number of dimensions N, then N big-endian
    uint32 sizes, then the values in C order.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        raw = file.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or not 1 <= raw[3] <= 4:
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes (magic number "
            f"{raw[:4].hex() or 'missing'}, expected 0000080N with N from 1 to 4)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header ({len(raw)} bytes, expected at least {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + _product(dims)
    if len(raw) != expected:
        raise ValueError(
            f"{path}: expected {expected:,} bytes for shape {dims}, found {len(raw):,} "
            "(the file is truncated or damaged; delete it and download it again)"
        )
    return backend.numpy.frombuffer(raw, dtype=backend.numpy.uint8, offset=header).reshape(dims)


def _product(sizes) -> int:
    count = 1
    for size in sizes:
        count *= size
    return count


def _download(root: str, folder: str, train: bool) -> None:
    """Let torchvision fetch (and check and unpack) the files into root/MNIST/raw."""
    files = ", ".join(f"{name} ({size:,} bytes)" for pair in FILES.values() for name, size in pair)
    try:
        import torchvision  # only here: torchvision knows MNIST's mirrors and checksums
    except ImportError as error:
        raise FileNotFoundError(
            f"MNIST files are not in {folder} and torchvision, which downloads them, is not "
            f"installed: pip install torchvision, or copy the uncompressed IDX files ({files}) "
            "into that folder"
        ) from error
    # torchvision makes root/MNIST/raw before it downloads: a failed download must not leave
    # those folders behind, empty or holding half a file.
    made = next((p for p in (root, os.path.dirname(folder), folder) if not os.path.exists(p)), None)
    try:
        torchvision.datasets.MNIST(root, train=train, download=True)
    except Exception as error:  # no network, a mirror down, a checksum mismatch
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
        reason = (str(error).strip().splitlines() or [""])[0].rstrip(":")  # torchvision's are long
        raise RuntimeError(
            f"could not download MNIST into {folder} ({type(error).__name__}: {reason}); copy the "
            f"uncompressed IDX files ({files}) there, or use a root that already has MNIST/raw"
        ) from error


def _read_mnist_file(path: str, size: int):
    try:
        return read_idx(path)
    except ValueError as error:
        raise ValueError(f"{error}; the original MNIST file is {size:,} bytes") from None


def _check_not_too_deep(root: str, folder: str, names: list) -> None:
    """Refuse a root that is MNIST/ or MNIST/raw/ itself, naming the root that was meant."""
    if os.path.exists(folder):
        return
    root = os.path.normpath(os.path.abspath(root))
    for inner, meant in ((root, os.path.dirname(os.path.dirname(root))),
                         (os.path.join(root, "raw"), os.path.dirname(root))):
        if all(os.path.isfile(os.path.join(inner, name)) for name in names):
            raise FileNotFoundError(
                f"the MNIST files are in {inner}, so root {root!r} is too deep: they must be in "
                f"<root>/MNIST/raw, as torchvision lays them out; pass root {meant!r}"
            )


class MNIST:
    """The MNIST digits: `data` uint8 (N, 28, 28) and `targets` int64 (N,), as NumPy arrays.

    `root` is laid out as torchvision lays it out: the four IDX files live in root/MNIST/raw.
    With download=True, torchvision is asked for them only when they are missing.
    """

    def __init__(self, root, train: bool = True, download: bool = True):
        self.root, self.train = os.path.expanduser(os.fspath(root)), train
        self.folder = os.path.join(self.root, "MNIST", "raw")
        files = [(os.path.join(self.folder, name), size) for name, size in FILES[train]]
        _check_not_too_deep(self.root, self.folder, [name for name, _ in FILES[train]])
        if download and not all(os.path.exists(path) for path, _ in files):
            _download(self.root, self.folder, train)
        missing = [f"{path} ({size:,} bytes)" for path, size in files if not os.path.exists(path)]
        if missing:
            raise FileNotFoundError(
                f"MNIST files not found: {', '.join(missing)}; pass download=True (needs "
                "torchvision and internet access) or copy the uncompressed IDX files there"
            )
        images, labels = (_read_mnist_file(path, size) for path, size in files)
        if images.shape[1:] != (28, 28) or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST files in {self.folder} disagree: images {images.shape} and labels "
                f"{labels.shape} (expected (N, 28, 28) and (N,))"
            )
        if len(images) == 0:
            raise ValueError(
                f"{files[0][0]}: holds 0 images (its header says shape {images.shape}); the "
                f"original MNIST file holds {(files[0][1] - 16) // 784:,} (delete it and "
                "download it again)"
            )
        if labels.size and labels.max() > 9:
            raise ValueError(f"{files[1][0]}: label {labels.max()} is not a digit")
        self.data = images
        self.targets = labels.astype(backend.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.data[index], int(self.targets[index])

    def arrays(self, device=None):
        """(inputs, targets) on `device` ready for a model: float32 (N, 784), int64 (N,).

        The uint8 pixels travel (a quarter of the float32 bytes), then are scaled to [0, 1] and
        normalised with the training set's mean and std where they will be used.
        """
        dev = backend.device(device)
        pixels = backend.to_device(self.data.reshape(len(self), -1), dev)
        inputs = (pixels.astype(backend.float32) / 255 - MEAN) / STD
        return inputs.astype(backend.float32, copy=False), backend.to_device(self.targets, dev)

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (
            f"Dataset MNIST\n    Number of datapoints: {len(self)}\n"
            f"    Root location: {self.root}\n    Split: {split}"
        )
