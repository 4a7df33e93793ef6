//! One-hot encoding of a categorical column.
//!
//! The most frequent `max_categories` values each get a slot. When a column has more values
//! than that (terminal or customer ids used as attributes, say), the rest share one "other"
//! slot, and decoding "other" draws one of those rarer values by its training frequency. A
//! column with nulls gets a null slot. The one-hot width is therefore at most
//! `max_categories + 2`, however many values the column has.
//!
//! Values seen fewer than `rare_below` times in training are rare: they never get a slot,
//! are not stored in the model, and are never generated. They count towards the "other"
//! slot, so the share of rows outside the kept values stays right, and "other" decodes to one
//! of the values that are not rare. A rare value would otherwise point at the few training
//! rows that hold it: a customer id seen twice, generated again, says that this customer is
//! in the training data.
//!
//! Slot counts are kept: the conditional sampler draws categories by their log-frequency in
//! training and by their frequency in generation.
//!
//! # Limitations
//! - Values in the "other" slot are drawn independently of the rest of the row, so their
//!   relation to other columns is lost; raise `max_categories` to keep more of it.
//! - When every value of a column is rare, nothing could be generated: [`DiscreteEncoder::fit`]
//!   then keeps the values, and the table encoder replaces a text or integer column by new
//!   unique values (customer names or ids seen two to four times each come back as fresh
//!   keys); a boolean column (a table of a few rows) keeps its values, with a warning.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Stream;

/// The labels of a categorical column, in slot order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    /// String labels.
    Text(Vec<String>),
    /// Integer labels.
    Integers(Vec<i64>),
    /// Boolean labels.
    Booleans(Vec<bool>),
}

/// One label of any of the three types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    /// A string.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Boolean(bool),
}

impl std::fmt::Display for Label {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Text(text) => write!(formatter, "{text}"),
            Label::Integer(value) => write!(formatter, "{value}"),
            Label::Boolean(value) => write!(formatter, "{value}"),
        }
    }
}

impl Labels {
    fn from_labels(labels: Vec<Label>, like: &Label) -> Labels {
        match like {
            Label::Text(_) => Labels::Text(
                labels
                    .into_iter()
                    .filter_map(|l| {
                        if let Label::Text(t) = l {
                            Some(t)
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
            Label::Integer(_) => Labels::Integers(
                labels
                    .into_iter()
                    .filter_map(|l| {
                        if let Label::Integer(v) = l {
                            Some(v)
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
            Label::Boolean(_) => Labels::Booleans(
                labels
                    .into_iter()
                    .filter_map(|l| {
                        if let Label::Boolean(v) = l {
                            Some(v)
                        } else {
                            None
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        match self {
            Labels::Text(labels) => labels.len(),
            Labels::Integers(labels) => labels.len(),
            Labels::Booleans(labels) => labels.len(),
        }
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label at `index`.
    pub fn get(&self, index: usize) -> Option<Label> {
        match self {
            Labels::Text(labels) => labels.get(index).cloned().map(Label::Text),
            Labels::Integers(labels) => labels.get(index).copied().map(Label::Integer),
            Labels::Booleans(labels) => labels.get(index).copied().map(Label::Boolean),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Label> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }
}

/// The values that share the "other" slot and that it decodes to, with their training
/// counts; rare values are not among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tail {
    /// The values.
    pub labels: Labels,
    /// Cumulative counts, for drawing by frequency.
    pub cumulative: Vec<u64>,
}

/// The fitted encoder of one categorical column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscreteEncoder {
    /// Labels with a slot of their own, most frequent first.
    pub kept: Labels,
    /// Values sharing the "other" slot, if any.
    pub tail: Option<Tail>,
    /// Whether the last slot stands for null.
    pub nullable: bool,
    /// Training count of every slot.
    pub counts: Vec<u64>,
    #[serde(skip)]
    index: HashMap<Label, usize>,
    /// Cumulative counts of the kept slots, which "other" decodes by when every value
    /// sharing it was rare.
    #[serde(skip)]
    kept_cumulative: Vec<u64>,
}

impl DiscreteEncoder {
    /// Fits on a column's values, keeping at most `max_categories` labels in slots of their own
    /// and dropping the values seen fewer than `rare_below` times.
    pub fn fit(
        values: &[Option<Label>],
        max_categories: usize,
        rare_below: u64,
    ) -> DiscreteEncoder {
        let mut counts: HashMap<&Label, u64> = HashMap::new();
        let mut nulls = 0u64;
        for value in values {
            match value {
                Some(label) => *counts.entry(label).or_default() += 1,
                None => nulls += 1,
            }
        }
        let mut by_count: Vec<(&Label, u64)> = counts.into_iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| label_order(a.0, b.0)));
        let like = by_count
            .first()
            .map(|(label, _)| (*label).clone())
            .unwrap_or(Label::Integer(0));
        // Sorted by count, so the rare values are the last ones; when all are rare, none is
        // treated as rare, since the column could not be generated at all.
        let common = by_count.partition_point(|&(_, count)| count >= rare_below);
        let common = if common == 0 { by_count.len() } else { common };
        let rare_rows: u64 = by_count[common..].iter().map(|&(_, count)| count).sum();
        let split = common.min(max_categories.max(1));
        let (kept, rest) = by_count[..common].split_at(split);

        let mut slot_counts: Vec<u64> = kept.iter().map(|(_, count)| *count).collect();
        let tail = (!rest.is_empty() || rare_rows > 0).then(|| {
            let mut running = 0;
            let cumulative = rest
                .iter()
                .map(|(_, count)| {
                    running += count;
                    running
                })
                .collect();
            slot_counts.push(running + rare_rows);
            let labels = rest.iter().map(|(label, _)| (*label).clone()).collect();
            Tail {
                labels: Labels::from_labels(labels, &like),
                cumulative,
            }
        });
        let nullable = nulls > 0;
        if nullable {
            slot_counts.push(nulls);
        }
        let kept = Labels::from_labels(
            kept.iter().map(|(label, _)| (*label).clone()).collect(),
            &like,
        );
        let mut encoder = DiscreteEncoder {
            kept,
            tail,
            nullable,
            counts: slot_counts,
            index: HashMap::new(),
            kept_cumulative: Vec::new(),
        };
        encoder.build_index();
        encoder
    }

    /// Rebuilds the label lookup and the kept slots' cumulative counts after deserialising.
    pub fn build_index(&mut self) {
        self.index = self
            .kept
            .iter()
            .enumerate()
            .map(|(slot, label)| (label, slot))
            .collect();
        let mut running = 0;
        self.kept_cumulative = self.counts[..self.kept.len()]
            .iter()
            .map(|count| {
                running += count;
                running
            })
            .collect();
    }

    /// One-hot width.
    pub fn width(&self) -> usize {
        self.kept.len() + usize::from(self.tail.is_some()) + usize::from(self.nullable)
    }

    fn other_slot(&self) -> Option<usize> {
        self.tail.as_ref().map(|_| self.kept.len())
    }

    fn null_slot(&self) -> Option<usize> {
        self.nullable.then(|| self.width() - 1)
    }

    /// The slot of a value seen in training.
    pub fn slot(&self, value: Option<&Label>) -> Option<usize> {
        match value {
            None => self.null_slot(),
            Some(label) => self.index.get(label).copied().or_else(|| self.other_slot()),
        }
    }

    /// The value a slot decodes to. "Other" draws one of the values that share it by their
    /// frequency; when all of those were rare, one of the kept values by theirs.
    pub fn decode(&self, slot: usize, rng: &mut Stream) -> Option<Label> {
        if slot < self.kept.len() {
            return self.kept.get(slot);
        }
        let tail = self
            .tail
            .as_ref()
            .filter(|_| Some(slot) == self.other_slot())?;
        let (labels, cumulative) = if tail.cumulative.is_empty() {
            (&self.kept, &self.kept_cumulative)
        } else {
            (&tail.labels, &tail.cumulative)
        };
        let total = cumulative.last().copied().unwrap_or(0);
        let draw = rng.random_range(0..total.max(1));
        let position = cumulative.partition_point(|&cumulative| cumulative <= draw);
        labels.get(position.min(labels.len().saturating_sub(1)))
    }

    /// Resolves a value typed by the user (`--condition column=value`) to its slot.
    /// `column` names the column in errors, which list the valid values.
    pub fn parse_condition(&self, column: &str, text: &str) -> Result<(usize, Option<Label>)> {
        let parsed = match &self.kept {
            Labels::Text(_) => Some(Label::Text(text.to_owned())),
            Labels::Integers(_) => text.trim().parse().ok().map(Label::Integer),
            Labels::Booleans(_) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Some(Label::Boolean(true)),
                "false" | "0" => Some(Label::Boolean(false)),
                _ => None,
            },
        };
        if let Some(label) = parsed {
            if let Some(&slot) = self.index.get(&label) {
                return Ok((slot, Some(label)));
            }
            let in_tail = self
                .tail
                .as_ref()
                .is_some_and(|tail| tail.labels.iter().any(|l| l == label));
            if let (true, Some(slot)) = (in_tail, self.other_slot()) {
                return Ok((slot, Some(label)));
            }
        }
        let shown: Vec<String> = self
            .kept
            .iter()
            .take(30)
            .map(|label| format!("`{label}`"))
            .collect();
        let more = if self.kept.len() > 30 { ", ..." } else { "" };
        Err(Error::Flag {
            flag: "--condition".into(),
            reason: format!(
                "column `{column}` has no value `{text}`; valid values: {}{more}",
                shown.join(", ")
            ),
        })
    }
}

fn label_order(a: &Label, b: &Label) -> std::cmp::Ordering {
    match (a, b) {
        (Label::Text(a), Label::Text(b)) => a.cmp(b),
        (Label::Integer(a), Label::Integer(b)) => a.cmp(b),
        (Label::Boolean(a), Label::Boolean(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, stream};

    fn text(values: &[Option<&str>]) -> Vec<Option<Label>> {
        values
            .iter()
            .map(|v| v.map(|t| Label::Text(t.to_owned())))
            .collect()
    }

    #[test]
    fn slots_are_most_frequent_first_with_other_and_null_last() {
        let values = text(&[Some("b"), Some("a"), Some("a"), Some("c"), None, Some("d")]);
        let encoder = DiscreteEncoder::fit(&values, 2, 1);
        assert_eq!(encoder.width(), 4);
        assert_eq!(encoder.kept, Labels::Text(vec!["a".into(), "b".into()]));
        assert_eq!(encoder.counts, vec![2, 1, 2, 1]);
        assert_eq!(encoder.slot(None), Some(3));
        assert_eq!(encoder.slot(Some(&Label::Text("d".into()))), Some(2));
        let mut rng = stream(1, Purpose::Generate);
        let drawn = encoder.decode(2, &mut rng);
        assert!(matches!(drawn, Some(Label::Text(t)) if t == "c" || t == "d"));
        assert_eq!(encoder.decode(3, &mut rng), None);
    }

    #[test]
    fn rare_values_are_neither_kept_nor_generated() {
        // "a" ×6, "b" ×5, "c" ×5 and "d" ×5 are common at rare_below = 5; "e" ×2 and "f" ×1
        // are rare.
        let mut values = Vec::new();
        for (label, count) in [("a", 6), ("b", 5), ("c", 5), ("d", 5), ("e", 2), ("f", 1)] {
            values.extend(std::iter::repeat_n(Some(label), count));
        }
        let encoder = DiscreteEncoder::fit(&text(&values), 2, 5);
        assert_eq!(encoder.kept, Labels::Text(vec!["a".into(), "b".into()]));
        // "other" holds c and d and the rare rows' share.
        assert_eq!(encoder.counts, vec![6, 5, 13]);
        let tail = encoder.tail.as_ref().unwrap();
        assert_eq!(tail.labels, Labels::Text(vec!["c".into(), "d".into()]));
        let model = serde_json::to_string(&encoder).unwrap();
        assert!(!model.contains("\"e\"") && !model.contains("\"f\""));
        // Rare values still encode, into "other".
        assert_eq!(encoder.slot(Some(&Label::Text("f".into()))), Some(2));
        assert!(encoder.parse_condition("letter", "e").is_err());
        let mut rng = stream(3, Purpose::Generate);
        for _ in 0..200 {
            let drawn = encoder.decode(2, &mut rng);
            assert!(matches!(drawn, Some(Label::Text(t)) if t == "c" || t == "d"));
        }

        // With every value outside the kept ones rare, "other" decodes to a kept value.
        let encoder = DiscreteEncoder::fit(&text(&values), 4, 5);
        assert_eq!(encoder.counts, vec![6, 5, 5, 5, 3]);
        assert!(encoder.tail.as_ref().unwrap().labels.is_empty());
        for _ in 0..200 {
            let drawn = encoder.decode(4, &mut rng).unwrap();
            assert!(!matches!(&drawn, Label::Text(t) if t == "e" || t == "f"));
        }
    }

    #[test]
    fn a_column_of_rare_values_only_is_kept_whole() {
        let encoder = DiscreteEncoder::fit(&text(&[Some("x"), Some("y"), Some("y")]), 10, 5);
        assert_eq!(encoder.kept, Labels::Text(vec!["y".into(), "x".into()]));
        assert!(encoder.tail.is_none());
    }

    #[test]
    fn unknown_condition_lists_valid_values() {
        let encoder = DiscreteEncoder::fit(&text(&[Some("yes"), Some("no")]), 10, 1);
        let error = encoder
            .parse_condition("answer", "maybe")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`answer`") && error.contains("`yes`") && error.contains("`no`"));
        let (slot, label) = encoder.parse_condition("answer", "no").unwrap();
        assert_eq!(encoder.kept.get(slot), label);
    }
}
