"""Golden fixtures for `synth report`, scored by SDMetrics 0.32 itself.

Run from the repository root:

    /tmp/ref-venv/bin/python notebooks/sdmetrics_golden.py

(any Python with `pip install sdmetrics==0.32.0 pyarrow` will do). It is deterministic: a fixed
numpy seed draws the tables, and the tables are small enough (400 and 300 rows) that SDMetrics'
QualityReport never subsamples (it only does so above 50,000 rows), so two runs write identical
files. It writes, under tests/fixtures/report/:

- real.parquet (400 rows) and synthetic.parquet (300 rows): columns id, amount, age, balance,
  opened (Date32), grade (Utf8), is_fraud (Boolean), n_cards (Int64 treated as categorical);
- schema.toml: synth's schema of those columns;
- sdmetrics_expected.json: SDMetrics' scores of the two files as read back from Parquet. The
  QualityReport is run twice: with its default thresholds (a numeric pair counts only when the
  real |Pearson r| > 0.5, any other pair only when the real Cramer's V > 0.3; this is what
  `quality` reports) and with both thresholds at 0 (every pair counts: `*_unthresholded`).
  Coverage comes from the single-column metrics RangeCoverage, CategoryCoverage and
  MissingValueSimilarity. The key "tiny" holds a hand-checkable case with its data inline.

Date32 columns come back from Parquet as Python dates; they are converted to datetime64[ns]
before scoring, since SDMetrics wants datetime columns as pandas datetimes.
"""

import json
import math
import pathlib
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

warnings.filterwarnings("ignore")  # the single-table report warns it is deprecated

import sdmetrics  # noqa: E402
from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
from sdmetrics.reports.single_table import QualityReport
from sdmetrics.reports.single_table._properties import ColumnPairTrends
from sdmetrics.single_column import (
    CategoryCoverage,
    KSComplement,
    MissingValueSimilarity,
    RangeCoverage,
    TVComplement,
)

OUT = pathlib.Path("tests/fixtures/report")
SEED = 20240611
N_REAL, N_SYNTH = 400, 300

# name, synth kind, Arrow dtype, SDMetrics sdtype
COLUMNS = [
    ("id", "id", "Int64", "id"),
    ("amount", "continuous", "Float64", "numerical"),
    ("age", "integer", "Int64", "numerical"),
    ("balance", "continuous", "Float64", "numerical"),
    ("opened", "datetime", "Date32", "datetime"),
    ("grade", "categorical", "Utf8", "categorical"),
    ("is_fraud", "categorical", "Boolean", "categorical"),
    ("n_cards", "categorical", "Int64", "categorical"),
]
METADATA = {
    "primary_key": "id",
    "columns": {name: {"sdtype": sdtype} for name, _, _, sdtype in COLUMNS},
}


def with_nulls(rng, values, share):
    """A mask of exactly round(share * n) nulls at random places."""
    mask = np.zeros(len(values), dtype=bool)
    mask[rng.choice(len(values), size=round(share * len(values)), replace=False)] = True
    return mask


def draw(rng, n, synthetic):
    """One table as a pyarrow Table; `synthetic` shifts and distorts the distributions."""
    z = rng.standard_normal(n)
    if synthetic:
        # shifted up, a longer right tail, and nothing below 8: narrower than real at the
        # bottom, wider at the top
        amount = 8.0 + np.exp(3.1 + 0.95 * z)
    else:
        amount = np.exp(3.0 + 0.8 * z)
    amount = np.round(amount, 2)

    age_noise = rng.normal(0, 11 if synthetic else 9, n)
    age = np.clip(np.round(42 + 6 * z + age_noise), 18, 90).astype(np.int64)

    slope = 1.6 if synthetic else 2.0
    balance = np.round(slope * amount + rng.normal(0, 25 if synthetic else 15, n) + 100, 2)

    start = np.datetime64("2015-01-01", "D").astype(np.int64)
    span = 3652 if not synthetic else 3300
    offset = 200 if synthetic else 0
    opened_days = (start + offset + np.floor(rng.beta(2.0, 1.5, n) * span)).astype(np.int32)

    real_levels = np.array(["A", "B", "C", "D", "E", "F"])
    synth_levels = np.array(["A", "B", "C", "D", "E", "G"])  # F missing, G new
    levels = synth_levels if synthetic else real_levels
    # grade tracks amount: low amounts get early letters
    score = z + rng.normal(0, 0.6 if not synthetic else 0.9, n)
    cut = np.quantile(score, [0.15, 0.35, 0.6, 0.8, 0.93])
    grade = levels[np.searchsorted(cut, score)].astype(object)

    fraud_p = 1 / (1 + np.exp(-(-2.6 + 1.2 * z))) if not synthetic else np.full(n, 0.14)
    is_fraud = rng.random(n) < fraud_p

    card_p = np.clip((age - 18) / 72, 0, 1)
    n_cards = (1 + rng.binomial(3, 0.15 + 0.7 * card_p)).astype(np.int64)

    amount_nulls = with_nulls(rng, amount, 0.10 if synthetic else 0.05)
    balance_nulls = with_nulls(rng, balance, 0.06 if synthetic else 0.03)
    opened_nulls = with_nulls(rng, opened_days, 0.03 if synthetic else 0.02)
    grade_nulls = with_nulls(rng, grade, 0.07 if synthetic else 0.04)
    grade[grade_nulls] = None

    ids = np.arange(n, dtype=np.int64) + (1_000_000 if synthetic else 1)
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "amount": pa.array(amount, pa.float64(), mask=amount_nulls),
        "age": pa.array(age, pa.int64()),
        "balance": pa.array(balance, pa.float64(), mask=balance_nulls),
        "opened": pa.array(opened_days, pa.date32(), mask=opened_nulls),
        "grade": pa.array(list(grade), pa.string()),
        "is_fraud": pa.array(is_fraud, pa.bool_()),
        "n_cards": pa.array(n_cards, pa.int64()),
    })


def read_back(path):
    frame = pq.read_table(path).to_pandas()
    for name, _, dtype, _ in COLUMNS:
        if dtype == "Date32":
            frame[name] = pd.to_datetime(frame[name])  # datetime64[ns], NaT for nulls
    return frame


def num(value):
    """A JSON-safe float: None for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if pd.isna(value):
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    return float(value)


def run_report(real, synthetic, metadata, thresholds):
    report = QualityReport()
    if not thresholds:
        report.real_correlation_threshold = 0
        report.real_association_threshold = 0
    report.generate(real, synthetic, metadata, verbose=False)
    return report


def pair_rows(report):
    details = report.get_details("Column Pair Trends")
    assert "Error" not in details.columns, details
    rows = []
    for _, row in details.iterrows():
        rows.append({
            "columns": [row["Column 1"], row["Column 2"]],
            "metric": row["Metric"],
            "score": num(row["Score"]),
            "real_correlation": num(row["Real Correlation"]),
            "synthetic_correlation": num(row["Synthetic Correlation"]),
            "real_association": num(row["Real Association"]),
            "meets_threshold": bool(row["Meets Threshold?"]),
        })
    return rows


def expected(real, synthetic):
    report = run_report(real, synthetic, METADATA, thresholds=True)
    open_report = run_report(real, synthetic, METADATA, thresholds=False)
    properties = dict(report.get_properties().itertuples(index=False))
    open_properties = dict(open_report.get_properties().itertuples(index=False))

    shapes = report.get_details("Column Shapes")
    assert "Error" not in shapes.columns, shapes
    columns = {}
    for _, row in shapes.iterrows():
        name = row["Column"]
        sdtype = METADATA["columns"][name]["sdtype"]
        entry = {"sdtype": sdtype, "shape_metric": row["Metric"], "shape": num(row["Score"])}
        if sdtype in ("numerical", "datetime"):
            entry["range_coverage"] = num(RangeCoverage.compute(real[name], synthetic[name]))
        else:
            entry["category_coverage"] = num(
                CategoryCoverage.compute(real[name], synthetic[name])
            )
        entry["missing_value_similarity"] = num(
            MissingValueSimilarity.compute(real[name], synthetic[name])
        )
        columns[name] = entry

    pairs = pair_rows(report)
    for pair, open_pair in zip(pairs, pair_rows(open_report)):
        assert pair["columns"] == open_pair["columns"]
        pair["score_unthresholded"] = open_pair["score"]

    return {
        "sdmetrics_version": sdmetrics.__version__,
        "rows": {"real": len(real), "synthetic": len(synthetic)},
        "thresholds": {"real_correlation": report.real_correlation_threshold,
                       "real_association": report.real_association_threshold},
        "quality": num(report.get_score()),
        "column_shapes": num(properties["Column Shapes"]),
        "column_pair_trends": num(properties["Column Pair Trends"]),
        "quality_unthresholded": num(open_report.get_score()),
        "column_pair_trends_unthresholded": num(open_properties["Column Pair Trends"]),
        "columns": columns,
        "pairs": pairs,
    }


def tiny():
    """10 real rows and 8 synthetic rows, small enough to check by hand."""
    real = pd.DataFrame({
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        "y": [2.0, 1.0, 4.0, 3.0, 6.0, None, 8.0, 7.0, 10.0, 9.0],
        "c": ["a", "a", "b", "a", "b", "c", None, "c", "c", "b"],
    })
    synthetic = pd.DataFrame({
        "x": [2.0, 3.0, 3.0, 5.0, 6.0, 8.0, 11.0, 12.0],
        "y": [1.0, 5.0, 2.0, 6.0, 4.0, 9.0, 9.0, 14.0],
        "c": ["a", "b", "b", "d", "c", "c", None, "a"],
    })
    metadata = {"columns": {"x": {"sdtype": "numerical"}, "y": {"sdtype": "numerical"},
                            "c": {"sdtype": "categorical"}}}
    report = run_report(real, synthetic, metadata, thresholds=False)
    trends = report.get_details("Column Pair Trends")
    contingency_report = trends[(trends["Column 1"] == "x") & (trends["Column 2"] == "c")]
    property_ = ColumnPairTrends()
    real_bins, real_edges = property_._discretize_column("x", real["x"])
    synth_bins, synth_edges = property_._discretize_column("x", synthetic["x"])
    return {
        "real": {col: [num(v) if col != "c" else v for v in real[col].tolist()]
                 for col in real.columns},
        "synthetic": {col: [num(v) if col != "c" else v for v in synthetic[col].tolist()]
                      for col in synthetic.columns},
        "sdtypes": {"x": "numerical", "y": "numerical", "c": "categorical"},
        "ks_complement_x": num(KSComplement.compute(real["x"], synthetic["x"])),
        "ks_complement_y": num(KSComplement.compute(real["y"], synthetic["y"])),
        "tv_complement_c": num(TVComplement.compute(real["c"], synthetic["c"])),
        "correlation_similarity_x_y": num(
            CorrelationSimilarity.compute(real[["x", "y"]], synthetic[["x", "y"]])
        ),
        # As the QualityReport bins a numeric column for a numeric-categorical pair: ten
        # equal-width bins over each table's own non-null range, np.digitize labels 0..11.
        "contingency_similarity_x_c": num(contingency_report["Score"].iloc[0]),
        "x_bins_report": {"real_edges": real_edges.tolist(), "real": real_bins.tolist(),
                          "synthetic_edges": synth_edges.tolist(),
                          "synthetic": synth_bins.tolist()},
        # ContingencySimilarity called on its own with continuous_column_names=["x"]: edges
        # from the real column only, outer edges widened to -inf/+inf.
        "contingency_similarity_x_c_real_edges": num(ContingencySimilarity.compute(
            real[["x", "c"]], synthetic[["x", "c"]], continuous_column_names=["x"]
        )),
        "quality_unthresholded": num(report.get_score()),
    }


def schema_toml():
    lines = ["# Schema of tests/fixtures/report/{real,synthetic}.parquet, written by",
             "# notebooks/sdmetrics_golden.py.", ""]
    for name, kind, dtype, _ in COLUMNS:
        lines += ["[[columns]]", f'name = "{name}"', f'kind = "{kind}"', f'dtype = "{dtype}"', ""]
    return "\n".join(lines)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    pq.write_table(draw(rng, N_REAL, synthetic=False), OUT / "real.parquet")
    pq.write_table(draw(rng, N_SYNTH, synthetic=True), OUT / "synthetic.parquet")
    (OUT / "schema.toml").write_text(schema_toml())

    real, synthetic = read_back(OUT / "real.parquet"), read_back(OUT / "synthetic.parquet")
    result = expected(real, synthetic)
    result["tiny"] = tiny()
    text = json.dumps(result, indent=2, allow_nan=False) + "\n"
    (OUT / "sdmetrics_expected.json").write_text(text)
    print(json.dumps({k: result[k] for k in ("quality", "column_shapes", "column_pair_trends",
                                             "quality_unthresholded",
                                             "column_pair_trends_unthresholded")}))


if __name__ == "__main__":
    main()
