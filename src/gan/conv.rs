//! Convolutions over NHWC images as matrix products, for the image GANs (DCGAN, 1511.06434).
//!
//! Images travel as 2-D tensors `[batch·height·width, channels]`: the row of pixel `(y, x)`
//! of image `b` is `(b·height + y)·width + x`, and holds its channels. In that layout a
//! convolution is [`im2col`] (every kernel-sized patch copied into one row) followed by a
//! [`linear`] layer, and a transposed convolution is a [`linear`] layer followed by
//! [`col2im`] (every row of patch values summed back into the pixels it covers). Both matrix
//! products go to gemm; for a DCGAN critic layer (batch 64, 14×14×64 → 7×7×128) forward and
//! backward take about a third of the time of candle's own CPU convolution, the copies of
//! `im2col` and `col2im` a few percent of it.
//!
//! `im2col` and `col2im` are linear maps and each other's adjoint, so the backward pass of
//! each is the other applied to the gradient. The input gradient of a convolutional critic
//! can therefore be written with the same forward ops (`col2im` of the output gradient times
//! the weights) and differentiated again, which a closed-form WGAN-GP penalty (1704.00028)
//! needs.
//!
//! # Limitations
//!
//! - The ops run only on the CPU, on f32 tensors; on other devices or dtypes they return an
//!   error rather than fall back to candle's convolutions.
//! - Kernels are square, stride and padding are the same along both axes, and there is no
//!   dilation and no grouping.
//! - Padding is zero padding.

use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::gan::fused::{LinearGrads, add_bias, contiguous, linear};

/// Shape of a square-kernel 2-D convolution over NHWC images.
///
/// The same struct describes the transposed convolution that produces `height × width ×
/// channels` images: the input of the equivalent convolution is the output of the transposed
/// one, so a transposed convolution is a `Geometry` used in reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Images in the batch.
    pub batch: usize,
    /// Height of the convolution's input images.
    pub height: usize,
    /// Width of the convolution's input images.
    pub width: usize,
    /// Channels of the convolution's input images.
    pub channels: usize,
    /// Side of the square kernel.
    pub kernel: usize,
    /// Step between neighbouring patches, along both axes.
    pub stride: usize,
    /// Zero rows and columns added on every side.
    pub padding: usize,
}

/// Number of patch positions along an axis of `size` pixels; zero when the kernel does not
/// fit or the stride is zero.
fn positions(size: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    match (size + 2 * padding).checked_sub(kernel) {
        Some(span) if stride > 0 && kernel > 0 => span / stride + 1,
        _ => 0,
    }
}

impl Geometry {
    /// Height of the convolution's output, `(height + 2·padding − kernel) / stride + 1`, or
    /// zero when the kernel does not fit.
    pub fn out_height(&self) -> usize {
        positions(self.height, self.kernel, self.stride, self.padding)
    }

    /// Width of the convolution's output, `(width + 2·padding − kernel) / stride + 1`, or zero
    /// when the kernel does not fit.
    pub fn out_width(&self) -> usize {
        positions(self.width, self.kernel, self.stride, self.padding)
    }

    /// Width of one im2col row: kernel·kernel·channels, ordered (ky, kx, c).
    pub fn patch(&self) -> usize {
        self.kernel * self.kernel * self.channels
    }

    /// Rows of the image tensor: `batch·height·width`.
    pub fn image_rows(&self) -> usize {
        self.batch * self.height * self.width
    }

    /// Rows of the im2col tensor, one per output pixel: `batch·out_height·out_width`.
    pub fn patch_rows(&self) -> usize {
        self.batch * self.out_height() * self.out_width()
    }

    /// Checks that the geometry describes non-empty images with at least one patch each.
    fn check(&self) -> candle_core::Result<()> {
        let empty = self.height == 0 || self.width == 0 || self.channels == 0;
        if empty || self.out_height() == 0 || self.out_width() == 0 {
            return Err(candle_core::Error::Msg(format!(
                "convolution geometry has no patches: {self:?} needs a height, width, channel \
                 count, kernel and stride of at least 1 and a kernel no larger than the padded \
                 image"
            )));
        }
        Ok(())
    }

    /// The taps `t` of the kernel, along an axis of `size` pixels, that fall inside the image
    /// for the patch starting at `origin − padding` (`origin` is position · stride).
    fn taps(&self, origin: usize, size: usize) -> Range<usize> {
        let start = self.padding.saturating_sub(origin).min(self.kernel);
        let end = self
            .kernel
            .min((size + self.padding).saturating_sub(origin));
        start..end.max(start)
    }
}

/// Checks that `xs` is an f32 CPU tensor of shape `dims`.
fn check_input(xs: &Tensor, dims: &[usize], what: &str) -> Result<()> {
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return Err(candle_core::Error::Msg(format!(
            "`{what}` needs an f32 tensor on the CPU, got {:?} on {:?}",
            xs.dtype(),
            xs.device().location()
        ))
        .into());
    }
    check_shape(xs.layout(), dims, what)?;
    Ok(())
}

fn check_shape(layout: &Layout, dims: &[usize], what: &str) -> candle_core::Result<()> {
    if layout.shape().dims() != dims {
        return Err(candle_core::Error::Msg(format!(
            "`{what}` expects shape {dims:?}, got {:?}",
            layout.shape().dims()
        )));
    }
    Ok(())
}

/// Copies every kernel-sized patch of NHWC images into one row, with zero padding.
///
/// The backward pass is [`col2im`] of the gradient.
///
/// # Shapes
/// `xs: [batch·height·width, channels]` → `[batch·out_height·out_width, kernel·kernel·channels]`,
/// each row ordered (ky, kx, c).
pub fn im2col(xs: &Tensor, geometry: Geometry) -> Result<Tensor> {
    geometry.check()?;
    check_input(xs, &[geometry.image_rows(), geometry.channels], "im2col")?;
    Ok(xs.contiguous()?.apply_op1(Im2Col { geometry })?)
}

/// The adjoint of [`im2col`]: adds every patch row back into the pixels it was copied from,
/// summing where patches overlap and dropping the padding.
///
/// The backward pass is [`im2col`] of the gradient.
///
/// # Shapes
/// `cols: [batch·out_height·out_width, kernel·kernel·channels]` → `[batch·height·width,
/// channels]`.
pub fn col2im(cols: &Tensor, geometry: Geometry) -> Result<Tensor> {
    geometry.check()?;
    check_input(cols, &[geometry.patch_rows(), geometry.patch()], "col2im")?;
    Ok(cols.contiguous()?.apply_op1(Col2Im { geometry })?)
}

/// Which of the [`linear`] gradients a backward pass can use: none are built for operands
/// that no variable depends on.
fn needed_grads(xs: &Tensor, weight: &Tensor, bias: &Tensor) -> LinearGrads {
    match (xs.track_op(), weight.track_op() || bias.track_op()) {
        (false, _) => LinearGrads::Weights,
        (true, false) => LinearGrads::Input,
        (true, true) => LinearGrads::All,
    }
}

/// A convolution: [`im2col`] of the images, then `cols · weightᵀ + bias`.
///
/// # Shapes
/// `xs: [batch·height·width, channels]`, `weight: [out_channels, kernel·kernel·channels]`
/// (each row ordered (ky, kx, c)), `bias: [out_channels]` → `[batch·out_height·out_width,
/// out_channels]`.
pub fn conv2d(xs: &Tensor, weight: &Tensor, bias: &Tensor, geometry: Geometry) -> Result<Tensor> {
    let out_channels = weight.dims().first().copied().unwrap_or(0);
    check_input(weight, &[out_channels, geometry.patch()], "conv2d weight")?;
    check_input(bias, &[out_channels], "conv2d bias")?;
    let cols = im2col(xs, geometry)?;
    linear(&cols, weight, bias, needed_grads(xs, weight, bias))
}

/// A transposed convolution, with PyTorch's `ConvTranspose2d` semantics and the output
/// padding, `(height + 2·padding − kernel) mod stride`, that makes the output exactly
/// `geometry.height × geometry.width`: `col2im(xs · weight) + bias`.
///
/// `geometry` is that of the convolution that maps the output back to the input, so
/// `geometry.channels` is the *output* channel count and the input is
/// `out_height × out_width`.
///
/// # Shapes
/// `xs: [batch·out_height·out_width, in_channels]`, `weight: [in_channels,
/// kernel·kernel·channels]` (each row ordered (ky, kx, c)), `bias: [channels]` →
/// `[batch·height·width, channels]`.
pub fn conv_transpose2d(
    xs: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    geometry: Geometry,
) -> Result<Tensor> {
    geometry.check()?;
    let in_channels = weight.dims().first().copied().unwrap_or(0);
    check_input(
        xs,
        &[geometry.patch_rows(), in_channels],
        "conv_transpose2d",
    )?;
    check_input(
        weight,
        &[in_channels, geometry.patch()],
        "conv_transpose2d weight",
    )?;
    check_input(bias, &[geometry.channels], "conv_transpose2d bias")?;

    let zero = Tensor::zeros(geometry.patch(), DType::F32, xs.device())?;
    let transposed = weight.t()?.contiguous()?;
    let cols = linear(xs, &transposed, &zero, needed_grads(xs, weight, &zero))?;
    add_bias(&col2im(&cols, geometry)?, bias)
}

struct Im2Col {
    geometry: Geometry,
}

struct Col2Im {
    geometry: Geometry,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let geometry = self.geometry;
        geometry.check()?;
        check_shape(
            layout,
            &[geometry.image_rows(), geometry.channels],
            "im2col",
        )?;
        let input = contiguous(storage, layout)?;
        let (rows, patch) = (geometry.patch_rows(), geometry.patch());
        let mut output = vec![0.0f32; rows * patch];
        let out_height = geometry.out_height();
        output
            .par_chunks_mut(geometry.out_width() * patch)
            .enumerate()
            .for_each(|(row, out)| {
                im2col_row(input, &geometry, row / out_height, row % out_height, out);
            });
        Ok((CpuStorage::F32(output), Shape::from((rows, patch))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let op = Col2Im {
            geometry: self.geometry,
        };
        Ok(Some(grad_res.contiguous()?.apply_op1(op)?))
    }
}

/// Fills the patches of output row `out_y` of image `image`: `out_width` patches, each
/// `kernel·kernel·channels` wide, in an output that starts zeroed.
fn im2col_row(input: &[f32], geometry: &Geometry, image: usize, out_y: usize, out: &mut [f32]) {
    let Geometry {
        height,
        width,
        channels,
        kernel,
        stride,
        padding,
        ..
    } = *geometry;
    let image_len = height * width * channels;
    let image = &input[image * image_len..(image + 1) * image_len];
    let rows = geometry.taps(out_y * stride, height);
    for (out_x, patch) in out.chunks_exact_mut(geometry.patch()).enumerate() {
        let columns = geometry.taps(out_x * stride, width);
        if columns.is_empty() {
            continue;
        }
        // Along a kernel row the taps that fall inside the image are one contiguous run of
        // pixels, so each kernel row is one copy.
        let run = columns.len() * channels;
        let first_x = out_x * stride + columns.start - padding;
        for ky in rows.clone() {
            let source = ((out_y * stride + ky - padding) * width + first_x) * channels;
            let target = (ky * kernel + columns.start) * channels;
            patch[target..target + run].copy_from_slice(&image[source..source + run]);
        }
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let geometry = self.geometry;
        geometry.check()?;
        check_shape(layout, &[geometry.patch_rows(), geometry.patch()], "col2im")?;
        let cols = contiguous(storage, layout)?;
        let (rows, channels) = (geometry.image_rows(), geometry.channels);
        let mut output = vec![0.0f32; rows * channels];
        let height = geometry.height;
        output
            .par_chunks_mut(geometry.width * channels)
            .enumerate()
            .for_each(|(row, out)| {
                col2im_row(cols, &geometry, row / height, row % height, out);
            });
        Ok((CpuStorage::F32(output), Shape::from((rows, channels))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let op = Im2Col {
            geometry: self.geometry,
        };
        Ok(Some(grad_res.contiguous()?.apply_op1(op)?))
    }
}

/// Sums into pixel row `y` of image `image` (`width·channels` values, starting zeroed) every
/// patch value copied from it: each task owns one pixel row, so no two tasks write the same
/// value.
fn col2im_row(cols: &[f32], geometry: &Geometry, image: usize, y: usize, out: &mut [f32]) {
    let Geometry {
        width,
        channels,
        kernel,
        stride,
        padding,
        ..
    } = *geometry;
    let (out_height, out_width, patch) = (
        geometry.out_height(),
        geometry.out_width(),
        geometry.patch(),
    );
    // Output rows whose patches cover `y`: out_y·stride ≤ y + padding < out_y·stride + kernel.
    let first = (y + padding + 1).saturating_sub(kernel).div_ceil(stride);
    let last = out_height.min((y + padding) / stride + 1);
    for out_y in first..last {
        let ky = y + padding - out_y * stride;
        let row_start = (image * out_height + out_y) * out_width * patch;
        for out_x in 0..out_width {
            let columns = geometry.taps(out_x * stride, width);
            if columns.is_empty() {
                continue;
            }
            let run = columns.len() * channels;
            let first_x = out_x * stride + columns.start - padding;
            let source = row_start + out_x * patch + (ky * kernel + columns.start) * channels;
            let target = &mut out[first_x * channels..first_x * channels + run];
            for (value, add) in target.iter_mut().zip(&cols[source..source + run]) {
                *value += add;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use candle_core::{Device, Var};
    use rand::Rng;

    use super::*;
    use crate::rng::{Purpose, stream};

    fn geometry(batch: usize, size: (usize, usize), channels: usize, kernel: usize) -> Geometry {
        Geometry {
            batch,
            height: size.0,
            width: size.1,
            channels,
            kernel,
            stride: 1,
            padding: 0,
        }
    }

    fn strided(geometry: Geometry, stride: usize, padding: usize) -> Geometry {
        Geometry {
            stride,
            padding,
            ..geometry
        }
    }

    fn random(seed: u64, shape: (usize, usize)) -> Var {
        let mut rng = stream(seed, Purpose::Init);
        let values: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Var::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn host(xs: &Tensor) -> Vec<f32> {
        xs.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        host(a)
            .iter()
            .zip(&host(b))
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    fn assert_close(a: &Tensor, b: &Tensor, tolerance: f32) {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (host(a), host(b));
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= tolerance * scale, "at {i}: {x} vs {y}");
        }
    }

    /// NHWC rows `[n·h·w, c]` → candle's NCHW `[n, c, h, w]`.
    fn to_nchw(xs: &Tensor, (n, h, w, c): (usize, usize, usize, usize)) -> Tensor {
        xs.reshape((n, h, w, c))
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap()
            .contiguous()
            .unwrap()
    }

    /// candle's NCHW `[n, c, h, w]` → NHWC rows `[n·h·w, c]`.
    fn from_nchw(xs: &Tensor) -> Tensor {
        let (n, c, h, w) = xs.dims4().unwrap();
        xs.permute((0, 2, 3, 1))
            .unwrap()
            .contiguous()
            .unwrap()
            .reshape((n * h * w, c))
            .unwrap()
    }

    /// A `[rows, k·k·c]` weight, rows ordered (ky, kx, c) → candle's `[rows, c, k, k]`.
    fn to_candle_kernel(weight: &Tensor, kernel: usize, channels: usize) -> Tensor {
        let rows = weight.dim(0).unwrap();
        weight
            .reshape((rows, kernel, kernel, channels))
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap()
            .contiguous()
            .unwrap()
    }

    fn adjoint_geometries() -> Vec<Geometry> {
        vec![
            strided(geometry(2, (28, 28), 3, 4), 2, 1),
            strided(geometry(2, (9, 7), 4, 3), 1, 1),
            geometry(3, (11, 12), 2, 5),
            strided(geometry(2, (13, 9), 3, 3), 2, 1),
            strided(geometry(1, (10, 11), 2, 4), 3, 2),
            strided(geometry(2, (5, 6), 1, 2), 1, 3),
        ]
    }

    #[test]
    fn im2col_and_col2im_are_adjoint() {
        for (index, geometry) in adjoint_geometries().into_iter().enumerate() {
            let seed = 2 * index as u64;
            let xs = random(seed, (geometry.image_rows(), geometry.channels));
            let ys = random(seed + 1, (geometry.patch_rows(), geometry.patch()));
            let forward = dot(&im2col(xs.as_tensor(), geometry).unwrap(), ys.as_tensor());
            let adjoint = dot(xs.as_tensor(), &col2im(ys.as_tensor(), geometry).unwrap());
            let error = (forward - adjoint).abs() / forward.abs().max(adjoint.abs());
            assert!(error < 1e-5, "{geometry:?}: {forward} vs {adjoint}");
        }
    }

    #[test]
    fn im2col_copies_pixels_in_kernel_order_with_zero_padding() {
        // One 3×3 single-channel image 1..9, 2×2 kernel, stride 1, padding 1: the first patch
        // is the top-left pixel in the kernel's bottom-right corner.
        let geometry = strided(geometry(1, (3, 3), 1, 2), 1, 1);
        let xs = Tensor::arange(1f32, 10.0, &Device::Cpu)
            .unwrap()
            .reshape((9, 1))
            .unwrap();
        let cols = host(&im2col(&xs, geometry).unwrap());
        assert_eq!(geometry.patch_rows(), 16);
        assert_eq!(&cols[..4], &[0.0, 0.0, 0.0, 1.0]);
        assert_eq!(&cols[5 * 4..6 * 4], &[1.0, 2.0, 4.0, 5.0]);
        assert_eq!(&cols[15 * 4..], &[9.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_gradient_of_im2col_is_col2im_and_back() {
        let geometry = strided(geometry(2, (9, 8), 3, 4), 2, 1);
        let xs = random(20, (geometry.image_rows(), geometry.channels));
        let ys = random(21, (geometry.patch_rows(), geometry.patch()));
        let grads = (im2col(xs.as_tensor(), geometry).unwrap() * ys.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let expected = col2im(ys.as_tensor(), geometry).unwrap();
        assert_close(grads.get(xs.as_tensor()).unwrap(), &expected, 1e-6);

        let grads = (col2im(ys.as_tensor(), geometry).unwrap() * xs.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let expected = im2col(xs.as_tensor(), geometry).unwrap();
        assert_close(grads.get(ys.as_tensor()).unwrap(), &expected, 1e-6);
    }

    /// DCGAN's layers as convolutions: 14×14×64 → 7×7×128 and 28×28×1 → 14×14×64, with
    /// kernel 4, stride 2 and padding 1, and an odd-sized one.
    fn dcgan_geometries() -> Vec<(Geometry, usize)> {
        vec![
            (strided(geometry(3, (14, 14), 64, 4), 2, 1), 128),
            (strided(geometry(3, (28, 28), 1, 4), 2, 1), 64),
            (strided(geometry(2, (9, 11), 3, 3), 2, 1), 5),
        ]
    }

    /// Candle's convolution of the same NHWC data.
    fn candle_conv2d(xs: &Tensor, weight: &Tensor, bias: &Tensor, geometry: Geometry) -> Tensor {
        let Geometry {
            batch,
            height,
            width,
            channels,
            ..
        } = geometry;
        let nchw = to_nchw(xs, (batch, height, width, channels));
        let kernel = to_candle_kernel(weight, geometry.kernel, channels);
        let out = nchw
            .conv2d(&kernel, geometry.padding, geometry.stride, 1, 1)
            .unwrap();
        from_nchw(&out).broadcast_add(bias).unwrap()
    }

    /// Candle's transposed convolution of the same NHWC data.
    fn candle_conv_transpose2d(
        xs: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        geometry: Geometry,
    ) -> Tensor {
        let Geometry {
            batch,
            height,
            kernel,
            stride,
            padding,
            ..
        } = geometry;
        let in_channels = weight.dim(0).unwrap();
        let shape = (
            batch,
            geometry.out_height(),
            geometry.out_width(),
            in_channels,
        );
        let nchw = to_nchw(xs, shape);
        let candle_kernel = to_candle_kernel(weight, kernel, geometry.channels);
        let output_padding = (height + 2 * padding - kernel) % stride;
        let out = nchw
            .conv_transpose2d(&candle_kernel, padding, output_padding, stride, 1)
            .unwrap();
        from_nchw(&out).broadcast_add(bias).unwrap()
    }

    #[test]
    fn conv2d_matches_candle() {
        for (index, (geometry, out_channels)) in dcgan_geometries().into_iter().enumerate() {
            let seed = 30 + 3 * index as u64;
            let xs = random(seed, (geometry.image_rows(), geometry.channels));
            let weight = random(seed + 1, (out_channels, geometry.patch()));
            let bias = random(seed + 2, (1, out_channels)).flatten_all().unwrap();
            let ours = conv2d(xs.as_tensor(), weight.as_tensor(), &bias, geometry).unwrap();
            let theirs = candle_conv2d(xs.as_tensor(), weight.as_tensor(), &bias, geometry);
            assert_eq!(ours.dims(), [geometry.patch_rows(), out_channels]);
            assert_close(&ours, &theirs, 1e-4);
        }
    }

    #[test]
    fn conv_transpose2d_matches_candle() {
        // 7×7×128 → 14×14×64 and 14×14×64 → 28×28×1, then odd sizes that need output padding.
        let cases = [
            (strided(geometry(3, (14, 14), 64, 4), 2, 1), 128),
            (strided(geometry(3, (28, 28), 1, 4), 2, 1), 64),
            (strided(geometry(2, (10, 10), 3, 3), 2, 1), 5),
            (strided(geometry(2, (8, 8), 2, 3), 3, 0), 4),
        ];
        for (index, (geometry, in_channels)) in cases.into_iter().enumerate() {
            let seed = 50 + 3 * index as u64;
            let xs = random(seed, (geometry.patch_rows(), in_channels));
            let weight = random(seed + 1, (in_channels, geometry.patch()));
            let bias = random(seed + 2, (1, geometry.channels))
                .flatten_all()
                .unwrap();
            let ours =
                conv_transpose2d(xs.as_tensor(), weight.as_tensor(), &bias, geometry).unwrap();
            let theirs =
                candle_conv_transpose2d(xs.as_tensor(), weight.as_tensor(), &bias, geometry);
            assert_eq!(ours.dims(), [geometry.image_rows(), geometry.channels]);
            assert_close(&ours, &theirs, 1e-4);
        }
    }

    type Conv = fn(&Tensor, &Tensor, &Tensor, Geometry) -> Tensor;

    /// Gradients of `sum(conv(xs, weight, bias) ⊙ weights)` with respect to the three inputs.
    fn gradients(conv: Conv, inputs: [&Var; 3], weights: &Tensor, g: Geometry) -> Vec<Tensor> {
        let [xs, weight, bias] = inputs;
        let out = conv(xs.as_tensor(), weight.as_tensor(), bias.as_tensor(), g);
        let grads = (out * weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        inputs
            .iter()
            .map(|var| grads.get(var.as_tensor()).unwrap().clone())
            .collect()
    }

    fn ours_conv2d(xs: &Tensor, weight: &Tensor, bias: &Tensor, g: Geometry) -> Tensor {
        conv2d(xs, weight, bias, g).unwrap()
    }

    fn ours_conv_transpose2d(xs: &Tensor, weight: &Tensor, bias: &Tensor, g: Geometry) -> Tensor {
        conv_transpose2d(xs, weight, bias, g).unwrap()
    }

    #[test]
    fn conv2d_gradients_match_candle() {
        for (index, (geometry, out_channels)) in dcgan_geometries().into_iter().enumerate() {
            let seed = 70 + 4 * index as u64;
            let xs = random(seed, (geometry.image_rows(), geometry.channels));
            let weight = random(seed + 1, (out_channels, geometry.patch()));
            let bias =
                Var::from_tensor(&random(seed + 2, (1, out_channels)).flatten_all().unwrap())
                    .unwrap();
            let weights = random(seed + 3, (geometry.patch_rows(), out_channels));
            let inputs = [&xs, &weight, &bias];
            let ours = gradients(ours_conv2d, inputs, weights.as_tensor(), geometry);
            let theirs = gradients(candle_conv2d, inputs, weights.as_tensor(), geometry);
            for (a, b) in ours.iter().zip(&theirs) {
                assert_close(a, b, 1e-3);
            }
        }
    }

    #[test]
    fn conv_transpose2d_gradients_match_candle() {
        let cases = [
            (strided(geometry(2, (14, 14), 16, 4), 2, 1), 32),
            (strided(geometry(2, (10, 10), 3, 3), 2, 1), 5),
        ];
        for (index, (geometry, in_channels)) in cases.into_iter().enumerate() {
            let seed = 90 + 4 * index as u64;
            let xs = random(seed, (geometry.patch_rows(), in_channels));
            let weight = random(seed + 1, (in_channels, geometry.patch()));
            let bias = Var::from_tensor(
                &random(seed + 2, (1, geometry.channels))
                    .flatten_all()
                    .unwrap(),
            )
            .unwrap();
            let weights = random(seed + 3, (geometry.image_rows(), geometry.channels));
            let inputs = [&xs, &weight, &bias];
            let ours = gradients(ours_conv_transpose2d, inputs, weights.as_tensor(), geometry);
            let theirs = gradients(
                candle_conv_transpose2d,
                inputs,
                weights.as_tensor(),
                geometry,
            );
            for (a, b) in ours.iter().zip(&theirs) {
                assert_close(a, b, 1e-3);
            }
        }
    }

    #[test]
    fn conv2d_gradients_match_finite_differences() {
        let geometry = strided(geometry(2, (5, 6), 2, 3), 2, 1);
        let out_channels = 3;
        let xs = random(110, (geometry.image_rows(), geometry.channels));
        let weight = random(111, (out_channels, geometry.patch()));
        let bias =
            Var::from_tensor(&random(112, (1, out_channels)).flatten_all().unwrap()).unwrap();
        let weights = random(113, (geometry.patch_rows(), out_channels));
        let inputs = [&xs, &weight, &bias];
        let analytic = gradients(ours_conv2d, inputs, weights.as_tensor(), geometry);

        let loss = || -> f64 {
            let out = conv2d(
                xs.as_tensor(),
                weight.as_tensor(),
                bias.as_tensor(),
                geometry,
            );
            dot(&out.unwrap(), weights.as_tensor())
        };
        let step = 1e-2f32;
        for (var, grad) in inputs.iter().zip(&analytic) {
            let (values, grad) = (host(var.as_tensor()), host(grad));
            for index in (0..values.len()).step_by(7) {
                let mut shifted = values.clone();
                let mut at = |offset: f32| {
                    shifted[index] = values[index] + offset;
                    let tensor = Tensor::from_vec(shifted.clone(), var.shape(), &Device::Cpu);
                    var.set(&tensor.unwrap()).unwrap();
                    loss()
                };
                let numeric = (at(step) - at(-step)) / (2.0 * f64::from(step));
                var.set(&Tensor::from_vec(values.clone(), var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let error = (numeric - f64::from(grad[index])).abs();
                assert!(
                    error < 1e-2 * (1.0 + numeric.abs()),
                    "{numeric} vs {}",
                    grad[index]
                );
            }
        }
    }

    #[test]
    fn ops_refuse_other_dtypes_and_wrong_shapes() {
        let geometry = strided(geometry(1, (4, 4), 2, 3), 1, 1);
        let xs = Tensor::zeros((16, 2), DType::F64, &Device::Cpu).unwrap();
        let message = im2col(&xs, geometry).unwrap_err().to_string();
        assert!(message.contains("f32"), "{message}");
        let xs = Tensor::zeros((15, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(im2col(&xs, geometry).is_err());
        let too_big = Geometry {
            kernel: 7,
            ..geometry
        };
        let xs = Tensor::zeros((16, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(im2col(&xs, too_big).is_err());
        let no_width = Geometry {
            width: 0,
            ..geometry
        };
        let empty = Tensor::zeros((0, 2), DType::F32, &Device::Cpu).unwrap();
        assert!(im2col(&empty, no_width).is_err());
        assert!(col2im(&empty.reshape((0, 18)).unwrap(), no_width).is_err());
    }

    /// Runs `op` once to warm up, then ten times, and prints the mean time.
    fn time(name: &str, op: impl Fn()) {
        op();
        let start = Instant::now();
        for _ in 0..10 {
            op();
        }
        let each = start.elapsed().as_secs_f64() * 1e2;
        println!("{name}: {each:.2} ms");
    }

    /// Forward and backward of one DCGAN critic layer, batch 64, 14×14×64 → 7×7×128, against
    /// candle's convolution, and the two copies alone. Run with
    /// `cargo test --lib gan::conv::tests::time_conv2d -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand"]
    fn time_conv2d_against_candle() {
        let geometry = strided(geometry(64, (14, 14), 64, 4), 2, 1);
        let out_channels = 128;
        let xs = random(120, (geometry.image_rows(), geometry.channels));
        let weight = random(121, (out_channels, geometry.patch()));
        let bias =
            Var::from_tensor(&random(122, (1, out_channels)).flatten_all().unwrap()).unwrap();
        let weights = random(123, (geometry.patch_rows(), out_channels));
        let inputs = [&xs, &weight, &bias];
        for (name, conv) in [("ours", ours_conv2d as Conv), ("candle", candle_conv2d)] {
            time(&format!("{name} forward + backward"), || {
                gradients(conv, inputs, weights.as_tensor(), geometry);
            });
        }
        let cols = im2col(xs.as_tensor(), geometry).unwrap();
        time("im2col", || drop(im2col(xs.as_tensor(), geometry).unwrap()));
        time("col2im", || drop(col2im(&cols, geometry).unwrap()));
    }
}
