//! ML utility: do models trained on synthetic rows work on real ones?
//!
//! Gradient-boosted trees predict the target column from every other compared column. Three
//! models are trained, on real training rows, on as many synthetic rows, and on both together
//! (augmentation), and all three are scored on the holdout. A discrete target with two classes
//! is a binary task (the rarer class in the training rows is the positive one), with more
//! classes a one-against-rest multiclass task, and a numeric target a regression.

use std::collections::BTreeMap;

use serde::Serialize;

use super::learn::{
    Features, Task, Trees, average_precision, macro_f1, r_squared, recall_at_precision, roc_auc,
};
use super::prepare::{Side, Tables, Values, sample_rows};
use crate::error::{Error, Result};
use crate::rng::{Purpose, substream};

/// The precision at which binary tasks report recall.
pub const RECALL_PRECISION: f64 = 0.5;
/// The most classes a multiclass target may have.
pub const MAX_CLASSES: usize = 50;

/// One metric's value for each training set.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    /// Trained on real rows.
    pub real: f64,
    /// Trained on synthetic rows.
    pub synthetic: f64,
    /// Trained on real and synthetic rows together.
    pub augmented: f64,
}

/// The utility section.
#[derive(Debug, Clone, Serialize)]
pub struct Utility {
    /// The target column.
    pub target: String,
    /// `binary`, `multiclass` or `regression`.
    pub task: &'static str,
    /// For binary tasks, the class treated as positive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    /// The metric the gate and summary use.
    pub primary: &'static str,
    /// Synthetic over real of the primary metric, capped at 1: how much of the real model's
    /// performance a model trained on synthetic rows keeps.
    pub synthetic_over_real: f64,
    /// Every metric, by name, each with its `real`, `synthetic` and `augmented` value.
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Scores>,
    /// Rows in each training set and in the test set.
    pub train_rows: usize,
    /// Holdout rows scored.
    pub test_rows: usize,
}

/// The target's values as training labels, and how to read them.
enum Target {
    Binary { positive: u32, label: String },
    Multiclass { classes: Vec<u32> },
    Regression,
}

/// Trains and scores the three models.
pub fn utility(tables: &Tables, target: &str, rows: usize, seed: u64) -> Result<Utility> {
    let column = tables.column(target).ok_or_else(|| Error::Flag {
        flag: "--target".into(),
        reason: format!(
            "no compared column `{target}`; valid ones are {}",
            tables
                .columns
                .iter()
                .map(|c| format!("`{}`", c.name()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })?;
    if !tables.has_holdout() {
        return Err(Error::Flag {
            flag: "--target".into(),
            reason: "ML utility is scored on held-out real rows: pass `--holdout FILE`, or fit with `--holdout-fraction` and pass `--model DIR`".into(),
        });
    }
    let kind = match &column.real {
        Values::Numbers(_) => Target::Regression,
        Values::Codes(codes) => {
            let mut counts = vec![0usize; column.levels.len()];
            for &code in codes.iter().filter(|&&c| c != super::prepare::NULL) {
                counts[code as usize] += 1;
            }
            let mut classes: Vec<u32> = (0..counts.len() as u32)
                .filter(|&c| counts[c as usize] > 0)
                .collect();
            match classes.len() {
                0 | 1 => {
                    return Err(Error::Column {
                        column: target.into(),
                        reason: format!(
                            "the target has {} class in the real rows; ML utility needs at least two",
                            classes.len()
                        ),
                    });
                }
                2 => {
                    classes.sort_by_key(|&c| (counts[c as usize], c));
                    let positive = classes[0];
                    Target::Binary {
                        positive,
                        label: column.levels[positive as usize].clone(),
                    }
                }
                n if n > MAX_CLASSES => {
                    return Err(Error::Column {
                        column: target.into(),
                        reason: format!(
                            "the target has {n} classes; ML utility supports at most {MAX_CLASSES}"
                        ),
                    });
                }
                _ => Target::Multiclass { classes },
            }
        }
    };

    let features: Vec<_> = tables
        .columns
        .iter()
        .filter(|c| c.name() != target)
        .collect();
    // Rows whose target is present.
    let labelled = |side: Side| -> Vec<usize> {
        let values = column.side(side).map_or(0, Values::len);
        (0..values)
            .filter(|&row| column.side(side).is_some_and(|v| !v.is_null(row)))
            .collect()
    };
    let mut rng = substream(seed, Purpose::Split, 301);
    let pick = |side: Side, limit: usize, rng: &mut crate::rng::Stream| {
        let all = labelled(side);
        sample_rows(all.len(), limit, rng)
            .into_iter()
            .map(|i| all[i])
            .collect::<Vec<_>>()
    };
    let real_rows = pick(Side::Real, rows, &mut rng);
    let synthetic_rows = pick(Side::Synthetic, real_rows.len(), &mut rng);
    let test_rows = pick(Side::Holdout, rows, &mut rng);
    if synthetic_rows.is_empty() || test_rows.is_empty() {
        return Err(Error::Column {
            column: target.into(),
            reason: "the synthetic or holdout rows have no values in the target".into(),
        });
    }

    let sets = [
        (
            Features::of(&features, Side::Real, &real_rows),
            targets(column.side(Side::Real), &real_rows),
        ),
        (
            Features::of(&features, Side::Synthetic, &synthetic_rows),
            targets(column.side(Side::Synthetic), &synthetic_rows),
        ),
    ];
    let augmented = (
        sets[0].0.stack(&sets[1].0),
        [sets[0].1.clone(), sets[1].1.clone()].concat(),
    );
    let test = Features::of(&features, Side::Holdout, &test_rows);
    let truth = targets(column.side(Side::Holdout), &test_rows);
    let training = [&sets[0], &sets[1], &augmented];

    let (task, primary, positive_class, metrics) = match &kind {
        Target::Binary { positive, label } => {
            let labels = |values: &[f64]| -> Vec<f64> {
                values
                    .iter()
                    .map(|&v| if v as u32 == *positive { 1.0 } else { 0.0 })
                    .collect()
            };
            let truth: Vec<bool> = labels(&truth).iter().map(|&v| v > 0.5).collect();
            let mut scored = Vec::new();
            for (i, (x, y)) in training.iter().enumerate() {
                let trees = Trees::fit(Task::Binary, x, &labels(y), seed ^ i as u64)?;
                scored.push(trees.predict(&test));
            }
            let metric = |f: &dyn Fn(&[f64]) -> f64| Scores {
                real: f(&scored[0]),
                synthetic: f(&scored[1]),
                augmented: f(&scored[2]),
            };
            let metrics = vec![
                ("roc_auc".to_owned(), metric(&|s| roc_auc(s, &truth))),
                (
                    "pr_auc".to_owned(),
                    metric(&|s| average_precision(s, &truth)),
                ),
                (
                    format!("recall_at_{:.0}_precision", RECALL_PRECISION * 100.0),
                    metric(&|s| recall_at_precision(s, &truth, RECALL_PRECISION)),
                ),
            ];
            ("binary", "roc_auc", Some(label.clone()), metrics)
        }
        Target::Multiclass { classes } => {
            let truth: Vec<u32> = truth.iter().map(|&v| v as u32).collect();
            let mut predicted = Vec::new();
            for (i, (x, y)) in training.iter().enumerate() {
                // One model per class; each row goes to the class with the highest log-odds.
                let mut best = vec![(f64::NEG_INFINITY, 0u32); test.rows()];
                for &class in classes {
                    let labels: Vec<f64> = y
                        .iter()
                        .map(|&v| if v as u32 == class { 1.0 } else { 0.0 })
                        .collect();
                    if !labels.iter().any(|&l| l > 0.5) {
                        continue;
                    }
                    let trees = Trees::fit(
                        Task::Binary,
                        x,
                        &labels,
                        seed ^ (i as u64) << 8 ^ class as u64,
                    )?;
                    for (slot, score) in best.iter_mut().zip(trees.predict(&test)) {
                        if score > slot.0 {
                            *slot = (score, class);
                        }
                    }
                }
                predicted.push(
                    best.into_iter()
                        .map(|(_, class)| class)
                        .collect::<Vec<u32>>(),
                );
            }
            let accuracy = |p: &[u32]| {
                p.iter().zip(&truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
            };
            let metrics = vec![
                (
                    "macro_f1".to_owned(),
                    Scores {
                        real: macro_f1(&predicted[0], &truth),
                        synthetic: macro_f1(&predicted[1], &truth),
                        augmented: macro_f1(&predicted[2], &truth),
                    },
                ),
                (
                    "accuracy".to_owned(),
                    Scores {
                        real: accuracy(&predicted[0]),
                        synthetic: accuracy(&predicted[1]),
                        augmented: accuracy(&predicted[2]),
                    },
                ),
            ];
            ("multiclass", "macro_f1", None, metrics)
        }
        Target::Regression => {
            let mut predicted = Vec::new();
            for (i, (x, y)) in training.iter().enumerate() {
                let trees = Trees::fit(Task::Regression, x, y, seed ^ i as u64)?;
                predicted.push(trees.predict(&test));
            }
            let metrics = vec![(
                "r2".to_owned(),
                Scores {
                    real: r_squared(&predicted[0], &truth),
                    synthetic: r_squared(&predicted[1], &truth),
                    augmented: r_squared(&predicted[2], &truth),
                },
            )];
            ("regression", "r2", None, metrics)
        }
    };
    let primary_scores = metrics[0].1;
    let metrics: BTreeMap<String, Scores> = metrics.into_iter().collect();
    let synthetic_over_real = if primary_scores.real > 0.0 {
        (primary_scores.synthetic.max(0.0) / primary_scores.real).min(1.0)
    } else {
        f64::NAN
    };
    Ok(Utility {
        target: target.to_owned(),
        task,
        positive_class,
        primary,
        synthetic_over_real,
        metrics,
        train_rows: real_rows.len(),
        test_rows: test_rows.len(),
    })
}

/// The target values of `rows`: numbers, or codes as numbers.
fn targets(values: Option<&Values>, rows: &[usize]) -> Vec<f64> {
    match values {
        Some(Values::Numbers(numbers)) => rows.iter().map(|&r| numbers[r]).collect(),
        Some(Values::Codes(codes)) => rows.iter().map(|&r| codes[r] as f64).collect(),
        None => Vec::new(),
    }
}
