//! `synth image`: image-GAN presets on the shared GAN core.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};

use super::{DeviceChoice, Printer};
use crate::error::Error;
use crate::gan::train::{Control, Schedule, train};
use crate::image::data::{self, write_grid, write_png};
use crate::image::eval::evaluate;
use crate::image::model::{
    FORMAT, FORMAT_VERSION, ImageConfig, ImageManifest, ImageModel, Monitor, PRESETS, Trainer,
    preset,
};
use crate::image::nets::Shape;

/// Environment variable naming the default image folder.
pub const DATA_ENV: &str = "SYNTH_IMAGES";

/// The `synth image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List the presets
    Presets,
    /// Train a preset on a folder of IDX files or PNGs
    Fit(FitArgs),
    /// Write generated images as a PNG grid (or one PNG each)
    Generate(GenerateArgs),
    /// Measure generated images against real ones, beside a real-vs-real baseline
    Eval(EvalArgs),
}

/// Arguments of `synth image fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The preset: see `synth image presets`
    #[arg(long)]
    pub preset: String,
    /// Images: an IDX file or a folder of IDX files (gzipped or not), or a folder of PNGs
    /// (one subfolder per class for labels) [default: `$SYNTH_IMAGES`]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Passes over the images [default: the preset's]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many generator updates (for smoke runs)
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Images per batch [default: the preset's]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Spectral normalisation of the discriminator's weights
    #[arg(long)]
    pub spectral_norm: bool,
    /// Train the generator to match the discriminator's mean features
    #[arg(long)]
    pub feature_matching: bool,
    /// Write a grid of samples every N epochs to `<model>.samples/` (0: never)
    #[arg(long, default_value_t = 1)]
    pub sample_every: usize,
    /// Model directory [default: `<preset>.synth-image` in the current folder]
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Master seed [default: drawn and reported]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to train
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Replace the model directory if it exists
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `synth image generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model directory
    #[arg(long)]
    pub model: PathBuf,
    /// Number of images
    #[arg(short = 'n', long = "count", default_value_t = 64)]
    pub count: usize,
    /// The grid PNG to write
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also (or instead) write one PNG per image into this folder
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Class of every image, for conditional presets (its index, or its name)
    #[arg(long)]
    pub label: Option<String>,
    /// For conditional presets: this many images of every class, class after class (one grid
    /// row per class unless `--columns` says otherwise); replaces `-n` and `--label`
    #[arg(long, value_name = "N")]
    pub per_class: Option<usize>,
    /// Images per grid row [default: the square root of the count]
    #[arg(long)]
    pub columns: Option<usize>,
    /// Seed [default: 0]
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace outputs that exist
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `synth image eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory
    #[arg(long)]
    pub model: PathBuf,
    /// The real, labelled images [default: the model's training images, else `$SYNTH_IMAGES`]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Generated images compared (and as many real ones)
    #[arg(short = 'n', long = "count", default_value_t = 2000)]
    pub count: usize,
    /// Seed of the samples and the classifier
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub(super) fn run(command: ImageCommand, printer: Printer) -> anyhow::Result<()> {
    match command {
        ImageCommand::Presets => {
            for preset in PRESETS {
                println!("{:<14} {}", preset.name, preset.description);
            }
            println!(
                "\nAny preset takes --spectral-norm (discriminator) and --feature-matching (generator)."
            );
            Ok(())
        }
        ImageCommand::Fit(args) => fit(args, printer),
        ImageCommand::Generate(args) => generate(args, printer),
        ImageCommand::Eval(args) => eval(args),
    }
}

fn data_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) => Ok(path.to_owned()),
        None => std::env::var_os(DATA_ENV).map(PathBuf::from).ok_or_else(|| {
            Error::Flag {
                flag: "--data".into(),
                reason: format!("no images given: pass `--data DIR` (a folder of IDX files or PNGs) or set `{DATA_ENV}`"),
            }
            .into()
        }),
    }
}

fn fit(args: FitArgs, printer: Printer) -> anyhow::Result<()> {
    let preset = preset(&args.preset)?;
    let data_path = data_path(args.data.as_deref())?;
    let model_dir = args
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.synth-image", preset.name)));
    crate::gan::checkpoint::check_dir(&model_dir, args.force)?;
    crate::flag_ensure!(
        args.batch_size.is_none_or(|b| b > 0),
        "--batch-size",
        "must be at least 1"
    );
    crate::flag_ensure!(
        args.epochs.is_none_or(|e| e > 0),
        "--epochs",
        "must be at least 1"
    );
    let device = args.device.resolve()?;
    let images = data::load(&data_path)?;
    if preset.conditional && images.labels.is_none() {
        return Err(Error::Flag {
            flag: "--data".into(),
            reason: format!(
                "preset `{}` needs labelled images (IDX labels, or one PNG subfolder per class)",
                preset.name
            ),
        }
        .into());
    }
    let shape = Shape {
        height: images.height,
        width: images.width,
        channels: images.channels,
    };
    let mut config = ImageConfig::from_preset(preset, shape, images.classes.clone());
    config.net.spectral_norm = args.spectral_norm;
    config.feature_matching = args.feature_matching;
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
    }
    if let Some(batch) = args.batch_size {
        config.batch_size = batch;
    }
    let seed = args.seed.unwrap_or_else(crate::rng::fresh_seed);
    let manifest = ImageManifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        synth_version: env!("CARGO_PKG_VERSION").into(),
        seed,
        config: config.clone(),
        data: std::path::absolute(&data_path)
            .unwrap_or(data_path.clone())
            .display()
            .to_string(),
        images: images.count,
        epochs_run: 0,
    };
    let mut model = ImageModel::new(manifest, &device)?;
    let monitor = Monitor {
        folder: PathBuf::from(format!("{}.samples", model_dir.display())),
        every: args.sample_every,
        collapse_ratio: 0.5,
    };
    let started = Instant::now();
    let bar = printer.bar(
        config.epochs as u64,
        "{spinner} epoch {pos}/{len} [{bar:30}] {elapsed_precise} eta {eta} {msg}",
    );
    let (history, warnings) = {
        let mut trainer = Trainer::new(&model, &images, &device, Some(monitor.clone()))?;
        let schedule = Schedule {
            epochs: config.epochs,
            critic_steps: config.critic_steps,
            max_steps: args.max_steps,
        };
        let history = train(&mut trainer, schedule, |metrics| {
            bar.set_position(metrics.epoch as u64);
            bar.set_message(format!(
                "generator {:+.3} critic {:+.3}",
                metrics.generator_loss, metrics.critic_loss
            ));
            tracing::debug!(?metrics, "epoch");
            Ok(Control::Continue)
        })?;
        (history, std::mem::take(&mut trainer.warnings))
    };
    bar.finish_and_clear();
    for warning in &warnings {
        printer.status(&format!("warning: {warning}"));
    }
    model.manifest.epochs_run = history.len();
    model.history = history;
    model.save(&model_dir, args.force)?;
    printer.status(&format!(
        "Trained {} on {} images for {} epochs in {:.1}s (seed {seed}); model written to `{}`{}",
        preset.name,
        images.count,
        model.manifest.epochs_run,
        started.elapsed().as_secs_f64(),
        model_dir.display(),
        if args.sample_every > 0 {
            format!(", sample grids to `{}`", monitor.folder.display())
        } else {
            String::new()
        }
    ));
    Ok(())
}

fn generate(args: GenerateArgs, printer: Printer) -> anyhow::Result<()> {
    crate::flag_ensure!(args.count > 0, "-n", "must be at least 1");
    crate::flag_ensure!(
        args.out.is_some() || args.out_dir.is_some(),
        "--out",
        "give `--out grid.png`, `--out-dir DIR`, or both"
    );
    if let Some(out) = &args.out {
        crate::data::io::check_output(out, args.force, "--out")?;
    }
    let model = ImageModel::load(&args.model, &candle_core::Device::Cpu)?;
    let config = &model.manifest.config;
    let label = match &args.label {
        None => None,
        Some(text) => Some(
            match config.class_names.iter().position(|name| name == text) {
                Some(index) => index as u32,
                None => text.parse::<u32>().map_err(|_| Error::Flag {
                    flag: "--label".into(),
                    reason: format!(
                        "`{text}` is not a class; the classes are {}",
                        config.class_names.join(", ")
                    ),
                })?,
            },
        ),
    };
    let shape = config.net.shape;
    let (pixels, count, default_columns) = match args.per_class {
        Some(each) => {
            crate::flag_ensure!(each > 0, "--per-class", "must be at least 1");
            crate::flag_ensure!(
                config.net.classes > 0,
                "--per-class",
                "preset `{}` is not conditional",
                config.preset
            );
            let mut pixels = Vec::new();
            for class in 0..config.net.classes as u32 {
                let seed = args.seed.wrapping_add(u64::from(class));
                pixels.extend(model.sample(each, Some(class), seed)?.0);
            }
            (pixels, each * config.net.classes, each)
        }
        None => {
            let columns = (args.count as f64).sqrt().ceil() as usize;
            (
                model.sample(args.count, label, args.seed)?.0,
                args.count,
                columns,
            )
        }
    };
    if let Some(out) = &args.out {
        let columns = args.columns.unwrap_or(default_columns).max(1);
        write_grid(
            out,
            &pixels,
            count,
            shape.height,
            shape.width,
            shape.channels,
            columns,
        )?;
    }
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).map_err(|error| Error::Write {
            path: dir.clone(),
            reason: error.to_string(),
        })?;
        for (index, image) in pixels.chunks(shape.pixels()).enumerate() {
            let path = dir.join(format!("{index:05}.png"));
            crate::data::io::check_output(&path, args.force, "--out-dir")?;
            write_png(&path, image, shape.height, shape.width, shape.channels)?;
        }
    }
    printer.status(&format!(
        "Generated {count} images from `{}`",
        args.model.display()
    ));
    Ok(())
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    crate::flag_ensure!(args.count >= 10, "-n", "must be at least 10");
    let device = candle_core::Device::Cpu;
    let model = ImageModel::load(&args.model, &device)?;
    let data_path = match &args.data {
        Some(path) => path.clone(),
        None if Path::new(&model.manifest.data).exists() => PathBuf::from(&model.manifest.data),
        None => data_path(None)?,
    };
    let images = data::load(&data_path)?;
    let evaluation = evaluate(&model, &images, args.count, args.seed, &device)?;
    println!("{}", serde_json::to_string_pretty(&evaluation)?);
    Ok(())
}
