//! `synth report`: fidelity scores against SDMetrics' own numbers, the JSON contract, the gate's
//! exit codes, bad inputs, and the HTML page rendered in headless Chromium.
//!
//! The golden values in `tests/fixtures/report/sdmetrics_expected.json` were computed by
//! SDMetrics 0.32 with `notebooks/sdmetrics_golden.py` on the fixture tables beside them.

mod common;

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde_json::Value;
use synth::data::io::read_table;
use synth::data::schema::Schema;
use synth::report::fidelity;
use synth::report::prepare::{Input, prepare};

const TOLERANCE: f64 = 0.005;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("sdmetrics_expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(name: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= TOLERANCE,
        "{name}: synth {ours} against SDMetrics {theirs}"
    );
}

#[test]
fn fidelity_matches_sdmetrics() {
    let dir = fixtures();
    let schema = Schema::load(&dir.join("schema.toml")).unwrap();
    let real = read_table(&dir.join("real.parquet")).unwrap();
    let synthetic = read_table(&dir.join("synthetic.parquet")).unwrap();
    let tables = prepare(
        &schema,
        Input {
            frame: &real,
            path: &dir.join("real.parquet"),
        },
        Input {
            frame: &synthetic,
            path: &dir.join("synthetic.parquet"),
        },
        None,
    )
    .unwrap();
    let shapes = fidelity::shapes(&tables);
    let expected = expected();

    close(
        "quality",
        shapes.quality,
        expected["quality"].as_f64().unwrap(),
    );
    close(
        "column_shapes",
        shapes.column_shapes,
        expected["column_shapes"].as_f64().unwrap(),
    );
    close(
        "column_pair_trends",
        shapes.column_pair_trends,
        expected["column_pair_trends"].as_f64().unwrap(),
    );
    close(
        "all pairs",
        shapes.all_pairs,
        expected["column_pair_trends_unthresholded"]
            .as_f64()
            .unwrap(),
    );

    let columns = expected["columns"].as_object().unwrap();
    assert_eq!(columns.len(), shapes.columns.len());
    for (name, scores) in &shapes.columns {
        let theirs = &columns[name];
        assert_eq!(
            theirs["shape_metric"].as_str().unwrap(),
            scores.shape_metric,
            "{name}"
        );
        close(
            &format!("{name} shape"),
            scores.shape,
            theirs["shape"].as_f64().unwrap(),
        );
        let coverage = theirs
            .get("range_coverage")
            .or_else(|| theirs.get("category_coverage"))
            .and_then(Value::as_f64)
            .unwrap();
        close(&format!("{name} coverage"), scores.coverage, coverage);
        close(
            &format!("{name} missing values"),
            scores.missing_value_similarity,
            theirs["missing_value_similarity"].as_f64().unwrap(),
        );
    }

    let pairs = expected["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), shapes.pairs.len());
    for theirs in pairs {
        let names: Vec<&str> = theirs["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let ours = shapes
            .pairs
            .iter()
            .find(|pair| pair.columns[0] == names[0] && pair.columns[1] == names[1])
            .unwrap_or_else(|| panic!("pair {names:?} missing"));
        let label = format!("{} × {}", names[0], names[1]);
        assert_eq!(ours.metric, theirs["metric"].as_str().unwrap(), "{label}");
        assert_eq!(
            ours.counted,
            theirs["meets_threshold"].as_bool().unwrap(),
            "{label} counted"
        );
        close(
            &label,
            ours.score,
            theirs["score_unthresholded"].as_f64().unwrap(),
        );
    }
}

#[test]
fn tiny_case_matches_sdmetrics() {
    let expected = expected();
    let tiny = &expected["tiny"];
    let numbers = |side: &str, column: &str| -> Vec<f64> {
        tiny[side][column]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let ks = fidelity::ks_complement(&numbers("real", "x"), &numbers("synthetic", "x"));
    close("tiny KS x", ks, tiny["ks_complement_x"].as_f64().unwrap());
    let ks = fidelity::ks_complement(&numbers("real", "y"), &numbers("synthetic", "y"));
    close("tiny KS y", ks, tiny["ks_complement_y"].as_f64().unwrap());
    let (rx, ry, sx, sy) = (
        numbers("real", "x"),
        numbers("real", "y"),
        numbers("synthetic", "x"),
        numbers("synthetic", "y"),
    );
    let similarity = 1.0 - (fidelity::pearson(&rx, &ry) - fidelity::pearson(&sx, &sy)).abs() / 2.0;
    close(
        "tiny correlation",
        similarity,
        tiny["correlation_similarity_x_y"].as_f64().unwrap(),
    );

    // The report's binning of x, table by table.
    let bins = |values: &[f64]| -> Vec<u64> {
        let edges = fidelity::bin_edges(values);
        values
            .iter()
            .map(|&v| fidelity::bin_of(v, &edges) as u64 + 1)
            .collect()
    };
    let as_u64 = |key: &str| -> Vec<u64> {
        tiny["x_bins_report"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    assert_eq!(bins(&rx), as_u64("real"));
    assert_eq!(bins(&sx), as_u64("synthetic"));
}

/// Fits german_credit with a holdout and generates, once per test binary run.
fn fitted_model(dir: &Path) {
    let data = common::datasets().join("german_credit.parquet");
    common::synth(dir)
        .args(["fit"])
        .arg(&data)
        .args([
            "--epochs",
            "2",
            "--seed",
            "3",
            "--holdout-fraction",
            "0.25",
            "--model",
            "german.synth-model",
        ])
        .assert()
        .success();
    common::synth(dir)
        .args([
            "generate",
            "-n",
            "600",
            "--seed",
            "4",
            "--model",
            "german.synth-model",
        ])
        .assert()
        .success();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn bare_report_finds_model_holdout_and_output() {
    let dir = tempfile::tempdir().unwrap();
    fitted_model(dir.path());
    let output = common::success(
        common::synth(dir.path()).args([
            "report",
            "--target",
            "creditability",
            "--privacy-queries",
            "500",
        ]),
        "",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("german.synth-model") && stderr.contains("last generated"),
        "{stderr}"
    );

    let html = dir.path().join("german.synthetic.report.html");
    let report = read_json(&html.with_extension("json"));
    // The JSON contract.
    for key in [
        "quality",
        "column_shapes",
        "column_pair_trends",
        "detection_auc",
        "columns",
    ] {
        assert!(report["fidelity"].get(key).is_some(), "fidelity.{key}");
    }
    for key in [
        "dcr_closer_to_train_share",
        "nndr_median",
        "exact_copy_share",
        "holdout_exact_copy_share",
        "mia_auc",
        "rare_category_leaks",
    ] {
        assert!(
            report["privacy"][key].is_number(),
            "privacy.{key}: {}",
            report["privacy"][key]
        );
    }
    for metric in ["roc_auc", "pr_auc"] {
        for side in ["real", "synthetic", "augmented"] {
            assert!(
                report["utility"][metric][side].is_number(),
                "utility.{metric}.{side}"
            );
        }
    }
    assert_eq!(report["inputs"]["rows"]["real"], 750);
    assert_eq!(report["inputs"]["rows"]["holdout"], 250);
    assert_eq!(report["inputs"]["rows"]["synthetic"], 600);
    assert!(report["fidelity"]["columns"]["credit_amount"]["shape"].is_number());
    let quality = report["fidelity"]["quality"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&quality));
    // The real model beats chance on the holdout.
    assert!(report["utility"]["roc_auc"]["real"].as_f64().unwrap() > 0.6);

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Training losses"));
    for fetch in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(
            !page.contains(fetch),
            "the page must not fetch anything ({fetch})"
        );
    }
}

#[test]
fn report_is_deterministic_and_json_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    fitted_model(dir.path());
    let run = || {
        let output = common::success(
            common::synth(dir.path()).args([
                "report",
                "--format",
                "json",
                "--privacy-queries",
                "300",
            ]),
            "",
        );
        output.stdout
    };
    let first = run();
    assert_eq!(first, run());
    let report: Value = serde_json::from_slice(&first).unwrap();
    assert!(report["fidelity"]["quality"].is_number());
    assert!(!dir.path().join("german.synthetic.report.html").exists());
}

#[test]
fn gate_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    fitted_model(dir.path());
    let report = |gate: &str| {
        common::synth(dir.path())
            .args([
                "report",
                "--force",
                "--privacy-queries",
                "200",
                "--fail-under",
                gate,
            ])
            .output()
            .unwrap()
    };
    let passed = report("quality=0.01,mia=0.0");
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passed.stderr)
    );

    let failed = report("quality=0.999");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("quality"));
    // The report is written before the gate fails.
    let json = read_json(&dir.path().join("german.synthetic.report.json"));
    assert_eq!(json["summary"][0]["mark"], "fail");

    let unknown = report("qualty=0.8");
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("qualty") && stderr.contains("column_pair_trends"),
        "{stderr}"
    );
}

#[test]
fn bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    let path = |name: &str| fixtures.join(name).to_string_lossy().into_owned();
    let scratch = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (real, synthetic, schema) = (
        path("real.parquet"),
        path("synthetic.parquet"),
        path("schema.toml"),
    );
    let error = |args: &[&str]| -> String {
        let output = common::synth(dir.path())
            .arg("report")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let write = |name: &str, mut frame: DataFrame| {
        common::write_parquet(&dir.path().join(name), &mut frame);
        scratch(name)
    };
    let synthetic_frame = || read_table(Path::new(&synthetic)).unwrap();

    // A synthetic table without one of the real columns.
    let narrow = write("narrow.parquet", synthetic_frame().drop("grade").unwrap());
    let message = error(&["--real", &real, "--synthetic", &narrow]);
    assert!(
        message.contains("narrow.parquet") && message.contains("`grade`"),
        "{message}"
    );

    // A column whose type does not fit.
    let mut frame = synthetic_frame();
    let ages = frame
        .column("age")
        .unwrap()
        .cast(&DataType::String)
        .unwrap();
    let ages: Vec<String> = ages
        .str()
        .unwrap()
        .iter()
        .map(|v| format!("x{}", v.unwrap_or("")))
        .collect();
    frame.with_column(Column::new("age".into(), ages)).unwrap();
    let wrong = write("wrong.parquet", frame);
    let message = error(&["--real", &real, "--synthetic", &wrong, "--schema", &schema]);
    assert!(message.contains("age"), "{message}");

    // An empty table.
    let empty = write("empty.parquet", synthetic_frame().slice(0, 0));
    let message = error(&["--real", &real, "--synthetic", &empty]);
    assert!(
        message.contains("empty.parquet") && message.contains("no rows"),
        "{message}"
    );

    // A target that does not exist, and one with a single class.
    let with_holdout = [
        "--real",
        &real,
        "--synthetic",
        &synthetic,
        "--holdout",
        &synthetic,
        "--schema",
        &schema,
    ];
    let message = error(&[&with_holdout[..], &["--target", "nope"]].concat());
    assert!(
        message.contains("--target") && message.contains("nope"),
        "{message}"
    );
    let mut frame = read_table(Path::new(&real)).unwrap();
    frame
        .with_column(Column::new("is_fraud".into(), vec![true; frame.height()]))
        .unwrap();
    let single = write("single.parquet", frame);
    let message = error(&[
        "--real",
        &single,
        "--synthetic",
        &synthetic,
        "--holdout",
        &synthetic,
        "--schema",
        &schema,
        "--target",
        "is_fraud",
    ]);
    assert!(
        message.contains("is_fraud") && message.contains("class"),
        "{message}"
    );

    // A holdout that overlaps the training rows.
    let message = error(&[
        "--real",
        &real,
        "--synthetic",
        &synthetic,
        "--holdout",
        &real,
        "--schema",
        &schema,
    ]);
    assert!(message.contains("overlaps"), "{message}");

    // Nothing was written.
    let written = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().to_string_lossy().contains("report"))
        .count();
    assert_eq!(written, 0);
}

/// Renders the page in headless Chromium and checks that every plot is drawn and no script
/// failed. CI installs Chromium and sets `SYNTH_REQUIRE_BROWSER=1`, which turns a missing
/// browser into a failure; elsewhere the test says it was skipped.
#[test]
fn page_renders_in_headless_chromium() {
    let browser = std::env::var("CHROMIUM").ok().or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find(|name| {
                std::process::Command::new(name)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map(|name| name.to_string())
    });
    let Some(browser) = browser else {
        assert!(
            std::env::var_os("SYNTH_REQUIRE_BROWSER").is_none(),
            "SYNTH_REQUIRE_BROWSER is set but no Chromium was found"
        );
        eprintln!("skipped: no Chromium on PATH (set CHROMIUM to its path)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    fitted_model(dir.path());
    common::synth(dir.path())
        .args(["report", "--privacy-queries", "300", "--out", "page.html"])
        .assert()
        .success();
    let page = dir.path().join("page.html");
    let profile = dir.path().join("profile");
    let output = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    let attribute = |name: &str| -> Option<usize> {
        let start = dom.find(&format!("{name}=\""))? + name.len() + 2;
        dom[start..].split('"').next()?.parse().ok()
    };
    let plots = attribute("data-plots").unwrap_or_else(|| {
        panic!(
            "the page's check did not run:\n{}",
            &dom[..dom.len().min(500)]
        )
    });
    assert!(plots >= 10, "only {plots} plots");
    assert_eq!(
        attribute("data-plots-drawn"),
        Some(plots),
        "some plots are not drawn"
    );
    assert_eq!(
        attribute("data-errors"),
        Some(0),
        "script errors on the page"
    );
}

/// Synthetic rows that are the training rows themselves must be flagged by every privacy
/// measure, and fresh real rows must look like fresh real rows.
#[test]
fn privacy_flags_copies_and_passes_fresh_rows() {
    let dir = tempfile::tempdir().unwrap();
    let german = read_table(&common::datasets().join("german_credit.parquet")).unwrap();
    // The file is not in random order; 7919 is coprime with its 1,000 rows.
    let order: Vec<IdxSize> = (0..1000).map(|i| (i * 7919 % 1000) as IdxSize).collect();
    let german = german.take(&IdxCa::from_vec("row".into(), order)).unwrap();
    let write = |name: &str, mut frame: DataFrame| {
        let path = dir.path().join(name);
        common::write_parquet(&path, &mut frame);
        path.to_string_lossy().into_owned()
    };
    let train = write("train.parquet", german.slice(0, 500));
    let holdout = write("holdout.parquet", german.slice(500, 250));
    let fresh = write("fresh.parquet", german.slice(750, 250));
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/german_credit.toml");
    let report = |synthetic: &str| -> Value {
        let output = common::success(
            common::synth(dir.path())
                .args([
                    "report",
                    "--format",
                    "json",
                    "--real",
                    &train,
                    "--holdout",
                    &holdout,
                    "--synthetic",
                    synthetic,
                ])
                .arg("--schema")
                .arg(&schema),
            "",
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };

    let copied = report(&train);
    let privacy = &copied["privacy"];
    assert_eq!(privacy["exact_copy_share"].as_f64(), Some(1.0));
    // The training reference is a sample as large as the holdout, half the training rows here,
    // so half the copies sit on a reference row and the rest are closer to train by chance.
    let share = privacy["dcr_closer_to_train_share"].as_f64().unwrap();
    assert!(share > 0.7, "closer-to-train share of copies: {share}");
    assert!(
        privacy["mia_auc"].as_f64().unwrap() > 0.9,
        "{}",
        privacy["mia_auc"]
    );
    assert!(
        privacy["nndr_median"].as_f64().unwrap() < 0.5,
        "{}",
        privacy["nndr_median"]
    );
    let fidelity = &copied["fidelity"];
    assert!((fidelity["quality"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!(
        fidelity["detection_auc"].as_f64().unwrap() < 0.6,
        "{}",
        fidelity["detection_auc"]
    );

    let honest = report(&fresh);
    let privacy = &honest["privacy"];
    assert_eq!(privacy["exact_copy_share"].as_f64(), Some(0.0));
    let share = privacy["dcr_closer_to_train_share"].as_f64().unwrap();
    assert!(
        (0.35..0.65).contains(&share),
        "closer-to-train share of fresh rows: {share}"
    );
    let mia = privacy["mia_auc"].as_f64().unwrap();
    assert!(
        (0.4..0.6).contains(&mia),
        "membership AUC of fresh rows: {mia}"
    );
}
