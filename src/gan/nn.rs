//! Layers and parameters, seeded.
//!
//! candle's initialisers draw from its CPU generator, which cannot be seeded, so every
//! parameter here is created from host values drawn from a [`Stream`]. Layers keep their
//! parameters as [`Var`]s registered in a [`Params`] list under a stable name, which the
//! optimiser walks and the checkpoint saves.

use std::collections::BTreeMap;

use candle_core::{D, DType, Device, Tensor, Var};
use rand::Rng;

use crate::error::{Error, Result};
use crate::gan::fused::{LinearGrads, batch_norm, linear};
use crate::rng::Stream;

/// The named parameters of one network, in creation order.
#[derive(Debug, Default)]
pub struct Params {
    entries: Vec<(String, Var)>,
}

impl Params {
    /// Registers a parameter under `name` with the given host values.
    pub fn add(
        &mut self,
        name: String,
        values: Vec<f32>,
        shape: &[usize],
        device: &Device,
        dtype: DType,
    ) -> Result<Var> {
        let tensor = Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&tensor)?;
        self.entries.push((name, var.clone()));
        Ok(var)
    }

    /// All parameters with their names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.entries.iter().map(|(name, var)| (name.as_str(), var))
    }

    /// The parameters as named tensors, for saving.
    pub fn tensors(&self, prefix: &str) -> BTreeMap<String, Tensor> {
        self.iter()
            .map(|(name, var)| (format!("{prefix}.{name}"), var.as_tensor().clone()))
            .collect()
    }

    /// Overwrites every parameter with the tensor saved under its name; all must be present
    /// with the same shape.
    pub fn load(
        &self,
        prefix: &str,
        saved: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        for (name, var) in self.iter() {
            let key = format!("{prefix}.{name}");
            let tensor = saved.get(&key).ok_or_else(|| Error::Model {
                path: Default::default(),
                reason: format!("weights have no tensor `{key}`"),
            })?;
            if tensor.dims() != var.dims() {
                return Err(Error::Model {
                    path: Default::default(),
                    reason: format!(
                        "tensor `{key}` has shape {:?}, expected {:?}",
                        tensor.dims(),
                        var.dims()
                    ),
                });
            }
            var.set(&tensor.to_device(var.device())?.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }
}

/// A fully connected layer, `y = x Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Weight, `[out, in]`.
    pub weight: Var,
    /// Bias, `[out]`.
    pub bias: Var,
}

impl Linear {
    /// Creates a layer initialised as PyTorch does: weight and bias uniform in ±1/√in.
    pub fn new(
        params: &mut Params,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut Stream,
        device: &Device,
        dtype: DType,
    ) -> Result<Linear> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let mut draw = |count: usize| -> Vec<f32> {
            (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect()
        };
        let weight_values = draw(inputs * outputs);
        let bias_values = draw(outputs);
        let weight = params.add(
            format!("{name}.weight"),
            weight_values,
            &[outputs, inputs],
            device,
            dtype,
        )?;
        let bias = params.add(
            format!("{name}.bias"),
            bias_values,
            &[outputs],
            device,
            dtype,
        )?;
        Ok(Linear { weight, bias })
    }

    /// # Shapes
    /// `xs: [n, in]` → `[n, out]`, building the gradients `grads` names.
    pub fn forward(&self, xs: &Tensor, grads: LinearGrads) -> Result<Tensor> {
        linear(xs, self.weight.as_tensor(), self.bias.as_tensor(), grads)
    }

    /// The same as [`Self::forward`] with everything treated as a constant: no gradients.
    pub fn forward_detached(&self, xs: &Tensor) -> Result<Tensor> {
        let (weight, bias) = (
            self.weight.as_tensor().detach(),
            self.bias.as_tensor().detach(),
        );
        linear(&xs.detach(), &weight, &bias, LinearGrads::Input)
    }
}

/// Batch normalisation over the batch dimension, always with the statistics of the batch at
/// hand (the generator runs in large batches both in training and in generation).
#[derive(Debug, Clone)]
pub struct BatchNorm {
    /// Scale, `[features]`.
    pub gamma: Var,
    /// Shift, `[features]`.
    pub beta: Var,
}

impl BatchNorm {
    /// Creates a layer with unit scale and zero shift.
    pub fn new(
        params: &mut Params,
        name: &str,
        features: usize,
        device: &Device,
        dtype: DType,
    ) -> Result<BatchNorm> {
        let gamma = params.add(
            format!("{name}.gamma"),
            vec![1.0; features],
            &[features],
            device,
            dtype,
        )?;
        let beta = params.add(
            format!("{name}.beta"),
            vec![0.0; features],
            &[features],
            device,
            dtype,
        )?;
        Ok(BatchNorm { gamma, beta })
    }

    /// # Shapes
    /// `xs: [n, features]` → `[n, features]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        batch_norm(xs, self.gamma.as_tensor(), self.beta.as_tensor())
    }

    /// The same as [`Self::forward`] with the parameters treated as constants.
    pub fn forward_detached(&self, xs: &Tensor) -> Result<Tensor> {
        batch_norm(
            &xs.detach(),
            &self.gamma.as_tensor().detach(),
            &self.beta.as_tensor().detach(),
        )
    }
}

/// Euclidean norm of each row.
///
/// # Shapes
/// `xs: [n, d]` → `[n]`.
pub fn row_norms(xs: &Tensor) -> Result<Tensor> {
    Ok((xs.sqr()?.sum(D::Minus1)? + 1e-12)?.sqrt()?)
}
