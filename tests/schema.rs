//! Schemas: inference, TOML round trip, fitting with a schema file, and schema errors.

mod common;

use common::*;
use polars::prelude::*;
use predicates::prelude::*;
use predicates::str::contains;
use synth::config::EncodeConfig;
use synth::data::schema::{ColumnKind, Schema};

#[test]
fn inferred_schema_round_trips_through_toml() {
    let frame = read_parquet(&datasets().join("transactions.parquet"));
    let schema = Schema::infer(&frame, &EncodeConfig::default()).unwrap();
    let kinds: Vec<(&str, ColumnKind)> = schema
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("TRANSACTION_ID", ColumnKind::Id),
            ("TX_DATETIME", ColumnKind::Datetime),
            ("CUSTOMER_ID", ColumnKind::Categorical),
            ("TERMINAL_ID", ColumnKind::Categorical),
            ("TX_AMOUNT", ColumnKind::Continuous),
            ("TX_TIME_SECONDS", ColumnKind::Integer),
            ("TX_TIME_DAYS", ColumnKind::Integer),
            ("TX_FRAUD", ColumnKind::Categorical),
            ("TX_FRAUD_SCENARIO", ColumnKind::Categorical),
        ]
    );
    assert_eq!(Schema::from_toml(&schema.to_toml()).unwrap(), schema);
}

#[test]
fn bundled_schemas_match_their_data() {
    for name in ["transactions", "german_credit"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(format!("{name}.toml"));
        let schema = Schema::load(&path).unwrap();
        let frame = read_parquet(&datasets().join(format!("{name}.parquet")));
        schema.check_against(&frame, &path).unwrap();
    }
}

#[test]
fn schema_infer_prints_toml_and_fit_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = datasets().join("german_credit.parquet");
    let output = synth(dir.path())
        .args(["schema", "infer"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("name = \"creditability\"\nkind = \"categorical\"\ndtype = \"Utf8\""));

    let edited = text.replace(
        "name = \"duration_in_month\"\nkind = \"categorical\"",
        "name = \"duration_in_month\"\nkind = \"integer\"",
    );
    std::fs::write(dir.path().join("schema.toml"), edited).unwrap();
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--schema", "schema.toml", "--epochs", "1", "--model", "m"])
        .assert()
        .success();
    let manifest = std::fs::read_to_string(dir.path().join("m/manifest.json")).unwrap();
    assert!(manifest.contains("\"name\": \"duration_in_month\",\n          \"kind\": \"integer\""));
}

#[test]
fn schema_with_a_missing_column_or_a_type_that_does_not_fit_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = datasets().join("german_credit.parquet");
    std::fs::write(
        dir.path().join("missing.toml"),
        "[[columns]]\nname = \"salary\"\nkind = \"continuous\"\ndtype = \"Float64\"\n",
    )
    .unwrap();
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--schema", "missing.toml"])
        .assert()
        .code(2)
        .stderr(contains("`salary`").and(contains("missing.toml")));

    std::fs::write(
        dir.path().join("wrong.toml"),
        "[[columns]]\nname = \"purpose\"\nkind = \"continuous\"\ndtype = \"Float64\"\n",
    )
    .unwrap();
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--schema", "wrong.toml"])
        .assert()
        .code(2)
        .stderr(contains("column `purpose`"));

    std::fs::write(
        dir.path().join("kind.toml"),
        "[[columns]]\nname = \"purpose\"\nkind = \"datetime\"\ndtype = \"Utf8\"\n",
    )
    .unwrap();
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--schema", "kind.toml"])
        .assert()
        .code(2)
        .stderr(contains("kind `datetime` cannot have type `Utf8`"));

    std::fs::write(dir.path().join("broken.toml"), "[[columns]\nname=").unwrap();
    synth(dir.path())
        .arg("fit")
        .arg(&data)
        .args(["--schema", "broken.toml"])
        .assert()
        .code(2)
        .stderr(contains("broken.toml"));
}

#[test]
fn numbers_stored_as_strings_follow_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strings.parquet");
    let amounts: Vec<String> = (0..300).map(|i| format!("{}.5", i % 97)).collect();
    let kinds: Vec<&str> = (0..300)
        .map(|i| if i % 3 == 0 { "a" } else { "b" })
        .collect();
    write_parquet(
        &path,
        &mut frame(vec![
            Series::new("amount".into(), amounts),
            Series::new("kind".into(), kinds),
        ]),
    );
    std::fs::write(dir.path().join("s.toml"), "[[columns]]\nname = \"amount\"\nkind = \"continuous\"\ndtype = \"Float64\"\n\n[[columns]]\nname = \"kind\"\nkind = \"categorical\"\ndtype = \"Utf8\"\n").unwrap();
    synth(dir.path())
        .arg("fit")
        .arg(&path)
        .args([
            "--schema",
            "s.toml",
            "--epochs",
            "2",
            "--batch-size",
            "100",
            "--model",
            "m",
        ])
        .assert()
        .success();
    synth(dir.path())
        .args([
            "generate",
            "-n",
            "100",
            "--model",
            "m",
            "--out",
            "o.parquet",
        ])
        .assert()
        .success();
    let synthetic = read_parquet(&dir.path().join("o.parquet"));
    assert_eq!(
        synthetic.column("amount").unwrap().dtype(),
        &DataType::Float64
    );
}

#[test]
fn a_schema_may_leave_columns_of_the_file_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = datasets().join("german_credit.parquet");
    let output = success(
        synth(dir.path()).args(["schema", "infer"]).arg(&data),
        "schema infer: ",
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let telephone =
        "[[columns]]\nname = \"telephone\"\nkind = \"categorical\"\ndtype = \"Utf8\"\n\n";
    assert!(text.contains(telephone));
    std::fs::write(dir.path().join("s.toml"), text.replace(telephone, "")).unwrap();
    success(
        synth(dir.path()).arg("fit").arg(&data).args([
            "--schema", "s.toml", "--epochs", "2", "--seed", "1", "--model", "m",
        ]),
        "fit: ",
    );
    success(
        synth(dir.path()).args(["generate", "-n", "50", "--model", "m", "--out", "o.parquet"]),
        "generate: ",
    );
    let synthetic = read_parquet(&dir.path().join("o.parquet"));
    assert!(synthetic.column("telephone").is_err());
    assert_eq!(synthetic.width(), read_parquet(&data).width() - 1);
}

#[test]
fn text_that_never_repeats_is_a_key_whatever_its_name() {
    let kinds = |rows: usize| {
        let hashes: Vec<String> = (0..rows).map(|i| format!("{:016x}", i * 7919)).collect();
        let colours: Vec<&str> = (0..rows).map(|i| ["red", "blue"][i % 2]).collect();
        let table = frame(vec![
            Series::new("trans_num".into(), hashes),
            Series::new("colour".into(), colours),
        ]);
        let schema = Schema::infer(&table, &EncodeConfig::default()).unwrap();
        (schema.columns[0].kind, schema.columns[1].kind)
    };
    assert_eq!(kinds(200), (ColumnKind::Id, ColumnKind::Categorical));
    // A handful of distinct labels in a tiny table are more likely categories.
    assert_eq!(kinds(2), (ColumnKind::Categorical, ColumnKind::Categorical));
}
