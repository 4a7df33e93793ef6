//! The adversarial losses every GAN in synth trains with.
//!
//! - non-saturating (Goodfellow et al. 2014): the discriminator minimises
//!   `softplus(−D(real)) + softplus(D(fake))`, the generator `softplus(−D(fake))`;
//! - Wasserstein (Arjovsky et al. 2017): the critic minimises `D(fake) − D(real)`, the
//!   generator `−D(fake)`; with the gradient penalty of Gulrajani et al. 2017 on interpolates
//!   between real and fake samples;
//! - feature matching (Salimans et al. 2016): the generator matches the mean of the
//!   discriminator's features on real and fake samples.
//!
//! Scores and features are tensors of any shape whose first dimension is the sample; losses are
//! means over samples.

use candle_core::{D, Tensor};
use rand::Rng;

use crate::error::Result;
use crate::rng::Stream;

/// Which adversarial game a model plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The original GAN game with the non-saturating generator loss; scores are logits.
    NonSaturating,
    /// The Wasserstein game; scores are unbounded critic values.
    Wasserstein,
}

/// `log(1 + eˣ)`, computed without overflow.
pub fn softplus(xs: &Tensor) -> Result<Tensor> {
    Ok((xs.relu()? + (xs.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

/// The critic's (or discriminator's) loss from its scores of real and fake samples.
pub fn critic_loss(objective: Objective, real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    Ok(match objective {
        Objective::NonSaturating => {
            (softplus(&real.neg()?)?.mean_all()? + softplus(fake)?.mean_all()?)?
        }
        Objective::Wasserstein => (fake.mean_all()? - real.mean_all()?)?,
    })
}

/// The generator's loss from the critic's scores of its samples.
pub fn generator_loss(objective: Objective, fake: &Tensor) -> Result<Tensor> {
    Ok(match objective {
        Objective::NonSaturating => softplus(&fake.neg()?)?.mean_all()?,
        Objective::Wasserstein => fake.mean_all()?.neg()?,
    })
}

/// Interpolates `α real + (1 − α) fake` between detached samples, with one `α` drawn per group
/// of `group` consecutive rows (a packed critic sample, or one image's rows).
///
/// # Shapes
/// `real, fake: [n, …]` with `n` a multiple of `group` → `[n, …]`.
pub fn interpolates(
    real: &Tensor,
    fake: &Tensor,
    group: usize,
    rng: &mut Stream,
) -> Result<Tensor> {
    let rows = real.dim(0)?;
    let alphas: Vec<f32> = (0..rows / group)
        .flat_map(|_| std::iter::repeat_n(rng.random::<f32>(), group))
        .collect();
    let mut shape = vec![1; real.rank()];
    shape[0] = rows;
    let alpha = Tensor::from_vec(alphas, shape, real.device())?.to_dtype(real.dtype())?;
    let (real, fake) = (real.detach(), fake.detach());
    Ok((&fake + real.sub(&fake)?.broadcast_mul(&alpha)?)?)
}

/// The WGAN-GP penalty `weight · mean((‖g‖ − 1)²)` from the critic's input gradients, one row
/// per critic sample.
///
/// # Shapes
/// `gradient: [samples, …]` → scalar.
pub fn gradient_penalty(gradient: &Tensor, weight: f64) -> Result<Tensor> {
    let samples = gradient.dim(0)?;
    let flat = gradient.reshape((samples, ()))?;
    let norms = (flat.sqr()?.sum(D::Minus1)? + 1e-12)?.sqrt()?;
    Ok(((norms - 1.0)?.sqr()?.mean_all()? * weight)?)
}

/// Feature matching: the squared distance between the mean features of real and fake samples.
///
/// # Shapes
/// `real: [n, d]`, `fake: [m, d]` → scalar.
pub fn feature_matching(real: &Tensor, fake: &Tensor) -> Result<Tensor> {
    let difference = (real.detach().mean(0)? - fake.mean(0)?)?;
    Ok(difference.sqr()?.sum_all()?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn values(tensor: &Tensor) -> f64 {
        tensor.to_scalar::<f64>().unwrap()
    }

    #[test]
    fn losses_match_their_formulas() {
        let real = Tensor::new(&[2.0f64, -1.0], &Device::Cpu).unwrap();
        let fake = Tensor::new(&[0.5f64, -3.0], &Device::Cpu).unwrap();
        let sp = |x: f64| (1.0 + x.exp()).ln();
        let ns = values(&critic_loss(Objective::NonSaturating, &real, &fake).unwrap());
        assert!((ns - ((sp(-2.0) + sp(1.0)) / 2.0 + (sp(0.5) + sp(-3.0)) / 2.0)).abs() < 1e-12);
        let w = values(&critic_loss(Objective::Wasserstein, &real, &fake).unwrap());
        assert!((w - (-1.25 - 0.5)).abs() < 1e-12);
        let g = values(&generator_loss(Objective::NonSaturating, &fake).unwrap());
        assert!((g - (sp(-0.5) + sp(3.0)) / 2.0).abs() < 1e-12);
        // Large logits do not overflow.
        let big = Tensor::new(&[800.0f64, -800.0], &Device::Cpu).unwrap();
        assert!(values(&softplus(&big).unwrap().sum_all().unwrap()).is_finite());
    }

    #[test]
    fn penalty_and_feature_matching() {
        // Rows with norms 1 and 3: mean((0)² + (2)²) = 2.
        let gradient = Tensor::new(&[[0.6f64, 0.8], [3.0, 0.0]], &Device::Cpu).unwrap();
        assert!((values(&gradient_penalty(&gradient, 10.0).unwrap()) - 20.0).abs() < 1e-9);
        let real = Tensor::new(&[[1.0f64, 0.0], [3.0, 2.0]], &Device::Cpu).unwrap();
        let fake = Tensor::new(&[[0.0f64, 0.0]], &Device::Cpu).unwrap();
        assert!((values(&feature_matching(&real, &fake).unwrap()) - 5.0).abs() < 1e-12);
    }
}
