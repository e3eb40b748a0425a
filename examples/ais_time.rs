//! Times one AIS estimate of a saved model with the default settings (14,500 temperatures,
//! 100 runs) and prints `log Z`, its bounds and the seconds it took.
//!
//! `cargo run --release --example ais_time -- MODEL [DATASET] [TEMPERATURES] [SEED]`
//! (`DATASET` is `mnist` by default; its training split gives the base rate).

use std::path::Path;
use std::time::Instant;

use rbm::data::{Split, find_dataset, open_split};
use rbm::eval::{AisConfig, BaseRate, Schedule, ais};

fn main() -> rbm::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model_path = args
        .first()
        .map(String::as_str)
        .unwrap_or("model.safetensors");
    let name = args.get(1).map(String::as_str).unwrap_or("mnist");
    let temperatures = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(14_500);
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let model = rbm::load_model(Path::new(model_path))?.model;
    let train = open_split(&find_dataset(name)?, Split::Train)?;
    let base = BaseRate::from_dataset(&train)?;
    let config = AisConfig {
        runs: 100,
        schedule: Schedule::standard_with(temperatures)?,
        seed,
    };
    let t = Instant::now();
    let est = ais(&model, &base, &config)?;
    println!(
        "log Z = {:.4} [{:.4}, {:.4}], ESS {:.1}, {:.3} s",
        est.log_z,
        est.log_z_lo,
        est.log_z_hi,
        est.effective_sample_size(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
