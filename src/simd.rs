//! Vector instructions for the element-wise loops.
//!
//! The crate is compiled for the baseline x86-64 instruction set, so that one binary runs on
//! any such CPU, and its loops are vectorised for SSE2 only. [`vectorized`] runs a closure
//! compiled a second time for AVX-512 or AVX2, whichever the CPU has, so the loops it inlines
//! use the wide registers. Rust never reassociates or fuses floating-point operations on its
//! own, so every variant computes the same bits.

/// Runs `work` compiled for the widest vector instructions the CPU has.
///
/// Only what is inlined into the recompiled caller uses the wide instructions, and the
/// compiler declines to inline a closure called from three variants unless told: mark the
/// closure `#[inline(always)]`, and so any function holding its loop.
#[inline(always)]
pub fn vectorized<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(simd) = pulp::x86::V4::try_new() {
            return simd.vectorize(work);
        }
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(work);
        }
    }
    work()
}

/// Replaces every value `x` with `exp(x)`, eight at a time (wide's polynomial, within a few
/// units in the last place; 0 below -87.3 and above 87.3).
pub fn exp_in_place(values: &mut [f32]) {
    map_by_eight(values, wide::f32x8::exp, f32::exp);
}

/// Replaces every value `x` with `tanh(x)`, eight at a time: `(1 - e) / (1 + e)` with
/// `e = exp(-2|x|)`, given the sign of `x`. Near 0 its error is about 1e-7 in absolute terms,
/// not relative ones.
pub fn tanh_in_place(values: &mut [f32]) {
    map_by_eight(
        values,
        |x| {
            let e = (x.abs() * wide::f32x8::splat(-2.0)).exp();
            ((wide::f32x8::ONE - e) / (wide::f32x8::ONE + e)).copysign(x)
        },
        f32::tanh,
    );
}

/// Applies `vector` to whole groups of eight values and `scalar` to the rest.
#[inline(always)]
fn map_by_eight(
    values: &mut [f32],
    vector: impl Fn(wide::f32x8) -> wide::f32x8,
    scalar: impl Fn(f32) -> f32,
) {
    vectorized(
        #[inline(always)]
        || {
            let (groups, rest) = values.as_chunks_mut::<8>();
            for group in groups {
                *group = vector(wide::f32x8::new(*group)).to_array();
            }
            rest.iter_mut().for_each(|value| *value = scalar(*value));
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector exponential and tanh agree with the standard library's to within a few
    /// units in the last place (tanh: in absolute terms near 0), on inputs that cover the
    /// ranges they are used on and the ragged tail.
    #[test]
    fn vector_functions_match_the_standard_ones() {
        let inputs: Vec<f32> = (0..2_003).map(|i| (i as f32 - 1_000.0) * 0.0173).collect();
        let mut exps = inputs.clone();
        exp_in_place(&mut exps);
        let mut tanhs = inputs.clone();
        tanh_in_place(&mut tanhs);
        for ((x, e), t) in inputs.iter().zip(&exps).zip(&tanhs) {
            assert!((e - x.exp()).abs() <= 4e-7 * x.exp(), "exp({x}) = {e}");
            assert!((t - x.tanh()).abs() <= 2e-7, "tanh({x}) = {t}");
        }
    }
}
