//! Grey-scale images and image grids laid out exactly as torchvision's `make_grid` and
//! `save_image` do.
//!
//! `make_grid(t, nrow=8, padding=2, pad_value=0)` on `n` images of `h × w` places
//! `cols = min(nrow, n)` tiles per row in `rows = ⌈n / cols⌉` rows on a canvas of
//! `(cols · (w + padding) + padding) × (rows · (h + padding) + padding)` filled with
//! `pad_value`; tile `i` goes to column `i mod cols`, row `i div cols`, its top-left corner at
//! `(col · (w + padding) + padding, row · (h + padding) + padding)`. `save_image` then stores
//! `clamp(⌊255 · x + 0.5⌋, 0, 255)` for each value `x`.

use crate::error::{Error, Result};

/// A grey-scale image, one byte per pixel, row-major (`pixels[y · width + x]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GreyImage {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl GreyImage {
    /// A `width × height` image with every pixel `fill`.
    pub fn new(width: usize, height: usize, fill: u8) -> Self {
        GreyImage {
            width,
            height,
            pixels: vec![fill; width * height],
        }
    }

    /// An image from its pixels.
    ///
    /// # Errors
    /// [`Error::Shape`] if `pixels` does not hold `width × height` bytes.
    pub fn from_pixels(width: usize, height: usize, pixels: Vec<u8>) -> Result<Self> {
        if Some(pixels.len()) != width.checked_mul(height) {
            return Err(Error::shape(
                "image pixels",
                format!("{} ({width} × {height})", width.saturating_mul(height)),
                pixels.len(),
            ));
        }
        Ok(GreyImage {
            width,
            height,
            pixels,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The pixel at column `x`, row `y`.
    ///
    /// # Panics
    /// If `(x, y)` is outside the image.
    pub fn get(&self, x: usize, y: usize) -> u8 {
        assert!(x < self.width && y < self.height, "pixel out of range");
        self.pixels[y * self.width + x]
    }

    /// Sets the pixel at column `x`, row `y`; does nothing outside the image.
    pub fn set(&mut self, x: usize, y: usize, value: u8) {
        if x < self.width && y < self.height {
            self.pixels[y * self.width + x] = value;
        }
    }

    /// Copies `src` with its top-left corner at `(x, y)`, clipped to this image.
    pub fn blit(&mut self, src: &GreyImage, x: usize, y: usize) {
        let w = src.width.min(self.width.saturating_sub(x));
        for row in 0..src.height.min(self.height.saturating_sub(y)) {
            let d = (y + row) * self.width + x;
            let s = row * src.width;
            self.pixels[d..d + w].copy_from_slice(&src.pixels[s..s + w]);
        }
    }
}

/// torchvision's `save_image` conversion of a value in `[0, 1]` to a byte:
/// `clamp(⌊255 · x + 0.5⌋, 0, 255)` (NaN gives 0).
pub fn to_byte(x: f32) -> u8 {
    // `as u8` saturates and maps NaN to 0.
    (255.0 * x + 0.5) as u8
}

/// How [`make_grid`] lays out its tiles (torchvision's defaults but `nrow`, which is 8 as in
/// the reference notebook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridLayout {
    /// Tiles per grid row.
    pub per_row: usize,
    /// Pixels of padding around and between the tiles.
    pub padding: usize,
    /// The byte the padding is filled with.
    pub pad_value: u8,
}

impl Default for GridLayout {
    /// 8 per row, 2 pixels of padding, black padding.
    fn default() -> Self {
        GridLayout {
            per_row: 8,
            padding: 2,
            pad_value: 0,
        }
    }
}

impl GridLayout {
    /// `(columns, rows)` of tiles for `n` images.
    pub fn tiles(&self, n: usize) -> (usize, usize) {
        let cols = self.per_row.min(n).max(1);
        (cols, n.div_ceil(cols))
    }

    /// The top-left pixel of tile `i` for tiles of `h × w`, with `cols` tiles per row.
    pub fn tile_origin(&self, i: usize, cols: usize, h: usize, w: usize) -> (usize, usize) {
        let (r, c) = (i / cols, i % cols);
        (
            c * (w + self.padding) + self.padding,
            r * (h + self.padding) + self.padding,
        )
    }
}

/// The grid of `images` (each `height × width` values in `[0, 1]`, row-major, concatenated),
/// as torchvision's `make_grid` followed by `save_image` makes it (see the module docs).
///
/// # Errors
/// [`Error::Shape`] if `images` is empty, `height` or `width` is 0, the length is not a whole
/// number of images, or `layout.per_row` is 0.
pub fn make_grid(
    images: &[f32],
    height: usize,
    width: usize,
    layout: GridLayout,
) -> Result<GreyImage> {
    let size = height * width;
    if size == 0 || images.is_empty() || !images.len().is_multiple_of(size) {
        return Err(Error::shape(
            "image grid",
            format!("a whole, non-zero number of {height} × {width} images"),
            format!("{} values", images.len()),
        ));
    }
    if layout.per_row == 0 {
        return Err(Error::shape("image grid", "at least one tile per row", 0));
    }
    let n = images.len() / size;
    let (cols, rows) = layout.tiles(n);
    let p = layout.padding;
    let mut img = GreyImage::new(
        cols * (width + p) + p,
        rows * (height + p) + p,
        layout.pad_value,
    );
    for (i, tile) in images.chunks_exact(size).enumerate() {
        let (x0, y0) = layout.tile_origin(i, cols, height, width);
        for (y, line) in tile.chunks_exact(width).enumerate() {
            let d = (y0 + y) * img.width + x0;
            for (dst, &v) in img.pixels[d..d + width].iter_mut().zip(line) {
                *dst = to_byte(v);
            }
        }
    }
    Ok(img)
}

/// Each tile of `values` (consecutive runs of `tile_len` values) rescaled to `[0, 1]` by its
/// own minimum and maximum, as torchvision's `make_grid(normalize=True, scale_each=True)`
/// does: `(x − min) / max(max − min, 1e-5)`. A constant tile becomes zeros.
///
/// # Errors
/// [`Error::Shape`] if `tile_len` is 0 or does not divide `values.len()`.
pub fn normalize_each(values: &[f32], tile_len: usize) -> Result<Vec<f32>> {
    if tile_len == 0 || !values.len().is_multiple_of(tile_len) {
        return Err(Error::shape(
            "tiles",
            format!("a whole number of tiles of {tile_len} values"),
            format!("{} values", values.len()),
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for tile in values.chunks_exact(tile_len) {
        let lo = tile.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = tile.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let scale = (hi - lo).max(1e-5);
        out.extend(tile.iter().map(|&x| (x - lo) / scale));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_like_save_image() {
        assert_eq!(to_byte(0.0), 0);
        assert_eq!(to_byte(1.0), 255);
        assert_eq!(to_byte(0.5), 128); // 128.0 → 128
        assert_eq!(to_byte(0.498), 127);
        assert_eq!(to_byte(-3.0), 0);
        assert_eq!(to_byte(7.0), 255);
        assert_eq!(to_byte(f32::NAN), 0);
    }

    #[test]
    fn one_row_of_three() {
        let imgs: Vec<f32> = (0..3).flat_map(|i| vec![i as f32 / 2.0; 4]).collect();
        let g = make_grid(&imgs, 2, 2, GridLayout::default()).unwrap();
        // cols = min(8, 3) = 3: width 3·(2+2)+2 = 14, height 1·(2+2)+2 = 6.
        assert_eq!((g.width(), g.height()), (14, 6));
        assert_eq!(g.get(2, 2), 0);
        assert_eq!(g.get(6, 2), 128);
        assert_eq!(g.get(11, 3), 255);
        assert_eq!(g.get(4, 2), 0); // padding between tiles
    }

    #[test]
    fn normalize_each_scales_tiles_independently() {
        let v = [1.0, 3.0, -2.0, -2.0];
        assert_eq!(normalize_each(&v, 2).unwrap(), vec![0.0, 1.0, 0.0, 0.0]);
        assert!(normalize_each(&v, 3).is_err());
    }
}
