//! `synth schema`: draft a schema from a table.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::EncodeConfig;
use crate::data::{io::read_table, schema::Schema, table::check_frame};

/// Schema commands.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print a TOML schema inferred from a table, to edit and pass to `synth fit --schema`
    Infer(InferArgs),
}

/// Arguments of `synth schema infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// The Parquet or CSV table
    pub data: PathBuf,
}

pub(super) fn run(command: SchemaCommand) -> anyhow::Result<()> {
    let SchemaCommand::Infer(args) = command;
    let frame = read_table(&args.data)?;
    check_frame(&frame, &args.data)?;
    let schema = Schema::infer(&frame, &EncodeConfig::default())?;
    let text = format!(
        "# synth schema inferred from {}\n\n{}",
        args.data.display(),
        schema.to_toml()
    );
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("cannot write the schema to stdout")?;
    Ok(())
}
