//! The real, synthetic and holdout tables as columns every report section can compare.
//!
//! Each column of the schema (ids aside) becomes either numbers, with NaN for nulls and dates in
//! their physical unit, or codes into one dictionary shared by all three tables, with [`NULL`]
//! for nulls. Building the dictionary once means that "the same category" is a plain integer
//! comparison everywhere after this point.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use polars::prelude::{
    BooleanChunked, DataFrame, DataType, Int64Chunked, PolarsResult, StringChunked,
};
use rayon::prelude::*;

use crate::data::schema::{ColumnKind, ColumnSpec, Schema};
use crate::data::table;
use crate::error::{Error, Result};

/// A hash map with a fast, fixed hasher: the maps here are rebuilt from sorted keys, so their
/// iteration order never reaches the output.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// The code of a null in a discrete column.
pub const NULL: u32 = u32::MAX;

/// One column's values in one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Continuous, integer and datetime columns; NaN marks a null.
    Numbers(Vec<f64>),
    /// Categorical columns as codes into [`Column::levels`]; [`NULL`] marks a null.
    Codes(Vec<u32>),
}

impl Values {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Values::Numbers(values) => values.len(),
            Values::Codes(codes) => codes.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        match self {
            Values::Numbers(values) => values[row].is_nan(),
            Values::Codes(codes) => codes[row] == NULL,
        }
    }

    /// Share of null rows.
    pub fn null_share(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let nulls = (0..self.len()).filter(|&row| self.is_null(row)).count();
        nulls as f64 / self.len() as f64
    }

    /// The values of the rows in `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Values {
        match self {
            Values::Numbers(values) => Values::Numbers(rows.iter().map(|&r| values[r]).collect()),
            Values::Codes(codes) => Values::Codes(rows.iter().map(|&r| codes[r]).collect()),
        }
    }

    /// The numbers, for a numeric column.
    pub fn numbers(&self) -> Option<&[f64]> {
        match self {
            Values::Numbers(values) => Some(values),
            Values::Codes(_) => None,
        }
    }

    /// The codes, for a discrete column.
    pub fn codes(&self) -> Option<&[u32]> {
        match self {
            Values::Codes(codes) => Some(codes),
            Values::Numbers(_) => None,
        }
    }
}

/// Which table a set of values belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The real training rows.
    Real,
    /// The synthetic rows.
    Synthetic,
    /// The real rows held out of training.
    Holdout,
}

/// One compared column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Name and kind from the schema.
    pub spec: ColumnSpec,
    /// Labels of the codes of a discrete column: the real table's values by falling count, then
    /// values only the other tables hold, by label. Empty for numeric columns.
    pub levels: Vec<String>,
    /// Real training rows.
    pub real: Values,
    /// Synthetic rows.
    pub synthetic: Values,
    /// Holdout rows, when a holdout was given.
    pub holdout: Option<Values>,
}

impl Column {
    /// The column's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether the column is compared as numbers (continuous, integer and datetime columns).
    pub fn is_numeric(&self) -> bool {
        matches!(self.real, Values::Numbers(_))
    }

    /// The values of one side; `None` for a missing holdout.
    pub fn side(&self, side: Side) -> Option<&Values> {
        match side {
            Side::Real => Some(&self.real),
            Side::Synthetic => Some(&self.synthetic),
            Side::Holdout => self.holdout.as_ref(),
        }
    }
}

/// The three tables, column by column.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Compared columns in schema order; id columns are left out.
    pub columns: Vec<Column>,
    /// Row counts of real, synthetic and holdout (0 when there is none).
    pub rows: [usize; 3],
    /// Hashes of the training rows, built on first use.
    training_hashes: OnceLock<HashSet<u64>>,
    /// Rows of each side that copy a training row, counted on first use.
    copies: [OnceLock<usize>; 3],
}

impl Tables {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name() == name)
    }

    /// Row count of one side.
    pub fn rows(&self, side: Side) -> usize {
        match side {
            Side::Real => self.rows[0],
            Side::Synthetic => self.rows[1],
            Side::Holdout => self.rows[2],
        }
    }

    /// How many rows of `side` equal a training row in every compared column, counted over
    /// every row. Computed once per side, since the holdout check of [`prepare`] and the
    /// privacy section both ask.
    pub fn training_row_copies(&self, side: Side) -> usize {
        let slot = match side {
            Side::Real => 0,
            Side::Synthetic => 1,
            Side::Holdout => 2,
        };
        *self.copies[slot].get_or_init(|| {
            let train = self
                .training_hashes
                .get_or_init(|| self.row_hashes(Side::Real).into_iter().collect());
            self.row_hashes(side)
                .into_iter()
                .filter(|hash| train.contains(hash))
                .count()
        })
    }

    /// A hash of every compared value of each row of one side, for finding rows that are
    /// equal in every column.
    fn row_hashes(&self, side: Side) -> Vec<u64> {
        use std::hash::{BuildHasher, Hash, Hasher};
        (0..self.rows(side))
            .into_par_iter()
            .map(|row| {
                let mut hasher = foldhash::fast::FixedState::default().build_hasher();
                for column in &self.columns {
                    match column.side(side) {
                        Some(Values::Numbers(numbers)) => {
                            // One bit pattern for every null and for both zeros.
                            let value = numbers[row];
                            let bits = if value.is_nan() {
                                u64::MAX
                            } else {
                                (value + 0.0).to_bits()
                            };
                            bits.hash(&mut hasher);
                        }
                        Some(Values::Codes(codes)) => codes[row].hash(&mut hasher),
                        None => {}
                    }
                }
                hasher.finish()
            })
            .collect()
    }

    /// Whether a holdout was given.
    pub fn has_holdout(&self) -> bool {
        self.columns
            .first()
            .is_some_and(|column| column.holdout.is_some())
    }
}

/// A table as read from disk, with the path errors should name.
pub struct Input<'a> {
    /// The rows.
    pub frame: &'a DataFrame,
    /// Where they came from.
    pub path: &'a Path,
}

/// Checks the tables against the schema and against each other and builds the compared
/// columns.
///
/// Errors name the file and column: an empty table, a column the synthetic or holdout table
/// lacks or has in addition, a type that does not fit, and a holdout that shares id values with
/// the training rows.
pub fn prepare(
    schema: &Schema,
    real: Input<'_>,
    synthetic: Input<'_>,
    holdout: Option<Input<'_>>,
) -> Result<Tables> {
    let mut inputs = vec![&real, &synthetic];
    inputs.extend(holdout.as_ref());
    for input in &inputs {
        if input.frame.height() == 0 {
            return Err(Error::ReadData {
                path: input.path.to_owned(),
                reason: "the table has no rows".into(),
            });
        }
    }
    schema.check_against(real.frame, real.path)?;
    for other in &inputs[1..] {
        same_columns(real.frame, other.frame, other.path)?;
        schema.check_against(other.frame, other.path)?;
    }
    if let Some(holdout) = &holdout {
        check_ids_disjoint(schema, &real, holdout)?;
    }

    let specs: Vec<&ColumnSpec> = schema
        .columns
        .iter()
        .filter(|spec| spec.kind != ColumnKind::Id)
        .collect();
    let columns = specs
        .par_iter()
        .map(|spec| read_column(spec, &real, &synthetic, holdout.as_ref()))
        .collect::<Result<Vec<Column>>>()?;
    let tables = Tables {
        columns,
        rows: [
            real.frame.height(),
            synthetic.frame.height(),
            holdout.as_ref().map_or(0, |holdout| holdout.frame.height()),
        ],
        training_hashes: OnceLock::new(),
        copies: Default::default(),
    };
    if let Some(holdout) = &holdout {
        check_rows_disjoint(&tables, &real, holdout)?;
    }
    Ok(tables)
}

/// Share of holdout rows that may repeat training rows before the holdout counts as
/// overlapping them; real tables repeat rows, but not at this rate.
pub const OVERLAP_SHARE: f64 = 0.5;

/// Refuses a holdout most of whose rows are also training rows, for tables without an id
/// column to tell.
fn check_rows_disjoint(tables: &Tables, real: &Input<'_>, holdout: &Input<'_>) -> Result<()> {
    let repeated = tables.training_row_copies(Side::Holdout);
    let share = repeated as f64 / tables.rows(Side::Holdout).max(1) as f64;
    if share > OVERLAP_SHARE {
        return Err(Error::ReadData {
            path: holdout.path.to_owned(),
            reason: format!(
                "the holdout overlaps the training rows: {repeated} of its {} rows ({:.0}%) are also rows of `{}`; hold out rows that were not trained on",
                tables.rows(Side::Holdout),
                share * 100.0,
                real.path.display()
            ),
        });
    }
    Ok(())
}

/// Refuses a table whose column names differ from the real table's.
fn same_columns(real: &DataFrame, other: &DataFrame, path: &Path) -> Result<()> {
    let names = |frame: &DataFrame| -> HashSet<String> {
        frame
            .get_column_names()
            .iter()
            .map(|name| name.to_string())
            .collect()
    };
    let (expected, found) = (names(real), names(other));
    let mut missing: Vec<&String> = expected.difference(&found).collect();
    let mut extra: Vec<&String> = found.difference(&expected).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    missing.sort();
    extra.sort();
    let list = |names: &[&String]| {
        names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut reasons = Vec::new();
    if !missing.is_empty() {
        reasons.push(format!("lacks the real table's columns {}", list(&missing)));
    }
    if !extra.is_empty() {
        reasons.push(format!(
            "has columns the real table lacks: {}",
            list(&extra)
        ));
    }
    Err(Error::ReadData {
        path: path.to_owned(),
        reason: reasons.join("; "),
    })
}

/// Refuses a holdout that shares values of an id column with the training rows: such a holdout
/// is not held out, and every privacy score against it would be meaningless.
fn check_ids_disjoint(schema: &Schema, real: &Input<'_>, holdout: &Input<'_>) -> Result<()> {
    for spec in schema
        .columns
        .iter()
        .filter(|spec| spec.kind == ColumnKind::Id)
    {
        let keys = |input: &Input<'_>| -> Result<Vec<Option<String>>> {
            let column = input.frame.column(&spec.name)?.cast(&DataType::String)?;
            Ok(column
                .str()?
                .iter()
                .map(|value| value.map(str::to_owned))
                .collect())
        };
        let train: HashSet<String> = keys(real)?.into_iter().flatten().collect();
        let shared = keys(holdout)?
            .into_iter()
            .flatten()
            .filter(|key| train.contains(key))
            .count();
        if shared > 0 {
            return Err(Error::ReadData {
                path: holdout.path.to_owned(),
                reason: format!(
                    "the holdout overlaps the training rows: {shared} of its `{}` values are also in `{}`; hold out rows that were not trained on",
                    spec.name,
                    real.path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Adds the file to a column error, so that the user knows which table is wrong.
fn in_file(error: Error, path: &Path) -> Error {
    match error {
        Error::Column { column, reason } => Error::Column {
            column,
            reason: format!("{reason} (in `{}`)", path.display()),
        },
        other => other,
    }
}

/// A categorical column cast to its schema type and then to the type its labels are read in:
/// strings, booleans, or integers as `Int64`.
fn read_labels(input: &Input<'_>, spec: &ColumnSpec) -> Result<polars::prelude::Column> {
    let column = input.frame.column(&spec.name)?;
    let cast_error = |error: polars::error::PolarsError| {
        in_file(
            Error::Column {
                column: spec.name.clone(),
                reason: format!("cannot read as `{}`: {error}", spec.dtype),
            },
            input.path,
        )
    };
    let target = spec.polars_dtype()?;
    let typed = column.strict_cast(&target).map_err(cast_error)?;
    match target {
        DataType::String | DataType::Boolean => Ok(typed),
        _ => typed.cast(&DataType::Int64).map_err(cast_error),
    }
}

fn read_column(
    spec: &ColumnSpec,
    real: &Input<'_>,
    synthetic: &Input<'_>,
    holdout: Option<&Input<'_>>,
) -> Result<Column> {
    let mut inputs = vec![real, synthetic];
    inputs.extend(holdout);
    if spec.kind != ColumnKind::Categorical {
        let numbers = inputs
            .iter()
            .map(|input| {
                let column = input.frame.column(&spec.name)?;
                let numbers =
                    table::column_numbers(column, spec).map_err(|e| in_file(e, input.path))?;
                Ok(Values::Numbers(numbers))
            })
            .collect::<Result<Vec<Values>>>()?;
        return Ok(assemble(spec, Vec::new(), numbers));
    }
    let labels = inputs
        .iter()
        .map(|input| read_labels(input, spec))
        .collect::<Result<Vec<_>>>()?;
    let (levels, codes) = match labels[0].dtype() {
        DataType::String => {
            let sides = labels
                .iter()
                .map(|l| l.str().cloned())
                .collect::<PolarsResult<Vec<StringChunked>>>()?;
            encode(sides.len(), |side| sides[side].iter())
        }
        DataType::Boolean => {
            let sides = labels
                .iter()
                .map(|l| l.bool().cloned())
                .collect::<PolarsResult<Vec<BooleanChunked>>>()?;
            encode(sides.len(), |side| sides[side].iter())
        }
        _ => {
            let sides = labels
                .iter()
                .map(|l| l.i64().cloned())
                .collect::<PolarsResult<Vec<Int64Chunked>>>()?;
            encode(sides.len(), |side| sides[side].iter())
        }
    };
    Ok(assemble(spec, levels, codes))
}

fn assemble(spec: &ColumnSpec, levels: Vec<String>, mut sides: Vec<Values>) -> Column {
    let holdout = (sides.len() > 2).then(|| sides.remove(2));
    let synthetic = sides.remove(1);
    let real = sides.remove(0);
    Column {
        spec: spec.clone(),
        levels,
        real,
        synthetic,
        holdout,
    }
}

/// One dictionary for the labels of every side: the real table's values by falling count,
/// then values only the other tables hold, by label; and each side's codes. `side(i)` walks
/// the values of side `i` (real, synthetic, holdout), so nothing is copied before encoding.
fn encode<K, I>(sides: usize, side: impl Fn(usize) -> I) -> (Vec<String>, Vec<Values>)
where
    K: Copy + Eq + std::hash::Hash + ToString,
    I: Iterator<Item = Option<K>>,
{
    let mut counts: FastMap<K, usize> = FastMap::default();
    for value in side(0).flatten() {
        *counts.entry(value).or_default() += 1;
    }
    let mut known: Vec<(String, usize, K)> = counts
        .into_iter()
        .map(|(key, count)| (key.to_string(), count, key))
        .collect();
    known.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut index: FastMap<K, u32> = known
        .iter()
        .enumerate()
        .map(|(code, (_, _, key))| (*key, code as u32))
        .collect();
    let mut others: Vec<(String, K)> = Vec::new();
    for other in 1..sides {
        for value in side(other).flatten() {
            if let std::collections::hash_map::Entry::Vacant(slot) = index.entry(value) {
                slot.insert(u32::MAX);
                others.push((value.to_string(), value));
            }
        }
    }
    others.sort_by(|a, b| a.0.cmp(&b.0));
    for (offset, (_, key)) in others.iter().enumerate() {
        index.insert(*key, (known.len() + offset) as u32);
    }
    let levels = known
        .into_iter()
        .map(|(label, _, _)| label)
        .chain(others.into_iter().map(|(label, _)| label))
        .collect();
    let codes = (0..sides)
        .map(|i| {
            Values::Codes(
                side(i)
                    .map(|value| value.map_or(NULL, |key| index[&key]))
                    .collect(),
            )
        })
        .collect();
    (levels, codes)
}

/// `k` distinct rows of `0..n` drawn at random, in increasing order; all rows when `k >= n`.
pub fn sample_rows(n: usize, k: usize, rng: &mut crate::rng::Stream) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    let mut rows = rand::seq::index::sample(rng, n, k).into_vec();
    rows.sort_unstable();
    rows
}
