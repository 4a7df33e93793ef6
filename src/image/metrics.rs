//! Measures of generated images, taken in the feature space of a classifier.
//!
//! Features arrive as row-major `[rows × dim]` f32 matrices, one row per image; this module
//! does not build the classifier. It computes, in f64:
//!
//! - the Fréchet distance between Gaussians fitted to two feature sets, the quantity behind the
//!   FID (Heusel et al. 2017, arXiv 1706.08500): `‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)`, with
//!   unbiased covariances (divided by n − 1). The trace of the root is taken as
//!   `Σ √λ(S Σ₂ S)` with `S = Σ₁^½`, a symmetric positive semi-definite matrix, so it needs only
//!   symmetric eigendecompositions and never a complex root;
//! - precision and recall of k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019,
//!   arXiv 1904.06991) and density and coverage (Naeem et al. 2020, arXiv 2002.09797), with the
//!   definitions of the authors' reference implementation (the `prdc` package, 0.2): a point's
//!   radius is its distance to the k-th nearest other point of its own set, and a point lies in
//!   a ball when its distance is strictly smaller than the radius;
//! - the mean distance between distinct rows of one set, a measure of diversity.
//!
//! Nearest neighbours are exact: every query row is compared with every reference row, through
//! squared distances `‖x‖² + ‖y‖² − 2 x·y` whose dot products come from one matrix product per
//! block of 64 query rows, with blocks spread over rayon's threads. Results are deterministic:
//! nothing is random, every block writes its own rows, and sums run in row order.
//! `notebooks/prdc_reference.py` computes the reference values of the tests with the `prdc`
//! package and scipy.
//!
//! # Limitations
//!
//! - PRDC and the mean distance cost `rows × rows × dim` multiply-adds: about four products of
//!   10,000 × 10,000 rows for PRDC on 10,000 images a side. Memory stays at one block of
//!   distances per thread (64 × the reference rows).
//! - Shapes are the caller's contract: a `dim` of 0, a length that is not a whole number of
//!   rows, too few rows, or `k` of 0 or not below each set's row count panic (see each
//!   function's `# Panics`). Non-finite features give NaN results rather than a panic.
//! - Distances from dot products lose digits when two rows are nearly equal: the squared
//!   distance of two copies of a row comes out within about 1e-16 × ‖x‖² of 0 (clamped at 0),
//!   so a distance between near-duplicates carries an absolute error of about 1e-8 × ‖x‖.
//! - The Fréchet distance of covariances fitted to fewer rows than `dim` is singular but
//!   well-defined; like the FID it is biased upwards at small sample sizes, so values compare
//!   only between sets of equal size. Its eigendecompositions cost O(dim³).

use nalgebra::{DMatrix, Dyn, SymmetricEigen};
use rayon::prelude::*;
use serde::Serialize;

/// Query rows whose distances to the whole reference set one task computes at once.
const QUERY_BLOCK: usize = 64;

/// Mean and covariance of feature rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gaussian {
    /// Mean of each feature, `dim` values.
    pub mean: Vec<f64>,
    /// Unbiased covariance (divided by rows − 1), `dim × dim` values, row-major.
    pub covariance: Vec<f64>,
    /// Number of features.
    pub dim: usize,
}

impl Gaussian {
    /// Fits the mean and unbiased covariance of `features`, a row-major `[rows × dim]` matrix.
    ///
    /// # Panics
    ///
    /// When `dim` is 0, `features.len()` is not a multiple of `dim`, or there are fewer than
    /// two rows.
    pub fn fit(features: &[f32], dim: usize) -> Gaussian {
        let rows = row_count(features, dim);
        assert!(
            rows >= 2,
            "a covariance needs at least two rows, got {rows}"
        );

        let mut mean = vec![0.0f64; dim];
        for row in features.chunks_exact(dim) {
            for (sum, &value) in mean.iter_mut().zip(row) {
                *sum += f64::from(value);
            }
        }
        mean.iter_mut().for_each(|sum| *sum /= rows as f64);

        let centred: Vec<f64> = features
            .chunks_exact(dim)
            .flat_map(|row| {
                row.iter()
                    .zip(&mean)
                    .map(|(&value, m)| f64::from(value) - m)
            })
            .collect();
        // Column-major, so column r of this dim × rows matrix is row r of the features.
        let by_column = DMatrix::from_vec(dim, rows, centred);
        let scatter = &by_column * by_column.transpose();

        let divisor = (rows - 1) as f64;
        let covariance = (0..dim * dim)
            .map(|index| {
                let (i, j) = (index / dim, index % dim);
                (scatter[(i, j)] + scatter[(j, i)]) / 2.0 / divisor
            })
            .collect();
        Gaussian {
            mean,
            covariance,
            dim,
        }
    }

    /// Panics unless the fields agree with `dim`.
    fn check(&self) {
        assert_eq!(self.mean.len(), self.dim, "mean length differs from `dim`");
        assert_eq!(
            self.covariance.len(),
            self.dim * self.dim,
            "covariance length differs from `dim × dim`"
        );
    }

    /// The covariance as a matrix.
    fn covariance_matrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.dim, self.dim, &self.covariance)
    }
}

/// Fréchet distance `‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)` between two Gaussians.
///
/// `Tr((Σ₁Σ₂)^½)` is computed as `Σ √λ` over the eigenvalues of the symmetric matrix
/// `S Σ₂ S`, where `S = Σ₁^½` comes from the symmetric eigendecomposition of `Σ₁`; negative
/// eigenvalues (rounding, or a covariance that is not quite positive semi-definite) count as 0
/// in both steps. Rounding can push a distance of zero slightly below 0; it is clamped at 0.
/// Non-finite means or covariances give NaN.
///
/// ```
/// use synth::image::metrics::{Gaussian, frechet_distance};
///
/// let a = Gaussian { mean: vec![0.0, 0.0], covariance: vec![1.0, 0.0, 0.0, 4.0], dim: 2 };
/// let b = Gaussian { mean: vec![3.0, 0.0], covariance: vec![1.0, 0.0, 0.0, 1.0], dim: 2 };
/// // 3² for the means, (√4 − √1)² for the second variance.
/// assert!((frechet_distance(&a, &b) - 10.0).abs() < 1e-12);
/// ```
///
/// # Panics
///
/// When the two dimensions differ, or a Gaussian's fields do not match its `dim`.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    a.check();
    b.check();
    assert_eq!(a.dim, b.dim, "the Gaussians have different dimensions");
    let finite = |g: &Gaussian| g.mean.iter().chain(&g.covariance).all(|x| x.is_finite());
    if !finite(a) || !finite(b) {
        return f64::NAN;
    }

    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let first = a.covariance_matrix();
    let second = b.covariance_matrix();
    let traces = first.trace() + second.trace();

    let Some(root) = psd_root(first) else {
        return f64::NAN;
    };
    let product = &root * &second * &root;
    let product = (&product + product.transpose()) / 2.0;
    let Some(eigen) = symmetric_eigen(product) else {
        return f64::NAN;
    };
    let root_trace: f64 = eigen
        .eigenvalues
        .iter()
        .map(|&value| value.max(0.0).sqrt())
        .sum();

    (mean_term + traces - 2.0 * root_trace).max(0.0)
}

/// Symmetric eigendecomposition, iterated until it converges.
fn symmetric_eigen(matrix: DMatrix<f64>) -> Option<SymmetricEigen<f64, Dyn>> {
    // A limit of 0 iterations means no limit; callers pass only finite matrices.
    SymmetricEigen::try_new(matrix, f64::EPSILON, 0)
}

/// The symmetric square root of a symmetric matrix, negative eigenvalues taken as 0.
fn psd_root(matrix: DMatrix<f64>) -> Option<DMatrix<f64>> {
    let eigen = symmetric_eigen(matrix)?;
    let mut scaled = eigen.eigenvectors.clone();
    for (mut column, &value) in scaled.column_iter_mut().zip(eigen.eigenvalues.iter()) {
        column *= value.max(0.0).sqrt();
    }
    let root = &scaled * eigen.eigenvectors.transpose();
    Some((&root + root.transpose()) / 2.0)
}

/// Precision, recall, density and coverage of fake features against real ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prdc {
    /// Share of fake rows inside at least one real row's k-nearest-neighbour ball.
    pub precision: f64,
    /// Share of real rows inside at least one fake row's k-nearest-neighbour ball.
    pub recall: f64,
    /// Real balls containing a fake row, counted over fake rows and divided by `k` × fake rows;
    /// about 1 when both sets come from one distribution, above 1 when fakes crowd dense
    /// regions of the real set.
    pub density: f64,
    /// Share of real rows whose nearest fake row lies inside their own ball.
    pub coverage: f64,
}

/// Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al.
/// 2020) of `fake` against `real`, both row-major `[rows × dim]`, with `k` nearest neighbours.
///
/// A row's ball has the radius of its distance to the k-th nearest other row of its own set.
/// Distances are exact and Euclidean. Non-finite features give NaN in every field.
///
/// # Panics
///
/// When `dim` is 0, a length is not a multiple of `dim`, `k` is 0, or either set has `k` rows
/// or fewer.
pub fn prdc(real: &[f32], fake: &[f32], dim: usize, k: usize) -> Prdc {
    let real_rows = row_count(real, dim);
    let fake_rows = row_count(fake, dim);
    assert!(k >= 1, "PRDC needs at least one neighbour");
    assert!(
        real_rows > k && fake_rows > k,
        "PRDC with {k} neighbours needs more than {k} rows a side, got {real_rows} real and \
         {fake_rows} fake"
    );
    if !all_finite(real) || !all_finite(fake) {
        return Prdc {
            precision: f64::NAN,
            recall: f64::NAN,
            density: f64::NAN,
            coverage: f64::NAN,
        };
    }

    let real = Points::new(real, dim);
    let fake = Points::new(fake, dim);
    let real_radii = radii(&real, k);
    let fake_radii = radii(&fake, k);

    // Per fake row: how many real balls contain it.
    let containing: Vec<usize> = per_query(&fake, &real, |_, distances| {
        distances
            .iter()
            .zip(&real_radii)
            .filter(|&(d, r)| d < r)
            .count()
    });
    // Per real row: whether a fake ball contains it, and whether its nearest fake row lies in
    // its own ball.
    let reached: Vec<(bool, bool)> = per_query(&real, &fake, |row, distances| {
        let inside = distances.iter().zip(&fake_radii).any(|(d, r)| d < r);
        let nearest = distances.iter().copied().fold(f64::INFINITY, f64::min);
        (inside, nearest < real_radii[row])
    });

    let fakes = fake_rows as f64;
    let reals = real_rows as f64;
    let share = |hits: usize, of: f64| hits as f64 / of;
    Prdc {
        precision: share(containing.iter().filter(|&&count| count > 0).count(), fakes),
        recall: share(reached.iter().filter(|&&(inside, _)| inside).count(), reals),
        density: containing.iter().sum::<usize>() as f64 / (k as f64 * fakes),
        coverage: share(
            reached.iter().filter(|&&(_, covered)| covered).count(),
            reals,
        ),
    }
}

/// Mean Euclidean distance between distinct rows of `features` (row-major `[rows × dim]`), a
/// measure of diversity, on at most `max_rows` rows.
///
/// With more rows than `max_rows`, it uses `max_rows` rows evenly strided through the set
/// (rows `i · rows / max_rows`), so the result stays deterministic. Non-finite features give
/// NaN.
///
/// ```
/// use synth::image::metrics::mean_pairwise_distance;
///
/// // Three points on a line: distances 1, 2 and 3.
/// let distance = mean_pairwise_distance(&[0.0, 1.0, 3.0], 1, 100);
/// assert!((distance - 2.0).abs() < 1e-12);
/// ```
///
/// # Panics
///
/// When `dim` is 0, `features.len()` is not a multiple of `dim`, or fewer than two rows (of
/// the set, or allowed by `max_rows`) remain.
pub fn mean_pairwise_distance(features: &[f32], dim: usize, max_rows: usize) -> f64 {
    let rows = row_count(features, dim);
    let used = rows.min(max_rows);
    assert!(
        used >= 2,
        "a pairwise distance needs at least two rows, got {used}"
    );
    let sample: Vec<f32> = (0..used)
        .flat_map(|i| {
            let row = i * rows / used;
            features[row * dim..(row + 1) * dim].iter().copied()
        })
        .collect();
    if !all_finite(&sample) {
        return f64::NAN;
    }

    let points = Points::new(&sample, dim);
    let sums: Vec<f64> = per_query(&points, &points, |row, distances| {
        distances
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != row)
            .map(|(_, squared)| squared.sqrt())
            .sum()
    });
    sums.iter().sum::<f64>() / (used * (used - 1)) as f64
}

/// Rows of a row-major matrix with `dim` columns.
fn row_count(features: &[f32], dim: usize) -> usize {
    assert!(dim > 0, "the feature dimension must be positive");
    assert!(
        features.len().is_multiple_of(dim),
        "{} values do not make whole rows of {dim} features",
        features.len()
    );
    features.len() / dim
}

/// Whether every value is finite.
fn all_finite(values: &[f32]) -> bool {
    values.iter().all(|value| value.is_finite())
}

/// Feature rows in f64 with their squared norms, ready for distance products.
struct Points {
    /// The rows, as a `rows × dim` matrix.
    rows: DMatrix<f64>,
    /// Squared Euclidean norm of each row.
    norms: Vec<f64>,
}

impl Points {
    /// Converts a row-major `[rows × dim]` f32 matrix.
    fn new(features: &[f32], dim: usize) -> Points {
        let values: Vec<f64> = features.iter().map(|&value| f64::from(value)).collect();
        let norms = values
            .chunks_exact(dim)
            .map(|row| row.iter().map(|x| x * x).sum())
            .collect();
        Points {
            rows: DMatrix::from_row_slice(values.len() / dim, dim, &values),
            norms,
        }
    }

    /// Number of rows.
    fn len(&self) -> usize {
        self.norms.len()
    }
}

/// Applies `summarise` to every query row, with its index and its squared distances to every
/// reference row in reference order, and returns the results in query order.
fn per_query<T, F>(queries: &Points, reference: &Points, summarise: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize, &mut [f64]) -> T + Sync,
{
    let blocks = queries.len().div_ceil(QUERY_BLOCK);
    let results: Vec<Vec<T>> = (0..blocks)
        .into_par_iter()
        .map(|block| {
            let start = block * QUERY_BLOCK;
            let count = QUERY_BLOCK.min(queries.len() - start);
            let block_columns = queries.rows.rows(start, count).transpose();
            // reference × count, column-major: column q holds the dot products of query q.
            let mut products = &reference.rows * block_columns;

            products
                .as_mut_slice()
                .chunks_exact_mut(reference.len())
                .enumerate()
                .map(|(offset, distances)| {
                    let query_norm = queries.norms[start + offset];
                    for (value, norm) in distances.iter_mut().zip(&reference.norms) {
                        *value = (query_norm + norm - 2.0 * *value).max(0.0);
                    }
                    summarise(start + offset, distances)
                })
                .collect()
        })
        .collect();
    results.into_iter().flatten().collect()
}

/// Squared distance of every row to its k-th nearest other row of the same set.
fn radii(points: &Points, k: usize) -> Vec<f64> {
    per_query(points, points, |row, distances| {
        distances[row] = f64::INFINITY;
        let (_, kth, _) = distances.select_nth_unstable_by(k - 1, f64::total_cmp);
        *kth
    })
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha12Rng;
    use rand_distr::StandardNormal;

    use super::*;

    /// `rows × dim` draws of N(shift, I), row-major.
    fn normal(rows: usize, dim: usize, shift: f32, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        (0..rows * dim)
            .map(|_| rng.sample::<f32, _>(StandardNormal) + shift)
            .collect()
    }

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} differs from {expected} by more than {tolerance}"
        );
    }

    #[test]
    fn fit_gives_the_mean_and_unbiased_covariance() {
        // Deviations from the mean (3, 6) are (-2, -4), (0, 0), (2, 4): scatter [[8, 16],
        // [16, 32]], divided by n - 1 = 2.
        let gaussian = Gaussian::fit(&[1.0, 2.0, 3.0, 6.0, 5.0, 10.0], 2);
        assert_eq!(gaussian.dim, 2);
        assert_eq!(gaussian.mean, vec![3.0, 6.0]);
        assert_eq!(gaussian.covariance, vec![4.0, 8.0, 8.0, 16.0]);
    }

    #[test]
    fn frechet_of_identical_gaussians_is_zero() {
        let gaussian = Gaussian::fit(&normal(500, 6, 0.0, 1), 6);
        close(frechet_distance(&gaussian, &gaussian), 0.0, 1e-9);
    }

    #[test]
    fn frechet_matches_the_closed_form_for_diagonal_covariances() {
        let (a, b) = ([0.5, 2.0, 9.0, 1e-3], [4.0, 2.0, 1.0, 0.0]);
        let diagonal = |values: &[f64]| {
            let mut covariance = vec![0.0; values.len() * values.len()];
            for (i, &value) in values.iter().enumerate() {
                covariance[i * values.len() + i] = value;
            }
            covariance
        };
        let first = Gaussian {
            mean: vec![1.0, -2.0, 0.5, 0.0],
            covariance: diagonal(&a),
            dim: 4,
        };
        let second = Gaussian {
            mean: vec![0.0, 1.0, 0.5, 3.0],
            covariance: diagonal(&b),
            dim: 4,
        };

        let roots: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y): (&f64, &f64)| (x.sqrt() - y.sqrt()).powi(2))
            .sum();
        let means = 1.0 + 9.0 + 0.0 + 9.0;
        close(frechet_distance(&first, &second), means + roots, 1e-9);
        close(frechet_distance(&second, &first), means + roots, 1e-9);
    }

    #[test]
    fn frechet_matches_the_closed_form_for_non_commuting_covariances() {
        // For a 2 × 2 matrix with eigenvalues λ₁, λ₂ ≥ 0, (√λ₁ + √λ₂)² = Tr + 2 √det, so
        // Tr((Σ₁Σ₂)^½) = √(Tr(Σ₁Σ₂) + 2 √(det Σ₁ det Σ₂)). Here Σ₁Σ₂ = [[2, 3], [1, 3]]: trace
        // 5, and det Σ₁ det Σ₂ = 1 · 3.
        let first = Gaussian {
            mean: vec![0.0, 0.0],
            covariance: vec![2.0, 1.0, 1.0, 1.0],
            dim: 2,
        };
        let second = Gaussian {
            mean: vec![1.0, 1.0],
            covariance: vec![1.0, 0.0, 0.0, 3.0],
            dim: 2,
        };
        let expected = 2.0 + 3.0 + 4.0 - 2.0 * (5.0 + 2.0 * 3.0f64.sqrt()).sqrt();
        close(frechet_distance(&first, &second), expected, 1e-9);
        close(frechet_distance(&second, &first), expected, 1e-9);
    }

    #[test]
    fn frechet_of_sampled_unit_gaussians_is_the_squared_mean_shift() {
        let shift = [1.0f32, -0.5, 0.5, 2.0];
        let mut shifted = normal(20_000, 4, 0.0, 3);
        for row in shifted.chunks_exact_mut(4) {
            row.iter_mut()
                .zip(&shift)
                .for_each(|(value, s)| *value += s);
        }
        let distance = frechet_distance(
            &Gaussian::fit(&normal(20_000, 4, 0.0, 2), 4),
            &Gaussian::fit(&shifted, 4),
        );
        // ‖μ‖² = 1 + 0.25 + 0.25 + 4; the sampling error of the means is about 0.05.
        close(distance, 5.5, 0.15);
    }

    #[test]
    fn frechet_of_non_finite_covariance_is_nan() {
        let finite = Gaussian {
            mean: vec![0.0],
            covariance: vec![1.0],
            dim: 1,
        };
        let broken = Gaussian {
            mean: vec![0.0],
            covariance: vec![f64::NAN],
            dim: 1,
        };
        assert!(frechet_distance(&finite, &broken).is_nan());
    }

    #[test]
    fn prdc_of_a_hand_computed_case() {
        // Real 0, 1, 3, 20, 21; fake 0.25, 0.75, 5.5, 12, 13; k = 1.
        // Real radii (nearest other real): 1, 1, 2, 1, 1.
        // Fake radii (nearest other fake): 0.5, 0.5, 4.75 (5.5 to 0.75), 1, 1.
        // Precision: 0.25 and 0.75 lie in the balls of reals 0 and 1; 5.5 is 2.5 from real 3
        //   (radius 2); 12 and 13 are 8 from real 20 (radius 1): 2 of 5.
        // Density: 0.25 and 0.75 each lie in 2 real balls (0 and 1), the rest in none:
        //   4 / (1 · 5).
        // Recall: real 0 in the ball of 0.25, real 1 in that of 0.75, real 3 in that of 5.5
        //   (2.5 < 4.75); 20 and 21 are 7 and 8 from 13 and 12 (radii 1): 3 of 5.
        // Coverage: nearest fakes are 0.25 (0.25 < 1), 0.75 (0.25 < 1), 0.75 for real 3
        //   (2.25, not < 2), 13 for 20 and 21 (7 and 8): 2 of 5.
        let real = [0.0, 1.0, 3.0, 20.0, 21.0];
        let fake = [0.25, 0.75, 5.5, 12.0, 13.0];
        let scores = prdc(&real, &fake, 1, 1);
        let expected = Prdc {
            precision: 0.4,
            recall: 0.6,
            density: 0.8,
            coverage: 0.4,
        };
        assert_eq!(scores, expected);
    }

    #[test]
    fn prdc_of_one_distribution_is_near_one() {
        let scores = prdc(&normal(2000, 8, 0.0, 10), &normal(2000, 8, 0.0, 11), 8, 5);
        assert!(scores.precision >= 0.9, "{scores:?}");
        assert!(scores.recall >= 0.9, "{scores:?}");
        assert!((0.8..=1.2).contains(&scores.density), "{scores:?}");
        // Naeem et al.: coverage tends to 1 − 2^-k = 0.97 for equal sizes.
        assert!(scores.coverage >= 0.9, "{scores:?}");
    }

    #[test]
    fn prdc_of_a_distant_distribution_is_zero() {
        let scores = prdc(&normal(1000, 8, 0.0, 12), &normal(1000, 8, 5.0, 13), 8, 5);
        let zero = Prdc {
            precision: 0.0,
            recall: 0.0,
            density: 0.0,
            coverage: 0.0,
        };
        assert_eq!(scores, zero);
    }

    #[test]
    fn prdc_flags_mode_collapse_as_precise_but_narrow() {
        // Two dimensions: in eight, a slab in one coordinate leaves the fake balls wide enough
        // to reach about two thirds of the real rows (k-NN recall is optimistic when the fakes
        // are sparse), too mild a collapse to pin down.
        let real = normal(2000, 2, 0.0, 14);
        let slab = |set: &[f32]| -> Vec<f32> {
            let rows = set.chunks_exact(2).filter(|row| row[0].abs() < 0.3);
            rows.flatten().copied().collect()
        };
        // The real rows with |x₀| < 0.3 (about a quarter of them), then a fresh sample of the
        // same distribution cut the same way.
        for collapsed in [slab(&real), slab(&normal(8000, 2, 0.0, 15))] {
            let scores = prdc(&real, &collapsed, 2, 5);
            assert!(scores.precision >= 0.95, "{scores:?}");
            assert!(scores.recall <= 0.4, "{scores:?}");
            assert!(scores.coverage <= 0.4, "{scores:?}");
        }
    }

    #[test]
    fn prdc_matches_brute_force_across_blocks() {
        // 150 and 70 rows cross the 64-row query blocks; compare with plain double loops.
        let (real, fake) = (normal(150, 3, 0.0, 16), normal(70, 3, 0.3, 17));
        let distance = |a: &[f32], b: &[f32]| -> f64 {
            a.iter()
                .zip(b)
                .map(|(x, y)| f64::from(x - y).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let rows = |set: &[f32]| set.chunks_exact(3).map(<[f32]>::to_vec).collect::<Vec<_>>();
        let (real_rows, fake_rows) = (rows(&real), rows(&fake));
        let k = 4;
        let radii = |set: &[Vec<f32>]| -> Vec<f64> {
            (0..set.len())
                .map(|i| {
                    let mut d: Vec<f64> = (0..set.len())
                        .filter(|&j| j != i)
                        .map(|j| distance(&set[i], &set[j]))
                        .collect();
                    d.sort_by(f64::total_cmp);
                    d[k - 1]
                })
                .collect()
        };
        let (real_radii, fake_radii) = (radii(&real_rows), radii(&fake_rows));

        let mut contained = 0;
        let mut precise = 0;
        for f in &fake_rows {
            let count = real_rows
                .iter()
                .zip(&real_radii)
                .filter(|(r, radius)| distance(f, r) < **radius)
                .count();
            contained += count;
            precise += usize::from(count > 0);
        }
        let mut recalled = 0;
        let mut covered = 0;
        for (r, radius) in real_rows.iter().zip(&real_radii) {
            let reached = fake_rows
                .iter()
                .zip(&fake_radii)
                .any(|(f, fr)| distance(r, f) < *fr);
            let nearest = fake_rows
                .iter()
                .map(|f| distance(r, f))
                .fold(f64::INFINITY, f64::min);
            recalled += usize::from(reached);
            covered += usize::from(nearest < *radius);
        }

        let scores = prdc(&real, &fake, 3, k);
        close(scores.precision, precise as f64 / 70.0, 1e-12);
        close(scores.recall, recalled as f64 / 150.0, 1e-12);
        close(scores.density, contained as f64 / (k as f64 * 70.0), 1e-12);
        close(scores.coverage, covered as f64 / 150.0, 1e-12);
    }

    #[test]
    fn prdc_of_non_finite_features_is_nan() {
        let mut fake = normal(10, 2, 0.0, 18);
        fake[3] = f32::NAN;
        let scores = prdc(&normal(10, 2, 0.0, 19), &fake, 2, 2);
        assert!(
            scores.precision.is_nan() && scores.coverage.is_nan(),
            "{scores:?}"
        );
    }

    // Printed by notebooks/prdc_reference.py: 20 real and 16 fake rows of 3 features, each a
    // multiple of 1/256 written out exactly (hence more digits than f32 needs), with the
    // `prdc` package's scores and scipy's Fréchet distance.
    #[rustfmt::skip]
    #[allow(clippy::excessive_precision)]
    const REAL: [f32; 60] = [
        0.89453125, 0.96875, 0.21875,
        -1.421875, -0.9609375, 0.375,
        -0.03515625, 1.265625, 0.09375,
        -0.2109375, 1.640625, -0.19921875,
        -1.109375, -1.5234375, 0.0859375,
        0.0546875, 1.078125, 0.76171875,
        -1.29296875, 0.203125, 0.45703125,
        2.44140625, -1.7734375, -0.8125,
        -0.44140625, 1.0625, 0.9296875,
        0.01953125, 0.0625, 0.51171875,
        -0.74609375, -1.55859375, -1.02734375,
        0.1015625, -1.08984375, -0.4453125,
        0.45703125, 0.19140625, -1.33203125,
        0.2578125, 1.18359375, -0.55859375,
        1.03125, -1.4765625, 1.30859375,
        0.69140625, 0.13671875, -0.8984375,
        0.62109375, 1.76171875, 0.44140625,
        -0.09375, -1.10546875, -1.375,
        -0.4453125, 1.26171875, 2.4765625,
        0.05078125, 1.0390625, 0.4453125,
    ];
    #[rustfmt::skip]
    #[allow(clippy::excessive_precision)]
    const FAKE: [f32; 48] = [
        1.14453125, 0.45703125, 1.1953125,
        1.26953125, 0.5078125, -0.8046875,
        0.89453125, -0.6484375, -0.546875,
        -1.5546875, 0.609375, -1.0390625,
        0.35546875, -0.0234375, -0.22265625,
        1.05859375, 1.20703125, 1.1484375,
        -0.06640625, -1.8125, 0.0859375,
        1.48828125, -1.66015625, -0.35546875,
        0.3671875, 1.8671875, 0.1953125,
        -0.4921875, 0.5546875, -0.04296875,
        -0.9140625, 1.1171875, 0.53125,
        0.3203125, -0.55078125, 1.640625,
        0.51953125, 0.41796875, -0.7890625,
        -0.00390625, 1.76171875, -0.57421875,
        1.4375, 0.9453125, 0.66796875,
        0.5390625, 0.453125, 0.765625,
    ];

    #[test]
    fn reference_values_match_the_python_packages() {
        let expected = [
            (1, [0.8125, 0.75, 1.1875, 0.5]),
            (2, [0.875, 0.95, 0.9375, 0.65]),
            (3, [0.9375, 0.95, 0.8541666666666666, 0.8]),
        ];
        for (k, [precision, recall, density, coverage]) in expected {
            let scores = prdc(&REAL, &FAKE, 3, k);
            close(scores.precision, precision, 1e-9);
            close(scores.recall, recall, 1e-9);
            close(scores.density, density, 1e-9);
            close(scores.coverage, coverage, 1e-9);
        }

        let distance = frechet_distance(&Gaussian::fit(&REAL, 3), &Gaussian::fit(&FAKE, 3));
        close(distance, 0.34716688041453647, 1e-9);
    }

    #[test]
    fn mean_pairwise_distance_of_a_unit_square() {
        // Corners (0, 0), (1, 0), (1, 1), (0, 1): four sides of 1 and two diagonals of √2.
        let corners = [0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let expected = (4.0 + 2.0 * 2.0f64.sqrt()) / 6.0;
        close(mean_pairwise_distance(&corners, 2, 100), expected, 1e-12);

        // Two rows strided through four: corners 0 and 2, one diagonal apart.
        close(mean_pairwise_distance(&corners, 2, 2), 2.0f64.sqrt(), 1e-12);
    }

    #[test]
    fn mean_pairwise_distance_of_unit_gaussians_is_near_its_expectation() {
        // The difference of two N(0, I₈) draws is N(0, 2 I₈), whose norm has mean
        // √2 · √2 Γ(4.5) / Γ(4) = 2 · 11.6317 / 6 = 3.8772.
        let distance = mean_pairwise_distance(&normal(3000, 8, 0.0, 20), 8, 1500);
        close(distance, 3.8772, 0.05);
    }
}
