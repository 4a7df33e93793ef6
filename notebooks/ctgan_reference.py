"""Times the Python CTGAN reference on one table, for `cargo bench --bench spine`.

Usage: python3 notebooks/ctgan_reference.py DATA.parquet EPOCHS [SAMPLE_ROWS]
Prints one JSON object: seconds per epoch (mean over the epochs after the first), steps per
epoch and seconds to sample SAMPLE_ROWS rows (default 100,000) into a DataFrame. Trains on the first 80% of rows, as the bench does,
with one torch thread (two threads slow it down badly when the other core is busy).
Needs `pip install ctgan==0.12.1 pyarrow`.
"""

import json
import sys
import time

import pyarrow.parquet as pq
import torch
from ctgan import CTGAN

torch.set_num_threads(1)

path, epochs = sys.argv[1], int(sys.argv[2])
sample_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
frame = pq.read_table(path).to_pandas()
train = frame.iloc[: len(frame) * 4 // 5]
discrete = [c for c in train.columns if train[c].dtype == object or train[c].nunique() <= 20]

import ctgan.synthesizers.ctgan as ctgan_module

stamps = []


class EpochClock:
    """Stands in for CTGAN's tqdm epoch bar and records when each epoch starts and ends."""

    def __init__(self, iterable, *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        for item in self.iterable:
            stamps.append(time.perf_counter())
            yield item
        stamps.append(time.perf_counter())

    def set_description(self, *args, **kwargs):
        pass


ctgan_module.tqdm = EpochClock
model = CTGAN(epochs=epochs, verbose=False)
model.fit(train, discrete)
times = [b - a for a, b in zip(stamps, stamps[1:])]
steady = times[1:] or times
started = time.perf_counter()
model.sample(sample_rows)
sample_seconds = time.perf_counter() - started
print(json.dumps({
    "seconds_per_epoch": sum(steady) / len(steady),
    "steps_per_epoch": max(len(train) // 500, 1),
    "sample_rows": sample_rows,
    "sample_seconds": sample_seconds,
}))
