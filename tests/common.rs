//! Helpers shared by the integration tests: running the binary in a scratch folder and
//! writing small tables.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use polars::prelude::*;

/// The repository's bundled data folder.
pub fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets")
}

/// A `synth` command run inside `dir`, without progress bars.
pub fn synth(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("synth").unwrap();
    command.current_dir(dir).arg("--no-progress");
    command
}

/// Runs `command` and returns its output, failing the test with `context` and the command's
/// stderr unless it exited successfully.
pub fn success(
    mut command: impl std::borrow::BorrowMut<Command>,
    context: &str,
) -> std::process::Output {
    let output = command.borrow_mut().output().unwrap();
    assert!(
        output.status.success(),
        "{context}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Writes `frame` as Parquet at `path`.
pub fn write_parquet(path: &Path, frame: &mut DataFrame) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(frame).unwrap();
}

/// Reads a Parquet file.
pub fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// A frame from columns.
pub fn frame(columns: Vec<Series>) -> DataFrame {
    let height = columns.first().map_or(0, |s| s.len());
    DataFrame::new(height, columns.into_iter().map(Column::from).collect()).unwrap()
}

/// Share of nulls in a column.
pub fn null_share(frame: &DataFrame, name: &str) -> f64 {
    let column = frame.column(name).unwrap();
    column.null_count() as f64 / column.len() as f64
}
