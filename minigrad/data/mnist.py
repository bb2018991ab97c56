"""MNIST: torchvision fetches the files (only when they are missing); we read the IDX files."""

from __future__ import annotations

import os

from .. import backend

MEAN, STD = 0.1307, 0.3081  # of the training pixels scaled to [0, 1]
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UBYTE = 0x08


def read_idx(path: str):
    """Read an IDX file of unsigned bytes (magic 0x0000080N) into a uint8 array of N dims."""
    with open(path, "rb") as file:
        raw = file.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or not 1 <= raw[3] <= 4:
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes (magic number {raw[:4].hex() or 'missing'}, "
            "expected 0000080N)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header ({len(raw)} bytes, expected {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = 1
    for size in dims:
        count *= size
    if len(raw) != header + count:
        raise ValueError(
            f"{path}: expected {header + count} bytes for shape {dims}, found {len(raw)} "
            "(the file is truncated or damaged; delete it to download it again)"
        )
    return backend.numpy.frombuffer(raw, dtype=backend.numpy.uint8, offset=header).reshape(dims)


def _download(root: str, train: bool) -> None:
    try:
        import torchvision  # only here: torchvision knows MNIST's mirrors and checksums
    except ImportError as error:
        raise FileNotFoundError(
            f"MNIST files are not in {os.path.join(root, 'MNIST', 'raw')} and torchvision, which "
            "downloads them, is not installed: pip install torchvision, or copy the four IDX "
            "files (train-images-idx3-ubyte, ...) into that folder"
        ) from error
    torchvision.datasets.MNIST(root, train=train, download=True)


class MNIST:
    """The MNIST digits: `data` uint8 (N, 28, 28) and `targets` int64 (N,), as NumPy arrays."""

    def __init__(self, root, train: bool = True, download: bool = True):
        self.root, self.train = os.fspath(root), train
        folder = os.path.join(self.root, "MNIST", "raw")
        paths = [os.path.join(folder, name) for name in FILES[train]]
        if download and not all(os.path.exists(p) for p in paths):
            _download(self.root, train)
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"MNIST files not found: {', '.join(missing)}; pass download=True (needs "
                "torchvision and internet access) or copy the IDX files there"
            )
        images, labels = (read_idx(p) for p in paths)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"MNIST files disagree: images {images.shape} and labels {labels.shape} "
                f"in {folder}"
            )
        self.data = images
        self.targets = labels.astype(backend.int64)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.data[index], int(self.targets[index])

    def arrays(self):
        """(inputs, targets) ready for a model: float32 (N, 784) normalised, int64 (N,)."""
        inputs = self.data.reshape(len(self), -1).astype(backend.float32) / 255.0
        inputs = (inputs - MEAN) / STD
        return inputs.astype(backend.float32), self.targets

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Root location: {self.root}\n    Split: {split}"
