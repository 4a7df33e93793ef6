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
use crate::rng::{Purpose, Stream, bulk_substream, substream};
use crate::tabular::cond::{CondSampler, Weighting};
use crate::tabular::ctgan::{Generation, Networks, Rules, generate_rows};
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

/// What generation draws from: its random streams, and the generator's activation buffers
/// (kept for the next batch made with the same run).
pub struct Run {
    condition: Stream,
    generation: Generation,
    decode: Stream,
}

impl Run {
    /// A run seeded with `seed`.
    pub fn new(seed: u64) -> Run {
        Run::batch(seed, 0)
    }

    /// The run of batch `index` of a generation seeded with `seed`: each batch has streams
    /// of its own, so batches can be made in any order.
    pub fn batch(seed: u64, index: u64) -> Run {
        Run {
            condition: substream(seed, Purpose::Condition, index),
            generation: Generation::new(
                bulk_substream(seed, Purpose::Noise, index),
                bulk_substream(seed, Purpose::Gumbel, index),
            ),
            decode: substream(seed, Purpose::Generate, index),
        }
    }

    /// Makes this run [`Run::batch`]`(seed, index)` again, keeping its buffers.
    pub fn restart(&mut self, seed: u64, index: u64) {
        let Run {
            condition,
            generation,
            decode,
        } = Run::batch(seed, index);
        self.condition = condition;
        self.generation.noise = generation.noise;
        self.generation.categories = generation.categories;
        self.decode = decode;
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
        Rules {
            links: &source.encoder.links,
            fixed: &fixed,
        },
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
///
/// Batches are generated side by side, one per compute thread, and written in order. Each
/// batch draws from its own streams, derived from `seed` and the batch's index, so the output
/// does not depend on the number of threads.
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
    let batch_rows = config.batch_rows.max(1) as u64;
    let batches = rows.div_ceil(batch_rows);
    let extent = |index: u64| {
        let first = index * batch_rows;
        (first, (rows - first).min(batch_rows) as usize)
    };
    let make = |index: u64, run: &mut Run| {
        let (first, wanted) = extent(index);
        run.restart(seed, index);
        batch(source, &sampler, conditions, wanted, first, run)
    };
    let workers = (crate::threads::count() as u64).min(batches);
    if workers <= 1 {
        let mut run = Run::new(seed);
        for index in 0..batches {
            writer.write(&make(index, &mut run)?)?;
            let (first, wanted) = extent(index);
            progress(first + wanted as u64);
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        // Worker w makes batches w, w + workers, …; each holds at most one finished batch
        // waiting to be written, which bounds memory.
        let receivers: Vec<_> = (0..workers)
            .map(|worker| {
                let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<DataFrame>>(1);
                let make = &make;
                scope.spawn(move || {
                    let mut run = Run::new(seed);
                    for index in (worker..batches).step_by(workers as usize) {
                        let frame = crate::threads::one_thread(|| make(index, &mut run));
                        let failed = frame.is_err();
                        // A closed channel means the writer stopped on an error.
                        if sender.send(frame).is_err() || failed {
                            return;
                        }
                    }
                });
                receiver
            })
            .collect();
        for index in 0..batches {
            let frame = receivers[(index % workers) as usize]
                .recv()
                .map_err(|_| std::io::Error::other("a generation thread stopped early"))??;
            writer.write(&frame)?;
            let (first, wanted) = extent(index);
            progress(first + wanted as u64);
        }
        Ok(())
    })
}
