//! Benchmarks of the tabular spine, run with `cargo bench --bench spine`.
//!
//! Measures, in one run and on the same machine:
//! - `fit` seconds per epoch on german_credit, default and adult (shared data folder);
//! - the encoder fit (mixture and encoding) on a 1,000,000-row continuous column;
//! - `generate` of 1,000,000 rows: wall time and the child process's peak RSS.
//!
//! When the Python reference is importable (`pip install ctgan==0.12.1`), the same fits and
//! sampling run side by side through `notebooks/ctgan_reference.py`, and each figure is also
//! printed as a ratio against it (`SYNTH_REFERENCE_PYTHON` names the interpreter that has it,
//! default `python3`). Set `SYNTH_BENCH_EPOCHS` to change the epochs per fit
//! (default 5) and `SYNTH_SHARED` to point at the shared data folder (default `../shared`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand_distr::{Distribution, Normal};
use synth::config::{EncodeConfig, FitConfig, SelectConfig};
use synth::data::io::read_table;
use synth::data::schema::{ColumnKind, ColumnSpec, Schema};
use synth::data::table::ColumnValues;
use synth::encode::TableEncoder;
use synth::gan::train::Control;
use synth::rng::{Purpose, stream};
use synth::tabular::select::Selector;
use synth::tabular::{DataSummary, fit};

fn shared() -> PathBuf {
    std::env::var_os("SYNTH_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        PathBuf::from,
    )
}

fn epochs() -> usize {
    std::env::var("SYNTH_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// Seconds per training epoch of synth on `path`, on 80% of its rows as the reference splits
/// it, and the seconds one check of the kept epoch takes, which a default fit runs every
/// `SelectConfig::interval(300)` epochs.
fn fit_seconds_per_epoch(path: &Path) -> (f64, usize, f64) {
    let frame = read_table(path).expect("bench data");
    let train_rows = frame.height() * 4 / 5;
    let frame = frame.slice(0, train_rows);
    let mut config = FitConfig::default();
    config.gan.epochs = epochs();
    // Training alone, as the reference has no checks; their cost is timed below.
    config.select.every = Some(0);
    let schema = Schema::infer(&frame, &config.encode).expect("schema");
    let data = DataSummary {
        source: "bench".into(),
        fingerprint: String::new(),
        rows: train_rows,
        path: None,
        holdout: None,
    };
    let mut times = Vec::new();
    let mut last = Instant::now();
    let model = fit(
        &frame,
        &schema,
        &config,
        1,
        data,
        &candle_core::Device::Cpu,
        |_| {
            times.push(last.elapsed().as_secs_f64());
            last = Instant::now();
            Ok(Control::Continue)
        },
    )
    .expect("fit");
    // The first epoch also pays for encoding; report the mean of the others when there are any.
    let steady = if times.len() > 1 {
        &times[1..]
    } else {
        &times[..]
    };
    let manifest = &model.manifest;
    let selector = Selector::new(
        &SelectConfig::default(),
        300,
        &frame,
        &schema,
        &model.networks,
        &manifest.config.gan,
        &manifest.encoder,
        1,
    )
    .expect("selector")
    .expect("checks are on by default");
    let started = Instant::now();
    for _ in 0..3 {
        selector.score().expect("check");
    }
    (
        steady.iter().sum::<f64>() / steady.len() as f64,
        (train_rows / 500).max(1),
        started.elapsed().as_secs_f64() / 3.0,
    )
}

fn encoder_fit_seconds() -> f64 {
    let mut rng = stream(1, Purpose::Split);
    let modes = [
        Normal::new(-5.0, 1.0).unwrap(),
        Normal::new(3.0, 0.5).unwrap(),
        Normal::new(20.0, 4.0).unwrap(),
    ];
    let values: Vec<Option<f64>> = (0..1_000_000)
        .map(|i| Some(modes[i % 3].sample(&mut rng)))
        .collect();
    let schema = Schema {
        columns: vec![ColumnSpec {
            name: "x".into(),
            kind: ColumnKind::Continuous,
            dtype: "Float64".into(),
        }],
    };
    let values = vec![ColumnValues::Numbers(values)];
    let started = Instant::now();
    let encoder =
        TableEncoder::fit(&schema, &values, &EncodeConfig::default(), 1).expect("encoder");
    let encoded = encoder.transform(&values, 1).expect("transform");
    assert_eq!(encoded.rows, 1_000_000);
    started.elapsed().as_secs_f64()
}

/// Wall seconds and peak RSS (MiB) of `synth generate -n 1000000` from a model fitted on
/// default.parquet.
fn generate_million(dir: &Path, data: &Path, threads: usize) -> (f64, f64) {
    let binary = env!("CARGO_BIN_EXE_synth");
    let status = Command::new(binary)
        .current_dir(dir)
        .args(["-q", "fit"])
        .arg(data)
        .args(["--epochs", "1", "--seed", "1", "--model", "m", "--force"])
        .status()
        .expect("fit");
    assert!(status.success());
    let started = Instant::now();
    let status = Command::new(binary)
        .current_dir(dir)
        .args(["--threads", &threads.to_string()])
        .args([
            "-q",
            "generate",
            "-n",
            "1000000",
            "--model",
            "m",
            "--out",
            "out.parquet",
            "--force",
            "--seed",
            "1",
        ])
        .status()
        .expect("generate");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success());
    (seconds, peak_child_rss_mib())
}

fn peak_child_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// Runs the Python reference if it is installed, sampling `sample_rows` rows after the fit;
/// returns its JSON figures.
fn reference(data: &Path, sample_rows: usize) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/ctgan_reference.py");
    let output =
        Command::new(std::env::var("SYNTH_REFERENCE_PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(script)
            .arg(data)
            .arg(epochs().to_string())
            .arg(sample_rows.to_string())
            .output()
            .ok()?;
    if !output.status.success() {
        eprintln!(
            "python reference unavailable: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    // `RAYON_NUM_THREADS`, else every core.
    let threads = synth::threads::from_environment().unwrap_or_else(synth::threads::cores);
    synth::threads::configure(threads);
    println!("synth compute threads: {threads} (the reference: one torch thread)");
    let data_dir = shared().join("datasets");
    // First, so that the peak RSS of finished children is synth's alone, not the reference's.
    let dir = tempfile::tempdir().expect("temp dir");
    let default_data = data_dir.join("default.parquet");
    let (seconds, rss) = generate_million(dir.path(), &default_data, threads);
    let reference_sampling = reference(&default_data, 1_000_000)
        .and_then(|figures| figures["sample_seconds"].as_f64())
        .map_or_else(String::new, |r| {
            format!(
                "; the reference's CTGAN.sample(1000000): {r:.1} s, {:.1}x",
                r / seconds
            )
        });
    println!(
        "generate 1,000,000 rows to Parquet (default.parquet model): {seconds:.1} s, peak RSS {rss:.0} MiB{reference_sampling}"
    );
    println!();
    let interval = SelectConfig::default().interval(300);
    println!(
        "| data | synth s/epoch | steps/epoch | reference s/epoch | speed-up | one check (s), run every {interval} epochs in a 300-epoch fit |"
    );
    println!("|---|---|---|---|---|---|");
    for name in ["german_credit", "default", "adult"] {
        let path = data_dir.join(format!("{name}.parquet"));
        let (seconds, steps, check) = fit_seconds_per_epoch(&path);
        let reference = reference(&path, 100_000);
        let reference_epoch = reference
            .as_ref()
            .and_then(|r| r["seconds_per_epoch"].as_f64());
        let ratio = reference_epoch.map_or("-".into(), |r| format!("{:.1}x", r / seconds));
        let shown = reference_epoch.map_or("-".into(), |r| format!("{r:.3}"));
        println!("| {name} | {seconds:.3} | {steps} | {shown} | {ratio} | {check:.3} |");
    }
    println!();
    println!(
        "encoder fit + transform, 1,000,000-row column: {:.2} s",
        encoder_fit_seconds()
    );
}
