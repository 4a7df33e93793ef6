//! A small classifier of real images, trained by synth itself, whose hidden layer is the
//! feature space generated images are measured in.
//!
//! It is a three-layer perceptron (pixels → 256 → 128 → classes, ReLU) trained with Adam on
//! the real training images. Its 128 hidden units play the role Inception features play in FID;
//! distances in this space are *not* comparable with Inception FID figures.

use candle_core::{D, DType, Device, Tensor};
use rand::seq::SliceRandom;

use super::data::ImageSet;
use crate::error::{Error, Result};
use crate::gan::fused::LinearGrads;
use crate::gan::nn::{Linear, Params};
use crate::gan::optim::{Adam, AdamConfig};
use crate::rng::{Purpose, substream};

/// Width of the feature layer.
pub const FEATURES: usize = 128;
/// Images per training batch.
const BATCH: usize = 128;
/// Images per inference batch.
const INFERENCE_BATCH: usize = 1024;

/// The trained classifier.
#[derive(Debug)]
pub struct Classifier {
    hidden: Linear,
    features: Linear,
    output: Linear,
    pixels: usize,
    device: Device,
}

impl Classifier {
    /// Trains on every labelled image of `data` for `epochs` passes.
    pub fn train(data: &ImageSet, epochs: usize, seed: u64, device: &Device) -> Result<Classifier> {
        let labels = data.labels.as_ref().ok_or_else(|| Error::Flag {
            flag: "--data".into(),
            reason: "the evaluation classifier needs labelled images (IDX labels, or one PNG subfolder per class)".into(),
        })?;
        let classes = data.classes.len().max(1);
        let pixels = data.pixels_per_image();
        let mut init = substream(seed, Purpose::Init, 7);
        let mut params = Params::default();
        let hidden = Linear::new(
            &mut params,
            "hidden",
            pixels,
            256,
            &mut init,
            device,
            DType::F32,
        )?;
        let features = Linear::new(
            &mut params,
            "features",
            256,
            FEATURES,
            &mut init,
            device,
            DType::F32,
        )?;
        let output = Linear::new(
            &mut params,
            "output",
            FEATURES,
            classes,
            &mut init,
            device,
            DType::F32,
        )?;
        let classifier = Classifier {
            hidden,
            features,
            output,
            pixels,
            device: device.clone(),
        };
        let mut optimiser = Adam::new(
            &params,
            AdamConfig {
                learning_rate: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.0,
            },
        )?;
        let mut rng = substream(seed, Purpose::Rows, 7);
        let mut order: Vec<usize> = (0..data.count).collect();
        for _ in 0..epochs {
            order.shuffle(&mut rng);
            for batch in order.chunks(BATCH) {
                let mut values = Vec::with_capacity(batch.len() * pixels);
                for &i in batch {
                    values.extend_from_slice(data.image(i));
                }
                let xs = Tensor::from_vec(values, (batch.len(), pixels), device)?;
                let targets: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
                let targets = Tensor::from_vec(targets, batch.len(), device)?;
                let logits = classifier.logits(&xs, true)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
                optimiser.step(&loss.backward()?)?;
            }
        }
        Ok(classifier)
    }

    fn hidden_features(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let grads = if train {
            LinearGrads::Weights
        } else {
            LinearGrads::Input
        };
        let h = self.hidden.forward(xs, grads)?.relu()?;
        let grads = if train {
            LinearGrads::All
        } else {
            LinearGrads::Input
        };
        Ok(self.features.forward(&h, grads)?.relu()?)
    }

    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let grads = if train {
            LinearGrads::All
        } else {
            LinearGrads::Input
        };
        self.output
            .forward(&self.hidden_features(xs, train)?, grads)
    }

    fn in_batches(
        &self,
        pixels: &[f32],
        mut each: impl FnMut(&Tensor) -> Result<()>,
    ) -> Result<()> {
        for chunk in pixels.chunks(INFERENCE_BATCH * self.pixels) {
            let xs = Tensor::from_vec(
                chunk.to_vec(),
                (chunk.len() / self.pixels, self.pixels),
                &self.device,
            )?;
            each(&xs)?;
        }
        Ok(())
    }

    /// Feature rows `[count, FEATURES]` of images given as consecutive pixel rows.
    pub fn features(&self, pixels: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(pixels.len() / self.pixels * FEATURES);
        self.in_batches(pixels, |xs| {
            out.extend(
                self.hidden_features(xs, false)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
            Ok(())
        })?;
        Ok(out)
    }

    /// The predicted class of each image.
    pub fn predict(&self, pixels: &[f32]) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(pixels.len() / self.pixels);
        self.in_batches(pixels, |xs| {
            out.extend(
                self.logits(xs, false)?
                    .argmax(D::Minus1)?
                    .to_vec1::<u32>()?,
            );
            Ok(())
        })?;
        Ok(out)
    }

    /// Share of `labels` predicted correctly.
    pub fn accuracy(&self, pixels: &[f32], labels: &[u32]) -> Result<f64> {
        let predicted = self.predict(pixels)?;
        let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(right as f64 / labels.len().max(1) as f64)
    }
}
