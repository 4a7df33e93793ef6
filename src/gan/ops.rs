//! Fused operations on encoded rows, with their own backward passes.
//!
//! The generator's output is cut into many small spans (a tanh scalar and a softmax block per
//! continuous column, a softmax block per discrete one). Applied span by span, each activation
//! is a handful of tiny tensor ops; here every span is handled in one pass over the batch on
//! the CPU. [`activate`] and [`conditional_loss`] choose the fused op on the CPU and the
//! equivalent composition of standard ops on other devices; tests check that the two agree in
//! value and gradient.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, D, Layout, Shape, Tensor};

use crate::encode::layout::{Activation, Span};
use crate::error::Result;
use crate::gan::fused::{contiguous, with_host};

/// Applies each span's activation: `tanh` on scalars, `softmax(x / tau)` on one-hot blocks.
/// Adding Gumbel noise to the logits first makes this the Gumbel-softmax of CTGAN.
///
/// # Shapes
/// `logits: [n, data_dim]` → `[n, data_dim]`.
pub fn activate(logits: &Tensor, spans: &Arc<[Span]>, tau: f64) -> Result<Tensor> {
    if logits.device().is_cpu() && logits.dtype() == candle_core::DType::F32 {
        let op = SpanActivation {
            spans: spans.clone(),
            tau: tau as f32,
        };
        return Ok(logits.contiguous()?.apply_op1(op)?);
    }
    activate_composed(logits, spans, tau)
}

/// [`activate`] as a composition of standard tensor ops.
pub fn activate_composed(logits: &Tensor, spans: &[Span], tau: f64) -> Result<Tensor> {
    let parts = spans
        .iter()
        .map(|span| {
            let block = logits.narrow(1, span.offset, span.width)?;
            match span.activation {
                Activation::Tanh => block.tanh(),
                // `softmax_last_dim` is a fused op whose gradient candle does not propagate;
                // the composed `softmax` is differentiable.
                Activation::Softmax => {
                    candle_nn::ops::softmax(&block.affine(1.0 / tau, 0.0)?, D::Minus1)
                }
            }
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 1)?)
}

struct SpanActivation {
    spans: Arc<[Span]>,
    tau: f32,
}

impl CustomOp1 for SpanActivation {
    fn name(&self) -> &'static str {
        "span-activation"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(storage, layout)?;
        let (_, width) = layout.shape().dims2()?;
        let mut output = vec![0.0f32; input.len()];
        for (row_in, row_out) in input
            .chunks_exact(width)
            .zip(output.chunks_exact_mut(width))
        {
            activate_row(row_in, row_out, &self.spans, self.tau);
        }
        Ok((CpuStorage::F32(output), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (rows, width) = res.dims2()?;
        let mut grad_input = vec![0.0f32; rows * width];
        with_host(res, |outputs| {
            with_host(grad_res, |grads| {
                for ((y, g), out) in outputs
                    .chunks_exact(width)
                    .zip(grads.chunks_exact(width))
                    .zip(grad_input.chunks_exact_mut(width))
                {
                    activation_grad_row(y, g, out, &self.spans, self.tau);
                }
            })
        })??;
        Ok(Some(Tensor::from_vec(
            grad_input,
            (rows, width),
            res.device(),
        )?))
    }
}

/// Applies each span's activation to one row: `source` holds the logits, `target` receives
/// the activated values (both at least as wide as the spans reach).
pub(crate) fn activate_row(source: &[f32], target: &mut [f32], spans: &[Span], tau: f32) {
    for span in spans {
        let range = span.offset..span.offset + span.width;
        let (source, target) = (&source[range.clone()], &mut target[range]);
        match span.activation {
            Activation::Tanh => {
                for (out, x) in target.iter_mut().zip(source) {
                    *out = x.tanh();
                }
            }
            Activation::Softmax => softmax_into(source, tau, target),
        }
    }
}

/// The gradient of one row's logits from its activated values `y` and their gradient `g`.
pub(crate) fn activation_grad_row(y: &[f32], g: &[f32], out: &mut [f32], spans: &[Span], tau: f32) {
    for span in spans {
        let range = span.offset..span.offset + span.width;
        let (y, g, out) = (&y[range.clone()], &g[range.clone()], &mut out[range]);
        match span.activation {
            Activation::Tanh => {
                for ((out, y), g) in out.iter_mut().zip(y).zip(g) {
                    *out = g * (1.0 - y * y);
                }
            }
            Activation::Softmax => {
                let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                for ((out, y), g) in out.iter_mut().zip(y).zip(g) {
                    *out = y * (g - dot) / tau;
                }
            }
        }
    }
}

/// One row's cross-entropy of its conditioned span (raw logits) against the target slot.
pub(crate) fn conditional_loss_row(row: &[f32], target: &Target) -> f32 {
    let span = &row[target.offset..target.offset + target.width];
    let max = span.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_total = span.iter().map(|x| (x - max).exp()).sum::<f32>().ln() + max;
    log_total - span[target.slot]
}

/// Adds `scale` times the gradient of [`conditional_loss_row`] to `out`, a row of gradients
/// of the logits.
pub(crate) fn add_conditional_grad_row(row: &[f32], out: &mut [f32], target: &Target, scale: f32) {
    let range = target.offset..target.offset + target.width;
    let span = &row[range.clone()];
    let out = &mut out[range];
    let max = span.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = span.iter().map(|x| (x - max).exp()).sum();
    for (slot, (out, x)) in out.iter_mut().zip(span).enumerate() {
        let probability = (x - max).exp() / total;
        let one_hot = if slot == target.slot { 1.0 } else { 0.0 };
        *out += scale * (probability - one_hot);
    }
}

fn softmax_into(logits: &[f32], tau: f32, out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for (out, x) in out.iter_mut().zip(logits) {
        *out = ((x - max) / tau).exp();
        total += *out;
    }
    for out in out.iter_mut() {
        *out /= total;
    }
}

/// The category each row was conditioned on: a span of the encoded row and a slot within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Offset of the conditioned column's span in the encoded row.
    pub offset: usize,
    /// Its width.
    pub width: usize,
    /// The slot the row was conditioned on.
    pub slot: usize,
}

/// Mean cross-entropy of each row's conditioned span (raw logits) against the slot it was
/// conditioned on: CTGAN's conditional loss, which makes the generator honour the condition.
///
/// # Shapes
/// `logits: [n, data_dim]`, `targets: n entries` → scalar.
pub fn conditional_loss(logits: &Tensor, targets: &Arc<[Target]>) -> Result<Tensor> {
    if logits.device().is_cpu() && logits.dtype() == candle_core::DType::F32 {
        let op = ConditionalLoss {
            targets: targets.clone(),
        };
        return Ok(logits.contiguous()?.apply_op1(op)?);
    }
    conditional_loss_composed(logits, targets)
}

/// [`conditional_loss`] as a composition of standard tensor ops.
pub fn conditional_loss_composed(logits: &Tensor, targets: &[Target]) -> Result<Tensor> {
    let (rows, _) = logits.dims2()?;
    let mut spans: Vec<(usize, usize)> = targets.iter().map(|t| (t.offset, t.width)).collect();
    spans.sort_unstable();
    spans.dedup();
    let mut total = Tensor::zeros((), logits.dtype(), logits.device())?;
    for (offset, width) in spans {
        let mut picks = vec![0.0f32; rows * width];
        for (row, target) in targets.iter().enumerate() {
            if target.offset == offset {
                picks[row * width + target.slot] = 1.0;
            }
        }
        let picks =
            Tensor::from_vec(picks, (rows, width), logits.device())?.to_dtype(logits.dtype())?;
        let log_probs = candle_nn::ops::log_softmax(&logits.narrow(1, offset, width)?, D::Minus1)?;
        total = (total - (log_probs * picks)?.sum_all()?)?;
    }
    Ok((total / rows as f64)?)
}

struct ConditionalLoss {
    targets: Arc<[Target]>,
}

impl CustomOp1 for ConditionalLoss {
    fn name(&self) -> &'static str {
        "conditional-loss"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let input = contiguous(storage, layout)?;
        let (rows, width) = layout.shape().dims2()?;
        let mut total = 0.0f64;
        for (row, target) in input.chunks_exact(width).zip(self.targets.iter()) {
            total += f64::from(conditional_loss_row(row, target));
        }
        Ok((
            CpuStorage::F32(vec![(total / rows as f64) as f32]),
            Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (rows, width) = arg.dims2()?;
        let scale = grad_res
            .to_dtype(candle_core::DType::F32)?
            .to_scalar::<f32>()?
            / rows as f32;
        let mut grad = vec![0.0f32; rows * width];
        with_host(arg, |input| {
            for ((row, out), target) in input
                .chunks_exact(width)
                .zip(grad.chunks_exact_mut(width))
                .zip(self.targets.iter())
            {
                add_conditional_grad_row(row, out, target, scale);
            }
        })?;
        Ok(Some(Tensor::from_vec(grad, (rows, width), arg.device())?))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::Rng;

    use super::*;
    use crate::rng::{Purpose, stream};

    fn spans() -> Arc<[Span]> {
        crate::encode::layout::spans_of(&[
            (0, 1, Activation::Tanh),
            (1, 3, Activation::Softmax),
            (4, 2, Activation::Softmax),
            (6, 1, Activation::Tanh),
        ])
        .into()
    }

    fn random_logits(rows: usize) -> Var {
        let mut rng = stream(5, Purpose::Init);
        let values: Vec<f32> = (0..rows * 7).map(|_| rng.random_range(-3.0..3.0)).collect();
        Var::from_vec(values, (rows, 7), &Device::Cpu).unwrap()
    }

    fn assert_close(a: &Tensor, b: &Tensor) {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn fused_activation_matches_composed_in_value_and_gradient() {
        let logits = random_logits(5);
        let weights = Tensor::arange(0f32, 35.0, &Device::Cpu)
            .unwrap()
            .reshape((5, 7))
            .unwrap();
        let fused = activate(logits.as_tensor(), &spans(), 0.2).unwrap();
        let composed = activate_composed(logits.as_tensor(), &spans(), 0.2).unwrap();
        assert_close(&fused, &composed);
        let grad_of = |out: Tensor| {
            let grads = (out * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            grads.get(logits.as_tensor()).unwrap().clone()
        };
        assert_close(&grad_of(fused), &grad_of(composed));
    }

    #[test]
    fn fused_conditional_loss_matches_composed_in_value_and_gradient() {
        let logits = random_logits(4);
        let targets: Arc<[Target]> = [(1, 3, 0), (4, 2, 1), (1, 3, 2), (4, 2, 0)]
            .iter()
            .map(|&(offset, width, slot)| Target {
                offset,
                width,
                slot,
            })
            .collect();
        let fused = conditional_loss(logits.as_tensor(), &targets).unwrap();
        let composed = conditional_loss_composed(logits.as_tensor(), &targets).unwrap();
        assert_close(&fused, &composed);
        let grad_of = |out: Tensor| {
            out.affine(3.0, 0.0)
                .unwrap()
                .backward()
                .unwrap()
                .get(logits.as_tensor())
                .unwrap()
                .clone()
        };
        assert_close(&grad_of(fused), &grad_of(composed));
    }
}
