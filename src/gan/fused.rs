//! Fused CPU ops for the layers of the networks, each with its own backward pass.
//!
//! candle implements a broadcast bias add, and every step of a batch normalisation, as
//! separate ops whose backward passes reduce over the batch dimension with a strided loop;
//! for the batch sizes GANs train with, those reductions cost more than the matrix products.
//! These ops do the same arithmetic in single passes over contiguous rows.
//!
//! candle's backward pass of a matrix product computes the gradients of both operands, even
//! when one is a constant (a batch of real rows, or the critic's weights during the
//! generator's step); on wide tables those unused products are a sixth of a training step.
//! [`linear`] computes only the gradients it is asked for.
//!
//! On other devices (and for other dtypes) the ops fall back to compositions of standard ops;
//! tests check that both agree in value and gradient.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};
use gemm::Parallelism;

use crate::error::Result;

/// The f32 values of a contiguous CPU tensor, for the fused ops' forward passes.
pub(crate) fn contiguous<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [f32]> {
    let values = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => Err(candle_core::Error::Msg(
            "fused op needs contiguous inputs".into(),
        )),
    }
}

fn fused(xs: &Tensor) -> bool {
    xs.device().is_cpu() && xs.dtype() == DType::F32
}

fn host(tensor: &Tensor) -> candle_core::Result<Vec<f32>> {
    tensor.flatten_all()?.to_vec1::<f32>()
}

/// Runs `f` on a tensor's values as one row-major slice: borrowed when the tensor is a
/// contiguous `f32` tensor in host memory (the usual case in backward passes), copied
/// otherwise.
pub(crate) fn with_host<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    {
        let (storage, layout) = tensor.storage_and_layout();
        if let (candle_core::Storage::Cpu(CpuStorage::F32(values)), Some((start, end))) =
            (&*storage, layout.contiguous_offsets())
        {
            return Ok(f(&values[start..end]));
        }
    }
    Ok(f(&host(tensor)?))
}

/// Column sums of a row-major `[rows, width]` slice.
pub(crate) fn column_sums(values: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; width];
    for row in values.chunks_exact(width) {
        for (sum, value) in sums.iter_mut().zip(row) {
            *sum += value;
        }
    }
    sums
}

/// Which gradients a [`linear`] layer passes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearGrads {
    /// Gradients of the input and of the weights and bias.
    All,
    /// Only the weights and bias: the input is a constant.
    Weights,
    /// Only the input: the weights are constants.
    Input,
}

/// A fully connected layer, `xs Wᵀ + b`, that builds only the gradients `grads` asks for.
///
/// # Shapes
/// `xs: [n, in]`, `weight: [out, in]`, `bias: [out]` → `[n, out]`.
pub fn linear(xs: &Tensor, weight: &Tensor, bias: &Tensor, grads: LinearGrads) -> Result<Tensor> {
    if fused(xs) && fused(weight) && fused(bias) {
        let op = Linear { grads };
        return Ok(xs
            .contiguous()?
            .apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?);
    }
    let (xs, weight, bias) = match grads {
        LinearGrads::All => (xs.clone(), weight.clone(), bias.clone()),
        LinearGrads::Weights => (xs.detach(), weight.clone(), bias.clone()),
        LinearGrads::Input => (xs.clone(), weight.detach(), bias.detach()),
    };
    Ok(xs.matmul(&weight.t()?)?.broadcast_add(&bias)?)
}

struct Linear {
    grads: LinearGrads,
}

/// Whether a matrix product may split its rows over the compute threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// On the calling thread.
    No,
    /// Over the compute pool, when it has workers and the product is large enough.
    Pool,
}

/// The split this thread's products use (see [`crate::threads`]).
pub(crate) fn split() -> Split {
    if crate::threads::shared() {
        Split::Pool
    } else {
        Split::No
    }
}

/// Products smaller than this many multiply-adds stay on one thread: the hand-off would
/// cost more than the half saved.
const SPLIT_MIN_WORK: usize = 1 << 20;

/// `out[m × n] = a[m × k] · b[k × n]`, with each matrix given by its row and column strides.
fn product(
    out: &mut [f32],
    dims: (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
) {
    product_with(out, dims, a, b, split());
}

/// [`product`] with the threading chosen by the caller.
pub(crate) fn product_with(
    out: &mut [f32],
    dims: (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    split: Split,
) {
    product_into(out, dims, a, b, false, split);
}

/// [`product_with`] that adds the product to `out` when `accumulate`, instead of
/// overwriting it.
pub(crate) fn product_into(
    out: &mut [f32],
    dims: (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    accumulate: bool,
    split: Split,
) {
    product_strided((out, dims.1), dims, a, b, accumulate, split);
}

/// [`product_into`] writing an output whose rows are `out.1` values apart (a block of
/// columns of a wider matrix).
pub(crate) fn product_strided(
    (out, out_stride): (&mut [f32], usize),
    (m, n, k): (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    accumulate: bool,
    split: Split,
) {
    assert!(out_stride >= n, "product output rows overlap");
    assert!(
        m == 0 || n == 0 || out.len() >= (m - 1) * out_stride + n,
        "product output too small"
    );
    assert!(
        m == 0
            || n == 0
            || k == 0
            || (a.0.len() > (m - 1) * a.1 + (k - 1) * a.2
                && b.0.len() > (k - 1) * b.1 + (n - 1) * b.2),
        "product inputs too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    let parts = crate::threads::count();
    if split == Split::Pool && parts > 1 && m * n * k >= SPLIT_MIN_WORK {
        // Each part takes whole microkernel tiles (16 rows or columns) of the output: rows
        // when they divide more evenly than columns (a 100-row product splits 64 + 36 by rows
        // but 128 + 128 by columns).
        let tiles = |length: usize| length.div_ceil(parts).div_ceil(16) * 16;
        let evenness = |length: usize| length as f64 / (parts * tiles(length)) as f64;
        let by_rows = evenness(m) >= evenness(n);
        let (length, part_length) = if by_rows {
            (m, tiles(m))
        } else {
            (n, tiles(n))
        };
        if part_length < length {
            let out_address = out.as_mut_ptr() as usize;
            crate::threads::pool().execute(parts, &|part| {
                let start = part * part_length;
                if start >= length {
                    return;
                }
                let count = part_length.min(length - start);
                let out = (out_address as *mut f32).wrapping_add(if by_rows {
                    start * out_stride
                } else {
                    start
                });
                // SAFETY: the part's rows (or columns) lie inside the output asserted above,
                // and no two parts write the same values; `a` and `b` are read only.
                unsafe {
                    if by_rows {
                        let a = (&a.0[start * a.1..], a.1, a.2);
                        gemm_raw(out, out_stride, (count, n, k), a, b, accumulate);
                    } else {
                        let b = (&b.0[start * b.2..], b.1, b.2);
                        gemm_raw(out, out_stride, (m, count, k), a, b, accumulate);
                    }
                }
            });
            return;
        }
    }
    // SAFETY: the asserts above keep every index gemm forms inside the three slices, and
    // `out` does not alias the inputs because it is borrowed mutably.
    unsafe { gemm_raw(out.as_mut_ptr(), out_stride, (m, n, k), a, b, accumulate) }
}

/// `out[m × n] (+)= a · b` through gemm on one thread, `out` given by its first value and its
/// row stride.
///
/// # Safety
/// Every index `row · out_stride + column` (within `m × n`) must be writable through `out`
/// and written by no one else during the call; `a` and `b` must hold every index their
/// strides form within the dimensions.
unsafe fn gemm_raw(
    out: *mut f32,
    out_stride: usize,
    (m, n, k): (usize, usize, usize),
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    accumulate: bool,
) {
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            out_stride as isize,
            accumulate,
            a.0.as_ptr(),
            a.2 as isize,
            a.1 as isize,
            b.0.as_ptr(),
            b.2 as isize,
            b.1 as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// How a matrix of activations is held on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Row by row: `[rows, features]`, each row's features side by side.
    ByRows,
    /// Feature by feature: `[features, rows]`, each feature's values over the rows side by
    /// side.
    ByFeatures,
}

/// The product of a linear layer, `out = [x₁ | x₂ | …] Wᵀ` (no bias), on host memory, reading
/// an input held as separate column blocks (`widths[i]` features each) without concatenating
/// them: each block meets its own columns of `weight` (`[outputs, Σ widths]`). Input blocks and
/// output are all held as `held` says. `out` is resized, and a buffer reused at the same size
/// is not cleared first, since the first product overwrites it.
pub(crate) fn linear_blocks(
    out: &mut Vec<f32>,
    rows: usize,
    blocks: &[&[f32]],
    weight: &[f32],
    outputs: usize,
    held: Held,
) {
    let inputs = weight.len() / outputs.max(1);
    out.resize(rows * outputs, 0.0);
    if rows == 0 {
        return;
    }
    let mut column = 0;
    for (index, block) in blocks.iter().enumerate() {
        let width = block.len() / rows;
        // W restricted to this block's columns, transposed when the rows come first.
        let weight = &weight[column..];
        match held {
            Held::ByRows => product_into(
                out,
                (rows, outputs, width),
                (block, width, 1),
                (weight, 1, inputs),
                index > 0,
                split(),
            ),
            Held::ByFeatures => product_into(
                out,
                (outputs, rows, width),
                (weight, inputs, 1),
                (block, rows, 1),
                index > 0,
                split(),
            ),
        }
        column += width;
    }
    assert_eq!(column, inputs, "blocks do not cover the layer's inputs");
}

/// Writes the transpose of `source` (`rows × columns`, row-major) into `target`
/// (`columns × rows`), in square tiles that stay in the cache, since one of the two sides is
/// always read or written far apart.
pub(crate) fn transpose(source: &[f32], (rows, columns): (usize, usize), target: &mut [f32]) {
    const TILE: usize = 8;
    assert!(source.len() == rows * columns && target.len() == rows * columns);
    for first_row in (0..rows).step_by(TILE) {
        for first_column in (0..columns).step_by(TILE) {
            for row in first_row..(first_row + TILE).min(rows) {
                for column in first_column..(first_column + TILE).min(columns) {
                    target[column * rows + row] = source[row * columns + column];
                }
            }
        }
    }
}

/// Adds `bias` to every row of `out` (row-major, `bias.len()` wide).
pub(crate) fn add_to_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        for (value, b) in row.iter_mut().zip(bias) {
            *value += b;
        }
    }
}

/// Batch normalisation with the batch's statistics followed by ReLU, in place, on a matrix
/// held feature by feature (`gamma.len() × rows`): the same transformation as
/// [`batch_norm`] then `relu` on its transpose.
///
/// Each feature's sums run over sixteen interleaved partial sums, added up at the end, so
/// they vectorise; the order is fixed, so the result does not depend on the CPU.
pub(crate) fn features_batch_norm_relu(xs: &mut [f32], rows: usize, gamma: &[f32], beta: &[f32]) {
    if rows > 0 {
        crate::simd::vectorized(
            #[inline(always)]
            || features_batch_norm_relu_loop(xs, rows, gamma, beta),
        );
    }
}

#[inline(always)]
fn features_batch_norm_relu_loop(xs: &mut [f32], rows: usize, gamma: &[f32], beta: &[f32]) {
    const LANES: usize = 16;
    for ((values, gamma), beta) in xs.chunks_exact_mut(rows).zip(gamma).zip(beta) {
        // Offsets from the first value keep the squared mean from cancelling (see
        // [`statistics`]). Whole chunks keep the loop a vector loop; the last, partial one
        // adds into the first lanes.
        let shift = values[0];
        let (mut sums, mut squares) = ([0.0f32; LANES], [0.0f32; LANES]);
        let mut add = |chunk: &[f32]| {
            for ((sum, square), value) in sums.iter_mut().zip(&mut squares).zip(chunk) {
                let offset = value - shift;
                *sum += offset;
                *square += offset * offset;
            }
        };
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        chunks.for_each(&mut add);
        add(rest);
        let (sum, square) = (sums.iter().sum(), squares.iter().sum());
        let (mean, inverse) = mean_and_inverse(shift, sum, square, rows as f32);
        for value in values.iter_mut() {
            *value = ((*value - mean) * inverse * gamma + beta).max(0.0);
        }
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (xs, weight, bias) = (
            contiguous(s1, l1)?,
            contiguous(s2, l2)?,
            contiguous(s3, l3)?,
        );
        let rows = l1.shape().dims2()?.0;
        let mut out = Vec::new();
        linear_blocks(&mut out, rows, &[xs], weight, bias.len(), Held::ByRows);
        add_to_rows(&mut out, bias);
        Ok((CpuStorage::F32(out), Shape::from((rows, bias.len()))))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, inputs) = xs.dims2()?;
        let outputs = weight.dims2()?.0;
        let device = xs.device();
        let input_grad = if self.grads == LinearGrads::Weights {
            None
        } else {
            let mut out = vec![0.0f32; rows * inputs];
            with_host(grad, |grad| {
                with_host(weight, |weight| {
                    product(
                        &mut out,
                        (rows, inputs, outputs),
                        (grad, outputs, 1),
                        (weight, inputs, 1),
                    )
                })
            })??;
            Some(Tensor::from_vec(out, (rows, inputs), device)?)
        };
        let (weight_grad, bias_grad) = if self.grads == LinearGrads::Input {
            (None, None)
        } else {
            let mut out = vec![0.0f32; outputs * inputs];
            let sums = with_host(grad, |grad| {
                with_host(xs, |xs| {
                    // Gᵀ[o][r] = G[r][o]: row stride 1, column stride `outputs`.
                    product(
                        &mut out,
                        (outputs, inputs, rows),
                        (grad, 1, outputs),
                        (xs, inputs, 1),
                    )
                })?;
                candle_core::Result::Ok(column_sums(grad, outputs))
            })??;
            (
                Some(Tensor::from_vec(out, (outputs, inputs), device)?),
                Some(Tensor::from_vec(sums, outputs, device)?),
            )
        };
        Ok((input_grad, weight_grad, bias_grad))
    }
}

/// Adds a bias to every row.
///
/// # Shapes
/// `xs: [n, d]`, `bias: [d]` → `[n, d]`.
pub fn add_bias(xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if fused(xs) && fused(bias) {
        return Ok(xs.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)?);
    }
    Ok(xs.broadcast_add(bias)?)
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (xs, bias) = (contiguous(s1, l1)?, contiguous(s2, l2)?);
        let mut out = xs.to_vec();
        for row in out.chunks_exact_mut(bias.len()) {
            for (value, b) in row.iter_mut().zip(bias) {
                *value += b;
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _xs: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let width = bias.elem_count();
        let sums = with_host(grad, |grad| column_sums(grad, width))?;
        let bias_grad = Tensor::from_vec(sums, width, grad.device())?;
        Ok((Some(grad.clone()), Some(bias_grad)))
    }
}

/// Added to the variance before the square root.
pub const BATCH_NORM_EPSILON: f64 = 1e-5;

/// Batch normalisation with the statistics of this batch: each column is centred, scaled to
/// unit (biased) variance, then scaled by `gamma` and shifted by `beta`.
///
/// # Shapes
/// `xs: [n, d]`, `gamma, beta: [d]` → `[n, d]`.
pub fn batch_norm(xs: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<Tensor> {
    if fused(xs) && fused(gamma) && fused(beta) {
        let op = BatchNorm;
        return Ok(xs
            .contiguous()?
            .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?);
    }
    let mean = xs.mean_keepdim(0)?;
    let centred = xs.broadcast_sub(&mean)?;
    let variance = centred.sqr()?.mean_keepdim(0)?;
    let normalised = centred.broadcast_div(&(variance + BATCH_NORM_EPSILON)?.sqrt()?)?;
    Ok(normalised.broadcast_mul(gamma)?.broadcast_add(beta)?)
}

struct BatchNorm;

/// Column means and inverse standard deviations.
pub(crate) fn statistics(xs: &[f32], width: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = (xs.len() / width).max(1) as f32;
    // One pass: sums and sums of squares of each column's offsets from its first value,
    // which keeps the subtraction of the squared mean from cancelling (the offsets' mean is
    // of the order of their spread).
    let shift: Vec<f32> = xs
        .get(..width)
        .map_or_else(|| vec![0.0; width], <[f32]>::to_vec);
    let (mut sums, mut squares) = (vec![0.0f32; width], vec![0.0f32; width]);
    crate::simd::vectorized(
        #[inline(always)]
        || {
            for row in xs.chunks_exact(width) {
                for (((sum, square), x), shift) in
                    sums.iter_mut().zip(&mut squares).zip(row).zip(&shift)
                {
                    let offset = x - shift;
                    *sum += offset;
                    *square += offset * offset;
                }
            }
        },
    );
    shift
        .iter()
        .zip(&sums)
        .zip(&squares)
        .map(|((shift, sum), square)| mean_and_inverse(*shift, *sum, *square, rows))
        .unzip()
}

/// A column's mean and inverse standard deviation (with [`BATCH_NORM_EPSILON`]) from the
/// sum and the sum of squares of its `rows` offsets from `shift`.
#[inline(always)]
fn mean_and_inverse(shift: f32, sum: f32, square: f32, rows: f32) -> (f32, f32) {
    let offset_mean = sum / rows;
    let variance = (square / rows - offset_mean * offset_mean).max(0.0);
    (
        shift + offset_mean,
        1.0 / (variance + BATCH_NORM_EPSILON as f32).sqrt(),
    )
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (xs, gamma, beta) = (
            contiguous(s1, l1)?,
            contiguous(s2, l2)?,
            contiguous(s3, l3)?,
        );
        let width = gamma.len();
        let (mean, inverse) = statistics(xs, width);
        let mut out = vec![0.0f32; xs.len()];
        for (row, out) in xs.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            for column in 0..width {
                out[column] =
                    (row[column] - mean[column]) * inverse[column] * gamma[column] + beta[column];
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        xs: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gamma_host = host(gamma)?;
        let width = gamma_host.len();
        let gradients = |xs_host: &[f32], grad_host: &[f32]| {
            let rows = xs_host.len() / width;
            let (mean, inverse) = statistics(xs_host, width);
            // x̂ = (x − μ)/σ; dβ = Σ dy; dγ = Σ dy·x̂; dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy·x̂)).
            let mut beta_grad = vec![0.0f32; width];
            let mut gamma_grad = vec![0.0f32; width];
            for (row, dy) in xs_host
                .chunks_exact(width)
                .zip(grad_host.chunks_exact(width))
            {
                for column in 0..width {
                    let normalised = (row[column] - mean[column]) * inverse[column];
                    beta_grad[column] += dy[column];
                    gamma_grad[column] += dy[column] * normalised;
                }
            }
            let mut xs_grad = vec![0.0f32; xs_host.len()];
            for ((row, dy), out) in xs_host
                .chunks_exact(width)
                .zip(grad_host.chunks_exact(width))
                .zip(xs_grad.chunks_exact_mut(width))
            {
                for column in 0..width {
                    let normalised = (row[column] - mean[column]) * inverse[column];
                    let mean_dy = beta_grad[column] / rows as f32;
                    let mean_dy_normalised = gamma_grad[column] / rows as f32;
                    out[column] = gamma_host[column]
                        * inverse[column]
                        * (dy[column] - mean_dy - normalised * mean_dy_normalised);
                }
            }
            (xs_grad, gamma_grad, beta_grad)
        };
        let (xs_grad, gamma_grad, beta_grad) = with_host(xs, |xs_host| {
            with_host(grad, |grad_host| gradients(xs_host, grad_host))
        })??;
        let device = xs.device();
        Ok((
            Some(Tensor::from_vec(xs_grad, xs.shape(), device)?),
            Some(Tensor::from_vec(gamma_grad, width, device)?),
            Some(Tensor::from_vec(beta_grad, width, device)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rand::Rng;

    use super::*;
    use crate::rng::{Purpose, stream};

    /// Tiled transposes put every value where the plain definition does, on sizes that are
    /// not multiples of the tile.
    #[test]
    fn transposes_move_every_value() {
        let (rows, columns) = (37, 53);
        let source: Vec<f32> = (0..rows * columns).map(|i| i as f32).collect();
        let mut target = vec![0.0; rows * columns];
        transpose(&source, (rows, columns), &mut target);
        for row in 0..rows {
            for column in 0..columns {
                assert_eq!(target[column * rows + row], source[row * columns + column]);
            }
        }
    }

    /// A product split over the compute pool (by rows or by columns) gives the same bits as
    /// one on a single thread, plain, transposed, accumulating and into a wider output. (On a
    /// one-core machine the pool has no workers and both sides take the single-thread path.)
    #[test]
    fn split_products_match_single_thread_ones() {
        let mut rng = stream(5, Purpose::Init);
        let mut values = |count: usize| -> Vec<f32> {
            (0..count).map(|_| rng.random_range(-1.0..1.0)).collect()
        };
        // Split by rows; by columns (few rows, a long sum: the critic's first layer); by
        // columns with a transposed right side.
        for (m, n, k) in [(203, 67, 131), (100, 256, 2700), (50, 2700, 256)] {
            let (a, b) = (values(m * k), values(k * n));
            let out_stride = n + 3;
            let start = values(m * out_stride);
            assert!(m * n * k >= SPLIT_MIN_WORK);
            let cases = [
                ((k, 1), (n, 1), false),
                ((1, m), (n, 1), false),
                ((k, 1), (1, k), false),
                ((k, 1), (n, 1), true),
            ];
            for (a_strides, b_strides, accumulate) in cases {
                let mut results = Vec::new();
                for split in [Split::No, Split::Pool] {
                    let mut out = start.clone();
                    let a = (a.as_slice(), a_strides.0, a_strides.1);
                    let b = (b.as_slice(), b_strides.0, b_strides.1);
                    product_strided((&mut out, out_stride), (m, n, k), a, b, accumulate, split);
                    results.push(out);
                }
                assert!(
                    results[0] == results[1],
                    "{m}×{n}×{k}, strides {a_strides:?} {b_strides:?}, accumulate {accumulate}"
                );
            }
        }
    }

    fn var(seed: u64, shape: &[usize]) -> Var {
        let mut rng = stream(seed, Purpose::Init);
        let count = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|_| rng.random_range(-2.0..2.0)).collect();
        Var::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn assert_close(a: &Tensor, b: &Tensor) {
        let (a, b) = (host(a).unwrap(), host(b).unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Runs `f` on the inputs, weights the output, and returns the output with the gradient of
    /// every input.
    fn value_and_grads(inputs: &[&Var], weights: &Tensor, f: impl Fn() -> Tensor) -> Vec<Tensor> {
        let out = f();
        let grads = (&out * weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let mut all = vec![out];
        all.extend(
            inputs
                .iter()
                .map(|v| grads.get(v.as_tensor()).unwrap().clone()),
        );
        all
    }

    #[test]
    fn fused_linear_matches_composed_and_builds_only_the_asked_gradients() {
        let (xs, weight, bias, weights) = (
            var(8, &[7, 5]),
            var(9, &[3, 5]),
            var(10, &[3]),
            var(11, &[7, 3]),
        );
        let inputs = [&xs, &weight, &bias];
        let composed = value_and_grads(&inputs, weights.as_tensor(), || {
            xs.as_tensor()
                .matmul(&weight.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(bias.as_tensor())
                .unwrap()
        });
        let fused = value_and_grads(&inputs, weights.as_tensor(), || {
            linear(
                xs.as_tensor(),
                weight.as_tensor(),
                bias.as_tensor(),
                LinearGrads::All,
            )
            .unwrap()
        });
        fused
            .iter()
            .zip(&composed)
            .for_each(|(a, b)| assert_close(a, b));

        for (grads, input_grad, weight_grad) in [
            (LinearGrads::Weights, false, true),
            (LinearGrads::Input, true, false),
        ] {
            let out = linear(xs.as_tensor(), weight.as_tensor(), bias.as_tensor(), grads).unwrap();
            let store = (&out * weights.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert_eq!(store.get(xs.as_tensor()).is_some(), input_grad);
            assert_eq!(store.get(weight.as_tensor()).is_some(), weight_grad);
            if let Some(grad) = store.get(weight.as_tensor()) {
                assert_close(grad, &composed[2]);
            }
            if let Some(grad) = store.get(xs.as_tensor()) {
                assert_close(grad, &composed[1]);
            }
        }
    }

    #[test]
    fn fused_bias_add_matches_composed() {
        let (xs, bias, weights) = (var(1, &[6, 4]), var(2, &[4]), var(3, &[6, 4]));
        let fused = value_and_grads(&[&xs, &bias], weights.as_tensor(), || {
            add_bias(xs.as_tensor(), bias.as_tensor()).unwrap()
        });
        let composed = value_and_grads(&[&xs, &bias], weights.as_tensor(), || {
            xs.as_tensor().broadcast_add(bias.as_tensor()).unwrap()
        });
        fused
            .iter()
            .zip(&composed)
            .for_each(|(a, b)| assert_close(a, b));
    }

    #[test]
    fn fused_batch_norm_matches_composed() {
        let (xs, gamma, beta, weights) =
            (var(4, &[8, 5]), var(5, &[5]), var(6, &[5]), var(7, &[8, 5]));
        let inputs = [&xs, &gamma, &beta];
        let fused = value_and_grads(&inputs, weights.as_tensor(), || {
            batch_norm(xs.as_tensor(), gamma.as_tensor(), beta.as_tensor()).unwrap()
        });
        let composed = value_and_grads(&inputs, weights.as_tensor(), || {
            let mean = xs.as_tensor().mean_keepdim(0).unwrap();
            let centred = xs.as_tensor().broadcast_sub(&mean).unwrap();
            let variance = centred.sqr().unwrap().mean_keepdim(0).unwrap();
            let normalised = centred
                .broadcast_div(&(variance + BATCH_NORM_EPSILON).unwrap().sqrt().unwrap())
                .unwrap();
            normalised
                .broadcast_mul(gamma.as_tensor())
                .unwrap()
                .broadcast_add(beta.as_tensor())
                .unwrap()
        });
        fused
            .iter()
            .zip(&composed)
            .for_each(|(a, b)| assert_close(a, b));
    }
}
