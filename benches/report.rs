//! Benchmarks of `synth report`, run with `cargo bench --bench report`.
//!
//! On the benchmark tables of `notebooks/report_bench.py` (1,000,000 real and 1,000,000
//! synthetic rows × 20 columns, ten discrete and ten numeric, plus a 200,000-row holdout), it
//! measures in one run:
//! - reading the three tables and preparing the compared columns;
//! - the quality scores (column shapes and pair trends over all 190 pairs, every row);
//! - each other section (detection, privacy) and the whole report with its HTML page;
//! - SDMetrics 0.32's QualityReport on the same real and synthetic tables, side by side, when
//!   the reference Python has it (`SYNTH_REFERENCE_PYTHON`, default `python3`), and the ratio.
//!
//! `SYNTH_REPORT_BENCH_QUALITY_ONLY=1` stops after the quality scores (for profiling them).
//! `SYNTH_REPORT_BENCH_DIR` is where the tables are written (default
//! `$TMPDIR/synth-report-bench`) and kept between runs; `SYNTH_REPORT_BENCH_ROWS` changes the
//! row count.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use synth::data::io::read_table;
use synth::data::schema::Schema;
use synth::report::prepare::{Input, prepare};
use synth::report::{InputRows, Inputs, ReportConfig, build, detection, fidelity, html, privacy};

// The allocator of the `synth` binary, so that the figures are the command's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Timed runs of the quality scores, after one untimed warm-up run; the median is reported.
const RUNS: usize = 3;

fn python() -> String {
    std::env::var("SYNTH_REFERENCE_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn main() {
    let rows: usize = std::env::var("SYNTH_REPORT_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::var_os("SYNTH_REPORT_BENCH_DIR").map_or_else(
        || std::env::temp_dir().join("synth-report-bench"),
        PathBuf::from,
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("notebooks/report_bench.py");
    let status = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .args(["--rows", &rows.to_string(), "--reuse"])
        .status()
        .expect("run notebooks/report_bench.py (needs numpy and pyarrow)");
    assert!(status.success(), "writing the benchmark tables failed");
    let threads = rayon::current_num_threads();
    println!("report benchmark: {rows} rows × 20 columns, {threads} threads");

    let started = Instant::now();
    let schema = Schema::load(&dir.join("schema.toml")).expect("schema");
    let paths = ["real.parquet", "synthetic.parquet", "holdout.parquet"].map(|name| dir.join(name));
    let frames = paths
        .clone()
        .map(|path| read_table(&path).expect("bench table"));
    let read = started.elapsed().as_secs_f64();

    // Prepare and score once to warm up, then RUNS times; the median run is reported.
    let mut runs = Vec::new();
    let mut kept = None;
    for run in 0..=RUNS {
        let started = Instant::now();
        let tables = prepare(
            &schema,
            Input {
                frame: &frames[0],
                path: &paths[0],
            },
            Input {
                frame: &frames[1],
                path: &paths[1],
            },
            Some(Input {
                frame: &frames[2],
                path: &paths[2],
            }),
        )
        .expect("prepare");
        let prepared = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let shapes = fidelity::shapes(&tables);
        if run > 0 {
            runs.push((prepared, started.elapsed().as_secs_f64()));
        }
        kept = Some((tables, shapes));
    }
    let Some((tables, shapes)) = kept else { return };
    runs.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
    let (prepared, quality) = runs[RUNS / 2];
    println!(
        "  read {read:.2} s; median of {RUNS} runs: prepare {prepared:.2} s, quality scores {quality:.2} s \
         (quality {:.4}, shapes {:.4}, pair trends {:.4} over {} pairs)",
        shapes.quality,
        shapes.column_shapes,
        shapes.column_pair_trends,
        shapes.pairs.len()
    );

    if std::env::var_os("SYNTH_REPORT_BENCH_QUALITY_ONLY").is_some() {
        return;
    }
    let config = ReportConfig::default();
    let started = Instant::now();
    let found = detection::detection(&tables, config.detection_rows, 0).expect("detection");
    let detect = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let private = privacy::privacy(&tables, &config.privacy, 0);
    let private_seconds = started.elapsed().as_secs_f64();
    println!(
        "  detection {detect:.2} s (AUC {:.4} on {} rows each), privacy {private_seconds:.2} s \
         ({} queries against {} reference rows; closer-to-train share {:.4})",
        found.auc,
        found.rows,
        private.queries,
        private.reference_rows,
        private.dcr_closer_to_train_share.unwrap_or(f64::NAN)
    );

    let started = Instant::now();
    let inputs = Inputs {
        real: paths[0].display().to_string(),
        synthetic: paths[1].display().to_string(),
        holdout: Some(paths[2].display().to_string()),
        model: None,
        schema: "bench".into(),
        rows: InputRows {
            real: tables.rows[0],
            synthetic: tables.rows[1],
            holdout: tables.rows[2],
        },
        seed: 0,
        synth_version: env!("CARGO_PKG_VERSION").into(),
    };
    let report = build(&tables, &config, inputs, &[]).expect("report");
    let page = html::render(&report, &tables, &[]);
    let whole = started.elapsed().as_secs_f64() + read + prepared;
    println!(
        "  whole report (read, prepare, every section, HTML of {} kB): {whole:.2} s",
        page.len() / 1024
    );

    let synth_quality = prepared + quality;
    let output = Command::new(python())
        .arg(&script)
        .arg(&dir)
        .args(["--rows", &rows.to_string(), "--reuse", "--sdmetrics"])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            let Some(line) = text.lines().rev().find(|line| line.starts_with('{')) else {
                println!("  SDMetrics printed no result");
                return;
            };
            let result: serde_json::Value = serde_json::from_str(line).expect("SDMetrics JSON");
            let seconds = result["generate_seconds"].as_f64().unwrap_or(f64::NAN);
            println!(
                "  SDMetrics QualityReport {seconds:.2} s (quality {:.4}, shapes {:.4}, pair trends {:.4}; \
                 it subsamples contingency pairs to 50,000 rows)",
                result["quality"].as_f64().unwrap_or(f64::NAN),
                result["column_shapes"].as_f64().unwrap_or(f64::NAN),
                result["column_pair_trends"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "  ratio: synth's quality scores (prepare + score, every row) are {:.1}x faster than SDMetrics' QualityReport",
                seconds / synth_quality
            );
        }
        _ => println!(
            "  SDMetrics not available to {}; no side-by-side figure",
            python()
        ),
    }
}
