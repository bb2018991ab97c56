"""torch.backends.mps: Apple's Metal backend, which minigrad does not have."""


def is_available() -> bool:
    """Whether tensors can go to an "mps" device: never in minigrad."""
    return False


def is_built() -> bool:
    """Whether this build includes MPS: minigrad's does not."""
    return False
