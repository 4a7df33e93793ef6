//! Choosing the epoch a fit keeps: the kept weights are the best-scoring check's, restored
//! exactly, and checks can be turned off or end training early.

mod common;

use candle_core::Device;
use common::datasets;
use synth::config::FitConfig;
use synth::data::io::read_table;
use synth::data::schema::Schema;
use synth::gan::train::Control;
use synth::tabular::ctgan::Networks;
use synth::tabular::select::Selector;
use synth::tabular::{DataSummary, TabularModel, fit};

fn flat(tensor: &candle_core::Tensor) -> Vec<f32> {
    tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn fit_german(
    configure: impl FnOnce(&mut FitConfig),
) -> (polars::prelude::DataFrame, TabularModel) {
    let frame = read_table(&datasets().join("german_credit.parquet")).unwrap();
    let mut config = FitConfig::default();
    config.gan.epochs = 4;
    configure(&mut config);
    let schema = Schema::infer(&frame, &config.encode).unwrap();
    let data = DataSummary {
        source: "german_credit.parquet".into(),
        fingerprint: String::new(),
        rows: frame.height(),
        path: None,
        holdout: None,
    };
    let model = fit(&frame, &schema, &config, 5, data, &Device::Cpu, |_| {
        Ok(Control::Continue)
    })
    .unwrap();
    (frame, model)
}

#[test]
fn the_kept_weights_are_the_best_checks_and_score_as_it_did() {
    let (frame, model) = fit_german(|config| config.select.every = Some(1));
    let qualities: Vec<f64> = model
        .history
        .iter()
        .map(|epoch| epoch.quality.expect("every epoch is checked"))
        .collect();
    assert_eq!(qualities.len(), 4);
    // Each check draws the same seeded noise, so checks that read the same weights would
    // score the same: they read the weights trained by their epoch.
    assert!(
        qualities.windows(2).any(|pair| pair[0] != pair[1]),
        "{qualities:?}"
    );
    let selected = model.manifest.selected.expect("a check was kept");
    let best = qualities.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(selected.quality, best);
    assert_eq!(qualities[selected.epoch - 1], best);

    // Scoring the saved networks again draws the same rows, so it must give the kept score.
    let manifest = &model.manifest;
    let selector = Selector::new(
        &manifest.config.select,
        manifest.config.gan.epochs,
        &frame,
        &manifest.encoder.schema,
        &model.networks,
        &manifest.config.gan,
        &manifest.encoder,
        manifest.seed,
    )
    .unwrap()
    .unwrap();
    assert_eq!(selector.score().unwrap(), best);
}

#[test]
fn checks_can_be_turned_off() {
    let (_, model) = fit_german(|config| config.select.every = Some(0));
    assert!(model.manifest.selected.is_none());
    // The saved weights are the trained ones, not those the networks started from.
    let manifest = &model.manifest;
    let untrained = Networks::new(
        &manifest.config.gan,
        &manifest.encoder.layout,
        manifest.seed,
        &Device::Cpu,
    )
    .unwrap()
    .tensors();
    for (name, tensor) in model.networks.tensors() {
        let (trained, initial) = (flat(&tensor), flat(&untrained[&name]));
        assert!(trained != initial, "`{name}` was not trained");
    }
    assert!(model.history.iter().all(|epoch| epoch.quality.is_none()));
    assert_eq!(model.history.len(), 4);
}

#[test]
fn patience_ends_training_after_checks_without_a_better_score() {
    let (_, model) = fit_german(|config| {
        config.gan.epochs = 60;
        config.select.every = Some(1);
        config.select.patience = Some(2);
    });
    let run = model.manifest.epochs_run;
    assert!(run < 60, "ran all {run} epochs");
    let qualities: Vec<f64> = model.history.iter().filter_map(|e| e.quality).collect();
    let selected = model.manifest.selected.unwrap();
    // Training ended exactly two checks after the best one.
    assert_eq!(run, selected.epoch + 2);
    assert!(
        qualities[selected.epoch..]
            .iter()
            .all(|&q| q <= selected.quality)
    );
}
