//! Typed views of a table's columns, checked against the schema.
//!
//! This is where messy input is caught: a table with no rows, nested columns, NaN or infinite
//! floats, or values that cannot be read as the schema's type are refused here with the
//! column's name, before any model is fitted.

use std::path::Path;

use polars::prelude::{Column, DataFrame, DataType};

use crate::data::schema::{ColumnKind, ColumnSpec, Schema};
use crate::error::{Error, Result};

/// The values of one column in the form its encoder consumes.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Continuous, integer and datetime columns; datetimes in their physical unit (days for
    /// dates, the timestamp's unit otherwise).
    Numbers(Vec<Option<f64>>),
    /// Categorical strings.
    Text(Vec<Option<String>>),
    /// Categorical integers.
    Integers(Vec<Option<i64>>),
    /// Categorical booleans.
    Booleans(Vec<Option<bool>>),
    /// Id columns, which are not learned.
    Skipped,
}

/// Refuses tables that cannot be modelled at all: no rows, or nested and binary columns.
pub fn check_frame(frame: &DataFrame, source: &Path) -> Result<()> {
    if frame.height() == 0 {
        return Err(Error::ReadData {
            path: source.to_owned(),
            reason: "the table has no rows".into(),
        });
    }
    for column in frame.columns() {
        if matches!(column.dtype(), DataType::List(_) | DataType::Binary)
            || column.dtype().is_nested()
        {
            return Err(Error::Column {
                column: column.name().to_string(),
                reason: format!(
                    "nested or binary type `{}` cannot be modelled; flatten it or leave it out of the schema",
                    column.dtype()
                ),
            });
        }
    }
    Ok(())
}

/// Returns the schema's columns of `frame` as typed values, in schema order.
pub fn columns(frame: &DataFrame, schema: &Schema) -> Result<Vec<ColumnValues>> {
    schema
        .columns
        .iter()
        .map(|spec| {
            let column = frame.column(&spec.name)?;
            column_values(column, spec)
        })
        .collect()
}

/// Returns one column's values cast to its schema type.
pub fn column_values(column: &Column, spec: &ColumnSpec) -> Result<ColumnValues> {
    let cast_error = |error: polars::error::PolarsError| Error::Column {
        column: spec.name.clone(),
        reason: format!("cannot read as `{}`: {error}", spec.dtype),
    };
    let target = spec.polars_dtype()?;
    let typed = column.strict_cast(&target).map_err(cast_error)?;
    match spec.kind {
        ColumnKind::Id => Ok(ColumnValues::Skipped),
        ColumnKind::Continuous | ColumnKind::Integer | ColumnKind::Datetime => {
            let numbers = numbers_of(&typed, spec)?;
            Ok(ColumnValues::Numbers(
                numbers
                    .into_iter()
                    .map(|v| (!v.is_nan()).then_some(v))
                    .collect(),
            ))
        }
        ColumnKind::Categorical => match &target {
            DataType::String => Ok(ColumnValues::Text(
                typed.str()?.iter().map(|v| v.map(str::to_owned)).collect(),
            )),
            DataType::Boolean => Ok(ColumnValues::Booleans(typed.bool()?.iter().collect())),
            _ => {
                let integers = typed.cast(&DataType::Int64).map_err(cast_error)?;
                Ok(ColumnValues::Integers(integers.i64()?.iter().collect()))
            }
        },
    }
}

/// The values of a continuous, integer or datetime column as numbers in its physical unit, NaN
/// for nulls; NaN or infinite values in the data are refused.
pub fn column_numbers(column: &Column, spec: &ColumnSpec) -> Result<Vec<f64>> {
    let target = spec.polars_dtype()?;
    let typed = column.strict_cast(&target).map_err(|error| Error::Column {
        column: spec.name.clone(),
        reason: format!("cannot read as `{}`: {error}", spec.dtype),
    })?;
    numbers_of(&typed, spec)
}

fn numbers_of(typed: &Column, spec: &ColumnSpec) -> Result<Vec<f64>> {
    let physical = typed.to_physical_repr();
    let numbers = physical
        .cast(&DataType::Float64)
        .map_err(|error| Error::Column {
            column: spec.name.clone(),
            reason: format!("cannot read as `{}`: {error}", spec.dtype),
        })?;
    let numbers = numbers.f64()?;
    let values: Vec<f64> = if numbers.null_count() == 0 {
        numbers.into_no_null_iter().collect()
    } else {
        numbers.iter().map(|v| v.unwrap_or(f64::NAN)).collect()
    };
    // Nulls are NaN from here on, so NaN in the data itself is counted before they merge.
    let bad = if numbers.null_count() == 0 {
        values.iter().filter(|v| !v.is_finite()).count()
    } else {
        numbers.iter().flatten().filter(|v| !v.is_finite()).count()
    };
    if bad > 0 {
        return Err(Error::Column {
            column: spec.name.clone(),
            reason: format!(
                "{bad} values are NaN or infinite; replace them with nulls or finite numbers"
            ),
        });
    }
    Ok(values)
}
