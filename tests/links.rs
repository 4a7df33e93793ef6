//! Links between categorical columns: a fraud scenario decides the fraud label, and every
//! generated row keeps that, conditioned or not.

mod common;

use common::{frame, read_parquet, success, synth, write_parquet};
use polars::prelude::*;

/// 3,000 transactions: scenario 0 is genuine, 1–3 are frauds (the label says which), with
/// amounts that depend on the scenario and a weekday that depends on nothing.
fn write_transactions(path: &std::path::Path) {
    let rows = 3_000;
    let scenario: Vec<i64> = (0..rows)
        .map(|row| match (row * 37) % 100 {
            0..=5 => 1,
            6..=13 => 2,
            14..=19 => 3,
            _ => 0,
        })
        .collect();
    let label: Vec<&str> = scenario
        .iter()
        .map(|&s| if s > 0 { "fraud" } else { "genuine" })
        .collect();
    let amount: Vec<f64> = scenario
        .iter()
        .enumerate()
        .map(|(row, &s)| 20.0 + 50.0 * s as f64 + (row % 13) as f64)
        .collect();
    let weekday: Vec<i64> = (0..rows as i64).map(|row| (row * 11) % 7).collect();
    let mut table = frame(vec![
        Series::new("scenario".into(), scenario),
        Series::new("label".into(), label),
        Series::new("amount".into(), amount),
        Series::new("weekday".into(), weekday),
    ]);
    write_parquet(path, &mut table);
}

/// (label, scenario) of every row of a generated file.
fn pairs(path: &std::path::Path) -> Vec<(String, i64)> {
    let table = read_parquet(path);
    let labels = table.column("label").unwrap().str().unwrap().clone();
    let scenarios = table.column("scenario").unwrap().i64().unwrap().clone();
    labels
        .iter()
        .zip(scenarios.iter())
        .map(|(label, scenario)| (label.unwrap().to_owned(), scenario.unwrap()))
        .collect()
}

fn generate(dir: &std::path::Path, model: &str, out: &str, condition: Option<&str>) {
    let mut command = synth(dir);
    command.args([
        "generate", "-n", "4000", "--seed", "2", "--model", model, "--out", out,
    ]);
    if let Some(condition) = condition {
        command.args(["--condition", condition]);
    }
    success(command, "generate: ");
}

#[test]
fn generated_rows_keep_the_link_between_scenario_and_label() {
    let dir = tempfile::tempdir().unwrap();
    write_transactions(&dir.path().join("data.parquet"));
    let fit = |model: &str, extra: &[&str]| {
        let mut command = synth(dir.path());
        command
            .args(["fit", "data.parquet", "--epochs", "2", "--seed", "1"])
            .args(["--model", model])
            .args(extra);
        success(command, "fit: ");
    };
    fit("linked", &[]);
    fit("free", &["--no-links"]);
    let manifest = std::fs::read_to_string(dir.path().join("linked/manifest.json")).unwrap();
    assert!(manifest.contains("\"links\""), "no link recorded");

    let consistent = |(label, scenario): &(String, i64)| (label == "fraud") == (*scenario > 0);
    generate(dir.path(), "linked", "linked.parquet", None);
    let linked = pairs(&dir.path().join("linked.parquet"));
    assert!(linked.iter().all(consistent));
    assert!(linked.iter().any(|(label, _)| label == "fraud"));
    // The restricted draws come from the seeded streams too: the same seed, the same bytes.
    generate(dir.path(), "linked", "again.parquet", None);
    assert_eq!(
        std::fs::read(dir.path().join("linked.parquet")).unwrap(),
        std::fs::read(dir.path().join("again.parquet")).unwrap()
    );
    // Two epochs are far too few for the generator to learn the link by itself.
    generate(dir.path(), "free", "free.parquet", None);
    let free = pairs(&dir.path().join("free.parquet"));
    assert!(
        !free.iter().all(consistent),
        "the unlinked model kept the link"
    );

    // A condition on the summary column restricts the detailed one, and one on the
    // detailed column sets the summary.
    generate(dir.path(), "linked", "fraud.parquet", Some("label=fraud"));
    let fraud = pairs(&dir.path().join("fraud.parquet"));
    assert!(fraud.iter().all(|(label, s)| label == "fraud" && *s > 0));
    generate(dir.path(), "linked", "two.parquet", Some("scenario=2"));
    let two = pairs(&dir.path().join("two.parquet"));
    assert!(two.iter().all(|(label, s)| label == "fraud" && *s == 2));
}
