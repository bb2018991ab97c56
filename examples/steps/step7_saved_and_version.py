"""Step 7: what backward needs is saved in forward, and an in-place change must not go unseen.

    python examples/steps/step7_saved_and_version.py

z = x * y needs y for dz/dx and x for dz/dy, so the multiply keeps them until backward. If the
program then changes y in place (y.mul_(0)), a backward that used the kept tensor would compute
with the new values and give a silently wrong gradient. So every tensor carries a version counter
that each in-place change increments; saving records the version, and backward compares: a
different version raises instead. In minigrad: `SavedTensor.unpack` (minigrad/engine/function.py)
checks the version, and `_bump_version` (minigrad/tensor.py) counts the changes.
"""

from __future__ import annotations


class Saved:
    """A kept value and the version it had when it was kept."""

    def __init__(self, box: list, version: list):
        self.box, self.version, self.seen = box, version, version[0]

    def unpack(self) -> float:
        if self.version[0] != self.seen:
            raise RuntimeError("one of the variables needed for gradient computation has been "
                               f"modified by an inplace operation: version {self.version[0]}, "
                               f"saved at {self.seen}")
        return self.box[0]


def mul_then_change(check: bool) -> float:
    """dz/dx for z = x * y with y = 4, after y is changed in place to 0 (with or without the
    version check)."""
    y, y_version = [4.0], [0]
    saved_y = Saved(y, y_version)
    y[0] *= 0.0  # y.mul_(0): an in-place change...
    y_version[0] += 1  # ...counted
    return saved_y.unpack() if check else saved_y.box[0]  # dz/dx = y, as forward saw it: 4


def main() -> None:
    print("without the check, dz/dx =", mul_then_change(check=False), "(it should be 4)")
    try:
        mul_then_change(check=True)
    except RuntimeError as error:
        print("with it:", error)
    import minigrad as mg

    x = mg.tensor(2.0, requires_grad=True)
    y = mg.tensor(4.0, requires_grad=True) * 1.0  # (a leaf that requires grad refuses mul_)
    z = x * y
    y.mul_(0.0)
    try:
        z.backward()
    except RuntimeError as error:
        print("minigrad:", str(error).split(" It was saved")[0])


if __name__ == "__main__":
    main()
