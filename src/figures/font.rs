//! A 3 × 5 bitmap font of the digits, to label the rows of an image grid without any font
//! library: [`draw_text`] and [`label_rows`].

use super::grid::GreyImage;

/// Glyph width in font pixels.
pub const GLYPH_WIDTH: usize = 3;
/// Glyph height in font pixels.
pub const GLYPH_HEIGHT: usize = 5;

/// The digits 0–9: five rows of three bits each, the high bit on the left.
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

/// The glyph of `c`: the digits, and blank for every other character.
fn glyph(c: char) -> [u8; 5] {
    c.to_digit(10).map_or([0; 5], |d| DIGITS[d as usize])
}

/// Width in pixels of `text` drawn at `scale` (glyphs `3·scale` wide, `scale` apart).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        n * (GLYPH_WIDTH + 1) * scale - scale
    }
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale × scale`
/// square of `value`; digits only (other characters are left blank), clipped to the image.
pub fn draw_text(img: &mut GreyImage, x: usize, y: usize, text: &str, scale: usize, value: u8) {
    for (i, c) in text.chars().enumerate() {
        let gx = x + i * (GLYPH_WIDTH + 1) * scale;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH_WIDTH {
                if bits >> (GLYPH_WIDTH - 1 - col) & 1 == 1 {
                    fill_square(img, gx + col * scale, y + row * scale, scale, value);
                }
            }
        }
    }
}

fn fill_square(img: &mut GreyImage, x: usize, y: usize, side: usize, value: u8) {
    for dy in 0..side {
        for dx in 0..side {
            img.set(x + dx, y + dy, value);
        }
    }
}

/// `grid` (rows of tiles `tile_height` high, laid out with `padding` as
/// [`make_grid`](super::grid::make_grid) does) with a left margin holding `labels[r]` in
/// white, right-aligned and vertically centred on tile row `r`. The margin is as wide as the
/// widest label plus `2 · padding`, filled with the grid's corner pixel (its padding value).
pub fn label_rows(
    grid: &GreyImage,
    tile_height: usize,
    padding: usize,
    labels: &[String],
    scale: usize,
) -> GreyImage {
    let widest = labels
        .iter()
        .map(|l| text_width(l, scale))
        .max()
        .unwrap_or(0);
    let margin = widest + 2 * padding;
    let fill = grid.pixels().first().copied().unwrap_or(0);
    let mut out = GreyImage::new(grid.width() + margin, grid.height(), fill);
    out.blit(grid, margin, 0);
    let text_h = GLYPH_HEIGHT * scale;
    for (r, label) in labels.iter().enumerate() {
        let top = r * (tile_height + padding) + padding;
        let y = top + tile_height.saturating_sub(text_h) / 2;
        let x = margin - padding - text_width(label, scale);
        draw_text(&mut out, x, y, label, scale, 255);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_one() {
        let mut img = GreyImage::new(5, 7, 0);
        draw_text(&mut img, 1, 1, "1", 1, 200);
        let lit: Vec<(usize, usize)> = (0..7)
            .flat_map(|y| (0..5).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == 200)
            .collect();
        // column 2 (middle) on all 5 rows, (1,2) on row 2, the base row full.
        assert_eq!(lit.len(), 5 + 1 + 2);
        assert_eq!(text_width("10000", 2), 5 * 8 - 2);
    }

    #[test]
    fn labels_add_a_margin() {
        let grid = GreyImage::new(32, 2 * 30 + 2, 0);
        let out = label_rows(&grid, 28, 2, &["1".into(), "100".into()], 2);
        assert_eq!(out.width(), 32 + text_width("100", 2) + 4);
        assert!(out.pixels().contains(&255));
    }
}
