//! Statistical fidelity of the synthetic rows against the real training rows.
//!
//! The scores follow SDMetrics 0.32's definitions, so that numbers can be compared with theirs
//! (the golden tests in `tests/report.rs` pin them to SDMetrics' own output):
//!
//! - column shapes: the KS complement, 1 − D of the two-sample Kolmogorov–Smirnov statistic,
//!   for numeric and datetime columns; the TV complement, 1 − total variation distance of the
//!   category frequencies, for discrete columns; nulls dropped in both;
//! - column pair trends: for two numeric columns, 1 − |ρ_real − ρ_synthetic| / 2 with Pearson's
//!   ρ over the rows where both are present; for every other pair, 1 − total variation distance
//!   of the joint frequencies, nulls a value of their own and each numeric side cut into ten
//!   equal-width bins over its own table's range (the largest value sharing the last bin with
//!   the nulls, as SDMetrics' digitising does). Like SDMetrics, the property score averages only
//!   the pairs that are associated in the real rows (|ρ| > 0.5, or Cramér's V > 0.3); every
//!   pair's score is reported, and `all_pairs` averages them all;
//! - the quality score: the mean of the two property scores.
//!
//! Unlike SDMetrics, which scores contingency pairs on a random 50,000-row subsample of large
//! tables, every pair is computed on every row, so the score does not move between runs.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use super::prepare::{Column, NULL, Tables, Values};

/// Equal-width bins of a numeric column in contingency tables.
pub const PAIR_BINS: usize = 10;
/// A numeric pair counts towards the pair-trend score when the real |ρ| exceeds this.
pub const CORRELATION_THRESHOLD: f64 = 0.5;
/// Any other pair counts when the real Cramér's V exceeds this.
pub const ASSOCIATION_THRESHOLD: f64 = 0.3;

/// Scores of one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnScores {
    /// The column's kind.
    pub kind: &'static str,
    /// `KSComplement` or `TVComplement`.
    pub shape_metric: &'static str,
    /// The shape score, in [0, 1]; `null` when a side has no values.
    pub shape: f64,
    /// `RangeCoverage` for numbers, `CategoryCoverage` for categories.
    pub coverage_metric: &'static str,
    /// Share of the real range, or of the real categories, that the synthetic rows cover.
    pub coverage: f64,
    /// 1 − |real null share − synthetic null share|.
    pub missing_value_similarity: f64,
    /// Null shares of real and synthetic rows.
    pub null_share: [f64; 2],
}

/// Scores of one pair of columns.
#[derive(Debug, Clone, Serialize)]
pub struct PairScores {
    /// The two columns, in schema order.
    pub columns: [String; 2],
    /// `CorrelationSimilarity` or `ContingencySimilarity`.
    pub metric: &'static str,
    /// The score in [0, 1]; `null` when undefined (a constant column, say).
    pub score: f64,
    /// Whether the pair counts towards `column_pair_trends`: its real association (|ρ| or
    /// Cramér's V) is above the threshold.
    pub counted: bool,
    /// |ρ| for numeric pairs, Cramér's V otherwise, in the real rows.
    pub real_association: f64,
    /// Pearson correlation in the real rows, for numeric pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_correlation: Option<f64>,
    /// Pearson correlation in the synthetic rows, for numeric pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic_correlation: Option<f64>,
}

/// Column shapes, pair trends and coverage.
#[derive(Debug, Clone, Serialize)]
pub struct Shapes {
    /// Mean of `column_shapes` and `column_pair_trends`.
    pub quality: f64,
    /// Mean shape score over columns.
    pub column_shapes: f64,
    /// Mean score over the pairs that are associated in the real rows.
    pub column_pair_trends: f64,
    /// Mean score over every pair, associated or not.
    pub all_pairs: f64,
    /// Mean of every column's coverage and missing-value similarity.
    pub coverage: f64,
    /// Per-column scores, in schema order.
    pub columns: Vec<(String, ColumnScores)>,
    /// Per-pair scores.
    pub pairs: Vec<PairScores>,
}

/// Computes column shapes, pair trends and coverage of the synthetic rows against the real
/// ones.
pub fn shapes(tables: &Tables) -> Shapes {
    let columns: Vec<(String, ColumnScores)> = tables
        .columns
        .par_iter()
        .map(|column| (column.name().to_owned(), column_scores(column)))
        .collect();
    let pair_codes: Vec<[Vec<u32>; 2]> = tables.columns.par_iter().map(pair_codes).collect();
    let mut pairs_to_score = Vec::new();
    for a in 0..tables.columns.len() {
        for b in a + 1..tables.columns.len() {
            pairs_to_score.push((a, b));
        }
    }
    let varied: Vec<bool> = tables.columns.iter().map(varies).collect();
    let pairs: Vec<PairScores> = pairs_to_score
        .par_iter()
        .map(|&(a, b)| {
            let (first, second) = (&tables.columns[a], &tables.columns[b]);
            let columns = [first.name().to_owned(), second.name().to_owned()];
            if let (
                Values::Numbers(ra),
                Values::Numbers(rb),
                Values::Numbers(sa),
                Values::Numbers(sb),
            ) = (
                &first.real,
                &second.real,
                &first.synthetic,
                &second.synthetic,
            ) {
                let (real, synthetic) = if varied[a] && varied[b] {
                    (pearson(ra, rb), pearson(sa, sb))
                } else {
                    (f64::NAN, f64::NAN)
                };
                PairScores {
                    columns,
                    metric: "CorrelationSimilarity",
                    score: 1.0 - (real - synthetic).abs() / 2.0,
                    counted: real.abs() > CORRELATION_THRESHOLD && synthetic.is_finite(),
                    real_association: real,
                    real_correlation: Some(real),
                    synthetic_correlation: Some(synthetic),
                }
            } else {
                let (score, cramers_v) = contingency_similarity(
                    [&pair_codes[a][0], &pair_codes[b][0]],
                    [&pair_codes[a][1], &pair_codes[b][1]],
                );
                PairScores {
                    columns,
                    metric: "ContingencySimilarity",
                    score,
                    counted: cramers_v > ASSOCIATION_THRESHOLD,
                    real_association: cramers_v,
                    real_correlation: None,
                    synthetic_correlation: None,
                }
            }
        })
        .collect();

    let column_shapes = nan_mean(columns.iter().map(|(_, scores)| scores.shape));
    let column_pair_trends = nan_mean(
        pairs
            .iter()
            .filter(|pair| pair.counted)
            .map(|pair| pair.score),
    );
    let all_pairs = nan_mean(pairs.iter().map(|pair| pair.score));
    let coverage = nan_mean(
        columns
            .iter()
            .flat_map(|(_, scores)| [scores.coverage, scores.missing_value_similarity]),
    );
    let quality = nan_mean([column_shapes, column_pair_trends].into_iter());
    Shapes {
        quality,
        column_shapes,
        column_pair_trends,
        all_pairs,
        coverage,
        columns,
        pairs,
    }
}

fn column_scores(column: &Column) -> ColumnScores {
    let null_share = [column.real.null_share(), column.synthetic.null_share()];
    let missing_value_similarity = 1.0 - (null_share[0] - null_share[1]).abs();
    let kind = column.spec.kind.name();
    match (&column.real, &column.synthetic) {
        (Values::Numbers(real), Values::Numbers(synthetic)) => ColumnScores {
            kind,
            shape_metric: "KSComplement",
            shape: ks_complement(real, synthetic),
            coverage_metric: "RangeCoverage",
            coverage: range_coverage(real, synthetic),
            missing_value_similarity,
            null_share,
        },
        (real, synthetic) => {
            let real = real.codes().unwrap_or_default();
            let synthetic = synthetic.codes().unwrap_or_default();
            ColumnScores {
                kind,
                shape_metric: "TVComplement",
                shape: tv_complement(real, synthetic, column.levels.len()),
                coverage_metric: "CategoryCoverage",
                coverage: category_coverage(real, synthetic, column.levels.len()),
                missing_value_similarity,
                null_share,
            }
        }
    }
}

/// Whether a column holds at least two distinct non-null values in both real and synthetic
/// rows; a correlation with a constant column is undefined.
fn varies(column: &Column) -> bool {
    let numbers = |values: &Values| {
        let present = values
            .numbers()
            .unwrap_or_default()
            .iter()
            .copied()
            .filter(|v| !v.is_nan());
        let mut range: Option<(f64, f64)> = None;
        for v in present {
            range = Some(range.map_or((v, v), |(low, high)| (low.min(v), high.max(v))));
        }
        range.is_some_and(|(low, high)| low < high)
    };
    numbers(&column.real) && numbers(&column.synthetic)
}

/// Mean of the finite values; NaN when there are none.
pub fn nan_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values
        .filter(|value| value.is_finite())
        .fold((0.0, 0usize), |(sum, count), value| {
            (sum + value, count + 1)
        });
    if count == 0 {
        f64::NAN
    } else {
        sum / count as f64
    }
}

/// The non-null values, sorted.
pub fn sorted_present(values: &[f64]) -> Vec<f64> {
    let mut present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    present.sort_unstable_by(f64::total_cmp);
    present
}

/// 1 − the two-sample Kolmogorov–Smirnov statistic, nulls dropped; NaN when a side has no
/// values.
pub fn ks_complement(real: &[f64], synthetic: &[f64]) -> f64 {
    let (a, b) = (sorted_present(real), sorted_present(synthetic));
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    1.0 - ks_statistic(&a, &b)
}

/// The largest gap between the empirical distribution functions of two sorted samples.
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut gap) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let value = a[i].min(b[j]);
        while i < a.len() && a[i] <= value {
            i += 1;
        }
        while j < b.len() && b[j] <= value {
            j += 1;
        }
        gap = gap.max((i as f64 / n - j as f64 / m).abs());
    }
    gap
}

/// Counts of each code in `0..levels`, with nulls in the last slot.
fn code_counts(codes: &[u32], levels: usize) -> Vec<u64> {
    let mut counts = vec![0u64; levels + 1];
    for &code in codes {
        let slot = if code == NULL { levels } else { code as usize };
        counts[slot] += 1;
    }
    counts
}

/// 1 − the total variation distance between the category frequencies, nulls dropped; NaN when
/// a side has no values.
pub fn tv_complement(real: &[u32], synthetic: &[u32], levels: usize) -> f64 {
    let real = code_counts(real, levels);
    let synthetic = code_counts(synthetic, levels);
    let total_real: u64 = real[..levels].iter().sum();
    let total_synthetic: u64 = synthetic[..levels].iter().sum();
    if total_real == 0 || total_synthetic == 0 {
        return f64::NAN;
    }
    let distance: f64 = (0..levels)
        .map(|code| {
            (real[code] as f64 / total_real as f64
                - synthetic[code] as f64 / total_synthetic as f64)
                .abs()
        })
        .sum::<f64>()
        / 2.0;
    1.0 - distance
}

/// Share of the categories seen in the real rows that the synthetic rows also hold.
pub fn category_coverage(real: &[u32], synthetic: &[u32], levels: usize) -> f64 {
    let real = code_counts(real, levels);
    let synthetic = code_counts(synthetic, levels);
    let seen = (0..levels).filter(|&code| real[code] > 0).count();
    if seen == 0 {
        return f64::NAN;
    }
    let covered = (0..levels)
        .filter(|&code| real[code] > 0 && synthetic[code] > 0)
        .count();
    covered as f64 / seen as f64
}

/// How much of the real range the synthetic values span: 1 minus the uncovered share at each
/// end, floored at 0; NaN when a side has no values or the real range is a single value.
pub fn range_coverage(real: &[f64], synthetic: &[f64]) -> f64 {
    let (Some((real_min, real_max)), Some((synthetic_min, synthetic_max))) =
        (min_max(real), min_max(synthetic))
    else {
        return f64::NAN;
    };
    let width = real_max - real_min;
    if width == 0.0 {
        return f64::NAN;
    }
    let low = ((synthetic_min - real_min) / width).max(0.0);
    let high = ((real_max - synthetic_max) / width).max(0.0);
    (1.0 - (low + high)).max(0.0)
}

/// The smallest and largest non-null value.
pub fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    values
        .iter()
        .filter(|v| !v.is_nan())
        .fold(None, |range, &v| match range {
            None => Some((v, v)),
            Some((low, high)) => Some((low.min(v), high.max(v))),
        })
}

/// Pearson's correlation over the rows where both values are present; NaN when either column
/// is constant there or fewer than two rows remain.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (mut n, mut sum_a, mut sum_b) = (0usize, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        if !x.is_nan() && !y.is_nan() {
            n += 1;
            sum_a += x;
            sum_b += y;
        }
    }
    if n < 2 {
        return f64::NAN;
    }
    let (mean_a, mean_b) = (sum_a / n as f64, sum_b / n as f64);
    let (mut cov, mut var_a, mut var_b) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        if !x.is_nan() && !y.is_nan() {
            let (dx, dy) = (x - mean_a, y - mean_b);
            cov += dx * dy;
            var_a += dx * dx;
            var_b += dy * dy;
        }
    }
    if var_a == 0.0 || var_b == 0.0 {
        return f64::NAN;
    }
    (cov / (var_a * var_b).sqrt()).clamp(-1.0, 1.0)
}

/// The edges of `PAIR_BINS` equal-width bins over one table's non-null values, as NumPy's
/// histogram edges: a single value `v` spans `v ± 0.5`, an empty column `0..1`.
pub fn bin_edges(values: &[f64]) -> Vec<f64> {
    let (low, high) = match min_max(values) {
        None => (0.0, 1.0),
        Some((low, high)) if low == high => (low - 0.5, high + 0.5),
        Some(range) => range,
    };
    let step = (high - low) / PAIR_BINS as f64;
    let mut edges: Vec<f64> = (0..PAIR_BINS).map(|i| i as f64 * step + low).collect();
    edges.push(high);
    edges
}

/// The bin label of `value`: the number of edges at or below it, minus one. The largest value
/// and nulls share the last label, `PAIR_BINS`, as they do in SDMetrics.
pub fn bin_of(value: f64, edges: &[f64]) -> u32 {
    if value.is_nan() {
        return PAIR_BINS as u32;
    }
    let at_or_below = edges.partition_point(|&edge| edge <= value);
    (at_or_below.max(1) - 1) as u32
}

/// The codes a column contributes to contingency tables, for real and synthetic rows: discrete
/// codes as they are, numbers binned over each table's own range.
fn pair_codes(column: &Column) -> [Vec<u32>; 2] {
    match (&column.real, &column.synthetic) {
        (Values::Numbers(real), Values::Numbers(synthetic)) => {
            let bin = |values: &[f64]| {
                let edges = bin_edges(values);
                values.iter().map(|&v| bin_of(v, &edges)).collect()
            };
            [bin(real), bin(synthetic)]
        }
        (real, synthetic) => [
            real.codes().unwrap_or_default().to_vec(),
            synthetic.codes().unwrap_or_default().to_vec(),
        ],
    }
}

/// 1 − the total variation distance between the joint frequencies of two code columns, nulls
/// counted as a value of their own, and Cramér's V of the real table.
pub fn contingency_similarity(real: [&[u32]; 2], synthetic: [&[u32]; 2]) -> (f64, f64) {
    let (n_real, n_synthetic) = (real[0].len() as f64, synthetic[0].len() as f64);
    if n_real == 0.0 || n_synthetic == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let largest = |codes: &[u32]| {
        codes
            .iter()
            .filter(|&&c| c != NULL)
            .max()
            .map_or(0, |&c| c as usize + 1)
    };
    // One slot past the largest code holds nulls.
    let width_a = largest(real[0]).max(largest(synthetic[0])) + 1;
    let width_b = largest(real[1]).max(largest(synthetic[1])) + 1;
    let slot = |code: u32, width: usize| {
        if code == NULL {
            width - 1
        } else {
            code as usize
        }
    };
    let cells = width_a * width_b;
    let mut counts: Vec<(usize, [u32; 2])> = if cells <= 1 << 22 {
        let mut dense = vec![[0u32; 2]; cells];
        for (side, codes) in [real, synthetic].into_iter().enumerate() {
            for (&a, &b) in codes[0].iter().zip(codes[1]) {
                dense[slot(a, width_a) * width_b + slot(b, width_b)][side] += 1;
            }
        }
        dense
            .into_iter()
            .enumerate()
            .filter(|(_, c)| c[0] + c[1] > 0)
            .collect()
    } else {
        let mut sparse: HashMap<usize, [u32; 2]> = HashMap::new();
        for (side, codes) in [real, synthetic].into_iter().enumerate() {
            for (&a, &b) in codes[0].iter().zip(codes[1]) {
                sparse
                    .entry(slot(a, width_a) * width_b + slot(b, width_b))
                    .or_default()[side] += 1;
            }
        }
        sparse.into_iter().collect()
    };
    counts.sort_unstable_by_key(|(cell, _)| *cell);
    let distance: f64 = counts
        .iter()
        .map(|(_, [r, s])| (*r as f64 / n_real - *s as f64 / n_synthetic).abs())
        .sum();

    // Cramér's V from the real cells: χ² = n (Σ O² / (row · column) − 1).
    let mut rows = vec![0u64; width_a];
    let mut columns = vec![0u64; width_b];
    for (cell, [r, _]) in &counts {
        rows[cell / width_b] += *r as u64;
        columns[cell % width_b] += *r as u64;
    }
    let ratio: f64 = counts
        .iter()
        .filter(|(_, [r, _])| *r > 0)
        .map(|(cell, [r, _])| {
            let r = *r as f64;
            r * r / (rows[cell / width_b] as f64 * columns[cell % width_b] as f64)
        })
        .sum();
    let chi_squared = n_real * (ratio - 1.0);
    let levels = rows
        .iter()
        .filter(|&&c| c > 0)
        .count()
        .min(columns.iter().filter(|&&c| c > 0).count());
    let cramers_v = if levels < 2 {
        f64::NAN
    } else {
        (chi_squared.max(0.0) / (n_real * (levels - 1) as f64)).sqrt()
    };
    (1.0 - distance / 2.0, cramers_v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_of_identical_and_disjoint_samples() {
        let a = [1.0, 2.0, 3.0];
        assert_eq!(ks_complement(&a, &a), 1.0);
        assert_eq!(ks_complement(&a, &[10.0, 11.0]), 0.0);
        // Ties across samples are stepped together.
        let gap = ks_statistic(&[1.0, 2.0, 2.0, 3.0], &[2.0, 2.0]);
        assert!((gap - 0.25).abs() < 1e-12);
    }

    #[test]
    fn bins_follow_numpy_digitize() {
        let edges = bin_edges(&[0.0, 10.0]);
        assert_eq!(edges.len(), PAIR_BINS + 1);
        assert_eq!(bin_of(0.0, &edges), 0);
        assert_eq!(bin_of(0.999, &edges), 0);
        assert_eq!(bin_of(1.0, &edges), 1);
        assert_eq!(bin_of(9.99, &edges), 9);
        assert_eq!(bin_of(10.0, &edges), 10);
        assert_eq!(bin_of(f64::NAN, &edges), 10);
        assert_eq!(bin_edges(&[3.0, 3.0])[0], 2.5);
    }

    #[test]
    fn contingency_of_identical_tables_is_one() {
        let a = [0, 1, 1, NULL];
        let b = [2, 0, 0, 1];
        assert_eq!(contingency_similarity([&a, &b], [&a, &b]).0, 1.0);
        let c = [0, 0, 0, 0];
        assert!(contingency_similarity([&a, &b], [&c, &c]).0.abs() < 1e-12);
        // Perfectly associated columns have V = 1.
        let x = [0, 0, 1, 1, 2, 2];
        assert!((contingency_similarity([&x, &x], [&x, &x]).1 - 1.0).abs() < 1e-12);
    }
}
