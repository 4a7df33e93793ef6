"""Times the Python CTGAN reference on one table, for `cargo bench --bench spine`.

Usage: python3 notebooks/ctgan_reference.py DATA.parquet EPOCHS
Prints one JSON object: seconds per epoch (a fit of EPOCHS less a fit of one, per epoch), steps per
epoch and seconds to sample 100,000 rows. Trains on the first 80% of rows, as the bench does,
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
frame = pq.read_table(path).to_pandas()
train = frame.iloc[: len(frame) * 4 // 5]
discrete = [c for c in train.columns if train[c].dtype == object or train[c].nunique() <= 20]

def fit_seconds(epoch_count):
    """Wall seconds of a whole fit, data transform included."""
    started = time.perf_counter()
    model = CTGAN(epochs=epoch_count, verbose=False)
    model.fit(train, discrete)
    return time.perf_counter() - started, model


# The difference between a long and a one-epoch fit leaves out the data transform.
one, _ = fit_seconds(1)
total, model = fit_seconds(epochs)
per_epoch = (total - one) / max(epochs - 1, 1)
started = time.perf_counter()
model.sample(100_000)
sample_seconds = time.perf_counter() - started
print(json.dumps({
    "seconds_per_epoch": per_epoch,
    "steps_per_epoch": max(len(train) // 500, 1),
    "sample_100k_seconds": sample_seconds,
}))
