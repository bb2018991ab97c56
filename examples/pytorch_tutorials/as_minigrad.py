"""Run a PyTorch program on minigrad, unchanged: `import torch` gets minigrad.

    python examples/pytorch_tutorials/as_minigrad.py examples/pytorch_tutorials/polynomial_nn.py

Every `torch.X` and `torch.nn.X` the program uses must exist in minigrad under the same name
(docs/pytorch-names.md lists them); a missing one stops the program with an AttributeError
naming it. A program that uses torchvision gets it imported with PyTorch first (see
import_torchvision_with_pytorch).
"""

import runpy
import sys

# The submodules a PyTorch program may import by their dotted names (torch.nn.functional, ...).
import minigrad  # noqa: F401
import minigrad.autograd  # noqa: F401
import minigrad.nn.functional  # noqa: F401
import minigrad.optim.lr_scheduler  # noqa: F401
import minigrad.utils.data  # noqa: F401


def alias_torch_to_minigrad() -> None:
    """Make `import torch`, `import torch.nn.functional as F`, ... import minigrad's modules."""
    for name, module in list(sys.modules.items()):
        if name == "minigrad" or name.startswith("minigrad."):
            sys.modules["torch" + name[len("minigrad"):]] = module


def import_torchvision_with_pytorch(program: str) -> None:
    """torchvision is built on PyTorch itself (torch.hub, torch.ops, ...), not on the torch API a
    program uses: when the program imports it and it is installed, import it first, with the
    real torch, and make its datasets' samples minigrad tensors (ToTensor makes PyTorch ones)."""
    with open(program, encoding="utf-8") as file:
        if "torchvision" not in file.read():
            return
    try:
        import torch
        import torchvision.datasets
    except ImportError:
        return  # the program's own import will say what is missing
    datasets = [c for c in vars(torchvision.datasets).values()
                if isinstance(c, type) and issubclass(c, torchvision.datasets.VisionDataset)]
    for dataset in datasets:
        if "__getitem__" in vars(dataset):
            dataset.__getitem__ = _giving_minigrad_tensors(dataset.__getitem__, torch.Tensor)


def _giving_minigrad_tensors(getitem, pytorch_tensor):
    """getitem, with each PyTorch tensor in the sample it returns made a minigrad tensor."""

    def convert(value):
        if isinstance(value, pytorch_tensor):
            return minigrad.from_numpy(value.numpy(force=True))
        return tuple(convert(v) for v in value) if type(value) is tuple else value

    def minigrad_getitem(self, index):
        return convert(getitem(self, index))

    return minigrad_getitem


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: as_minigrad.py PROGRAM.py [ARGS...]")
    import_torchvision_with_pytorch(sys.argv[1])
    alias_torch_to_minigrad()
    program, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(program, run_name="__main__")
