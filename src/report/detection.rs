//! Detection: how well gradient-boosted trees tell synthetic rows from real ones.
//!
//! A seeded sample of each table (50,000 rows by default) is labelled real or synthetic and
//! split into three stratified folds; trees trained on two folds score the third. The AUC is
//! the mean over folds, and the score folds it as SDMetrics does: 1 − (2·max(AUC, 0.5) − 1),
//! averaged over folds, so 1 means indistinguishable and 0 means always told apart.

use serde::Serialize;

use super::learn::{Features, Task, Trees, roc_auc};
use super::prepare::{Side, Tables, sample_rows};
use crate::error::Result;
use crate::rng::{Purpose, substream};

/// Cross-validation folds.
pub const FOLDS: usize = 3;

/// The detection result.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// Mean ROC AUC over folds; 0.5 is ideal.
    pub auc: f64,
    /// 1 − (2·max(AUC, 0.5) − 1), averaged over folds; 1 is ideal.
    pub score: f64,
    /// AUC of each fold.
    pub fold_aucs: Vec<f64>,
    /// Rows drawn from each table.
    pub rows: usize,
}

/// Trains and cross-validates the real-against-synthetic classifier on up to `rows` rows of
/// each table.
pub fn detection(tables: &Tables, rows: usize, seed: u64) -> Result<Detection> {
    let mut rng = substream(seed, Purpose::Split, 201);
    let real_rows = sample_rows(tables.rows(Side::Real), rows, &mut rng);
    let synthetic_rows = sample_rows(tables.rows(Side::Synthetic), rows, &mut rng);
    let size = real_rows.len().min(synthetic_rows.len());
    let real_rows = &real_rows[..size];
    let synthetic_rows = &synthetic_rows[..size];
    let columns: Vec<_> = tables.columns.iter().collect();

    // Stratified folds: row i of each class goes to fold i mod FOLDS, in a shuffled order.
    let shuffled = |n: usize, rng: &mut crate::rng::Stream| {
        let mut order: Vec<usize> = (0..n).collect();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), rng);
        let mut fold = vec![0usize; n];
        for (position, &row) in order.iter().enumerate() {
            fold[row] = position % FOLDS;
        }
        fold
    };
    let real_fold = shuffled(size, &mut rng);
    let synthetic_fold = shuffled(size, &mut rng);

    let mut fold_aucs = Vec::with_capacity(FOLDS);
    let mut scores = Vec::with_capacity(FOLDS);
    for fold in 0..FOLDS {
        let pick = |folds: &[usize], rows: &[usize], held: bool| -> Vec<usize> {
            rows.iter()
                .zip(folds)
                .filter(|&(_, &f)| (f == fold) == held)
                .map(|(&row, _)| row)
                .collect()
        };
        let train_real = Features::of(&columns, Side::Real, &pick(&real_fold, real_rows, false));
        let train_synthetic = Features::of(
            &columns,
            Side::Synthetic,
            &pick(&synthetic_fold, synthetic_rows, false),
        );
        let test_real = Features::of(&columns, Side::Real, &pick(&real_fold, real_rows, true));
        let test_synthetic = Features::of(
            &columns,
            Side::Synthetic,
            &pick(&synthetic_fold, synthetic_rows, true),
        );
        let train = train_real.stack(&train_synthetic);
        let labels: Vec<f64> = (0..train.rows())
            .map(|i| if i < train_real.rows() { 0.0 } else { 1.0 })
            .collect();
        let trees = Trees::fit(Task::Binary, &train, &labels, seed ^ fold as u64)?;
        let test = test_real.stack(&test_synthetic);
        let truth: Vec<bool> = (0..test.rows()).map(|i| i >= test_real.rows()).collect();
        let auc = roc_auc(&trees.predict(&test), &truth);
        fold_aucs.push(auc);
        scores.push(1.0 - (2.0 * auc.max(0.5) - 1.0));
    }
    Ok(Detection {
        auc: fold_aucs.iter().sum::<f64>() / FOLDS as f64,
        score: scores.iter().sum::<f64>() / FOLDS as f64,
        fold_aucs,
        rows: size,
    })
}
