"""Passes: small functions that rewrite a traced program, each printed in its name.

    dead_code   drop instructions whose results nothing reads

run_all runs them in order and notes their names in program.passes_run; `print(step.program)`
shows the result, and `step.program.before_passes` the program as traced.
"""

from __future__ import annotations

from .program import Backward, Forward, _output_slots, _reads


def run_all(program) -> None:
    for rewrite in (dead_code,):
        rewrite(program)
        program.passes_run.append(rewrite.__name__)
    program.finalize()


def dead_code(program) -> None:
    """Drop a built-in op's Forward or Backward whose outputs no later instruction reads, nor
    the result (a loss computed and never used; a gradient no leaf receives). A Forward whose
    Context a Backward still needs stays; so does anything that writes in place."""
    needed = set(_output_slots(program.output))
    kept = []
    for instruction in reversed(program.instructions):
        if isinstance(instruction, (Forward, Backward)) and _removable(instruction, needed):
            continue
        kept.append(instruction)
        needed.update(_reads(instruction))
        if isinstance(instruction, Backward):
            instruction.forward.keeps_ctx = True  # (its Forward must stay: it is needed)
            needed.add(("ctx", id(instruction.forward)))
    kept.reverse()
    program.instructions[:] = kept


def _removable(instruction, needed: set) -> bool:
    cls = instruction.cls if isinstance(instruction, Forward) else instruction.forward.cls
    if not cls.built_in:
        return False  # a user's Function may do anything
    if isinstance(instruction, Forward):
        if ("ctx", id(instruction)) in needed:
            return False
        if set(instruction.out_slots) & {s for s in instruction.arg_slots if s is not None}:
            return False  # in place
        if instruction.ctx is not None and instruction.ctx._dirty:
            return False
    return not any(s in needed for s in instruction.out_slots if s is not None)

