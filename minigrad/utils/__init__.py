"""mg.utils: as torch.utils, the data-loading tools live in mg.utils.data."""

from . import data

__all__ = ["data"]
