//! Settings of every stage, with their defaults.
//!
//! This is the one home of default values: the command line reads its defaults from these
//! `Default` impls, and a fitted model stores the resolved settings it was trained with.
//! The GAN defaults are those of the CTGAN reference (Xu et al. 2019, arXiv 1907.00503).

use serde::{Deserialize, Serialize};

use crate::encode::bgm::BgmConfig;

/// How columns are encoded before training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeConfig {
    /// The mixture fitted to each continuous column.
    pub mixture: BgmConfig,
    /// The mixture is fitted on at most this many randomly chosen values of a column; the
    /// whole column is still encoded with it.
    pub mixture_sample: usize,
    /// A categorical column keeps at most this many of its most frequent values as one-hot
    /// entries; the rarer ones share one "other" entry.
    pub max_categories: usize,
    /// Integer columns with at most this many distinct values are inferred as categorical
    /// when they have at most [`EncodeConfig::FEW_DISTINCT`] or each is seen at least
    /// [`EncodeConfig::CATEGORY_MEAN_ROWS`] times on average.
    pub categorical_max_distinct: usize,
    /// A categorical value seen fewer than this many times is rare: it is not stored in the
    /// model and never generated (1 keeps every value).
    #[serde(default = "EncodeConfig::no_rare_protection")]
    pub rare_below: u64,
    /// Find categorical columns that decide others (a fraud scenario, the fraud label) and
    /// keep every generated row consistent with them (see [`crate::encode::links`]).
    #[serde(default)]
    pub links: bool,
}

impl EncodeConfig {
    /// The fewest rows per distinct value, on average, for an integer column to be inferred as
    /// categorical: below it the values are too thinly spread to learn one by one.
    pub const CATEGORY_MEAN_ROWS: usize = 10;

    /// Integer columns with at most this many distinct values are categorical however few
    /// rows they have.
    pub const FEW_DISTINCT: usize = 20;

    /// What models saved before rare values were protected did: keep every value.
    fn no_rare_protection() -> u64 {
        1
    }
}

impl Default for EncodeConfig {
    fn default() -> Self {
        Self {
            mixture: BgmConfig::default(),
            mixture_sample: 20_000,
            max_categories: 100,
            categorical_max_distinct: 50,
            rare_below: 5,
            links: true,
        }
    }
}

/// The CTGAN networks and their training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanConfig {
    /// Length of the generator's noise vector.
    pub noise_dim: usize,
    /// Widths of the generator's residual layers.
    pub generator_dims: Vec<usize>,
    /// Widths of the critic's hidden layers.
    pub critic_dims: Vec<usize>,
    /// Number of rows the critic sees together as one sample (PacGAN).
    pub pac: usize,
    /// Dropout probability in the critic.
    pub dropout: f64,
    /// Negative slope of the critic's LeakyReLU.
    pub leaky_slope: f64,
    /// Weight of the WGAN-GP gradient penalty.
    pub penalty_weight: f64,
    /// Temperature of the Gumbel-softmax outputs.
    pub gumbel_tau: f64,
    /// Adam learning rate, for both networks.
    pub learning_rate: f64,
    /// Adam's first-moment decay.
    pub beta1: f64,
    /// Adam's second-moment decay.
    pub beta2: f64,
    /// L2 weight decay added to the gradients, as PyTorch's `Adam(weight_decay=..)` does.
    pub weight_decay: f64,
    /// Rows per training batch; a multiple of `pac`.
    pub batch_size: usize,
    /// Passes over the training rows (resolved: see [`GanConfig::min_steps`]).
    pub epochs: usize,
    /// When no epoch count is given, tables too small for [`GanConfig::epochs`] to make this
    /// many generator steps train for as many epochs as do. CTGAN makes one step per
    /// `batch_size` rows, so 300 epochs of an 800-row table are 300 steps, far from
    /// converged (german_credit's quality rose from 0.857 to 0.882 over eight seeds at
    /// 3,000 steps, credit's from 0.760 to 0.898); a table of 5,000 rows or more is
    /// unaffected. 0 keeps `epochs` as it is.
    #[serde(default)]
    pub min_steps: usize,
    /// Critic steps per generator step.
    pub critic_steps: usize,
    /// How training conditions weight each category. CTGAN draws categories by log-frequency,
    /// which shows rare categories more often but teaches the generator a training mix far
    /// from the data's (a 0.8% fraud label came out at 11-18%); the default draws them by
    /// frequency, which keeps the data's mix. BENCHMARKS.md compares the choices.
    #[serde(default)]
    pub condition_weighting: crate::tabular::cond::Weighting,
}

impl GanConfig {
    /// Generator steps per epoch over `rows` training rows (one per batch, at least one).
    pub fn steps_per_epoch(&self, rows: usize) -> usize {
        (rows / self.batch_size.max(1)).max(1)
    }

    /// The default epoch count for `rows` training rows: [`GanConfig::epochs`], or more when
    /// that makes fewer than [`GanConfig::min_steps`] steps.
    pub fn default_epochs(&self, rows: usize) -> usize {
        self.epochs
            .max(self.min_steps.div_ceil(self.steps_per_epoch(rows)))
    }
}

impl Default for GanConfig {
    fn default() -> Self {
        Self {
            noise_dim: 128,
            generator_dims: vec![256, 256],
            critic_dims: vec![256, 256],
            pac: 10,
            dropout: 0.5,
            leaky_slope: 0.2,
            penalty_weight: 10.0,
            gumbel_tau: 0.2,
            learning_rate: 2e-4,
            beta1: 0.5,
            beta2: 0.9,
            weight_decay: 1e-6,
            batch_size: 500,
            epochs: 300,
            min_steps: 3_000,
            critic_steps: 1,
            condition_weighting: crate::tabular::cond::Weighting::Frequency,
        }
    }
}

/// Everything `synth fit` needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FitConfig {
    /// Column encoding.
    pub encode: EncodeConfig,
    /// Networks and training.
    pub gan: GanConfig,
    /// Which epoch's weights the model keeps.
    #[serde(default)]
    pub select: SelectConfig,
}

/// Choosing the epoch whose weights the model keeps.
///
/// A GAN's samples do not improve steadily: between epochs the quality moves by a few
/// hundredths, and a short fit on a small table ends wherever the last epoch left it. So
/// every `every` epochs the generator draws `rows` rows with the same seeded noise each time,
/// they are scored with the report's quality score (column shapes and pair trends) against
/// a sample of the training rows, and the weights of the best-scoring check are the ones
/// saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectConfig {
    /// Epochs between checks; `Some(0)` turns checks off and keeps the last epoch. `None`
    /// checks `CHECKS` times in a fit, and after the last epoch.
    pub every: Option<usize>,
    /// Rows generated per check, and the most training rows they are compared with.
    pub rows: usize,
    /// Stop after this many checks in a row without a better score; `None` trains every
    /// epoch.
    pub patience: Option<usize>,
}

impl SelectConfig {
    /// Checks in a fit when `every` is not given.
    pub const CHECKS: usize = 50;

    /// The epochs between checks in a fit of `epochs` epochs; 0 when checks are off.
    pub fn interval(&self, epochs: usize) -> usize {
        self.every
            .unwrap_or_else(|| epochs.div_ceil(Self::CHECKS).max(1))
    }
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self {
            every: None,
            rows: 5_000,
            patience: None,
        }
    }
}

/// Settings of `synth generate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateConfig {
    /// Rows produced per generator pass and written per output batch; memory use grows with
    /// this, not with the number of rows asked for.
    pub batch_rows: usize,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        Self { batch_rows: 8_192 }
    }
}

#[cfg(test)]
mod tests {
    use super::{GanConfig, SelectConfig};

    /// Small tables train for as many epochs as make the minimum of steps; from 5,000 rows
    /// (10 batches) the default of 300 epochs holds, and 0 turns the minimum off.
    #[test]
    fn small_tables_train_for_the_minimum_of_steps() {
        let gan = GanConfig::default();
        assert_eq!(gan.default_epochs(100), 3_000);
        assert_eq!(gan.default_epochs(800), 3_000);
        assert_eq!(gan.default_epochs(1_000), 1_500);
        assert_eq!(gan.default_epochs(4_999), 334);
        assert_eq!(gan.default_epochs(5_000), 300);
        assert_eq!(gan.default_epochs(80_000), 300);
        let off = GanConfig {
            min_steps: 0,
            ..GanConfig::default()
        };
        assert_eq!(off.default_epochs(800), 300);
    }

    #[test]
    fn checks_are_spread_over_the_fit_unless_set() {
        let auto = SelectConfig::default();
        assert_eq!(auto.interval(300), 6);
        assert_eq!(auto.interval(30), 1);
        assert_eq!(auto.interval(1), 1);
        let every = |n| SelectConfig {
            every: Some(n),
            ..SelectConfig::default()
        };
        assert_eq!(every(4).interval(300), 4);
        assert_eq!(every(0).interval(300), 0);
    }
}
