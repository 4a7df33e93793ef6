//! The conditional vector and training-by-sampling (CTGAN, section 4.3).
//!
//! Each training row is conditioned on one discrete column, chosen uniformly, and one of its
//! categories. CTGAN draws the category with probability proportional to the log of its
//! frequency, so that rare categories are seen more often; synth draws it by frequency by
//! default, because the log-frequency mix teaches the generator label shares far from the
//! data's, and offers log-frequency and a mix of the two as options. The real row the critic
//! compares against is drawn among the training rows that have that category.
//!
//! In generation, unconditioned rows pick a column uniformly and a category by its true
//! frequency, so each column's marginal is kept; `--condition` fixes the categories instead.

use rand::Rng;

use crate::encode::EncodedTable;
use crate::encode::layout::Layout;
use crate::gan::ops::Target;
use crate::rng::Stream;

/// How categories are weighted when drawn.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Weighting {
    /// `log(1 + count)`: CTGAN's training choice
    LogFrequency,
    /// `count`: the data's own mix; synth's default, and always used in generation
    #[default]
    Frequency,
    /// The mean of the two distributions above
    Mixed,
}

/// Draws conditional vectors and the real rows that match them.
#[derive(Debug, Clone)]
pub struct CondSampler {
    layout: Layout,
    /// Per discrete span, cumulative category weights for log-frequency and frequency.
    cumulative: Vec<[Vec<f64>; 3]>,
    /// Per discrete span and slot, the training rows holding it (empty when built for
    /// generation only).
    rows_by_slot: Vec<Vec<Vec<u32>>>,
}

/// The conditions drawn for a batch.
#[derive(Debug, Clone, Default)]
pub struct CondBatch {
    /// Row-major conditional vectors, `rows × cond_dim`.
    pub vectors: Vec<f32>,
    /// The (discrete span, slot) each row is conditioned on.
    pub choices: Vec<(usize, usize)>,
}

impl CondSampler {
    /// Builds the sampler from slot counts (one list per discrete span, in layout order) and,
    /// for training, the encoded table whose rows are drawn.
    pub fn new(layout: &Layout, counts: &[Vec<u64>], table: Option<&EncodedTable>) -> CondSampler {
        let cumulative = counts
            .iter()
            .map(|counts| {
                let running = |weight: &dyn Fn(u64) -> f64| {
                    let mut total = 0.0;
                    counts
                        .iter()
                        .map(|&count| {
                            total += weight(count);
                            total
                        })
                        .collect::<Vec<f64>>()
                };
                let total: f64 = counts.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
                let log_total: f64 = counts
                    .iter()
                    .map(|&c| (1.0 + c as f64).ln())
                    .sum::<f64>()
                    .max(f64::MIN_POSITIVE);
                [
                    running(&|count| (1.0 + count as f64).ln()),
                    running(&|count| count as f64),
                    running(&|count| {
                        0.5 * (1.0 + count as f64).ln() / log_total + 0.5 * count as f64 / total
                    }),
                ]
            })
            .collect();
        let rows_by_slot = match table {
            Some(table) => table
                .slots
                .iter()
                .zip(&layout.discrete)
                .map(|(slots, span)| {
                    let mut by_slot = vec![Vec::new(); span.width];
                    for (row, &slot) in slots.iter().enumerate() {
                        by_slot[slot as usize].push(row as u32);
                    }
                    by_slot
                })
                .collect(),
            None => Vec::new(),
        };
        CondSampler {
            layout: layout.clone(),
            cumulative,
            rows_by_slot,
        }
    }

    /// Whether the table has discrete columns to condition on.
    pub fn is_empty(&self) -> bool {
        self.layout.discrete.is_empty()
    }

    /// Draws a column and category for each of `rows` rows.
    pub fn draw(&self, rows: usize, weighting: Weighting, rng: &mut Stream) -> CondBatch {
        let mut batch = CondBatch {
            vectors: vec![0.0; rows * self.layout.cond_dim],
            choices: Vec::with_capacity(rows),
        };
        if self.is_empty() {
            return batch;
        }
        let which = match weighting {
            Weighting::LogFrequency => 0,
            Weighting::Mixed => 2,
            Weighting::Frequency => 1,
        };
        for row in 0..rows {
            let span = rng.random_range(0..self.layout.discrete.len());
            let cumulative = &self.cumulative[span][which];
            let total = cumulative.last().copied().unwrap_or(0.0);
            let draw = rng.random::<f64>() * total;
            let slot = cumulative
                .partition_point(|&c| c <= draw)
                .min(cumulative.len() - 1);
            batch.set(
                row,
                self.layout.cond_dim,
                self.layout.discrete[span].cond_offset + slot,
            );
            batch.choices.push((span, slot));
        }
        batch
    }

    /// A batch where every row has the same fixed categories, one (discrete span, slot) pair
    /// per conditioned column.
    pub fn fixed(&self, rows: usize, conditions: &[(usize, usize)]) -> CondBatch {
        let mut batch = CondBatch {
            vectors: vec![0.0; rows * self.layout.cond_dim],
            choices: Vec::new(),
        };
        for row in 0..rows {
            for &(span, slot) in conditions {
                batch.set(
                    row,
                    self.layout.cond_dim,
                    self.layout.discrete[span].cond_offset + slot,
                );
            }
        }
        batch
    }

    /// Draws, for each choice, a training row holding that category.
    pub fn matching_row(&self, choice: (usize, usize), rng: &mut Stream) -> usize {
        let rows = &self.rows_by_slot[choice.0][choice.1];
        rows[rng.random_range(0..rows.len())] as usize
    }

    /// The conditional-loss targets of a batch's choices.
    pub fn targets(&self, batch: &CondBatch) -> Vec<Target> {
        batch
            .choices
            .iter()
            .map(|&(span, slot)| {
                let span = &self.layout.discrete[span];
                Target {
                    offset: span.offset,
                    width: span.width,
                    slot,
                }
            })
            .collect()
    }
}

impl CondBatch {
    fn set(&mut self, row: usize, width: usize, position: usize) {
        self.vectors[row * width + position] = 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::layout::Activation;
    use crate::rng::{Purpose, stream};

    fn layout() -> Layout {
        let mut layout = Layout::default();
        layout.push(0, 1, Activation::Tanh, false);
        layout.push(1, 3, Activation::Softmax, true);
        layout.push(2, 2, Activation::Softmax, true);
        layout
    }

    /// Columns are drawn uniformly and categories by log-frequency in training, by frequency in
    /// generation: with counts (900, 90, 10), log weights are ln 901 : ln 91 : ln 11.
    #[test]
    fn category_frequencies_follow_the_weighting() {
        let counts = vec![vec![900, 90, 10], vec![50, 50]];
        let sampler = CondSampler::new(&layout(), &counts, None);
        let draws = 200_000;
        for (weighting, expected) in [
            (Weighting::LogFrequency, {
                let w = [901f64.ln(), 91f64.ln(), 11f64.ln()];
                let total: f64 = w.iter().sum();
                [w[0] / total, w[1] / total, w[2] / total]
            }),
            (Weighting::Frequency, [0.9, 0.09, 0.01]),
            (Weighting::Mixed, {
                let w = [901f64.ln(), 91f64.ln(), 11f64.ln()];
                let total: f64 = w.iter().sum();
                [
                    0.5 * w[0] / total + 0.45,
                    0.5 * w[1] / total + 0.045,
                    0.5 * w[2] / total + 0.005,
                ]
            }),
        ] {
            let batch = sampler.draw(draws, weighting, &mut stream(9, Purpose::Condition));
            let first: Vec<usize> = batch
                .choices
                .iter()
                .filter(|c| c.0 == 0)
                .map(|c| c.1)
                .collect();
            let share_first = first.len() as f64 / draws as f64;
            assert!(
                (share_first - 0.5).abs() < 0.01,
                "column share {share_first}"
            );
            for (slot, want) in expected.iter().enumerate() {
                let got = first.iter().filter(|&&s| s == slot).count() as f64 / first.len() as f64;
                assert!(
                    (got - want).abs() < 0.01,
                    "{weighting:?} slot {slot}: {got} vs {want}"
                );
            }
            let ones: f32 = batch.vectors.iter().sum();
            assert_eq!(ones as usize, draws);
        }
    }

    #[test]
    fn fixed_conditions_set_every_row() {
        let sampler = CondSampler::new(&layout(), &[vec![1, 1, 1], vec![1, 1]], None);
        let batch = sampler.fixed(3, &[(0, 2), (1, 0)]);
        for row in batch.vectors.chunks(5) {
            assert_eq!(row, &[0.0, 0.0, 1.0, 1.0, 0.0]);
        }
    }
}
