//! The generators and discriminators of the image presets.
//!
//! Images travel as `[n, height·width·channels]` rows of pixels in [-1, 1], channels last.
//! Inside the convolutional networks activations are NHWC matrices `[n·h·w, c]`, so every
//! convolution is one matrix product ([`crate::gan::conv`]) and batch normalisation is the same
//! fused op as in the tabular generator.
//!
//! Labels (for conditional presets) are one-hot rows `[n, classes]`: the generator reads them
//! beside its noise, the discriminator as extra constant input planes.
//!
//! A discriminator without batch normalisation is piecewise linear in its input, with
//! LeakyReLU gates that are constant almost everywhere, so its input gradient has a closed form
//! as a chain of forward ops (the transposes of its layers): [`Discriminator::input_gradient`].
//! The WGAN-GP penalty uses it, which keeps the penalty's weight gradient first-order, as in the
//! tabular critic.

use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gan::conv::{Geometry, col2im, conv_transpose2d, conv2d};
use crate::gan::fused::LinearGrads;
use crate::gan::nn::{BatchNorm, Linear, Params};
use crate::rng::Stream;

/// LeakyReLU slope of every discriminator.
pub const SLOPE: f64 = 0.2;

/// Height, width and channels of the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Rows of pixels.
    pub height: usize,
    /// Columns of pixels.
    pub width: usize,
    /// 1 for grayscale, 3 for RGB.
    pub channels: usize,
}

impl Shape {
    /// Values per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// The two network families of the presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Fully connected layers (Goodfellow et al. 2014).
    Dense,
    /// DCGAN's strided convolutions (Radford et al. 2015), sized for images whose sides are
    /// multiples of 4.
    Convolutional,
}

/// Everything that fixes the networks' shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Network family.
    pub family: Family,
    /// The images.
    pub shape: Shape,
    /// Classes fed to both networks; 0 for an unconditional model.
    pub classes: usize,
    /// Length of the noise vector.
    pub noise_dim: usize,
    /// Width of the networks (hidden units of the first dense layer, or channels of the
    /// first convolution).
    pub width: usize,
    /// Batch normalisation in the discriminator (never with a gradient penalty).
    pub discriminator_batch_norm: bool,
    /// Spectral normalisation of the discriminator's weights.
    pub spectral_norm: bool,
}

/// A weight matrix, optionally spectrally normalised by one power iteration per use
/// (Miyato et al. 2018). The power-iteration vector is kept as a parameter without gradient,
/// so it is saved with the weights and training stays reproducible.
#[derive(Debug)]
struct Weight {
    value: Var,
    power: Option<Var>,
}

impl Weight {
    fn tensor(&self) -> Result<Tensor> {
        let Some(power) = &self.power else {
            return Ok(self.value.as_tensor().clone());
        };
        let weight = self.value.as_tensor();
        let detached = weight.detach();
        let unit = |v: Tensor| -> Result<Tensor> {
            Ok(v.broadcast_div(&(v.sqr()?.sum_all()? + 1e-12)?.sqrt()?)?)
        };
        // u: [out], v = Wᵀu / |Wᵀu|, u' = W v / |W v|, σ = u'ᵀ W v.
        let u = power.as_tensor().detach().unsqueeze(0)?;
        let v = unit(u.matmul(&detached)?)?;
        let u = unit(v.matmul(&detached.t()?)?)?;
        power.set(&u.squeeze(0)?)?;
        let sigma = u.matmul(&weight.matmul(&v.t()?)?)?.squeeze(0)?.squeeze(0)?;
        Ok(weight.broadcast_div(&sigma)?)
    }
}

fn uniform(rng: &mut Stream, count: usize, bound: f32) -> Vec<f32> {
    (0..count)
        .map(|_| rng.random_range(-bound..bound))
        .collect()
}

struct Builder<'a> {
    params: &'a mut Params,
    rng: &'a mut Stream,
    device: &'a Device,
    spectral_norm: bool,
}

impl Builder<'_> {
    /// A `[outputs, inputs]` weight and `[outputs]` bias, uniform in ±1/√inputs as PyTorch
    /// initialises them.
    fn weight(&mut self, name: &str, outputs: usize, inputs: usize) -> Result<(Weight, Var)> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let value = self.params.add(
            format!("{name}.weight"),
            uniform(self.rng, outputs * inputs, bound),
            &[outputs, inputs],
            self.device,
            DType::F32,
        )?;
        let bias = self.params.add(
            format!("{name}.bias"),
            uniform(self.rng, outputs, bound),
            &[outputs],
            self.device,
            DType::F32,
        )?;
        let power = if self.spectral_norm {
            let start: Vec<f32> = (0..outputs)
                .map(|_| self.rng.random_range(-1.0f32..1.0))
                .collect();
            Some(self.params.add(
                format!("{name}.power"),
                start,
                &[outputs],
                self.device,
                DType::F32,
            )?)
        } else {
            None
        };
        Ok((Weight { value, power }, bias))
    }
}

/// One-hot label planes `[n·h·w, classes]` for NHWC images.
fn label_planes(labels: &Tensor, pixels: usize) -> Result<Tensor> {
    let (n, classes) = labels.dims2()?;
    Ok(labels
        .unsqueeze(1)?
        .broadcast_as((n, pixels, classes))?
        .reshape((n * pixels, classes))?)
}

fn leaky(xs: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::leaky_relu(xs, SLOPE)?)
}

/// The gate of a LeakyReLU at `pre`: 1 where it is non-negative, the slope elsewhere.
fn gate(pre: &Tensor) -> Result<Tensor> {
    let positive = pre.detach().ge(0.0)?.to_dtype(DType::F32)?;
    Ok(((positive * (1.0 - SLOPE))? + SLOPE)?)
}

/// The generator.
#[derive(Debug)]
pub struct Generator {
    config: NetConfig,
    /// Dense: four hidden layers (the last three batch-normalised) then the output layer.
    /// Convolutional: the projection to height/4 × width/4 features.
    dense: Vec<Linear>,
    norms: Vec<BatchNorm>,
    /// Convolutional: the two transposed convolutions, weight `[in, k·k·out]`.
    deconvs: Vec<(Var, Var, Geometry)>,
    /// The generator's parameters.
    pub params: Params,
}

/// Kernel, stride and padding of every strided (de)convolution: each halves (doubles) the
/// image side.
const KERNEL: usize = 4;

impl Generator {
    /// Creates a generator with weights drawn from `rng`.
    pub fn new(config: &NetConfig, rng: &mut Stream, device: &Device) -> Result<Generator> {
        let mut params = Params::default();
        let input = config.noise_dim + config.classes;
        let (mut dense, mut norms, mut deconvs) = (Vec::new(), Vec::new(), Vec::new());
        let shape = config.shape;
        match config.family {
            Family::Dense => {
                // Every hidden layer after the first is batch-normalised before its
                // activation, which keeps the fully connected generator from collapsing.
                let widths = [
                    config.width,
                    config.width * 2,
                    config.width * 4,
                    config.width * 8,
                ];
                let mut from = input;
                for (index, &to) in widths.iter().enumerate() {
                    dense.push(Linear::new(
                        &mut params,
                        &format!("dense.{index}"),
                        from,
                        to,
                        rng,
                        device,
                        DType::F32,
                    )?);
                    if index > 0 {
                        norms.push(BatchNorm::new(
                            &mut params,
                            &format!("dense.{index}.norm"),
                            to,
                            device,
                            DType::F32,
                        )?);
                    }
                    from = to;
                }
                dense.push(Linear::new(
                    &mut params,
                    "output",
                    from,
                    shape.pixels(),
                    rng,
                    device,
                    DType::F32,
                )?);
            }
            Family::Convolutional => {
                check_sides(shape)?;
                let (h4, w4) = (shape.height / 4, shape.width / 4);
                let wide = config.width * 2;
                dense.push(Linear::new(
                    &mut params,
                    "project",
                    input,
                    h4 * w4 * wide,
                    rng,
                    device,
                    DType::F32,
                )?);
                norms.push(BatchNorm::new(
                    &mut params,
                    "project.norm",
                    wide,
                    device,
                    DType::F32,
                )?);
                let stages = [
                    (wide, config.width, shape.height / 2, shape.width / 2),
                    (config.width, shape.channels, shape.height, shape.width),
                ];
                for (index, &(from, to, height, width)) in stages.iter().enumerate() {
                    let geometry = Geometry {
                        batch: 0,
                        height,
                        width,
                        channels: to,
                        kernel: KERNEL,
                        stride: 2,
                        padding: 1,
                    };
                    let bound = 1.0 / ((from * KERNEL * KERNEL) as f32).sqrt();
                    let weight = params.add(
                        format!("deconv.{index}.weight"),
                        uniform(rng, from * geometry.patch(), bound),
                        &[from, geometry.patch()],
                        device,
                        DType::F32,
                    )?;
                    let bias = params.add(
                        format!("deconv.{index}.bias"),
                        uniform(rng, to, bound),
                        &[to],
                        device,
                        DType::F32,
                    )?;
                    deconvs.push((weight, bias, geometry));
                    if index == 0 {
                        norms.push(BatchNorm::new(
                            &mut params,
                            "deconv.0.norm",
                            to,
                            device,
                            DType::F32,
                        )?);
                    }
                }
            }
        }
        Ok(Generator {
            config: config.clone(),
            dense,
            norms,
            deconvs,
            params,
        })
    }

    /// Images from noise and (for conditional models) one-hot labels.
    ///
    /// # Shapes
    /// `noise: [n, noise_dim]`, `labels: [n, classes]` → `[n, pixels]` in [-1, 1].
    pub fn forward(&self, noise: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let n = noise.dim(0)?;
        let input = match labels {
            Some(labels) if self.config.classes > 0 => Tensor::cat(&[noise, labels], 1)?,
            _ => noise.clone(),
        };
        let shape = self.config.shape;
        match self.config.family {
            Family::Dense => {
                let mut xs = input;
                let last = self.dense.len() - 1;
                for (index, layer) in self.dense.iter().enumerate() {
                    xs = layer.forward(
                        &xs,
                        if index == 0 {
                            LinearGrads::Weights
                        } else {
                            LinearGrads::All
                        },
                    )?;
                    xs = if index == last {
                        xs.tanh()?
                    } else if index == 0 {
                        leaky(&xs)?
                    } else {
                        leaky(&self.norms[index - 1].forward(&xs)?)?
                    };
                }
                Ok(xs)
            }
            Family::Convolutional => {
                let (h4, w4) = (shape.height / 4, shape.width / 4);
                let wide = self.config.width * 2;
                let projected = self.dense[0].forward(&input, LinearGrads::Weights)?;
                let mut xs = projected.reshape((n * h4 * w4, wide))?;
                xs = self.norms[0].forward(&xs)?.relu()?;
                for (index, (weight, bias, geometry)) in self.deconvs.iter().enumerate() {
                    let geometry = Geometry {
                        batch: n,
                        ..*geometry
                    };
                    xs = conv_transpose2d(&xs, weight.as_tensor(), bias.as_tensor(), geometry)?;
                    xs = if index == 0 {
                        self.norms[1].forward(&xs)?.relu()?
                    } else {
                        xs.tanh()?
                    };
                }
                Ok(xs.reshape((n, shape.pixels()))?)
            }
        }
    }
}

fn check_sides(shape: Shape) -> Result<()> {
    if !shape.height.is_multiple_of(4)
        || !shape.width.is_multiple_of(4)
        || shape.height < 8
        || shape.width < 8
    {
        return Err(Error::Flag {
            flag: "--preset".into(),
            reason: format!(
                "convolutional presets need image sides that are multiples of 4 (at least 8); these images are {}×{}",
                shape.height, shape.width
            ),
        });
    }
    Ok(())
}

/// A convolution layer of the discriminator.
#[derive(Debug)]
struct ConvLayer {
    weight: Weight,
    bias: Var,
    geometry: Geometry,
    norm: Option<BatchNorm>,
}

/// The discriminator (or critic): scores images, and returns its last hidden features for
/// feature matching.
#[derive(Debug)]
pub struct Discriminator {
    config: NetConfig,
    dense: Vec<(Weight, Var)>,
    convs: Vec<ConvLayer>,
    /// The discriminator's parameters.
    pub params: Params,
}

/// What a discriminator pass returns.
pub struct Scored {
    /// One score per image, `[n, 1]`.
    pub scores: Tensor,
    /// The last hidden layer, `[n, features]`.
    pub features: Tensor,
    /// Pre-activations of each LeakyReLU, for the closed-form input gradient.
    pre: Vec<Tensor>,
    /// The weight matrices the pass used (after spectral normalisation): convolutions first.
    weights: Vec<Tensor>,
}

impl Discriminator {
    /// Creates a discriminator with weights drawn from `rng`.
    pub fn new(config: &NetConfig, rng: &mut Stream, device: &Device) -> Result<Discriminator> {
        let mut params = Params::default();
        let shape = config.shape;
        let mut builder = Builder {
            params: &mut params,
            rng,
            device,
            spectral_norm: config.spectral_norm,
        };
        let (mut dense, mut convs) = (Vec::new(), Vec::new());
        match config.family {
            Family::Dense => {
                let widths = [config.width * 4, config.width * 2];
                let mut from = shape.pixels() + config.classes;
                for (index, &to) in widths.iter().enumerate() {
                    dense.push(builder.weight(&format!("dense.{index}"), to, from)?);
                    from = to;
                }
                dense.push(builder.weight("output", 1, from)?);
            }
            Family::Convolutional => {
                check_sides(shape)?;
                let stages = [
                    (
                        shape.channels + config.classes,
                        config.width,
                        shape.height,
                        shape.width,
                    ),
                    (
                        config.width,
                        config.width * 2,
                        shape.height / 2,
                        shape.width / 2,
                    ),
                ];
                for (index, &(from, to, height, width)) in stages.iter().enumerate() {
                    let geometry = Geometry {
                        batch: 0,
                        height,
                        width,
                        channels: from,
                        kernel: KERNEL,
                        stride: 2,
                        padding: 1,
                    };
                    let (weight, bias) =
                        builder.weight(&format!("conv.{index}"), to, geometry.patch())?;
                    let norm = if index == 1 && config.discriminator_batch_norm {
                        Some(BatchNorm::new(
                            builder.params,
                            &format!("conv.{index}.norm"),
                            to,
                            device,
                            DType::F32,
                        )?)
                    } else {
                        None
                    };
                    convs.push(ConvLayer {
                        weight,
                        bias,
                        geometry,
                        norm,
                    });
                }
                let features = (shape.height / 4) * (shape.width / 4) * config.width * 2;
                dense.push(builder.weight("output", 1, features)?);
            }
        }
        Ok(Discriminator {
            config: config.clone(),
            dense,
            convs,
            params,
        })
    }

    /// Scores images.
    ///
    /// # Shapes
    /// `images: [n, pixels]`, `labels: [n, classes]` → scores `[n, 1]`.
    pub fn forward(&self, images: &Tensor, labels: Option<&Tensor>) -> Result<Scored> {
        let n = images.dim(0)?;
        let shape = self.config.shape;
        let mut pre = Vec::new();
        let weights = self.weights()?;
        match self.config.family {
            Family::Dense => {
                let mut xs = match labels {
                    Some(labels) if self.config.classes > 0 => Tensor::cat(&[images, labels], 1)?,
                    _ => images.clone(),
                };
                let last = self.dense.len() - 1;
                let mut features = xs.clone();
                for (index, (_, bias)) in self.dense.iter().enumerate() {
                    let a = crate::gan::fused::linear(
                        &xs,
                        &weights[index],
                        bias.as_tensor(),
                        LinearGrads::All,
                    )?;
                    if index == last {
                        return Ok(Scored {
                            scores: a,
                            features,
                            pre,
                            weights,
                        });
                    }
                    xs = leaky(&a)?;
                    pre.push(a);
                    features = xs.clone();
                }
                Err(Error::Tensor(candle_core::Error::Msg(
                    "discriminator without layers".into(),
                )))
            }
            Family::Convolutional => {
                let pixels = shape.height * shape.width;
                let mut xs = images.reshape((n * pixels, shape.channels))?;
                if let Some(labels) = labels.filter(|_| self.config.classes > 0) {
                    xs = Tensor::cat(&[&xs, &label_planes(labels, pixels)?], 1)?;
                }
                for (index, layer) in self.convs.iter().enumerate() {
                    let geometry = Geometry {
                        batch: n,
                        ..layer.geometry
                    };
                    let mut a = conv2d(&xs, &weights[index], layer.bias.as_tensor(), geometry)?;
                    if let Some(norm) = &layer.norm {
                        a = norm.forward(&a)?;
                    }
                    xs = leaky(&a)?;
                    pre.push(a);
                }
                let features = xs.reshape((n, ()))?;
                let bias = &self.dense[0].1;
                let output = &weights[self.convs.len()];
                let scores = crate::gan::fused::linear(
                    &features,
                    output,
                    bias.as_tensor(),
                    LinearGrads::All,
                )?;
                Ok(Scored {
                    scores,
                    features,
                    pre,
                    weights,
                })
            }
        }
    }

    /// The gradient of each image's score with respect to its pixels, as forward ops (see the
    /// module documentation), with the weights the pass used; only for discriminators without
    /// batch normalisation, whose score is piecewise linear in each image alone.
    ///
    /// # Shapes
    /// `scored` from `forward(images)` with `images: [n, pixels]` → `[n, pixels]`.
    pub fn input_gradient(&self, scored: &Scored) -> Result<Tensor> {
        if self.convs.iter().any(|layer| layer.norm.is_some()) {
            return Err(Error::Tensor(candle_core::Error::Msg(
                "the closed-form input gradient needs a discriminator without batch normalisation"
                    .into(),
            )));
        }
        let weights = &scored.weights;
        let n = scored.scores.dim(0)?;
        let shape = self.config.shape;
        match self.config.family {
            Family::Dense => {
                // g = w_out; then back through each hidden layer: g = (g ⊙ gate) W.
                let last = weights.len() - 1;
                let mut g = weights[last]
                    .broadcast_as((n, weights[last].dim(1)?))?
                    .contiguous()?;
                for index in (0..last).rev() {
                    g = (g * gate(&scored.pre[index])?)?.matmul(&weights[index])?;
                }
                Ok(g.narrow(1, 0, shape.pixels())?)
            }
            Family::Convolutional => {
                let features = weights[weights.len() - 1].dim(1)?;
                let out = weights[weights.len() - 1]
                    .broadcast_as((n, features))?
                    .contiguous()?;
                let last_channels = self.convs[self.convs.len() - 1].weight.value.dim(0)?;
                let mut g = out.reshape((features / last_channels * n, last_channels))?;
                for (index, layer) in self.convs.iter().enumerate().rev() {
                    let geometry = Geometry {
                        batch: n,
                        ..layer.geometry
                    };
                    g = (g * gate(&scored.pre[index])?)?;
                    g = col2im(&g.matmul(&weights[index])?, geometry)?;
                }
                let pixels = shape.height * shape.width;
                let g = g.reshape((n, pixels, ()))?.narrow(2, 0, shape.channels)?;
                Ok(g.reshape((n, shape.pixels()))?)
            }
        }
    }

    /// The effective weight matrices, convolutions first, then the dense layers; with spectral
    /// normalisation, each call runs one power iteration.
    fn weights(&self) -> Result<Vec<Tensor>> {
        let mut weights = Vec::new();
        for layer in &self.convs {
            weights.push(layer.weight.tensor()?);
        }
        for (weight, _) in &self.dense {
            weights.push(weight.tensor()?);
        }
        Ok(weights)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;
    use crate::gan::loss::gradient_penalty;
    use crate::rng::{Purpose, stream};

    fn config(family: Family, classes: usize) -> NetConfig {
        NetConfig {
            family,
            shape: Shape {
                height: 8,
                width: 8,
                channels: 1,
            },
            classes,
            noise_dim: 5,
            width: 4,
            discriminator_batch_norm: false,
            spectral_norm: false,
        }
    }

    fn images(n: usize, pixels: usize, seed: u64) -> Tensor {
        let mut rng = stream(seed, Purpose::Noise);
        let values: Vec<f32> = (0..n * pixels)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Tensor::from_vec(values, (n, pixels), &Device::Cpu).unwrap()
    }

    fn labels(n: usize, classes: usize) -> Option<Tensor> {
        (classes > 0).then(|| {
            let values: Vec<f32> = (0..n * classes)
                .map(|i| {
                    if i % classes == (i / classes) % classes {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            Tensor::from_vec(values, (n, classes), &Device::Cpu).unwrap()
        })
    }

    /// The closed-form input gradient equals the one candle's backward computes.
    #[test]
    fn input_gradient_matches_autograd() {
        for (family, classes) in [
            (Family::Dense, 0),
            (Family::Dense, 3),
            (Family::Convolutional, 0),
            (Family::Convolutional, 3),
        ] {
            let config = config(family, classes);
            let critic =
                Discriminator::new(&config, &mut stream(3, Purpose::Init), &Device::Cpu).unwrap();
            let x = Var::from_tensor(&images(6, 64, 1)).unwrap();
            let labels = labels(6, classes);
            let scored = critic.forward(x.as_tensor(), labels.as_ref()).unwrap();
            let closed = critic.input_gradient(&scored).unwrap();
            let grads = scored.scores.sum_all().unwrap().backward().unwrap();
            let autograd = grads.get(x.as_tensor()).unwrap();
            let error = (closed - autograd)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(error < 1e-5, "{family:?} with {classes} classes: {error}");
        }
    }

    /// The penalty's gradient with respect to the critic's weights, through the closed-form
    /// input gradient, matches central finite differences.
    #[test]
    fn penalty_weight_gradient_matches_finite_differences() {
        let config = config(Family::Convolutional, 0);
        let critic =
            Discriminator::new(&config, &mut stream(4, Purpose::Init), &Device::Cpu).unwrap();
        let x = images(4, 64, 2);
        // The penalty and the pattern of LeakyReLU gates it was computed under; central
        // differences are only meaningful where no gate flips within the step.
        let penalty = |critic: &Discriminator| -> (Tensor, Vec<u8>) {
            let scored = critic.forward(&x, None).unwrap();
            let gates: Vec<u8> = scored
                .pre
                .iter()
                .flat_map(|pre| {
                    pre.ge(0.0)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<u8>()
                        .unwrap()
                })
                .collect();
            (
                gradient_penalty(&critic.input_gradient(&scored).unwrap(), 10.0).unwrap(),
                gates,
            )
        };
        let (value, gates) = penalty(&critic);
        let grads = value.backward().unwrap();
        let mut checked = 0;
        for (name, var) in critic.params.iter() {
            let analytic = grads
                .get(var.as_tensor())
                .map(|g| g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            let original = var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for index in 0..original.len() {
                let at = |delta: f32| -> (f64, bool) {
                    let mut values = original.clone();
                    values[index] += delta;
                    var.set(&Tensor::from_vec(values, var.dims(), &Device::Cpu).unwrap())
                        .unwrap();
                    let (value, moved) = penalty(&critic);
                    var.set(&Tensor::from_vec(original.clone(), var.dims(), &Device::Cpu).unwrap())
                        .unwrap();
                    (f64::from(value.to_scalar::<f32>().unwrap()), moved == gates)
                };
                let step = 1e-3;
                let ((up, same_up), (down, same_down)) = (at(step), at(-step));
                if !(same_up && same_down) {
                    continue;
                }
                let numeric = (up - down) / (2.0 * f64::from(step));
                let analytic = analytic.as_ref().map_or(0.0, |g| f64::from(g[index]));
                assert!(
                    (numeric - analytic).abs() < 2e-2 * (1.0 + analytic.abs()),
                    "{name}[{index}]: {numeric} against {analytic}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 100, "only {checked} coordinates checked");
    }

    #[test]
    fn networks_have_the_image_shape() {
        for family in [Family::Dense, Family::Convolutional] {
            let config = config(family, 3);
            let mut rng = stream(5, Purpose::Init);
            let generator = Generator::new(&config, &mut rng, &Device::Cpu).unwrap();
            let z = images(7, 5, 3);
            let out = generator.forward(&z, labels(7, 3).as_ref()).unwrap();
            assert_eq!(out.dims(), &[7, 64]);
            let max = out
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(max <= 1.0);
        }
    }
}
