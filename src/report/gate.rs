//! Scores as pass, warn and fail marks, and the `--fail-under` gate of pipelines.
//!
//! Every gated score is one where higher is better, in [0, 1]. Scores whose ideal is a middle
//! value are folded as SDMetrics folds detection: an AUC or a closer-to-train share `x` becomes
//! 1 − 2·(max(x, 0.5) − 0.5), so 0.5 (or less) scores 1 and 1 scores 0.

use serde::Serialize;

use super::Report;
use crate::error::{Error, Result};

/// A gated score: its name, what it measures, and its default pass and warn bands.
pub struct ScoreKind {
    /// Name in `--fail-under` and in the JSON summary.
    pub name: &'static str,
    /// One line for the report.
    pub description: &'static str,
    /// At or above: pass.
    pub pass: f64,
    /// At or above (and below `pass`): warn; below: fail.
    pub warn: f64,
    /// What the score needs beyond the real and synthetic tables.
    pub needs: Needs,
}

/// What a score needs to be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing more.
    Nothing,
    /// A holdout.
    Holdout,
    /// A target column (and a holdout).
    Target,
}

/// Every score the gate knows.
pub const SCORES: &[ScoreKind] = &[
    ScoreKind {
        name: "quality",
        description: "mean of column shapes and column pair trends (SDMetrics quality)",
        pass: 0.8,
        warn: 0.6,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "column_shapes",
        description: "per-column distributions (KS / TV complement)",
        pass: 0.8,
        warn: 0.6,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "column_pair_trends",
        description: "pairwise correlations and contingencies",
        pass: 0.8,
        warn: 0.6,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "coverage",
        description: "ranges, categories and null shares covered",
        pass: 0.9,
        warn: 0.7,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "detection",
        description: "1 − 2·(AUC − 0.5) of a real-vs-synthetic classifier",
        pass: 0.5,
        warn: 0.2,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "utility",
        description: "synthetic-trained over real-trained model score on the holdout",
        pass: 0.9,
        warn: 0.75,
        needs: Needs::Target,
    },
    ScoreKind {
        name: "dcr",
        description: "folded share of synthetic rows closer to train than to holdout",
        pass: 0.9,
        warn: 0.8,
        needs: Needs::Holdout,
    },
    ScoreKind {
        name: "mia",
        description: "folded AUC of a distance-based membership attack",
        pass: 0.9,
        warn: 0.8,
        needs: Needs::Holdout,
    },
    ScoreKind {
        name: "exact_copies",
        description: "1 − share of synthetic rows that copy a training row",
        pass: 0.99,
        warn: 0.95,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "nndr",
        description: "median nearest / second-nearest training distance",
        pass: 0.7,
        warn: 0.5,
        needs: Needs::Nothing,
    },
    ScoreKind {
        name: "rare_categories",
        description: "1 − share of rare training categories reproduced",
        pass: 0.9,
        warn: 0.5,
        needs: Needs::Nothing,
    },
];

/// One `--fail-under` threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// A name from [`SCORES`].
    pub name: String,
    /// The score must reach this.
    pub threshold: f64,
}

/// A score's value and mark in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    /// The score's name.
    pub name: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Its value; `null` when it could not be computed.
    pub value: Option<f64>,
    /// `pass`, `warn`, `fail` or `n/a`.
    pub mark: &'static str,
    /// The `--fail-under` threshold, when one was given.
    pub threshold: Option<f64>,
}

fn valid_names() -> String {
    SCORES
        .iter()
        .map(|kind| kind.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `name=value,name=value`, checking names and values, and that each gated score can be
/// computed from the given inputs.
pub fn parse(text: &str, has_holdout: bool, has_target: bool) -> Result<Vec<Gate>> {
    let flag_error = |reason: String| Error::Flag {
        flag: "--fail-under".into(),
        reason,
    };
    let mut gates: Vec<Gate> = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| flag_error(format!("`{item}` is not of the form NAME=VALUE")))?;
        let name = name.trim();
        let kind = SCORES
            .iter()
            .find(|kind| kind.name == name)
            .ok_or_else(|| {
                flag_error(format!(
                    "unknown score `{name}`; valid ones are {}",
                    valid_names()
                ))
            })?;
        let threshold: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| flag_error(format!("`{value}` is not a number (in `{item}`)")))?;
        match kind.needs {
            Needs::Holdout if !has_holdout => {
                return Err(flag_error(format!(
                    "`{name}` needs a holdout: pass `--holdout FILE`, or a model fitted with `--holdout-fraction`"
                )));
            }
            Needs::Target if !(has_target && has_holdout) => {
                return Err(flag_error(format!(
                    "`{name}` needs `--target COLUMN` and a holdout"
                )));
            }
            _ => {}
        }
        if gates.iter().any(|gate| gate.name == name) {
            return Err(flag_error(format!("`{name}` is given twice")));
        }
        gates.push(Gate {
            name: name.to_owned(),
            threshold,
        });
    }
    Ok(gates)
}

/// 1 − 2·(max(x, 0.5) − 0.5): 1 at or below 0.5, 0 at 1.
pub fn fold(x: f64) -> f64 {
    1.0 - 2.0 * (x.max(0.5) - 0.5)
}

/// The value of the score called `name` in `report`.
pub fn value(report: &Report, name: &str) -> Option<f64> {
    let fidelity = &report.fidelity;
    let privacy = &report.privacy;
    let value = match name {
        "quality" => fidelity.quality,
        "column_shapes" => fidelity.column_shapes,
        "column_pair_trends" => fidelity.column_pair_trends,
        "coverage" => fidelity.coverage,
        "detection" => fidelity.detection.score,
        "utility" => report.utility.as_ref()?.synthetic_over_real,
        "dcr" => fold(privacy.dcr_closer_to_train_share?),
        "mia" => fold(privacy.mia_auc?),
        "exact_copies" => 1.0 - privacy.exact_copy_share,
        "nndr" => privacy.nndr_median,
        "rare_categories" if privacy.rare_categories == 0 => 1.0,
        "rare_categories" => {
            1.0 - privacy.rare_category_leaks as f64 / privacy.rare_categories as f64
        }
        _ => return None,
    };
    value.is_finite().then_some(value)
}

/// Every score's value and mark: against its `--fail-under` threshold when one is given,
/// else against its default bands.
pub fn marks(report: &Report, gates: &[Gate]) -> Vec<Mark> {
    SCORES
        .iter()
        .map(|kind| {
            let value = value(report, kind.name);
            let threshold = gates
                .iter()
                .find(|gate| gate.name == kind.name)
                .map(|gate| gate.threshold);
            let mark = match (value, threshold) {
                (None, _) => "n/a",
                (Some(v), Some(t)) => {
                    if v >= t {
                        "pass"
                    } else {
                        "fail"
                    }
                }
                (Some(v), None) if v >= kind.pass => "pass",
                (Some(v), None) if v >= kind.warn => "warn",
                (Some(_), None) => "fail",
            };
            Mark {
                name: kind.name,
                description: kind.description,
                value,
                mark,
                threshold,
            }
        })
        .collect()
}

/// The gated scores that missed their threshold.
pub fn failures(report: &Report) -> Vec<&Mark> {
    report
        .summary
        .iter()
        .filter(|mark| mark.threshold.is_some() && mark.mark != "pass")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_gates() {
        let gates = parse("quality=0.8, detection=0.7", false, false).unwrap_or_default();
        assert_eq!(gates.len(), 2);
        assert_eq!(
            gates[1],
            Gate {
                name: "detection".into(),
                threshold: 0.7
            }
        );
        let error = parse("qualty=0.8", false, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("unknown score `qualty`") && error.contains("column_shapes"),
            "{error}"
        );
        assert!(parse("quality", false, false).is_err());
        assert!(parse("quality=high", false, false).is_err());
        assert!(parse("mia=0.9", false, false).is_err());
        assert!(parse("mia=0.9", true, false).is_ok());
        assert!(parse("utility=0.9", true, false).is_err());
    }

    #[test]
    fn folding() {
        assert_eq!(fold(0.5), 1.0);
        assert_eq!(fold(0.3), 1.0);
        assert_eq!(fold(1.0), 0.0);
        assert!((fold(0.75) - 0.5).abs() < 1e-12);
    }
}
