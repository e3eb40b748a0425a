//! SVG plots (plotters' SVG backend: text as `<text>` elements, no font files needed).

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::experiments::gates_analysis::Traces;
use crate::train::EpochStats;

/// Colour of the per-chain lines of [`traces_svg`] (`#1F77B4`, drawn at opacity 0.25).
pub const CHAIN_COLOR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Colour of the mean line of [`traces_svg`].
pub const MEAN_COLOR: RGBColor = BLACK;
/// Colour of the dashed line at step `k` of [`traces_svg`].
pub const K_COLOR: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn figure_error(what: &str) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Figure {
        what: what.to_string(),
        reason,
    }
}

/// One quantity of an epoch.
type Metric = fn(&EpochStats) -> f64;

/// `(lo, hi)` of `values`, widened by 5 % (and to a unit range around a constant).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad, hi + pad)
}

/// The loss plot of a training run: two panels against the epoch (1-based), the notebook's
/// loss (the mean free-energy difference `F(v₀) − F(v_k)`) on the left and the reconstruction
/// error on the right, with markers at each epoch, labelled axes and `title` above.
///
/// # Errors
/// [`Error::Figure`] if the plot cannot be drawn (for example, no epochs).
pub fn loss_svg(history: &[EpochStats], title: &str) -> Result<String> {
    let fail = figure_error("loss plot");
    if history.is_empty() {
        return Err(fail("no epochs to plot".into()));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| fail(e.to_string()))?;
        let (left, right) = root.split_horizontally(480);
        let n = history.len() as f64;
        let panels: [(_, &str, &str, Metric, RGBColor); 2] = [
            (
                left,
                "Loss: mean F(v₀) − F(v_k)",
                "free-energy difference (nats)",
                |e| e.loss,
                CHAIN_COLOR,
            ),
            (
                right,
                "Reconstruction error",
                "mean squared error per pixel",
                |e| e.recon_error,
                K_COLOR,
            ),
        ];
        for (area, caption, y_desc, value, color) in panels {
            let (lo, hi) = padded_range(history.iter().map(value));
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(0.5..n + 0.5, lo..hi)
                .map_err(|e| fail(e.to_string()))?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc("epoch")
                .y_desc(y_desc)
                .x_labels(history.len().min(10) + 1)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .draw()
                .map_err(|e| fail(e.to_string()))?;
            let points: Vec<(f64, f64)> = history
                .iter()
                .map(|e| (e.epoch as f64 + 1.0, value(e)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| fail(e.to_string()))?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| fail(e.to_string()))?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}

/// A plot of per-chain traces in `[0, 1]` against the Gibbs step: one `<polyline>` per chain
/// (colour [`CHAIN_COLOR`], opacity 0.25), their mean (black, thicker), and a dashed
/// vertical line at step `k` ([`K_COLOR`]); `y_desc` labels the vertical axis.
///
/// # Errors
/// [`Error::Figure`] if the plot cannot be drawn.
pub fn traces_svg(traces: &Traces, k: usize, title: &str, y_desc: &str) -> Result<String> {
    let fail = figure_error("trace plot");
    let last = traces.points().saturating_sub(1).max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..last, -0.02..1.02)
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("Gibbs step")
            .y_desc(y_desc)
            .x_labels((last as usize).min(10) + 1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        let style = CHAIN_COLOR.mix(0.25).stroke_width(1);
        for c in 0..traces.chains() {
            let pts = traces
                .chain(c)
                .iter()
                .enumerate()
                .map(|(t, &p)| (t as f64, p));
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(|e| fail(e.to_string()))?;
        }
        let mean = (0..traces.points()).map(|t| (t as f64, traces.mean_at(t)));
        chart
            .draw_series(LineSeries::new(mean, MEAN_COLOR.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?;
        let kx = k as f64;
        chart
            .draw_series(DashedLineSeries::new(
                [(kx, -0.02), (kx, 1.02)],
                8,
                8,
                K_COLOR.stroke_width(2),
            ))
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(svg)
}
