//! CTGAN's networks trained on host memory, for the CPU.
//!
//! On the CPU a step built as a tensor graph spends as long on the graph as on its arithmetic:
//! every op allocates its output, tensors read twice have their gradients added, the residual
//! layers concatenate their inputs, and the optimiser reads and writes every parameter as a
//! tensor. Here the generator and the critic keep their weights, gradients, Adam moments and
//! activations in host buffers that live for the whole fit, and each pass is written out by
//! hand: matrix products (split over the compute threads, see [`crate::threads`]) and single
//! passes over rows for everything else. The residual layers write their outputs into column
//! blocks of one activation matrix, newest first, so each layer's input (its predecessors'
//! outputs and the generator's input) is a contiguous block of columns and nothing is copied.
//!
//! The arithmetic is that of the tensor path ([`super::ctgan::Trainer`] on other devices)
//! and so are the random draws; a test checks that both leave the same weights after several
//! steps. [`HostGenerator::store`] and [`HostCritic::store`] copy the weights back into the
//! networks' parameters, which is where generation and checkpoints read them.

use candle_core::{DType, Tensor, Var};
use rand::Rng;

use crate::error::Result;
use crate::gan::fused::{
    add_to_rows, column_sums, product_into, product_strided, split, statistics,
};
use crate::gan::nn::{BatchNorm, Linear};
use crate::gan::optim::{AdamConfig, corrections, update_values};
use crate::rng::{Bulk, Stream, fill_uniform};

/// One parameter: its values, gradient and Adam moments, and the variable it came from.
struct Param {
    var: Var,
    value: Vec<f32>,
    grad: Vec<f32>,
    first: Vec<f32>,
    second: Vec<f32>,
}

impl Param {
    fn of(var: &Var) -> Result<Param> {
        let value = var
            .as_tensor()
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let count = value.len();
        Ok(Param {
            var: var.clone(),
            value,
            grad: vec![0.0; count],
            first: vec![0.0; count],
            second: vec![0.0; count],
        })
    }
}

/// A network's parameters with the Adam state that updates them.
struct Params {
    params: Vec<Param>,
    config: AdamConfig,
    steps: u32,
}

impl Params {
    fn new(vars: &[&Var], config: AdamConfig) -> Result<Params> {
        Ok(Params {
            params: vars
                .iter()
                .map(|var| Param::of(var))
                .collect::<Result<_>>()?,
            config,
            steps: 0,
        })
    }

    /// One Adam step along the gradients.
    fn step(&mut self) {
        self.steps += 1;
        let corrections = corrections(&self.config, self.steps);
        for param in &mut self.params {
            update_values(
                &mut param.value,
                &param.grad,
                &mut param.first,
                &mut param.second,
                &self.config,
                corrections,
            );
        }
    }

    /// Each parameter's variable with its gradient, for tests.
    #[cfg(test)]
    fn gradients(&self) -> Vec<(&Var, &[f32])> {
        self.params
            .iter()
            .map(|param| (&param.var, param.grad.as_slice()))
            .collect()
    }

    /// Copies the values into the variables.
    fn store(&self) -> Result<()> {
        for param in &self.params {
            let var = &param.var;
            let tensor = Tensor::from_slice(&param.value, var.shape(), var.device())?
                .to_dtype(var.dtype())?;
            var.set(&tensor)?;
        }
        Ok(())
    }
}

/// The residual generator: `Linear → BatchNorm → ReLU` layers, each concatenated with its
/// input, then a linear output layer.
pub(crate) struct HostGenerator {
    /// Per residual layer its weight, bias, scale and shift; then the output weight and bias.
    /// Batch normalisation subtracts the batch mean, which removes a residual layer's bias
    /// exactly: it is neither added nor given a gradient (Adam's weight decay still moves it,
    /// as in the tensor path).
    params: Params,
    input_width: usize,
    widths: Vec<usize>,
    /// First column of each residual layer's block in `hidden`.
    starts: Vec<usize>,
    /// Columns of `hidden`: every layer's output, then the input.
    total: usize,
    outputs: usize,
    rows: usize,
    /// `[rows, total]`: `[out_last | … | out_0 | input]`.
    hidden: Vec<f32>,
    /// Per residual layer, its batch-normalised pre-activations `[rows, width]`.
    normalised: Vec<Vec<f32>>,
    /// Per residual layer, the inverse standard deviation of each column in the batch.
    inverse: Vec<Vec<f32>>,
    raw: Vec<f32>,
    /// Gradients of the layers' outputs, `[rows, total − input_width]` like `hidden`.
    hidden_grad: Vec<f32>,
    pre_grad: Vec<f32>,
}

impl HostGenerator {
    /// Host copies of the layers of a generator reading `input_width` values per row.
    pub(crate) fn new(
        residuals: &[(Linear, BatchNorm)],
        output: &Linear,
        input_width: usize,
        config: AdamConfig,
    ) -> Result<HostGenerator> {
        let mut vars = Vec::new();
        for (linear, norm) in residuals {
            vars.extend([&linear.weight, &linear.bias, &norm.gamma, &norm.beta]);
        }
        vars.extend([&output.weight, &output.bias]);
        let widths: Vec<usize> = residuals
            .iter()
            .map(|(_, norm)| norm.gamma.elem_count())
            .collect();
        let mut starts = vec![0; widths.len()];
        let mut start = 0;
        for (index, width) in widths.iter().enumerate().rev() {
            starts[index] = start;
            start += width;
        }
        Ok(HostGenerator {
            params: Params::new(&vars, config)?,
            input_width,
            starts,
            total: start + input_width,
            outputs: output.bias.elem_count(),
            rows: 0,
            hidden: Vec::new(),
            normalised: vec![Vec::new(); widths.len()],
            inverse: vec![Vec::new(); widths.len()],
            widths,
            raw: Vec::new(),
            hidden_grad: Vec::new(),
            pre_grad: Vec::new(),
        })
    }

    /// The raw outputs for `rows` input rows (`[rows, outputs]`), keeping what the backward
    /// pass needs.
    pub(crate) fn forward(&mut self, input: &[f32], rows: usize) -> &[f32] {
        let (total, input_width) = (self.total, self.input_width);
        self.rows = rows;
        self.hidden.resize(rows * total, 0.0);
        for (line, source) in self
            .hidden
            .chunks_exact_mut(total)
            .zip(input.chunks_exact(input_width))
        {
            line[total - input_width..].copy_from_slice(source);
        }
        for (layer, &width) in self.widths.iter().enumerate() {
            let start = self.starts[layer];
            let reads = start + width;
            let inputs = total - reads;
            let params = &self.params.params;
            let normalised = &mut self.normalised[layer];
            normalised.resize(rows * width, 0.0);
            // Wᵀ: row stride 1, column stride `inputs`.
            product_into(
                normalised,
                (rows, width, inputs),
                (&self.hidden[reads..], total, 1),
                (&params[4 * layer].value, 1, inputs),
                false,
                split(),
            );
            let (mean, inverse) = statistics(normalised, width);
            let (gamma, beta) = (&params[4 * layer + 2].value, &params[4 * layer + 3].value);
            for (values, line) in normalised
                .chunks_exact_mut(width)
                .zip(self.hidden.chunks_exact_mut(total))
            {
                let out = &mut line[start..reads];
                for ((((value, out), mean), inverse), (gamma, beta)) in values
                    .iter_mut()
                    .zip(out)
                    .zip(&mean)
                    .zip(&inverse)
                    .zip(gamma.iter().zip(beta))
                {
                    let normalised = (*value - mean) * inverse;
                    *value = normalised;
                    *out = (normalised * gamma + beta).max(0.0);
                }
            }
            self.inverse[layer] = inverse;
        }
        let layers = self.widths.len();
        let params = &self.params.params;
        self.raw.resize(rows * self.outputs, 0.0);
        product_into(
            &mut self.raw,
            (rows, self.outputs, total),
            (&self.hidden, total, 1),
            (&params[4 * layers].value, 1, total),
            false,
            split(),
        );
        add_to_rows(&mut self.raw, &params[4 * layers + 1].value);
        &self.raw
    }

    /// The raw outputs of the last [`Self::forward`].
    pub(crate) fn raw(&self) -> &[f32] {
        &self.raw
    }

    /// The gradients of every parameter from the gradient of the raw outputs of the last
    /// [`Self::forward`].
    pub(crate) fn backward(&mut self, raw_grad: &[f32]) {
        let (rows, total, outputs) = (self.rows, self.total, self.outputs);
        let produced = total - self.input_width;
        let layers = self.widths.len();
        let params = &mut self.params.params;
        let (head, tail) = params.split_at_mut(4 * layers);
        let (output_weight, output_bias) = tail.split_at_mut(1);
        // Gᵀ: row stride 1, column stride `outputs`.
        product_into(
            &mut output_weight[0].grad,
            (outputs, total, rows),
            (raw_grad, 1, outputs),
            (&self.hidden, total, 1),
            false,
            split(),
        );
        output_bias[0].grad = column_sums(raw_grad, outputs);
        self.hidden_grad.resize(rows * produced, 0.0);
        product_into(
            &mut self.hidden_grad,
            (rows, produced, outputs),
            (raw_grad, outputs, 1),
            (&output_weight[0].value, total, 1),
            false,
            split(),
        );
        for layer in (0..layers).rev() {
            let (start, width) = (self.starts[layer], self.widths[layer]);
            let reads = start + width;
            let inputs = total - reads;
            // Through ReLU, into the batch-normalised values.
            let grad = &mut self.pre_grad;
            grad.resize(rows * width, 0.0);
            for ((out, line), grads) in grad
                .chunks_exact_mut(width)
                .zip(self.hidden.chunks_exact(total))
                .zip(self.hidden_grad.chunks_exact(produced))
            {
                for ((out, value), grad) in out
                    .iter_mut()
                    .zip(&line[start..reads])
                    .zip(&grads[start..reads])
                {
                    let open = if *value > 0.0 { 1.0 } else { 0.0 };
                    *out = grad * open;
                }
            }
            // Batch normalisation: dβ = Σ dy, dγ = Σ dy·x̂,
            // dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)).
            let normalised = &self.normalised[layer];
            let beta_grad = column_sums(grad, width);
            let mut gamma_grad = vec![0.0f32; width];
            for (dy, x) in grad.chunks_exact(width).zip(normalised.chunks_exact(width)) {
                for ((sum, dy), x) in gamma_grad.iter_mut().zip(dy).zip(x) {
                    *sum += dy * x;
                }
            }
            let count = rows as f32;
            let gamma = &head[4 * layer + 2].value;
            let scale: Vec<f32> = gamma
                .iter()
                .zip(&self.inverse[layer])
                .map(|(gamma, inverse)| gamma * inverse)
                .collect();
            let mean_dy: Vec<f32> = beta_grad.iter().map(|sum| sum / count).collect();
            let mean_dy_x: Vec<f32> = gamma_grad.iter().map(|sum| sum / count).collect();
            for (dy, x) in grad
                .chunks_exact_mut(width)
                .zip(normalised.chunks_exact(width))
            {
                for ((((dy, x), scale), mean_dy), mean_dy_x) in dy
                    .iter_mut()
                    .zip(x)
                    .zip(&scale)
                    .zip(&mean_dy)
                    .zip(&mean_dy_x)
                {
                    *dy = scale * (*dy - mean_dy - x * mean_dy_x);
                }
            }
            head[4 * layer + 2].grad = gamma_grad;
            head[4 * layer + 3].grad = beta_grad;
            head[4 * layer + 1].grad.fill(0.0);
            product_into(
                &mut head[4 * layer].grad,
                (width, inputs, rows),
                (grad, 1, width),
                (&self.hidden[reads..], total, 1),
                false,
                split(),
            );
            if layer > 0 {
                // The earlier layers' outputs this layer read: the first columns of its input.
                let earlier = produced - reads;
                product_strided(
                    (&mut self.hidden_grad[reads..], produced),
                    (rows, earlier, width),
                    (grad, width, 1),
                    (&head[4 * layer].value, inputs, 1),
                    true,
                    split(),
                );
            }
        }
    }

    /// One Adam step along the gradients of the last [`Self::backward`].
    pub(crate) fn step(&mut self) {
        self.params.step();
    }

    /// Each parameter's variable with its gradient from the last backward pass.
    #[cfg(test)]
    pub(crate) fn gradients(&self) -> Vec<(&Var, &[f32])> {
        self.params.gradients()
    }

    /// Copies the weights into the generator's parameters.
    pub(crate) fn store(&self) -> Result<()> {
        self.params.store()
    }
}

/// What one critic pass keeps for its backward pass.
#[derive(Default)]
pub(crate) struct Pass {
    samples: usize,
    /// Per hidden layer its gate: the LeakyReLU's slope (1 or the negative slope) times the
    /// dropout mask, so that the layer's output is its pre-activation times the gate.
    gates: Vec<Vec<f32>>,
    /// Per hidden layer its output.
    outputs: Vec<Vec<f32>>,
    /// One score per sample.
    pub(crate) scores: Vec<f32>,
}

/// The PacGAN critic: `Linear → LeakyReLU → Dropout` layers and a linear output of one score.
pub(crate) struct HostCritic {
    /// Per hidden layer its weight and bias; then the output weight and bias.
    params: Params,
    input_width: usize,
    widths: Vec<usize>,
    slope: f32,
    keep: f64,
    grad: Vec<f32>,
    other_grad: Vec<f32>,
}

impl HostCritic {
    /// Host copies of a critic's layers; it reads `input_width` values per (packed) sample.
    pub(crate) fn new(
        hidden: &[Linear],
        output: &Linear,
        input_width: usize,
        slope: f64,
        dropout: f64,
        config: AdamConfig,
    ) -> Result<HostCritic> {
        let mut vars = Vec::new();
        for layer in hidden {
            vars.extend([&layer.weight, &layer.bias]);
        }
        vars.extend([&output.weight, &output.bias]);
        Ok(HostCritic {
            params: Params::new(&vars, config)?,
            input_width,
            widths: hidden.iter().map(|layer| layer.bias.elem_count()).collect(),
            slope: slope as f32,
            keep: 1.0 - dropout,
            grad: Vec::new(),
            other_grad: Vec::new(),
        })
    }

    /// Scores `samples` packed samples (`input: [samples, input_width]`) into `pass.scores`,
    /// with dropout masks drawn from `rng` (one uniform per hidden unit and sample, layer by
    /// layer, before any layer runs).
    pub(crate) fn forward(&self, pass: &mut Pass, input: &[f32], samples: usize, rng: &mut Bulk) {
        let layers = self.widths.len();
        pass.samples = samples;
        pass.gates.resize_with(layers, Vec::new);
        pass.outputs.resize_with(layers, Vec::new);
        let scale = (1.0 / self.keep) as f32;
        for (gate, &width) in pass.gates.iter_mut().zip(&self.widths) {
            gate.resize(samples * width, 0.0);
            fill_uniform(rng, gate);
            for value in gate.iter_mut() {
                let kept = f64::from(*value) < self.keep;
                *value = if kept { scale } else { 0.0 };
            }
        }
        let params = &self.params.params;
        for layer in 0..layers {
            let (width, inputs) = (
                self.widths[layer],
                layer_inputs(&self.widths, self.input_width, layer),
            );
            let (done, rest) = pass.outputs.split_at_mut(layer);
            let source = if layer == 0 { input } else { &done[layer - 1] };
            let out = &mut rest[0];
            out.resize(samples * width, 0.0);
            product_into(
                out,
                (samples, width, inputs),
                (source, inputs, 1),
                (&params[2 * layer].value, 1, inputs),
                false,
                split(),
            );
            add_to_rows(out, &params[2 * layer + 1].value);
            for (value, gate) in out.iter_mut().zip(pass.gates[layer].iter_mut()) {
                let slope = if *value < 0.0 { self.slope } else { 1.0 };
                *gate *= slope;
                *value *= *gate;
            }
        }
        let (weight, bias) = (&params[2 * layers].value, params[2 * layers + 1].value[0]);
        let last = &pass.outputs[layers - 1];
        pass.scores.clear();
        pass.scores.extend(
            last.chunks_exact(weight.len())
                .map(|line| line.iter().zip(weight).map(|(x, w)| x * w).sum::<f32>() + bias),
        );
    }

    /// Back from the gradient of the scores of `pass` (which read `input`): the weights'
    /// gradients when `weights` (added to those held when `accumulate`), and the input's
    /// gradient into `input_grad` when given.
    pub(crate) fn backward(
        &mut self,
        pass: &Pass,
        input: &[f32],
        score_grad: &[f32],
        weights: bool,
        accumulate: bool,
        input_grad: Option<&mut Vec<f32>>,
    ) {
        let layers = self.widths.len();
        let samples = pass.samples;
        let params = &mut self.params.params;
        let last_width = self.widths[layers - 1];
        if weights {
            let last = &pass.outputs[layers - 1];
            let (weight_grad, rest) = params[2 * layers..].split_at_mut(1);
            if !accumulate {
                weight_grad[0].grad.fill(0.0);
                rest[0].grad.fill(0.0);
            }
            for (line, ds) in last.chunks_exact(last_width).zip(score_grad) {
                for (grad, x) in weight_grad[0].grad.iter_mut().zip(line) {
                    *grad += ds * x;
                }
            }
            rest[0].grad[0] += score_grad.iter().sum::<f32>();
        }
        let grad = &mut self.grad;
        grad.resize(samples * last_width, 0.0);
        let output_weight = &params[2 * layers].value;
        for (line, ds) in grad.chunks_exact_mut(last_width).zip(score_grad) {
            for (value, w) in line.iter_mut().zip(output_weight) {
                *value = ds * w;
            }
        }
        let mut input_grad = input_grad;
        for layer in (0..layers).rev() {
            let (width, inputs) = (
                self.widths[layer],
                layer_inputs(&self.widths, self.input_width, layer),
            );
            for (value, gate) in grad.iter_mut().zip(&pass.gates[layer]) {
                *value *= gate;
            }
            if weights {
                let source = if layer == 0 {
                    input
                } else {
                    &pass.outputs[layer - 1]
                };
                product_into(
                    &mut params[2 * layer].grad,
                    (width, inputs, samples),
                    (grad, 1, width),
                    (source, inputs, 1),
                    accumulate,
                    split(),
                );
                let sums = column_sums(grad, width);
                let bias = &mut params[2 * layer + 1].grad;
                if accumulate {
                    bias.iter_mut().zip(&sums).for_each(|(b, s)| *b += s);
                } else {
                    *bias = sums;
                }
            }
            let target = if layer > 0 {
                &mut self.other_grad
            } else if let Some(out) = input_grad.as_deref_mut() {
                out
            } else {
                break;
            };
            target.resize(samples * inputs, 0.0);
            product_into(
                target,
                (samples, inputs, width),
                (grad, width, 1),
                (&params[2 * layer].value, inputs, 1),
                false,
                split(),
            );
            if layer > 0 {
                std::mem::swap(grad, &mut self.other_grad);
            }
        }
    }

    /// The WGAN-GP penalty `weight · mean((‖∇ₓD(x)‖ − 1)²)` at `samples` packed samples `input`
    /// (dropout masks drawn from `rng`), adding its gradient with respect to the weights to
    /// those held.
    ///
    /// Every gate is constant almost everywhere, so the input gradient is the chain
    /// `((w_out ⊙ g_L) W_L ⊙ g_{L−1}) … W_1`, whose derivative with respect to each weight
    /// matrix is first-order.
    pub(crate) fn add_penalty(
        &mut self,
        pass: &mut Pass,
        input: &[f32],
        samples: usize,
        weight: f64,
        rng: &mut Bulk,
    ) -> f64 {
        self.forward(pass, input, samples, rng);
        let layers = self.widths.len();
        let params = &mut self.params.params;
        // The chain's partial products u_k (one per hidden layer) replace the pass's outputs,
        // which the penalty does not need.
        let chain = &mut pass.outputs;
        let output_weight = &params[2 * layers].value;
        let last_width = self.widths[layers - 1];
        for ((value, gate), column) in chain[layers - 1]
            .iter_mut()
            .zip(&pass.gates[layers - 1])
            .zip((0..last_width).cycle())
        {
            *value = output_weight[column] * gate;
        }
        let gradient = &mut self.grad;
        for layer in (0..layers).rev() {
            let (width, inputs) = (
                self.widths[layer],
                layer_inputs(&self.widths, self.input_width, layer),
            );
            let (earlier, rest) = chain.split_at_mut(layer);
            let target = if layer > 0 {
                &mut earlier[layer - 1]
            } else {
                &mut *gradient
            };
            target.resize(samples * inputs, 0.0);
            product_into(
                target,
                (samples, inputs, width),
                (&rest[0], width, 1),
                (&params[2 * layer].value, inputs, 1),
                false,
                split(),
            );
            if layer > 0 {
                for (value, gate) in target.iter_mut().zip(&pass.gates[layer - 1]) {
                    *value *= gate;
                }
            }
        }
        // d/dg of weight · mean((‖g‖ − 1)²) is 2 · weight / samples · (‖g‖ − 1) / ‖g‖ · g.
        let mut total = 0.0f64;
        for line in gradient.chunks_exact_mut(self.input_width) {
            let norm = (line.iter().map(|g| g * g).sum::<f32>() + 1e-12).sqrt();
            total += f64::from((norm - 1.0) * (norm - 1.0));
            let factor = (2.0 * weight / samples as f64) as f32 * (norm - 1.0) / norm;
            line.iter_mut().for_each(|g| *g *= factor);
        }
        let mut upstream = std::mem::take(gradient);
        for layer in 0..layers {
            let (width, inputs) = (
                self.widths[layer],
                layer_inputs(&self.widths, self.input_width, layer),
            );
            let partial = &chain[layer];
            product_into(
                &mut params[2 * layer].grad,
                (width, inputs, samples),
                (partial, 1, width),
                (&upstream, inputs, 1),
                true,
                split(),
            );
            let down = &mut self.other_grad;
            down.resize(samples * width, 0.0);
            product_into(
                down,
                (samples, width, inputs),
                (&upstream, inputs, 1),
                (&params[2 * layer].value, 1, inputs),
                false,
                split(),
            );
            for (value, gate) in down.iter_mut().zip(&pass.gates[layer]) {
                *value *= gate;
            }
            std::mem::swap(&mut upstream, down);
        }
        // `upstream` now holds the gradient of w_out ⊙ g_L, whose gate is already applied.
        let output_grad = &mut params[2 * layers].grad;
        for line in upstream.chunks_exact(last_width) {
            for (grad, value) in output_grad.iter_mut().zip(line) {
                *grad += value;
            }
        }
        self.grad = upstream;
        weight * total / samples as f64
    }

    /// One Adam step along the gradients held.
    pub(crate) fn step(&mut self) {
        self.params.step();
    }

    /// Each parameter's variable with its gradient held.
    #[cfg(test)]
    pub(crate) fn gradients(&self) -> Vec<(&Var, &[f32])> {
        self.params.gradients()
    }

    /// Copies the weights into the critic's parameters.
    pub(crate) fn store(&self) -> Result<()> {
        self.params.store()
    }
}

/// Fills `out` with the interpolates `fake + (real − fake) · α` of the gradient penalty, one
/// `α` drawn from `rng` per `group` consecutive values (a packed critic sample), as
/// [`crate::gan::loss::interpolates`] draws them.
pub(crate) fn interpolate(
    out: &mut Vec<f32>,
    real: &[f32],
    fake: &[f32],
    group: usize,
    rng: &mut Stream,
) {
    out.resize(real.len(), 0.0);
    for ((out, real), fake) in out
        .chunks_exact_mut(group)
        .zip(real.chunks_exact(group))
        .zip(fake.chunks_exact(group))
    {
        let alpha = rng.random::<f32>();
        for ((out, real), fake) in out.iter_mut().zip(real).zip(fake) {
            *out = fake + (real - fake) * alpha;
        }
    }
}

/// The width of hidden layer `layer`'s input in a critic with hidden `widths`.
fn layer_inputs(widths: &[usize], input_width: usize, layer: usize) -> usize {
    if layer == 0 {
        input_width
    } else {
        widths[layer - 1]
    }
}
