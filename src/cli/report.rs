//! `synth report`: score synthetic rows against the real ones.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::generate::LastGenerated;
use super::{Printer, find_model, stem};
use crate::config::EncodeConfig;
use crate::data::io::{check_output, fingerprint, read_table, write_atomic};
use crate::data::schema::Schema;
use crate::error::Error;
use crate::gan::checkpoint::read_manifest;
use crate::report::prepare::{Input, prepare};
use crate::report::privacy::PrivacyConfig;
use crate::report::{InputRows, Inputs, ReportConfig, build, gate, html, training_history};
use crate::tabular::{FORMAT, FORMAT_VERSION, Manifest};

/// Arguments of `synth report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The real rows the model was trained on [default: the model's training file, less its
    /// holdout]
    #[arg(long)]
    pub real: Option<PathBuf>,
    /// The synthetic rows [default: the model's last `synth generate` output]
    #[arg(long)]
    pub synthetic: Option<PathBuf>,
    /// Real rows that were not trained on, for privacy and utility [default: the model's
    /// holdout, when it was fitted with `--holdout-fraction`]
    #[arg(long)]
    pub holdout: Option<PathBuf>,
    /// Model directory: its schema, holdout, training file and loss curves [default: the one
    /// `*.synth-model` directory here, when `--real` or `--synthetic` is not given]
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Schema file (TOML) for the column kinds [default: the model's, else inferred as `fit`
    /// does]
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Column to predict for the ML-utility section (needs a holdout)
    #[arg(long)]
    pub target: Option<String>,
    /// The HTML page to write; the JSON goes beside it with a `.json` extension [default:
    /// `<synthetic name>.report.html`]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `html` writes the page and the JSON; `json` prints the JSON to stdout and writes nothing
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
    /// Exit with status 1 when a score is below its threshold: `quality=0.8,detection=0.7,...`;
    /// names: quality, column_shapes, column_pair_trends, coverage, detection, utility, dcr,
    /// mia, exact_copies, nndr, rare_categories
    #[arg(long, value_name = "NAME=MIN,...")]
    pub fail_under: Option<String>,
    /// Seed of every sample and model the report draws
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows of each table the real-vs-synthetic classifier is trained on
    #[arg(long, default_value_t = ReportConfig::default().detection_rows)]
    pub detection_rows: usize,
    /// Largest training set of the ML-utility models
    #[arg(long, default_value_t = ReportConfig::default().utility_rows)]
    pub utility_rows: usize,
    /// Synthetic rows whose nearest training and holdout rows are searched
    #[arg(long, default_value_t = PrivacyConfig::default().queries)]
    pub privacy_queries: usize,
    /// Largest reference set of a nearest-neighbour search
    #[arg(long, default_value_t = PrivacyConfig::default().reference_rows)]
    pub privacy_reference_rows: usize,
    /// A category seen fewer times than this in training is rare
    #[arg(long, default_value_t = PrivacyConfig::default().rare_below)]
    pub rare_below: usize,
    /// Replace the report files if they exist
    #[arg(long)]
    pub force: bool,
}

/// What `synth report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The HTML page and the JSON file beside it
    Html,
    /// The JSON on stdout only
    Json,
}

/// A run whose report was written but whose `--fail-under` gate failed (exit status 1).
#[derive(Debug)]
pub struct GateFailed(pub String);

impl std::fmt::Display for GateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "quality gate failed: {}", self.0)
    }
}

impl std::error::Error for GateFailed {}

pub(super) fn run(args: ReportArgs, printer: Printer) -> anyhow::Result<()> {
    crate::flag_ensure!(
        args.detection_rows >= 30,
        "--detection-rows",
        "must be at least 30"
    );
    crate::flag_ensure!(
        args.utility_rows >= 10,
        "--utility-rows",
        "must be at least 10"
    );
    crate::flag_ensure!(
        args.privacy_queries > 0,
        "--privacy-queries",
        "must be at least 1"
    );
    crate::flag_ensure!(
        args.privacy_reference_rows > 0,
        "--privacy-reference-rows",
        "must be at least 1"
    );
    crate::flag_ensure!(args.rare_below > 0, "--rare-below", "must be at least 1");

    let model_dir = match &args.model {
        Some(dir) => Some(dir.clone()),
        None if args.real.is_none() || args.synthetic.is_none() => {
            Some(find_model(Path::new("."))?)
        }
        None => None,
    };
    // The manifest alone, checked for format and version; the weights are not needed.
    let manifest: Option<Manifest> = model_dir
        .as_deref()
        .map(|dir| read_manifest(dir, FORMAT, "tabular", FORMAT_VERSION))
        .transpose()?;

    // The synthetic rows.
    let synthetic_path = match (&args.synthetic, &model_dir) {
        (Some(path), _) => path.clone(),
        (None, Some(dir)) => PathBuf::from(
            LastGenerated::load(dir)
                .ok_or_else(|| Error::Flag {
                    flag: "--synthetic".into(),
                    reason: format!("model `{}` has not generated any rows yet; run `synth generate` or pass `--synthetic FILE`", dir.display()),
                })?
                .path,
        ),
        (None, None) => unreachable!("a model is looked up when --synthetic is missing"),
    };

    // The real rows, and the holdout the model kept aside.
    let model_data = manifest.as_ref().map(|m| &m.data);
    let model_file = model_data.and_then(|data| data.path.as_ref().map(PathBuf::from));
    let real_path = match (&args.real, &model_file) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => path.clone(),
        (None, None) => {
            return Err(Error::Flag {
                flag: "--real".into(),
                reason: "the model does not record its training file; pass `--real FILE`".into(),
            }
            .into());
        }
    };
    let same_as_model = model_file.as_ref().is_some_and(|file| {
        std::fs::canonicalize(file).ok() == std::fs::canonicalize(&real_path).ok()
    });
    let real_frame = read_table(&real_path)?;
    let (real_frame, holdout_frame, holdout_label) = match (
        &args.holdout,
        model_data.and_then(|d| d.holdout.as_ref()),
    ) {
        (Some(path), _) => (
            real_frame,
            Some(read_table(path)?),
            Some(path.display().to_string()),
        ),
        (None, Some(split)) if same_as_model => {
            let expected = model_data
                .map(|d| d.fingerprint.as_str())
                .unwrap_or_default();
            if fingerprint(&real_path)? != expected || real_frame.height() != split.file_rows {
                return Err(Error::ReadData {
                    path: real_path.clone(),
                    reason: "the file changed since the model was fitted, so its holdout rows are unknown; pass `--real` and `--holdout`".into(),
                }
                .into());
            }
            let (train, holdout) = split.split(&real_frame)?;
            (
                train,
                Some(holdout),
                Some(format!(
                    "{} rows held out by `synth fit --holdout-fraction {}`",
                    split.rows.len(),
                    split.fraction
                )),
            )
        }
        _ => (real_frame, None, None),
    };
    let holdout_path = args.holdout.clone().unwrap_or_else(|| real_path.clone());
    let synthetic_frame = read_table(&synthetic_path)?;

    // Column kinds.
    let (schema, schema_label) = match (&args.schema, &manifest) {
        (Some(path), _) => (Schema::load(path)?, format!("`{}`", path.display())),
        (None, Some(manifest)) => (
            manifest.encoder.schema.clone(),
            format!(
                "model `{}`",
                model_dir
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
        ),
        (None, None) => (
            Schema::infer(&real_frame, &EncodeConfig::default())?,
            "inference on the real rows".into(),
        ),
    };
    if let Some(target) = &args.target
        && !schema.columns.iter().any(|c| &c.name == target)
    {
        return Err(Error::Flag {
            flag: "--target".into(),
            reason: format!(
                "no column `{target}`; valid ones are {}",
                schema
                    .columns
                    .iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        .into());
    }
    let gates = match &args.fail_under {
        Some(text) => gate::parse(text, holdout_frame.is_some(), args.target.is_some())?,
        None => Vec::new(),
    };

    let (html_path, json_path) = match args.format {
        Format::Html => {
            let html_path = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.report.html", stem(&synthetic_path))));
            let json_path = html_path.with_extension("json");
            crate::flag_ensure!(
                json_path != html_path,
                "--out",
                "`{}` would be overwritten by the JSON; name the page `.html`",
                html_path.display()
            );
            check_output(&html_path, args.force, "--out")?;
            check_output(&json_path, args.force, "--out")?;
            (Some(html_path), Some(json_path))
        }
        Format::Json => (None, None),
    };

    if args.real.is_none() || args.synthetic.is_none() {
        printer.status(&format!(
            "Reporting on model `{}`: real rows `{}`, synthetic rows `{}`{}",
            model_dir
                .as_deref()
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            real_path.display(),
            synthetic_path.display(),
            if args.synthetic.is_none() {
                " (its last generated file)"
            } else {
                ""
            }
        ));
    }

    let started = Instant::now();
    let tables = prepare(
        &schema,
        Input {
            frame: &real_frame,
            path: &real_path,
        },
        Input {
            frame: &synthetic_frame,
            path: &synthetic_path,
        },
        holdout_frame.as_ref().map(|frame| Input {
            frame,
            path: &holdout_path,
        }),
    )?;
    drop((real_frame, synthetic_frame, holdout_frame));
    let config = ReportConfig {
        target: args.target.clone(),
        detection_rows: args.detection_rows,
        utility_rows: args.utility_rows,
        privacy: PrivacyConfig {
            queries: args.privacy_queries,
            reference_rows: args.privacy_reference_rows,
            rare_below: args.rare_below,
        },
        seed: args.seed,
    };
    let inputs = Inputs {
        real: real_path.display().to_string(),
        synthetic: synthetic_path.display().to_string(),
        holdout: holdout_label,
        model: model_dir.as_deref().map(|d| d.display().to_string()),
        schema: schema_label,
        rows: InputRows {
            real: tables.rows[0],
            synthetic: tables.rows[1],
            holdout: tables.rows[2],
        },
        seed: args.seed,
        synth_version: env!("CARGO_PKG_VERSION").into(),
    };
    let report = build(&tables, &config, inputs, &gates)?;
    let json = serde_json::to_string_pretty(&report)?;

    match (&html_path, &json_path) {
        (Some(html_path), Some(json_path)) => {
            let history = model_dir
                .as_deref()
                .map(training_history)
                .unwrap_or_default();
            let page = html::render(&report, &tables, &history);
            write_atomic(json_path, format!("{json}\n").as_bytes(), args.force)?;
            write_atomic(html_path, page.as_bytes(), args.force)?;
            printer.status(&format!(
                "Quality {:.3}, detection AUC {:.3}{} in {:.1}s; report written to `{}` and `{}`",
                report.fidelity.quality,
                report.fidelity.detection_auc,
                report
                    .privacy
                    .dcr_closer_to_train_share
                    .map_or_else(String::new, |s| format!(", closer-to-train share {s:.3}")),
                started.elapsed().as_secs_f64(),
                html_path.display(),
                json_path.display()
            ));
        }
        _ => println!("{json}"),
    }

    let failed: Vec<String> = gate::failures(&report)
        .iter()
        .map(|mark| {
            format!(
                "{} {} < {}",
                mark.name,
                mark.value.map_or("n/a".into(), |v| format!("{v:.3}")),
                mark.threshold.unwrap_or_default()
            )
        })
        .collect();
    if !failed.is_empty() {
        return Err(GateFailed(failed.join(", ")).into());
    }
    Ok(())
}
