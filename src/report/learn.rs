//! Gradient-boosted trees and the scores of their predictions, for the detection and
//! ML-utility sections.
//!
//! The trees come from `forust-ml`. Features are the compared columns: numbers as they are
//! (nulls left missing, which the trees route on their own), discrete columns as their codes,
//! ordered by falling frequency in the real rows.

use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;

use super::prepare::{Column, NULL, Side, Values};
use crate::error::{Error, Result};

/// Boosting rounds of every model.
pub const ROUNDS: usize = 100;
/// Learning rate of every model.
pub const LEARNING_RATE: f32 = 0.1;
/// Depth of every tree.
pub const DEPTH: usize = 6;

/// A column-major feature matrix.
#[derive(Debug, Clone, Default)]
pub struct Features {
    values: Vec<f64>,
    rows: usize,
    columns: usize,
}

impl Features {
    /// The features of `rows` of one side, from every column in `columns`.
    pub fn of(columns: &[&Column], side: Side, rows: &[usize]) -> Features {
        let mut features = Features {
            values: Vec::with_capacity(columns.len() * rows.len()),
            rows: rows.len(),
            columns: 0,
        };
        for column in columns {
            if let Some(values) = column.side(side) {
                features.push_column(values, rows);
            }
        }
        features
    }

    fn push_column(&mut self, values: &Values, rows: &[usize]) {
        match values {
            Values::Numbers(numbers) => self.values.extend(rows.iter().map(|&row| numbers[row])),
            Values::Codes(codes) => self.values.extend(rows.iter().map(|&row| {
                let code = codes[row];
                if code == NULL { f64::NAN } else { code as f64 }
            })),
        }
        self.columns += 1;
    }

    /// Rows of `self` followed by rows of `other`, which must have the same columns.
    pub fn stack(&self, other: &Features) -> Features {
        let rows = self.rows + other.rows;
        let mut values = Vec::with_capacity(rows * self.columns);
        for column in 0..self.columns {
            values.extend_from_slice(&self.values[column * self.rows..(column + 1) * self.rows]);
            values.extend_from_slice(&other.values[column * other.rows..(column + 1) * other.rows]);
        }
        Features {
            values,
            rows,
            columns: self.columns,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn matrix(&self) -> Matrix<'_, f64> {
        Matrix::new(&self.values, self.rows, self.columns)
    }
}

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// A 0/1 label; predictions are scores, higher meaning 1.
    Binary,
    /// A number; predictions are values.
    Regression,
}

/// A fitted gradient-boosted tree model.
pub struct Trees {
    booster: GradientBooster,
}

impl Trees {
    /// Fits trees to `targets` (0/1 for [`Task::Binary`]).
    pub fn fit(task: Task, features: &Features, targets: &[f64], seed: u64) -> Result<Trees> {
        let objective = match task {
            Task::Binary => ObjectiveType::LogLoss,
            Task::Regression => ObjectiveType::SquaredLoss,
        };
        let mut booster = GradientBooster::default()
            .set_objective_type(objective)
            .set_iterations(ROUNDS)
            .set_learning_rate(LEARNING_RATE)
            .set_max_depth(DEPTH)
            .set_nbins(64)
            .set_initialize_base_score(true)
            .set_parallel(true);
        booster.seed = seed;
        booster
            .fit_unweighted(&features.matrix(), targets, None)
            .map_err(|error| Error::Model {
                path: "gradient-boosted trees".into(),
                reason: error.to_string(),
            })?;
        Ok(Trees { booster })
    }

    /// Predictions for every row: log-odds for [`Task::Binary`], values for
    /// [`Task::Regression`].
    pub fn predict(&self, features: &Features) -> Vec<f64> {
        self.booster.predict(&features.matrix(), true)
    }
}

/// Area under the ROC curve of `scores` for 0/1 `labels`, ties counted half; NaN when a class
/// is missing.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of positive ranks, with tied scores sharing their mean rank.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0;
        rank_sum += mean_rank * order[start..end].iter().filter(|&&i| labels[i]).count() as f64;
        start = end;
    }
    let positives = positives as f64;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives as f64)
}

/// Points of the precision–recall curve, one per distinct score from the highest down, as
/// (recall, precision).
fn precision_recall(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut true_pos, mut seen) = (0.0, 0.0);
    let mut points = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let score = scores[order[i]];
        while i < order.len() && scores[order[i]] == score {
            seen += 1.0;
            if labels[order[i]] {
                true_pos += 1.0;
            }
            i += 1;
        }
        points.push((true_pos / positives, true_pos / seen));
    }
    points
}

/// Average precision (the area under the precision–recall curve as a step function); NaN
/// without positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    if !labels.iter().any(|&l| l) {
        return f64::NAN;
    }
    let mut previous_recall = 0.0;
    let mut area = 0.0;
    for (recall, precision) in precision_recall(scores, labels) {
        area += (recall - previous_recall) * precision;
        previous_recall = recall;
    }
    area
}

/// The highest recall at any threshold whose precision is at least `precision`; 0 when none
/// reaches it, NaN without positives.
pub fn recall_at_precision(scores: &[f64], labels: &[bool], precision: f64) -> f64 {
    if !labels.iter().any(|&l| l) {
        return f64::NAN;
    }
    precision_recall(scores, labels)
        .into_iter()
        .filter(|&(_, p)| p >= precision)
        .map(|(recall, _)| recall)
        .fold(0.0, f64::max)
}

/// Unweighted mean of the per-class F1 scores over the classes present in the truth or the
/// predictions.
pub fn macro_f1(predicted: &[u32], truth: &[u32]) -> f64 {
    let classes = predicted
        .iter()
        .chain(truth)
        .copied()
        .max()
        .map_or(0, |c| c as usize + 1);
    let mut counts = vec![[0usize; 3]; classes]; // true positives, predicted, actual
    for (&p, &t) in predicted.iter().zip(truth) {
        counts[p as usize][1] += 1;
        counts[t as usize][2] += 1;
        if p == t {
            counts[p as usize][0] += 1;
        }
    }
    let scores: Vec<f64> = counts
        .iter()
        .filter(|[_, predicted, actual]| predicted + actual > 0)
        .map(|[tp, predicted, actual]| 2.0 * *tp as f64 / (predicted + actual) as f64)
        .collect();
    scores.iter().sum::<f64>() / scores.len().max(1) as f64
}

/// The coefficient of determination of `predicted` against `truth`; NaN for a constant truth.
pub fn r_squared(predicted: &[f64], truth: &[f64]) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len().max(1) as f64;
    let total: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    let residual: f64 = predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| (t - p).powi(2))
        .sum();
    if total == 0.0 {
        f64::NAN
    } else {
        1.0 - residual / total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        let labels = [false, true, false, true];
        assert_eq!(roc_auc(&[0.1, 0.9, 0.2, 0.8], &labels), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.1, 0.8, 0.2], &labels), 0.0);
        assert_eq!(roc_auc(&[0.5; 4], &labels), 0.5);
        // One positive above both negatives, one between them.
        assert!((roc_auc(&[0.1, 0.9, 0.3, 0.2], &labels) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn precision_recall_scores() {
        // Ranked: +, -, +, -.
        let scores = [0.9, 0.8, 0.7, 0.6];
        let labels = [true, false, true, false];
        assert!((average_precision(&scores, &labels) - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(recall_at_precision(&scores, &labels, 0.9), 0.5);
        assert_eq!(recall_at_precision(&scores, &labels, 0.6), 1.0);
    }

    #[test]
    fn f1_and_r_squared() {
        assert_eq!(macro_f1(&[0, 1, 2], &[0, 1, 2]), 1.0);
        // Class 0: p=1, r=0.5 → 2/3; class 1: p=0.5, r=1 → 2/3.
        assert!((macro_f1(&[0, 1, 1], &[0, 0, 1]) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r_squared(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert!((r_squared(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0])).abs() < 1e-12);
    }

    #[test]
    fn trees_learn_a_threshold() {
        let x: Vec<f64> = (0..400).map(|i| i as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|&v| if v > 200.0 { 1.0 } else { 0.0 })
            .collect();
        let features = Features {
            values: x,
            rows: 400,
            columns: 1,
        };
        let trees = Trees::fit(Task::Binary, &features, &y, 1).unwrap_or_else(|e| panic!("{e}"));
        let labels: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
        assert!(roc_auc(&trees.predict(&features), &labels) > 0.99);
    }
}
