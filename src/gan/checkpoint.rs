//! Model directories on disk, written atomically and read defensively.
//!
//! A model directory holds `manifest.json` (format name and version, settings, encoders, seed
//! and data fingerprint), `weights.safetensors` and `metrics.jsonl` (one line of losses per
//! epoch). Nothing in it can execute code when loaded. The directory is assembled under a
//! temporary name beside its target and renamed into place once complete; replacing an existing
//! model (`--force`) moves the old one aside first and deletes it only after the new one is in
//! place.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::data::io::parent_dir;
use crate::error::{Error, Result};

/// Name of the manifest file.
pub const MANIFEST: &str = "manifest.json";
/// Name of the weights file.
pub const WEIGHTS: &str = "weights.safetensors";
/// Name of the per-epoch metrics file.
pub const METRICS: &str = "metrics.jsonl";

/// Serialises named tensors to safetensors bytes (sorted by name, so the bytes are stable).
pub fn weights_bytes(tensors: &BTreeMap<String, Tensor>) -> Result<Vec<u8>> {
    safetensors::serialize(
        tensors.iter().map(|(name, tensor)| (name.as_str(), tensor)),
        None,
    )
    .map_err(|error| Error::Tensor(candle_core::Error::Msg(error.to_string())))
}

/// Checks that a model directory may be written at `path`: refuses an existing one unless
/// `force`, and a missing parent directory.
pub fn check_dir(path: &Path, force: bool) -> Result<()> {
    let write_error = |reason: String| Error::Write {
        path: path.to_owned(),
        reason,
    };
    if path.exists() && !force {
        return Err(write_error(
            "it already exists; pass `--force` or another `--model`".into(),
        ));
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

/// Writes `files` (name, bytes) as the directory `path`, all or nothing.
pub fn write_dir(path: &Path, files: &[(&str, Vec<u8>)], force: bool) -> Result<()> {
    let write_error = |reason: String| Error::Write {
        path: path.to_owned(),
        reason,
    };
    check_dir(path, force)?;
    let parent = parent_dir(path);
    let staging = tempfile::Builder::new()
        .prefix(".synth-model-")
        .tempdir_in(&parent)
        .map_err(|error| write_error(error.to_string()))?;
    for (name, bytes) in files {
        std::fs::write(staging.path().join(name), bytes)
            .map_err(|error| write_error(error.to_string()))?;
    }
    let staged = staging.keep();
    let result = replace_dir(&staged, path);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    result.map_err(|error| write_error(error.to_string()))
}

fn replace_dir(staged: &Path, path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        return std::fs::rename(staged, path);
    }
    let old = tempfile::Builder::new()
        .prefix(".synth-old-")
        .tempdir_in(parent_dir(path))?
        .keep();
    std::fs::remove_dir(&old)?;
    std::fs::rename(path, &old)?;
    if let Err(error) = std::fs::rename(staged, path) {
        std::fs::rename(&old, path)?;
        return Err(error);
    }
    std::fs::remove_dir_all(&old)
}

/// Reads one file of the model directory `dir`.
pub fn read_file(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let model_error = |reason: String| Error::Model {
        path: dir.to_owned(),
        reason,
    };
    if !dir.is_dir() {
        return Err(model_error("no such model directory".into()));
    }
    std::fs::read(dir.join(name))
        .map_err(|error| model_error(format!("cannot read `{name}`: {error}")))
}

/// Loads the weights of the model directory `dir`.
pub fn read_weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let bytes = read_file(dir, WEIGHTS)?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|error| Error::Model {
        path: dir.to_owned(),
        reason: format!("`{WEIGHTS}` is corrupt or truncated: {error}"),
    })
}

/// Writes a model directory: the manifest as JSON, the named tensors as safetensors and one
/// line of losses per epoch, all or nothing.
pub fn save_model(
    dir: &Path,
    manifest: &impl serde::Serialize,
    tensors: &BTreeMap<String, Tensor>,
    history: &[crate::gan::train::EpochMetrics],
    force: bool,
) -> Result<()> {
    let write_error = |error: serde_json::Error| Error::Write {
        path: dir.to_owned(),
        reason: error.to_string(),
    };
    let manifest = serde_json::to_vec_pretty(manifest).map_err(write_error)?;
    let weights = weights_bytes(tensors)?;
    let mut metrics = Vec::new();
    for epoch in history {
        serde_json::to_writer(&mut metrics, epoch).map_err(write_error)?;
        metrics.push(b'\n');
    }
    write_dir(
        dir,
        &[(MANIFEST, manifest), (WEIGHTS, weights), (METRICS, metrics)],
        force,
    )
}

/// Reads the manifest of the model directory `dir`, checking that it is of `format` (`kind`
/// names it in errors) and of version `version` before parsing it.
pub fn read_manifest<T: serde::de::DeserializeOwned>(
    dir: &Path,
    format: &str,
    kind: &str,
    version: u32,
) -> Result<T> {
    let model_error = |reason: String| Error::Model {
        path: dir.to_owned(),
        reason,
    };
    let bytes = read_file(dir, MANIFEST)?;
    let header: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|error| model_error(format!("`{MANIFEST}` is not valid JSON: {error}")))?;
    if header.get("format").and_then(|f| f.as_str()) != Some(format) {
        return Err(model_error(format!(
            "`{MANIFEST}` is not a synth {kind} model"
        )));
    }
    let found = header.get("format_version").and_then(|v| v.as_u64());
    if found != Some(u64::from(version)) {
        return Err(model_error(format!(
            "format version {} is not supported by this synth (it reads version {version})",
            found.map_or("unknown".to_string(), |v| v.to_string())
        )));
    }
    serde_json::from_value(header)
        .map_err(|error| model_error(format!("`{MANIFEST}` is malformed: {error}")))
}
