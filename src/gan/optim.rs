//! Adam with L2 weight decay, as PyTorch's `torch.optim.Adam(weight_decay=..)` computes it.
//!
//! The decay is added to the gradient before the moment updates (coupled L2), which is what
//! CTGAN trains with; candle-nn's `AdamW` decouples it, a different optimiser.

use candle_core::{Tensor, Var};

use crate::error::Result;
use crate::gan::nn::Params;

/// Adam's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Step size.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub epsilon: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

/// Adam's state over one network's parameters.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    vars: Vec<Var>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    step: u32,
}

impl Adam {
    /// Creates the optimiser for `params`, with zero moments.
    pub fn new(params: &Params, config: AdamConfig) -> Result<Adam> {
        let vars: Vec<Var> = params.iter().map(|(_, var)| var.clone()).collect();
        let first = vars
            .iter()
            .map(|var| var.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let second = first.clone();
        Ok(Adam {
            config,
            vars,
            first,
            second,
            step: 0,
        })
    }

    /// Takes one step along the gradients in `grads`; parameters without a gradient are left
    /// as they are.
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        self.step += 1;
        let AdamConfig {
            learning_rate,
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } = self.config;
        let first_correction = 1.0 - beta1.powi(self.step as i32);
        let second_correction = 1.0 - beta2.powi(self.step as i32);
        let step_size = learning_rate / first_correction;
        for ((var, first), second) in self.vars.iter().zip(&mut self.first).zip(&mut self.second) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let theta = var.as_tensor();
            let grad = if weight_decay > 0.0 {
                (grad + theta.affine(weight_decay, 0.0)?)?
            } else {
                grad.clone()
            };
            *first = ((first.affine(beta1, 0.0)? + grad.affine(1.0 - beta1, 0.0)?)?).detach();
            *second =
                ((second.affine(beta2, 0.0)? + grad.sqr()?.affine(1.0 - beta2, 0.0)?)?).detach();
            let denominator = (second.affine(1.0 / second_correction, 0.0)?.sqrt()? + epsilon)?;
            let update = first.div(&denominator)?.affine(step_size, 0.0)?;
            var.set(&theta.sub(&update)?.detach())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    /// One step on f(x) = x² from x = 1 with PyTorch's Adam(lr=0.1, weight_decay=0.5):
    /// grad = 2 + 0.5 = 2.5, m̂ = 2.5, v̂ = 6.25, x ← 1 − 0.1 · 2.5 / (2.5 + 1e-8).
    #[test]
    fn first_step_matches_pytorch() {
        let device = Device::Cpu;
        let mut params = Params::default();
        let x = params
            .add("x".into(), vec![1.0], &[1], &device, DType::F32)
            .unwrap();
        let config = AdamConfig {
            learning_rate: 0.1,
            beta1: 0.5,
            beta2: 0.9,
            epsilon: 1e-8,
            weight_decay: 0.5,
        };
        let mut adam = Adam::new(&params, config).unwrap();
        let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        let value = x.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((value - 0.9).abs() < 1e-6, "{value}");
    }
}
