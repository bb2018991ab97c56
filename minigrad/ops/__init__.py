"""Built-in differentiable operations, one small Function class per op."""

from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .broadcast import unbroadcast
from .elementwise import Add, Div, Exp, Log, Mul, Neg, Pow, Sqrt, Sub
from .loss import CrossEntropy
from .matmul import Linear, MatMul
from .reduce import Max, MaxDim, Mean, Sum
from .shape import Cast, GetItem, Reshape, ToDevice, Transpose

__all__ = [
    "Add",
    "Cast",
    "CrossEntropy",
    "Div",
    "Exp",
    "GetItem",
    "Linear",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxDim",
    "Mean",
    "Mul",
    "Neg",
    "Pow",
    "ReLU",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Sqrt",
    "Sub",
    "Sum",
    "Tanh",
    "ToDevice",
    "Transpose",
    "unbroadcast",
]
