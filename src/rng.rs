//! Seeded randomness.
//!
//! candle's CPU generator cannot be seeded, so synth never uses it: every random draw comes from
//! a ChaCha stream derived from one master seed and a purpose name. Streams for different
//! purposes are independent, so adding a draw in one place does not shift the numbers drawn in
//! another, and the same seed on the same machine gives the same model and the same rows.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
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
///
/// Generation makes 128 of them per row, so they are drawn by a ziggurat in single
/// precision built for filling buffers (see [`Ziggurat`]): every 32-bit word is a
/// candidate, two per 64-bit draw, and a first pass over a block of words keeps the
/// candidates inside their layer's inner rectangle, sixteen at a time where the CPU has
/// AVX-512. The 1.5% that fall outside are settled in a second pass, each with more draws
/// from the same stream. rand_distr's normal samples in double precision from one 64-bit
/// draw each, at over twice the cost.
pub fn fill_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    let table = Ziggurat::get();
    let mut words = [0u32; Ziggurat::BLOCK];
    for part in out.chunks_mut(Ziggurat::BLOCK) {
        for pair in words[..part.len().next_multiple_of(2)].chunks_exact_mut(2) {
            let bits = rng.next_u64();
            pair[0] = bits as u32;
            pair[1] = (bits >> 32) as u32;
        }
        let words = &words[..part.len()];
        let outside = table.candidates(words, part);
        for (index, bits) in outside.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                let at = index * 64 + bits.trailing_zeros() as usize;
                part[at] = table.settle(words[at], rng);
                bits &= bits - 1;
            }
        }
    }
}

/// The tables of a 256-layer ziggurat for the standard normal (Marsaglia and Tsang, 2000).
///
/// The area under `f(x) = exp(-x²/2)` for `x ≥ 0` is cut into 256 horizontal layers of
/// equal area `V`. Layer `i` is `edges[i]` wide and lies between the heights
/// `heights[i]` and `heights[i + 1]`; layer 0 is the base, whose area includes the tail
/// beyond `R`. A word picks a layer (8 bits), a sign (1 bit) and a uniform point
/// across the layer (23 bits); a point left of the next layer's edge lies under the
/// curve and is accepted at once.
pub struct Ziggurat {
    edges: [f32; Self::LAYERS + 1],
    heights: [f32; Self::LAYERS + 1],
}

impl Ziggurat {
    const LAYERS: usize = 256;
    /// Where the tail starts.
    const TAIL: f64 = 3.654_152_885_361_009;
    /// The area of each layer.
    const AREA: f64 = 0.004_928_673_233_99;

    /// The tables, computed on first use.
    pub fn get() -> &'static Ziggurat {
        static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
        TABLE.get_or_init(Ziggurat::new)
    }

    fn new() -> Ziggurat {
        let density = |x: f64| (-0.5 * x * x).exp();
        let mut edges = [0.0f64; Self::LAYERS + 1];
        edges[0] = Self::AREA / density(Self::TAIL);
        edges[1] = Self::TAIL;
        // Each layer's top is where the next one's edge meets the curve.
        for layer in 1..Self::LAYERS - 1 {
            let top = Self::AREA / edges[layer] + density(edges[layer]);
            edges[layer + 1] = (-2.0 * top.ln()).sqrt();
        }
        Ziggurat {
            edges: edges.map(|edge| edge as f32),
            heights: edges.map(|edge| density(edge) as f32),
        }
    }

    /// Words per block of [`fill_normal`].
    const BLOCK: usize = 256;

    /// Writes the candidate of each word to `out`, and returns the words whose point fell
    /// outside its inner rectangle, one bit each.
    fn candidates(&self, words: &[u32], out: &mut [f32]) -> [u64; Self::BLOCK / 64] {
        let mut outside = [0u64; Self::BLOCK / 64];
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, and `words` and `out` have the same length.
            done = unsafe { self.candidates_avx512(words, out, &mut outside) };
        }
        for (at, (value, &word)) in out.iter_mut().zip(words).enumerate().skip(done) {
            let (candidate, inner) = self.candidate(word);
            *value = candidate;
            outside[at / 64] |= u64::from(!inner) << (at % 64);
        }
        outside
    }

    /// [`Ziggurat::candidates`] for the words in whole groups of sixteen, with the same
    /// arithmetic; returns how many words it did.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `out` must be as long as `words`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn candidates_avx512(
        &self,
        words: &[u32],
        out: &mut [f32],
        outside: &mut [u64; Self::BLOCK / 64],
    ) -> usize {
        use std::arch::x86_64::*;
        let whole = words.len() / 16 * 16;
        let layers = _mm512_set1_epi32(0xff);
        let signs = _mm512_set1_epi32(0x100);
        let one = _mm512_set1_epi32(1);
        let unit = _mm512_set1_ps(1.0 / (1u32 << 23) as f32);
        for at in (0..whole).step_by(16) {
            // SAFETY: `at + 16 <= words.len() == out.len()`, and every layer index is at
            // most 255, so it and the next one are inside the 257 edges.
            unsafe {
                let word = _mm512_loadu_si512(words.as_ptr().add(at).cast());
                let layer = _mm512_and_si512(word, layers);
                let edge = _mm512_i32gather_ps::<4>(layer, self.edges.as_ptr());
                let next =
                    _mm512_i32gather_ps::<4>(_mm512_add_epi32(layer, one), self.edges.as_ptr());
                let uniform = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32::<9>(word)), unit);
                let magnitude = _mm512_mul_ps(uniform, edge);
                let sign = _mm512_slli_epi32::<23>(_mm512_and_si512(word, signs));
                let value = _mm512_or_si512(_mm512_castps_si512(magnitude), sign);
                _mm512_storeu_ps(out.as_mut_ptr().add(at), _mm512_castsi512_ps(value));
                let inner = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(magnitude, next);
                outside[at / 64] |= u64::from(!inner) << (at % 64);
            }
        }
        whole
    }

    /// The draw a word makes if its point is under the curve, and whether it is inside
    /// the layer's inner rectangle (then certainly under the curve).
    #[inline(always)]
    fn candidate(&self, word: u32) -> (f32, bool) {
        let layer = (word & 0xff) as usize;
        let magnitude = (word >> 9) as f32 * (1.0 / (1u32 << 23) as f32) * self.edges[layer];
        // The sign bit set without a branch, which would guess wrong half the time.
        let value = f32::from_bits(magnitude.to_bits() | ((word & 0x100) << 23));
        (value, magnitude < self.edges[layer + 1])
    }

    /// A draw that starts from a word whose point fell outside its inner rectangle.
    #[cold]
    fn settle<R: Rng + ?Sized>(&self, mut word: u32, rng: &mut R) -> f32 {
        loop {
            let (value, inner) = self.candidate(word);
            if inner {
                return value;
            }
            let layer = (word & 0xff) as usize;
            if layer == 0 {
                return self.tail(rng).copysign(value);
            }
            // Between the layer's edge and the next one's: accept under the curve.
            let (bottom, top) = (self.heights[layer], self.heights[layer + 1]);
            let height = bottom + rng.random::<f32>() * (top - bottom);
            if height < (-0.5 * value * value).exp() {
                return value;
            }
            word = rng.next_u32();
        }
    }

    /// A draw from the normal's tail beyond [`Ziggurat::TAIL`] (Marsaglia, 1964).
    fn tail<R: Rng + ?Sized>(&self, rng: &mut R) -> f32 {
        loop {
            let beyond = -(1.0 - rng.random::<f64>()).ln() / Self::TAIL;
            let height = -(1.0 - rng.random::<f64>()).ln();
            if 2.0 * height >= beyond * beyond {
                return (Self::TAIL + beyond) as f32;
            }
        }
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

    /// The ziggurat's draws follow the standard normal: moments, the Kolmogorov–Smirnov
    /// distance to its distribution function, and the shares beyond 2 and in the tail that
    /// the ziggurat draws separately.
    #[test]
    fn normal_draws_are_standard() {
        use statrs::distribution::{ContinuousCDF, Normal};
        let mut rng = bulk(5, Purpose::Noise);
        let count = 1_000_000;
        let mut draws = vec![0.0f32; count];
        // Odd lengths leave a word of a draw unused; both paths must give normals.
        for part in draws.chunks_mut(1_001) {
            fill_normal(&mut rng, part);
        }
        let mut draws: Vec<f64> = draws.into_iter().map(f64::from).collect();
        let mean = draws.iter().sum::<f64>() / count as f64;
        let variance = draws.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count as f64;
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.01, "variance {variance}");
        let share = |limit: f64| {
            draws.iter().filter(|value| value.abs() > limit).count() as f64 / count as f64
        };
        let normal = Normal::standard();
        for limit in [2.0, Ziggurat::TAIL] {
            let expected = 2.0 * (1.0 - normal.cdf(limit));
            let error = (expected / count as f64).sqrt();
            assert!(
                (share(limit) - expected).abs() < 5.0 * error,
                "share beyond {limit}: {} against {expected}",
                share(limit)
            );
        }
        draws.sort_by(f64::total_cmp);
        let distance = draws
            .iter()
            .enumerate()
            .map(|(rank, value)| {
                let cdf = normal.cdf(*value);
                (cdf - rank as f64 / count as f64)
                    .abs()
                    .max((cdf - (rank + 1) as f64 / count as f64).abs())
            })
            .fold(0.0, f64::max);
        // The 1% critical value is 1.63/√n.
        assert!(
            distance < 1.63 / (count as f64).sqrt(),
            "KS distance {distance}"
        );
    }
}
