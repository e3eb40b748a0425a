//! `rbm eval`: log Z and the log-likelihood of a split by AIS (and RAISE, and exactly when
//! small enough), pseudo-log-likelihood and reconstruction error. The likelihoods come from
//! the library's [`Estimator`] around the model file, with the training split's pixel means as
//! its base rate.

use std::time::Instant;

use rbm::data::{self, Binarize, RowSource, Rows, Split};
use rbm::eval::{self, PseudoLikelihood, evaluation_rows};
use rbm::rng::tags;
use rbm::{Config, Error, Estimator, LogLikelihood, StreamKey};
use serde_json::{Map, Value, json};

use crate::args::{EvalArgs, EvalBinarizeArg, PllArg, SplitArg};
use crate::output::print_json;

pub fn run(a: &EvalArgs) -> rbm::Result<()> {
    let start = Instant::now();
    let model = rbm::load_model(&a.model)?.model;
    let dir = match (&a.data, a.dataset) {
        (Some(dir), _) => dir.clone(),
        (None, Some(name)) => data::find_dataset(name.folder())?,
        (None, None) => {
            return Err(Error::config(
                "data",
                "--data DIR or --dataset NAME",
                "neither",
            ));
        }
    };
    let (split, split_name) = match a.split {
        SplitArg::Test => (Split::Test, "test"),
        SplitArg::Train => (Split::Train, "train"),
    };
    let (binarize, binarize_name) = match a.binarize {
        EvalBinarizeArg::Stochastic => (Binarize::Stochastic, "stochastic"),
        EvalBinarizeArg::Threshold => (Binarize::Threshold, "threshold"),
    };
    // The base rate always comes from the training split.
    let train = data::open_split(&dir, Split::Train)?;
    train.check_row_len(model.n_visible())?;
    if train.is_empty() {
        return Err(Error::shape("base rate data", "at least one row", 0));
    }
    let base = data::mean_pixels(&train);
    let ds = match split {
        Split::Train => train,
        Split::Test => {
            let ds = data::open_split(&dir, split)?;
            ds.check_row_len(model.n_visible())?;
            ds
        }
    };
    evaluate(
        a,
        &model,
        &ds,
        base,
        (split_name, binarize, binarize_name),
        &dir,
        start,
    )
}

/// A line of text (unless `--json`) and its fields in the JSON object.
struct Report {
    json: bool,
    fields: Map<String, Value>,
}

impl Report {
    fn set(&mut self, key: &str, value: Value) {
        self.fields.insert(key.into(), value);
    }

    fn line(&self, text: String) {
        if !self.json {
            crate::output::line(text);
        }
    }
}

fn evaluate(
    a: &EvalArgs,
    model: &rbm::Rbm,
    ds: &data::Dataset,
    base: Vec<f64>,
    (split_name, binarize, binarize_name): (&str, Binarize, &str),
    dir: &std::path::Path,
    start: Instant,
) -> rbm::Result<()> {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let n = a.rows.map_or(ds.len(), |r| r as usize).min(ds.len());
    let rows = evaluation_rows(ds, n, binarize)?;
    let mut r = Report {
        json: a.json,
        fields: Map::new(),
    };
    crate::output::insert_path(&mut r.fields, "model", &a.model);
    r.set("n_visible", json!(nv));
    r.set("n_hidden", json!(nh));
    crate::output::insert_path(&mut r.fields, "data", dir);
    r.set("split", json!(split_name));
    r.set("rows", json!(n));
    r.set("binarize", json!(binarize_name));
    r.set("seed", json!(a.seed));
    let binarize_note = match binarize {
        Binarize::Stochastic => format!(
            "stochastic binarization (one Bernoulli(pixel/255) draw, fixed seed {})",
            eval::EVAL_BINARIZE_SEED
        ),
        _ => "threshold binarization (pixel/255 > 0.5)".to_string(),
    };
    r.line(format!(
        "model {} ({nv}–{nh}); {split_name} split of {}: {n} rows, {binarize_note}",
        a.model.display(),
        dir.display()
    ));

    let config = Config::default().seed(a.seed).binarize(binarize);
    let estimator = Estimator::from_model(model.clone(), config).with_base_rate(base)?;
    // The rows as binarized above: 0/1 values, which the estimator's binarization keeps.
    let scored = Rows::new(&rows, nv)?;

    // Exact first: it fails at once (too many units) or is fast.
    let exact = if a.exact {
        let t = Instant::now();
        let exact = estimator.log_likelihood(&scored, LogLikelihood::Exact)?;
        Some((exact, t.elapsed().as_secs_f64()))
    } else {
        None
    };

    // AIS.
    let (runs, temperatures) = (a.ais_runs as usize, a.ais_betas as usize);
    let t = Instant::now();
    let ais = estimator.log_likelihood(&scored, LogLikelihood::Ais { runs, temperatures })?;
    let ais_s = t.elapsed().as_secs_f64();
    let est = ais
        .ais
        .as_ref()
        .expect("an AIS likelihood holds its estimate");
    let (ll, ll_lo, ll_hi) = (ais.estimate, ais.lower, ais.upper);
    r.set("ais_runs", json!(runs));
    r.set("ais_temperatures", json!(est.temperatures));
    r.set("log_z", json!(est.log_z));
    r.set("log_z_lo", finite_or_null(est.log_z_lo));
    r.set("log_z_hi", finite_or_null(est.log_z_hi));
    r.set("log_z_base", json!(est.log_z_base));
    r.set("ais_ess", json!(est.effective_sample_size()));
    r.set("test_ll", json!(ll));
    r.set("test_ll_lo", finite_or_null(ll_lo));
    r.set("test_ll_hi", finite_or_null(ll_hi));
    r.set("ais_seconds", json!(ais_s));
    r.line(format!(
        "AIS ({runs} runs, {} temperatures, {ais_s:.1} s): log Z = {:.3} [{:.3}, {:.3}] (log of mean ± 3 s.e.; effective sample size {:.1})",
        est.temperatures,
        est.log_z,
        est.log_z_lo,
        est.log_z_hi,
        est.effective_sample_size()
    ));
    r.line(format!(
        "  log-likelihood (AIS): {ll:.3} nats per row [{ll_lo:.3}, {ll_hi:.3}]"
    ));

    // RAISE on evenly spaced rows, with AIS's figure on the same rows beside it.
    if a.reverse {
        let m = (a.reverse_rows as usize).min(n);
        let subset: Vec<f32> = (0..m)
            .flat_map(|i| {
                let row = i * n / m;
                rows[row * nv..(row + 1) * nv].iter().copied()
            })
            .collect();
        let t = Instant::now();
        let method = LogLikelihood::Raise {
            runs_per_row: 1,
            temperatures,
        };
        let raised = estimator.log_likelihood(&Rows::new(&subset, nv)?, method)?;
        let rev = raised
            .raise
            .as_ref()
            .expect("a RAISE likelihood holds its estimate");
        let raise_s = t.elapsed().as_secs_f64();
        let (ais_same, _, _) = est.log_likelihood(eval::mean_neg_free_energy(model, &subset)?);
        r.set("reverse_test_ll", json!(rev.mean));
        r.set("reverse_test_ll_se", json!(rev.std_error));
        r.set("reverse_rows", json!(m));
        r.set("ais_test_ll_reverse_rows", json!(ais_same));
        r.set("reverse_seconds", json!(raise_s));
        r.line(format!(
            "  log-likelihood (RAISE, {m} rows, {raise_s:.1} s): {:.3} ± {:.3} nats per row (conservative); AIS on the same rows: {ais_same:.3}",
            rev.mean, rev.std_error
        ));
    }

    if let Some((exact, exact_s)) = exact {
        let log_z = exact.log_z.expect("an exact likelihood holds log Z");
        r.set("exact_log_z", json!(log_z));
        r.set("exact_test_ll", json!(exact.estimate));
        r.set("exact_seconds", json!(exact_s));
        r.line(format!(
            "exact ({exact_s:.1} s): log Z = {log_z:.4}, log-likelihood {:.4} nats per row (AIS − exact: {:+.4})",
            exact.estimate,
            est.log_z - log_z
        ));
    }

    let t = Instant::now();
    let (mode, pll_name) = match a.pll {
        PllArg::Exact => (PseudoLikelihood::Exact, "exact"),
        PllArg::One => (PseudoLikelihood::OneFlip { seed: a.seed }, "one-flip"),
    };
    let pll = eval::pseudo_log_likelihood(model, &rows, mode)?;
    let pll = pll.iter().sum::<f64>() / n as f64;
    let recon = eval::reconstruction_error(
        model,
        &rows,
        StreamKey::new(a.seed).derive(tags::EVAL_RECON),
    )?;
    r.set("pseudo_ll", json!(pll));
    r.set("pseudo_ll_kind", json!(pll_name));
    r.set("recon_error", json!(recon));
    r.line(format!(
        "pseudo-log-likelihood ({pll_name}): {pll:.3} nats per row; reconstruction error {recon:.5} (mean squared error per pixel of p(v|h), h ~ p(h|v)) ({:.1} s)",
        t.elapsed().as_secs_f64()
    ));
    let seconds = start.elapsed().as_secs_f64();
    r.set("seconds", json!(seconds));
    r.line(format!("time: {seconds:.1} s"));
    if a.json {
        print_json(&Value::Object(r.fields));
    }
    Ok(())
}

/// The value, or JSON `null` for an infinite bound.
fn finite_or_null(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}
