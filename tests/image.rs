//! `synth image`: every preset trains a few steps and generates; model directories round-trip;
//! evaluation runs; bad arguments are named.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn sample() -> PathBuf {
    common::datasets().join("mnist-sample")
}

/// Trains `preset` for a few steps in `dir`, with extra flags.
fn fit(dir: &Path, preset: &str, extra: &[&str]) -> PathBuf {
    let model = dir.join(format!("{preset}.synth-image"));
    common::success(
        common::synth(dir)
            .args([
                "image",
                "fit",
                "--preset",
                preset,
                "--max-steps",
                "3",
                "--batch-size",
                "16",
                "--seed",
                "5",
            ])
            .arg("--data")
            .arg(sample())
            .arg("--model")
            .arg(&model)
            .args(extra),
        &format!("{preset}: "),
    );
    model
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn every_preset_trains_and_generates() {
    let dir = tempfile::tempdir().unwrap();
    let listed = common::synth(dir.path())
        .args(["image", "presets"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for preset in ["mnist-gan", "mnist-dcgan", "mnist-cgan", "mnist-wgan-gp"] {
        assert!(listed.contains(preset), "{listed}");
        let model = fit(dir.path(), preset, &[]);
        for file in ["manifest.json", "weights.safetensors", "metrics.jsonl"] {
            assert!(model.join(file).is_file(), "{preset}: {file}");
        }
        let metrics = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
        let epoch: Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
        assert!(
            epoch["generator_loss"].as_f64().unwrap().is_finite(),
            "{preset}: {epoch}"
        );
        if preset == "mnist-wgan-gp" {
            assert!(
                epoch["penalty"].as_f64().unwrap() > 0.0,
                "the critic's penalty is computed"
            );
        }
        let grid = dir.path().join(format!("{preset}.png"));
        let mut command = common::synth(dir.path());
        command
            .args(["image", "generate", "-n", "9", "--seed", "1"])
            .arg("--model")
            .arg(&model)
            .arg("--out")
            .arg(&grid);
        if preset == "mnist-cgan" {
            command.args(["--label", "7"]);
        }
        command.assert().success();
        // Three columns of 28 pixels with 2-pixel gaps around and between them.
        assert_eq!(
            png_size(&grid),
            (3 * 28 + 4 * 2, 3 * 28 + 4 * 2),
            "{preset}"
        );
        assert!(
            dir.path()
                .join(format!("{preset}.synth-image.samples/epoch-0001.png"))
                .is_file()
        );
    }
}

#[test]
fn options_train_and_generation_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let model = fit(
        dir.path(),
        "mnist-dcgan",
        &[
            "--spectral-norm",
            "--feature-matching",
            "--sample-every",
            "0",
        ],
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["config"]["net"]["spectral_norm"], true);
    assert_eq!(manifest["config"]["feature_matching"], true);
    let generate = |out: &str| {
        common::synth(dir.path())
            .args(["image", "generate", "-n", "4", "--seed", "9", "--out", out])
            .arg("--model")
            .arg(&model)
            .assert()
            .success();
        std::fs::read(dir.path().join(out)).unwrap()
    };
    assert_eq!(generate("a.png"), generate("b.png"));

    // The same seed trains the same model.
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let second = fit(
        &again,
        "mnist-dcgan",
        &[
            "--spectral-norm",
            "--feature-matching",
            "--sample-every",
            "0",
        ],
    );
    assert_eq!(
        std::fs::read(model.join("weights.safetensors")).unwrap(),
        std::fs::read(second.join("weights.safetensors")).unwrap()
    );

    // One PNG per image.
    let out_dir = dir.path().join("each");
    common::synth(dir.path())
        .args(["image", "generate", "-n", "3"])
        .arg("--model")
        .arg(&model)
        .arg("--out-dir")
        .arg(&out_dir)
        .assert()
        .success();
    assert_eq!(png_size(&out_dir.join("00002.png")), (28, 28));
}

#[test]
fn evaluation_reports_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let model = fit(dir.path(), "mnist-cgan", &["--sample-every", "0"]);
    let output = common::success(
        common::synth(dir.path())
            .args(["image", "eval", "-n", "100"])
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(sample()),
        "",
    );
    let evaluation: Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "classifier_frechet_distance",
        "conditional_accuracy",
        "class_coverage",
        "diversity",
    ] {
        assert!(
            evaluation[key]["generated"].is_number(),
            "{key}: {evaluation}"
        );
        assert!(
            evaluation[key]["real_baseline"].is_number(),
            "{key}: {evaluation}"
        );
    }
    for key in ["precision", "recall", "density", "coverage"] {
        assert!(
            evaluation["prdc"]["real_baseline"][key].is_number(),
            "{key}"
        );
    }
    // A model trained three steps is far from the real images; real halves are close.
    let frechet = &evaluation["classifier_frechet_distance"];
    assert!(frechet["generated"].as_f64().unwrap() > frechet["real_baseline"].as_f64().unwrap());
}

#[test]
fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let failure = |args: &[&str]| -> String {
        let output = common::synth(dir.path()).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let sample = sample();
    let sample = sample.to_str().unwrap();
    let message = failure(&["image", "fit", "--preset", "mnist-vae", "--data", sample]);
    assert!(
        message.contains("mnist-vae") && message.contains("mnist-wgan-gp"),
        "{message}"
    );
    let missing = dir.path().join("nowhere");
    let message = failure(&[
        "image",
        "fit",
        "--preset",
        "mnist-gan",
        "--data",
        missing.to_str().unwrap(),
    ]);
    assert!(message.contains("nowhere"), "{message}");
    let model = fit(dir.path(), "mnist-gan", &["--sample-every", "0"]);
    let model = model.to_str().unwrap();
    let message = failure(&[
        "image", "generate", "--model", model, "--out", "x.png", "--label", "3",
    ]);
    assert!(
        message.contains("--label") && message.contains("not conditional"),
        "{message}"
    );
    let message = failure(&[
        "image",
        "generate",
        "--model",
        "missing.synth-image",
        "--out",
        "x.png",
    ]);
    assert!(message.contains("missing.synth-image"), "{message}");
}
