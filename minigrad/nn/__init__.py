"""Neural-network building blocks: Module, Parameter, layers, losses, functional forms."""

from . import functional, init
from .layers import Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from .loss import CrossEntropyLoss
from .module import Module, Parameter

__all__ = [
    "CrossEntropyLoss",
    "Flatten",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "functional",
    "init",
]
