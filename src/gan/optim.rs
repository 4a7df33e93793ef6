//! Adam with L2 weight decay, as PyTorch's `torch.optim.Adam(weight_decay=..)` computes it.
//!
//! The decay is added to the gradient before the moment updates (coupled L2), which is what
//! CTGAN trains with; candle-nn's `AdamW` decouples it, a different optimiser.
//!
//! On the CPU the moments live in host vectors and each parameter is updated in one pass,
//! instead of a dozen tensor ops that each allocate a parameter-sized buffer: for the critic's
//! first layer (over a million weights on wide tables) that was a large share of a step. Other
//! devices use the same update as tensor ops.

use candle_core::{Tensor, Var};

use crate::error::Result;
use crate::gan::fused::with_host;
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
    moments: Moments,
    step: u32,
}

/// First and second moments, one entry per parameter.
#[derive(Debug)]
enum Moments {
    Host(Vec<(Vec<f32>, Vec<f32>)>),
    Device(Vec<(Tensor, Tensor)>),
}

impl Adam {
    /// Creates the optimiser for `params`, with zero moments.
    pub fn new(params: &Params, config: AdamConfig) -> Result<Adam> {
        let vars: Vec<Var> = params.iter().map(|(_, var)| var.clone()).collect();
        let moments = if vars.iter().all(|var| var.device().is_cpu()) {
            let zeros = |var: &Var| (vec![0.0; var.elem_count()], vec![0.0; var.elem_count()]);
            Moments::Host(vars.iter().map(zeros).collect())
        } else {
            let zeros = |var: &Var| -> Result<(Tensor, Tensor)> {
                Ok((var.zeros_like()?, var.zeros_like()?))
            };
            Moments::Device(vars.iter().map(zeros).collect::<Result<_>>()?)
        };
        Ok(Adam {
            config,
            vars,
            moments,
            step: 0,
        })
    }

    /// Takes one step along the gradients in `grads`; parameters without a gradient are left
    /// as they are.
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore) -> Result<()> {
        self.step += 1;
        let corrections = corrections(&self.config, self.step);
        for (index, var) in self.vars.iter().enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            match &mut self.moments {
                Moments::Host(moments) => {
                    let (first, second) = &mut moments[index];
                    update_host(var, grad, first, second, &self.config, corrections)?;
                }
                Moments::Device(moments) => {
                    let (first, second) = &mut moments[index];
                    update_device(var, grad, first, second, &self.config, corrections)?;
                }
            }
        }
        Ok(())
    }
}

/// One Adam update of `var` with host-side moments.
fn update_host(
    var: &Var,
    grad: &Tensor,
    first: &mut [f32],
    second: &mut [f32],
    config: &AdamConfig,
    corrections: (f64, f64),
) -> Result<()> {
    let grad = grad.to_dtype(candle_core::DType::F32)?;
    let mut theta = var
        .as_tensor()
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    with_host(&grad, |grad| {
        update_values(&mut theta, grad, first, second, config, corrections)
    })?;
    let updated = Tensor::from_vec(theta, var.shape(), var.device())?.to_dtype(var.dtype())?;
    Ok(var.set(&updated)?)
}

/// Adam's bias corrections for step `step` (from 1): the step size over the first moment's
/// correction, and the second moment's correction.
pub(crate) fn corrections(config: &AdamConfig, step: u32) -> (f64, f64) {
    let first_correction = 1.0 - config.beta1.powi(step as i32);
    let second_correction = 1.0 - config.beta2.powi(step as i32);
    (config.learning_rate / first_correction, second_correction)
}

/// One Adam update of host values `theta` along `grad`, with their moments.
pub(crate) fn update_values(
    theta: &mut [f32],
    grad: &[f32],
    first: &mut [f32],
    second: &mut [f32],
    config: &AdamConfig,
    (step_size, second_correction): (f64, f64),
) {
    let (beta1, beta2) = (config.beta1 as f32, config.beta2 as f32);
    let (decay, epsilon) = (config.weight_decay as f32, config.epsilon as f32);
    let (step_size, second_scale) = (step_size as f32, (1.0 / second_correction) as f32);
    // Square roots and divisions round the same in every vector width, so the wide
    // instructions give the same weights.
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for (((theta, grad), first), second) in theta
                .iter_mut()
                .zip(grad)
                .zip(first.iter_mut())
                .zip(second.iter_mut())
            {
                let grad = grad + decay * *theta;
                *first = beta1 * *first + (1.0 - beta1) * grad;
                *second = beta2 * *second + (1.0 - beta2) * grad * grad;
                *theta -= step_size * *first / ((*second * second_scale).sqrt() + epsilon);
            }
        },
    );
}

/// One Adam update of `var` with moments held as tensors on its device.
fn update_device(
    var: &Var,
    grad: &Tensor,
    first: &mut Tensor,
    second: &mut Tensor,
    config: &AdamConfig,
    (step_size, second_correction): (f64, f64),
) -> Result<()> {
    let theta = var.as_tensor();
    let grad = if config.weight_decay > 0.0 {
        (grad + theta.affine(config.weight_decay, 0.0)?)?
    } else {
        grad.clone()
    };
    *first = ((first.affine(config.beta1, 0.0)? + grad.affine(1.0 - config.beta1, 0.0)?)?).detach();
    *second = ((second.affine(config.beta2, 0.0)?
        + grad.sqr()?.affine(1.0 - config.beta2, 0.0)?)?)
    .detach();
    let denominator = (second.affine(1.0 / second_correction, 0.0)?.sqrt()? + config.epsilon)?;
    let update = first.div(&denominator)?.affine(step_size, 0.0)?;
    Ok(var.set(&theta.sub(&update)?.detach())?)
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

    /// The host update (CPU) and the tensor-op update (other devices) agree over several steps.
    #[test]
    fn host_and_device_updates_agree() {
        let device = Device::Cpu;
        let config = AdamConfig {
            learning_rate: 0.01,
            beta1: 0.5,
            beta2: 0.9,
            epsilon: 1e-8,
            weight_decay: 1e-2,
        };
        let start = vec![0.5f32, -1.5, 2.0, 0.0];
        let host = Var::from_vec(start.clone(), 4, &device).unwrap();
        let other = Var::from_vec(start, 4, &device).unwrap();
        let (mut first_host, mut second_host) = (vec![0.0; 4], vec![0.0; 4]);
        let (mut first, mut second) = (other.zeros_like().unwrap(), other.zeros_like().unwrap());
        for step in 1..=5 {
            let corrections = (0.01 / (1.0 - 0.5f64.powi(step)), 1.0 - 0.9f64.powi(step));
            let grad_of = |var: &Var| {
                let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
                loss.backward()
                    .unwrap()
                    .get(var.as_tensor())
                    .unwrap()
                    .clone()
            };
            update_host(
                &host,
                &grad_of(&host),
                &mut first_host,
                &mut second_host,
                &config,
                corrections,
            )
            .unwrap();
            update_device(
                &other,
                &grad_of(&other),
                &mut first,
                &mut second,
                &config,
                corrections,
            )
            .unwrap();
        }
        let (a, b) = (
            host.as_tensor().to_vec1::<f32>().unwrap(),
            other.as_tensor().to_vec1::<f32>().unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }
}
