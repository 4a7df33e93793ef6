//! Stage 3: the tabular model, from a table to a trained model directory and back.
//!
//! [`fit`] runs the pipeline: typed columns → [`TableEncoder`] → CTGAN training with the
//! shared loop of [`crate::gan::train`]. [`TabularModel`] is the result, saved to and loaded
//! from a model directory by [`crate::gan::checkpoint`].

pub mod cond;
pub mod ctgan;
mod host;
pub mod select;

use std::path::Path;

use candle_core::Device;
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::config::FitConfig;
use crate::data::schema::Schema;
use crate::data::table;
use crate::encode::{ColumnEncoder, TableEncoder};
use crate::error::{Error, Result};
use crate::gan::checkpoint;
use crate::gan::train::{Control, EpochMetrics, Schedule, train};
use ctgan::{Networks, Trainer};
use select::{Selected, Selecting, Selector};

/// The format name written in every tabular model's manifest.
pub const FORMAT: &str = "synth-tabular-model";
/// The manifest layout version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// File name of the training data.
    pub source: String,
    /// SHA-256 of the training file's bytes.
    pub fingerprint: String,
    /// Rows trained on.
    pub rows: usize,
    /// The training file's absolute path, so that `synth report` can find it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Rows of the file kept out of training, when fitted with a holdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
}

/// The rows of the training file that were held out of training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    /// The share of rows held out.
    pub fraction: f64,
    /// Rows in the whole file.
    pub file_rows: usize,
    /// Positions of the held-out rows in the file, increasing.
    pub rows: Vec<usize>,
}

impl Holdout {
    /// Draws a seeded share `fraction` of `file_rows` rows.
    pub fn draw(fraction: f64, file_rows: usize, seed: u64) -> Holdout {
        let mut rng = crate::rng::substream(seed, crate::rng::Purpose::Split, 1);
        let count = ((fraction * file_rows as f64).round() as usize)
            .clamp(1, file_rows.saturating_sub(1).max(1));
        let mut rows = rand::seq::index::sample(&mut rng, file_rows, count).into_vec();
        rows.sort_unstable();
        Holdout {
            fraction,
            file_rows,
            rows,
        }
    }

    /// Splits the whole file's rows into (training, holdout).
    pub fn split(&self, frame: &DataFrame) -> Result<(DataFrame, DataFrame)> {
        use polars::prelude::{IdxCa, IdxSize};
        let mut held = vec![false; frame.height()];
        for &row in &self.rows {
            held[row] = true;
        }
        let pick = |keep: bool| -> Vec<IdxSize> {
            (0..frame.height())
                .filter(|&r| held[r] == keep)
                .map(|r| r as IdxSize)
                .collect()
        };
        let train = frame.take(&IdxCa::from_vec("row".into(), pick(false)))?;
        let holdout = frame.take(&IdxCa::from_vec("row".into(), pick(true)))?;
        Ok((train, holdout))
    }
}

/// Everything about a model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// Version of synth that wrote it.
    pub synth_version: String,
    /// The master seed of training.
    pub seed: u64,
    /// Settings the model was trained with.
    pub config: FitConfig,
    /// Fitted encoders, with the schema and layout.
    pub encoder: TableEncoder,
    /// The training data.
    pub data: DataSummary,
    /// Epochs actually run.
    pub epochs_run: usize,
    /// The checked epoch whose weights were kept; `None` when training kept the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected: Option<Selected>,
}

/// A trained tabular model.
#[derive(Debug)]
pub struct TabularModel {
    /// Settings, encoders and provenance.
    pub manifest: Manifest,
    /// The networks.
    pub networks: Networks,
    /// Losses per epoch.
    pub history: Vec<EpochMetrics>,
}

/// Slot counts of every discrete span, in layout order.
pub fn discrete_counts(encoder: &TableEncoder) -> Vec<Vec<u64>> {
    encoder
        .layout
        .discrete
        .iter()
        .map(|span| match &encoder.columns[span.column] {
            ColumnEncoder::Discrete(labels) => labels.counts.clone(),
            ColumnEncoder::Continuous(numeric) => numeric.presence.to_vec(),
            ColumnEncoder::Fixed { .. } | ColumnEncoder::Id => vec![1; span.width],
        })
        .collect()
}

/// Fits a model to `frame` under `schema`, calling `observe` after every epoch.
pub fn fit(
    frame: &DataFrame,
    schema: &Schema,
    config: &FitConfig,
    seed: u64,
    data: DataSummary,
    device: &Device,
    observe: impl FnMut(&EpochMetrics) -> Result<Control>,
) -> Result<TabularModel> {
    crate::flag_ensure!(
        config.gan.batch_size > 0 && config.gan.batch_size.is_multiple_of(config.gan.pac),
        "--batch-size",
        "{} is not a positive multiple of pac ({})",
        config.gan.batch_size,
        config.gan.pac
    );
    crate::flag_ensure!(config.gan.epochs > 0, "--epochs", "must be at least 1");
    let values = table::columns(frame, schema)?;
    let mut encoder = TableEncoder::fit(schema, &values, &config.encode, seed)?;
    let encoded = encoder.transform(&values, seed)?;
    drop(values);
    if config.encode.links {
        encoder.links = crate::encode::links::find(&encoder.layout, &encoded);
        for link in &encoder.links {
            let name =
                |span: usize| &encoder.schema.columns[encoder.layout.discrete[span].column].name;
            tracing::info!(
                "every well-supported value of `{}` comes with one value of `{}` in the training rows; generated rows keep that",
                name(link.detailed),
                name(link.summary)
            );
        }
    }
    tracing::debug!(
        data_dim = encoder.layout.data_dim,
        cond_dim = encoder.layout.cond_dim,
        pac = config.gan.pac,
        seed,
        "encoded training data"
    );

    let networks = Networks::new(&config.gan, &encoder.layout, seed, device)?;
    let counts = discrete_counts(&encoder);
    let trainer = Trainer::new(
        &networks,
        &config.gan,
        &encoder.layout,
        &counts,
        &encoded,
        seed,
    )?;
    let selector = Selector::new(
        &config.select,
        config.gan.epochs,
        frame,
        schema,
        &networks,
        &config.gan,
        &encoder,
        seed,
    )?;
    let mut selecting = Selecting {
        model: trainer,
        selector,
    };
    let schedule = Schedule {
        epochs: config.gan.epochs,
        critic_steps: config.gan.critic_steps,
        max_steps: None,
    };
    let history = train(&mut selecting, schedule, observe)?;
    let selected = match selecting.selector {
        Some(selector) => selector.finish()?,
        None => None,
    };
    if let Some(selected) = selected {
        tracing::info!(
            epoch = selected.epoch,
            quality = selected.quality,
            "kept the weights of the best-scoring epoch"
        );
    }

    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        synth_version: env!("CARGO_PKG_VERSION").into(),
        seed,
        config: config.clone(),
        encoder,
        data,
        epochs_run: history.len(),
        selected,
    };
    Ok(TabularModel {
        manifest,
        networks,
        history,
    })
}

impl TabularModel {
    /// Writes the model directory `dir`, refusing to replace one unless `force`.
    pub fn save(&self, dir: &Path, force: bool) -> Result<()> {
        checkpoint::save_model(
            dir,
            &self.manifest,
            &self.networks.tensors(),
            &self.history,
            force,
        )
    }

    /// Loads the model directory `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<TabularModel> {
        let model_error = |reason: String| Error::Model {
            path: dir.to_owned(),
            reason,
        };
        let mut manifest: Manifest =
            checkpoint::read_manifest(dir, FORMAT, "tabular", FORMAT_VERSION)?;
        manifest.encoder.restore();
        let networks = Networks::new(&manifest.config.gan, &manifest.encoder.layout, 0, device)?;
        let weights = checkpoint::read_weights(dir, device)?;
        networks
            .load(&weights)
            .map_err(|error| model_error(error.to_string()))?;
        Ok(TabularModel {
            manifest,
            networks,
            history: Vec::new(),
        })
    }
}
