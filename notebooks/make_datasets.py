"""Builds the samples shipped in `datasets/` from the full tables in `../shared/datasets/`.

Run from the repository root: `python3 notebooks/make_datasets.py` (needs `pyarrow`).
The sample is a seeded uniform draw of rows without replacement, kept in the source order,
so it spans the whole time range and keeps the fraud share of the full log.
"""

import pathlib
import shutil

import random

import pyarrow.parquet as pq

SHARED = pathlib.Path("../shared/datasets")
OUT = pathlib.Path("datasets")
SAMPLE_ROWS = 100_000
SEED = 20261203

table = pq.read_table(SHARED / "transactions/fdh_simulated_transactions.parquet")
rows = sorted(random.Random(SEED).sample(range(table.num_rows), SAMPLE_ROWS))
pq.write_table(table.take(rows), OUT / "transactions.parquet", compression="zstd")

shutil.copyfile(SHARED / "german_credit.parquet", OUT / "german_credit.parquet")
