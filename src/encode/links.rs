//! Deterministic links between categorical columns.
//!
//! Real tables hold columns that are functions of other columns: a fraud scenario decides
//! the fraud label (scenario 0 is genuine, 1 to 3 are frauds), a product code its product
//! group. A GAN learns such a link only approximately, so some of its rows break it (a
//! fraud with scenario 0), which a fraud team sees at once. At fit, synth looks for every
//! pair of categorical columns where each well-supported value of one, the *detailed*
//! column, always comes with the same value of the other, the *summary* column. Generation
//! draws the summary column as usual, then draws the detailed column only among the values
//! that go with the summary value drawn, so every generated row keeps the link.
//!
//! # Limitations
//! - Only exact links are found: one training row that breaks a link rules it out.
//! - Values seen fewer than [`Link::MIN_ROWS`] times are too thin to show a link and are
//!   left free (drawn with any summary value).
//! - A detailed column follows one summary column, the one with the most values.

use serde::{Deserialize, Serialize};

use super::EncodedTable;
use super::layout::Layout;

/// A detailed column whose every value comes with one value of a summary column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Discrete span (layout order) of the detailed column, drawn second.
    pub detailed: usize,
    /// Discrete span of the summary column, drawn first.
    pub summary: usize,
    /// For each slot of the detailed span, the summary slot it always comes with, or
    /// [`Link::FREE`].
    pub summary_of: Vec<u32>,
}

impl Link {
    /// A detailed slot that goes with any summary slot.
    pub const FREE: u32 = u32::MAX;

    /// The fewest training rows a detailed value needs for its summary value to count.
    pub const MIN_ROWS: u64 = 10;
}

/// Finds the links of an encoded table, ordered so that a span that summarises a link is
/// drawn before the spans it restricts (a summary may itself be detailed by another link).
pub fn find(layout: &Layout, table: &EncodedTable) -> Vec<Link> {
    let spans = layout.discrete.len();
    // How many slots each span uses; a link goes from a span with more to one with fewer
    // (ties by position), so no chain of links comes back to where it started.
    let used: Vec<usize> = table
        .slots
        .iter()
        .zip(&layout.discrete)
        .map(|(slots, span)| {
            let mut seen = vec![false; span.width];
            slots.iter().for_each(|&slot| seen[slot as usize] = true);
            seen.iter().filter(|seen| **seen).count()
        })
        .collect();
    let rank = |span: usize| (used[span], span);
    let mut links: Vec<Link> = Vec::new();
    for detailed in 0..spans {
        let mut best: Option<Link> = None;
        for summary in (0..spans).filter(|&summary| summary != detailed) {
            if used[summary] < 2 || rank(summary) >= rank(detailed) {
                continue;
            }
            let Some(summary_of) = summaries(table, layout, detailed, summary) else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|best| used[summary] > used[best.summary])
            {
                best = Some(Link {
                    detailed,
                    summary,
                    summary_of,
                });
            }
        }
        links.extend(best);
    }
    links.sort_by_key(|link| rank(link.detailed));
    links
}

/// The summary slot of each detailed slot, when every detailed slot seen at least
/// [`Link::MIN_ROWS`] times comes with one summary slot and at least two summary slots are
/// reached that way; `None` otherwise.
///
/// Most pairs of columns are not linked, and one common detailed value seen with two summary
/// values shows it within a few rows, so the scan stops there: checking every pair of a wide
/// table costs little more than the links it finds.
fn summaries(
    table: &EncodedTable,
    layout: &Layout,
    detailed: usize,
    summary: usize,
) -> Option<Vec<u32>> {
    let width = layout.discrete[detailed].width;
    let mut first = vec![Link::FREE; width];
    let mut seen = vec![0u64; width];
    let mut mixed = vec![false; width];
    for (&d, &s) in table.slots[detailed].iter().zip(&table.slots[summary]) {
        let d = d as usize;
        seen[d] += 1;
        if first[d] == Link::FREE {
            first[d] = s;
        } else if first[d] != s {
            mixed[d] = true;
        }
        if mixed[d] && seen[d] >= Link::MIN_ROWS {
            return None;
        }
    }
    let summary_of: Vec<u32> = first
        .iter()
        .zip(&seen)
        .map(|(&slot, &seen)| {
            if seen >= Link::MIN_ROWS {
                slot
            } else {
                Link::FREE
            }
        })
        .collect();
    let mut reached: Vec<u32> = summary_of
        .iter()
        .copied()
        .filter(|&slot| slot != Link::FREE)
        .collect();
    reached.sort_unstable();
    reached.dedup();
    (reached.len() >= 2).then_some(summary_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::layout::Activation;

    /// A layout of discrete spans of the given widths, and a table of their slots.
    fn table(widths: &[usize], slots: Vec<Vec<u32>>) -> (Layout, EncodedTable) {
        let mut layout = Layout::default();
        for (column, width) in widths.iter().enumerate() {
            layout.push(column, *width, Activation::Softmax, true);
        }
        let rows = slots[0].len();
        let table = EncodedTable {
            data: vec![0.0; rows * layout.data_dim],
            rows,
            slots,
        };
        (layout, table)
    }

    /// A scenario column (0 genuine, 1–3 fraud) decides the label; a third column that
    /// varies independently of both is linked to neither; a scenario value seen too rarely
    /// to count stays free, even though it breaks the link.
    #[test]
    fn links_are_found_where_one_column_decides_another() {
        let rows = 4_000;
        let scenario: Vec<u32> = (0..rows)
            .map(|row| match row % 100 {
                0..=4 => 1,
                5..=9 => 2,
                10..=14 => 3,
                _ => 0,
            })
            .collect();
        let mut label: Vec<u32> = scenario.iter().map(|&s| u32::from(s > 0)).collect();
        let weekday: Vec<u32> = (0..rows as u32).map(|row| row % 7).collect();
        // A fourth scenario value, seen 5 times, once with each label.
        let mut scenario = scenario;
        for row in 0..5 {
            scenario[row * 700 + 50] = 4;
            label[row * 700 + 50] = (row % 2) as u32;
        }
        let (layout, table) = table(&[5, 2, 7], vec![scenario, label, weekday]);
        let links = find(&layout, &table);
        assert_eq!(
            links,
            vec![Link {
                detailed: 0,
                summary: 1,
                summary_of: vec![0, 1, 1, 1, Link::FREE],
            }]
        );
    }

    /// One row that breaks a link rules it out; two columns that are the same up to their
    /// labels link one way only.
    #[test]
    fn broken_and_mirrored_links() {
        let rows = 1_000u32;
        let detailed: Vec<u32> = (0..rows).map(|row| row % 4).collect();
        let mut summary: Vec<u32> = detailed.iter().map(|&d| d / 2).collect();
        let mirror: Vec<u32> = detailed.iter().map(|&d| 3 - d).collect();
        summary[17] = 1 - summary[17];
        let (layout, table) = table(&[4, 2, 4], vec![detailed, summary, mirror]);
        let links = find(&layout, &table);
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!((links[0].detailed, links[0].summary), (2, 0));
        assert_eq!(links[0].summary_of, vec![3, 2, 1, 0]);
    }
}
