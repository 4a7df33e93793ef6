//! Reading tables and writing them atomically.
//!
//! Tables are read whole with polars' eager readers: Parquet (recognised by its magic bytes,
//! whatever the extension) or CSV (by the `.csv` extension). Output goes through
//! [`TableWriter`], which streams batches into a temporary file beside the target and renames it
//! into place only when every batch is written, so an interrupted or failed run leaves no
//! half-written file behind.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use std::str::FromStr;

use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema};
use arrow::ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
use polars::io::parquet::write::KeyValueMetadata;
use polars::prelude::{
    CsvReadOptions, CsvWriter, DataFrame, ParquetReader, ParquetWriter, Schema as FrameSchema,
    SerReader, SerWriter,
};
use tempfile::NamedTempFile;

use crate::data::schema::Schema;
use crate::error::{Error, Result};

/// File formats synth reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header line.
    Csv,
}

impl Format {
    /// The format for a path: CSV for a `.csv` extension, Parquet otherwise.
    pub fn of(path: &Path) -> Format {
        let is_csv = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extension.eq_ignore_ascii_case("csv"));
        if is_csv { Format::Csv } else { Format::Parquet }
    }
}

/// Reads the table at `path`.
pub fn read_table(path: &Path) -> Result<DataFrame> {
    let read_error = |reason: String| Error::ReadData {
        path: path.to_owned(),
        reason,
    };
    let mut file = File::open(path).map_err(|error| read_error(error.to_string()))?;
    if path.is_dir() {
        return Err(read_error("is a directory, not a data file".into()));
    }
    match Format::of(path) {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .map_parse_options(|options| options.with_try_parse_dates(true))
            .try_into_reader_with_file_path(Some(path.to_owned()))
            .and_then(|reader| reader.finish())
            .map_err(|error| read_error(format!("not a readable CSV file: {error}"))),
        Format::Parquet => {
            let mut magic = [0u8; 4];
            let is_parquet = file.read_exact(&mut magic).is_ok() && &magic == b"PAR1";
            if !is_parquet {
                return Err(read_error(
                    "not a Parquet file (no `PAR1` magic bytes); CSV files need a `.csv` extension"
                        .into(),
                ));
            }
            let file = File::open(path).map_err(|error| read_error(error.to_string()))?;
            ParquetReader::new(file)
                .finish()
                .map_err(|error| read_error(format!("corrupt or unsupported Parquet: {error}")))
        }
    }
}

/// Checks that `path` may be written: refuses an existing file unless `force`, and a missing
/// or unwritable parent directory.
pub fn check_output(path: &Path, force: bool, flag: &str) -> Result<()> {
    let write_error = |reason: String| Error::Write {
        path: path.to_owned(),
        reason,
    };
    if path.exists() && !force {
        return Err(write_error(format!(
            "it already exists; pass `--force` or a new `{flag}`"
        )));
    }
    if path.is_dir() {
        return Err(write_error("it is a directory".into()));
    }
    let parent = parent_dir(path);
    if !parent.is_dir() {
        return Err(write_error(format!(
            "directory `{}` does not exist",
            parent.display()
        )));
    }
    Ok(())
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

enum Sink {
    // Boxed: the Parquet writer is many times the size of the CSV one.
    Parquet(Box<polars::io::parquet::write::BatchedWriter<File>>),
    Csv(polars::io::csv::write::BatchedWriter<File>),
}

/// Streams data-frame batches to a Parquet or CSV file that appears only when complete.
pub struct TableWriter {
    path: PathBuf,
    temporary: NamedTempFile,
    sink: Sink,
    force: bool,
}

impl TableWriter {
    /// Opens a writer for tables of `schema` at `path`, in the format its extension names.
    pub fn create(path: &Path, schema: &Schema, force: bool) -> Result<TableWriter> {
        let write_error = |reason: String| Error::Write {
            path: path.to_owned(),
            reason,
        };
        let temporary = tempfile::Builder::new()
            .prefix(".synth-")
            .suffix(".partial")
            .tempfile_in(parent_dir(path))
            .map_err(|error| write_error(error.to_string()))?;
        let file = temporary
            .reopen()
            .map_err(|error| write_error(error.to_string()))?;
        let frame_schema = frame_schema(schema)?;
        let sink = match Format::of(path) {
            Format::Parquet => Sink::Parquet(Box::new(
                ParquetWriter::new(file)
                    .with_key_value_metadata(Some(parquet_metadata(schema)?))
                    .batched(&frame_schema)?,
            )),
            Format::Csv => Sink::Csv(CsvWriter::new(file).batched(&frame_schema)?),
        };
        Ok(TableWriter {
            path: path.to_owned(),
            temporary,
            sink,
            force,
        })
    }

    /// Appends a batch of rows.
    pub fn write(&mut self, batch: &DataFrame) -> Result<()> {
        match &mut self.sink {
            Sink::Parquet(writer) => writer.write_batch(batch)?,
            Sink::Csv(writer) => writer.write_batch(batch)?,
        }
        Ok(())
    }

    /// Finishes the file and moves it into place.
    pub fn finish(self) -> Result<()> {
        match self.sink {
            Sink::Parquet(writer) => {
                writer.finish()?;
            }
            Sink::Csv(mut writer) => writer.finish()?,
        }
        persist(self.temporary, &self.path, self.force)
    }
}

/// The data-frame schema of tables written under `schema`.
pub fn frame_schema(schema: &Schema) -> Result<FrameSchema> {
    let mut frame_schema = FrameSchema::with_capacity(schema.columns.len());
    for spec in &schema.columns {
        frame_schema.insert(spec.name.as_str().into(), spec.polars_dtype()?);
    }
    Ok(frame_schema)
}

/// Parquet file metadata: a note marking the rows as synthetic, and the Arrow schema readers
/// use to type the columns. The data-frame library would embed its own, with string-view
/// types; this one carries the schema's exact Arrow types (`Utf8`, timestamps with their unit
/// and zone), so output columns read back in the input's types.
fn parquet_metadata(schema: &Schema) -> Result<KeyValueMetadata> {
    use base64::Engine;

    let fields: Vec<Field> = schema
        .columns
        .iter()
        .map(|spec| {
            let dtype = ArrowType::from_str(&spec.dtype).map_err(|error| Error::Column {
                column: spec.name.clone(),
                reason: format!("unknown type `{}`: {error}", spec.dtype),
            })?;
            Ok(Field::new(&spec.name, dtype, true))
        })
        .collect::<Result<_>>()?;
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        &ArrowSchema::new(fields),
        &mut DictionaryTracker::new(false),
        &IpcWriteOptions::default(),
    );
    // Parquet stores the schema as an IPC message behind a continuation marker and length.
    let message = encoded.ipc_message;
    let mut framed = Vec::with_capacity(message.len() + 8);
    framed.extend_from_slice(&[0xff; 4]);
    framed.extend_from_slice(&(message.len() as u32).to_le_bytes());
    framed.extend_from_slice(&message);
    let note = format!(
        "synthetic rows generated by synth {}",
        env!("CARGO_PKG_VERSION")
    );
    Ok(KeyValueMetadata::from_static(vec![
        (
            "ARROW:schema".into(),
            base64::engine::general_purpose::STANDARD.encode(framed),
        ),
        ("synth".into(), note),
    ]))
}

/// Moves a finished temporary file to `path`, refusing to replace an existing file unless
/// `force`.
pub fn persist(temporary: NamedTempFile, path: &Path, force: bool) -> Result<()> {
    // Temporary files are created private; outputs get the usual permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(temporary.path(), permissions).map_err(|error| Error::Write {
            path: path.to_owned(),
            reason: error.to_string(),
        })?;
    }
    let result = if force {
        temporary.persist(path).map(|_| ())
    } else {
        temporary.persist_noclobber(path).map(|_| ())
    };
    result.map_err(|error| Error::Write {
        path: path.to_owned(),
        reason: error.error.to_string(),
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    use std::io::Write;
    let write_error = |error: std::io::Error| Error::Write {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let mut temporary = NamedTempFile::new_in(parent_dir(path)).map_err(write_error)?;
    temporary.write_all(bytes).map_err(write_error)?;
    temporary.as_file().sync_all().map_err(write_error)?;
    persist(temporary, path, force)
}

/// SHA-256 of a file's bytes, as hex.
pub fn fingerprint(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let read_error = |error: std::io::Error| Error::ReadData {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(read_error)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}
