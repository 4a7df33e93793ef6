//! Image GAN presets, their training on the shared loop, and their model directories.
//!
//! Every preset trains through [`crate::gan::train::train`] with the losses of
//! [`crate::gan::loss`], the optimiser of [`crate::gan::optim`], seeded streams of
//! [`crate::rng`] and the model directories of [`crate::gan::checkpoint`], the same pieces the
//! tabular model uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::data::{ImageSet, write_grid};
use super::metrics::mean_pairwise_distance;
use super::nets::{Discriminator, Family, Generator, NetConfig, Shape};
use crate::error::{Error, Result};
use crate::gan::checkpoint;
use crate::gan::loss::{self, Objective};
use crate::gan::optim::{Adam, AdamConfig};
use crate::gan::train::{Adversarial, Control, EpochMetrics, StepLosses};
use crate::rng::{Purpose, Stream, fill_normal, stream, substream};

/// The format name written in every image model's manifest.
pub const FORMAT: &str = "synth-image-model";
/// The manifest layout version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A named architecture with its training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Name on the command line.
    pub name: &'static str,
    /// One line for `synth image presets`.
    pub description: &'static str,
    /// Network family.
    pub family: Family,
    /// The adversarial game.
    pub objective: Objective,
    /// Whether both networks see the class label.
    pub conditional: bool,
    /// WGAN-GP penalty weight, for presets with a gradient penalty.
    pub penalty: Option<f64>,
    /// Critic updates per generator update.
    pub critic_steps: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Adam's moment decays.
    pub betas: (f64, f64),
    /// Images per batch.
    pub batch_size: usize,
    /// Network width (see [`NetConfig::width`]).
    pub width: usize,
    /// Batch normalisation in the discriminator.
    pub discriminator_batch_norm: bool,
    /// Default epochs.
    pub epochs: usize,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "mnist-gan",
        description: "Goodfellow et al. 2014: fully connected generator (batch-normalised) and discriminator, non-saturating loss",
        family: Family::Dense,
        objective: Objective::NonSaturating,
        conditional: false,
        penalty: None,
        critic_steps: 1,
        learning_rate: 2e-4,
        betas: (0.5, 0.999),
        batch_size: 64,
        width: 128,
        discriminator_batch_norm: false,
        epochs: 20,
    },
    Preset {
        name: "mnist-dcgan",
        description: "Radford et al. 2015: strided-convolution generator and discriminator with batch norm, for 28×28",
        family: Family::Convolutional,
        objective: Objective::NonSaturating,
        conditional: false,
        penalty: None,
        critic_steps: 1,
        learning_rate: 2e-4,
        betas: (0.5, 0.999),
        batch_size: 64,
        width: 64,
        discriminator_batch_norm: true,
        epochs: 5,
    },
    Preset {
        name: "mnist-cgan",
        description: "conditional DCGAN: the label feeds the generator's input and the discriminator's input planes; `--label` at generation",
        family: Family::Convolutional,
        objective: Objective::NonSaturating,
        conditional: true,
        penalty: None,
        critic_steps: 1,
        learning_rate: 2e-4,
        betas: (0.5, 0.999),
        batch_size: 64,
        width: 64,
        discriminator_batch_norm: true,
        epochs: 5,
    },
    Preset {
        name: "mnist-wgan-gp",
        description: "Gulrajani et al. 2017: convolutional critic without batch norm, Wasserstein loss with gradient penalty 10, 5 critic steps",
        family: Family::Convolutional,
        objective: Objective::Wasserstein,
        conditional: false,
        penalty: Some(10.0),
        critic_steps: 5,
        learning_rate: 1e-4,
        betas: (0.5, 0.9),
        batch_size: 64,
        width: 64,
        discriminator_batch_norm: false,
        epochs: 10,
    },
];

/// The preset called `name`, or an error listing them.
pub fn preset(name: &str) -> Result<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| Error::Flag {
            flag: "--preset".into(),
            reason: format!(
                "unknown preset `{name}`; valid ones are {}",
                PRESETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Everything a run was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// The preset's name.
    pub preset: String,
    /// The networks.
    pub net: NetConfig,
    /// The adversarial game.
    pub objective: Objective,
    /// WGAN-GP penalty weight.
    pub penalty: Option<f64>,
    /// Critic updates per generator update.
    pub critic_steps: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Adam's first-moment decay.
    pub beta1: f64,
    /// Adam's second-moment decay.
    pub beta2: f64,
    /// Images per batch.
    pub batch_size: usize,
    /// Generator trained to match the discriminator's mean features instead of fooling it.
    pub feature_matching: bool,
    /// Epochs asked for.
    pub epochs: usize,
    /// Names of the classes, for conditional models.
    pub class_names: Vec<String>,
}

impl ImageConfig {
    /// The preset's settings for images of `shape` with `classes` label names.
    pub fn from_preset(preset: &Preset, shape: Shape, class_names: Vec<String>) -> ImageConfig {
        let classes = if preset.conditional {
            class_names.len()
        } else {
            0
        };
        ImageConfig {
            preset: preset.name.into(),
            net: NetConfig {
                family: preset.family,
                shape,
                classes,
                noise_dim: 100,
                width: preset.width,
                discriminator_batch_norm: preset.discriminator_batch_norm,
                spectral_norm: false,
            },
            objective: preset.objective,
            penalty: preset.penalty,
            critic_steps: preset.critic_steps,
            learning_rate: preset.learning_rate,
            beta1: preset.betas.0,
            beta2: preset.betas.1,
            batch_size: preset.batch_size,
            feature_matching: false,
            epochs: preset.epochs,
            class_names: if preset.conditional {
                class_names
            } else {
                Vec::new()
            },
        }
    }
}

/// Everything about an image model except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// Version of synth that wrote it.
    pub synth_version: String,
    /// The master seed.
    pub seed: u64,
    /// Settings.
    pub config: ImageConfig,
    /// Where the training images came from.
    pub data: String,
    /// Training images.
    pub images: usize,
    /// Epochs run (a cut-short one included).
    pub epochs_run: usize,
}

/// A trained image model.
#[derive(Debug)]
pub struct ImageModel {
    /// Settings and provenance.
    pub manifest: ImageManifest,
    /// The generator.
    pub generator: Generator,
    /// The discriminator.
    pub discriminator: Discriminator,
    /// Losses per epoch.
    pub history: Vec<EpochMetrics>,
}

impl ImageModel {
    /// Fresh networks for `config`, initialised from `seed`.
    pub fn new(manifest: ImageManifest, device: &Device) -> Result<ImageModel> {
        let mut init = stream(manifest.seed, Purpose::Init);
        let generator = Generator::new(&manifest.config.net, &mut init, device)?;
        let discriminator = Discriminator::new(&manifest.config.net, &mut init, device)?;
        Ok(ImageModel {
            manifest,
            generator,
            discriminator,
            history: Vec::new(),
        })
    }

    /// Writes the model directory `dir`, refusing to replace one unless `force`.
    pub fn save(&self, dir: &Path, force: bool) -> Result<()> {
        let mut tensors: BTreeMap<String, Tensor> = self.generator.params.tensors("generator");
        tensors.extend(self.discriminator.params.tensors("discriminator"));
        checkpoint::save_model(dir, &self.manifest, &tensors, &self.history, force)
    }

    /// Loads the model directory `dir`.
    pub fn load(dir: &Path, device: &Device) -> Result<ImageModel> {
        let model_error = |reason: String| Error::Model {
            path: dir.to_owned(),
            reason,
        };
        let manifest: ImageManifest =
            checkpoint::read_manifest(dir, FORMAT, "image", FORMAT_VERSION)?;
        let model = ImageModel::new(manifest, device)?;
        let weights = checkpoint::read_weights(dir, device)?;
        model
            .generator
            .params
            .load("generator", &weights)
            .map_err(|e| model_error(e.to_string()))?;
        model
            .discriminator
            .params
            .load("discriminator", &weights)
            .map_err(|e| model_error(e.to_string()))?;
        let history = crate::report::training_history(dir);
        Ok(ImageModel { history, ..model })
    }

    /// Generates `count` images, all of class `label` when given (conditional models), else
    /// of classes drawn uniformly; returns the pixels and the classes.
    pub fn sample(
        &self,
        count: usize,
        label: Option<u32>,
        seed: u64,
    ) -> Result<(Vec<f32>, Vec<u32>)> {
        let mut noise_rng = substream(seed, Purpose::Generate, 0);
        let mut label_rng = substream(seed, Purpose::Generate, 1);
        let classes = self.manifest.config.net.classes;
        if let Some(label) = label
            && (classes == 0 || label as usize >= classes)
        {
            return Err(Error::Flag {
                flag: "--label".into(),
                reason: if classes == 0 {
                    format!(
                        "preset `{}` is not conditional",
                        self.manifest.config.preset
                    )
                } else {
                    format!(
                        "must be below {classes} (the classes are {})",
                        self.manifest.config.class_names.join(", ")
                    )
                },
            });
        }
        let device = self
            .generator
            .params
            .iter()
            .next()
            .map_or(Device::Cpu, |(_, v)| v.device().clone());
        let mut pixels = Vec::with_capacity(count * self.manifest.config.net.shape.pixels());
        let mut labels = Vec::with_capacity(count);
        const BATCH: usize = 256;
        let mut done = 0;
        while done < count {
            let n = BATCH.min(count - done);
            let batch_labels: Vec<u32> = (0..n)
                .map(|_| {
                    label.unwrap_or_else(|| {
                        if classes > 0 {
                            label_rng.random_range(0..classes as u32)
                        } else {
                            0
                        }
                    })
                })
                .collect();
            let images = generate(
                &self.generator,
                &self.manifest.config,
                &batch_labels,
                &mut noise_rng,
                &device,
            )?;
            pixels.extend(images);
            labels.extend(batch_labels);
            done += n;
        }
        Ok((pixels, labels))
    }
}

fn one_hot(labels: &[u32], classes: usize, device: &Device) -> Result<Option<Tensor>> {
    if classes == 0 {
        return Ok(None);
    }
    let mut values = vec![0.0f32; labels.len() * classes];
    for (row, &label) in labels.iter().enumerate() {
        values[row * classes + label as usize] = 1.0;
    }
    Ok(Some(Tensor::from_vec(
        values,
        (labels.len(), classes),
        device,
    )?))
}

fn noise(rows: usize, dim: usize, rng: &mut Stream, device: &Device) -> Result<Tensor> {
    let mut values = vec![0.0f32; rows * dim];
    fill_normal(rng, &mut values);
    Ok(Tensor::from_vec(values, (rows, dim), device)?)
}

/// Generator output for `labels.len()` images, detached, on the host.
fn generate(
    generator: &Generator,
    config: &ImageConfig,
    labels: &[u32],
    rng: &mut Stream,
    device: &Device,
) -> Result<Vec<f32>> {
    let z = noise(labels.len(), config.net.noise_dim, rng, device)?;
    let labels = one_hot(labels, config.net.classes, device)?;
    let images = generator.forward(&z, labels.as_ref())?;
    Ok(images.detach().flatten_all()?.to_vec1::<f32>()?)
}

/// Where sample grids go during training, and how often.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Folder of the grids, created on first use.
    pub folder: PathBuf,
    /// A grid every this many epochs (0: none).
    pub every: usize,
    /// Generated over real diversity below which mode collapse is reported (from the second
    /// epoch on).
    pub collapse_ratio: f64,
}

/// A training run of an image model: the [`Adversarial`] the shared loop drives.
pub struct Trainer<'a> {
    model: &'a ImageModel,
    data: &'a ImageSet,
    generator_optimiser: Adam,
    critic_optimiser: Adam,
    rows: Stream,
    noise: Stream,
    labels: Stream,
    penalty: Stream,
    device: Device,
    monitor: Option<Monitor>,
    /// Warnings raised at the end of epochs (mode collapse), for the caller to show.
    pub warnings: Vec<String>,
    real_diversity: Option<f64>,
}

impl<'a> Trainer<'a> {
    /// Prepares training of `model` on `data`.
    pub fn new(
        model: &'a ImageModel,
        data: &'a ImageSet,
        device: &Device,
        monitor: Option<Monitor>,
    ) -> Result<Trainer<'a>> {
        let config = &model.manifest.config;
        let adam = AdamConfig {
            learning_rate: config.learning_rate,
            beta1: config.beta1,
            beta2: config.beta2,
            epsilon: 1e-8,
            weight_decay: 0.0,
        };
        let seed = model.manifest.seed;
        Ok(Trainer {
            model,
            data,
            generator_optimiser: Adam::new(&model.generator.params, adam)?,
            critic_optimiser: Adam::new(&model.discriminator.params, adam)?,
            rows: stream(seed, Purpose::Rows),
            noise: stream(seed, Purpose::Noise),
            labels: stream(seed, Purpose::Condition),
            penalty: stream(seed, Purpose::Penalty),
            device: device.clone(),
            monitor,
            warnings: Vec::new(),
            real_diversity: None,
        })
    }

    fn config(&self) -> &ImageConfig {
        &self.model.manifest.config
    }

    /// A batch of real images with their labels.
    fn real_batch(&mut self) -> Result<(Tensor, Vec<u32>)> {
        let batch = self.config().batch_size;
        let size = self.data.pixels_per_image();
        let mut pixels = Vec::with_capacity(batch * size);
        let mut labels = Vec::with_capacity(batch);
        for _ in 0..batch {
            let index = self.rows.random_range(0..self.data.count);
            pixels.extend_from_slice(self.data.image(index));
            labels.push(self.data.labels.as_ref().map_or(0, |l| l[index]));
        }
        Ok((
            Tensor::from_vec(pixels, (batch, size), &self.device)?,
            labels,
        ))
    }

    fn fake_labels(&mut self) -> Vec<u32> {
        let (batch, classes) = (self.config().batch_size, self.config().net.classes);
        (0..batch)
            .map(|_| {
                if classes > 0 {
                    self.labels.random_range(0..classes as u32)
                } else {
                    0
                }
            })
            .collect()
    }
}

impl Adversarial for Trainer<'_> {
    fn critic_step(&mut self) -> Result<StepLosses> {
        let (real, real_labels) = self.real_batch()?;
        let fake_labels = self.fake_labels();
        let config = self.config().clone();
        let classes = config.net.classes;
        let z = noise(
            fake_labels.len(),
            config.net.noise_dim,
            &mut self.noise,
            &self.device,
        )?;
        let fake_onehot = one_hot(&fake_labels, classes, &self.device)?;
        let fake = self
            .model
            .generator
            .forward(&z, fake_onehot.as_ref())?
            .detach();
        let real_onehot = one_hot(&real_labels, classes, &self.device)?;
        let discriminator = &self.model.discriminator;
        let real_scores = discriminator.forward(&real, real_onehot.as_ref())?.scores;
        let fake_scores = discriminator.forward(&fake, fake_onehot.as_ref())?.scores;
        let adversarial = loss::critic_loss(config.objective, &real_scores, &fake_scores)?;
        let mut total = adversarial.clone();
        let mut penalty_value = 0.0;
        if let Some(weight) = config.penalty {
            let mixed = loss::interpolates(&real, &fake, 1, &mut self.penalty)?;
            let scored = discriminator.forward(&mixed, real_onehot.as_ref())?;
            let penalty = loss::gradient_penalty(&discriminator.input_gradient(&scored)?, weight)?;
            penalty_value = scalar(&penalty)?;
            total = (total + penalty)?;
        }
        let grads = total.backward()?;
        self.critic_optimiser.step(&grads)?;
        Ok(StepLosses {
            critic: scalar(&adversarial)?,
            penalty: penalty_value,
        })
    }

    fn generator_step(&mut self) -> Result<f64> {
        let config = self.config().clone();
        let labels = self.fake_labels();
        let z = noise(
            labels.len(),
            config.net.noise_dim,
            &mut self.noise,
            &self.device,
        )?;
        let onehot = one_hot(&labels, config.net.classes, &self.device)?;
        let fake = self.model.generator.forward(&z, onehot.as_ref())?;
        let scored = self.model.discriminator.forward(&fake, onehot.as_ref())?;
        let loss = if config.feature_matching {
            let (real, real_labels) = self.real_batch()?;
            let real_onehot = one_hot(&real_labels, config.net.classes, &self.device)?;
            let real_features = self
                .model
                .discriminator
                .forward(&real, real_onehot.as_ref())?
                .features;
            loss::feature_matching(&real_features, &scored.features)?
        } else {
            loss::generator_loss(config.objective, &scored.scores)?
        };
        let grads = loss.backward()?;
        self.generator_optimiser.step(&grads)?;
        scalar(&loss)
    }

    fn steps_per_epoch(&self) -> usize {
        let config = self.config();
        (self.data.count / (config.batch_size * config.critic_steps)).max(1)
    }

    fn epoch_end(&mut self, metrics: &mut EpochMetrics) -> Result<Control> {
        let Some(monitor) = self.monitor.clone() else {
            return Ok(Control::Continue);
        };
        if monitor.every == 0 || !metrics.epoch.is_multiple_of(monitor.every) {
            return Ok(Control::Continue);
        }
        // The same noise every time, so grids from successive epochs are comparable.
        let (pixels, _) = self.model.sample(64, None, self.model.manifest.seed)?;
        let shape = self.config().net.shape;
        std::fs::create_dir_all(&monitor.folder).map_err(|error| Error::Write {
            path: monitor.folder.clone(),
            reason: error.to_string(),
        })?;
        let path = monitor
            .folder
            .join(format!("epoch-{:04}.png", metrics.epoch));
        write_grid(
            &path,
            &pixels,
            64,
            shape.height,
            shape.width,
            shape.channels,
            8,
        )?;

        // Diversity: mean pairwise pixel distance of generated against real images.
        let size = shape.pixels();
        if self.real_diversity.is_none() {
            let count = self.data.count.min(256);
            let real = &self.data.pixels[..count * size];
            self.real_diversity = Some(mean_pairwise_distance(real, size, 256));
        }
        let generated = mean_pairwise_distance(&pixels, size, 256);
        // The first epoch's samples are often alike while the generator finds its footing.
        if let Some(real) = self.real_diversity
            && metrics.epoch > 1
            && real > 0.0
            && generated / real < monitor.collapse_ratio
        {
            self.warnings.push(format!(
                "epoch {}: generated images are much less varied than real ones (mean pairwise distance {:.2} against {:.2}); the generator may be collapsing onto a few modes",
                metrics.epoch, generated, real
            ));
        }
        Ok(Control::Continue)
    }
}

fn scalar(tensor: &Tensor) -> Result<f64> {
    Ok(f64::from(tensor.to_scalar::<f32>()?))
}
