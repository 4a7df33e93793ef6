//! Seeded randomness.
//!
//! candle's CPU generator cannot be seeded, so synth never uses it: every random draw comes from
//! a ChaCha stream derived from one master seed and a purpose name. Streams for different
//! purposes are independent, so adding a draw in one place does not shift the numbers drawn in
//! another, and the same seed on the same machine gives the same model and the same rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sha2::{Digest, Sha256};

/// The generator behind every stream.
pub type Stream = ChaCha8Rng;

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
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(purpose.name().as_bytes());
    hasher.update(index.to_le_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    Stream::from_seed(digest)
}

/// Draws a seed for a run that was given none.
pub fn fresh_seed() -> u64 {
    rand::rng().random::<u64>() >> 11
}

/// Fills `out` with standard normal draws.
pub fn fill_normal(rng: &mut Stream, out: &mut [f32]) {
    for value in out {
        *value = StandardNormal.sample(rng);
    }
}

/// Fills `out` with uniform draws in `[0, 1)`.
pub fn fill_uniform(rng: &mut Stream, out: &mut [f32]) {
    for value in out {
        *value = rng.random::<f32>();
    }
}

/// Returns one standard Gumbel draw, `-ln(-ln(u))`, with `u` kept off 0 and 1.
pub fn gumbel(rng: &mut Stream) -> f32 {
    let u = rng.random::<f32>().clamp(1e-10, 1.0 - 1e-7);
    -(-u.ln()).ln()
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

    #[test]
    fn gumbel_is_finite() {
        let mut rng = stream(3, Purpose::Gumbel);
        assert!((0..10_000).all(|_| gumbel(&mut rng).is_finite()));
    }
}
