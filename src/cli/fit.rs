//! `synth fit`: train a model on a table.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::{DeviceChoice, Printer, default_model_dir};
use crate::config::{EncodeConfig, FitConfig, GanConfig, SelectConfig};
use crate::data::io::{fingerprint, read_table};
use crate::data::schema::Schema;
use crate::data::table::check_frame;
use crate::gan::train::Control;
use crate::tabular::{DataSummary, Holdout, fit};

/// Arguments of `synth fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The training table: Parquet, or CSV with a `.csv` extension
    pub data: PathBuf,
    /// Model directory to write [default: `<data name>.synth-model` in the current folder]
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Schema file (TOML) to use instead of inferring one; see `synth schema infer`
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Passes over the training rows [default: 300, or on tables under 5,000 rows as many as
    /// make `--min-steps` generator steps]
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Without `--epochs`, train small tables for at least N generator steps (one per batch);
    /// 0 keeps 300 epochs whatever the table's size
    #[arg(long, value_name = "N", default_value_t = GanConfig::default().min_steps)]
    pub min_steps: usize,
    /// Rows per training batch; a multiple of `--pac`
    #[arg(long, default_value_t = GanConfig::default().batch_size)]
    pub batch_size: usize,
    /// Rows the critic scores together (PacGAN)
    #[arg(long, default_value_t = GanConfig::default().pac)]
    pub pac: usize,
    /// Critic updates per generator update
    #[arg(long, default_value_t = GanConfig::default().critic_steps)]
    pub critic_steps: usize,
    /// Adam learning rate of both networks
    #[arg(long, default_value_t = GanConfig::default().learning_rate)]
    pub learning_rate: f64,
    /// Length of the generator's noise vector
    #[arg(long, default_value_t = GanConfig::default().noise_dim)]
    pub noise_dim: usize,
    /// Widths of the generator's residual layers, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = GanConfig::default().generator_dims)]
    pub generator_dims: Vec<usize>,
    /// Widths of the critic's hidden layers, comma-separated
    #[arg(long, value_delimiter = ',', default_values_t = GanConfig::default().critic_dims)]
    pub critic_dims: Vec<usize>,
    /// Dropout probability in the critic
    #[arg(long, default_value_t = GanConfig::default().dropout)]
    pub dropout: f64,
    /// Weight of the WGAN-GP gradient penalty
    #[arg(long, default_value_t = GanConfig::default().penalty_weight)]
    pub penalty_weight: f64,
    /// Temperature of the Gumbel-softmax outputs
    #[arg(long, default_value_t = GanConfig::default().gumbel_tau)]
    pub gumbel_tau: f64,
    /// Adam's first-moment decay
    #[arg(long, default_value_t = GanConfig::default().beta1)]
    pub beta1: f64,
    /// Adam's second-moment decay
    #[arg(long, default_value_t = GanConfig::default().beta2)]
    pub beta2: f64,
    /// L2 weight decay of both networks
    #[arg(long, default_value_t = GanConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// How training conditions weight categories: `log-frequency` shows rare categories (fraud
    /// labels) more often, `frequency` keeps the data's own mix
    #[arg(long, value_enum, default_value_t = GanConfig::default().condition_weighting)]
    pub condition_weighting: crate::tabular::cond::Weighting,
    /// Most frequent values of a categorical column that get a one-hot slot each; rarer ones
    /// share one "other" slot
    #[arg(long, default_value_t = EncodeConfig::default().max_categories)]
    pub max_categories: usize,
    /// Categorical values seen fewer than N times are never stored in the model nor
    /// generated; they share the "other" slot (1 keeps every value)
    #[arg(long, value_name = "N", default_value_t = EncodeConfig::default().rare_below)]
    pub rare_below: u64,
    /// Do not look for categorical columns that decide others (a fraud scenario and the fraud
    /// label); by default generated rows keep every such link found in the training rows
    #[arg(long)]
    pub no_links: bool,
    /// Values each column's Gaussian mixture is fitted on, drawn at random from the column
    #[arg(long, default_value_t = EncodeConfig::default().mixture_sample)]
    pub mixture_sample: usize,
    /// Score the generator's samples every N epochs and keep the best-scoring epoch's weights;
    /// 0 keeps the last epoch [default: 50 checks per fit]
    #[arg(long, value_name = "N")]
    pub select_every: Option<usize>,
    /// Rows generated per check (and the most training rows they are compared with)
    #[arg(long, value_name = "N", default_value_t = SelectConfig::default().rows)]
    pub select_rows: usize,
    /// Stop after N checks in a row without a better score [default: train every epoch]
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Master seed; the same seed and data give the same model [default: drawn and reported]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to train
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Keep this share of the rows out of training, for `synth report` to score privacy and
    /// utility against; the model records which rows (not their values)
    #[arg(long, value_name = "F")]
    pub holdout_fraction: Option<f64>,
    /// Replace the model directory if it exists
    #[arg(long)]
    pub force: bool,
}

impl FitArgs {
    fn config(&self) -> FitConfig {
        let mut config = FitConfig::default();
        config.gan.min_steps = self.min_steps;
        config.gan.batch_size = self.batch_size;
        config.gan.pac = self.pac;
        config.gan.critic_steps = self.critic_steps;
        config.gan.learning_rate = self.learning_rate;
        config.gan.noise_dim = self.noise_dim;
        config.gan.generator_dims = self.generator_dims.clone();
        config.gan.critic_dims = self.critic_dims.clone();
        config.gan.dropout = self.dropout;
        config.gan.penalty_weight = self.penalty_weight;
        config.gan.gumbel_tau = self.gumbel_tau;
        config.gan.beta1 = self.beta1;
        config.gan.beta2 = self.beta2;
        config.gan.weight_decay = self.weight_decay;
        config.gan.condition_weighting = self.condition_weighting;
        config.encode.max_categories = self.max_categories;
        config.encode.mixture_sample = self.mixture_sample;
        config.encode.rare_below = self.rare_below.max(1);
        config.encode.links = !self.no_links;
        config.select.every = self.select_every;
        config.select.rows = self.select_rows;
        config.select.patience = self.patience;
        config
    }
}

pub(super) fn run(args: FitArgs, printer: Printer) -> anyhow::Result<()> {
    let config = args.config();
    crate::flag_ensure!(config.gan.pac > 0, "--pac", "must be at least 1");
    crate::flag_ensure!(
        config.gan.noise_dim > 0,
        "--noise-dim",
        "must be at least 1"
    );
    crate::flag_ensure!(
        !config.gan.critic_dims.is_empty() && config.gan.critic_dims.iter().all(|&w| w > 0),
        "--critic-dims",
        "needs at least one positive width"
    );
    crate::flag_ensure!(
        config.gan.generator_dims.iter().all(|&w| w > 0),
        "--generator-dims",
        "widths must be positive"
    );
    crate::flag_ensure!(
        (0.0..1.0).contains(&config.gan.dropout),
        "--dropout",
        "must be in [0, 1)"
    );
    crate::flag_ensure!(
        config.gan.gumbel_tau > 0.0,
        "--gumbel-tau",
        "must be positive"
    );
    crate::flag_ensure!(
        config.gan.learning_rate > 0.0,
        "--learning-rate",
        "must be positive"
    );
    crate::flag_ensure!(
        config.encode.max_categories > 0,
        "--max-categories",
        "must be at least 1"
    );
    crate::flag_ensure!(
        config.encode.mixture_sample > 0,
        "--mixture-sample",
        "must be at least 1"
    );
    if let Some(fraction) = args.holdout_fraction {
        crate::flag_ensure!(
            fraction > 0.0 && fraction < 1.0,
            "--holdout-fraction",
            "must be between 0 and 1, got {fraction}"
        );
    }
    let model_dir = args
        .model
        .clone()
        .unwrap_or_else(|| default_model_dir(&args.data));
    // Checked before training, so that a model that cannot be saved is not trained.
    crate::gan::checkpoint::check_dir(&model_dir, args.force)?;
    let device = args.device.resolve()?;

    let frame = read_table(&args.data)?;
    check_frame(&frame, &args.data)?;
    let seed = args.seed.unwrap_or_else(crate::rng::fresh_seed);
    let (frame, holdout) = match args.holdout_fraction {
        Some(fraction) => {
            crate::flag_ensure!(
                frame.height() >= 2,
                "--holdout-fraction",
                "`{}` has {} row; a holdout needs at least two",
                args.data.display(),
                frame.height()
            );
            let holdout = Holdout::draw(fraction, frame.height(), seed);
            (holdout.split(&frame)?.0, Some(holdout))
        }
        None => (frame, None),
    };
    let schema = match &args.schema {
        Some(path) => {
            let schema = Schema::load(path)?;
            schema.check_against(&frame, path)?;
            schema
        }
        None => Schema::infer(&frame, &config.encode)?,
    };
    let mut config = config;
    config.gan.epochs = match args.epochs {
        Some(epochs) => epochs,
        None => {
            let epochs = config.gan.default_epochs(frame.height());
            if epochs > config.gan.epochs {
                tracing::info!(
                    epochs,
                    rows = frame.height(),
                    "a small table: training for more epochs, to make `--min-steps` generator steps"
                );
            }
            epochs
        }
    };
    let data = DataSummary {
        source: args
            .data
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
        fingerprint: fingerprint(&args.data)?,
        rows: frame.height(),
        path: std::path::absolute(&args.data)
            .ok()
            .map(|path| path.to_string_lossy().into_owned()),
        holdout,
    };
    tracing::debug!(?device, seed, rows = data.rows, "fitting");

    let started = Instant::now();
    let bar = printer.bar(
        config.gan.epochs as u64,
        "{spinner} epoch {pos}/{len} [{bar:30}] {elapsed_precise} eta {eta} {msg}",
    );
    let model = fit(&frame, &schema, &config, seed, data, &device, |metrics| {
        bar.set_position(metrics.epoch as u64);
        let quality = metrics
            .quality
            .map_or_else(String::new, |quality| format!(" quality {quality:.3}"));
        bar.set_message(format!(
            "generator {:+.3} critic {:+.3}{quality}",
            metrics.generator_loss, metrics.critic_loss
        ));
        Ok(Control::Continue)
    })?;
    bar.finish_and_clear();
    model.save(&model_dir, args.force)?;
    let kept = model
        .manifest
        .selected
        .map_or_else(String::new, |selected| {
            format!(
                ", keeping epoch {} (sample quality {:.3})",
                selected.epoch, selected.quality
            )
        });
    printer.status(&format!(
        "Trained on {} rows for {} epochs in {:.1}s (seed {seed}){kept}; model written to `{}`",
        model.manifest.data.rows,
        model.manifest.epochs_run,
        started.elapsed().as_secs_f64(),
        model_dir.display()
    ));
    Ok(())
}
