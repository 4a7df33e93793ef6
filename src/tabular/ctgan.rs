//! CTGAN: a conditional WGAN-GP for mixed-type tables (Xu et al. 2019, arXiv 1907.00503).
//!
//! The generator maps noise and a conditional vector through residual layers
//! (`Linear → BatchNorm → ReLU`, concatenated with their input) to one raw value per encoded
//! position; [`crate::gan::ops::activate`] turns them into rows (tanh scalars, Gumbel-softmax
//! one-hot blocks). The critic is the shared PacGAN critic of [`crate::gan::critic`], scoring
//! encoded rows together with their conditional vectors.
//!
//! [`Trainer`] takes its steps on host copies of both networks when they live on the CPU
//! (`src/tabular/host.rs`), and as candle tensor graphs elsewhere; both make the same
//! random draws in the same order, and tests below check that they compute the same
//! gradients and steps.
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
use crate::encode::links::Link;
use crate::error::Result;
use crate::gan::critic::{Critic, CriticConfig};
use crate::gan::fused::{
    Held, LinearGrads, features_batch_norm_relu, linear_blocks, transpose, with_host,
};
use crate::gan::loss::{Objective, critic_loss, generator_loss};
use crate::gan::nn::{BatchNorm, Linear, Params};
use crate::gan::ops::{
    activate, activate_row, activation_grad_row, add_conditional_grad_row, conditional_loss,
    conditional_loss_row,
};
use crate::gan::optim::{Adam, AdamConfig};
use crate::gan::train::{Adversarial, StepLosses};
use crate::rng::{Bulk, Purpose, Stream, bulk, fill_normal, gumbel, stream};
use crate::tabular::cond::{CondBatch, CondSampler};
use crate::tabular::host::{HostCritic, HostGenerator, Pass, interpolate};

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

    /// [`Self::forward_detached`] on host memory, for generation, with every matrix held
    /// feature by feature (`[features, rows]`, each feature's values over the rows side by
    /// side). Each residual layer writes its output into a block of its own, and later layers
    /// read the blocks in place of their concatenation, so a batch costs its matrix products
    /// and no copies. `blocks` is reused from batch to batch; its last block receives the raw
    /// outputs, which are returned.
    ///
    /// Rows are the long side of every product here, and in this layout they are the side
    /// the matrix-product kernels run along, so the output layer, a dozen features wide,
    /// runs as fast as the hidden ones (held row by row, it ran at a third of their speed);
    /// batch norm and the activations also run along contiguous rows.
    ///
    /// # Shapes
    /// `input: [noise_dim + cond_dim, rows]` → `[data_dim, rows]`.
    pub fn forward_host<'b>(
        &self,
        input: &[f32],
        rows: usize,
        blocks: &'b mut Vec<Vec<f32>>,
    ) -> Result<&'b mut [f32]> {
        let layers = self.residuals.len();
        blocks.resize_with(layers + 1, Vec::new);
        for (index, (linear, norm)) in self.residuals.iter().enumerate() {
            let (done, rest) = blocks.split_at_mut(index);
            let out = &mut rest[0];
            // The layer reads [out_{index-1}; …; out_0; input], newest first.
            let mut reads: Vec<&[f32]> = done.iter().rev().map(Vec::as_slice).collect();
            reads.push(input);
            // Batch normalisation subtracts the batch's mean, which removes the layer's bias
            // exactly, so it is not added.
            let outputs = norm.gamma.elem_count();
            with_host(linear.weight.as_tensor(), |weight| {
                linear_blocks(out, rows, &reads, weight, outputs, Held::ByFeatures)
            })?;
            with_host(norm.gamma.as_tensor(), |gamma| {
                with_host(norm.beta.as_tensor(), |beta| {
                    features_batch_norm_relu(out, rows, gamma, beta)
                })
            })??;
        }
        let (done, raw) = blocks.split_at_mut(layers);
        let mut reads: Vec<&[f32]> = done.iter().rev().map(Vec::as_slice).collect();
        reads.push(input);
        let raw = &mut raw[0];
        with_host(self.output.weight.as_tensor(), |weight| {
            with_host(self.output.bias.as_tensor(), |bias| {
                linear_blocks(raw, rows, &reads, weight, bias.len(), Held::ByFeatures);
                for (values, bias) in raw.chunks_exact_mut(rows).zip(bias) {
                    values.iter_mut().for_each(|value| *value += bias);
                }
            })
        })??;
        Ok(raw.as_mut_slice())
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
    rng: &mut Bulk,
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
fn gumbel_noise(spans: &[Span], rows: usize, width: usize, rng: &mut Bulk, buffer: &mut Vec<f32>) {
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
    /// On the CPU, the networks as host buffers and the steps' working memory.
    host: Option<Box<HostTraining>>,
}

/// Host copies of both networks (see [`crate::tabular::host`]) and the buffers their steps
/// reuse.
struct HostTraining {
    generator: HostGenerator,
    critic: HostCritic,
    main: Pass,
    interpolated: Pass,
    /// Real rows then generated ones, each followed by its conditional vector:
    /// `[2 · batch, data_dim + cond_dim]`. The generator's step uses the first half for its
    /// rows.
    both: Vec<f32>,
    interpolates: Vec<f32>,
    input_grad: Vec<f32>,
    raw_grad: Vec<f32>,
    score_grad: Vec<f32>,
}

struct TrainStreams {
    noise: Bulk,
    condition: Stream,
    rows: Stream,
    dropout: Bulk,
    penalty: Stream,
    gumbel: Bulk,
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
        let host = if networks.device().is_cpu() {
            let generator = &networks.generator;
            let critic = &networks.critic;
            let (hidden, output) = critic.layers();
            let critic_config = critic.config();
            Some(Box::new(HostTraining {
                generator: HostGenerator::new(
                    &generator.residuals,
                    &generator.output,
                    config.noise_dim + layout.cond_dim,
                    adam,
                )?,
                critic: HostCritic::new(
                    hidden,
                    output,
                    critic_config.input_dim * critic_config.pac,
                    critic_config.slope,
                    critic_config.dropout,
                    adam,
                )?,
                main: Pass::default(),
                interpolated: Pass::default(),
                both: Vec::new(),
                interpolates: Vec::new(),
                input_grad: Vec::new(),
                raw_grad: Vec::new(),
                score_grad: Vec::new(),
            }))
        } else {
            None
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
                noise: bulk(seed, Purpose::Noise),
                condition: stream(seed, Purpose::Condition),
                rows: stream(seed, Purpose::Rows),
                dropout: bulk(seed, Purpose::Dropout),
                penalty: stream(seed, Purpose::Penalty),
                gumbel: bulk(seed, Purpose::Gumbel),
            },
            buffers: Default::default(),
            host,
        })
    }

    fn draw_conditions(&mut self) -> CondBatch {
        self.sampler.draw(
            self.batch_size(),
            self.config.condition_weighting,
            &mut self.streams.condition,
        )
    }

    /// Generates a batch of rows for `cond` on the host generator into `out`
    /// (`[batch, data_dim + cond_dim]`): Gumbel-softmax activated rows followed by their
    /// conditional vectors. The generator keeps its activations for a backward pass.
    fn host_fakes(&mut self, generator: &mut HostGenerator, cond: &CondBatch, out: &mut [f32]) {
        let rows = self.batch_size();
        let (data_dim, cond_dim) = (self.data_dim, self.cond_dim);
        let [input, logits, _] = &mut self.buffers;
        fill_generator_input(
            self.config,
            cond_dim,
            cond,
            rows,
            &mut self.streams.noise,
            input,
        );
        let raw = generator.forward(input, rows);
        gumbel_noise(
            &self.spans,
            rows,
            data_dim,
            &mut self.streams.gumbel,
            logits,
        );
        let tau = self.config.gumbel_tau as f32;
        for (row, ((line, noisy), raw)) in out
            .chunks_exact_mut(data_dim + cond_dim)
            .zip(logits.chunks_exact_mut(data_dim))
            .zip(raw.chunks_exact(data_dim))
            .enumerate()
        {
            noisy.iter_mut().zip(raw).for_each(|(n, r)| *n += r);
            activate_row(noisy, line, &self.spans, tau);
            line[data_dim..].copy_from_slice(&cond.vectors[row * cond_dim..(row + 1) * cond_dim]);
        }
    }

    fn host_critic_step(&mut self, host: &mut HostTraining) -> StepLosses {
        let rows = self.batch_size();
        let width = self.data_dim + self.cond_dim;
        let samples = rows / self.config.pac;
        let cond = self.draw_conditions();
        host.both.resize(2 * rows * width, 0.0);
        let (real, fake) = host.both.split_at_mut(rows * width);
        self.host_fakes(&mut host.generator, &cond, fake);
        self.fill_real_rows(&cond, real);

        let critic = &mut host.critic;
        critic.forward(
            &mut host.main,
            &host.both,
            2 * samples,
            &mut self.streams.dropout,
        );
        let scores = &host.main.scores;
        let mean =
            |values: &[f32]| values.iter().map(|&v| f64::from(v)).sum::<f64>() / samples as f64;
        let wasserstein = mean(&scores[samples..]) - mean(&scores[..samples]);
        // mean D(fake) − mean D(real).
        let share = 1.0 / samples as f32;
        host.score_grad.clear();
        host.score_grad
            .extend((0..2 * samples).map(|sample| if sample < samples { -share } else { share }));
        critic.backward(&host.main, &host.both, &host.score_grad, true, false, None);

        let (real, fake) = host.both.split_at(rows * width);
        interpolate(
            &mut host.interpolates,
            real,
            fake,
            self.config.pac * width,
            &mut self.streams.penalty,
        );
        let penalty = critic.add_penalty(
            &mut host.interpolated,
            &host.interpolates,
            samples,
            self.config.penalty_weight,
            &mut self.streams.dropout,
        );
        critic.step();
        StepLosses {
            critic: wasserstein,
            penalty,
        }
    }

    fn host_generator_step(&mut self, host: &mut HostTraining) -> f64 {
        let rows = self.batch_size();
        let (data_dim, width) = (self.data_dim, self.data_dim + self.cond_dim);
        let samples = rows / self.config.pac;
        let cond = self.draw_conditions();
        host.both.resize(2 * rows * width, 0.0);
        let fake = &mut host.both[..rows * width];
        self.host_fakes(&mut host.generator, &cond, fake);
        let fake = &host.both[..rows * width];

        let critic = &mut host.critic;
        critic.forward(&mut host.main, fake, samples, &mut self.streams.dropout);
        let mut loss =
            -host.main.scores.iter().map(|&s| f64::from(s)).sum::<f64>() / samples as f64;
        host.score_grad.clear();
        host.score_grad.resize(samples, -1.0 / samples as f32);
        critic.backward(
            &host.main,
            fake,
            &host.score_grad,
            false,
            false,
            Some(&mut host.input_grad),
        );

        let tau = self.config.gumbel_tau as f32;
        host.raw_grad.resize(rows * data_dim, 0.0);
        for ((out, line), grad) in host
            .raw_grad
            .chunks_exact_mut(data_dim)
            .zip(fake.chunks_exact(width))
            .zip(host.input_grad.chunks_exact(width))
        {
            activation_grad_row(line, grad, out, &self.spans, tau);
        }
        if !self.sampler.is_empty() {
            let raw = host.generator.raw();
            let scale = 1.0 / rows as f32;
            let mut total = 0.0f64;
            for ((out, line), target) in host
                .raw_grad
                .chunks_exact_mut(data_dim)
                .zip(raw.chunks_exact(data_dim))
                .zip(self.sampler.targets(&cond).iter())
            {
                total += f64::from(conditional_loss_row(line, target));
                add_conditional_grad_row(line, out, target, scale);
            }
            loss += total / rows as f64;
        }
        host.generator.backward(&host.raw_grad);
        host.generator.step();
        loss
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
        let width = self.config.noise_dim + self.cond_dim;
        let input = Tensor::from_slice(input_buffer, (rows, width), device)?;
        let raw = self.networks.generator.forward(&input)?;
        let raw = if detach { raw.detach() } else { raw };
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
        let mut buffer = std::mem::take(&mut self.buffers[2]);
        buffer.resize(rows * (self.data_dim + self.cond_dim), 0.0);
        self.fill_real_rows(cond, &mut buffer);
        let tensor = Tensor::from_slice(
            &buffer,
            (rows, self.data_dim + self.cond_dim),
            self.networks.device(),
        )?;
        self.buffers[2] = buffer;
        Ok(tensor)
    }

    /// [`Self::real_rows`] into `out`, `[batch, data_dim + cond_dim]`.
    fn fill_real_rows(&mut self, cond: &CondBatch, out: &mut [f32]) {
        let rows = self.batch_size();
        let (data_dim, cond_dim) = (self.data_dim, self.cond_dim);
        let mut order: Vec<usize> = (0..rows).collect();
        order.shuffle(&mut self.streams.rows);
        for (line, &source) in out.chunks_exact_mut(data_dim + cond_dim).zip(&order) {
            let picked = if self.sampler.is_empty() {
                rand::Rng::random_range(&mut self.streams.rows, 0..self.table.rows)
            } else {
                self.sampler
                    .matching_row(cond.choices[source], &mut self.streams.rows)
            };
            line[..data_dim]
                .copy_from_slice(&self.table.data[picked * data_dim..(picked + 1) * data_dim]);
            line[data_dim..]
                .copy_from_slice(&cond.vectors[source * cond_dim..(source + 1) * cond_dim]);
        }
    }
}

impl Adversarial for Trainer<'_> {
    fn critic_step(&mut self) -> Result<StepLosses> {
        if let Some(mut host) = self.host.take() {
            let losses = self.host_critic_step(&mut host);
            self.host = Some(host);
            return Ok(losses);
        }
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
        if let Some(mut host) = self.host.take() {
            let loss = self.host_generator_step(&mut host);
            self.host = Some(host);
            return Ok(loss);
        }
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
        self.config.steps_per_epoch(self.table.rows)
    }

    /// Puts the weights trained on the host into the networks, where the epochs' checks and
    /// the saved model read them.
    fn sync(&mut self) -> Result<()> {
        if let Some(host) = &self.host {
            host.generator.store()?;
            host.critic.store()?;
        }
        Ok(())
    }
}

fn scalar(tensor: &Tensor) -> Result<f64> {
    Ok(f64::from(tensor.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// What generation keeps between batches of [`generate_rows`]: its noise streams and the
/// generator's buffers.
pub struct Generation {
    /// Draws the generator's input noise.
    pub noise: Bulk,
    /// Draws the categories of the one-hot blocks.
    pub categories: Bulk,
    blocks: Vec<Vec<f32>>,
    input: Vec<f32>,
    scratch: Vec<f32>,
    chosen: Vec<f32>,
    allowed: Vec<f32>,
    activated: Vec<f32>,
}

impl Generation {
    /// Generation state drawing from the given streams.
    pub fn new(noise: Bulk, categories: Bulk) -> Generation {
        Generation {
            noise,
            categories,
            blocks: Vec::new(),
            input: Vec::new(),
            scratch: Vec::new(),
            chosen: Vec::new(),
            allowed: Vec::new(),
            activated: Vec::new(),
        }
    }
}

/// Generates `rows` activated rows (host, row-major): tanh scalars, and one-hot blocks
/// holding a draw from the generator's categorical distribution (the softmax of its logits).
///
/// Training draws categories as the largest of logits plus Gumbel noise, whose distribution
/// is the same; drawing from the softmax directly takes one exponential per category and one
/// uniform per block, instead of two logarithms and a uniform per category.
///
/// The generator runs on matrices held feature by feature (see
/// [`Generator::forward_host`]), and the activated outputs are turned row by row at the end.
///
/// `rules` holds what the draws must keep: each conditioned column's one-hot is set to its
/// slot, and the detailed span of each link is drawn after its summary span, among the slots
/// that go with the summary slot drawn (see [`crate::encode::links`]).
pub fn generate_rows<'s>(
    networks: &Networks,
    config: &GanConfig,
    layout: &Layout,
    cond: &CondBatch,
    rules: Rules<'_>,
    rows: usize,
    state: &'s mut Generation,
) -> Result<&'s [f32]> {
    let Generation {
        noise,
        categories,
        blocks,
        input,
        scratch,
        chosen,
        allowed,
        activated,
    } = state;
    let width = config.noise_dim + layout.cond_dim;
    fill_generation_input(config.noise_dim, layout.cond_dim, cond, rows, noise, input);
    let values = if networks.device().is_cpu() {
        networks.generator.forward_host(input, rows, blocks)?
    } else {
        let input = Tensor::from_slice(input, (width, rows), networks.device())?
            .t()?
            .contiguous()?;
        let raw = networks.generator.forward_detached(&input)?;
        blocks.resize_with(1, Vec::new);
        blocks[0] = raw.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        blocks[0].as_mut_slice()
    };
    let forced = forced_slots(layout.discrete.len(), rules.links, rules.fixed);
    let discrete_at = |offset: usize| {
        layout
            .discrete
            .iter()
            .position(|span| span.offset == offset)
    };
    let block_of = |offset: usize, width: usize| offset * rows..(offset + width) * rows;
    for span in &layout.spans {
        let discrete = discrete_at(span.offset);
        if discrete.is_some_and(|d| rules.links.iter().any(|link| link.detailed == d)) {
            continue;
        }
        let block = &mut values[block_of(span.offset, span.width)];
        match span.activation {
            Activation::Tanh => crate::simd::tanh_in_place(block),
            Activation::Softmax => draw_one_hots(block, rows, categories, scratch),
        }
        if let Some(slot) = discrete.and_then(|d| forced[d]) {
            set_one_hot(block, rows, slot);
        }
    }
    // Detailed spans of links, each after its summary span.
    for link in rules.links {
        let summary = layout.discrete[link.summary];
        chosen_slots(
            &values[block_of(summary.offset, summary.width)],
            rows,
            chosen,
        );
        let detailed = layout.discrete[link.detailed];
        let block = &mut values[block_of(detailed.offset, detailed.width)];
        restrict(block, rows, &link.summary_of, chosen, allowed);
        draw_one_hots(block, rows, categories, scratch);
        if let Some(slot) = forced[link.detailed] {
            set_one_hot(block, rows, slot);
        }
    }
    activated.resize(rows * layout.data_dim, 0.0);
    transpose(values, (layout.data_dim, rows), activated);
    Ok(activated)
}

/// What every generated row must keep besides the generator's own draws.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// Links between categorical columns found in the training rows.
    pub links: &'a [Link],
    /// (discrete span, slot) of every column conditioned on.
    pub fixed: &'a [(usize, usize)],
}

/// The slot every row gets in each discrete span, if any: the conditions, and the summary
/// slot of a conditioned detailed span (a condition on a fraud scenario sets the fraud
/// label) unless the summary span is conditioned itself.
fn forced_slots(spans: usize, links: &[Link], fixed: &[(usize, usize)]) -> Vec<Option<usize>> {
    let mut forced = vec![None; spans];
    for &(span, slot) in fixed {
        forced[span] = Some(slot);
    }
    // Links are ordered summaries first, so walking them backwards carries a condition down
    // a chain of links.
    for link in links.iter().rev() {
        if let (Some(slot), None) = (forced[link.detailed], forced[link.summary]) {
            let summary = link.summary_of[slot];
            if summary != Link::FREE {
                forced[link.summary] = Some(summary as usize);
            }
        }
    }
    forced
}

/// Makes every row of `block` (`[width, rows]`) the one-hot of `slot`.
fn set_one_hot(block: &mut [f32], rows: usize, slot: usize) {
    for (index, values) in block.chunks_exact_mut(rows.max(1)).enumerate() {
        values.fill(if index == slot { 1.0 } else { 0.0 });
    }
}

/// Writes each row's slot in the one-hot `block` (`[width, rows]`) to `chosen`.
fn chosen_slots(block: &[f32], rows: usize, chosen: &mut Vec<f32>) {
    chosen.clear();
    chosen.resize(rows, 0.0);
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for (slot, values) in block.chunks_exact(rows.max(1)).enumerate() {
                for (chosen, value) in chosen.iter_mut().zip(values) {
                    *chosen = if *value == 1.0 { slot as f32 } else { *chosen };
                }
            }
        },
    );
}

/// Rules out, in the logits `block` of a link's detailed span, the slots that do not go with
/// each row's summary slot `chosen`, in the rows where some slot does (the others keep every
/// slot).
fn restrict(
    block: &mut [f32],
    rows: usize,
    summary_of: &[u32],
    chosen: &[f32],
    allowed: &mut Vec<f32>,
) {
    let fits = |summary: u32, chosen: f32| summary == Link::FREE || chosen == summary as f32;
    allowed.clear();
    allowed.resize(rows, 0.0);
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for &summary in summary_of {
                for (allowed, chosen) in allowed.iter_mut().zip(chosen) {
                    *allowed += if fits(summary, *chosen) { 1.0 } else { 0.0 };
                }
            }
            for (logits, &summary) in block.chunks_exact_mut(rows.max(1)).zip(summary_of) {
                for ((logit, chosen), allowed) in logits.iter_mut().zip(chosen).zip(allowed.iter())
                {
                    if *allowed > 0.0 && !fits(summary, *chosen) {
                        *logit = f32::NEG_INFINITY;
                    }
                }
            }
        },
    );
}

/// Fills `buffer` with generation inputs held feature by feature
/// (`[noise_dim + cond_dim, rows]`): noise, then the conditional vectors.
fn fill_generation_input(
    noise_dim: usize,
    cond_dim: usize,
    cond: &CondBatch,
    rows: usize,
    rng: &mut Bulk,
    buffer: &mut Vec<f32>,
) {
    buffer.resize(rows * (noise_dim + cond_dim), 0.0);
    let (noise, conditions) = buffer.split_at_mut(noise_dim * rows);
    fill_normal(rng, noise);
    // The vectors are one-hot blocks, mostly zeros: only their non-zero values are placed.
    conditions.fill(0.0);
    if cond_dim > 0 {
        for (row, vector) in cond.vectors.chunks_exact(cond_dim).take(rows).enumerate() {
            for (slot, value) in vector.iter().enumerate() {
                if *value != 0.0 {
                    conditions[slot * rows + row] = *value;
                }
            }
        }
    }
}

/// Replaces the logits in `block` (`[width, rows]`, one span's features) with the one-hot of
/// a category drawn, row by row, from their softmax. `scratch` holds each row's largest
/// logit, then its total weight, the weight left to pass and the slot chosen.
fn draw_one_hots(block: &mut [f32], rows: usize, rng: &mut Bulk, scratch: &mut Vec<f32>) {
    let width = block.len() / rows.max(1);
    scratch.clear();
    scratch.resize(rows, f32::NEG_INFINITY);
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for logits in block.chunks_exact(rows) {
                for (largest, logit) in scratch.iter_mut().zip(logits) {
                    *largest = largest.max(*logit);
                }
            }
            for logits in block.chunks_exact_mut(rows) {
                for (logit, largest) in logits.iter_mut().zip(scratch.iter()) {
                    *logit -= largest;
                }
            }
        },
    );
    crate::simd::exp_in_place(block);
    // Per row: the total weight, then the weight left to pass before the drawn point, then
    // the slot chosen so far. A row's weight left turns infinite once its slot is chosen.
    scratch.clear();
    scratch.resize(3 * rows, 0.0);
    let (totals, rest) = scratch.split_at_mut(rows);
    let (left, chosen) = rest.split_at_mut(rows);
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for weights in block.chunks_exact(rows) {
                for (total, weight) in totals.iter_mut().zip(weights) {
                    *total += weight;
                }
            }
        },
    );
    for (left, total) in left.iter_mut().zip(totals.iter()) {
        *left = rng.random::<f32>() * total;
    }
    chosen.fill((width - 1) as f32);
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for (slot, weights) in block.chunks_exact(rows).enumerate() {
                for ((left, chosen), weight) in left.iter_mut().zip(chosen.iter_mut()).zip(weights)
                {
                    let hit = *left < *weight;
                    *chosen = if hit { slot as f32 } else { *chosen };
                    *left = if hit { f32::INFINITY } else { *left - weight };
                }
            }
            for (slot, values) in block.chunks_exact_mut(rows).enumerate() {
                for (value, chosen) in values.iter_mut().zip(chosen.iter()) {
                    *value = if *chosen == slot as f32 { 1.0 } else { 0.0 };
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use candle_core::backprop::GradStore;

    use crate::gan::ops::Target;

    fn adam() -> AdamConfig {
        AdamConfig {
            learning_rate: 2e-4,
            beta1: 0.5,
            beta2: 0.9,
            epsilon: 1e-8,
            weight_decay: 1e-6,
        }
    }

    fn random(rng: &mut Stream, count: usize) -> Vec<f32> {
        (0..count).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn spans() -> Arc<[Span]> {
        crate::encode::layout::spans_of(&[
            (0, 1, Activation::Tanh),
            (1, 3, Activation::Softmax),
            (4, 4, Activation::Softmax),
            (8, 1, Activation::Tanh),
            (9, 2, Activation::Softmax),
        ])
        .into()
    }

    /// Asserts that every host gradient matches the tensor path's, to a small fraction of the
    /// parameter's largest gradient; `zero` names the parameters whose tensor-path gradient
    /// is zero up to rounding and whose host gradient is exactly zero.
    fn assert_gradients_match(
        host: Vec<(&Var, &[f32])>,
        grads: &GradStore,
        zero: impl Fn(&Var) -> bool,
    ) {
        for (index, (var, got)) in host.into_iter().enumerate() {
            let expected = grads.get(var.as_tensor()).map_or_else(
                || vec![0.0; got.len()],
                |grad| grad.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            if zero(var) {
                assert!(got.iter().all(|g| *g == 0.0), "parameter {index}");
                assert!(expected.iter().all(|e| e.abs() < 1e-5), "parameter {index}");
                continue;
            }
            // (The critic's output bias has gradient −1 + 1 = 0 from the Wasserstein loss.)
            let scale = expected.iter().fold(0.0f32, |m, e| m.max(e.abs()));
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g - e).abs() <= 1e-4 * scale + 1e-7,
                    "parameter {index}: {g} against {e}"
                );
            }
        }
    }

    /// The host critic's gradient of the Wasserstein loss plus the gradient penalty, and the
    /// penalty's value, are those of the tensor path (whose penalty gradient is checked
    /// against finite differences in `gan::critic`), from the same random draws.
    #[test]
    fn host_critic_gradients_match_the_tensor_path() {
        let device = Device::Cpu;
        let config = CriticConfig {
            input_dim: 7,
            hidden: vec![6, 5],
            pac: 2,
            slope: 0.2,
            dropout: 0.5,
        };
        let critic =
            Critic::new(config, &mut stream(1, Purpose::Init), &device, DType::F32).unwrap();
        let (rows, samples) = (8, 4);
        let mut rng = stream(2, Purpose::Noise);
        let (real, fake) = (random(&mut rng, rows * 7), random(&mut rng, rows * 7));

        let real_tensor = Tensor::from_slice(&real, (rows, 7), &device).unwrap();
        let fake_tensor = Tensor::from_slice(&fake, (rows, 7), &device).unwrap();
        let both = Tensor::cat(&[&real_tensor, &fake_tensor], 0).unwrap();
        let mut dropout = bulk(3, Purpose::Dropout);
        let masks = critic.dropout_masks(2 * samples, &mut dropout).unwrap();
        let scores = critic
            .forward(&critic.pack(&both).unwrap(), &masks, false)
            .unwrap();
        let wasserstein = critic_loss(
            Objective::Wasserstein,
            &scores.narrow(0, 0, samples).unwrap(),
            &scores.narrow(0, samples, samples).unwrap(),
        )
        .unwrap();
        let penalty = critic
            .penalty(
                &real_tensor,
                &fake_tensor,
                10.0,
                &mut stream(4, Purpose::Penalty),
                &mut dropout,
            )
            .unwrap();
        let grads = (&wasserstein + &penalty).unwrap().backward().unwrap();

        let (hidden, output) = critic.layers();
        let mut host = HostCritic::new(hidden, output, 14, 0.2, 0.5, adam()).unwrap();
        let mut dropout = bulk(3, Purpose::Dropout);
        let both: Vec<f32> = real.iter().chain(&fake).copied().collect();
        let mut pass = Pass::default();
        host.forward(&mut pass, &both, 2 * samples, &mut dropout);
        let expected = scores.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (got, expected) in pass.scores.iter().zip(&expected) {
            assert!((got - expected).abs() < 1e-5, "{got} against {expected}");
        }
        let share = 1.0 / samples as f32;
        let score_grad: Vec<f32> = (0..2 * samples)
            .map(|sample| if sample < samples { -share } else { share })
            .collect();
        host.backward(&pass, &both, &score_grad, true, false, None);
        let mut interpolates = Vec::new();
        interpolate(
            &mut interpolates,
            &real,
            &fake,
            14,
            &mut stream(4, Purpose::Penalty),
        );
        let value = host.add_penalty(
            &mut Pass::default(),
            &interpolates,
            samples,
            10.0,
            &mut dropout,
        );
        let expected = scalar(&penalty).unwrap();
        assert!(
            (value - expected).abs() < 1e-4 * expected.max(1.0),
            "{value} against {expected}"
        );
        assert_gradients_match(host.gradients(), &grads, |_| false);
    }

    /// The host generator's gradients of the critic's generator loss plus the conditional
    /// loss are those of the tensor path, through batch normalisation, the residual blocks,
    /// the span activations and the critic.
    #[test]
    fn host_generator_gradients_match_the_tensor_path() {
        let device = Device::Cpu;
        let spans = spans();
        let (rows, samples, inputs, data_dim, cond_dim) = (8, 4, 10, 11, 4);
        let width = data_dim + cond_dim;
        let mut rng = stream(5, Purpose::Init);
        let generator = Generator::new(inputs, &[8, 5], data_dim, &mut rng, &device).unwrap();
        for (linear, norm) in &generator.residuals {
            for var in [&norm.gamma, &norm.beta, &linear.bias] {
                let values = random(&mut rng, var.elem_count());
                var.set(&Tensor::from_vec(values, var.shape(), &device).unwrap())
                    .unwrap();
            }
        }
        let config = CriticConfig {
            input_dim: width,
            hidden: vec![6, 5],
            pac: 2,
            slope: 0.2,
            dropout: 0.5,
        };
        let critic = Critic::new(config, &mut rng, &device, DType::F32).unwrap();
        let input = random(&mut rng, rows * inputs);
        let noise = random(&mut rng, rows * data_dim);
        let cond = random(&mut rng, rows * cond_dim);
        let targets: Arc<[Target]> = (0..rows)
            .map(|row| Target {
                offset: 4,
                width: 4,
                slot: row % 4,
            })
            .collect();

        let tensor = |values: &[f32], columns: usize| {
            Tensor::from_slice(values, (values.len() / columns, columns), &device).unwrap()
        };
        let raw = generator.forward(&tensor(&input, inputs)).unwrap();
        let activated = activate(&(&raw + tensor(&noise, data_dim)).unwrap(), &spans, 0.2).unwrap();
        let fake = Tensor::cat(&[&activated, &tensor(&cond, cond_dim)], 1).unwrap();
        let masks = critic
            .dropout_masks(samples, &mut bulk(6, Purpose::Dropout))
            .unwrap();
        let scores = critic
            .forward(&critic.pack(&fake).unwrap(), &masks, true)
            .unwrap();
        let loss = (generator_loss(Objective::Wasserstein, &scores).unwrap()
            + conditional_loss(&raw, &targets).unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();

        let mut host =
            HostGenerator::new(&generator.residuals, &generator.output, inputs, adam()).unwrap();
        let raw = host.forward(&input, rows).to_vec();
        let mut fake = vec![0.0f32; rows * width];
        for (row, line) in fake.chunks_exact_mut(width).enumerate() {
            let logits: Vec<f32> = raw[row * data_dim..(row + 1) * data_dim]
                .iter()
                .zip(&noise[row * data_dim..])
                .map(|(r, n)| r + n)
                .collect();
            activate_row(&logits, line, &spans, 0.2);
            line[data_dim..].copy_from_slice(&cond[row * cond_dim..(row + 1) * cond_dim]);
        }
        let (hidden, output) = critic.layers();
        let mut host_critic = HostCritic::new(hidden, output, 2 * width, 0.2, 0.5, adam()).unwrap();
        let mut pass = Pass::default();
        host_critic.forward(&mut pass, &fake, samples, &mut bulk(6, Purpose::Dropout));
        let mut input_grad = Vec::new();
        let score_grad = vec![-1.0 / samples as f32; samples];
        host_critic.backward(
            &pass,
            &fake,
            &score_grad,
            false,
            false,
            Some(&mut input_grad),
        );
        let mut raw_grad = vec![0.0f32; rows * data_dim];
        for (row, out) in raw_grad.chunks_exact_mut(data_dim).enumerate() {
            let line = &fake[row * width..(row + 1) * width];
            activation_grad_row(line, &input_grad[row * width..], out, &spans, 0.2);
            let logits = &raw[row * data_dim..(row + 1) * data_dim];
            add_conditional_grad_row(logits, out, &targets[row], 1.0 / rows as f32);
        }
        host.backward(&raw_grad);
        let biases: Vec<&Var> = generator
            .residuals
            .iter()
            .map(|(linear, _)| &linear.bias)
            .collect();
        assert_gradients_match(host.gradients(), &grads, |var| {
            biases
                .iter()
                .any(|bias| bias.as_tensor().id() == var.as_tensor().id())
        });
    }

    /// A small encoded table: a continuous column (scalar and three modes) and two discrete
    /// columns, one-hot, with the slot counts the condition sampler needs.
    fn small_table(rows: usize) -> (Layout, EncodedTable, Vec<Vec<u64>>) {
        let mut layout = Layout::default();
        layout.push(0, 1, Activation::Tanh, false);
        layout.push(0, 3, Activation::Softmax, false);
        layout.push(1, 4, Activation::Softmax, true);
        layout.push(2, 2, Activation::Softmax, true);
        let mut rng = stream(7, Purpose::Split);
        let mut data = vec![0.0f32; rows * layout.data_dim];
        let mut slots = vec![Vec::new(); 2];
        for line in data.chunks_exact_mut(layout.data_dim) {
            line[0] = rng.random_range(-1.0..1.0);
            line[1 + rng.random_range(0..3)] = 1.0;
            let first = rng.random_range(0..4usize);
            let second = rng.random_range(0..2usize);
            line[4 + first] = 1.0;
            line[8 + second] = 1.0;
            slots[0].push(first as u32);
            slots[1].push(second as u32);
        }
        let counts = slots
            .iter()
            .zip([4, 2])
            .map(|(slots, width)| {
                let mut counts = vec![0u64; width];
                slots.iter().for_each(|&slot| counts[slot as usize] += 1);
                counts
            })
            .collect();
        let table = EncodedTable { data, rows, slots };
        (layout, table, counts)
    }

    /// Training steps on the host and through the tensor graph draw the same random numbers
    /// and report the same losses, and leave the same weights: all but the residual layers'
    /// biases (which batch normalisation removes, so their gradients are zero up to rounding
    /// and Adam moves them by rounding noise) agree, up to the few weights whose gradient is
    /// close enough to zero for rounding to flip the sign of Adam's first, sign-like steps.
    #[test]
    fn host_steps_match_the_tensor_steps() {
        let (layout, table, counts) = small_table(60);
        let config = GanConfig {
            noise_dim: 6,
            generator_dims: vec![16, 12],
            critic_dims: vec![20, 10],
            pac: 5,
            batch_size: 30,
            ..GanConfig::default()
        };
        let device = Device::Cpu;
        let networks = [0, 1].map(|_| Networks::new(&config, &layout, 3, &device).unwrap());
        let mut host = Trainer::new(&networks[0], &config, &layout, &counts, &table, 9).unwrap();
        let mut tensor = Trainer::new(&networks[1], &config, &layout, &counts, &table, 9).unwrap();
        assert!(host.host.is_some());
        tensor.host = None;
        for step in 0..4 {
            let (a, b) = (host.critic_step().unwrap(), tensor.critic_step().unwrap());
            let tolerance = if step == 0 { 1e-5 } else { 1e-3 };
            assert!(
                (a.critic - b.critic).abs() < tolerance * (1.0 + b.critic.abs()),
                "step {step}: {a:?} against {b:?}"
            );
            assert!(
                (a.penalty - b.penalty).abs() < tolerance * (1.0 + b.penalty.abs()),
                "step {step}: {a:?} against {b:?}"
            );
            let (a, b) = (
                host.generator_step().unwrap(),
                tensor.generator_step().unwrap(),
            );
            assert!(
                (a - b).abs() < tolerance * (1.0 + b.abs()),
                "step {step}: {a} against {b}"
            );
        }
        host.sync().unwrap();
        let (weights, expected) = (networks[0].tensors(), networks[1].tensors());
        let (mut compared, mut apart) = (0usize, 0usize);
        for (name, tensor) in &weights {
            if name.starts_with("generator.residual") && name.ends_with("linear.bias") {
                continue;
            }
            let got = tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = expected[name]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (g, w) in got.iter().zip(&want) {
                compared += 1;
                if (g - w).abs() > 1e-5 {
                    apart += 1;
                }
            }
        }
        assert!(
            apart * 100 <= compared,
            "{apart} of {compared} weights differ"
        );
    }

    /// Categories drawn from logits follow their softmax, and each row's block becomes a
    /// one-hot. The rows' logits are the same up to a shift, which the softmax ignores, and
    /// the row count is not a multiple of the vector width.
    #[test]
    fn drawn_categories_follow_the_softmax() {
        let logits = [0.0f32, 1.0, -1.0, 2.0];
        let total: f32 = logits.iter().map(|l| l.exp()).sum();
        let mut rng = bulk(9, Purpose::Gumbel);
        let mut counts = [0usize; 4];
        let rows = 1_001;
        let mut draws = 0;
        let mut scratch = Vec::new();
        for _ in 0..200 {
            // Feature by feature: logit `slot` of row `row` at `slot * rows + row`.
            let mut block: Vec<f32> = logits
                .iter()
                .flat_map(|logit| (0..rows).map(move |row| logit + (row % 7) as f32 * 30.0))
                .collect();
            draw_one_hots(&mut block, rows, &mut rng, &mut scratch);
            for row in 0..rows {
                let line: Vec<f32> = (0..4).map(|slot| block[slot * rows + row]).collect();
                assert_eq!(line.iter().sum::<f32>(), 1.0);
                counts[line.iter().position(|v| *v == 1.0).unwrap()] += 1;
                draws += 1;
            }
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
        // Feature by feature, as the host forward takes it.
        let mut input = vec![0.0f32; 20 * rows];
        fill_normal(&mut rng, &mut input);
        let rows_first = Tensor::from_slice(&input, (20, rows), &device)
            .unwrap()
            .t()
            .unwrap()
            .contiguous()
            .unwrap();
        let expected = generator
            .forward_detached(&rows_first)
            .unwrap()
            .t()
            .unwrap()
            .contiguous()
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
