"""torch.backends.cudnn: cuDNN's switches. minigrad's GPU path does not use cuDNN (its kernels
are its own, minigrad/cuda), so these are accepted and change nothing."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """Whether cuDNN is used: never in minigrad."""
    return False


def version():
    """cuDNN's version: None, as PyTorch gives without cuDNN."""
    return None
