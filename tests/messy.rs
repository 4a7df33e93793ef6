//! Real tables are messy: nulls in every kind of column, constant and all-null columns, time
//! zones, booleans, high-cardinality labels and string keys are all reproduced in their own
//! types.

mod common;

use common::*;
use polars::prelude::*;

fn messy_table(rows: usize) -> DataFrame {
    let nulls_every = |i: usize, k: usize| i.is_multiple_of(k);
    let amount: Vec<Option<f64>> = (0..rows)
        .map(|i| (!nulls_every(i, 5)).then(|| ((i * 37) % 1000) as f64 / 7.0))
        .collect();
    let count: Vec<Option<i32>> = (0..rows)
        .map(|i| (!nulls_every(i, 10)).then(|| ((i * 13) % 500) as i32))
        .collect();
    let days: Vec<Option<i32>> = (0..rows)
        .map(|i| (!nulls_every(i, 4)).then(|| 17_000 + (i % 365) as i32))
        .collect();
    let stamps: Vec<i64> = (0..rows)
        .map(|i| 1_500_000_000_000 + (i as i64) * 3_600_000)
        .collect();
    let flags: Vec<bool> = (0..rows).map(|i| i % 3 == 0).collect();
    let labels: Vec<Option<&str>> = (0..rows)
        .map(|i| {
            if nulls_every(i, 8) {
                None
            } else {
                Some(["red", "green", "blue"][i % 3])
            }
        })
        .collect();
    // 150 merchants, six or seven rows each: more than the kept slots, none of them rare.
    let merchants: Vec<i64> = (0..rows).map(|i| ((i * 7919) % 150) as i64).collect();
    let keys: Vec<String> = (0..rows).map(|i| format!("r{i:05}")).collect();
    frame(vec![
        Series::new("record_id".into(), keys),
        Series::new("amount".into(), amount),
        Series::new("count".into(), count),
        Series::new("day".into(), days)
            .cast(&DataType::Date)
            .unwrap(),
        Series::new("stamp".into(), stamps)
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
        Series::new("flag".into(), flags),
        Series::new("label".into(), labels),
        Series::new("merchant_id".into(), merchants),
        Series::new("constant".into(), vec!["same"; rows]),
        Series::full_null("empty".into(), rows, &DataType::Float64),
    ])
}

#[test]
fn messy_columns_come_back_in_their_types_with_their_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messy.parquet");
    let mut real = messy_table(1000);
    write_parquet(&path, &mut real);
    synth(dir.path())
        .arg("fit")
        .arg(&path)
        .args([
            "--epochs",
            "40",
            "--batch-size",
            "100",
            "--max-categories",
            "50",
            "--seed",
            "8",
        ])
        .assert()
        .success();
    synth(dir.path())
        .args(["generate", "-n", "3000", "--seed", "9"])
        .assert()
        .success();
    let synthetic = read_parquet(&dir.path().join("messy.synthetic.parquet"));

    assert_eq!(synthetic.schema(), real.schema());
    assert_eq!(
        synthetic.column("record_id").unwrap().n_unique().unwrap(),
        3000
    );
    for (name, share) in [
        ("amount", 0.2),
        ("count", 0.1),
        ("day", 0.25),
        ("label", 0.125),
    ] {
        let got = null_share(&synthetic, name);
        assert!(
            (got - share).abs() < 0.12,
            "column {name}: null share {got}, real {share}"
        );
    }
    assert_eq!(null_share(&synthetic, "empty"), 1.0);
    let constant = synthetic.column("constant").unwrap().str().unwrap().clone();
    assert!(constant.iter().all(|value| value == Some("same")));
    let merchants = synthetic.column("merchant_id").unwrap().i64().unwrap();
    assert!(
        merchants
            .iter()
            .flatten()
            .all(|value| (0..150).contains(&value))
    );
    let counts = synthetic.column("count").unwrap().i32().unwrap();
    assert!(
        counts
            .iter()
            .flatten()
            .all(|value| (0..500).contains(&value))
    );
}

#[test]
fn rare_labels_are_neither_stored_nor_generated() {
    let dir = tempfile::tempdir().unwrap();
    // 40 terminals seen 30 times each and 400 seen once or twice: the rare ones would point
    // at the training rows that hold them.
    let mut terminals: Vec<String> = (0..1200).map(|i| format!("T{:02}", i % 40)).collect();
    terminals.extend((0..600).map(|i| format!("rare-{}", i % 400)));
    let amounts: Vec<f64> = (0..terminals.len()).map(|i| (i % 97) as f64).collect();
    let mut table = frame(vec![
        Series::new("terminal".into(), terminals),
        Series::new("amount".into(), amounts),
    ]);
    write_parquet(&dir.path().join("terminals.parquet"), &mut table);
    success(
        synth(dir.path()).args([
            "fit",
            "terminals.parquet",
            "--epochs",
            "2",
            "--seed",
            "1",
            "--max-categories",
            "20",
        ]),
        "fit: ",
    );
    success(
        synth(dir.path()).args(["generate", "-n", "5000", "--seed", "2"]),
        "generate: ",
    );
    let manifest =
        std::fs::read_to_string(dir.path().join("terminals.synth-model/manifest.json")).unwrap();
    assert!(!manifest.contains("rare-"), "the model stores rare values");
    let synthetic = read_parquet(&dir.path().join("terminals.synthetic.parquet"));
    let generated = synthetic.column("terminal").unwrap().str().unwrap();
    assert!(generated.iter().flatten().all(|t| t.starts_with('T')));
    // The 20 terminals beyond the kept ones still come back, through the "other" slot.
    assert!(generated.n_unique().unwrap() > 20);
}

#[test]
fn labels_whose_values_are_all_rare_come_back_as_new_values() {
    let dir = tempfile::tempdir().unwrap();
    // 300 customers with two or three rows each: every name and customer id is rare.
    let names: Vec<String> = (0..750).map(|i| format!("name-{}", i % 300)).collect();
    let ids: Vec<i64> = (0..750).map(|i| 1_000_000 + (i % 300) as i64).collect();
    let amounts: Vec<f64> = (0..names.len()).map(|i| (i % 89) as f64).collect();
    let mut table = frame(vec![
        Series::new("customer".into(), names),
        Series::new("CUSTOMER_ID".into(), ids),
        Series::new("amount".into(), amounts),
    ]);
    write_parquet(&dir.path().join("names.parquet"), &mut table);
    success(
        synth(dir.path()).args(["fit", "names.parquet", "--epochs", "1", "--seed", "1"]),
        "fit: ",
    );
    success(
        synth(dir.path()).args(["generate", "-n", "2000", "--seed", "2"]),
        "generate: ",
    );
    let synthetic = read_parquet(&dir.path().join("names.synthetic.parquet"));
    let generated = synthetic.column("customer").unwrap().str().unwrap();
    assert_eq!(generated.null_count(), 0);
    assert!(
        generated
            .iter()
            .flatten()
            .all(|name| !name.starts_with("name-"))
    );
    let ids = synthetic.column("CUSTOMER_ID").unwrap().i64().unwrap();
    assert!(ids.iter().flatten().all(|id| id < 1_000_000));
}
