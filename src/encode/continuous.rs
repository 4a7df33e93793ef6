//! Mode-specific normalisation of a numeric column (CTGAN, arXiv 1907.00503, section 4.2).
//!
//! A variational Gaussian mixture is fitted to the column. Each value is then written as the
//! one-hot of a mode drawn from its posterior over the modes, plus a scalar
//! `(x - mean) / (4 std)` of that mode, clipped to [-0.99, 0.99]. A column with nulls also gets
//! a two-slot block (present, null) that takes part in the conditional vector like a discrete
//! column, so training-by-sampling shows the generator null and present rows in a balanced
//! way and generation reproduces the null share.
//!
//! CTGAN clips the scalar of a value that lies far from its drawn mode, losing it; here such
//! a value moves to the mode it fits best, so encoding is lossless unless a value is beyond
//! 3.96 standard deviations of every mode.
//!
//! Decoding takes the mode with the highest score and inverts the scaling; the result is
//! clamped to the range seen in training and rounded for integer and datetime columns.
//!
//! # Limitations
//! - Values outside the training range are never produced.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::encode::bgm::{BgmConfig, Mixture};
use crate::encode::layout::argmax;
use crate::rng::Stream;

/// The fitted encoder of one numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuousEncoder {
    /// The mixture; its components are the modes.
    pub mixture: Mixture,
    /// Smallest value seen in training.
    pub min: f64,
    /// Largest value seen in training.
    pub max: f64,
    /// Whether decoded values are rounded to whole numbers.
    pub round: bool,
    /// Training counts of present and null values; the null block exists when the second is
    /// not zero.
    pub presence: [u64; 2],
}

/// Scale of a mode's scalar: a value 4 standard deviations from its mode's mean maps to 1.
const SCALE_STDS: f64 = 4.0;
/// The scalar is clipped to this magnitude.
const CLIP: f64 = 0.99;

impl ContinuousEncoder {
    /// Fits on the non-null `values` (at least one), using at most `sample` of them for the
    /// mixture.
    pub fn fit(
        values: &[f64],
        nulls: u64,
        round: bool,
        config: &BgmConfig,
        sample: usize,
        rng: &mut Stream,
    ) -> ContinuousEncoder {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mixture = if values.len() > sample {
            let chosen: Vec<f64> = rand::seq::index::sample(rng, values.len(), sample)
                .into_iter()
                .map(|index| values[index])
                .collect();
            Mixture::fit(&chosen, config, rng)
        } else {
            Mixture::fit(values, config, rng)
        };
        let presence = [values.len() as u64, nulls];
        ContinuousEncoder {
            mixture,
            min,
            max,
            round,
            presence,
        }
    }

    /// Whether the column has a null block.
    pub fn nullable(&self) -> bool {
        self.presence[1] > 0
    }

    /// Encodes one value into `scalar` (width 1) and `modes` (one slot per mode), which must be
    /// zeroed; a null leaves both at zero. Returns the slot of the null block: 0 present,
    /// 1 null. `posterior` is scratch space of the mixture's length.
    pub fn encode(
        &self,
        value: Option<f64>,
        rng: &mut Stream,
        posterior: &mut [f64],
        scalar: &mut f32,
        modes: &mut [f32],
    ) -> usize {
        let Some(value) = value else {
            return 1;
        };
        self.mixture.posterior(value, posterior);
        let draw: f64 = rng.random();
        let mut mode = posterior.len() - 1;
        let mut cumulative = 0.0;
        for (index, probability) in posterior.iter().enumerate() {
            cumulative += probability;
            if draw < cumulative {
                mode = index;
                break;
            }
        }
        let normalise = |mode: usize| {
            (value - self.mixture.means[mode]) / (SCALE_STDS * self.mixture.stds[mode])
        };
        // A value the drawn mode cannot represent (beyond ±0.99) moves to the mode it is
        // closest to in that mode's own scale, so that it is clipped only when no mode fits.
        if normalise(mode).abs() > CLIP {
            let closest = (0..self.mixture.len())
                .min_by(|&a, &b| normalise(a).abs().total_cmp(&normalise(b).abs()));
            mode = closest.unwrap_or(mode);
        }
        *scalar = normalise(mode).clamp(-CLIP, CLIP) as f32;
        modes[mode] = 1.0;
        0
    }

    /// Decodes a scalar in [-1, 1], mode scores and, for a nullable column, null-block scores
    /// (the largest wins in each) back to a value.
    pub fn decode(&self, scalar: f32, modes: &[f32], null: Option<&[f32]>) -> Option<f64> {
        if null.is_some_and(|scores| argmax(scores) == 1) {
            return None;
        }
        let mode = argmax(modes);
        let normalised = f64::from(scalar.clamp(-1.0, 1.0));
        let value = normalised * SCALE_STDS * self.mixture.stds[mode] + self.mixture.means[mode];
        let value = value.clamp(self.min, self.max);
        Some(if self.round { value.round() } else { value })
    }
}
