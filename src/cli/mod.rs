//! The command line: flags, their resolution into settings, and dispatch.
//!
//! Exit codes: 0 on success, 1 when a run finished but a quality gate failed, 2 on any error
//! (including usage errors). This is the only module that prints.

mod fit;
mod generate;
mod image;
pub mod output;
mod report;
mod schema;

use std::path::{Path, PathBuf};

use candle_core::Device;
use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use output::Printer;
pub use report::GateFailed;

/// Learn the statistics of a table and generate synthetic rows that keep them.
///
/// Typical use: `synth fit data.parquet`, then `synth generate -n 1000000` in the same folder.
#[derive(Debug, Parser)]
#[command(
    name = "synth",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print nothing but data and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Show debug logs (`-vv` for trace); `RUST_LOG` overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Hide progress bars
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Compute threads [default: every core]; results do not depend on it;
    /// `RAYON_NUM_THREADS` also sets it
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// The command to run
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model on a Parquet or CSV table and save it as a model directory
    Fit(fit::FitArgs),
    /// Generate synthetic rows from a trained model into Parquet or CSV
    Generate(generate::GenerateArgs),
    /// Score synthetic rows against the real ones: fidelity, ML utility and privacy, as an HTML
    /// page and JSON
    Report(report::ReportArgs),
    /// Image GANs: presets, training, generation and evaluation
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Work with schemas
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
}

/// Where tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when this build has it and a GPU is present, else the CPU
    Auto,
    /// The CPU
    Cpu,
    /// The first CUDA GPU (needs a build with the `cuda` feature)
    Cuda,
}

impl DeviceChoice {
    /// The device to run on.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda if !cfg!(feature = "cuda") => Err(Error::Device {
                device: "cuda".into(),
                reason: "this synth was built without the `cuda` feature; rebuild with `cargo build --release --features cuda`".into(),
            }),
            DeviceChoice::Cuda => Device::new_cuda(0).map_err(|error| Error::Device { device: "cuda".into(), reason: error.to_string() }),
            DeviceChoice::Auto => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        }
    }
}

impl Cli {
    /// The number of compute threads this command should use: `--threads`, else
    /// `RAYON_NUM_THREADS`, else the default.
    pub fn threads(&self) -> usize {
        self.threads
            .or_else(crate::threads::from_environment)
            .map_or_else(crate::threads::cores, |threads| threads.max(1))
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let printer = Printer::new(cli.quiet, cli.no_progress || cli.verbose > 0);
    match cli.command {
        Command::Fit(args) => fit::run(args, printer),
        Command::Generate(args) => generate::run(args, printer),
        Command::Report(args) => report::run(args, printer),
        Command::Image(command) => image::run(command, printer),
        Command::Schema(command) => schema::run(command),
    }
}

/// The file name of `path` without its extension, for default output names.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "data".into(), |stem| stem.to_string_lossy().into_owned())
}

/// Suffix of default model directories.
pub const MODEL_SUFFIX: &str = ".synth-model";

/// The default model directory for a data file: `<stem>.synth-model` in the current folder.
fn default_model_dir(data: &Path) -> PathBuf {
    PathBuf::from(format!("{}{MODEL_SUFFIX}", stem(data)))
}

/// The one model directory in `folder`, or an error naming what was found.
pub(crate) fn find_model(folder: &Path) -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir() && path.to_string_lossy().ends_with(MODEL_SUFFIX))
        .map(|path| {
            path.strip_prefix(folder)
                .map(Path::to_path_buf)
                .unwrap_or(path)
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Flag {
            flag: "--model".into(),
            reason: format!("no `*{MODEL_SUFFIX}` directory in the current folder; run `synth fit DATA` first or pass `--model DIR`"),
        }
        .into()),
        _ => {
            let names: Vec<String> = found.iter().map(|path| format!("`{}`", path.display())).collect();
            Err(Error::Flag { flag: "--model".into(), reason: format!("several models here ({}); choose one with `--model DIR`", names.join(", ")) }.into())
        }
    }
}
