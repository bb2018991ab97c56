"""mg.compile: trace a function (a training step) once, replay it as a flat program.

    compiled.py  mg.compile and its signature guards, check=True
    trace.py     the Tracer: one eager run written down as instructions on slots
    program.py   the Program and its instructions; the replay
    passes.py    rewrites of a program (dead code, fused kernels)

docs/compile.md explains tracing, guards, replay and the passes.
"""

from .compiled import CompileCheckError, Compiled, compile  # noqa: A004
from .trace import TraceError

__all__ = ["compile", "Compiled", "CompileCheckError", "TraceError"]
