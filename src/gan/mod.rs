//! The GAN core: layers, the critic and its gradient penalty, fused ops, the optimiser, the
//! training loop and model directories. Nothing here knows about tables.

pub mod checkpoint;
pub mod conv;
pub mod critic;
pub mod fused;
pub mod loss;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod train;
