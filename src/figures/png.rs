//! PNG files of [`GreyImage`]s (8-bit grey-scale), written atomically.

use std::path::Path;

use super::grid::GreyImage;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// The PNG encoding of `img` (colour type grey-scale, 8 bits).
///
/// # Errors
/// [`Error::Figure`] if the image is empty or too large for PNG.
pub fn encode_png(img: &GreyImage) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::Figure {
        what: "PNG image".into(),
        reason,
    };
    let (w, h) = (
        u32::try_from(img.width()).map_err(|e| fail(e.to_string()))?,
        u32::try_from(img.height()).map_err(|e| fail(e.to_string()))?,
    );
    if w == 0 || h == 0 {
        return Err(fail(format!("a {w} × {h} image is empty")));
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut writer = enc.write_header().map_err(|e| fail(e.to_string()))?;
    writer
        .write_image_data(img.pixels())
        .map_err(|e| fail(e.to_string()))?;
    writer.finish().map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

/// Writes `img` as a PNG file at `path`, atomically.
///
/// # Errors
/// [`Error::Figure`] naming the path if it cannot be encoded, [`Error::Io`] if it cannot be
/// written.
pub fn write_png(path: &Path, img: &GreyImage) -> Result<()> {
    let bytes = encode_png(img).map_err(|e| match e {
        Error::Figure { reason, .. } => Error::Figure {
            what: path.display().to_string(),
            reason,
        },
        other => other,
    })?;
    write_atomic(path, &bytes)
}
