//! Figures: image grids as byte buffers laid out as torchvision's `make_grid` does ([`grid`])
//! and a digit font to label them ([`font`]), always available; PNG files ([`png`]) and SVG
//! plots ([`plots`]) with the `figures` feature (on with `cli`), which adds the `png` and
//! `plotters` crates and nothing of the command line.

pub mod font;
pub mod grid;
#[cfg(feature = "figures")]
pub mod plots;
#[cfg(feature = "figures")]
pub mod png;
