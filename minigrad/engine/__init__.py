"""The engine: Function and Context (what one op call records), saved tensors with their version
check, the tape and backward, autograd.grad's entry points, and anomaly mode. Built on Tensor;
the ops are built on it. The names a user imports are in minigrad.autograd."""
