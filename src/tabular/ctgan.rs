//! CTGAN: a conditional WGAN-GP for mixed-type tables (Xu et al. 2019, arXiv 1907.00503).
//!
//! The generator maps noise and a conditional vector through residual layers
//! (`Linear → BatchNorm → ReLU`, concatenated with their input) to one raw value per encoded
//! position; [`crate::gan::ops::activate`] turns them into rows (tanh scalars, Gumbel-softmax
//! one-hot blocks). The critic is the shared PacGAN critic of [`crate::gan::critic`], scoring
//! encoded rows together with their conditional vectors.
//!
//! # Limitations
//! - Batch normalisation always uses the statistics of the batch at hand, in training and in
//!   generation (as CTGAN samples in training mode); generation runs in large batches, so the
//!   statistics are stable.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::config::GanConfig;
use crate::encode::EncodedTable;
use crate::encode::layout::{Activation, Layout, Span};
use crate::error::Result;
use crate::gan::critic::{Critic, CriticConfig};
use crate::gan::fused::{
    LinearGrads, add_to_rows, batch_norm_relu_in_place, linear_blocks, with_host,
};
use crate::gan::loss::{Objective, critic_loss, generator_loss};
use crate::gan::nn::{BatchNorm, Linear, Params};
use crate::gan::ops::{activate, conditional_loss};
use crate::gan::optim::{Adam, AdamConfig};
use crate::gan::train::{Adversarial, StepLosses};
use crate::rng::{Purpose, Stream, fill_normal, gumbel, stream};
use crate::tabular::cond::{CondBatch, CondSampler};

/// The residual generator.
#[derive(Debug)]
pub struct Generator {
    residuals: Vec<(Linear, BatchNorm)>,
    output: Linear,
    /// The generator's parameters.
    pub params: Params,
}

impl Generator {
    /// Creates a generator from `input_dim` inputs to `output_dim` raw outputs.
    pub fn new(
        input_dim: usize,
        dims: &[usize],
        output_dim: usize,
        rng: &mut Stream,
        device: &Device,
    ) -> Result<Generator> {
        let mut params = Params::default();
        let mut width = input_dim;
        let mut residuals = Vec::with_capacity(dims.len());
        for (index, &next) in dims.iter().enumerate() {
            let name = format!("residual.{index}");
            let linear = Linear::new(
                &mut params,
                &format!("{name}.linear"),
                width,
                next,
                rng,
                device,
                DType::F32,
            )?;
            let norm = BatchNorm::new(
                &mut params,
                &format!("{name}.norm"),
                next,
                device,
                DType::F32,
            )?;
            residuals.push((linear, norm));
            width += next;
        }
        let output = Linear::new(
            &mut params,
            "output",
            width,
            output_dim,
            rng,
            device,
            DType::F32,
        )?;
        Ok(Generator {
            residuals,
            output,
            params,
        })
    }

    /// Raw outputs before activation.
    ///
    /// # Shapes
    /// `xs: [n, noise_dim + cond_dim]` → `[n, data_dim]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut hidden = xs.clone();
        // The first layer reads noise and conditions, constants that need no gradient.
        let mut grads = LinearGrads::Weights;
        for (linear, norm) in &self.residuals {
            let out = norm.forward(&linear.forward(&hidden, grads)?)?.relu()?;
            hidden = Tensor::cat(&[&out, &hidden], 1)?;
            grads = LinearGrads::All;
        }
        self.output.forward(&hidden, grads)
    }

    /// [`Self::forward`] with the parameters as constants, for generation: no graph is kept,
    /// so each layer's activations are freed as soon as the next one is computed.
    pub fn forward_detached(&self, xs: &Tensor) -> Result<Tensor> {
        let mut hidden = xs.detach();
        for (linear, norm) in &self.residuals {
            let out = norm
                .forward_detached(&linear.forward_detached(&hidden)?)?
                .relu()?;
            hidden = Tensor::cat(&[&out, &hidden], 1)?;
        }
        self.output.forward_detached(&hidden)
    }

    /// [`Self::forward_detached`] on host memory, for generation: each residual layer writes
    /// its output into a block of its own, and later layers read the blocks in place of their
    /// concatenation, so a batch costs its matrix products and no copies. `blocks` is reused
    /// from batch to batch.
    ///
    /// # Shapes
    /// `input: [rows, noise_dim + cond_dim]` → `[rows, data_dim]`, row-major.
    pub fn forward_host(
        &self,
        input: &[f32],
        rows: usize,
        blocks: &mut Vec<Vec<f32>>,
    ) -> Result<Vec<f32>> {
        blocks.resize_with(self.residuals.len(), Vec::new);
        for (index, (linear, norm)) in self.residuals.iter().enumerate() {
            let (done, rest) = blocks.split_at_mut(index);
            let out = &mut rest[0];
            // The layer reads [out_{index-1} | … | out_0 | input], newest first.
            let mut reads: Vec<&[f32]> = done.iter().rev().map(Vec::as_slice).collect();
            reads.push(input);
            // Batch normalisation subtracts the batch's mean, which removes the layer's bias
            // exactly, so it is not added.
            let outputs = norm.gamma.elem_count();
            with_host(linear.weight.as_tensor(), |weight| {
                linear_blocks(out, rows, &reads, weight, outputs)
            })?;
            with_host(norm.gamma.as_tensor(), |gamma| {
                with_host(norm.beta.as_tensor(), |beta| {
                    batch_norm_relu_in_place(out, gamma, beta)
                })
            })??;
        }
        let mut reads: Vec<&[f32]> = blocks.iter().rev().map(Vec::as_slice).collect();
        reads.push(input);
        let mut raw = Vec::new();
        with_host(self.output.weight.as_tensor(), |weight| {
            with_host(self.output.bias.as_tensor(), |bias| {
                linear_blocks(&mut raw, rows, &reads, weight, bias.len());
                add_to_rows(&mut raw, bias);
            })
        })??;
        Ok(raw)
    }
}

/// The generator and critic of a tabular model.
#[derive(Debug)]
pub struct Networks {
    /// The generator.
    pub generator: Generator,
    /// The critic.
    pub critic: Critic,
    device: Device,
}

impl Networks {
    /// Creates both networks for `layout`, with weights drawn from `seed`'s init stream.
    pub fn new(
        config: &GanConfig,
        layout: &Layout,
        seed: u64,
        device: &Device,
    ) -> Result<Networks> {
        let mut rng = stream(seed, Purpose::Init);
        let generator = Generator::new(
            config.noise_dim + layout.cond_dim,
            &config.generator_dims,
            layout.data_dim,
            &mut rng,
            device,
        )?;
        let critic_config = CriticConfig {
            input_dim: layout.data_dim + layout.cond_dim,
            hidden: config.critic_dims.clone(),
            pac: config.pac,
            slope: config.leaky_slope,
            dropout: config.dropout,
        };
        let critic = Critic::new(critic_config, &mut rng, device, DType::F32)?;
        Ok(Networks {
            generator,
            critic,
            device: device.clone(),
        })
    }

    /// All weights by name, for saving.
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        let mut tensors = self.generator.params.tensors("generator");
        tensors.extend(self.critic.params.tensors("critic"));
        tensors
    }

    /// Overwrites all weights with saved ones.
    pub fn load(&self, saved: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        self.generator.params.load("generator", saved)?;
        self.critic.params.load("critic", saved)
    }

    /// The device the networks live on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// Fills `buffer` with generator inputs: noise followed by the conditional vector, row by
/// row (`rows × (noise_dim + cond_dim)`).
fn fill_generator_input(
    config: &GanConfig,
    cond_dim: usize,
    cond: &CondBatch,
    rows: usize,
    rng: &mut Stream,
    buffer: &mut Vec<f32>,
) {
    let width = config.noise_dim + cond_dim;
    buffer.resize(rows * width, 0.0);
    for (row, line) in buffer.chunks_exact_mut(width).enumerate() {
        fill_normal(rng, &mut line[..config.noise_dim]);
        line[config.noise_dim..]
            .copy_from_slice(&cond.vectors[row * cond_dim..(row + 1) * cond_dim]);
    }
}

/// Fills `buffer` with Gumbel noise on softmax positions and zeros on tanh positions.
fn gumbel_noise(
    spans: &[Span],
    rows: usize,
    width: usize,
    rng: &mut Stream,
    buffer: &mut Vec<f32>,
) {
    buffer.clear();
    buffer.resize(rows * width, 0.0);
    for line in buffer.chunks_exact_mut(width) {
        for span in spans
            .iter()
            .filter(|span| span.activation == Activation::Softmax)
        {
            for value in &mut line[span.offset..span.offset + span.width] {
                *value = gumbel(rng);
            }
        }
    }
}

/// Appends conditional vectors to rows: `[n, a]` and `[n, cond_dim]` → `[n, a + cond_dim]`.
fn with_condition(rows: &Tensor, cond: &Tensor, cond_dim: usize) -> Result<Tensor> {
    if cond_dim == 0 {
        Ok(rows.clone())
    } else {
        Ok(Tensor::cat(&[rows, cond], 1)?)
    }
}

/// The state of one training run.
pub struct Trainer<'a> {
    networks: &'a Networks,
    config: &'a GanConfig,
    table: &'a EncodedTable,
    sampler: CondSampler,
    spans: Arc<[Span]>,
    data_dim: usize,
    cond_dim: usize,
    generator_optimiser: Adam,
    critic_optimiser: Adam,
    streams: TrainStreams,
    buffers: [Vec<f32>; 3],
    /// The generator's activation blocks for its host forward.
    blocks: Vec<Vec<f32>>,
}

struct TrainStreams {
    noise: Stream,
    condition: Stream,
    rows: Stream,
    dropout: Stream,
    penalty: Stream,
    gumbel: Stream,
}

impl<'a> Trainer<'a> {
    /// Prepares training of `networks` on `table`.
    pub fn new(
        networks: &'a Networks,
        config: &'a GanConfig,
        layout: &Layout,
        counts: &[Vec<u64>],
        table: &'a EncodedTable,
        seed: u64,
    ) -> Result<Trainer<'a>> {
        let adam = AdamConfig {
            learning_rate: config.learning_rate,
            beta1: config.beta1,
            beta2: config.beta2,
            epsilon: 1e-8,
            weight_decay: config.weight_decay,
        };
        Ok(Trainer {
            networks,
            config,
            table,
            sampler: CondSampler::new(layout, counts, Some(table)),
            spans: layout.spans.clone().into(),
            data_dim: layout.data_dim,
            cond_dim: layout.cond_dim,
            generator_optimiser: Adam::new(&networks.generator.params, adam)?,
            critic_optimiser: Adam::new(&networks.critic.params, adam)?,
            streams: TrainStreams {
                noise: stream(seed, Purpose::Noise),
                condition: stream(seed, Purpose::Condition),
                rows: stream(seed, Purpose::Rows),
                dropout: stream(seed, Purpose::Dropout),
                penalty: stream(seed, Purpose::Penalty),
                gumbel: stream(seed, Purpose::Gumbel),
            },
            buffers: Default::default(),
            blocks: Vec::new(),
        })
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// Generated rows after activation, conditioned on `cond`.
    fn fake_rows(&mut self, cond: &CondBatch, detach: bool) -> Result<(Tensor, Tensor)> {
        let device = self.networks.device();
        let rows = self.batch_size();
        let [input_buffer, gumbel_buffer, _] = &mut self.buffers;
        fill_generator_input(
            self.config,
            self.cond_dim,
            cond,
            rows,
            &mut self.streams.noise,
            input_buffer,
        );
        let raw = if detach && device.is_cpu() {
            // No gradient flows back into the generator: the copy-free host forward will do.
            let raw = self
                .networks
                .generator
                .forward_host(input_buffer, rows, &mut self.blocks)?;
            Tensor::from_vec(raw, (rows, self.data_dim), device)?
        } else {
            let width = self.config.noise_dim + self.cond_dim;
            let input = Tensor::from_slice(input_buffer, (rows, width), device)?;
            let raw = self.networks.generator.forward(&input)?;
            if detach { raw.detach() } else { raw }
        };
        gumbel_noise(
            &self.spans,
            rows,
            self.data_dim,
            &mut self.streams.gumbel,
            gumbel_buffer,
        );
        let noise = Tensor::from_slice(gumbel_buffer, (rows, self.data_dim), device)?;
        let activated = activate(&(&raw + noise)?, &self.spans, self.config.gumbel_tau)?;
        Ok((raw, activated))
    }

    /// Draws a batch of training conditions and generates rows for them: the conditions, the
    /// raw generator outputs, and the activated rows followed by their conditional vectors.
    fn conditioned_fakes(&mut self, detach: bool) -> Result<(CondBatch, Tensor, Tensor)> {
        let rows = self.batch_size();
        let cond = self.sampler.draw(
            rows,
            self.config.condition_weighting,
            &mut self.streams.condition,
        );
        let device = self.networks.device();
        let cond_tensor = Tensor::from_slice(&cond.vectors, (rows, self.cond_dim), device)?;
        let (raw, fake) = self.fake_rows(&cond, detach)?;
        let fake = with_condition(&fake, &cond_tensor, self.cond_dim)?;
        Ok((cond, raw, fake))
    }

    /// Real rows matching a permutation of the batch's conditions, each followed by the
    /// conditional vector it matches.
    fn real_rows(&mut self, cond: &CondBatch) -> Result<Tensor> {
        let rows = self.batch_size();
        let (data_dim, cond_dim) = (self.data_dim, self.cond_dim);
        let mut order: Vec<usize> = (0..rows).collect();
        order.shuffle(&mut self.streams.rows);
        let buffer = &mut self.buffers[2];
        buffer.resize(rows * (data_dim + cond_dim), 0.0);
        for (row, &source) in order.iter().enumerate() {
            let picked = if self.sampler.is_empty() {
                rand::Rng::random_range(&mut self.streams.rows, 0..self.table.rows)
            } else {
                self.sampler
                    .matching_row(cond.choices[source], &mut self.streams.rows)
            };
            let line = &mut buffer[row * (data_dim + cond_dim)..(row + 1) * (data_dim + cond_dim)];
            line[..data_dim]
                .copy_from_slice(&self.table.data[picked * data_dim..(picked + 1) * data_dim]);
            line[data_dim..]
                .copy_from_slice(&cond.vectors[source * cond_dim..(source + 1) * cond_dim]);
        }
        Ok(Tensor::from_slice(
            buffer,
            (rows, data_dim + cond_dim),
            self.networks.device(),
        )?)
    }
}

impl Adversarial for Trainer<'_> {
    fn critic_step(&mut self) -> Result<StepLosses> {
        let rows = self.batch_size();
        let (cond, _, fake) = self.conditioned_fakes(true)?;
        let real = self.real_rows(&cond)?;

        let critic = &self.networks.critic;
        let samples = rows / self.config.pac;
        let both = critic.pack(&Tensor::cat(&[&real, &fake], 0)?)?;
        let masks = critic.dropout_masks(2 * samples, &mut self.streams.dropout)?;
        let scores = critic.forward(&both, &masks, false)?;
        let wasserstein = critic_loss(
            Objective::Wasserstein,
            &scores.narrow(0, 0, samples)?,
            &scores.narrow(0, samples, samples)?,
        )?;
        let penalty = critic.penalty(
            &real,
            &fake,
            self.config.penalty_weight,
            &mut self.streams.penalty,
            &mut self.streams.dropout,
        )?;

        let grads = (&wasserstein + &penalty)?.backward()?;
        self.critic_optimiser.step(&grads)?;
        Ok(StepLosses {
            critic: scalar(&wasserstein)?,
            penalty: scalar(&penalty)?,
        })
    }

    fn generator_step(&mut self) -> Result<f64> {
        let rows = self.batch_size();
        let (cond, raw, fake) = self.conditioned_fakes(false)?;

        let critic = &self.networks.critic;
        let masks = critic.dropout_masks(rows / self.config.pac, &mut self.streams.dropout)?;
        let scores = critic.forward(&critic.pack(&fake)?, &masks, true)?;
        let mut loss = generator_loss(Objective::Wasserstein, &scores)?;
        if !self.sampler.is_empty() {
            let targets: Arc<[_]> = self.sampler.targets(&cond).into();
            loss = (loss + conditional_loss(&raw, &targets)?)?;
        }
        let grads = loss.backward()?;
        self.generator_optimiser.step(&grads)?;
        scalar(&loss)
    }

    fn steps_per_epoch(&self) -> usize {
        (self.table.rows / self.batch_size()).max(1)
    }
}

fn scalar(tensor: &Tensor) -> Result<f64> {
    Ok(f64::from(tensor.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// What generation keeps between batches of [`generate_rows`]: its noise streams and the
/// generator's activation buffers.
pub struct Generation {
    /// Draws the generator's input noise.
    pub noise: Stream,
    /// Draws the categories of the one-hot blocks.
    pub categories: Stream,
    blocks: Vec<Vec<f32>>,
    input: Vec<f32>,
}

impl Generation {
    /// Generation state drawing from the given streams.
    pub fn new(noise: Stream, categories: Stream) -> Generation {
        Generation {
            noise,
            categories,
            blocks: Vec::new(),
            input: Vec::new(),
        }
    }
}

/// Generates `rows` activated rows (host, row-major): tanh scalars, and one-hot blocks
/// holding a draw from the generator's categorical distribution (the softmax of its logits).
///
/// Training draws categories as the largest of logits plus Gumbel noise, whose distribution
/// is the same; drawing from the softmax directly takes one exponential per category and one
/// uniform per block, instead of two logarithms and a uniform per category.
pub fn generate_rows(
    networks: &Networks,
    config: &GanConfig,
    layout: &Layout,
    cond: &CondBatch,
    rows: usize,
    state: &mut Generation,
) -> Result<Vec<f32>> {
    let Generation {
        noise,
        categories,
        blocks,
        input,
    } = state;
    let width = config.noise_dim + layout.cond_dim;
    fill_generator_input(config, layout.cond_dim, cond, rows, noise, input);
    let mut values = if networks.device().is_cpu() {
        networks.generator.forward_host(input, rows, blocks)?
    } else {
        let input = Tensor::from_slice(input, (rows, width), networks.device())?;
        let raw = networks.generator.forward_detached(&input)?;
        raw.flatten_all()?.to_vec1::<f32>()?
    };
    for line in values.chunks_exact_mut(layout.data_dim) {
        for span in &layout.spans {
            let block = &mut line[span.offset..span.offset + span.width];
            match span.activation {
                Activation::Tanh => block.iter_mut().for_each(|value| *value = value.tanh()),
                Activation::Softmax => draw_one_hot(block, categories),
            }
        }
    }
    Ok(values)
}

/// Replaces the logits in `block` with the one-hot of a category drawn from their softmax.
fn draw_one_hot(block: &mut [f32], rng: &mut Stream) {
    let largest = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0f32;
    for value in block.iter_mut() {
        *value = (*value - largest).exp();
        total += *value;
    }
    let mut left = rng.random::<f32>() * total;
    let mut chosen = block.len() - 1;
    for (slot, weight) in block.iter().enumerate() {
        if left < *weight {
            chosen = slot;
            break;
        }
        left -= weight;
    }
    block.fill(0.0);
    block[chosen] = 1.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Categories drawn from logits follow their softmax, and each block becomes a one-hot.
    #[test]
    fn drawn_categories_follow_the_softmax() {
        let logits = [0.0f32, 1.0, -1.0, 2.0];
        let total: f32 = logits.iter().map(|l| l.exp()).sum();
        let mut rng = stream(9, Purpose::Gumbel);
        let mut counts = [0usize; 4];
        let draws = 200_000;
        for _ in 0..draws {
            let mut block = logits;
            draw_one_hot(&mut block, &mut rng);
            assert_eq!(block.iter().sum::<f32>(), 1.0);
            counts[block.iter().position(|v| *v == 1.0).unwrap()] += 1;
        }
        for (count, logit) in counts.iter().zip(logits) {
            let expected = logit.exp() / total;
            let share = *count as f32 / draws as f32;
            // Four standard errors of a share estimated from 200,000 draws.
            let tolerance = 4.0 * (expected * (1.0 - expected) / draws as f32).sqrt();
            assert!(
                (share - expected).abs() < tolerance,
                "{share} against {expected}"
            );
        }
    }

    /// The copy-free host forward of generation computes what the tensor forward computes,
    /// with weights away from their initial values (batch norm's scale and shift included).
    #[test]
    fn host_forward_matches_the_tensor_forward() {
        let device = Device::Cpu;
        let mut rng = stream(4, Purpose::Init);
        let generator = Generator::new(20, &[16, 12], 9, &mut rng, &device).unwrap();
        for (_, var) in generator.params.iter() {
            let mut values = vec![0.0f32; var.elem_count()];
            fill_normal(&mut rng, &mut values);
            var.set(&Tensor::from_vec(values, var.shape(), &device).unwrap())
                .unwrap();
        }
        let rows = 37;
        let mut input = vec![0.0f32; rows * 20];
        fill_normal(&mut rng, &mut input);
        let expected = generator
            .forward_detached(&Tensor::from_slice(&input, (rows, 20), &device).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut blocks = Vec::new();
        // Twice, so that reused buffers are covered.
        for _ in 0..2 {
            let got = generator.forward_host(&input, rows, &mut blocks).unwrap();
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{g} against {e}");
            }
        }
    }
}
