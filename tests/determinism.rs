//! The same seed and inputs on the same machine give byte-identical models and output files;
//! another seed gives other ones.

mod common;

use common::*;

fn fit_and_generate(
    dir: &std::path::Path,
    fit_seed: &str,
    generate_seed: &str,
) -> (Vec<Vec<u8>>, Vec<u8>) {
    let data = datasets().join("german_credit.parquet");
    synth(dir)
        .arg("fit")
        .arg(&data)
        .args(["--epochs", "2", "--seed", fit_seed, "--model", "m"])
        .assert()
        .success();
    synth(dir)
        .args([
            "generate",
            "-n",
            "2000",
            "--batch-rows",
            "700",
            "--model",
            "m",
            "--out",
            "out.parquet",
            "--seed",
            generate_seed,
        ])
        .assert()
        .success();
    let model = ["manifest.json", "weights.safetensors", "metrics.jsonl"]
        .iter()
        .map(|file| std::fs::read(dir.join("m").join(file)).unwrap())
        .collect();
    (model, std::fs::read(dir.join("out.parquet")).unwrap())
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let (first, second, third) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (model_a, rows_a) = fit_and_generate(first.path(), "11", "12");
    let (model_b, rows_b) = fit_and_generate(second.path(), "11", "12");
    assert!(model_a == model_b, "models differ for the same seed");
    assert!(rows_a == rows_b, "generated files differ for the same seed");

    let (model_c, rows_c) = fit_and_generate(third.path(), "13", "14");
    assert!(
        model_a[1] != model_c[1],
        "weights equal for different seeds"
    );
    assert!(
        rows_a != rows_c,
        "generated files equal for different seeds"
    );
}

/// Training splits each matrix product's rows over the threads, and generation makes
/// batches side by side, one per thread, each from streams of its own: neither the model nor
/// the rows depend on how many threads made them.
#[test]
fn models_and_rows_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = datasets().join("german_credit.parquet");
    let weights: Vec<Vec<u8>> = ["1", "2"]
        .iter()
        .map(|threads| {
            let model = format!("m{threads}");
            synth(dir.path())
                .args(["--threads", threads, "fit"])
                .arg(&data)
                .args(["--epochs", "2", "--seed", "3", "--model", &model])
                .assert()
                .success();
            std::fs::read(dir.path().join(model).join("weights.safetensors")).unwrap()
        })
        .collect();
    assert!(
        weights[0] == weights[1],
        "one and two threads trained different weights"
    );
    let files: Vec<Vec<u8>> = ["1", "2", "3"]
        .iter()
        .map(|threads| {
            let out = format!("out{threads}.parquet");
            synth(dir.path())
                .args([
                    "--threads",
                    threads,
                    "generate",
                    "-n",
                    "2500",
                    "--batch-rows",
                    "600",
                ])
                .args(["--model", "m1", "--out", &out, "--seed", "4"])
                .assert()
                .success();
            std::fs::read(dir.path().join(out)).unwrap()
        })
        .collect();
    assert!(
        files[0] == files[1],
        "one and two threads generated different rows"
    );
    assert!(
        files[0] == files[2],
        "one and three threads generated different rows"
    );
}
