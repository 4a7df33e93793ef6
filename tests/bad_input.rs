//! Every kind of bad input gets a clear message naming the file, column or flag, exit code 2,
//! and leaves no output behind.

mod common;

use std::path::Path;

use common::*;
use polars::prelude::*;
use predicates::prelude::*;
use predicates::str::contains;

fn fit_fails(dir: &Path, data: &Path, message: &str) {
    synth(dir)
        .arg("fit")
        .arg(data)
        .args(["--epochs", "1"])
        .assert()
        .code(2)
        .stderr(contains(message));
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(leftovers.is_empty(), "fit left {leftovers:?}");
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    fit_fails(
        dir.path(),
        &dir.path().join("absent.parquet"),
        "absent.parquet",
    );
}

#[test]
fn file_that_is_not_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.parquet");
    std::fs::write(&path, "just some text\n").unwrap();
    fit_fails(dir.path(), &path, "not a Parquet file");
}

#[test]
fn truncated_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(datasets().join("german_credit.parquet")).unwrap();
    let path = dir.path().join("cut.parquet");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    fit_fails(dir.path(), &path, "cut.parquet");
}

#[test]
fn zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.parquet");
    write_parquet(
        &path,
        &mut frame(vec![Series::new("x".into(), Vec::<f64>::new())]),
    );
    fit_fails(dir.path(), &path, "no rows");
}

#[test]
fn nan_and_infinity_in_a_float_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.parquet");
    let values: Vec<f64> = (0..50)
        .map(|i| {
            if i == 7 {
                f64::NAN
            } else if i == 9 {
                f64::INFINITY
            } else {
                i as f64
            }
        })
        .collect();
    write_parquet(
        &path,
        &mut frame(vec![Series::new("amount".into(), values)]),
    );
    fit_fails(
        dir.path(),
        &path,
        "column `amount`: 2 values are NaN or infinite",
    );
}

#[test]
fn nested_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.parquet");
    let lists: Vec<Series> = (0..20)
        .map(|i| Series::new("".into(), vec![i as i64, 1]))
        .collect();
    let nested = Series::new("items".into(), lists);
    write_parquet(
        &path,
        &mut frame(vec![
            nested,
            Series::new("x".into(), (0..20).map(|i| i as f64).collect::<Vec<_>>()),
        ]),
    );
    fit_fails(dir.path(), &path, "column `items`: nested");
}

#[test]
fn zero_or_negative_row_counts() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["0", "-5"] {
        synth(dir.path())
            .args(["generate", "-n", n, "--model", "m"])
            .assert()
            .code(2)
            .stderr(contains("`-n`").and(contains("at least 1")));
    }
}

#[test]
fn existing_output_is_kept_unless_forced_and_unwritable_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = datasets().join("german_credit.parquet");
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--epochs", "1", "--seed", "1", "--model", "m"])
        .assert()
        .success();
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--epochs", "1", "--model", "m"])
        .assert()
        .code(2)
        .stderr(contains("`m`").and(contains("--force")));

    std::fs::write(dir.path().join("out.parquet"), "keep me").unwrap();
    synth(dir.path())
        .args([
            "generate",
            "-n",
            "10",
            "--model",
            "m",
            "--out",
            "out.parquet",
        ])
        .assert()
        .code(2)
        .stderr(contains("out.parquet").and(contains("--force")));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.parquet")).unwrap(),
        "keep me"
    );
    synth(dir.path())
        .args([
            "generate",
            "-n",
            "10",
            "--model",
            "m",
            "--out",
            "out.parquet",
            "--force",
        ])
        .assert()
        .success();
    assert_eq!(read_parquet(&dir.path().join("out.parquet")).height(), 10);

    synth(dir.path())
        .args([
            "generate",
            "-n",
            "10",
            "--model",
            "m",
            "--out",
            "no/such/dir/out.parquet",
        ])
        .assert()
        .code(2)
        .stderr(contains("no/such/dir"));
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().all(|name| !name.contains("partial")),
        "{entries:?}"
    );
}

#[test]
fn corrupt_truncated_foreign_and_future_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = datasets().join("german_credit.parquet");
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--epochs", "1", "--seed", "1", "--model", "m"])
        .assert()
        .success();
    let generate = |model: &str| {
        synth(dir.path())
            .args(["generate", "-n", "10", "--model", model])
            .assert()
            .code(2)
    };

    let copy = |name: &str| {
        let target = dir.path().join(name);
        std::fs::create_dir(&target).unwrap();
        for file in ["manifest.json", "weights.safetensors", "metrics.jsonl"] {
            std::fs::copy(dir.path().join("m").join(file), target.join(file)).unwrap();
        }
        target
    };
    let truncated = copy("truncated");
    let weights = std::fs::read(truncated.join("weights.safetensors")).unwrap();
    std::fs::write(
        truncated.join("weights.safetensors"),
        &weights[..weights.len() / 3],
    )
    .unwrap();
    generate("truncated").stderr(contains("corrupt or truncated"));

    let foreign = copy("foreign");
    std::fs::write(foreign.join("manifest.json"), r#"{"hello": "world"}"#).unwrap();
    generate("foreign").stderr(contains("not a synth tabular model"));

    let future = copy("future");
    let manifest = std::fs::read_to_string(future.join("manifest.json")).unwrap();
    std::fs::write(
        future.join("manifest.json"),
        manifest.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    generate("future").stderr(contains("format version 99"));

    let garbage = copy("garbage");
    std::fs::write(garbage.join("manifest.json"), "{not json").unwrap();
    generate("garbage").stderr(contains("not valid JSON"));

    generate("absent").stderr(contains("no such model directory"));
}
