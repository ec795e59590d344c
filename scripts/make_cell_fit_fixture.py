#!/usr/bin/env python3
"""Regenerate crates/gaincell/tests/fixtures/cell-fit/: independent numpy fits that
`crates/gaincell/tests/cli_cell_fit.rs` checks `gaincell cell fit` against.

  authors_fit.json   numpy fits of the reference's SPICE I-V sweep (../shared/data/spice/authors_gain_cell_iv.csv,
                     or $GAINCELL_SHARED/data/spice/...): the 1-D cubic in y = v_store - 0.45 at v_in = 0.9 V (the
                     paper's cell) and the 2-D fit over every row. Derived numbers only: the sweep itself is not
                     copied into the repository. Skipped, with a message, when the shared folder is absent.
  synthetic_iv.csv   a small synthetic table (a known 2-D polynomial in y and v_in plus tiny noise; 5 read voltages
                     x 60 stored voltages), columns v_store_v, v_in_v, i_out_a.
  synthetic_fit.json numpy fits of synthetic_iv.csv: 1-D (unweighted and weighted) at v_in = 0.9 V, and 2-D.

Every fit is on the numbers as the CSV reader gives them (currents in A times 1e6 = uA, voltages in V).
The weighting is gaincell's: w = exp(-(d / sigma)^2 / 2), d the distance from v_store to the nearest level of
the key DAC (3 bits on [0, 0.9] V: k * 0.9 / 7), sigma a quarter of the level spacing.

    python3 scripts/make_cell_fit_fixture.py
"""
import json
import os
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/gaincell/tests/fixtures/cell-fit"
OFFSET = 0.45
V_IN = 0.9
DEGREE = 3
DEGREE_V_IN = 3


def read_csv(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return a[:, 0], a[:, 1], a[:, 2] * 1e6


def weights(v_store):
    step = 0.9 / 7
    levels = np.arange(8) * step
    d = np.min(np.abs(v_store[:, None] - levels[None, :]), axis=1)
    return np.exp(-0.5 * (d / (step / 4)) ** 2)


def fit_1d(v_store, v_in, i_ua, weighted=False):
    sel = np.abs(v_in - V_IN) <= 1e-9
    y, i = v_store[sel] - OFFSET, i_ua[sel]
    # np.polyfit's w multiplies the unsquared residual: sqrt of gaincell's weight on the squared one.
    w = np.sqrt(weights(v_store[sel])) if weighted else None
    c = np.polyfit(y, i, DEGREE, w=w)[::-1]
    r = np.polyval(c[::-1], y) - i
    r2 = 1 - np.sum(r**2) / np.sum((i - i.mean()) ** 2)
    return {
        "coefficients": c.tolist(),
        "n_points": int(sel.sum()),
        "rms_ua": float(np.sqrt(np.mean(r**2))),
        "max_abs_ua": float(np.max(np.abs(r))),
        "r_squared": float(r2),
    }


def fit_2d(v_store, v_in, i_ua):
    y = v_store - OFFSET
    cols = [y**p * v_in**q for p in range(DEGREE + 1) for q in range(DEGREE_V_IN + 1)]
    a = np.stack(cols, axis=1)
    c, *_ = np.linalg.lstsq(a, i_ua, rcond=None)
    c = c.reshape(DEGREE + 1, DEGREE_V_IN + 1)
    r = a @ c.reshape(-1) - i_ua
    collapsed = [float(sum(c[p, q] * V_IN**q for q in range(DEGREE_V_IN + 1))) for p in range(DEGREE + 1)]
    return {
        "coefficients_2d": c.tolist(),
        "degree_v_in": DEGREE_V_IN,
        "n_points": int(len(i_ua)),
        "rms_ua": float(np.sqrt(np.mean(r**2))),
        "collapsed_at_v_in": collapsed,
    }


def write(name, obj):
    (OUT / name).write_text(json.dumps(obj, indent=2) + "\n")
    print("wrote", OUT / name)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    shared = pathlib.Path(os.environ.get("GAINCELL_SHARED", ROOT.parent / "shared"))
    authors = shared / "data/spice/authors_gain_cell_iv.csv"
    if authors.is_file():
        vs, vi, i = read_csv(authors)
        write(
            "authors_fit.json",
            {
                "source": "../shared/data/spice/authors_gain_cell_iv.csv (not in the repository)",
                "v_in": V_IN,
                "offset": OFFSET,
                "degree": DEGREE,
                "paper": [0.52136, 13.6123, -2.62045, 46.0548],
                "fit_1d": fit_1d(vs, vi, i),
                "fit_2d": fit_2d(vs, vi, i),
            },
        )
    else:
        print(f"{authors} is absent: authors_fit.json not regenerated")

    rng = np.random.default_rng(17)
    true = np.array(
        [
            [0.4, 0.1, 0.05, 0.02],
            [6.0, 5.0, 3.0, -1.0],
            [-2.0, 1.0, -0.5, 0.3],
            [20.0, 15.0, 8.0, 2.0],
        ]
    )
    rows = []
    for v in [0.5, 0.6, 0.7, 0.8, 0.9]:
        for s in np.linspace(0.0, 0.9, 60):
            y = s - OFFSET
            i_ua = sum(true[p, q] * y**p * v**q for p in range(4) for q in range(4))
            i_ua += rng.normal(0.0, 1e-3)
            rows.append((float(s), float(v), float(i_ua * 1e-6)))
    csv = OUT / "synthetic_iv.csv"
    with open(csv, "w") as f:
        f.write("v_store_v,v_in_v,i_out_a\n")
        for s, v, i in rows:
            f.write(f"{s!r},{v!r},{i!r}\n")
    print("wrote", csv)
    vs, vi, i = read_csv(csv)
    write(
        "synthetic_fit.json",
        {
            "v_in": V_IN,
            "offset": OFFSET,
            "degree": DEGREE,
            "true_2d": true.tolist(),
            "fit_1d": fit_1d(vs, vi, i),
            "fit_1d_weighted": fit_1d(vs, vi, i, weighted=True),
            "fit_2d": fit_2d(vs, vi, i),
        },
    )


if __name__ == "__main__":
    main()
