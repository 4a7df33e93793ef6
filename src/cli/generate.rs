//! `synth generate`: write synthetic rows from a trained model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;

use super::{DeviceChoice, Printer, find_model, stem};
use crate::config::GenerateConfig;
use crate::data::io::{TableWriter, check_output};
use crate::error::Error;
use crate::sample::{generate, resolve_conditions};
use crate::tabular::TabularModel;

/// Arguments of `synth generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of rows to generate
    #[arg(short = 'n', long = "rows", allow_negative_numbers = true)]
    pub rows: i64,
    /// Model directory [default: the one `*.synth-model` directory in the current folder]
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Output file, Parquet or (by a `.csv` extension) CSV [default: `<model name>.synthetic.parquet`]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed; the same seed and model give the same rows [default: drawn and reported]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Make every row hold this value: `COLUMN=VALUE`, for a categorical column; repeat for
    /// other columns
    #[arg(long, value_name = "COLUMN=VALUE")]
    pub condition: Vec<String>,
    /// Rows generated and written per batch; memory grows with this, not with `-n`
    #[arg(long, default_value_t = GenerateConfig::default().batch_rows)]
    pub batch_rows: usize,
    /// Where to run the generator
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Replace the output file if it exists
    #[arg(long)]
    pub force: bool,
}

pub(super) fn run(args: GenerateArgs, printer: Printer) -> anyhow::Result<()> {
    crate::flag_ensure!(args.rows > 0, "-n", "must be at least 1, got {}", args.rows);
    crate::flag_ensure!(args.batch_rows > 0, "--batch-rows", "must be at least 1");
    let pairs = args
        .condition
        .iter()
        .map(|text| match text.split_once('=') {
            Some((column, value)) if !column.is_empty() => {
                Ok((column.to_owned(), value.to_owned()))
            }
            _ => Err(Error::Flag {
                flag: "--condition".into(),
                reason: format!("`{text}` is not of the form COLUMN=VALUE"),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let model_dir = match &args.model {
        Some(dir) => dir.clone(),
        None => find_model(Path::new("."))?,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.synthetic.parquet", stem(&model_dir))));
    check_output(&out, args.force, "--out")?;

    let device = args.device.resolve()?;
    let model = TabularModel::load(&model_dir, &device)?;
    let conditions = resolve_conditions(&model, &pairs)?;
    let seed = args.seed.unwrap_or_else(crate::rng::fresh_seed);
    let config = GenerateConfig {
        batch_rows: args.batch_rows,
    };

    let started = Instant::now();
    let rows = args.rows as u64;
    let bar = printer.bar(
        rows,
        "{spinner} [{bar:30}] {human_pos}/{human_len} rows {elapsed_precise} eta {eta}",
    );
    let mut writer = TableWriter::create(&out, &model.manifest.encoder.schema, args.force)?;
    generate(
        &model,
        rows,
        seed,
        &conditions,
        &config,
        &mut writer,
        |done| bar.set_position(done),
    )?;
    writer.finish()?;
    bar.finish_and_clear();
    LastGenerated {
        path: std::path::absolute(&out)
            .unwrap_or(out.clone())
            .to_string_lossy()
            .into_owned(),
        rows,
        seed,
    }
    .save(&model_dir)?;
    printer.status(&format!(
        "Generated {rows} rows from `{}` in {:.1}s (seed {seed}); written to `{}`",
        model_dir.display(),
        started.elapsed().as_secs_f64(),
        out.display()
    ));
    Ok(())
}

/// The record of a model's most recent `synth generate`, kept in its directory so that a bare
/// `synth report` knows which file to score.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LastGenerated {
    /// The output file's absolute path.
    pub path: String,
    /// Rows written.
    pub rows: u64,
    /// The seed used.
    pub seed: u64,
}

impl LastGenerated {
    /// Name of the record in the model directory.
    pub const FILE: &str = "last-generated.json";

    fn save(&self, model: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::data::io::write_atomic(&model.join(Self::FILE), &bytes, true)?;
        Ok(())
    }

    /// Reads the record from a model directory, if there is one.
    pub fn load(model: &Path) -> Option<LastGenerated> {
        let text = std::fs::read_to_string(model.join(Self::FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}
