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
}

/// What the observer wants after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Train on.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// Trains `model` for up to `epochs` epochs, calling `observe` after each one.
pub fn train(
    model: &mut dyn Adversarial,
    epochs: usize,
    critic_steps: usize,
    mut observe: impl FnMut(&EpochMetrics) -> Result<Control>,
) -> Result<Vec<EpochMetrics>> {
    let mut history = Vec::with_capacity(epochs);
    for epoch in 1..=epochs {
        let steps = model.steps_per_epoch();
        let (mut generator, mut critic, mut penalty) = (0.0, 0.0, 0.0);
        for _ in 0..steps {
            for _ in 0..critic_steps {
                let losses = model.critic_step()?;
                critic += losses.critic;
                penalty += losses.penalty;
            }
            generator += model.generator_step()?;
        }
        let critic_updates = (steps * critic_steps).max(1) as f64;
        let metrics = EpochMetrics {
            epoch,
            generator_loss: generator / steps.max(1) as f64,
            critic_loss: critic / critic_updates,
            penalty: penalty / critic_updates,
        };
        history.push(metrics);
        if observe(&metrics)? == Control::Stop {
            break;
        }
    }
    Ok(history)
}
