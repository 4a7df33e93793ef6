//! Seeded randomness.
//!
//! candle's CPU generator cannot be seeded, so synth never uses it: every random draw comes from
//! a ChaCha stream derived from one master seed and a purpose name. Streams for different
//! purposes are independent, so adding a draw in one place does not shift the numbers drawn in
//! another, and the same seed on the same machine gives the same model and the same rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use sha2::{Digest, Sha256};

/// The generator behind every stream.
pub type Stream = ChaCha8Rng;

/// A faster generator for the bulk draws of training and generation (input noise, Gumbel
/// noise, dropout masks, drawn categories): xoshiro256++, seeded like a [`Stream`]. It
/// takes half the time of [`Stream`] per normal draw, and a fit makes over a hundred
/// million of them.
pub type Bulk = Xoshiro256PlusPlus;

/// The purposes that own a stream each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Initial network weights.
    Init,
    /// Generator noise `z`.
    Noise,
    /// Conditional vectors and the categories they pick.
    Condition,
    /// Real rows drawn for a training batch.
    Rows,
    /// Critic dropout masks.
    Dropout,
    /// Interpolation weights of the gradient penalty.
    Penalty,
    /// Gumbel noise of the discrete outputs.
    Gumbel,
    /// Mixture fits and the choice of rows they are fitted on.
    Mixture,
    /// Mode choice while encoding continuous values.
    Encode,
    /// Splits and other data-level choices.
    Split,
    /// Generation of synthetic rows.
    Generate,
    /// The rows drawn to choose the epoch a fit keeps.
    Select,
}

impl Purpose {
    fn name(self) -> &'static str {
        match self {
            Purpose::Init => "init",
            Purpose::Noise => "noise",
            Purpose::Condition => "condition",
            Purpose::Rows => "rows",
            Purpose::Dropout => "dropout",
            Purpose::Penalty => "penalty",
            Purpose::Gumbel => "gumbel",
            Purpose::Mixture => "mixture",
            Purpose::Encode => "encode",
            Purpose::Split => "split",
            Purpose::Generate => "generate",
            Purpose::Select => "select",
        }
    }
}

/// Returns the stream for `purpose` under the master `seed`.
///
/// ```
/// use rand::Rng;
/// use synth::rng::{stream, Purpose};
/// let a: u64 = stream(7, Purpose::Noise).random();
/// let b: u64 = stream(7, Purpose::Noise).random();
/// assert_eq!(a, b);
/// ```
pub fn stream(seed: u64, purpose: Purpose) -> Stream {
    substream(seed, purpose, 0)
}

/// Returns stream number `index` for `purpose`, for work split into independent parts
/// (one mixture per column, say).
pub fn substream(seed: u64, purpose: Purpose, index: u64) -> Stream {
    Stream::from_seed(digest(seed, purpose, index))
}

/// The [`Bulk`] generator for `purpose` under `seed`.
pub fn bulk(seed: u64, purpose: Purpose) -> Bulk {
    bulk_substream(seed, purpose, 0)
}

/// The [`Bulk`] generator of sub-stream `index` for `purpose` under `seed`.
pub fn bulk_substream(seed: u64, purpose: Purpose, index: u64) -> Bulk {
    Bulk::from_seed(digest(seed, purpose, index))
}

fn digest(seed: u64, purpose: Purpose, index: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(purpose.name().as_bytes());
    hasher.update(index.to_le_bytes());
    hasher.finalize().into()
}

/// Draws a seed for a run that was given none.
pub fn fresh_seed() -> u64 {
    rand::rng().random::<u64>() >> 11
}

/// Fills `out` with standard normal draws.
pub fn fill_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for value in out {
        *value = StandardNormal.sample(rng);
    }
}

/// Fills `out` with uniform draws in `[0, 1)`.
pub fn fill_uniform<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    for value in out {
        *value = rng.random::<f32>();
    }
}

/// Returns one standard Gumbel draw, `-ln(e)` for a standard exponential draw `e` (which
/// is `-ln(u)` for a uniform `u`, drawn here without a logarithm), kept off 0.
pub fn gumbel<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    let exponential: f32 = Exp1.sample(rng);
    -exponential.max(1e-30).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_by_purpose_and_index() {
        let a: u64 = stream(1, Purpose::Noise).random();
        let b: u64 = stream(1, Purpose::Dropout).random();
        let c: u64 = substream(1, Purpose::Noise, 1).random();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    /// Gumbel draws are finite, with the standard Gumbel's mean (the Euler–Mascheroni
    /// constant) and variance (π²/6).
    #[test]
    fn gumbel_draws_are_finite_and_standard() {
        let mut rng = stream(3, Purpose::Gumbel);
        let draws: Vec<f64> = (0..200_000).map(|_| f64::from(gumbel(&mut rng))).collect();
        assert!(draws.iter().all(|value| value.is_finite()));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance =
            draws.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / draws.len() as f64;
        // Standard errors: √(π²/6 / n) ≈ 0.003 for the mean, about 0.01 for the variance.
        assert!((mean - 0.577_215_66).abs() < 0.015, "mean {mean}");
        let expected = std::f64::consts::PI.powi(2) / 6.0;
        assert!((variance - expected).abs() < 0.05, "variance {variance}");
    }
}
