"""Reference values for `src/image/metrics.rs`: PRDC from the `prdc` package, Fréchet from scipy.

Usage: python3 notebooks/prdc_reference.py

Builds a small fixed feature set (20 real and 16 fake rows of 3 features, every value a
multiple of 1/256 so that it is exact in f32, f64 and the printed decimal), and prints it as
Rust arrays together with:

- precision, recall, density and coverage from `prdc.compute_prdc` (Naeem et al. 2020, the
  authors' reference implementation) for k = 1, 2 and 3;
- the Fréchet distance between the Gaussians fitted to both sets, computed as pytorch-fid does
  it (`np.cov` with n - 1, `scipy.linalg.sqrtm` of the covariance product).

PRDC compares distances with radii strictly, so a tie flips a count; the script checks that no
distance lies within a relative 1e-6 of a radius, which keeps f32 (the reference) and f64
(synth) on the same side of every comparison. The arrays and numbers printed are pasted into
`reference_values_match_the_python_packages` in `src/image/metrics.rs`.
Needs `pip install prdc scipy` (prdc 0.2 pulls numpy and scikit-learn).
"""

import contextlib
import io

import numpy as np
import scipy.linalg
from prdc import compute_prdc
from sklearn.metrics import pairwise_distances

rng = np.random.default_rng(20200521)
real = np.round(rng.normal(0.0, 1.0, size=(20, 3)) * 256) / 256
fake = np.round(rng.normal(0.4, 1.2, size=(16, 3)) * 256) / 256
real32, fake32 = real.astype(np.float32), fake.astype(np.float32)


def kth_radii(features, k):
    distances = pairwise_distances(features, features)
    return np.sort(distances, axis=1)[:, k]


def check_margins(k):
    cross = pairwise_distances(real, fake)
    radii = [kth_radii(real, k)[:, None], kth_radii(fake, k)[None, :]]
    for radius in radii:
        gap = np.abs(cross - radius) / np.maximum(radius, 1e-12)
        assert gap.min() > 1e-6, f"k = {k}: a distance ties with a radius"


def rust_array(name, values):
    rows = "\n".join("    " + " ".join(f"{float(v)!r}," for v in row) for row in values)
    return f"#[rustfmt::skip]\n#[allow(clippy::excessive_precision)]\nconst {name}: [f32; {values.size}] = [\n{rows}\n];"


def frechet(a, b):
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    sigma1, sigma2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root)


print(rust_array("REAL", real))
print(rust_array("FAKE", fake))
for k in (1, 2, 3):
    check_margins(k)
    with contextlib.redirect_stdout(io.StringIO()):
        scores = compute_prdc(real32, fake32, nearest_k=k)
    values = ", ".join(
        f"{float(scores[name])!r}" for name in ("precision", "recall", "density", "coverage")
    )
    print(f"k = {k}: precision, recall, density, coverage = {values}")
print(f"frechet = {float(frechet(real, fake))!r}")
