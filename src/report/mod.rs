//! Stage 5: the report on a synthetic table, against the real rows it imitates.
//!
//! [`prepare`] reads the real, synthetic and holdout tables into comparable columns; the
//! sections are computed from them, [`fidelity`] and [`detection`] always, [`utility`] when a
//! target column is named and [`privacy`] in full when there is a holdout; [`gate`] turns the
//! scores into pass, warn and fail marks; [`html`] draws the page.

pub mod detection;
pub mod fidelity;
pub mod gate;
pub mod html;
pub mod learn;
pub mod prepare;
pub mod privacy;
pub mod utility;

use serde::{Serialize, Serializer};

use crate::error::Result;
use crate::gan::train::EpochMetrics;
use prepare::Tables;
use privacy::PrivacyConfig;

/// What to compute and on how many rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    /// Column whose prediction the utility section scores.
    pub target: Option<String>,
    /// Rows of each table the detection classifier sees.
    pub detection_rows: usize,
    /// Largest training set of the utility models.
    pub utility_rows: usize,
    /// Sample sizes of the privacy section.
    pub privacy: PrivacyConfig,
    /// Seed of every sample and model.
    pub seed: u64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            target: None,
            detection_rows: 50_000,
            utility_rows: 100_000,
            privacy: PrivacyConfig::default(),
            seed: 0,
        }
    }
}

/// Where the compared tables came from.
#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// The real training table.
    pub real: String,
    /// The synthetic table.
    pub synthetic: String,
    /// The holdout, or how it was found.
    pub holdout: Option<String>,
    /// The model directory, when one was given or found.
    pub model: Option<String>,
    /// Where the column kinds came from.
    pub schema: String,
    /// Rows of real, synthetic and holdout tables.
    pub rows: InputRows,
    /// The report's seed.
    pub seed: u64,
    /// Version of synth that wrote the report.
    pub synth_version: String,
}

/// Row counts of the inputs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InputRows {
    /// Real training rows.
    pub real: usize,
    /// Synthetic rows.
    pub synthetic: usize,
    /// Holdout rows; 0 without a holdout.
    pub holdout: usize,
}

/// The fidelity section.
#[derive(Debug, Clone, Serialize)]
pub struct Fidelity {
    /// Mean of `column_shapes` and `column_pair_trends`, as SDMetrics' quality score.
    pub quality: f64,
    /// Mean column shape score.
    pub column_shapes: f64,
    /// Mean pair trend score over the pairs associated in the real rows.
    pub column_pair_trends: f64,
    /// Mean pair trend score over every pair.
    pub all_pairs: f64,
    /// Mean coverage and missing-value similarity.
    pub coverage: f64,
    /// Cross-validated ROC AUC of telling real from synthetic rows; 0.5 is ideal.
    pub detection_auc: f64,
    /// The detection details and score.
    pub detection: detection::Detection,
    /// Per-column scores, by column name.
    #[serde(serialize_with = "in_order")]
    pub columns: Vec<(String, fidelity::ColumnScores)>,
    /// Per-pair scores.
    pub pairs: Vec<fidelity::PairScores>,
    /// The numeric columns' correlation matrices, for the page.
    #[serde(skip)]
    pub correlations: fidelity::Correlations,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Statistical fidelity.
    pub fidelity: Fidelity,
    /// ML utility; `null` without a target.
    pub utility: Option<utility::Utility>,
    /// Privacy.
    pub privacy: privacy::Privacy,
    /// Every gated score with its mark.
    pub summary: Vec<gate::Mark>,
    /// Where the inputs came from.
    pub inputs: Inputs,
}

/// Serialises name–value pairs as a JSON object in their order.
fn in_order<T: Serialize, S: Serializer>(
    pairs: &[(String, T)],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(name, value)| (name, value)))
}

/// Computes every section of the report.
pub fn build(
    tables: &Tables,
    config: &ReportConfig,
    inputs: Inputs,
    gates: &[gate::Gate],
) -> Result<Report> {
    let shapes = fidelity::shapes(tables);
    let detection = detection::detection(tables, config.detection_rows, config.seed)?;
    let utility = config
        .target
        .as_deref()
        .map(|target| utility::utility(tables, target, config.utility_rows, config.seed))
        .transpose()?;
    let privacy = privacy::privacy(tables, &config.privacy, config.seed);
    let fidelity = Fidelity {
        quality: shapes.quality,
        column_shapes: shapes.column_shapes,
        column_pair_trends: shapes.column_pair_trends,
        all_pairs: shapes.all_pairs,
        coverage: shapes.coverage,
        detection_auc: detection.auc,
        detection,
        columns: shapes.columns,
        pairs: shapes.pairs,
        correlations: shapes.correlations,
    };
    let mut report = Report {
        fidelity,
        utility,
        privacy,
        summary: Vec::new(),
        inputs,
    };
    report.summary = gate::marks(&report, gates);
    Ok(report)
}

/// Reads a model directory's per-epoch losses; empty when it has none.
pub fn training_history(model: &std::path::Path) -> Vec<EpochMetrics> {
    std::fs::read_to_string(model.join(crate::gan::checkpoint::METRICS))
        .map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
        .unwrap_or_default()
}
