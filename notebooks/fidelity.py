"""Scores synth's fidelity with SDMetrics' QualityReport, as BENCHMARKS.md reports it.

Usage: python3 notebooks/fidelity.py SYNTH_BINARY DATA.parquet [SYNTH FIT FLAGS...]

Splits the table 80/20 with a fixed seed, fits synth on the 80% train split with the given
flags (default settings and seed 1 when none), generates as many rows as the train split has, and prints
SDMetrics' quality score (mean of column shapes and column pair trends) of the synthetic rows
against the train split, and of the 20% holdout against the train split for scale.
Metadata: string and boolean columns are categorical, numbers numerical, timestamps datetime.
Needs `pip install sdmetrics==0.32.0 pyarrow`.
"""

import json
import pathlib
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pyarrow.parquet as pq
from sdmetrics.reports.single_table import QualityReport

binary, data, flags = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
frame = pq.read_table(data).to_pandas()
shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
cut = len(frame) * 4 // 5
train, holdout = shuffled.iloc[:cut], shuffled.iloc[cut:]


def metadata(table):
    columns = {}
    for name, dtype in table.dtypes.items():
        if pd.api.types.is_datetime64_any_dtype(dtype):
            columns[name] = {"sdtype": "datetime"}
        elif pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            columns[name] = {"sdtype": "categorical"}
        else:
            columns[name] = {"sdtype": "numerical"}
    return {"columns": columns}


def quality(real, synthetic):
    report = QualityReport()
    report.generate(real, synthetic, metadata(real), verbose=False)
    return report.get_score()


with tempfile.TemporaryDirectory() as folder:
    folder = pathlib.Path(folder)
    train.to_parquet(folder / "train.parquet", index=False)
    started = time.perf_counter()
    seed = [] if "--seed" in flags else ["--seed", "1"]
    subprocess.run([binary, "-q", "fit", "train.parquet", *seed, *flags], cwd=folder, check=True)
    fit_seconds = time.perf_counter() - started
    subprocess.run([binary, "-q", "generate", "-n", str(len(train)), "--seed", "2"], cwd=folder, check=True)
    synthetic = pq.read_table(folder / "train.synthetic.parquet").to_pandas()

print(json.dumps({
    "data": data.name,
    "flags": " ".join(flags),
    "train_rows": len(train),
    "fit_seconds": round(fit_seconds, 1),
    "synthetic_quality": round(quality(train, synthetic), 3),
    "holdout_quality": round(quality(train, holdout), 3),
}))
