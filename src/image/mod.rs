//! Stage 4b: image GANs on the shared GAN core.
//!
//! [`data`] reads image sets (IDX files, gzipped or not, and folders of PNGs) and writes PNG
//! grids; [`nets`] holds the presets' networks; [`model`] the presets, their training on the
//! shared loop and their model directories; [`classifier`] the small classifier whose feature
//! space [`metrics`] measures generated images in.

pub mod classifier;
pub mod data;
pub mod eval;
pub mod metrics;
pub mod model;
pub mod nets;
