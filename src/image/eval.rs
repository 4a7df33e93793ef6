//! `synth image eval`: how close generated images come to real ones, measured in the feature
//! space of synth's own classifier ([`super::classifier`]), each figure beside the same figure
//! for two disjoint sets of real images (the real-vs-real baseline).

use candle_core::Device;
use rand::seq::SliceRandom;
use serde::Serialize;

use super::classifier::{Classifier, FEATURES};
use super::data::ImageSet;
use super::metrics::{Gaussian, Prdc, frechet_distance, mean_pairwise_distance, prdc};
use super::model::ImageModel;
use crate::error::{Error, Result};
use crate::rng::{Purpose, substream};

/// Neighbours of the precision, recall, density and coverage balls.
pub const NEIGHBOURS: usize = 5;
/// Passes the classifier trains for.
pub const CLASSIFIER_EPOCHS: usize = 5;

/// A figure for generated images and for the real baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pair<T> {
    /// Generated against real images.
    pub generated: T,
    /// Real images against other real images.
    pub real_baseline: T,
}

/// The evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Images of each kind compared.
    pub samples: usize,
    /// The classifier's accuracy on the held-out real images.
    pub classifier_accuracy: f64,
    /// Fréchet distance between Gaussians fitted to the classifier features (synth's own
    /// classifier, not Inception: not comparable with published FID figures).
    pub classifier_frechet_distance: Pair<f64>,
    /// Precision, recall, density and coverage in the same feature space.
    pub prdc: Pair<Prdc>,
    /// For conditional models: share of images the classifier assigns to the requested label.
    pub conditional_accuracy: Option<Pair<f64>>,
    /// Share of the classes the classifier sees among the images.
    pub class_coverage: Pair<f64>,
    /// Mean pairwise feature distance, a diversity figure.
    pub diversity: Pair<f64>,
}

/// Evaluates `model` on `samples` generated images against the real `data`, split into three
/// disjoint parts: half trains the classifier, a quarter is the reference, a quarter the
/// real baseline.
pub fn evaluate(
    model: &ImageModel,
    data: &ImageSet,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<Evaluation> {
    let labels = data.labels.as_ref().ok_or_else(|| Error::Flag {
        flag: "--data".into(),
        reason: "evaluation needs labelled images (IDX labels, or one PNG subfolder per class)"
            .into(),
    })?;
    if data.count < 8 {
        return Err(Error::Flag {
            flag: "--data".into(),
            reason: format!("{} images are too few to evaluate on", data.count),
        });
    }
    // Half the images, drawn at random, train the classifier; a quarter are the reference the
    // generated images are measured against, and the last quarter, unseen by the classifier
    // like the reference, are the real baseline. (A split by position would not do: in MNIST's
    // file, neighbouring images come from different groups of writers.)
    let size = data.pixels_per_image();
    let mut order: Vec<usize> = (0..data.count).collect();
    order.shuffle(&mut substream(seed, Purpose::Split, 11));
    let mut slot = vec![0usize; data.count];
    for (position, &i) in order.iter().enumerate() {
        slot[i] = position * 4 / data.count;
    }
    let part = |keep: &dyn Fn(usize) -> bool| -> (Vec<f32>, Vec<u32>) {
        let rows: Vec<usize> = (0..data.count).filter(|&i| keep(slot[i])).collect();
        let mut pixels = Vec::with_capacity(rows.len() * size);
        for &i in &rows {
            pixels.extend_from_slice(data.image(i));
        }
        (pixels, rows.iter().map(|&i| labels[i]).collect())
    };
    let (training, training_labels) = part(&|slot| slot < 2);
    let (reference, reference_labels) = part(&|slot| slot == 2);
    let (baseline, baseline_labels) = part(&|slot| slot == 3);
    let train_set = ImageSet {
        pixels: training,
        labels: Some(training_labels.clone()),
        count: training_labels.len(),
        height: data.height,
        width: data.width,
        channels: data.channels,
        classes: data.classes.clone(),
    };
    let classifier = Classifier::train(&train_set, CLASSIFIER_EPOCHS, seed, device)?;
    let classifier_accuracy = classifier.accuracy(&baseline, &baseline_labels)?;

    let count = samples
        .min(reference_labels.len())
        .min(baseline_labels.len());
    let (generated, requested) = model.sample(count, None, seed)?;
    let features = |pixels: &[f32]| classifier.features(&pixels[..count * size]);
    let (real_features, baseline_features, generated_features) = (
        features(&reference)?,
        features(&baseline)?,
        classifier.features(&generated)?,
    );

    let reference_gaussian = Gaussian::fit(&real_features, FEATURES);
    let frechet = Pair {
        generated: frechet_distance(
            &Gaussian::fit(&generated_features, FEATURES),
            &reference_gaussian,
        ),
        real_baseline: frechet_distance(
            &Gaussian::fit(&baseline_features, FEATURES),
            &reference_gaussian,
        ),
    };
    let prdc = Pair {
        generated: prdc(&real_features, &generated_features, FEATURES, NEIGHBOURS),
        real_baseline: prdc(&real_features, &baseline_features, FEATURES, NEIGHBOURS),
    };
    let classes = data.classes.len().max(1);
    let coverage = |predicted: &[u32]| {
        let mut seen = vec![false; classes];
        for &p in predicted {
            if let Some(slot) = seen.get_mut(p as usize) {
                *slot = true;
            }
        }
        seen.iter().filter(|&&s| s).count() as f64 / classes as f64
    };
    let generated_predicted = classifier.predict(&generated)?;
    let baseline_predicted = classifier.predict(&baseline[..count * size])?;
    let conditional_accuracy = if model.manifest.config.net.classes > 0 {
        let right = generated_predicted
            .iter()
            .zip(&requested)
            .filter(|(p, r)| p == r)
            .count();
        Some(Pair {
            generated: right as f64 / count.max(1) as f64,
            real_baseline: classifier
                .accuracy(&baseline[..count * size], &baseline_labels[..count])?,
        })
    } else {
        None
    };
    Ok(Evaluation {
        samples: count,
        classifier_accuracy,
        classifier_frechet_distance: frechet,
        prdc,
        conditional_accuracy,
        class_coverage: Pair {
            generated: coverage(&generated_predicted),
            real_baseline: coverage(&baseline_predicted),
        },
        diversity: Pair {
            generated: mean_pairwise_distance(&generated_features, FEATURES, 2000),
            real_baseline: mean_pairwise_distance(&baseline_features, FEATURES, 2000),
        },
    })
}
