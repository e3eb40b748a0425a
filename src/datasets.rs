//! Small built-in datasets, generated: for examples, tests and a first model without files.

/// The bars-and-stripes patterns on a `side × side` grid (MacKay 2003): every image whose
/// rows are each all on or all off (stripes), or whose columns are (bars) — `2^(side+1) − 2`
/// distinct images (the blank and the full image are both), as `f32` 0/1 rows of `side²`
/// pixels, row-major: stripes first, in binary order of their rows, then bars.
///
/// ```
/// let data = rbm::datasets::bars_and_stripes(2);
/// assert_eq!(data.len(), 6 * 4);
/// assert_eq!(&data[4..8], &[1.0, 1.0, 0.0, 0.0]); // the top stripe
/// ```
///
/// # Panics
/// If `side` is 0 or above 12 (2^13 images of 144 pixels is plenty for a toy).
pub fn bars_and_stripes(side: usize) -> Vec<f32> {
    assert!(
        (1..=12).contains(&side),
        "bars_and_stripes: side {side} not in 1..=12"
    );
    let pixels = side * side;
    let mut out = Vec::with_capacity(((1 << (side + 1)) - 2) * pixels);
    for mask in 0u32..1 << side {
        out.extend((0..pixels).map(|p| ((mask >> (p / side)) & 1) as f32));
    }
    // Bars, without the blank (mask 0) and full (all ones) images already listed.
    for mask in 1u32..(1 << side) - 1 {
        out.extend((0..pixels).map(|p| ((mask >> (p % side)) & 1) as f32));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::bars_and_stripes;

    #[test]
    fn patterns_are_distinct_and_counted() {
        for side in 1..=4 {
            let data = bars_and_stripes(side);
            let rows: Vec<&[f32]> = data.chunks(side * side).collect();
            assert_eq!(rows.len(), (1 << (side + 1)) - 2);
            for (i, a) in rows.iter().enumerate() {
                assert!(rows[i + 1..].iter().all(|b| a != b), "side {side} row {i}");
            }
        }
    }
}
