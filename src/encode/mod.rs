//! Stage 2: reversible encoding of a table into rows of numbers.
//!
//! [`TableEncoder`] fits one encoder per schema column and lays their spans out in one
//! [`Layout`]: continuous, integer and datetime columns get mode-specific normalisation
//! ([`continuous`]), categorical columns one-hot blocks ([`discrete`]). Columns that carry
//! nothing to learn are reproduced without a span: a constant or all-null column as it is, an
//! id column as fresh unique keys.
//!
//! # Limitations
//! - Columns are encoded one by one; relations between them are left to the model.

pub mod bgm;
pub mod continuous;
pub mod discrete;
pub mod layout;
pub mod links;

use polars::prelude::{Column, DataFrame, DataType, NamedFrom, Series};
use serde::{Deserialize, Serialize};

use crate::config::EncodeConfig;
use crate::data::schema::{ColumnKind, ColumnSpec, Schema};
use crate::data::table::ColumnValues;
use crate::error::{Error, Result};
use crate::rng::{Purpose, Stream, substream};
use continuous::ContinuousEncoder;
use discrete::{DiscreteEncoder, Label, Labels};
use layout::{Activation, Layout};

/// How one column is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "encoding")]
pub enum ColumnEncoder {
    /// Mode-specific normalisation.
    Continuous(ContinuousEncoder),
    /// One-hot.
    Discrete(DiscreteEncoder),
    /// A column with a single value (or only nulls), reproduced as it is.
    Fixed {
        /// The value, `None` for an all-null column.
        value: Option<FixedValue>,
    },
    /// A unique key, regenerated.
    Id,
}

/// The single value of a fixed column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FixedValue {
    /// A number (datetimes in their physical unit).
    Number(f64),
    /// A label.
    Label(Label),
}

/// The fitted encoders of all columns and their layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEncoder {
    /// Columns in output order.
    pub schema: Schema,
    /// One encoder per schema column.
    pub columns: Vec<ColumnEncoder>,
    /// Where each encoded column lives.
    pub layout: Layout,
    /// Categorical columns that decide others in the training rows, which generation keeps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<links::Link>,
}

/// A table encoded for training.
#[derive(Debug, Clone)]
pub struct EncodedTable {
    /// Row-major values, `rows × layout.data_dim`.
    pub data: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// For each discrete span (layout order), the slot of every row.
    pub slots: Vec<Vec<u32>>,
}

impl TableEncoder {
    /// Fits encoders for `values` (one per schema column, as [`crate::data::table::columns`]
    /// returns them).
    pub fn fit(
        schema: &Schema,
        values: &[ColumnValues],
        config: &EncodeConfig,
        seed: u64,
    ) -> Result<Self> {
        let mut columns = Vec::with_capacity(values.len());
        let mut layout = Layout::default();
        for (index, (spec, column)) in schema.columns.iter().zip(values).enumerate() {
            let mut rng = substream(seed, Purpose::Mixture, index as u64);
            let encoder = fit_column(spec, column, config, &mut rng)?;
            match &encoder {
                ColumnEncoder::Continuous(numeric) => {
                    tracing::debug!(column = %spec.name, modes = numeric.mixture.len(), "fitted mixture");
                    layout.push(index, 1, Activation::Tanh, false);
                    layout.push(index, numeric.mixture.len(), Activation::Softmax, false);
                    if numeric.nullable() {
                        layout.push(index, 2, Activation::Softmax, true);
                    }
                }
                ColumnEncoder::Discrete(labels) => {
                    if labels.tail.is_some() {
                        tracing::info!(
                            column = %spec.name,
                            kept = labels.kept.len(),
                            "column has more values than `max_categories`; the rarer ones share one slot"
                        );
                    }
                    layout.push(index, labels.width(), Activation::Softmax, true);
                }
                ColumnEncoder::Fixed { .. } => {
                    tracing::info!(column = %spec.name, "column holds a single value; reproduced as it is, not modelled");
                }
                ColumnEncoder::Id => {}
            }
            columns.push(encoder);
        }
        Ok(TableEncoder {
            schema: schema.clone(),
            columns,
            layout,
            links: Vec::new(),
        })
    }

    /// The spans of column `index`, in row order.
    fn spans_of(&self, index: usize) -> Vec<layout::Span> {
        self.layout
            .spans
            .iter()
            .filter(|span| span.column == index)
            .copied()
            .collect()
    }

    /// Rebuilds lookups that are not stored, after deserialising.
    pub fn restore(&mut self) {
        for column in &mut self.columns {
            if let ColumnEncoder::Discrete(encoder) = column {
                encoder.build_index();
            }
        }
    }

    /// Encodes `values` (as given to [`Self::fit`]) for training.
    pub fn transform(&self, values: &[ColumnValues], seed: u64) -> Result<EncodedTable> {
        let rows = values.iter().find_map(column_len).unwrap_or(0);
        let width = self.layout.data_dim;
        let mut data = vec![0.0f32; rows * width];
        let mut slots = Vec::with_capacity(self.layout.discrete.len());
        for (index, (encoder, column)) in self.columns.iter().zip(values).enumerate() {
            let name = &self.schema.columns[index].name;
            match (encoder, column) {
                (ColumnEncoder::Continuous(numeric), ColumnValues::Numbers(numbers)) => {
                    let spans = self.spans_of(index);
                    let (scalar, modes) = (spans[0], spans[1]);
                    let null = spans.get(2).copied();
                    let mut rng = substream(seed, Purpose::Encode, index as u64);
                    let mut posterior = vec![0.0; numeric.mixture.len()];
                    let mut column_slots =
                        Vec::with_capacity(if null.is_some() { rows } else { 0 });
                    for (row, value) in numbers.iter().enumerate() {
                        let line = &mut data[row * width..(row + 1) * width];
                        let (head, tail) = line.split_at_mut(modes.offset);
                        let slot = numeric.encode(
                            *value,
                            &mut rng,
                            &mut posterior,
                            &mut head[scalar.offset],
                            &mut tail[..modes.width],
                        );
                        if let Some(null) = null {
                            line[null.offset + slot] = 1.0;
                            column_slots.push(slot as u32);
                        }
                    }
                    if null.is_some() {
                        slots.push(column_slots);
                    }
                }
                (ColumnEncoder::Discrete(labels), column) => {
                    let offset = self.spans_of(index)[0].offset;
                    let mut column_slots = Vec::with_capacity(rows);
                    for (row, label) in labels_of(column, name)?.into_iter().enumerate() {
                        let slot = labels.slot(label.as_ref()).ok_or_else(|| Error::Column {
                            column: name.clone(),
                            reason: format!(
                                "value `{}` was not seen when fitting",
                                label
                                    .as_ref()
                                    .map(ToString::to_string)
                                    .unwrap_or_else(|| "null".into())
                            ),
                        })?;
                        data[row * width + offset + slot] = 1.0;
                        column_slots.push(slot as u32);
                    }
                    slots.push(column_slots);
                }
                (ColumnEncoder::Continuous(_), _) => {
                    return Err(Error::Column {
                        column: name.clone(),
                        reason: "expected numbers".into(),
                    });
                }
                (ColumnEncoder::Fixed { .. } | ColumnEncoder::Id, _) => {}
            }
        }
        Ok(EncodedTable { data, rows, slots })
    }

    /// Decodes `rows` activated rows (row-major, `layout.data_dim` wide: scalars in [-1, 1],
    /// one-hot blocks as scores whose largest entry wins) into a data frame. Id columns count
    /// up from `first_id`. `forced` fixes columns to a value (from `--condition`).
    pub fn decode(
        &self,
        activated: &[f32],
        rows: usize,
        first_id: u64,
        forced: &[(usize, Label)],
        rng: &mut Stream,
    ) -> Result<DataFrame> {
        let width = self.layout.data_dim;
        let mut output = Vec::with_capacity(self.columns.len());
        for (index, (encoder, spec)) in self.columns.iter().zip(&self.schema.columns).enumerate() {
            let forced_label = forced
                .iter()
                .find(|(column, _)| *column == index)
                .map(|(_, label)| label);
            let series = match encoder {
                ColumnEncoder::Continuous(numeric) => {
                    let spans = self.spans_of(index);
                    let values: Vec<Option<f64>> = (0..rows)
                        .map(|row| {
                            let line = &activated[row * width..(row + 1) * width];
                            let block =
                                |span: &layout::Span| &line[span.offset..span.offset + span.width];
                            numeric.decode(
                                line[spans[0].offset],
                                block(&spans[1]),
                                spans.get(2).map(block),
                            )
                        })
                        .collect();
                    numbers_series(spec, values)?
                }
                ColumnEncoder::Discrete(labels) => {
                    let span = self.spans_of(index)[0];
                    let values: Vec<Option<Label>> = (0..rows)
                        .map(|row| match forced_label {
                            Some(label) => Some(label.clone()),
                            None => {
                                let start = row * width + span.offset;
                                let slot = layout::argmax(&activated[start..start + span.width]);
                                labels.decode(slot, rng)
                            }
                        })
                        .collect();
                    labels_series(spec, &values)?
                }
                ColumnEncoder::Fixed {
                    value: Some(FixedValue::Number(number)),
                } => numbers_series(spec, vec![Some(*number); rows])?,
                ColumnEncoder::Fixed {
                    value: Some(FixedValue::Label(label)),
                } => labels_series(spec, &vec![Some(label.clone()); rows])?,
                ColumnEncoder::Fixed { value: None } => {
                    Series::full_null(spec.name.as_str().into(), rows, &spec.polars_dtype()?)
                }
                ColumnEncoder::Id => {
                    let ids: Vec<i64> = (0..rows as u64)
                        .map(|row| (first_id + row) as i64)
                        .collect();
                    let series = Series::new(spec.name.as_str().into(), ids);
                    let target = spec.polars_dtype()?;
                    if target == DataType::String {
                        series.cast(&DataType::String)?
                    } else {
                        series.strict_cast(&target).map_err(|_| Error::Column {
                            column: spec.name.clone(),
                            reason: format!("{rows} unique ids do not fit type `{}`", spec.dtype),
                        })?
                    }
                }
            };
            output.push(Column::from(series));
        }
        Ok(DataFrame::new(rows, output)?)
    }
}

fn column_len(values: &ColumnValues) -> Option<usize> {
    match values {
        ColumnValues::Numbers(v) => Some(v.len()),
        ColumnValues::Text(v) => Some(v.len()),
        ColumnValues::Integers(v) => Some(v.len()),
        ColumnValues::Booleans(v) => Some(v.len()),
        ColumnValues::Skipped => None,
    }
}

fn labels_of(values: &ColumnValues, column: &str) -> Result<Vec<Option<Label>>> {
    Ok(match values {
        ColumnValues::Text(v) => v.iter().map(|x| x.clone().map(Label::Text)).collect(),
        ColumnValues::Integers(v) => v.iter().map(|x| x.map(Label::Integer)).collect(),
        ColumnValues::Booleans(v) => v.iter().map(|x| x.map(Label::Boolean)).collect(),
        ColumnValues::Numbers(_) | ColumnValues::Skipped => {
            return Err(Error::Column {
                column: column.to_owned(),
                reason: "expected labels".into(),
            });
        }
    })
}

fn fit_column(
    spec: &ColumnSpec,
    values: &ColumnValues,
    config: &EncodeConfig,
    rng: &mut Stream,
) -> Result<ColumnEncoder> {
    if spec.kind == ColumnKind::Id {
        return Ok(ColumnEncoder::Id);
    }
    if let ColumnValues::Numbers(numbers) = values {
        let present: Vec<f64> = numbers.iter().flatten().copied().collect();
        let nulls = (numbers.len() - present.len()) as u64;
        let nullable = nulls > 0;
        let first = present.first().copied();
        if present.iter().all(|value| Some(*value) == first) && !(nullable && first.is_some()) {
            return Ok(ColumnEncoder::Fixed {
                value: first.map(FixedValue::Number),
            });
        }
        let round = spec.kind != ColumnKind::Continuous;
        let encoder = ContinuousEncoder::fit(
            &present,
            nulls,
            round,
            &config.mixture,
            config.mixture_sample,
            rng,
        );
        return Ok(ColumnEncoder::Continuous(encoder));
    }
    let labels = labels_of(values, &spec.name)?;
    let encoder = DiscreteEncoder::fit(&labels, config.max_categories, config.rare_below);
    // The encoder keeps rare values only when all of them are rare.
    if encoder.counts[..encoder.kept.len()]
        .iter()
        .any(|&count| count < config.rare_below)
    {
        if matches!(encoder.kept, Labels::Text(_) | Labels::Integers(_)) {
            tracing::warn!(
                column = %spec.name,
                "every value is seen fewer than {} times, so none can be generated without copying it; the column gets new unique values instead (`--rare-below 1` keeps the values)",
                config.rare_below
            );
            return Ok(ColumnEncoder::Id);
        }
        tracing::warn!(
            column = %spec.name,
            "every value is seen fewer than {} times; the values are kept and can reappear in generated rows",
            config.rare_below
        );
    }
    if encoder.width() <= 1 {
        let value = labels.into_iter().flatten().next().map(FixedValue::Label);
        return Ok(ColumnEncoder::Fixed { value });
    }
    Ok(ColumnEncoder::Discrete(encoder))
}

fn numbers_series(spec: &ColumnSpec, values: Vec<Option<f64>>) -> Result<Series> {
    let name = spec.name.as_str().into();
    let target = spec.polars_dtype()?;
    let series = Series::new(name, values);
    Ok(match &target {
        DataType::Float32 | DataType::Float64 => series.cast(&target)?,
        DataType::Date => series.cast(&DataType::Int32)?.cast(&target)?,
        _ => series.cast(&DataType::Int64)?.cast(&target)?,
    })
}

fn labels_series(spec: &ColumnSpec, values: &[Option<Label>]) -> Result<Series> {
    let name = spec.name.as_str().into();
    let target = spec.polars_dtype()?;
    let series = match &target {
        DataType::String => Series::new(
            name,
            values
                .iter()
                .map(|v| v.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>(),
        ),
        DataType::Boolean => Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Some(Label::Boolean(b)) => Some(*b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        _ => Series::new(
            name,
            values
                .iter()
                .map(|v| match v {
                    Some(Label::Integer(i)) => Some(*i),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        )
        .cast(&target)?,
    };
    Ok(series)
}
