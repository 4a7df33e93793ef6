//! The PacGAN critic and its WGAN-GP gradient penalty (Gulrajani et al. 2017, arXiv 1704.00028).
//!
//! The critic is an MLP with LeakyReLU and dropout that scores `pac` rows at once (PacGAN,
//! arXiv 1712.04086): a batch of `n` rows is reshaped to `n / pac` samples of `pac` rows each.
//!
//! The penalty needs the gradient of the critic's score with respect to its input, and then
//! the gradient of a function of that with respect to the weights: a second-order gradient.
//! candle detaches gradients inside backward unless `CANDLE_GRAD_DO_NOT_DETACH` is set before
//! the thread's first backward pass, and a penalty computed through a detached backward is
//! silently wrong. This module does not rely on that switch: for this critic the input
//! gradient has a closed form. Every LeakyReLU is `a ⊙ g` with a gate `g` (1 or the negative
//! slope, times the dropout mask) that is constant almost everywhere, so
//! `∂y/∂x = ((w_out ⊙ g_L) W_L ⊙ g_{L-1}) … W_1`, a chain of ordinary forward ops whose
//! gradient with respect to the weights is first-order. Tests check both the input gradient
//! and the penalty's weight gradient against central finite differences.

use candle_core::{DType, Device, Tensor};

use crate::error::Result;
use crate::gan::fused::LinearGrads;
use crate::gan::loss;
use crate::gan::nn::{Linear, Params};
use crate::rng::{Stream, fill_uniform};

/// Shape and regularisation of a critic.
#[derive(Debug, Clone, PartialEq)]
pub struct CriticConfig {
    /// Width of one input row.
    pub input_dim: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Rows scored together.
    pub pac: usize,
    /// LeakyReLU negative slope.
    pub slope: f64,
    /// Dropout probability after each hidden layer.
    pub dropout: f64,
}

/// The critic network.
#[derive(Debug)]
pub struct Critic {
    config: CriticConfig,
    hidden: Vec<Linear>,
    output: Linear,
    /// The critic's parameters.
    pub params: Params,
    dtype: DType,
    device: Device,
}

impl Critic {
    /// Creates a critic with weights drawn from `rng`.
    pub fn new(
        config: CriticConfig,
        rng: &mut Stream,
        device: &Device,
        dtype: DType,
    ) -> Result<Critic> {
        let mut params = Params::default();
        let mut width = config.input_dim * config.pac;
        let mut hidden = Vec::with_capacity(config.hidden.len());
        for (index, &next) in config.hidden.iter().enumerate() {
            hidden.push(Linear::new(
                &mut params,
                &format!("hidden.{index}"),
                width,
                next,
                rng,
                device,
                dtype,
            )?);
            width = next;
        }
        let output = Linear::new(&mut params, "output", width, 1, rng, device, dtype)?;
        Ok(Critic {
            config,
            hidden,
            output,
            params,
            dtype,
            device: device.clone(),
        })
    }

    /// The critic's shape and regularisation.
    pub fn config(&self) -> &CriticConfig {
        &self.config
    }

    /// The hidden layers and the output layer.
    pub fn layers(&self) -> (&[Linear], &Linear) {
        (&self.hidden, &self.output)
    }

    /// Reshapes `n` rows into `n / pac` samples.
    ///
    /// # Shapes
    /// `xs: [n, input_dim]` → `[n / pac, pac · input_dim]`.
    pub fn pack(&self, xs: &Tensor) -> Result<Tensor> {
        let (rows, width) = xs.dims2()?;
        Ok(xs.reshape((rows / self.config.pac, width * self.config.pac))?)
    }

    /// Draws one dropout mask per hidden layer for `samples` packed samples, scaled by
    /// 1 / (1 − p) so that the expected activation is unchanged.
    pub fn dropout_masks<R: rand::Rng>(&self, samples: usize, rng: &mut R) -> Result<Vec<Tensor>> {
        let keep = 1.0 - self.config.dropout;
        self.config
            .hidden
            .iter()
            .map(|&width| {
                let mut values = vec![0.0f32; samples * width];
                fill_uniform(rng, &mut values);
                for value in &mut values {
                    *value = if f64::from(*value) < keep {
                        (1.0 / keep) as f32
                    } else {
                        0.0
                    };
                }
                Ok(Tensor::from_vec(values, (samples, width), &self.device)?
                    .to_dtype(self.dtype)?)
            })
            .collect()
    }

    fn gate(&self, pre_activation: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let slope = self.config.slope;
        let positive = pre_activation.detach().ge(0.0)?.to_dtype(self.dtype)?;
        Ok(positive.affine(1.0 - slope, slope)?.mul(mask)?)
    }

    /// Scores packed samples. With `detached`, the weights are constants and only the input's
    /// gradient is built (the generator's step); otherwise the input is a constant and only
    /// the weights' gradients are built (the critic's step).
    ///
    /// # Shapes
    /// `packed: [m, pac · input_dim]`, one mask `[m, hidden_i]` per layer → `[m, 1]`.
    pub fn forward(&self, packed: &Tensor, masks: &[Tensor], detached: bool) -> Result<Tensor> {
        let mut hidden = packed.clone();
        let mut grads = if detached {
            LinearGrads::Input
        } else {
            LinearGrads::Weights
        };
        for (layer, mask) in self.hidden.iter().zip(masks) {
            let pre = layer.forward(&hidden, grads)?;
            grads = if detached {
                LinearGrads::Input
            } else {
                LinearGrads::All
            };
            hidden = pre.mul(&self.gate(&pre, mask)?)?;
        }
        self.output.forward(&hidden, grads)
    }

    /// The gradient of the score with respect to the packed input, as a differentiable
    /// function of the weights.
    ///
    /// # Shapes
    /// `packed: [m, pac · input_dim]` → `[m, pac · input_dim]`.
    pub fn input_gradient(&self, packed: &Tensor, masks: &[Tensor]) -> Result<Tensor> {
        let mut gates = Vec::with_capacity(self.hidden.len());
        let mut hidden = packed.detach();
        for (layer, mask) in self.hidden.iter().zip(masks) {
            let pre = layer.forward_detached(&hidden)?;
            let gate = self.gate(&pre, mask)?;
            hidden = pre.mul(&gate)?;
            gates.push(gate);
        }
        let mut gradient = self
            .output
            .weight
            .as_tensor()
            .broadcast_mul(&gates[gates.len() - 1])?;
        for index in (0..self.hidden.len()).rev() {
            gradient = gradient.matmul(self.hidden[index].weight.as_tensor())?;
            if index > 0 {
                gradient = gradient.mul(&gates[index - 1])?;
            }
        }
        Ok(gradient)
    }

    /// The WGAN-GP penalty `weight · mean((‖∇D(x̂)‖ − 1)²)` on interpolates
    /// `x̂ = α real + (1 − α) fake`, with one α per packed sample.
    ///
    /// # Shapes
    /// `real, fake: [n, input_dim]` → scalar.
    pub fn penalty(
        &self,
        real: &Tensor,
        fake: &Tensor,
        weight: f64,
        alpha_rng: &mut Stream,
        dropout_rng: &mut impl rand::Rng,
    ) -> Result<Tensor> {
        let samples = real.dim(0)? / self.config.pac;
        let interpolates = loss::interpolates(real, fake, self.config.pac, alpha_rng)?;
        let packed = self.pack(&interpolates)?;
        let masks = self.dropout_masks(samples, dropout_rng)?;
        let gradient = self.input_gradient(&packed, &masks)?;
        loss::gradient_penalty(&gradient, weight)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use rand::Rng;

    use super::*;
    use crate::rng::{Purpose, stream};

    fn critic() -> Critic {
        let config = CriticConfig {
            input_dim: 3,
            hidden: vec![5, 4],
            pac: 2,
            slope: 0.2,
            dropout: 0.5,
        };
        Critic::new(
            config,
            &mut stream(11, Purpose::Init),
            &Device::Cpu,
            DType::F64,
        )
        .unwrap()
    }

    fn rows(seed: u64, count: usize) -> Tensor {
        let mut rng = stream(seed, Purpose::Noise);
        let values: Vec<f64> = (0..count * 3)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Tensor::from_vec(values, (count, 3), &Device::Cpu).unwrap()
    }

    fn scalar(tensor: &Tensor) -> f64 {
        tensor
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    #[test]
    fn input_gradient_matches_finite_differences() {
        let critic = critic();
        let packed = critic.pack(&rows(1, 8)).unwrap();
        let masks = critic
            .dropout_masks(4, &mut stream(2, Purpose::Dropout))
            .unwrap();
        let analytic = critic
            .input_gradient(&packed, &masks)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let base = packed.to_vec2::<f64>().unwrap();
        let step = 1e-6;
        for sample in 0..4 {
            for feature in 0..6 {
                let score_at = |delta: f64| {
                    let mut shifted = base.clone();
                    shifted[sample][feature] += delta;
                    let input = Tensor::new(shifted, &Device::Cpu).unwrap();
                    let scores = critic
                        .forward(&input, &masks, true)
                        .unwrap()
                        .to_vec2::<f64>()
                        .unwrap();
                    scores[sample][0]
                };
                let numeric = (score_at(step) - score_at(-step)) / (2.0 * step);
                let exact = analytic[sample][feature];
                assert!(
                    (numeric - exact).abs() < 1e-6,
                    "sample {sample} feature {feature}: {numeric} vs {exact}"
                );
            }
        }
    }

    /// The penalty's gradient with respect to every critic weight, against central finite
    /// differences of the penalty itself (same α and dropout draws each time).
    #[test]
    fn penalty_weight_gradient_matches_finite_differences() {
        let critic = critic();
        let (real, fake) = (rows(3, 8), rows(4, 8));
        let penalty = || {
            critic
                .penalty(
                    &real,
                    &fake,
                    10.0,
                    &mut stream(5, Purpose::Penalty),
                    &mut stream(6, Purpose::Dropout),
                )
                .unwrap()
        };
        let grads = penalty().backward().unwrap();
        let step = 1e-6;
        let mut checked = 0;
        for (name, var) in critic.params.iter() {
            let original = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            let analytic = grads
                .get(var.as_tensor())
                .map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap());
            for index in 0..original.len() {
                let value_at = |delta: f64| {
                    let mut shifted = original.clone();
                    shifted[index] += delta;
                    var.set(&Tensor::from_vec(shifted, var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                    scalar(&penalty())
                };
                let numeric = (value_at(step) - value_at(-step)) / (2.0 * step);
                var.set(&Tensor::from_vec(original.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let exact = analytic.as_ref().map_or(0.0, |g| g[index]);
                assert!(
                    (numeric - exact).abs() < 1e-5 * (1.0 + exact.abs()),
                    "{name}[{index}]: {numeric} vs {exact}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 6 * 5 + 5 + 5 * 4 + 4 + 4 + 1);
    }
}
