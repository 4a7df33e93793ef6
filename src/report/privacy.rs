//! Privacy: how close the synthetic rows come to the rows they were trained on.
//!
//! Every distance uses one encoding for all tables, fixed by the real training rows: a number
//! becomes its position in the real range (0 to 1) plus a null flag, a category a one-hot block
//! over its most frequent levels, an "other" slot and a null slot, scaled so that two different
//! categories are exactly 1 apart. Distances are Euclidean in that space, so a full-range gap in
//! one number weighs as much as one mismatched category.
//!
//! Nearest neighbours are exact: each query is compared with every row of its reference set,
//! block by block through one matrix product. Queries are a seeded sample of the synthetic rows
//! (20,000 by default) and each share is reported with a 95% Wilson interval. Exact copies are
//! checked for every synthetic row against every training row.

use rayon::prelude::*;
use serde::Serialize;

use super::prepare::{Column, NULL, Side, Tables, Values, sample_rows};
use crate::gan::fused::{Split, product_with};
use crate::rng::{Purpose, substream};

/// Levels of a categorical column that get a one-hot slot of their own in distances.
pub const DISTANCE_LEVELS: usize = 32;

/// Sample sizes and thresholds of the privacy section.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyConfig {
    /// Synthetic rows whose nearest neighbours are searched.
    pub queries: usize,
    /// Largest reference set a nearest-neighbour search compares against.
    pub reference_rows: usize,
    /// A category seen fewer than this many times in the training rows is rare.
    pub rare_below: usize,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            queries: 20_000,
            reference_rows: 200_000,
            rare_below: 5,
        }
    }
}

/// A share with its 95% confidence interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Share {
    /// The share.
    pub value: f64,
    /// Lower and upper end of the 95% Wilson interval.
    pub interval: [f64; 2],
    /// Rows it was measured on.
    pub rows: usize,
}

impl Share {
    fn of(hits: f64, rows: usize) -> Share {
        let n = rows as f64;
        let p = if rows == 0 { f64::NAN } else { hits / n };
        let z: f64 = 1.96;
        let denominator = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denominator;
        let half = z / denominator * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        Share {
            value: p,
            interval: [(centre - half).max(0.0), (centre + half).min(1.0)],
            rows,
        }
    }
}

/// A rare training category that the synthetic rows reproduce.
#[derive(Debug, Clone, Serialize)]
pub struct RareLeak {
    /// The column.
    pub column: String,
    /// The category.
    pub value: String,
    /// Times it occurs in the training rows.
    pub train_count: usize,
    /// Times it occurs in the synthetic rows.
    pub synthetic_count: usize,
}

/// Medians of the nearest-neighbour distances.
#[derive(Debug, Clone, Serialize)]
pub struct DistanceMedians {
    /// From synthetic rows to the training reference.
    pub synthetic_to_train: f64,
    /// From synthetic rows to the holdout.
    pub synthetic_to_holdout: Option<f64>,
    /// From holdout rows to the training reference: the distance a fresh real row has.
    pub holdout_to_train: Option<f64>,
}

/// The privacy section.
#[derive(Debug, Clone, Serialize)]
pub struct Privacy {
    /// Share of synthetic rows closer to the training rows than to the holdout, the two
    /// reference sets of equal size; 0.5 is ideal, 1 means every row sits on its training
    /// data.
    pub dcr_closer_to_train_share: Option<f64>,
    /// The same share with its interval.
    pub dcr_closer_to_train: Option<Share>,
    /// Median over synthetic rows of nearest over second-nearest training distance; near 1
    /// means no row sits much closer to one training row than to the next.
    pub nndr_median: f64,
    /// The holdout's own median nearest-neighbour distance ratio, for scale.
    pub holdout_nndr_median: Option<f64>,
    /// Share of synthetic rows equal to a training row in every compared column.
    pub exact_copy_share: f64,
    /// Synthetic rows equal to a training row.
    pub exact_copies: usize,
    /// Share of holdout rows equal to a training row: the rate at which real data repeats
    /// itself.
    pub holdout_exact_copy_share: Option<f64>,
    /// ROC AUC of telling training rows from holdout rows by their distance to the nearest
    /// synthetic row; 0.5 means the synthetic rows reveal nothing about membership.
    pub mia_auc: Option<f64>,
    /// Rare training categories (seen fewer than `rare_below` times) that appear in the
    /// synthetic rows.
    pub rare_category_leaks: usize,
    /// Rare training categories in all.
    pub rare_categories: usize,
    /// Share of the rare training categories that the holdout also holds: how often a rare
    /// value is simply a value of the population rather than of one record.
    pub holdout_rare_category_share: Option<f64>,
    /// The threshold below which a category is rare.
    pub rare_below: usize,
    /// The leaked categories, at most 50.
    pub rare_category_examples: Vec<RareLeak>,
    /// Nearest-neighbour distance medians.
    pub distance_medians: DistanceMedians,
    /// Synthetic query rows.
    pub queries: usize,
    /// Rows of each reference set of the distance-to-closest-record test.
    pub reference_rows: usize,
    /// Distances behind the medians, for the report's plots.
    #[serde(skip)]
    pub distances: Distances,
}

/// Nearest-neighbour distances, one per query row.
#[derive(Debug, Clone, Default)]
pub struct Distances {
    /// Synthetic queries to the training reference.
    pub synthetic_to_train: Vec<f32>,
    /// Holdout queries to the training reference.
    pub holdout_to_train: Vec<f32>,
}

/// Rows encoded for distances, row-major.
struct Encoded {
    values: Vec<f32>,
    norms: Vec<f32>,
    width: usize,
}

impl Encoded {
    fn new(values: Vec<f32>, width: usize) -> Encoded {
        let norms = values
            .chunks(width)
            .map(|row| row.iter().map(|v| v * v).sum())
            .collect();
        Encoded {
            values,
            norms,
            width,
        }
    }

    fn rows(&self) -> usize {
        self.norms.len()
    }
}

/// How one column turns into distance coordinates.
enum Coordinates {
    Number {
        low: f64,
        scale: f64,
        null_flag: bool,
    },
    Category {
        slots: Vec<u32>,
        width: usize,
    },
}

impl Coordinates {
    fn of(column: &Column) -> Coordinates {
        match &column.real {
            Values::Numbers(real) => {
                let (low, high) = super::fidelity::min_max(real).unwrap_or((0.0, 0.0));
                let null_flag = [Side::Real, Side::Synthetic, Side::Holdout]
                    .iter()
                    .filter_map(|&side| column.side(side))
                    .any(|values| values.null_share() > 0.0);
                let scale = if high > low { 1.0 / (high - low) } else { 0.0 };
                Coordinates::Number {
                    low,
                    scale,
                    null_flag,
                }
            }
            Values::Codes(_) => {
                // Codes are ordered by falling real frequency, so the first levels are the most
                // frequent ones.
                let own = column.levels.len().min(DISTANCE_LEVELS);
                let other = (column.levels.len() > own) as usize;
                let slots = (0..column.levels.len())
                    .map(|code| code.min(own) as u32)
                    .collect();
                Coordinates::Category {
                    slots,
                    width: own + other + 1,
                }
            }
        }
    }

    fn width(&self) -> usize {
        match self {
            Coordinates::Number { null_flag, .. } => 1 + *null_flag as usize,
            Coordinates::Category { width, .. } => *width,
        }
    }

    fn write(&self, values: &Values, row: usize, out: &mut [f32]) {
        match (self, values) {
            (
                Coordinates::Number {
                    low,
                    scale,
                    null_flag,
                },
                Values::Numbers(numbers),
            ) => {
                let value = numbers[row];
                if value.is_nan() {
                    out[0] = 0.0;
                    if *null_flag {
                        out[1] = 1.0;
                    }
                } else {
                    out[0] = ((value - low) * scale) as f32;
                }
            }
            (Coordinates::Category { slots, width }, Values::Codes(codes)) => {
                let code = codes[row];
                let slot = if code == NULL {
                    width - 1
                } else {
                    slots[code as usize] as usize
                };
                out[slot] = std::f32::consts::FRAC_1_SQRT_2;
            }
            _ => {}
        }
    }
}

fn encode(tables: &Tables, coordinates: &[Coordinates], side: Side, rows: &[usize]) -> Encoded {
    let width: usize = coordinates.iter().map(Coordinates::width).sum();
    let mut values = vec![0.0f32; rows.len() * width];
    values
        .par_chunks_mut(width)
        .zip(rows.par_iter())
        .for_each(|(out, &row)| {
            let mut offset = 0;
            for (column, coords) in tables.columns.iter().zip(coordinates) {
                let span = coords.width();
                if let Some(values) = column.side(side) {
                    coords.write(values, row, &mut out[offset..offset + span]);
                }
                offset += span;
            }
        });
    Encoded::new(values, width)
}

/// Distances from every query to its nearest and second-nearest reference rows.
fn nearest(queries: &Encoded, reference: &Encoded) -> Vec<[f32; 2]> {
    const QUERY_BLOCK: usize = 256;
    const REFERENCE_BLOCK: usize = 2048;
    let width = queries.width;
    let mut found = vec![[f32::INFINITY; 2]; queries.rows()];
    found
        .par_chunks_mut(QUERY_BLOCK)
        .enumerate()
        .for_each(|(block, best)| {
            let start = block * QUERY_BLOCK;
            let q_rows = best.len();
            let q = &queries.values[start * width..(start + q_rows) * width];
            let mut products = vec![0.0f32; QUERY_BLOCK * REFERENCE_BLOCK];
            for r_start in (0..reference.rows()).step_by(REFERENCE_BLOCK) {
                let r_rows = REFERENCE_BLOCK.min(reference.rows() - r_start);
                let r = &reference.values[r_start * width..(r_start + r_rows) * width];
                product_with(
                    &mut products,
                    (q_rows, r_rows, width),
                    (q, width, 1),
                    (r, 1, width),
                    Split::No,
                );
                for (i, pair) in best.iter_mut().enumerate() {
                    let q_norm = queries.norms[start + i];
                    let row = &products[i * r_rows..(i + 1) * r_rows];
                    for (j, &dot) in row.iter().enumerate() {
                        let squared = (q_norm + reference.norms[r_start + j] - 2.0 * dot).max(0.0);
                        if squared < pair[1] {
                            if squared < pair[0] {
                                pair[1] = pair[0];
                                pair[0] = squared;
                            } else {
                                pair[1] = squared;
                            }
                        }
                    }
                }
            }
        });
    for pair in &mut found {
        pair[0] = pair[0].sqrt();
        pair[1] = pair[1].sqrt();
    }
    found
}

/// Nearest over second-nearest distance; 1 when both are 0.
fn ratio(pair: [f32; 2]) -> f64 {
    if pair[1] == 0.0 {
        1.0
    } else {
        (pair[0] / pair[1]) as f64
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Computes the privacy section.
pub fn privacy(tables: &Tables, config: &PrivacyConfig, seed: u64) -> Privacy {
    let coordinates: Vec<Coordinates> = tables.columns.iter().map(Coordinates::of).collect();
    let mut rng = substream(seed, Purpose::Split, 101);
    let (n_real, n_synthetic, n_holdout) = (
        tables.rows(Side::Real),
        tables.rows(Side::Synthetic),
        tables.rows(Side::Holdout),
    );

    let query_rows = sample_rows(n_synthetic, config.queries, &mut rng);
    let queries = encode(tables, &coordinates, Side::Synthetic, &query_rows);

    // Equal-size reference sets: the holdout (capped) and as many training rows.
    let reference_size = if tables.has_holdout() {
        n_holdout.min(n_real).min(config.reference_rows)
    } else {
        n_real.min(config.reference_rows)
    };
    let train_rows = sample_rows(n_real, reference_size, &mut rng);
    let train = encode(tables, &coordinates, Side::Real, &train_rows);
    let to_train = nearest(&queries, &train);
    let nndr_median = median(to_train.iter().map(|&pair| ratio(pair)).collect());

    let mut distances = Distances {
        synthetic_to_train: to_train.iter().map(|pair| pair[0]).collect(),
        holdout_to_train: Vec::new(),
    };
    let mut privacy = Privacy {
        dcr_closer_to_train_share: None,
        dcr_closer_to_train: None,
        nndr_median,
        holdout_nndr_median: None,
        exact_copy_share: 0.0,
        exact_copies: 0,
        holdout_exact_copy_share: None,
        mia_auc: None,
        rare_category_leaks: 0,
        rare_categories: 0,
        holdout_rare_category_share: None,
        rare_below: config.rare_below,
        rare_category_examples: Vec::new(),
        distance_medians: DistanceMedians {
            synthetic_to_train: median(
                distances
                    .synthetic_to_train
                    .iter()
                    .map(|&d| d as f64)
                    .collect(),
            ),
            synthetic_to_holdout: None,
            holdout_to_train: None,
        },
        queries: query_rows.len(),
        reference_rows: reference_size,
        distances: Distances::default(),
    };

    if tables.has_holdout() {
        let holdout_rows = sample_rows(n_holdout, reference_size, &mut rng);
        let holdout = encode(tables, &coordinates, Side::Holdout, &holdout_rows);
        let to_holdout = nearest(&queries, &holdout);
        let closer: f64 = to_train
            .iter()
            .zip(&to_holdout)
            .map(|(t, h)| match t[0].total_cmp(&h[0]) {
                std::cmp::Ordering::Less => 1.0,
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Greater => 0.0,
            })
            .sum();
        let share = Share::of(closer, query_rows.len());
        privacy.dcr_closer_to_train_share = Some(share.value);
        privacy.dcr_closer_to_train = Some(share);
        privacy.distance_medians.synthetic_to_holdout = Some(median(
            to_holdout.iter().map(|pair| pair[0] as f64).collect(),
        ));

        // The natural distance of a real row that was not trained on.
        let holdout_queries = sample_rows(n_holdout, config.queries, &mut rng);
        let fresh = encode(tables, &coordinates, Side::Holdout, &holdout_queries);
        let fresh_to_train = nearest(&fresh, &train);
        distances.holdout_to_train = fresh_to_train.iter().map(|pair| pair[0]).collect();
        privacy.distance_medians.holdout_to_train = Some(median(
            distances
                .holdout_to_train
                .iter()
                .map(|&d| d as f64)
                .collect(),
        ));
        privacy.holdout_nndr_median = Some(median(
            fresh_to_train.iter().map(|&pair| ratio(pair)).collect(),
        ));

        // Membership inference: members and non-members of equal number, scored by how close
        // the nearest synthetic row comes.
        let attack_size = (config.queries / 2).min(n_holdout).min(n_real);
        let members = sample_rows(n_real, attack_size, &mut rng);
        let outsiders = sample_rows(n_holdout, attack_size, &mut rng);
        let synthetic_reference = sample_rows(n_synthetic, config.reference_rows, &mut rng);
        let synthetic = encode(tables, &coordinates, Side::Synthetic, &synthetic_reference);
        let member_distance = nearest(
            &encode(tables, &coordinates, Side::Real, &members),
            &synthetic,
        );
        let outsider_distance = nearest(
            &encode(tables, &coordinates, Side::Holdout, &outsiders),
            &synthetic,
        );
        let scores: Vec<f64> = member_distance
            .iter()
            .chain(&outsider_distance)
            .map(|pair| -(pair[0] as f64))
            .collect();
        let labels: Vec<bool> = (0..scores.len())
            .map(|i| i < member_distance.len())
            .collect();
        privacy.mia_auc = Some(super::learn::roc_auc(&scores, &labels));
    }
    privacy.distances = distances;

    // Exact copies, over every row.
    let copies = tables.training_row_copies(Side::Synthetic);
    privacy.exact_copies = copies;
    privacy.exact_copy_share = copies as f64 / n_synthetic.max(1) as f64;
    if tables.has_holdout() {
        let repeats = tables.training_row_copies(Side::Holdout);
        privacy.holdout_exact_copy_share = Some(repeats as f64 / n_holdout.max(1) as f64);
    }

    // Rare categories.
    let mut rare_in_holdout = 0usize;
    for column in &tables.columns {
        let (Values::Codes(real), Values::Codes(synthetic)) = (&column.real, &column.synthetic)
        else {
            continue;
        };
        let count = |codes: &[u32]| {
            let mut counts = vec![0usize; column.levels.len()];
            for &code in codes.iter().filter(|&&code| code != NULL) {
                counts[code as usize] += 1;
            }
            counts
        };
        let (train_counts, synthetic_counts) = (count(real), count(synthetic));
        let holdout_counts = column.holdout.as_ref().and_then(Values::codes).map(count);
        for (code, (&train_count, &synthetic_count)) in
            train_counts.iter().zip(&synthetic_counts).enumerate()
        {
            if train_count == 0 || train_count >= config.rare_below {
                continue;
            }
            privacy.rare_categories += 1;
            if holdout_counts
                .as_ref()
                .is_some_and(|counts| counts[code] > 0)
            {
                rare_in_holdout += 1;
            }
            if synthetic_count > 0 {
                privacy.rare_category_leaks += 1;
                if privacy.rare_category_examples.len() < 50 {
                    privacy.rare_category_examples.push(RareLeak {
                        column: column.name().to_owned(),
                        value: column.levels[code].clone(),
                        train_count,
                        synthetic_count,
                    });
                }
            }
        }
    }
    if tables.has_holdout() && privacy.rare_categories > 0 {
        privacy.holdout_rare_category_share =
            Some(rare_in_holdout as f64 / privacy.rare_categories as f64);
    }
    privacy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(rows: &[&[f32]]) -> Encoded {
        Encoded::new(
            rows.iter().flat_map(|row| row.iter().copied()).collect(),
            rows[0].len(),
        )
    }

    #[test]
    fn nearest_matches_brute_force() {
        let mut rng = substream(1, Purpose::Split, 0);
        let mut points = |n: usize| -> Vec<Vec<f32>> {
            (0..n)
                .map(|_| (0..5).map(|_| rand::Rng::random::<f32>(&mut rng)).collect())
                .collect()
        };
        let (q, r) = (points(300), points(5000));
        let refs = |rows: &[Vec<f32>]| encoded(&rows.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let found = nearest(&refs(&q), &refs(&r));
        for (query, pair) in q.iter().zip(&found) {
            let mut all: Vec<f32> = r
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(query)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f32>()
                        .sqrt()
                })
                .collect();
            all.sort_by(f32::total_cmp);
            assert!((pair[0] - all[0]).abs() < 1e-3 && (pair[1] - all[1]).abs() < 1e-3);
        }
    }

    #[test]
    fn wilson_interval_contains_the_share() {
        let share = Share::of(30.0, 100);
        assert!(share.interval[0] < 0.3 && 0.3 < share.interval[1]);
        assert!((share.interval[0] - 0.219).abs() < 0.005);
    }
}
