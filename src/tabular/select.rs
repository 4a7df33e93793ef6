//! Choosing the epoch a fit keeps, by the quality of its samples.
//!
//! Every few epochs the generator draws a fixed number of rows, always from the same seeded
//! noise and conditions so that checks differ only by the weights. The rows are scored with
//! the report's quality score (the mean of column shapes and column pair trends, as
//! SDMetrics defines them) against a seeded sample of the training rows. The best check's
//! weights are copied aside and put back when training ends; a patience, when given, ends
//! training after that many checks without a better score.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::Tensor;
use polars::prelude::{DataFrame, IdxCa, IdxSize};
use rand::Rng;

use crate::config::{GanConfig, SelectConfig};
use crate::data::schema::Schema;
use crate::encode::TableEncoder;
use crate::error::Result;
use crate::gan::train::{Adversarial, Control, EpochMetrics, StepLosses};
use crate::report::fidelity;
use crate::report::prepare::{Input, prepare};
use crate::rng::{Purpose, stream};
use crate::sample::{Run, Source, batch};
use crate::tabular::cond::CondSampler;
use crate::tabular::ctgan::Networks;

/// The check that scored best.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Selected {
    /// The epoch whose weights were kept.
    pub epoch: usize,
    /// Its quality score.
    pub quality: f64,
}

/// Scores the generator during training and keeps the best weights.
pub struct Selector<'a> {
    source: Source<'a>,
    sampler: CondSampler,
    schema: &'a Schema,
    real: DataFrame,
    rows: usize,
    interval: usize,
    epochs: usize,
    patience: Option<usize>,
    seed: u64,
    best: Option<(Selected, BTreeMap<String, Tensor>)>,
    since_best: usize,
}

impl<'a> Selector<'a> {
    /// A selector for a fit of `epochs` epochs on `frame`; `None` when checks are off.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &SelectConfig,
        epochs: usize,
        frame: &DataFrame,
        schema: &'a Schema,
        networks: &'a Networks,
        gan: &'a GanConfig,
        encoder: &'a TableEncoder,
        seed: u64,
    ) -> Result<Option<Selector<'a>>> {
        let interval = config.interval(epochs);
        if interval == 0 || config.rows == 0 {
            return Ok(None);
        }
        let mut rng = stream(seed, Purpose::Select);
        let rows = config.rows.min(frame.height());
        let mut picked = rand::seq::index::sample(&mut rng, frame.height(), rows).into_vec();
        picked.sort_unstable();
        let picked: Vec<IdxSize> = picked.into_iter().map(|row| row as IdxSize).collect();
        // Only the schema's columns are modelled; a schema may leave some of the file out.
        let names = schema.columns.iter().map(|spec| spec.name.as_str());
        let real = frame
            .select(names)?
            .take(&IdxCa::from_vec("row".into(), picked))?;
        let source = Source {
            networks,
            gan,
            encoder,
        };
        Ok(Some(Selector {
            source,
            sampler: source.sampler(),
            schema,
            real,
            rows,
            interval,
            epochs,
            patience: config.patience,
            seed: rng.random(),
            best: None,
            since_best: 0,
        }))
    }

    /// Whether `epoch` is one that is checked.
    /// Whether the check runs after `epoch`.
    pub fn due(&self, epoch: usize) -> bool {
        epoch.is_multiple_of(self.interval) || epoch == self.epochs
    }

    /// The quality score of the generator as it is now.
    pub fn score(&self) -> Result<f64> {
        let mut run = Run::new(self.seed);
        let synthetic = batch(self.source, &self.sampler, &[], self.rows, 0, &mut run)?;
        let tables = prepare(
            self.schema,
            Input {
                frame: &self.real,
                path: Path::new("training rows"),
            },
            Input {
                frame: &synthetic,
                path: Path::new("rows generated to choose the epoch"),
            },
            None,
        )?;
        let shapes = fidelity::shapes(&tables);
        // A table without associated pairs has no pair-trend score; shapes alone then.
        Ok(if shapes.quality.is_finite() {
            shapes.quality
        } else {
            shapes.column_shapes
        })
    }

    /// Scores the generator after `epoch` if it is due, keeping its weights when it is the
    /// best so far; returns the score and whether the patience has run out.
    pub fn check(&mut self, epoch: usize) -> Result<(Option<f64>, Control)> {
        if !self.due(epoch) {
            return Ok((None, Control::Continue));
        }
        let quality = self.score()?;
        let improved = self
            .best
            .as_ref()
            .is_none_or(|(best, _)| quality > best.quality);
        if improved {
            let weights = self
                .source
                .networks
                .tensors()
                .into_iter()
                .map(|(name, tensor)| Ok((name, tensor.copy()?)))
                .collect::<Result<BTreeMap<_, _>>>()?;
            self.best = Some((Selected { epoch, quality }, weights));
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        let stop = self
            .patience
            .is_some_and(|patience| self.since_best >= patience.max(1));
        tracing::debug!(epoch, quality, improved, "checked the generator's samples");
        Ok((
            Some(quality),
            if stop {
                Control::Stop
            } else {
                Control::Continue
            },
        ))
    }

    /// Puts the best check's weights back into the networks and says which epoch they are
    /// from.
    pub fn finish(self) -> Result<Option<Selected>> {
        let Some((selected, weights)) = self.best else {
            return Ok(None);
        };
        let weights: HashMap<String, Tensor> = weights.into_iter().collect();
        self.source.networks.load(&weights)?;
        Ok(Some(selected))
    }
}

/// A model in training whose epochs are checked by a [`Selector`].
pub struct Selecting<'a, M> {
    /// The model trained.
    pub model: M,
    /// The checks; `None` trains without them.
    pub selector: Option<Selector<'a>>,
}

impl<M: Adversarial> Adversarial for Selecting<'_, M> {
    fn critic_step(&mut self) -> Result<StepLosses> {
        self.model.critic_step()
    }

    fn generator_step(&mut self) -> Result<f64> {
        self.model.generator_step()
    }

    fn steps_per_epoch(&self) -> usize {
        self.model.steps_per_epoch()
    }

    fn sync(&mut self) -> Result<()> {
        self.model.sync()
    }

    fn epoch_end(&mut self, metrics: &mut EpochMetrics) -> Result<Control> {
        let control = self.model.epoch_end(metrics)?;
        let Some(selector) = &mut self.selector else {
            return Ok(control);
        };
        if selector.due(metrics.epoch) {
            self.model.sync()?;
        }
        let (quality, stop) = match selector.check(metrics.epoch) {
            Ok(checked) => checked,
            Err(error) => {
                // A fit is worth more than its checks: train on and keep the last epoch.
                tracing::warn!(
                    epoch = metrics.epoch,
                    "could not score the generated rows ({error}); checks are off for this fit and the last epoch's weights are kept"
                );
                self.selector = None;
                return Ok(control);
            }
        };
        metrics.quality = quality;
        Ok(if control == Control::Stop || stop == Control::Stop {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}
