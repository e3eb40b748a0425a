//! Figures: image grids laid out as torchvision's make_grid, PNG files that decode to the same
//! pixels, SVG plots that parse, with labelled axes and one line per chain.
#![cfg(feature = "cli")]

use rbm::Rbm;
use rbm::experiments::gates::{GateConfig, GateFn, train_gate};
use rbm::experiments::gates_analysis::{bit_traces, truth_table};
use rbm::experiments::generation::{snapshot_grid, snapshots};
use rbm::figures::font::text_width;
use rbm::figures::grid::{GridLayout, make_grid, normalize_each};
use rbm::figures::plots::{CHAIN_COLOR, K_COLOR, loss_svg, traces_svg};
use rbm::figures::png::encode_png;
use rbm::train::EpochStats;
use rbm::{StreamKey, figures::grid::GreyImage};

/// `n` images of `h × w`; pixel `p` of image `i` is `((i · 7 + p) mod 11) / 10`.
fn images(n: usize, h: usize, w: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|i| (0..h * w).map(move |p| ((i * 7 + p) % 11) as f32 / 10.0))
        .collect()
}

fn byte(x: f32) -> u8 {
    (255.0 * x + 0.5).floor().clamp(0.0, 255.0) as u8
}

#[test]
fn grid_has_make_grid_size_padding_and_pixels() {
    let (n, h, w) = (10, 3, 2);
    let imgs = images(n, h, w);
    let g = make_grid(&imgs, h, w, GridLayout::default()).unwrap();
    // torchvision: xmaps = min(8, 10) = 8, ymaps = 2; (w + 2) · 8 + 2 by (h + 2) · 2 + 2.
    assert_eq!((g.width(), g.height()), (8 * 4 + 2, 2 * 5 + 2));
    let mut is_tile = vec![false; g.width() * g.height()];
    for i in 0..n {
        let (x0, y0) = ((i % 8) * (w + 2) + 2, (i / 8) * (h + 2) + 2);
        for y in 0..h {
            for x in 0..w {
                let want = byte(imgs[i * h * w + y * w + x]);
                assert_eq!(g.get(x0 + x, y0 + y), want, "image {i} pixel ({x}, {y})");
                is_tile[(y0 + y) * g.width() + x0 + x] = true;
            }
        }
    }
    // Everything else, the padding and the empty slots of the last row, is the pad value 0.
    for (p, &tile) in g.pixels().iter().zip(&is_tile) {
        if !tile {
            assert_eq!(*p, 0);
        }
    }
    // Fewer images than a row: the row is only as wide as they are.
    let g = make_grid(&images(3, 28, 28), 28, 28, GridLayout::default()).unwrap();
    assert_eq!((g.width(), g.height()), (3 * 30 + 2, 32));
    // Other layouts and bad input.
    let wide = GridLayout {
        per_row: 4,
        padding: 1,
        pad_value: 9,
    };
    let g = make_grid(&images(10, 3, 2), 3, 2, wide).unwrap();
    assert_eq!((g.width(), g.height()), (4 * 3 + 1, 3 * 4 + 1));
    assert_eq!(g.get(0, 0), 9);
    assert!(make_grid(&[0.0; 5], 2, 2, GridLayout::default()).is_err());
    assert!(make_grid(&[], 2, 2, GridLayout::default()).is_err());
}

#[test]
fn normalized_filters_span_zero_to_one_per_tile() {
    let w = [0.5, -1.0, 2.0, 3.0, 3.0, 3.0];
    let n = normalize_each(&w, 3).unwrap();
    assert_eq!(n[..3], [0.5, 0.0, 1.0]);
    assert_eq!(n[3..], [0.0, 0.0, 0.0]);
}

#[test]
fn png_decodes_to_the_same_grey_pixels() {
    let g = make_grid(&images(13, 28, 28), 28, 28, GridLayout::default()).unwrap();
    let bytes = encode_png(&g).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width as usize, info.height as usize), (242, 62));
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    assert_eq!(&buf[..info.buffer_size()], g.pixels());
    assert!(encode_png(&GreyImage::new(0, 3, 0)).is_err());
}

#[test]
fn snapshot_rows_are_labelled_with_their_steps() {
    let model = Rbm::new(784, 16, 3).unwrap();
    let start = vec![0.0; 4 * 784];
    let steps = [0, 1, 10, 250];
    let snaps = snapshots(&model, &start, &steps, None, StreamKey::new(1)).unwrap();
    assert_eq!(snaps.len(), 4);
    assert_eq!(snaps[0], start, "step 0 is the starting state");
    let img = snapshot_grid(&snaps, &steps, 28, 28).unwrap();
    let margin = text_width("250", 2) + 4;
    assert_eq!(
        (img.width(), img.height()),
        (margin + 4 * 30 + 2, 4 * 30 + 2)
    );
    // The labels are white digits in the margin; the tiles are untouched.
    let lit = |y0: usize| {
        (y0..y0 + 30)
            .flat_map(|y| (0..margin).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get(x, y) == 255)
            .count()
    };
    assert!((0..4).all(|r| lit(r * 30 + 2) > 0));
    let grid = make_grid(
        &snaps.concat(),
        28,
        28,
        GridLayout {
            per_row: 4,
            ..GridLayout::default()
        },
    );
    let grid = grid.unwrap();
    for y in 0..grid.height() {
        for x in 0..grid.width() {
            assert_eq!(img.get(margin + x, y), grid.get(x, y));
        }
    }
    assert!(snapshots(&model, &start, &[5, 2], None, StreamKey::new(1)).is_err());
}

fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).expect("well-formed SVG")
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

fn color_hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02X}{g:02X}{b:02X}")
}

#[test]
fn loss_plot_parses_with_title_and_labelled_axes() {
    let history: Vec<EpochStats> = (0..5)
        .map(|e| EpochStats {
            epoch: e,
            loss: -10.0 + e as f64,
            recon_error: 0.08 / (e + 1) as f64,
            batches: 3,
            seconds: 0.1,
        })
        .collect();
    let svg = loss_svg(&history, "a title").unwrap();
    let doc = parse_svg(&svg);
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let t = texts(&doc);
    for want in [
        "a title",
        "epoch",
        "free-energy difference (nats)",
        "mean squared error per pixel",
        "Reconstruction error",
    ] {
        assert!(t.iter().any(|s| s == want), "no text {want:?} in {t:?}");
    }
    assert!(loss_svg(&[], "empty").is_err());
}

#[test]
fn trace_plots_have_one_line_per_chain_and_a_dashed_line_at_k() {
    let cfg = GateConfig {
        epochs: 2,
        batches: 200,
        ..GateConfig::default()
    };
    let (model, _) = train_gate(&cfg, |_| {}).unwrap();
    for flip in [false, true] {
        let traces = bit_traces(&model, GateFn::And, 2 * cfg.k, 100, flip, 0).unwrap();
        assert_eq!((traces.chains(), traces.points()), (100, 9));
        let svg = traces_svg(&traces, cfg.k, "t", "p(third bit correct | h)").unwrap();
        let doc = parse_svg(&svg);
        let polylines = |color: String| {
            doc.descendants()
                .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(&color))
                .collect::<Vec<_>>()
        };
        let chains = polylines(color_hex((CHAIN_COLOR.0, CHAIN_COLOR.1, CHAIN_COLOR.2)));
        assert_eq!(chains.len(), 100);
        for c in &chains {
            assert_eq!(c.attribute("points").unwrap().split_whitespace().count(), 9);
        }
        // The dashed line: several short vertical segments at one x.
        let dashes = polylines(color_hex((K_COLOR.0, K_COLOR.1, K_COLOR.2)));
        assert!(dashes.len() >= 3, "{} dashes", dashes.len());
        let xs: Vec<&str> = dashes
            .iter()
            .flat_map(|d| d.attribute("points").unwrap().split_whitespace())
            .map(|p| p.split(',').next().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] == w[1]), "{xs:?}");
        assert!(texts(&doc).iter().any(|s| s == "Gibbs step"));
    }
    // The table the traces start from.
    assert_eq!(truth_table(GateFn::Xor)[6..9], [1.0, 0.0, 1.0]);
}
