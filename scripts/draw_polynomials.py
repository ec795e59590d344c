"""Fit the polynomials of the noise generator's Box-Muller transform (crates/gaincell-chip/src/draw.rs).

Prints the coefficients as Rust constants, highest degree first (the order of the Horner chains), and the
worst error of each fit on a dense grid in float64. Least squares on Chebyshev nodes, near minimax.

    python3 scripts/draw_polynomials.py
"""

import numpy as np


def fit(f, lo, hi, powers, n=4000):
    """Least-squares coefficients of sum c_k x^powers[k] to f on [lo, hi] (Chebyshev nodes)."""
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
    a = np.stack([x**p for p in powers], axis=1)
    c, *_ = np.linalg.lstsq(a, f(x), rcond=None)
    grid = np.linspace(lo, hi, 200001)
    err = np.max(np.abs(np.stack([grid**p for p in powers], axis=1) @ c - f(grid)))
    return c, err


def show(name, coeffs, err):
    print(f"// {name}: max error {err:.2e}")
    print(f"const {name}: [f32; {len(coeffs)}] = [")
    for c in coeffs[::-1]:
        print(f"    {np.float32(c)!r:}".replace("np.float32(", "").replace(")", "") + ",")
    print("];")


# -2 ln(1 + t) / t for the mantissa 1 + t in [0.75, 1.5), degree 7 (so -2 ln m = t Q(t) is exact at m = 1).
c, e = fit(lambda t: -2 * np.log1p(t) / np.where(t == 0, 1, t) + np.where(t == 0, -2, 0), -0.25, 0.5, range(8))
show("NEG2_LN1P", c, e)
# sin(phi) / phi for phi in [-pi/4, pi/4], in phi^2 (odd polynomial of degree 7).
q = (np.pi / 4) ** 2
c, e = fit(lambda s: np.sin(np.sqrt(s)) / np.sqrt(s), 1e-12, q, range(4))
show("SIN", c, e)
# cos(phi) in phi^2 (even polynomial of degree 6).
c, e = fit(lambda s: np.cos(np.sqrt(s)), 0.0, q, range(4))
show("COS", c, e)
