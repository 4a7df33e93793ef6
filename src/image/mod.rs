//! Stage 4b: image sets for the image GANs, and measures of the images they generate.

pub mod data;
pub mod metrics;
