//! Column kinds and types: the schema of a table.
//!
//! A schema lists each column to model with its kind (how synth learns it) and its type (an
//! Arrow type name such as `Int64`, `Utf8` or `Timestamp(µs)`, which is also the type it is
//! emitted back in). `schemas/*.toml` hold one per bundled data set; `synth schema infer` drafts
//! one from a table, and `synth fit` infers one when none is given.
//!
//! Inference rules, in order:
//! - dates and timestamps are `datetime`;
//! - a string or integer column whose values are all distinct and non-null, and whose name reads
//!   like a key (`id`, `..._id`, `...ID`), is `id`: regenerated unique, not learned; so is a
//!   string column of at least `UNIQUE_TEXT_KEY_ROWS` rows whose values are all distinct,
//!   whatever its name (transaction hashes, account names), since its values cannot be
//!   learned and generating them would copy them;
//! - strings and booleans are `categorical`; so are integer columns with at most
//!   `FEW_DISTINCT` (20) distinct values, or at most `categorical_max_distinct` (50) that
//!   each occur `CATEGORY_MEAN_ROWS` (10) times on average, and integer columns named like
//!   an id (`CUSTOMER_ID`), which are labels, not quantities;
//! - other integers are `integer`, floats `continuous`.
//!
//! # Limitations
//! - Nested types (lists, structs), binary, decimal and durations are refused with an error.
//! - Timestamps in seconds are not supported by the data-frame library and are refused.

use std::path::Path;
use std::str::FromStr;

use arrow::datatypes::{DataType as ArrowType, TimeUnit as ArrowUnit};
use polars::prelude::{DataFrame, DataType, TimeUnit, TimeZone};
use serde::{Deserialize, Serialize};

use crate::config::EncodeConfig;
use crate::error::{Error, Result};

/// How a column is learned and generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Real numbers, modelled with a Gaussian mixture per column.
    Continuous,
    /// Whole numbers, modelled like continuous ones and rounded back within the observed range.
    Integer,
    /// A finite set of labels, one-hot encoded.
    Categorical,
    /// Dates and timestamps, modelled as numbers in their own unit.
    Datetime,
    /// A unique key: not learned, regenerated unique in the same type.
    Id,
}

impl ColumnKind {
    /// The kind's name as written in schema files.
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Continuous => "continuous",
            ColumnKind::Integer => "integer",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Datetime => "datetime",
            ColumnKind::Id => "id",
        }
    }
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Column name in the data.
    pub name: String,
    /// How it is learned.
    pub kind: ColumnKind,
    /// Arrow type name the column is read as and emitted in.
    pub dtype: String,
}

impl ColumnSpec {
    /// The column's type for the data-frame library.
    pub fn polars_dtype(&self) -> Result<DataType> {
        let arrow = ArrowType::from_str(&self.dtype).map_err(|error| Error::Column {
            column: self.name.clone(),
            reason: format!("unknown type `{}`: {error}", self.dtype),
        })?;
        arrow_to_polars(&arrow).ok_or_else(|| Error::Column {
            column: self.name.clone(),
            reason: format!("type `{}` is not supported", self.dtype),
        })
    }
}

/// The modelled columns of a table, in output order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    /// The columns.
    pub columns: Vec<ColumnSpec>,
}

impl Schema {
    /// Reads a schema from a TOML file.
    pub fn load(path: &Path) -> Result<Schema> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Schema {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
        Schema::from_toml(&text).map_err(|reason| Error::Schema {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses a schema from TOML text.
    pub fn from_toml(text: &str) -> std::result::Result<Schema, String> {
        let schema: Schema = toml::from_str(text).map_err(|error| error.to_string())?;
        if schema.columns.is_empty() {
            return Err("lists no columns".into());
        }
        let mut names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!("column `{}` is listed twice", pair[0]));
        }
        for column in &schema.columns {
            column.polars_dtype().map_err(|error| error.to_string())?;
        }
        Ok(schema)
    }

    /// Writes the schema as TOML.
    pub fn to_toml(&self) -> String {
        let mut text = String::new();
        for column in &self.columns {
            text.push_str("[[columns]]\n");
            text.push_str(&format!("name = {}\n", toml_string(&column.name)));
            text.push_str(&format!("kind = \"{}\"\n", column.kind.name()));
            text.push_str(&format!("dtype = {}\n\n", toml_string(&column.dtype)));
        }
        text
    }

    /// Checks that every schema column exists in `frame` and can be read as its type.
    /// `source` names the data file in errors.
    pub fn check_against(&self, frame: &DataFrame, source: &Path) -> Result<()> {
        for column in &self.columns {
            let Ok(data) = frame.column(&column.name) else {
                let available: Vec<String> = frame
                    .get_column_names()
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect();
                return Err(Error::Schema {
                    path: source.to_owned(),
                    reason: format!(
                        "column `{}` is not in the data; it has: {}",
                        column.name,
                        available.join(", ")
                    ),
                });
            };
            let target = column.polars_dtype()?;
            check_kind_fits(column, &target)?;
            if data.dtype() != &target && data.strict_cast(&target).is_err() {
                return Err(Error::Column {
                    column: column.name.clone(),
                    reason: format!(
                        "its values of type `{}` do not fit the schema's type `{}`",
                        data.dtype(),
                        column.dtype
                    ),
                });
            }
        }
        Ok(())
    }

    /// Drafts a schema for `frame` with the rules in the module docs.
    pub fn infer(frame: &DataFrame, config: &EncodeConfig) -> Result<Schema> {
        let mut columns = Vec::with_capacity(frame.width());
        for data in frame.columns() {
            let name = data.name().to_string();
            let dtype = data.dtype();
            let arrow = polars_to_arrow(dtype).ok_or_else(|| Error::Column {
                column: name.clone(),
                reason: format!("type `{dtype}` is not supported (nested, binary or decimal)"),
            })?;
            let kind = infer_kind(data.as_materialized_series(), &name, config)?;
            columns.push(ColumnSpec {
                name,
                kind,
                dtype: arrow.to_string(),
            });
        }
        Ok(Schema { columns })
    }
}

/// A text column whose values are all distinct is inferred as a key from this many rows on;
/// below, a few distinct labels are more likely categories of a tiny table.
pub const UNIQUE_TEXT_KEY_ROWS: usize = 20;

fn infer_kind(
    series: &polars::prelude::Series,
    name: &str,
    config: &EncodeConfig,
) -> Result<ColumnKind> {
    let dtype = series.dtype();
    if matches!(dtype, DataType::Date | DataType::Datetime(..)) {
        return Ok(ColumnKind::Datetime);
    }
    if matches!(dtype, DataType::Float32 | DataType::Float64) {
        return Ok(ColumnKind::Continuous);
    }
    if dtype == &DataType::Boolean {
        return Ok(ColumnKind::Categorical);
    }
    let distinct = series.n_unique()?;
    let all_distinct = series.null_count() == 0 && distinct == series.len() && series.len() > 1;
    if all_distinct && looks_like_key(name) {
        return Ok(ColumnKind::Id);
    }
    // Text that never repeats (transaction hashes, customer names) cannot be learned as a
    // category, and reproducing its values would copy them: it is a key whatever its name.
    if all_distinct && dtype == &DataType::String && series.len() >= UNIQUE_TEXT_KEY_ROWS {
        return Ok(ColumnKind::Id);
    }
    if dtype == &DataType::String {
        return Ok(ColumnKind::Categorical);
    }
    // Integer counts and durations that repeat a few dozen values (the months of a loan
    // term) are spikes that a mixture of Gaussians smears out; as categories their values
    // come back exactly, in their shares. Wider one-hot blocks cost more than they gain: on
    // adult.parquet, ages and weekly hours (74 and 94 values) as categories doubled the
    // training time and scored lower.
    let repeated = distinct <= EncodeConfig::FEW_DISTINCT
        || distinct * EncodeConfig::CATEGORY_MEAN_ROWS <= series.len();
    if (distinct <= config.categorical_max_distinct && repeated) || looks_like_key(name) {
        return Ok(ColumnKind::Categorical);
    }
    Ok(ColumnKind::Integer)
}

/// Whether a column name reads like a key: `id`, `..._id`, `...Id`, `...ID`.
fn looks_like_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "id"
        || lower.ends_with("_id")
        || lower.ends_with(" id")
        || name.ends_with("Id")
        || (name.len() > 2 && name.ends_with("ID"))
}

fn check_kind_fits(column: &ColumnSpec, dtype: &DataType) -> Result<()> {
    let fits = match column.kind {
        ColumnKind::Continuous => dtype.is_primitive_numeric(),
        ColumnKind::Integer => dtype.is_integer(),
        ColumnKind::Datetime => matches!(dtype, DataType::Date | DataType::Datetime(..)),
        ColumnKind::Categorical => {
            dtype.is_integer() || matches!(dtype, DataType::String | DataType::Boolean)
        }
        ColumnKind::Id => dtype.is_integer() || dtype == &DataType::String,
    };
    if fits {
        Ok(())
    } else {
        Err(Error::Column {
            column: column.name.clone(),
            reason: format!(
                "kind `{}` cannot have type `{}`",
                column.kind.name(),
                column.dtype
            ),
        })
    }
}

fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// Maps a data-frame type to its Arrow name, or `None` for unsupported types.
pub fn polars_to_arrow(dtype: &DataType) -> Option<ArrowType> {
    Some(match dtype {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int8 => ArrowType::Int8,
        DataType::Int16 => ArrowType::Int16,
        DataType::Int32 => ArrowType::Int32,
        DataType::Int64 => ArrowType::Int64,
        DataType::UInt8 => ArrowType::UInt8,
        DataType::UInt16 => ArrowType::UInt16,
        DataType::UInt32 => ArrowType::UInt32,
        DataType::UInt64 => ArrowType::UInt64,
        DataType::Float32 => ArrowType::Float32,
        DataType::Float64 => ArrowType::Float64,
        DataType::String => ArrowType::Utf8,
        DataType::Date => ArrowType::Date32,
        DataType::Datetime(unit, zone) => {
            let unit = match unit {
                TimeUnit::Milliseconds => ArrowUnit::Millisecond,
                TimeUnit::Microseconds => ArrowUnit::Microsecond,
                TimeUnit::Nanoseconds => ArrowUnit::Nanosecond,
            };
            ArrowType::Timestamp(unit, zone.as_ref().map(|zone| zone.as_str().into()))
        }
        _ => return None,
    })
}

/// Maps an Arrow type to the data-frame type, or `None` for unsupported types.
pub fn arrow_to_polars(dtype: &ArrowType) -> Option<DataType> {
    Some(match dtype {
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Int8 => DataType::Int8,
        ArrowType::Int16 => DataType::Int16,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::UInt8 => DataType::UInt8,
        ArrowType::UInt16 => DataType::UInt16,
        ArrowType::UInt32 => DataType::UInt32,
        ArrowType::UInt64 => DataType::UInt64,
        ArrowType::Float32 => DataType::Float32,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::String,
        ArrowType::Date32 => DataType::Date,
        ArrowType::Timestamp(unit, zone) => {
            let unit = match unit {
                ArrowUnit::Millisecond => TimeUnit::Milliseconds,
                ArrowUnit::Microsecond => TimeUnit::Microseconds,
                ArrowUnit::Nanosecond => TimeUnit::Nanoseconds,
                ArrowUnit::Second => return None,
            };
            let zone = TimeZone::opt_try_new(zone.as_ref().map(|zone| zone.to_string())).ok()?;
            DataType::Datetime(unit, zone)
        }
        _ => return None,
    })
}
