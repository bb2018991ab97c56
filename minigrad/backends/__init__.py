"""torch.backends: the switches a PyTorch program reads or sets before it trains.

    device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() \
        else "cpu"
    torch.backends.cudnn.benchmark = True

minigrad has no Apple (MPS) backend and does not use cuDNN or TF32: mps says it is not there,
and cudnn's and cuda.matmul's settings are accepted and change nothing.
"""

from . import cuda, cudnn, mps  # noqa: F401
