"""Benchmark tables for `synth report`, and SDMetrics' time on them.

Usage (from the repository root):

    /tmp/ref-venv/bin/python notebooks/report_bench.py DIR [--rows N] [--sdmetrics]

Writes DIR/real.parquet and DIR/synthetic.parquet, N rows each (default 1,000,000) and 20
columns: ten discrete (d00..d09: strings or int64 with 3 to 50 levels, skewed frequencies, about
1% nulls) and ten float64 (x00..x09: normal, lognormal, exponential, uniform, bimodal, Student t,
gamma, beta, and two linear mixtures, so several pairs correlate, about 1% nulls). Discrete and
numerical columns share latent factors, so some mixed pairs are associated too. The synthetic
table is drawn by the same recipe with perturbed parameters. Also writes DIR/schema.toml in
synth's schema format, and DIR/holdout.parquet, more real rows by the real recipe
(--holdout-rows, default 200,000). Everything is seeded: the same N gives the same files;
--reuse keeps files already there.

With --sdmetrics it then reads both files back and times SDMetrics 0.32's single-table
QualityReport.generate on them (default settings, so above 50,000 rows it subsamples the
contingency pairs; numpy's global seed is fixed first so that subsample repeats), and prints the
seconds and the scores as JSON. Needs `pip install sdmetrics==0.32.0 pyarrow`.
"""

import argparse
import json
import pathlib
import time
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 7
NULL_SHARE = 0.01
# (name, levels, strings?)
DISCRETE = [
    ("d00", 3, True), ("d01", 5, False), ("d02", 8, True), ("d03", 12, False),
    ("d04", 20, True), ("d05", 50, False), ("d06", 4, True), ("d07", 7, False),
    ("d08", 30, True), ("d09", 10, False),
]
NUMERIC = [f"x{i:02d}" for i in range(10)]


def nulls(rng, n, share=NULL_SHARE):
    return rng.random(n) < share


def discrete_column(rng, n, levels, strings, latent, strength):
    """Skewed levels; `strength` ties the level to the latent factor (0: independent)."""
    weights = 1.0 / np.arange(1, levels + 1) ** 0.8
    cdf = np.cumsum(weights) / weights.sum()
    # a uniform that leans on the latent factor through a normal copula-ish blend
    mix = strength * latent + np.sqrt(1 - strength**2) * rng.standard_normal(n)
    u = 0.5 * (1 + _erf(mix / np.sqrt(2)))
    index = np.minimum(np.searchsorted(cdf, u), levels - 1)
    mask = nulls(rng, n)
    if strings:
        names = pa.array([f"L{i:02d}" for i in range(levels)])
        return names.take(pa.array(index, mask=mask))
    return pa.array(index.astype(np.int64) * 10 + 1, pa.int64(), mask=mask)


def _erf(x):
    # Abramowitz-Stegun 7.1.26, plenty for shaping frequencies
    sign = np.sign(x)
    x = np.abs(x)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return sign * (1 - poly * np.exp(-x * x))


def draw(rng, n, synthetic):
    p = 1.15 if synthetic else 1.0  # spread/shift factor for the synthetic recipe
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    columns = {}
    for i, (name, levels, strings) in enumerate(DISCRETE):
        strength = [0.6, 0.3, 0.0, 0.5, 0.2, 0.4, 0.0, 0.7, 0.1, 0.3][i] / p
        latent = a if i % 2 == 0 else b
        columns[name] = discrete_column(rng, n, levels, strings, latent, strength)
    x = [
        10 + 3 * a * p,                                             # normal
        np.exp(1 + 0.7 * p * (0.8 * b + 0.6 * rng.standard_normal(n))),  # lognormal
        rng.exponential(5 * p, n),                                  # exponential
        rng.uniform(-1, 1 + 0.2 * (p - 1), n),                      # uniform
        np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(3 * p, 1, n)),
        rng.standard_t(4, n) * p,                                   # heavy tails
        rng.gamma(2.0, 2.0 * p, n),                                 # gamma
        100 * rng.beta(2, 5 if not synthetic else 4, n),            # beta, bounded
        0.7 * a + 0.3 * b + 0.4 * p * rng.standard_normal(n),       # mixes a and b
        -0.5 * a + 0.8 * b / p + 0.5 * rng.standard_normal(n),      # mixes a and b
    ]
    for name, values in zip(NUMERIC, x):
        columns[name] = pa.array(values, pa.float64(), mask=nulls(rng, n))
    return pa.table(columns)


def schema_toml():
    lines = ["# Schema of the report benchmark tables, written by notebooks/report_bench.py.", ""]
    for name, _, strings in DISCRETE:
        dtype = "Utf8" if strings else "Int64"
        lines += ["[[columns]]", f'name = "{name}"', 'kind = "categorical"', f'dtype = "{dtype}"', ""]
    for name in NUMERIC:
        lines += ["[[columns]]", f'name = "{name}"', 'kind = "continuous"', 'dtype = "Float64"', ""]
    return "\n".join(lines)


def time_sdmetrics(out):
    warnings.filterwarnings("ignore")
    from sdmetrics.reports.single_table import QualityReport

    start = time.perf_counter()
    real = pq.read_table(out / "real.parquet").to_pandas()
    synthetic = pq.read_table(out / "synthetic.parquet").to_pandas()
    read_seconds = time.perf_counter() - start
    metadata = {"columns": {name: {"sdtype": "categorical"} for name, _, _ in DISCRETE}}
    metadata["columns"].update({name: {"sdtype": "numerical"} for name in NUMERIC})

    np.random.seed(0)  # pandas' DataFrame.sample in the contingency subsample draws from it
    report = QualityReport()
    start = time.perf_counter()
    report.generate(real, synthetic, metadata, verbose=False)
    seconds = time.perf_counter() - start
    properties = dict(report.get_properties().itertuples(index=False))
    print(json.dumps({
        "rows": len(real),
        "read_seconds": round(read_seconds, 3),
        "generate_seconds": round(seconds, 3),
        "quality": float(report.get_score()),
        "column_shapes": float(properties["Column Shapes"]),
        "column_pair_trends": float(properties["Column Pair Trends"]),
        "pairs_contributing": int(
            report.get_details("Column Pair Trends")["Meets Threshold?"].fillna(False).sum()
        ),
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--holdout-rows", type=int, default=200_000)
    parser.add_argument("--sdmetrics", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the tables already in DIR instead of writing them again")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    names = ["real.parquet", "synthetic.parquet", "holdout.parquet", "schema.toml"]
    if not (args.reuse and all((args.dir / name).exists() for name in names)):
        rng = np.random.default_rng(SEED)
        start = time.perf_counter()
        pq.write_table(draw(rng, args.rows, synthetic=False), args.dir / "real.parquet")
        pq.write_table(draw(rng, args.rows, synthetic=True), args.dir / "synthetic.parquet")
        pq.write_table(draw(rng, args.holdout_rows, synthetic=False), args.dir / "holdout.parquet")
        (args.dir / "schema.toml").write_text(schema_toml())
        print(f"wrote {args.rows} rows x 20 columns (and a {args.holdout_rows}-row holdout) "
              f"to {args.dir} in {time.perf_counter() - start:.1f}s")

    if args.sdmetrics:
        time_sdmetrics(args.dir)


if __name__ == "__main__":
    main()
