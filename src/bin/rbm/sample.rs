//! `rbm sample`: generation from a model file, from noise or from test images with clamped
//! pixels (inpainting).

use std::path::PathBuf;

use rbm::data::{self, Binarize, Split, fill_batch};
use rbm::experiments::generation::{
    WIDE_PATCH, dense_patch, noise_starts, snapshot_grid, snapshots,
};
use rbm::figures::png::write_png;
use rbm::{Error, StreamKey};
use serde_json::{Value, json};

use crate::args::{InitArg, SampleArgs};
use crate::figures::{default_density, sample_keys, square_shape};
use crate::output::{print_json, put_path};

pub fn run(a: &SampleArgs) -> rbm::Result<()> {
    let file = rbm::load_model(&a.model)?;
    let model = &file.model;
    let config: Option<Value> = file.config().and_then(|c| serde_json::from_str(c).ok());
    let (height, width) = square_shape(model.n_visible())?;
    let chains = a.chains as usize;
    if let Some(&last) = a.steps.iter().max()
        && last > crate::train::MAX_SAMPLE_STEPS
    {
        return Err(Error::config(
            "--steps",
            format!("at most {} Gibbs steps", crate::train::MAX_SAMPLE_STEPS),
            last,
        ));
    }
    let density = a
        .density
        .unwrap_or_else(|| default_density(is_fashion(&config)));
    if !(0.0..=1.0).contains(&density) {
        return Err(Error::config("--density", "a value in [0, 1]", density));
    }
    let (start_key, chain_key) = sample_keys(a.seed);
    let mut start = match a.init {
        InitArg::Noise => noise_starts(
            height,
            width,
            chains,
            WIDE_PATCH,
            dense_patch(density),
            start_key,
        )?,
        InitArg::Data => data_starts(a, &config, model.n_visible())?,
    };
    let mask = a.clamp.map(|c| c.mask(height, width));
    if let (Some(mask), InitArg::Data) = (&mask, a.init) {
        // Inpainting: the free pixels start blank, so the model has to fill them in.
        for row in start.chunks_exact_mut(model.n_visible()) {
            row.iter_mut()
                .zip(mask)
                .filter(|(_, m)| !**m)
                .for_each(|(v, _)| *v = 0.0);
        }
    }
    let snaps = snapshots(model, &start, &a.steps, mask.as_deref(), chain_key)?;
    write_png(&a.out, &snapshot_grid(&snaps, &a.steps, height, width)?)?;
    if a.json {
        let mut v = json!({
            "chains": chains, "steps": a.steps,
            "init": format!("{:?}", a.init).to_lowercase(),
            "clamp": a.clamp.map(|c| format!("{c:?}").to_lowercase()), "seed": a.seed,
        });
        put_path(&mut v, "out", &a.out);
        print_json(&v);
    } else {
        outln!(
            "wrote {} ({chains} chains, rows after {:?} steps)",
            a.out.display(),
            a.steps
        );
    }
    Ok(())
}

/// Whether the model file's configuration names Fashion-MNIST.
fn is_fashion(config: &Option<Value>) -> bool {
    config.as_ref().is_some_and(|c| {
        c["dataset"].as_str().is_some_and(|d| d.contains("fashion"))
            || matches!(c["preset"].as_str(), Some("SeedFashion" | "BestFashion"))
    })
}

/// `chains` test images from `--first` on, thresholded at 0.5.
fn data_starts(a: &SampleArgs, config: &Option<Value>, n_visible: usize) -> rbm::Result<Vec<f32>> {
    let dir = match (&a.data, a.dataset) {
        (Some(d), _) => d.clone(),
        (None, Some(name)) => data::find_dataset(name.folder())?,
        (None, None) => config
            .as_ref()
            // A path that is not UTF-8 was written lossily: it names no folder.
            .filter(|c| c["data_lossy"] != true)
            .and_then(|c| c["data"].as_str())
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::config(
                    "--init data",
                    "--data DIR or --dataset NAME (the model file names no data, or not as UTF-8)",
                    "neither",
                )
            })?,
    };
    let ds = data::open_split(&dir, Split::Test)?;
    if ds.row_len() != n_visible {
        return Err(Error::shape(
            format!("images of {}", dir.display()),
            format!("{n_visible} pixels (the model's visible units)"),
            ds.row_len(),
        ));
    }
    let chains = a.chains as usize;
    if a.first + chains > ds.len() {
        return Err(Error::config(
            "--first",
            format!(
                "at most {} with {chains} chains (the test set's images)",
                ds.len().saturating_sub(chains)
            ),
            a.first,
        ));
    }
    let indices: Vec<u32> = (a.first..a.first + chains).map(|i| i as u32).collect();
    let mut out = vec![0.0; chains * n_visible];
    fill_batch(
        &ds,
        &indices,
        Binarize::Threshold,
        StreamKey::new(0),
        &mut out,
    )?;
    Ok(out)
}
