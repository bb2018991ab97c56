"""Step 1: a derivative is a slope you can measure. Nudge x by h and watch the output.

    python examples/steps/step1_finite_differences.py

f(x) = x**3 - 2x has the slope f'(x) = 3x**2 - 2. Moving x by a small h moves f by about
f'(x) * h, so (f(x + h) - f(x - h)) / (2h) measures the slope without any calculus: the
central difference, accurate to about h**2. Too large an h measures the curve's bend; too small
an h drowns in rounding (float64 keeps about 16 digits). Autograd computes the exact slope; this
is how we check it. In minigrad: `mg.gradcheck` (minigrad/autograd/gradcheck.py) does this for
every element of every input of a function.
"""

from __future__ import annotations


def f(x: float) -> float:
    return x**3 - 2 * x


def slope_by_hand(x: float) -> float:
    """f'(x), by calculus."""
    return 3 * x**2 - 2


def central_difference(fn, x: float, h: float = 1e-5) -> float:
    """(fn(x + h) - fn(x - h)) / 2h: the slope, measured."""
    return (fn(x + h) - fn(x - h)) / (2 * h)


def main() -> None:
    x = 1.5
    print(f"f'({x}) by calculus:          {slope_by_hand(x):.10f}")
    for h in (1e-1, 1e-3, 1e-5, 1e-9, 1e-13):
        measured = central_difference(f, x, h)
        error = abs(measured - slope_by_hand(x))
        print(f"measured with h = {h:<6g}: {measured:.10f}  (error {error:.1e})")
    import minigrad as mg

    t = mg.tensor(x, dtype=mg.float64, requires_grad=True)
    f(t).backward()  # the same f, on a tensor: autograd's exact slope
    print(f"minigrad's backward():       {t.grad.item():.10f}")


if __name__ == "__main__":
    main()
