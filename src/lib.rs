//! synth learns the statistics of a sensitive table and generates synthetic rows that keep
//! them without copying the originals.
//!
//! ```text
//!  data (Parquet/CSV) ──► data::schema + data::table ──► encode::TableEncoder
//!                                                              │ span layout
//!                                                              ▼
//!            gan::{nn, critic, ops, optim, train} ◄──── tabular::ctgan (CTGAN)
//!                                                              │
//!                          gan::checkpoint (model directory) ◄─┘
//!                                                              │
//!  synthetic (Parquet/CSV) ◄── data::io::TableWriter ◄── sample (batches, conditions)
//!        │
//!        └──► report::prepare ──► report::{fidelity, detection, utility, privacy}
//!                                          │
//!                         report::gate (marks, --fail-under) ──► report::html + JSON
//! ```
//!
//! The command-line interface in [`cli`] is a thin layer over these stages.

#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod config;
pub mod data;
pub mod encode;
pub mod error;
pub mod gan;
pub mod image;
pub mod report;
pub mod rng;
pub mod sample;
pub mod simd;
pub mod tabular;
pub mod threads;

pub use error::{Error, Result};
