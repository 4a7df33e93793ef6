//! Stage 4: generating synthetic rows in bounded memory.
//!
//! Rows are generated, decoded and written in batches of `batch_rows`, so memory use depends
//! on the batch size, not on the number of rows asked for. `--condition column=value` sets the
//! value's one-hot in every row's conditional vector, so the generator produces rows that
//! belong with it, and the decoded column is that value in every row: no row is generated and
//! thrown away.
//!
//! # Limitations
//! - Several conditions at once set several one-hot blocks together, a combination the
//!   generator never saw in training (it was always conditioned on one column); the columns
//!   still hold the asked values, but the rest of the row follows the combination less closely.

use polars::prelude::DataFrame;

use crate::config::{GanConfig, GenerateConfig};
use crate::data::io::TableWriter;
use crate::encode::discrete::Label;
use crate::encode::{ColumnEncoder, TableEncoder};
use crate::error::{Error, Result};
use crate::rng::{Purpose, Stream, stream};
use crate::tabular::cond::{CondSampler, Weighting};
use crate::tabular::ctgan::{Generation, Networks, generate_rows};
use crate::tabular::{TabularModel, discrete_counts};

/// A condition resolved against a model: the column, its discrete span and slot, and the value
/// every row gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Column index in schema order.
    pub column: usize,
    /// Index of the column's discrete span.
    pub span: usize,
    /// Slot in that span.
    pub slot: usize,
    /// The value written to every row.
    pub label: Label,
}

/// Resolves `column=value` pairs typed by the user against the model's discrete columns.
pub fn resolve_conditions(
    model: &TabularModel,
    pairs: &[(String, String)],
) -> Result<Vec<Condition>> {
    let encoder = &model.manifest.encoder;
    let discrete_names: Vec<String> = encoder
        .layout
        .discrete
        .iter()
        .map(|span| format!("`{}`", encoder.schema.columns[span.column].name))
        .collect();
    let mut conditions: Vec<Condition> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let flag_error = |reason: String| Error::Flag {
            flag: "--condition".into(),
            reason,
        };
        let Some(column) = encoder
            .schema
            .columns
            .iter()
            .position(|spec| &spec.name == name)
        else {
            return Err(flag_error(format!(
                "no column `{name}`; columns that can be conditioned on: {}",
                discrete_names.join(", ")
            )));
        };
        let (ColumnEncoder::Discrete(labels), Some((span, _))) =
            (&encoder.columns[column], encoder.layout.discrete_of(column))
        else {
            return Err(flag_error(format!(
                "column `{name}` is not categorical; columns that can be conditioned on: {}",
                discrete_names.join(", ")
            )));
        };
        if conditions
            .iter()
            .any(|condition| condition.column == column)
        {
            return Err(flag_error(format!("column `{name}` is given twice")));
        }
        let (slot, label) = labels.parse_condition(name, value)?;
        let label = label
            .ok_or_else(|| flag_error(format!("column `{name}`: cannot condition on null")))?;
        conditions.push(Condition {
            column,
            span,
            slot,
            label,
        });
    }
    Ok(conditions)
}

/// What one generation run carries from batch to batch: the random streams it draws from
/// and the generator's activation buffers.
pub struct Run {
    condition: Stream,
    generation: Generation,
    decode: Stream,
}

impl Run {
    /// A run seeded with `seed`.
    pub fn new(seed: u64) -> Run {
        Run {
            condition: stream(seed, Purpose::Condition),
            generation: Generation::new(
                stream(seed, Purpose::Noise),
                stream(seed, Purpose::Gumbel),
            ),
            decode: stream(seed, Purpose::Generate),
        }
    }
}

/// The parts of a model that generation reads.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// The trained networks.
    pub networks: &'a Networks,
    /// Their settings.
    pub gan: &'a GanConfig,
    /// The fitted encoders.
    pub encoder: &'a TableEncoder,
}

impl<'a> Source<'a> {
    /// The parts of a loaded model.
    pub fn of(model: &'a TabularModel) -> Source<'a> {
        Source {
            networks: &model.networks,
            gan: &model.manifest.config.gan,
            encoder: &model.manifest.encoder,
        }
    }

    /// The sampler of unconditioned rows, drawing each column's categories by their
    /// frequency.
    pub fn sampler(&self) -> CondSampler {
        CondSampler::new(&self.encoder.layout, &discrete_counts(self.encoder), None)
    }
}

/// Generates and decodes one batch of `rows` rows whose ids start at `first_id`, under
/// `conditions` or, with none, with conditions drawn by frequency.
pub fn batch(
    source: Source<'_>,
    sampler: &CondSampler,
    conditions: &[Condition],
    rows: usize,
    first_id: u64,
    run: &mut Run,
) -> Result<DataFrame> {
    let fixed: Vec<(usize, usize)> = conditions.iter().map(|c| (c.span, c.slot)).collect();
    let forced: Vec<(usize, Label)> = conditions
        .iter()
        .map(|c| (c.column, c.label.clone()))
        .collect();
    // Batch normalisation uses the statistics of the batch, so tiny batches are generated
    // at a size where they are stable and cut.
    let generated = rows.max(1024);
    let cond = if fixed.is_empty() {
        sampler.draw(generated, Weighting::Frequency, &mut run.condition)
    } else {
        sampler.fixed(generated, &fixed)
    };
    let layout = &source.encoder.layout;
    let activated = generate_rows(
        source.networks,
        source.gan,
        layout,
        &cond,
        generated,
        &mut run.generation,
    )?;
    source.encoder.decode(
        &activated[..rows * layout.data_dim],
        rows,
        first_id,
        &forced,
        &mut run.decode,
    )
}

/// Generates `rows` rows from `model` into `writer`, calling `progress` with the rows written
/// so far after each batch.
pub fn generate(
    model: &TabularModel,
    rows: u64,
    seed: u64,
    conditions: &[Condition],
    config: &GenerateConfig,
    writer: &mut TableWriter,
    mut progress: impl FnMut(u64),
) -> Result<()> {
    crate::flag_ensure!(rows > 0, "-n", "must be at least 1");
    let source = Source::of(model);
    let sampler = source.sampler();
    let mut run = Run::new(seed);
    let batch_rows = config.batch_rows.max(1) as u64;
    let mut written = 0u64;
    while written < rows {
        let wanted = (rows - written).min(batch_rows) as usize;
        let frame = batch(source, &sampler, conditions, wanted, written, &mut run)?;
        writer.write(&frame)?;
        written += wanted as u64;
        progress(written);
    }
    Ok(())
}
