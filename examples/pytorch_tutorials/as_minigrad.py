"""Run a PyTorch program on minigrad, unchanged: `import torch` gets minigrad.

    python examples/pytorch_tutorials/as_minigrad.py examples/pytorch_tutorials/polynomial_nn.py

Every `torch.X` and `torch.nn.X` the program uses must exist in minigrad under the same name
(docs/pytorch-names.md lists them); a missing one stops the program with an AttributeError
naming it.
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


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: as_minigrad.py PROGRAM.py [ARGS...]")
    alias_torch_to_minigrad()
    program, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_path(program, run_name="__main__")
