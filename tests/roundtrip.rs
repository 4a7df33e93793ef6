//! Encode → decode round trips: discrete values come back exactly, continuous values within
//! the precision of the mode scalar, and span widths add up to the encoded width.

use proptest::prelude::*;
use synth::config::EncodeConfig;
use synth::data::schema::{ColumnKind, ColumnSpec, Schema};
use synth::data::table::ColumnValues;
use synth::encode::TableEncoder;
use synth::rng::{Purpose, stream};

fn schema() -> Schema {
    let spec = |name: &str, kind, dtype: &str| ColumnSpec {
        name: name.into(),
        kind,
        dtype: dtype.into(),
    };
    Schema {
        columns: vec![
            spec("amount", ColumnKind::Continuous, "Float64"),
            spec("count", ColumnKind::Integer, "Int64"),
            spec("label", ColumnKind::Categorical, "Utf8"),
        ],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn decode_inverts_encode(
        rows in proptest::collection::vec(
            (proptest::option::weighted(0.9, -1e4f64..1e4), proptest::option::weighted(0.9, -50i64..50), proptest::option::of(0u8..6)),
            2..200,
        ),
        seed in 0u64..1000,
    ) {
        let amounts: Vec<Option<f64>> = rows.iter().map(|r| r.0).collect();
        let counts: Vec<Option<f64>> = rows.iter().map(|r| r.1.map(|c| c as f64)).collect();
        let labels: Vec<Option<String>> = rows.iter().map(|r| r.2.map(|l| format!("l{l}"))).collect();
        let values = vec![ColumnValues::Numbers(amounts.clone()), ColumnValues::Numbers(counts.clone()), ColumnValues::Text(labels.clone())];
        // Rare values are left out of the model on purpose (tested in tests/messy.rs); here
        // every value must come back, so none counts as rare.
        let config = EncodeConfig { rare_below: 1, ..EncodeConfig::default() };
        let encoder = TableEncoder::fit(&schema(), &values, &config, seed).unwrap();
        let widths: usize = encoder.layout.spans.iter().map(|s| s.width).sum();
        prop_assert_eq!(widths, encoder.layout.data_dim);

        let encoded = encoder.transform(&values, seed).unwrap();
        let decoded = encoder.decode(&encoded.data, encoded.rows, 0, &[], &mut stream(seed, Purpose::Generate)).unwrap();

        let got_amounts: Vec<Option<f64>> = decoded.column("amount").unwrap().f64().unwrap().iter().collect();
        let spread = amounts.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0);
        for (got, want) in got_amounts.iter().zip(&amounts) {
            match (got, want) {
                (Some(g), Some(w)) => prop_assert!((g - w).abs() <= 1e-4 * spread, "{} vs {}", g, w),
                (None, None) => {}
                _ => prop_assert!(false, "null mismatch: {:?} vs {:?}", got, want),
            }
        }
        let got_counts: Vec<Option<i64>> = decoded.column("count").unwrap().i64().unwrap().iter().collect();
        let want_counts: Vec<Option<i64>> = counts.iter().map(|c| c.map(|v| v as i64)).collect();
        prop_assert_eq!(got_counts, want_counts);
        let got_labels: Vec<Option<String>> = decoded.column("label").unwrap().str().unwrap().iter().map(|l| l.map(str::to_owned)).collect();
        prop_assert_eq!(got_labels, labels);
    }
}
