//! The span layout: where each column lives in an encoded row.
//!
//! An encoded row is a flat vector of `data_dim` numbers cut into spans. Each span has an
//! offset, a width and the activation the generator applies to it: `tanh` for the scalar that
//! places a continuous value within its mode, softmax (Gumbel-softmax in training) for one-hot
//! blocks. Discrete columns' one-hot spans also make up the conditional vector, in the same
//! order. This one list is read by the networks, the conditional sampler and the decoder, so
//! they cannot drift apart.

use serde::{Deserialize, Serialize};

/// The output activation of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// One scalar in [-1, 1].
    Tanh,
    /// A one-hot block.
    Softmax,
}

/// One block of an encoded row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First position in the row.
    pub offset: usize,
    /// Number of positions.
    pub width: usize,
    /// Activation the generator applies.
    pub activation: Activation,
    /// Index of the column the span belongs to, in schema order.
    pub column: usize,
}

/// A discrete column's one-hot span, which is also a block of the conditional vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscreteSpan {
    /// Index of the column in schema order.
    pub column: usize,
    /// First position of the span in the encoded row.
    pub offset: usize,
    /// First position of the block in the conditional vector.
    pub cond_offset: usize,
    /// Number of categories (one-hot width).
    pub width: usize,
}

/// The spans of an encoded row and the conditional vector built from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Layout {
    /// All spans in row order.
    pub spans: Vec<Span>,
    /// The discrete spans, in row order.
    pub discrete: Vec<DiscreteSpan>,
    /// Width of an encoded row.
    pub data_dim: usize,
    /// Width of the conditional vector.
    pub cond_dim: usize,
}

impl Layout {
    /// Appends a span of `width` for `column` and returns its offset. A discrete span also
    /// takes a block of the conditional vector.
    pub fn push(
        &mut self,
        column: usize,
        width: usize,
        activation: Activation,
        discrete: bool,
    ) -> usize {
        let offset = self.data_dim;
        self.spans.push(Span {
            offset,
            width,
            activation,
            column,
        });
        if discrete {
            self.discrete.push(DiscreteSpan {
                column,
                offset,
                cond_offset: self.cond_dim,
                width,
            });
            self.cond_dim += width;
        }
        self.data_dim += width;
        offset
    }

    /// The discrete span of `column`, if it has one.
    pub fn discrete_of(&self, column: usize) -> Option<(usize, &DiscreteSpan)> {
        self.discrete
            .iter()
            .enumerate()
            .find(|(_, span)| span.column == column)
    }
}

/// Spans of column 0 from `(offset, width, activation)` triples, for tests.
#[cfg(test)]
pub(crate) fn spans_of(list: &[(usize, usize, Activation)]) -> Vec<Span> {
    list.iter()
        .map(|&(offset, width, activation)| Span {
            offset,
            width,
            activation,
            column: 0,
        })
        .collect()
}

/// Index of the largest value, the first on ties.
///
/// ```
/// assert_eq!(synth::encode::layout::argmax(&[0.1, 0.7, 0.7]), 1);
/// ```
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (index, value) in values.iter().enumerate() {
        if *value > values[best] {
            best = index;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_accumulate_and_only_discrete_spans_condition() {
        let mut layout = Layout::default();
        assert_eq!(layout.push(0, 1, Activation::Tanh, false), 0);
        assert_eq!(layout.push(0, 3, Activation::Softmax, false), 1);
        assert_eq!(layout.push(1, 4, Activation::Softmax, true), 4);
        assert_eq!(layout.data_dim, 8);
        assert_eq!(layout.cond_dim, 4);
        assert_eq!(layout.discrete_of(1).map(|(_, span)| span.offset), Some(4));
        assert!(layout.discrete_of(0).is_none());
    }
}
