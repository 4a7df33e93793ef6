//! Image sets for the image GANs, read from IDX files or folders of PNGs, and PNG output.
//!
//! [`load`] reads every image of a set into one flat buffer of `f32` pixels scaled from
//! `0..=255` to `[-1, 1]`, row-major with channels last, so image `i` is one contiguous slice
//! ([`ImageSet::image`]). It accepts:
//!
//! - an IDX file (MNIST's format), gzipped or not: compression is recognised by the gzip magic
//!   bytes `1f 8b`, not by the file name. Labels come from the sibling file whose name has
//!   `labels-idx1` in place of `images-idx3`, when there is one, with or without `.gz`;
//! - a folder holding `*images-idx3-ubyte*` files: the training set
//!   (`train-images-idx3-ubyte[.gz]`) if present, else the only one, with its labels;
//! - a folder of PNG files, which gives images without labels;
//! - a folder with one subfolder of PNG files per class: labels are the subfolder's position in
//!   name order, and the subfolder names become [`ImageSet::classes`].
//!
//! Every image of a set must have the same height, width and channel count; the first one that
//! differs is an error naming it and both sizes. PNGs are normalised to 8 bits: palettes are
//! expanded to RGB, 16-bit samples keep their high byte, and alpha is dropped (gray+alpha becomes
//! gray, RGBA becomes RGB). PNG folders are decoded in parallel.
//!
//! [`write_png`] and [`write_grid`] map `[-1, 1]` back to bytes and write through a temporary
//! file beside the target that is renamed into place, so a failed write leaves nothing behind.
//!
//! # Limitations
//!
//! - IDX files must hold unsigned bytes (element type `0x08`, as MNIST does); the signed,
//!   integer and floating-point IDX types are refused with an error that names them.
//! - Alpha is dropped rather than composited over a background, so transparent pixels take
//!   whatever colour they store (often black).
//! - A palette PNG becomes RGB even when its palette is all grays, so a folder mixing palette
//!   and grayscale PNGs is refused as a channel mismatch; convert such files first.
//! - Only the first frame of an animated PNG is read, and class subfolders are not searched
//!   recursively: PNGs nested deeper than one level are ignored, as are hidden entries and
//!   files without a `.png` extension.
//! - The whole set is held in memory as `f32`, four bytes per pixel and channel: 188 MB for the
//!   60,000 MNIST training images.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::io::write_atomic;
use crate::error::{Error, Result};

/// Gap in pixels between the tiles of a grid written by [`write_grid`], and around its edge.
pub const GRID_GAP: usize = 2;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The IDX element type for unsigned bytes.
const IDX_UNSIGNED_BYTE: u8 = 0x08;
/// The eight-byte signature every PNG file starts with.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// Name fragments of IDX image files and of the label files beside them.
const IDX_NAME_PAIRS: [(&str, &str); 2] = [
    ("images-idx3", "labels-idx1"),
    ("images.idx3", "labels.idx1"),
];
/// Names of the training image file, in the order they are looked for.
const TRAINING_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "train-images.idx3-ubyte",
    "train-images.idx3-ubyte.gz",
];

/// A set of equally sized images, pixels scaled to [-1, 1], row-major, channels last.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// All pixels, `count * height * width * channels` values in `[-1, 1]`, image after image.
    pub pixels: Vec<f32>,
    /// One class index per image, when the source has labels; each is below `classes.len()`.
    pub labels: Option<Vec<u32>>,
    /// Number of images.
    pub count: usize,
    /// Height of every image, in pixels.
    pub height: usize,
    /// Width of every image, in pixels.
    pub width: usize,
    /// Channels per pixel: 1 for grayscale, 3 for RGB.
    pub channels: usize,
    /// Label names, indexed by label: `"0"` to the largest label for IDX labels, the sorted
    /// subfolder names for a PNG folder with classes, and empty when there are no labels.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// The pixels of image `i`, `height * width * channels` values, row-major, channels last.
    ///
    /// # Panics
    ///
    /// Panics if `i >= self.count`.
    pub fn image(&self, i: usize) -> &[f32] {
        let size = self.pixels_per_image();
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Values per image: `height * width * channels`.
    pub fn pixels_per_image(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// The contents of an IDX file: its dimensions, outermost first, and its elements as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The size of each dimension, outermost first (for MNIST images: count, height, width).
    pub dims: Vec<usize>,
    /// The elements in row-major order, `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

/// Loads the image set at `path`: an IDX file, or a folder of IDX files or PNGs (see the module
/// documentation for the rules).
pub fn load(path: &Path) -> Result<ImageSet> {
    let metadata = fs::metadata(path).map_err(|error| read_error(path, error.to_string()))?;
    if metadata.is_dir() {
        load_dir(path)
    } else {
        load_idx(path)
    }
}

/// Reads the IDX file at `path`, gzipped (recognised by its magic bytes) or not.
///
/// Only unsigned-byte files (element type `0x08`) are accepted; other element types, a file that
/// does not start like an IDX file, and data shorter or longer than the dimensions say are
/// errors.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let bytes = read_maybe_gzipped(path)?;
    parse_idx(path, bytes)
}

/// Writes one image of `height * width * channels` values in `[-1, 1]` as an 8-bit PNG.
///
/// Values are clamped to `[-1, 1]` and rounded to the nearest byte (NaN becomes 0). `channels`
/// may be 1 (gray), 2 (gray and alpha), 3 (RGB) or 4 (RGBA). The file appears only when complete,
/// replacing any file already at `path`.
pub fn write_png(
    path: &Path,
    pixels: &[f32],
    height: usize,
    width: usize,
    channels: usize,
) -> Result<()> {
    let bytes = encode_png(path, pixels, height, width, channels)?;
    write_atomic(path, &bytes, true)
}

/// Writes `count` images as one PNG grid of `columns` tiles per row, with a black gap of
/// [`GRID_GAP`] pixels between the tiles and around the edge.
///
/// `images` holds the images one after another, as [`ImageSet::pixels`] does. A `columns` larger
/// than `count` is reduced to `count`, and the last row may be incomplete; see [`grid_size`]. The
/// file appears only when complete, replacing any file already at `path`.
pub fn write_grid(
    path: &Path,
    images: &[f32],
    count: usize,
    height: usize,
    width: usize,
    channels: usize,
    columns: usize,
) -> Result<()> {
    let write_error = |reason: String| Error::Write {
        path: path.to_owned(),
        reason,
    };
    let size = height * width * channels;
    if count == 0 || columns == 0 || size == 0 {
        return Err(write_error(format!(
            "a grid needs at least one non-empty image and one column, got {count} images of \
             {} in {columns} columns",
            describe(height, width, channels)
        )));
    }
    if Some(images.len()) != count.checked_mul(size) {
        return Err(write_error(format!(
            "expected {count} images of {} ({size} values each), got {} values",
            describe(height, width, channels),
            images.len()
        )));
    }

    let columns = columns.min(count);
    let (grid_height, grid_width) = grid_size(count, height, width, columns);
    let mut grid = vec![-1.0f32; grid_height * grid_width * channels];
    let row_values = width * channels;
    for (i, image) in images.chunks_exact(size.max(1)).enumerate() {
        let top = GRID_GAP + (i / columns) * (height + GRID_GAP);
        let left = GRID_GAP + (i % columns) * (width + GRID_GAP);
        for (y, row) in image.chunks_exact(row_values.max(1)).enumerate() {
            let start = ((top + y) * grid_width + left) * channels;
            grid[start..start + row_values].copy_from_slice(row);
        }
    }
    write_png(path, &grid, grid_height, grid_width, channels)
}

/// The `(height, width)` in pixels of the grid [`write_grid`] writes for `count` images in
/// `columns` columns (at most `count` of them).
///
/// ```
/// use synth::image::data::grid_size;
///
/// // Ten 28×28 images in rows of four: three rows, with a 2-pixel gap around every tile.
/// assert_eq!(grid_size(10, 28, 28, 4), (3 * 30 + 2, 4 * 30 + 2));
/// ```
pub fn grid_size(count: usize, height: usize, width: usize, columns: usize) -> (usize, usize) {
    let columns = columns.min(count).max(1);
    let rows = count.div_ceil(columns);
    (
        rows * (height + GRID_GAP) + GRID_GAP,
        columns * (width + GRID_GAP) + GRID_GAP,
    )
}

fn read_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::ReadData {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a whole file, inflating it when it starts with the gzip magic bytes.
fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).map_err(|error| read_error(path, error.to_string()))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    // The gzip trailer holds the inflated size modulo 2^32; capped by deflate's best ratio so
    // that a corrupt trailer cannot ask for an absurd allocation.
    let mut capacity = 0;
    if raw.len() >= 18 {
        let mut trailer = [0u8; 4];
        trailer.copy_from_slice(&raw[raw.len() - 4..]);
        capacity = (u32::from_le_bytes(trailer) as usize).min(raw.len().saturating_mul(1032));
    }
    let mut inflated = Vec::with_capacity(capacity);
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut inflated)
        .map_err(|error| read_error(path, format!("corrupt gzip data: {error}")))?;
    Ok(inflated)
}

/// Parses IDX `bytes` read from `path` (for error messages), keeping the data without copying.
fn parse_idx(path: &Path, mut bytes: Vec<u8>) -> Result<Idx> {
    if bytes.starts_with(&PNG_SIGNATURE) {
        return Err(read_error(
            path,
            "is a PNG image, not an IDX file; pass the folder that holds the PNGs",
        ));
    }
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(read_error(
            path,
            "not an IDX file (it does not start with the magic bytes `00 00`)",
        ));
    }
    let element = bytes[2];
    if element != IDX_UNSIGNED_BYTE {
        let reason = match idx_type_name(element) {
            Some(name) => format!(
                "IDX element type 0x{element:02x} ({name}) is not supported; only unsigned bytes \
                 (0x08) are"
            ),
            None => format!("not an IDX file (unknown element type 0x{element:02x})"),
        };
        return Err(read_error(path, reason));
    }
    let rank = usize::from(bytes[3]);
    if rank == 0 {
        return Err(read_error(
            path,
            "not an IDX file (it declares no dimensions)",
        ));
    }

    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(read_error(
            path,
            format!(
                "truncated IDX header: expected {header} bytes for {rank} dimensions, found {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|dim| u32::from_be_bytes([dim[0], dim[1], dim[2], dim[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |total, &dim| total.checked_mul(dim))
        .ok_or_else(|| read_error(path, format!("IDX dimensions {dims:?} are too large")))?;
    let found = bytes.len() - header;
    if found != expected {
        return Err(read_error(
            path,
            format!("expected {expected} bytes of data for dimensions {dims:?}, found {found}"),
        ));
    }
    bytes.drain(..header);
    Ok(Idx { dims, data: bytes })
}

/// The name of an IDX element type other than unsigned bytes, or `None` for an unknown code.
fn idx_type_name(element: u8) -> Option<&'static str> {
    match element {
        0x09 => Some("signed bytes"),
        0x0b => Some("16-bit integers"),
        0x0c => Some("32-bit integers"),
        0x0d => Some("32-bit floats"),
        0x0e => Some("64-bit floats"),
        _ => None,
    }
}

/// Loads images from an IDX file, and labels from the sibling labels file if there is one.
fn load_idx(path: &Path) -> Result<ImageSet> {
    let images = read_idx(path)?;
    let (count, height, width, channels) = match images.dims[..] {
        [count, height, width] => (count, height, width, 1),
        [count, height, width, channels] => (count, height, width, channels),
        _ => {
            return Err(read_error(
                path,
                format!(
                    "an IDX image file has 3 dimensions (count, height, width) or 4 (with \
                     channels last), this one has {}: {:?}",
                    images.dims.len(),
                    images.dims
                ),
            ));
        }
    };
    if count == 0 || height * width * channels == 0 {
        return Err(read_error(
            path,
            format!("holds no pixels: dimensions {:?}", images.dims),
        ));
    }

    let labels = match labels_path(path) {
        Some(labels_path) => Some(read_labels(&labels_path, path, count)?),
        None => None,
    };
    let classes = match &labels {
        Some(labels) => {
            let largest = labels.iter().copied().max().unwrap_or(0);
            (0..=largest).map(|label| label.to_string()).collect()
        }
        None => Vec::new(),
    };
    tracing::debug!(
        path = %path.display(),
        count,
        height,
        width,
        channels,
        labelled = labels.is_some(),
        "read IDX images"
    );
    Ok(ImageSet {
        pixels: bytes_to_unit(&images.data),
        labels,
        count,
        height,
        width,
        channels,
        classes,
    })
}

/// The labels file beside an IDX image file: its name with `labels-idx1` for `images-idx3`,
/// as it is, without `.gz` or with it, whichever exists first.
fn labels_path(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let swapped = IDX_NAME_PAIRS.iter().find_map(|(image_part, label_part)| {
        name.contains(image_part)
            .then(|| name.replacen(image_part, label_part, 1))
    })?;
    let plain = swapped.strip_suffix(".gz").unwrap_or(&swapped).to_owned();
    let gzipped = format!("{plain}.gz");
    [swapped.clone(), plain, gzipped]
        .into_iter()
        .map(|candidate| images.with_file_name(candidate))
        .find(|candidate| candidate.is_file())
}

/// Reads a 1-D IDX labels file that must hold one label per image of `images`.
fn read_labels(path: &Path, images: &Path, count: usize) -> Result<Vec<u32>> {
    let labels = read_idx(path)?;
    if labels.dims.len() != 1 {
        return Err(read_error(
            path,
            format!(
                "a labels file must have 1 dimension, this one has {}: {:?}",
                labels.dims.len(),
                labels.dims
            ),
        ));
    }
    if labels.dims[0] != count {
        return Err(read_error(
            path,
            format!(
                "holds {} labels, but `{}` holds {count} images",
                labels.dims[0],
                images.display()
            ),
        ));
    }
    Ok(labels.data.iter().map(|&label| u32::from(label)).collect())
}

/// One entry of a folder listing.
struct Entry {
    name: String,
    path: PathBuf,
    is_dir: bool,
}

/// The entries of `dir` in name order, without hidden ones or names that are not UTF-8.
fn list_dir(dir: &Path) -> Result<Vec<Entry>> {
    let listing = fs::read_dir(dir).map_err(|error| read_error(dir, error.to_string()))?;
    let mut entries = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|error| read_error(dir, error.to_string()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links, so a linked folder or file counts as what it points to.
        let is_dir = path.is_dir();
        entries.push(Entry { name, path, is_dir });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn is_png_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| extension.eq_ignore_ascii_case("png"))
}

fn is_idx_images_name(name: &str) -> bool {
    IDX_NAME_PAIRS
        .iter()
        .any(|(image_part, _)| name.contains(&format!("{image_part}-ubyte")))
}

/// Loads a folder of IDX files, of PNGs, or of class subfolders of PNGs.
fn load_dir(dir: &Path) -> Result<ImageSet> {
    let entries = list_dir(dir)?;
    let idx_files: Vec<&Entry> = entries
        .iter()
        .filter(|entry| !entry.is_dir && is_idx_images_name(&entry.name))
        .collect();
    if !idx_files.is_empty() {
        let training = TRAINING_NAMES
            .iter()
            .find_map(|name| idx_files.iter().find(|entry| entry.name == *name));
        let chosen = match (training, idx_files.as_slice()) {
            (Some(training), _) => training,
            (None, [only]) => only,
            (None, several) => {
                let names: Vec<String> = several
                    .iter()
                    .map(|entry| format!("`{}`", entry.name))
                    .collect();
                return Err(read_error(
                    dir,
                    format!(
                        "holds several IDX image files ({}) and none is named \
                         `train-images-idx3-ubyte[.gz]`; pass the file to use",
                        names.join(", ")
                    ),
                ));
            }
        };
        return load_idx(&chosen.path);
    }

    let files: Vec<PathBuf> = entries
        .iter()
        .filter(|entry| !entry.is_dir && is_png_name(&entry.name))
        .map(|entry| entry.path.clone())
        .collect();
    let folders: Vec<&Entry> = entries.iter().filter(|entry| entry.is_dir).collect();
    match (files.is_empty(), folders.is_empty()) {
        (false, true) => load_pngs(dir, &files, None, Vec::new()),
        (true, false) => load_class_folders(dir, &folders),
        (false, false) => Err(read_error(
            dir,
            "holds both PNG files and subfolders; put every image in a subfolder named for its \
             class to get labels, or all of them directly in the folder for none",
        )),
        (true, true) => Err(read_error(
            dir,
            "holds no images: expected IDX files (`*-images-idx3-ubyte[.gz]`), PNG files, or one \
             subfolder of PNG files per class",
        )),
    }
}

/// Loads one subfolder of PNGs per class; labels are the folders' positions in name order.
fn load_class_folders(dir: &Path, folders: &[&Entry]) -> Result<ImageSet> {
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, folder) in (0u32..).zip(folders) {
        let pngs: Vec<PathBuf> = list_dir(&folder.path)?
            .into_iter()
            .filter(|entry| !entry.is_dir && is_png_name(&entry.name))
            .map(|entry| entry.path)
            .collect();
        if pngs.is_empty() {
            return Err(read_error(
                &folder.path,
                "class folder holds no PNG files; every subfolder of an image folder is a class",
            ));
        }
        labels.extend(std::iter::repeat_n(label, pngs.len()));
        files.extend(pngs);
    }
    let classes = folders.iter().map(|folder| folder.name.clone()).collect();
    load_pngs(dir, &files, Some(labels), classes)
}

/// An 8-bit image decoded from a PNG, gray or RGB.
struct Decoded {
    height: usize,
    width: usize,
    channels: usize,
    bytes: Vec<u8>,
}

/// Decodes `files` in parallel and checks that they all match the first one's size.
fn load_pngs(
    dir: &Path,
    files: &[PathBuf],
    labels: Option<Vec<u32>>,
    classes: Vec<String>,
) -> Result<ImageSet> {
    let decoded: Vec<Result<Decoded>> = files.par_iter().map(|file| decode_png(file)).collect();
    let mut images = Vec::with_capacity(decoded.len());
    for image in decoded {
        images.push(image?);
    }
    let Some(first) = images.first() else {
        return Err(read_error(dir, "holds no PNG images"));
    };
    let (height, width, channels) = (first.height, first.width, first.channels);
    for (image, file) in images.iter().zip(files) {
        if (image.height, image.width, image.channels) != (height, width, channels) {
            return Err(read_error(
                file,
                format!(
                    "is {}, but `{}` is {}; every image of a set must have the same size and \
                     channels",
                    describe(image.height, image.width, image.channels),
                    files[0].display(),
                    describe(height, width, channels)
                ),
            ));
        }
    }

    let size = height * width * channels;
    let mut pixels = vec![0.0f32; images.len() * size];
    pixels
        .par_chunks_mut(size.max(1))
        .zip(&images)
        .for_each(|(out, image)| fill_unit(out, &image.bytes));
    tracing::debug!(
        path = %dir.display(),
        count = images.len(),
        height,
        width,
        channels,
        classes = classes.len(),
        "read PNG images"
    );
    Ok(ImageSet {
        pixels,
        labels,
        count: images.len(),
        height,
        width,
        channels,
        classes,
    })
}

/// Decodes one PNG to 8-bit gray or RGB.
fn decode_png(path: &Path) -> Result<Decoded> {
    let corrupt =
        |error: png::DecodingError| read_error(path, format!("not a readable PNG: {error}"));
    let file = File::open(path).map_err(|error| read_error(path, error.to_string()))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| read_error(path, "image is too large to decode"))?;
    let mut buffer = vec![0u8; size];
    let info = reader.next_frame(&mut buffer).map_err(corrupt)?;
    buffer.truncate(info.buffer_size());

    let (width, height) = (info.width as usize, info.height as usize);
    let (channels, stored) = match info.color_type {
        png::ColorType::Grayscale => (1, 1),
        png::ColorType::GrayscaleAlpha => (1, 2),
        png::ColorType::Rgb => (3, 3),
        png::ColorType::Rgba => (3, 4),
        png::ColorType::Indexed => {
            return Err(read_error(path, "palette PNG could not be expanded to RGB"));
        }
    };
    if info.bit_depth != png::BitDepth::Eight || buffer.len() != height * width * stored {
        return Err(read_error(
            path,
            format!(
                "decoded to {} bytes at {:?} bits, expected {} at 8 bits",
                buffer.len(),
                info.bit_depth,
                height * width * stored
            ),
        ));
    }
    let bytes = if stored == channels {
        buffer
    } else {
        buffer
            .chunks_exact(stored)
            .flat_map(|pixel| &pixel[..channels])
            .copied()
            .collect()
    };
    Ok(Decoded {
        height,
        width,
        channels,
        bytes,
    })
}

/// Encodes `height * width * channels` values in `[-1, 1]` as an 8-bit PNG in memory.
fn encode_png(
    path: &Path,
    pixels: &[f32],
    height: usize,
    width: usize,
    channels: usize,
) -> Result<Vec<u8>> {
    let write_error = |reason: String| Error::Write {
        path: path.to_owned(),
        reason,
    };
    let color = match channels {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => {
            return Err(write_error(format!(
                "a PNG holds 1 to 4 channels, not {channels}"
            )));
        }
    };
    let (Ok(png_width), Ok(png_height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(write_error(format!(
            "{height}×{width} is too large for a PNG"
        )));
    };
    if height == 0 || width == 0 {
        return Err(write_error(format!(
            "cannot write an empty {height}×{width} image"
        )));
    }
    let expected = height * width * channels;
    if pixels.len() != expected {
        return Err(write_error(format!(
            "expected {expected} values for one {} image, got {}",
            describe(height, width, channels),
            pixels.len()
        )));
    }

    let bytes: Vec<u8> = pixels.iter().map(|&value| unit_to_byte(value)).collect();
    let mut encoded = Vec::new();
    let mut encoder = png::Encoder::new(&mut encoded, png_width, png_height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let encoding_error = |error: png::EncodingError| write_error(error.to_string());
    let mut writer = encoder.write_header().map_err(encoding_error)?;
    writer.write_image_data(&bytes).map_err(encoding_error)?;
    writer.finish().map_err(encoding_error)?;
    Ok(encoded)
}

/// A size and channel count in words, such as `28×28 grayscale`.
fn describe(height: usize, width: usize, channels: usize) -> String {
    match channels {
        1 => format!("{height}×{width} grayscale"),
        3 => format!("{height}×{width} RGB"),
        _ => format!("{height}×{width} with {channels} channels"),
    }
}

/// Byte `b` scaled to `b / 127.5 - 1`, for every byte value.
fn unit_table() -> [f32; 256] {
    let mut table = [0.0f32; 256];
    for (byte, value) in table.iter_mut().enumerate() {
        *value = byte as f32 / 127.5 - 1.0;
    }
    table
}

/// Scales bytes to `[-1, 1]`, in parallel.
fn bytes_to_unit(bytes: &[u8]) -> Vec<f32> {
    let table = unit_table();
    bytes
        .par_iter()
        .map(|&byte| table[usize::from(byte)])
        .collect()
}

/// Fills `out` with `bytes` scaled to `[-1, 1]`.
fn fill_unit(out: &mut [f32], bytes: &[u8]) {
    let table = unit_table();
    for (value, &byte) in out.iter_mut().zip(bytes) {
        *value = table[usize::from(byte)];
    }
}

/// The byte for a value in `[-1, 1]`: clamped, scaled to `0..=255` and rounded; NaN gives 0.
fn unit_to_byte(value: f32) -> u8 {
    ((value.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// IDX bytes with unsigned-byte elements.
    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, IDX_UNSIGNED_BYTE, dims.len() as u8];
        for dim in dims {
            bytes.extend_from_slice(&dim.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A PNG of `width × height` with the given color type and depth, from raw sample bytes.
    fn png_bytes(
        width: u32,
        height: u32,
        color: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
        palette: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some(palette) = palette {
            encoder.set_palette(palette.to_vec());
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    fn gray_png(width: u32, height: u32, value: u8) -> Vec<u8> {
        let data = vec![value; (width * height) as usize];
        png_bytes(
            width,
            height,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &data,
            None,
        )
    }

    /// Two 2×3 images with pixels 0..12, and their labels.
    fn write_small_mnist(dir: &Path, prefix: &str, gzipped: bool) {
        let pixels: Vec<u8> = (0..12).map(|i| i * 23).collect();
        let images = idx_bytes(&[2, 2, 3], &pixels);
        let labels = idx_bytes(&[2], &[7, 3]);
        let (images, labels, suffix) = if gzipped {
            (gzip(&images), gzip(&labels), ".gz")
        } else {
            (images, labels, "")
        };
        fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte{suffix}")),
            images,
        )
        .unwrap();
        fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}")),
            labels,
        )
        .unwrap();
    }

    fn reason(error: Error) -> String {
        error.to_string()
    }

    #[test]
    fn read_idx_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.idx");
        fs::write(&path, idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();

        let idx = read_idx(&path).unwrap();
        assert_eq!(idx.dims, vec![2, 3]);
        assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn read_idx_detects_gzip_by_magic_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let gzipped_without_suffix = dir.path().join("plain-name");
        fs::write(
            &gzipped_without_suffix,
            gzip(&idx_bytes(&[4], &[9, 8, 7, 6])),
        )
        .unwrap();
        let plain_with_suffix = dir.path().join("looks-gzipped.gz");
        fs::write(&plain_with_suffix, idx_bytes(&[4], &[9, 8, 7, 6])).unwrap();

        for path in [gzipped_without_suffix, plain_with_suffix] {
            let idx = read_idx(&path).unwrap();
            assert_eq!(idx.dims, vec![4]);
            assert_eq!(idx.data, vec![9, 8, 7, 6]);
        }
    }

    #[test]
    fn load_idx_file_reads_sibling_labels_and_scales_pixels() {
        for gzipped in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_small_mnist(dir.path(), "train", gzipped);
            let suffix = if gzipped { ".gz" } else { "" };
            let path = dir.path().join(format!("train-images-idx3-ubyte{suffix}"));

            let set = load(&path).unwrap();
            assert_eq!(
                (set.count, set.height, set.width, set.channels),
                (2, 2, 3, 1)
            );
            assert_eq!(set.pixels_per_image(), 6);
            assert_eq!(set.labels, Some(vec![7, 3]));
            assert_eq!(set.classes.len(), 8);
            assert_eq!(set.classes[7], "7");
            assert_eq!(set.image(1).len(), 6);
            assert_eq!(set.pixels[0], -1.0);
            assert!((set.image(1)[5] - (11.0 * 23.0 / 127.5 - 1.0)).abs() < 1e-6);
            assert!(set.pixels.iter().all(|value| (-1.0..=1.0).contains(value)));
        }
    }

    #[test]
    fn load_idx_finds_labels_with_other_compression() {
        let dir = tempfile::tempdir().unwrap();
        let images = idx_bytes(&[1, 1, 2], &[0, 255]);
        fs::write(dir.path().join("x-images-idx3-ubyte.gz"), gzip(&images)).unwrap();
        fs::write(
            dir.path().join("x-labels-idx1-ubyte"),
            idx_bytes(&[1], &[4]),
        )
        .unwrap();

        let set = load(&dir.path().join("x-images-idx3-ubyte.gz")).unwrap();
        assert_eq!(set.labels, Some(vec![4]));
        assert_eq!(set.pixels, vec![-1.0, 1.0]);
    }

    #[test]
    fn load_idx_without_labels_file_has_no_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t10k-images-idx3-ubyte");
        fs::write(&path, idx_bytes(&[3, 2, 2], &[128; 12])).unwrap();

        let set = load(&path).unwrap();
        assert_eq!(set.count, 3);
        assert_eq!(set.labels, None);
        assert!(set.classes.is_empty());
    }

    #[test]
    fn load_directory_prefers_the_training_set() {
        let dir = tempfile::tempdir().unwrap();
        write_small_mnist(dir.path(), "train", true);
        let test_images = idx_bytes(&[1, 2, 3], &[0; 6]);
        fs::write(
            dir.path().join("t10k-images-idx3-ubyte.gz"),
            gzip(&test_images),
        )
        .unwrap();
        fs::write(
            dir.path().join("t10k-labels-idx1-ubyte.gz"),
            gzip(&idx_bytes(&[1], &[0])),
        )
        .unwrap();

        let set = load(dir.path()).unwrap();
        assert_eq!(set.count, 2);
        assert_eq!(set.labels, Some(vec![7, 3]));
    }

    #[test]
    fn load_directory_with_one_idx_file_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        write_small_mnist(dir.path(), "t10k", false);

        let set = load(dir.path()).unwrap();
        assert_eq!(set.count, 2);
        assert_eq!(set.labels, Some(vec![7, 3]));
    }

    #[test]
    fn load_directory_with_several_idx_files_and_no_training_one_is_error() {
        let dir = tempfile::tempdir().unwrap();
        write_small_mnist(dir.path(), "a", false);
        write_small_mnist(dir.path(), "b", false);

        let message = reason(load(dir.path()).unwrap_err());
        assert!(message.contains("several IDX image files"), "{message}");
        assert!(message.contains("`a-images-idx3-ubyte`"), "{message}");
    }

    #[test]
    fn png_class_folders_give_labels_in_sorted_folder_order() {
        let dir = tempfile::tempdir().unwrap();
        for (class, count) in [("zebra", 1), ("ant", 2), ("moth", 3)] {
            let folder = dir.path().join(class);
            fs::create_dir(&folder).unwrap();
            for i in 0..count {
                fs::write(folder.join(format!("{i}.png")), gray_png(4, 3, 255)).unwrap();
            }
            fs::write(folder.join("notes.txt"), "not an image").unwrap();
        }
        fs::create_dir(dir.path().join(".hidden")).unwrap();

        let set = load(dir.path()).unwrap();
        assert_eq!(set.classes, vec!["ant", "moth", "zebra"]);
        assert_eq!(set.labels, Some(vec![0, 0, 1, 1, 1, 2]));
        assert_eq!(
            (set.count, set.height, set.width, set.channels),
            (6, 3, 4, 1)
        );
        assert!(set.pixels.iter().all(|&value| value == 1.0));
    }

    #[test]
    fn png_flat_folder_has_no_labels() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3u8 {
            fs::write(dir.path().join(format!("{i}.PNG")), gray_png(2, 2, i * 100)).unwrap();
        }

        let set = load(dir.path()).unwrap();
        assert_eq!(set.count, 3);
        assert_eq!(set.labels, None);
        assert!(set.classes.is_empty());
        assert_eq!(set.image(0), &[-1.0; 4]);
    }

    #[test]
    fn png_alpha_palette_and_16_bit_are_normalised() {
        use png::{BitDepth, ColorType};
        let dir = tempfile::tempdir().unwrap();
        let gray_dir = dir.path().join("gray");
        fs::create_dir(&gray_dir).unwrap();
        // Gray+alpha becomes gray, 16-bit gray keeps its high byte.
        let gray_alpha = png_bytes(
            2,
            1,
            ColorType::GrayscaleAlpha,
            BitDepth::Eight,
            &[0, 9, 255, 0],
            None,
        );
        fs::write(gray_dir.join("a.png"), gray_alpha).unwrap();
        let sixteen = png_bytes(
            2,
            1,
            ColorType::Grayscale,
            BitDepth::Sixteen,
            &[255, 1, 0, 200],
            None,
        );
        fs::write(gray_dir.join("b.png"), sixteen).unwrap();
        let set = load(&gray_dir).unwrap();
        assert_eq!(set.channels, 1);
        assert_eq!(set.pixels, vec![-1.0, 1.0, 1.0, -1.0]);

        let color_dir = dir.path().join("color");
        fs::create_dir(&color_dir).unwrap();
        // RGBA becomes RGB; a palette expands to RGB.
        let rgba = png_bytes(
            1,
            1,
            ColorType::Rgba,
            BitDepth::Eight,
            &[255, 0, 255, 7],
            None,
        );
        fs::write(color_dir.join("a.png"), rgba).unwrap();
        let palette = [0, 0, 0, 255, 255, 0];
        let indexed = png_bytes(
            1,
            1,
            ColorType::Indexed,
            BitDepth::Eight,
            &[1],
            Some(&palette),
        );
        fs::write(color_dir.join("b.png"), indexed).unwrap();
        let set = load(&color_dir).unwrap();
        assert_eq!(set.channels, 3);
        assert_eq!(set.pixels, vec![1.0, -1.0, 1.0, 1.0, 1.0, -1.0]);
    }

    #[test]
    fn wrong_magic_is_not_an_idx_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-images-idx3-ubyte");
        fs::write(&path, b"hello, world").unwrap();

        let message = reason(load(&path).unwrap_err());
        assert!(message.contains("not an IDX file"), "{message}");
        assert!(message.contains("train-images-idx3-ubyte"), "{message}");

        let png_path = dir.path().join("one.png");
        fs::write(&png_path, gray_png(1, 1, 0)).unwrap();
        let message = reason(load(&png_path).unwrap_err());
        assert!(message.contains("is a PNG image"), "{message}");
    }

    #[test]
    fn truncated_data_reports_expected_and_found_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        fs::write(&path, idx_bytes(&[2, 2, 2], &[0; 5])).unwrap();
        let message = reason(read_idx(&path).unwrap_err());
        assert!(message.contains("expected 8 bytes of data"), "{message}");
        assert!(message.contains("found 5"), "{message}");

        let header_only = dir.path().join("header");
        fs::write(&header_only, [0, 0, 8, 3, 0, 0]).unwrap();
        let message = reason(read_idx(&header_only).unwrap_err());
        assert!(message.contains("truncated IDX header"), "{message}");

        let gzipped = dir.path().join("cut.gz");
        let whole = gzip(&idx_bytes(&[100], &[1; 100]));
        fs::write(&gzipped, &whole[..whole.len() / 2]).unwrap();
        let message = reason(read_idx(&gzipped).unwrap_err());
        assert!(message.contains("corrupt gzip data"), "{message}");
    }

    #[test]
    fn unsupported_element_type_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floats");
        let mut bytes = vec![0, 0, 0x0d, 1, 0, 0, 0, 1];
        bytes.extend_from_slice(&1.0f32.to_be_bytes());
        fs::write(&path, bytes).unwrap();

        let message = reason(read_idx(&path).unwrap_err());
        assert!(
            message.contains("0x0d (32-bit floats) is not supported"),
            "{message}"
        );
    }

    #[test]
    fn mismatched_png_sizes_name_the_file_and_both_sizes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.png"), gray_png(28, 28, 0)).unwrap();
        fs::write(dir.path().join("b.png"), gray_png(28, 28, 0)).unwrap();
        let rgb = png_bytes(
            32,
            32,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[0; 32 * 32 * 3],
            None,
        );
        fs::write(dir.path().join("c.png"), rgb).unwrap();

        let message = reason(load(dir.path()).unwrap_err());
        assert!(message.contains("c.png"), "{message}");
        assert!(message.contains("32×32 RGB"), "{message}");
        assert!(message.contains("a.png"), "{message}");
        assert!(message.contains("28×28 grayscale"), "{message}");
    }

    #[test]
    fn label_count_mismatch_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-images-idx3-ubyte");
        fs::write(&path, idx_bytes(&[3, 1, 1], &[0, 1, 2])).unwrap();
        fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx_bytes(&[2], &[0, 1]),
        )
        .unwrap();

        let message = reason(load(&path).unwrap_err());
        assert!(message.contains("train-labels-idx1-ubyte"), "{message}");
        assert!(message.contains("holds 2 labels"), "{message}");
        assert!(message.contains("holds 3 images"), "{message}");
    }

    #[test]
    fn labels_file_must_be_one_dimensional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-images-idx3-ubyte");
        fs::write(&path, idx_bytes(&[2, 1, 1], &[0, 1])).unwrap();
        fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx_bytes(&[2, 1], &[0, 1]),
        )
        .unwrap();

        let message = reason(load(&path).unwrap_err());
        assert!(message.contains("must have 1 dimension"), "{message}");
    }

    #[test]
    fn empty_folder_is_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("README.txt"), "no images here").unwrap();

        let message = reason(load(dir.path()).unwrap_err());
        assert!(message.contains("holds no images"), "{message}");

        let classes = tempfile::tempdir().unwrap();
        fs::create_dir(classes.path().join("empty")).unwrap();
        let message = reason(load(classes.path()).unwrap_err());
        assert!(
            message.contains("class folder holds no PNG files"),
            "{message}"
        );
    }

    #[test]
    fn folder_with_both_pngs_and_subfolders_is_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.png"), gray_png(2, 2, 0)).unwrap();
        fs::create_dir(dir.path().join("class")).unwrap();

        let message = reason(load(dir.path()).unwrap_err());
        assert!(
            message.contains("both PNG files and subfolders"),
            "{message}"
        );
    }

    #[test]
    fn write_png_round_trips_through_load() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<f32> = (0..12).map(|i| i as f32 * 2.0 / 255.0 - 1.0).collect();
        write_png(&dir.path().join("one.png"), &pixels, 2, 2, 3).unwrap();

        let set = load(dir.path()).unwrap();
        assert_eq!((set.height, set.width, set.channels), (2, 2, 3));
        for (read, written) in set.pixels.iter().zip(&pixels) {
            assert!((read - written).abs() < 1e-6);
        }
        let error = write_png(&dir.path().join("bad.png"), &pixels, 3, 3, 3).unwrap_err();
        assert!(reason(error).contains("expected 27 values"));
    }

    #[test]
    fn write_grid_decodes_to_the_grid_size() {
        let dir = tempfile::tempdir().unwrap();
        let (count, height, width) = (5, 3, 4);
        let images = vec![1.0f32; count * height * width];
        let path = dir.path().join("grid.png");
        write_grid(&path, &images, count, height, width, 1, 2).unwrap();

        let decoded = decode_png(&path).unwrap();
        let (grid_height, grid_width) = grid_size(count, height, width, 2);
        assert_eq!((grid_height, grid_width), (3 * 5 + 2, 2 * 6 + 2));
        assert_eq!(
            (decoded.height, decoded.width, decoded.channels),
            (grid_height, grid_width, 1)
        );
        // Gaps are black, tiles keep their pixels, and the missing sixth tile stays black.
        assert_eq!(decoded.bytes[0], 0);
        assert_eq!(decoded.bytes[GRID_GAP * grid_width + GRID_GAP], 255);
        let sixth = (GRID_GAP + 2 * (height + GRID_GAP)) * grid_width + GRID_GAP + width + GRID_GAP;
        assert_eq!(decoded.bytes[sixth], 0);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            1,
            "only the grid remains, no temporary file"
        );

        let error = write_grid(&path, &images, count, height, width, 1, 0).unwrap_err();
        assert!(reason(error).contains("one column"));
    }

    #[test]
    fn real_mnist_training_set_loads_when_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/images/mnist");
        if !dir.is_dir() {
            return;
        }
        let set = load(&dir).unwrap();
        assert_eq!(
            (set.count, set.height, set.width, set.channels),
            (60_000, 28, 28, 1)
        );
        assert_eq!(set.pixels.len(), 60_000 * 784);
        let labels = set.labels.as_ref().unwrap();
        assert_eq!(labels.len(), 60_000);
        assert!(labels.iter().all(|&label| label < 10));
        assert_eq!(set.classes.len(), 10);
    }
}
