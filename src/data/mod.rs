//! Stage 1: tables in and out, and their schemas.

pub mod io;
pub mod schema;
pub mod table;
