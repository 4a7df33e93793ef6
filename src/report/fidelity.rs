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
    /// The Pearson matrices of the numeric columns, for the report's heatmaps.
    #[serde(skip)]
    pub correlations: Correlations,
}

/// Pearson correlations among the numeric columns, real and synthetic.
#[derive(Debug, Clone, Default)]
pub struct Correlations {
    /// The numeric columns, in schema order.
    pub columns: Vec<String>,
    /// Row-major `columns × columns` matrix of the real rows.
    pub real: Vec<f64>,
    /// The same for the synthetic rows.
    pub synthetic: Vec<f64>,
}

/// Computes column shapes, pair trends and coverage of the synthetic rows against the real
/// ones.
pub fn shapes(tables: &Tables) -> Shapes {
    let (columns, ranges): (Vec<(String, ColumnScores)>, Vec<Ranges>) = tables
        .columns
        .par_iter()
        .map(|column| {
            let (scores, ranges) = column_scores(column);
            ((column.name().to_owned(), scores), ranges)
        })
        .unzip();
    let slots: Vec<Slots> = tables
        .columns
        .par_iter()
        .zip(&ranges)
        .map(|(column, &ranges)| Slots::of(column, ranges))
        .collect();
    let count = tables.columns.len();
    let pairs_to_score: Vec<(usize, usize)> = (0..count)
        .flat_map(|a| (a + 1..count).map(move |b| (a, b)))
        .collect();
    // A correlation with a column that is constant on either side is undefined.
    let varied: Vec<bool> = ranges
        .iter()
        .map(|sides| {
            sides
                .iter()
                .all(|range| range.is_some_and(|(low, high)| low < high))
        })
        .collect();
    let numeric: Vec<usize> = (0..count)
        .filter(|&c| tables.columns[c].is_numeric())
        .collect();
    let correlations = |synthetic: bool| {
        let values: Vec<&[f64]> = numeric
            .iter()
            .map(|&c| {
                let column = &tables.columns[c];
                let side = if synthetic {
                    &column.synthetic
                } else {
                    &column.real
                };
                side.numbers().unwrap_or_default()
            })
            .collect();
        correlation_matrix(&values)
    };
    let (real_correlations, synthetic_correlations) =
        rayon::join(|| correlations(false), || correlations(true));
    let position = |c: usize| numeric.iter().position(|&n| n == c).unwrap_or(0);
    let discrete_pairs: Vec<(usize, usize)> = pairs_to_score
        .iter()
        .copied()
        .filter(|&(a, b)| !(tables.columns[a].is_numeric() && tables.columns[b].is_numeric()))
        .collect();
    let contingencies = contingency_similarities(&slots, &discrete_pairs);

    let mut contingency = discrete_pairs.iter().zip(contingencies);
    let pairs: Vec<PairScores> = pairs_to_score
        .iter()
        .map(|&(a, b)| {
            let columns = [
                tables.columns[a].name().to_owned(),
                tables.columns[b].name().to_owned(),
            ];
            if tables.columns[a].is_numeric() && tables.columns[b].is_numeric() {
                let k = numeric.len();
                let (i, j) = (position(a), position(b));
                let (real, synthetic) = if varied[a] && varied[b] {
                    (
                        real_correlations[i * k + j],
                        synthetic_correlations[i * k + j],
                    )
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
                let (score, cramers_v) = contingency
                    .next()
                    .map_or((f64::NAN, f64::NAN), |(_, scores)| scores);
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
        correlations: Correlations {
            columns: numeric
                .iter()
                .map(|&c| tables.columns[c].name().to_owned())
                .collect(),
            real: real_correlations,
            synthetic: synthetic_correlations,
        },
    }
}

/// The ranges (smallest, largest non-null value) of a numeric column's real and synthetic
/// values; `None` for discrete columns and columns without values.
type Ranges = [Option<(f64, f64)>; 2];

fn column_scores(column: &Column) -> (ColumnScores, Ranges) {
    let kind = column.spec.kind.name();
    let share = |nulls: usize, rows: usize| {
        if rows == 0 {
            0.0
        } else {
            nulls as f64 / rows as f64
        }
    };
    match (&column.real, &column.synthetic) {
        (Values::Numbers(real), Values::Numbers(synthetic)) => {
            let (a, b) = (sorted_present(real), sorted_present(synthetic));
            let ranges = [range_of_sorted(&a), range_of_sorted(&b)];
            let null_share = [
                share(real.len() - a.len(), real.len()),
                share(synthetic.len() - b.len(), synthetic.len()),
            ];
            let shape = if a.is_empty() || b.is_empty() {
                f64::NAN
            } else {
                1.0 - ks_statistic(&a, &b)
            };
            let scores = ColumnScores {
                kind,
                shape_metric: "KSComplement",
                shape,
                coverage_metric: "RangeCoverage",
                coverage: range_coverage_of(ranges[0], ranges[1]),
                missing_value_similarity: 1.0 - (null_share[0] - null_share[1]).abs(),
                null_share,
            };
            (scores, ranges)
        }
        (real, synthetic) => {
            let real = real.codes().unwrap_or_default();
            let synthetic = synthetic.codes().unwrap_or_default();
            let levels = column.levels.len();
            let (real_counts, synthetic_counts) =
                (code_counts(real, levels), code_counts(synthetic, levels));
            let null_share = [
                share(real_counts[levels] as usize, real.len()),
                share(synthetic_counts[levels] as usize, synthetic.len()),
            ];
            let scores = ColumnScores {
                kind,
                shape_metric: "TVComplement",
                shape: tv_of_counts(&real_counts, &synthetic_counts),
                coverage_metric: "CategoryCoverage",
                coverage: coverage_of_counts(&real_counts, &synthetic_counts),
                missing_value_similarity: 1.0 - (null_share[0] - null_share[1]).abs(),
                null_share,
            };
            (scores, [None, None])
        }
    }
}

fn range_of_sorted(sorted: &[f64]) -> Option<(f64, f64)> {
    Some((*sorted.first()?, *sorted.last()?))
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
    radsort::sort(&mut present);
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
    tv_of_counts(&code_counts(real, levels), &code_counts(synthetic, levels))
}

/// [`tv_complement`] from counts per code, nulls in the last slot.
fn tv_of_counts(real: &[u64], synthetic: &[u64]) -> f64 {
    let levels = real.len() - 1;
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
    coverage_of_counts(&code_counts(real, levels), &code_counts(synthetic, levels))
}

/// [`category_coverage`] from counts per code, nulls in the last slot.
fn coverage_of_counts(real: &[u64], synthetic: &[u64]) -> f64 {
    let levels = real.len() - 1;
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
    range_coverage_of(min_max(real), min_max(synthetic))
}

/// [`range_coverage`] from the two ranges.
fn range_coverage_of(real: Option<(f64, f64)>, synthetic: Option<(f64, f64)>) -> f64 {
    let (Some((real_min, real_max)), Some((synthetic_min, synthetic_max))) = (real, synthetic)
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
///
/// One branch-free pass accumulates the six sums over values shifted by a rough centre (which
/// keeps the sums well conditioned), in independent lanes the compiler can vectorise.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    correlation_of_sums(centred_sums(&a[..n], &b[..n], centre(a), centre(b)))
}

/// Rows per block of the blocked pair computations: a block of every column stays in cache
/// while all pairs are counted over it.
const BLOCK_ROWS: usize = 8192;

/// Pearson's correlation of every pair of `columns`, as a row-major matrix (1 on the
/// diagonal), each over the rows where both values are present.
///
/// The rows are taken in blocks, and every pair's sums are accumulated over a block while it is
/// in cache; block sums are added in block order, so the result does not depend on threads.
pub fn correlation_matrix(columns: &[&[f64]]) -> Vec<f64> {
    let k = columns.len();
    let rows = columns.iter().map(|c| c.len()).min().unwrap_or(0);
    let centres: Vec<f64> = columns.iter().map(|c| centre(c)).collect();
    let blocks: Vec<Vec<[f64; 6]>> = (0..rows.div_ceil(BLOCK_ROWS))
        .into_par_iter()
        .map(|block| {
            let range = block * BLOCK_ROWS..((block + 1) * BLOCK_ROWS).min(rows);
            let mut sums = Vec::with_capacity(k * k / 2);
            for i in 0..k {
                for j in i + 1..k {
                    let (a, b) = (&columns[i][range.clone()], &columns[j][range.clone()]);
                    sums.push(centred_sums(a, b, centres[i], centres[j]));
                }
            }
            sums
        })
        .collect();
    let mut matrix = vec![1.0; k * k];
    let mut pair = 0;
    for i in 0..k {
        for j in i + 1..k {
            let mut total = [0.0; 6];
            for block in &blocks {
                for (t, v) in total.iter_mut().zip(&block[pair]) {
                    *t += v;
                }
            }
            let r = correlation_of_sums(total);
            matrix[i * k + j] = r;
            matrix[j * k + i] = r;
            pair += 1;
        }
    }
    matrix
}

/// A rough centre of a column (the mean of its first present values), which keeps the sums of
/// squares well conditioned.
fn centre(values: &[f64]) -> f64 {
    let (sum, count) = values
        .iter()
        .filter(|v| !v.is_nan())
        .take(1024)
        .fold((0.0, 0.0), |(sum, count), v| (sum + v, count + 1.0));
    if count > 0.0 { sum / count } else { 0.0 }
}

/// Pearson's ρ from the centred sums; NaN when undefined.
fn correlation_of_sums([count, sx, sy, sxx, syy, sxy]: [f64; 6]) -> f64 {
    if count < 2.0 {
        return f64::NAN;
    }
    let covariance = sxy - sx * sy / count;
    let (var_a, var_b) = (sxx - sx * sx / count, syy - sy * sy / count);
    if var_a <= 0.0 || var_b <= 0.0 {
        return f64::NAN;
    }
    (covariance / (var_a * var_b).sqrt()).clamp(-1.0, 1.0)
}

/// Count, Σx, Σy, Σx², Σy² and Σxy over the rows where both values are present, after shifting
/// by the centres, in independent lanes.
fn centred_sums(a: &[f64], b: &[f64], ca: f64, cb: f64) -> [f64; 6] {
    const LANES: usize = 4;
    let (mut n, mut sx, mut sy) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    let (mut sxx, mut syy, mut sxy) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    let (chunks_a, chunks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (xs, ys) in chunks_a.zip(chunks_b) {
        for lane in 0..LANES {
            let (dx, dy) = (xs[lane] - ca, ys[lane] - cb);
            let present = !dx.is_nan() & !dy.is_nan();
            let x = if present { dx } else { 0.0 };
            let y = if present { dy } else { 0.0 };
            n[lane] += if present { 1.0 } else { 0.0 };
            sx[lane] += x;
            sy[lane] += y;
            sxx[lane] += x * x;
            syy[lane] += y * y;
            sxy[lane] += x * y;
        }
    }
    for (&x, &y) in rest_a.iter().zip(rest_b) {
        let (x, y) = (x - ca, y - cb);
        if !(x.is_nan() || y.is_nan()) {
            n[0] += 1.0;
            sx[0] += x;
            sy[0] += y;
            sxx[0] += x * x;
            syy[0] += y * y;
            sxy[0] += x * y;
        }
    }
    [n, sx, sy, sxx, syy, sxy].map(|lanes| lanes.iter().sum())
}

/// The edges of `PAIR_BINS` equal-width bins over one table's non-null values, as NumPy's
/// histogram edges: a single value `v` spans `v ± 0.5`, an empty column `0..1`.
pub fn bin_edges(values: &[f64]) -> Vec<f64> {
    bin_edges_over(min_max(values))
}

/// [`bin_edges`] from the values' range.
fn bin_edges_over(range: Option<(f64, f64)>) -> Vec<f64> {
    let (low, high) = match range {
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
    // A first guess from the equal widths, corrected against the edges themselves so that
    // values on an edge land exactly where counting edges would put them.
    let (low, high) = (edges[0], edges[PAIR_BINS]);
    let guess = ((value - low) / (high - low) * PAIR_BINS as f64).floor();
    let mut at_or_below = if guess.is_finite() {
        (guess.max(0.0) as usize + 1).min(PAIR_BINS + 1)
    } else {
        0
    };
    while at_or_below > 0 && edges[at_or_below - 1] > value {
        at_or_below -= 1;
    }
    while at_or_below < edges.len() && edges[at_or_below] <= value {
        at_or_below += 1;
    }
    (at_or_below.max(1) - 1) as u32
}

/// A column's codes in contingency tables, real and synthetic, with nulls moved to the last
/// slot so that counting needs no test per row. Slots are 16 bits wide, which halves the memory
/// traffic of counting; a column with more than [`MAX_SLOTS`] − 1 categories shares the last
/// category slot among the rarest ones.
#[derive(Debug, Clone)]
pub struct Slots {
    real: Vec<u16>,
    synthetic: Vec<u16>,
    width: usize,
}

/// Slots per column in contingency tables, nulls included.
pub const MAX_SLOTS: usize = 1 << 16;

impl Slots {
    /// Slots of real and synthetic codes, [`NULL`] among them.
    pub fn new(real: Vec<u32>, synthetic: Vec<u32>) -> Slots {
        let largest = |codes: &[u32]| {
            codes
                .iter()
                .filter(|&&c| c != NULL)
                .max()
                .map_or(0, |&c| c as usize + 1)
        };
        let width = (largest(&real).max(largest(&synthetic)) + 1).min(MAX_SLOTS);
        let slot = |code: u32| -> u16 {
            if code == NULL {
                (width - 1) as u16
            } else {
                (code as usize).min(width - 2) as u16
            }
        };
        Slots {
            real: real.into_iter().map(slot).collect(),
            synthetic: synthetic.into_iter().map(slot).collect(),
            width,
        }
    }

    /// The slots a column contributes: discrete codes as they are, numbers binned over each
    /// table's own range.
    fn of(column: &Column, ranges: Ranges) -> Slots {
        match (&column.real, &column.synthetic) {
            (Values::Numbers(real), Values::Numbers(synthetic)) => {
                let bin = |values: &[f64], range| {
                    let edges = bin_edges_over(range);
                    values.iter().map(|&v| bin_of(v, &edges)).collect()
                };
                Slots::new(bin(real, ranges[0]), bin(synthetic, ranges[1]))
            }
            (real, synthetic) => Slots::new(
                real.codes().unwrap_or_default().to_vec(),
                synthetic.codes().unwrap_or_default().to_vec(),
            ),
        }
    }
}

/// Cells of a joint table counted densely; wider pairs are counted in a hash map.
const DENSE_CELLS: usize = 1 << 16;

/// [`contingency_similarity`] of every pair in `pairs`, in order.
///
/// Pairs with small tables are counted together, block of rows by block of rows, so each
/// block's slots are read from cache for every pair; the rest one by one.
pub fn contingency_similarities(slots: &[Slots], pairs: &[(usize, usize)]) -> Vec<(f64, f64)> {
    let dense: Vec<usize> = (0..pairs.len())
        .filter(|&p| slots[pairs[p].0].width * slots[pairs[p].1].width <= DENSE_CELLS)
        .collect();
    let count_side = |synthetic: bool| -> Vec<Vec<u32>> {
        let codes = |column: usize| -> &[u16] {
            if synthetic {
                &slots[column].synthetic
            } else {
                &slots[column].real
            }
        };
        let rows = slots.first().map_or(0, |s| {
            if synthetic {
                s.synthetic.len()
            } else {
                s.real.len()
            }
        });
        let empty = || -> Vec<Vec<u32>> {
            dense
                .iter()
                .map(|&p| vec![0u32; slots[pairs[p].0].width * slots[pairs[p].1].width])
                .collect()
        };
        (0..rows.div_ceil(BLOCK_ROWS))
            .into_par_iter()
            .fold(empty, |mut tables, block| {
                let range = block * BLOCK_ROWS..((block + 1) * BLOCK_ROWS).min(rows);
                for (table, &p) in tables.iter_mut().zip(&dense) {
                    let (a, b) = pairs[p];
                    let width = slots[b].width;
                    for (&x, &y) in codes(a)[range.clone()].iter().zip(&codes(b)[range.clone()]) {
                        table[x as usize * width + y as usize] += 1;
                    }
                }
                tables
            })
            .reduce(empty, |mut left, right| {
                for (l, r) in left.iter_mut().zip(right) {
                    for (x, y) in l.iter_mut().zip(r) {
                        *x += y;
                    }
                }
                left
            })
    };
    let (real, synthetic) = rayon::join(|| count_side(false), || count_side(true));
    let mut scores = vec![(f64::NAN, f64::NAN); pairs.len()];
    for ((&p, real), synthetic) in dense.iter().zip(real).zip(synthetic) {
        let (a, b) = pairs[p];
        let cells: Vec<(usize, [u32; 2])> = real
            .into_iter()
            .zip(synthetic)
            .enumerate()
            .filter(|(_, (r, s))| r + s > 0)
            .map(|(cell, (r, s))| (cell, [r, s]))
            .collect();
        scores[p] = score_cells(
            &cells,
            slots[a].width,
            slots[b].width,
            slots[a].real.len(),
            slots[a].synthetic.len(),
        );
    }
    let sparse: Vec<usize> = (0..pairs.len()).filter(|p| !dense.contains(p)).collect();
    let sparse_scores: Vec<(f64, f64)> = sparse
        .par_iter()
        .map(|&p| contingency_similarity(&slots[pairs[p].0], &slots[pairs[p].1]))
        .collect();
    for (p, score) in sparse.into_iter().zip(sparse_scores) {
        scores[p] = score;
    }
    scores
}

/// 1 − the total variation distance between the joint frequencies of two columns, nulls
/// counted as a value of their own, and Cramér's V of the real table. The cells are counted
/// in hash maps, which suits any width; [`contingency_similarities`] counts narrow pairs
/// densely, many at a time.
pub fn contingency_similarity(a: &Slots, b: &Slots) -> (f64, f64) {
    if a.real.is_empty() || a.synthetic.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let width_b = b.width;
    let count = |first: &[u16], second: &[u16]| -> HashMap<usize, u32> {
        let mut sparse: HashMap<usize, u32> = HashMap::new();
        for (&x, &y) in first.iter().zip(second) {
            *sparse.entry(x as usize * width_b + y as usize).or_default() += 1;
        }
        sparse
    };
    let real = count(&a.real, &b.real);
    let synthetic = count(&a.synthetic, &b.synthetic);
    let mut cells: Vec<usize> = real.keys().chain(synthetic.keys()).copied().collect();
    cells.sort_unstable();
    cells.dedup();
    let counts: Vec<(usize, [u32; 2])> = cells
        .into_iter()
        .map(|cell| {
            let count = |side: &HashMap<usize, u32>| side.get(&cell).copied().unwrap_or(0);
            (cell, [count(&real), count(&synthetic)])
        })
        .collect();
    score_cells(&counts, a.width, width_b, a.real.len(), a.synthetic.len())
}

/// The similarity and real Cramér's V from the non-empty cells of a joint table, in cell
/// order.
fn score_cells(
    counts: &[(usize, [u32; 2])],
    width_a: usize,
    width_b: usize,
    n_real: usize,
    n_synthetic: usize,
) -> (f64, f64) {
    let (n_real, n_synthetic) = (n_real as f64, n_synthetic as f64);
    if n_real == 0.0 || n_synthetic == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let distance: f64 = counts
        .iter()
        .map(|(_, [r, s])| (*r as f64 / n_real - *s as f64 / n_synthetic).abs())
        .sum();

    // Cramér's V from the real cells: χ² = n (Σ O² / (row · column) − 1).
    let mut rows = vec![0u64; width_a];
    let mut columns = vec![0u64; width_b];
    for (cell, [r, _]) in counts {
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
    fn bins_agree_with_counting_edges() {
        let values: Vec<f64> = (0..2000)
            .map(|i| ((i * 7919) % 1013) as f64 * 0.37 - 50.0)
            .collect();
        let edges = bin_edges(&values);
        let probes = values
            .iter()
            .copied()
            .chain(edges.iter().copied())
            .chain([-1e9, 1e9]);
        for value in probes {
            let counted = edges.partition_point(|&edge| edge <= value).max(1) - 1;
            assert_eq!(bin_of(value, &edges) as usize, counted, "{value}");
        }
    }

    #[test]
    fn dense_and_hashed_counting_agree() {
        let column = |seed: u32, levels: u32| -> Vec<u32> {
            (0..500u32)
                .map(|i| {
                    if (i * seed).is_multiple_of(17) {
                        NULL
                    } else {
                        (i * seed + i / 7) % levels
                    }
                })
                .collect()
        };
        let slots = vec![
            Slots::new(column(3, 5), column(7, 5)),
            Slots::new(column(11, 9), column(13, 8)),
        ];
        let batched = contingency_similarities(&slots, &[(0, 1)]);
        let single = contingency_similarity(&slots[0], &slots[1]);
        assert!((batched[0].0 - single.0).abs() < 1e-12 && (batched[0].1 - single.1).abs() < 1e-12);
    }

    #[test]
    fn contingency_of_identical_tables_is_one() {
        let a = [0, 1, 1, NULL];
        let b = [2, 0, 0, 1];
        let slots = |real: &[u32], synthetic: &[u32]| Slots::new(real.to_vec(), synthetic.to_vec());
        assert_eq!(
            contingency_similarity(&slots(&a, &a), &slots(&b, &b)).0,
            1.0
        );
        let c = [0, 0, 0, 0];
        assert!(
            contingency_similarity(&slots(&a, &c), &slots(&b, &c))
                .0
                .abs()
                < 1e-12
        );
        // Perfectly associated columns have V = 1.
        let x = [0, 0, 1, 1, 2, 2];
        assert!((contingency_similarity(&slots(&x, &x), &slots(&x, &x)).1 - 1.0).abs() < 1e-12);
    }
}
