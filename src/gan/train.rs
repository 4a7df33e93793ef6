//! The adversarial training loop shared by every GAN in synth.
//!
//! A model supplies its critic and generator steps through [`Adversarial`]; the loop runs
//! `critic_steps` critic updates per generator update, averages the losses of each epoch,
//! reports them to an observer (progress bar, `metrics.jsonl`) and lets the observer stop
//! training early.

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Losses of one training step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepLosses {
    /// Wasserstein critic loss, `mean D(fake) − mean D(real)`, without the penalty.
    pub critic: f64,
    /// The gradient penalty.
    pub penalty: f64,
}

/// A model the loop can train.
pub trait Adversarial {
    /// Updates the critic once.
    fn critic_step(&mut self) -> Result<StepLosses>;
    /// Updates the generator once and returns its loss.
    fn generator_step(&mut self) -> Result<f64>;
    /// Steps in one epoch.
    fn steps_per_epoch(&self) -> usize;
    /// Runs after every epoch, before the observer: sample grids, health checks, scores
    /// written into `metrics`. May end training.
    fn epoch_end(&mut self, _metrics: &mut EpochMetrics) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// Puts the weights the steps trained into the networks' parameters, for a model whose
    /// steps train copies of them. Runs before anything reads the networks during training,
    /// and after the last epoch.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Mean losses of one epoch, as written to `metrics.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean generator loss.
    pub generator_loss: f64,
    /// Mean critic loss, without the penalty.
    pub critic_loss: f64,
    /// Mean gradient penalty.
    pub penalty: f64,
    /// Quality score of the generator's samples, on the epochs where it was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
}

/// What the observer wants after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Train on.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// How long to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Passes over the data.
    pub epochs: usize,
    /// Critic updates per generator update.
    pub critic_steps: usize,
    /// Stop after this many generator updates in all, even within an epoch (for smoke runs).
    pub max_steps: Option<usize>,
}

/// Trains `model` on `schedule`, calling `observe` after each epoch (a cut-short last epoch
/// included).
pub fn train(
    model: &mut dyn Adversarial,
    schedule: Schedule,
    mut observe: impl FnMut(&EpochMetrics) -> Result<Control>,
) -> Result<Vec<EpochMetrics>> {
    let mut history = Vec::with_capacity(schedule.epochs);
    let mut taken = 0usize;
    for epoch in 1..=schedule.epochs {
        let mut steps = model.steps_per_epoch();
        if let Some(limit) = schedule.max_steps {
            steps = steps.min(limit.saturating_sub(taken));
        }
        if steps == 0 {
            break;
        }
        let (mut generator, mut critic, mut penalty) = (0.0, 0.0, 0.0);
        for _ in 0..steps {
            for _ in 0..schedule.critic_steps {
                let losses = model.critic_step()?;
                critic += losses.critic;
                penalty += losses.penalty;
            }
            generator += model.generator_step()?;
        }
        taken += steps;
        let critic_updates = (steps * schedule.critic_steps).max(1) as f64;
        let mut metrics = EpochMetrics {
            epoch,
            generator_loss: generator / steps as f64,
            critic_loss: critic / critic_updates,
            penalty: penalty / critic_updates,
            quality: None,
        };
        let model_control = model.epoch_end(&mut metrics)?;
        history.push(metrics);
        if observe(&metrics)? == Control::Stop || model_control == Control::Stop {
            break;
        }
    }
    model.sync()?;
    Ok(history)
}
