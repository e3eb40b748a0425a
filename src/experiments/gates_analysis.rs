//! The logic-gate analyses of the reference notebook, as it meant them: bit stability and
//! bit correction traces, and the right singular vectors of `W` against the principal
//! components of the data.

use rbm_kernels::StreamKey;

use crate::error::{Error, Result};
use crate::experiments::gates::GateFn;
use crate::gibbs::Gibbs;
use crate::model::Rbm;
use crate::rng::tags;

/// The four truth-table rows `[x, y, f(x, y)]` of `f`, in the order (0,0), (0,1), (1,0),
/// (1,1): `4 × 3` values.
pub fn truth_table(f: GateFn) -> Vec<f32> {
    [(false, false), (false, true), (true, false), (true, true)]
        .iter()
        .flat_map(|&(x, y)| [x as u8 as f32, y as u8 as f32, f.eval(x, y) as u8 as f32])
        .collect()
}

/// Per-step traces of many chains: `chains` series of `points` values each.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Traces {
    chains: usize,
    points: usize,
    values: Vec<f64>,
}

impl Traces {
    /// Number of chains.
    pub fn chains(&self) -> usize {
        self.chains
    }

    /// Values per chain: the start (step 0) and one per Gibbs step.
    pub fn points(&self) -> usize {
        self.points
    }

    /// The trace of chain `c`: value `t` after `t` Gibbs steps.
    ///
    /// # Panics
    /// If `c ≥ chains()`.
    pub fn chain(&self, c: usize) -> &[f64] {
        &self.values[c * self.points..(c + 1) * self.points]
    }

    /// The mean over the chains after `t` steps.
    ///
    /// # Panics
    /// If `t ≥ points()`.
    pub fn mean_at(&self, t: usize) -> f64 {
        (0..self.chains).map(|c| self.chain(c)[t]).sum::<f64>() / self.chains.max(1) as f64
    }
}

/// Bit stability (`flip_third = false`) or bit correction (`flip_third = true`) of a gate
/// model (3 visible units): `chains` chains start at the truth-table rows (the four rows in
/// turn), with the third bit flipped for correction, and run `steps` Gibbs steps. The trace
/// of a chain holds, after each step `t`, the probability `p(v₃ = f(v₁, v₂) | h)` that the
/// third unit is correct given the current hidden state — `p(v₃ = 1 | h)` from the chain's
/// last step when `f` of its current `v₁`, `v₂` is 1, one minus it otherwise; value 0 is the
/// start (1 for stability, 0 for correction). Chains draw from `(seed, SAMPLE, flip_third)`.
///
/// # Errors
/// [`Error::Shape`] if the model does not have 3 visible units; [`Error::Config`] if
/// `chains` is 0.
pub fn bit_traces(
    model: &Rbm,
    f: GateFn,
    steps: usize,
    chains: usize,
    flip_third: bool,
    seed: u64,
) -> Result<Traces> {
    if model.n_visible() != 3 {
        return Err(Error::shape(
            "gate model",
            "3 visible units",
            model.n_visible(),
        ));
    }
    if chains == 0 {
        return Err(Error::config("chains", "at least 1", 0));
    }
    let table = truth_table(f);
    let mut start: Vec<f32> = (0..chains)
        .flat_map(|c| table[(c % 4) * 3..(c % 4) * 3 + 3].to_vec())
        .collect();
    if flip_third {
        start.chunks_exact_mut(3).for_each(|r| r[2] = 1.0 - r[2]);
    }
    let key = StreamKey::new(seed)
        .derive(tags::SAMPLE)
        .derive(0x_b17 + flip_third as u64);
    let mut g = Gibbs::new(model, &start, key)?;
    let points = steps + 1;
    let mut values = vec![0.0; chains * points];
    for t in 0..points {
        if t > 0 {
            g.step(model)?;
        }
        let rows = g
            .visible()
            .chunks_exact(3)
            .zip(g.visible_probs().chunks_exact(3));
        for (c, (v, p)) in rows.enumerate() {
            let want = f.eval(v[0] >= 0.5, v[1] >= 0.5);
            let p3 = f64::from(p[2]);
            values[c * points + t] = if want { p3 } else { 1.0 - p3 };
        }
    }
    Ok(Traces {
        chains,
        points,
        values,
    })
}

/// The right singular vectors of `W` against the principal components of the data.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Cosines {
    /// Singular values of `W`, descending.
    pub singular_values: Vec<f64>,
    /// Variances of the data along its principal components (covariance eigenvalues),
    /// descending.
    pub variances: Vec<f64>,
    /// `matrix[i][j] = |⟨v_i, u_j⟩|`: right singular vector `i` of `W` (by descending singular
    /// value) against principal component `j` (by descending variance).
    pub matrix: Vec<Vec<f64>>,
}

/// [`Cosines`] of `model` against `data` (rows of `V` values, equally weighted; for a gate,
/// its [`truth_table`]). `W` is `H × V`, so its right singular vectors live in the visible
/// space, as the principal components do; there are `min(H, V)` of them.
///
/// # Errors
/// [`Error::Shape`] if `data` is empty or not a whole number of rows of `V` values.
#[cfg(feature = "linalg")]
pub fn svd_pca_cosines(model: &Rbm, data: &[f32]) -> Result<Cosines> {
    use nalgebra::{DMatrix, SymmetricEigen};

    let (nh, nv) = (model.n_hidden(), model.n_visible());
    if data.is_empty() || !data.len().is_multiple_of(nv) {
        return Err(Error::shape(
            "data for PCA",
            format!("a whole, non-zero number of {nv}-unit rows"),
            format!("{} values", data.len()),
        ));
    }
    let w = DMatrix::from_row_iterator(nh, nv, model.weights().iter().map(|&x| f64::from(x)));
    let svd = w.svd(false, true);
    let v_t = svd
        .v_t
        .ok_or_else(|| Error::shape("SVD of W", "right singular vectors", "none"))?;
    let by_sv = descending(svd.singular_values.as_slice());

    let n = data.len() / nv;
    let x = DMatrix::from_row_iterator(n, nv, data.iter().map(|&x| f64::from(x)));
    let mean = x.row_mean();
    let centred = DMatrix::from_fn(n, nv, |r, c| x[(r, c)] - mean[c]);
    let cov = centred.transpose() * &centred / n as f64;
    let eig = SymmetricEigen::new(cov);
    let by_var = descending(eig.eigenvalues.as_slice());

    let matrix = by_sv
        .iter()
        .map(|&i| {
            by_var
                .iter()
                .map(|&j| {
                    v_t.row(i)
                        .transpose()
                        .dot(&eig.eigenvectors.column(j))
                        .abs()
                })
                .collect()
        })
        .collect();
    Ok(Cosines {
        singular_values: by_sv.iter().map(|&i| svd.singular_values[i]).collect(),
        variances: by_var.iter().map(|&j| eig.eigenvalues[j]).collect(),
        matrix,
    })
}

/// Indices of `x` by descending value.
#[cfg(feature = "linalg")]
fn descending(x: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[b].total_cmp(&x[a]));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_table_of_and() {
        let t = truth_table(GateFn::And);
        assert_eq!(t, vec![0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 1., 1.]);
    }

    #[test]
    fn traces_start_right_or_wrong() {
        let model = Rbm::new(3, 3, 1).unwrap();
        let s = bit_traces(&model, GateFn::And, 8, 10, false, 0).unwrap();
        let c = bit_traces(&model, GateFn::And, 8, 10, true, 0).unwrap();
        assert_eq!((s.chains(), s.points()), (10, 9));
        assert!((0..10).all(|i| s.chain(i)[0] == 1.0 && c.chain(i)[0] == 0.0));
        assert!((0..10).all(|i| s.chain(i).iter().all(|p| (0.0..=1.0).contains(p))));
        assert_eq!(s.mean_at(0), 1.0);
    }

    #[cfg(feature = "linalg")]
    #[test]
    fn cosines_of_a_model_aligned_with_the_data() {
        // W's rows are the covariance eigenvectors of the data, scaled 3, 2, 1: each right
        // singular vector is one principal component, in the same order.
        let data = [
            1., 0., 0., -1., 0., 0., 0., 0.5, 0., 0., -0.5, 0., 0., 0., 0.2, 0., 0., -0.2,
        ];
        let w = vec![0., 0., 1., 2., 0., 0., 0., 3., 0.];
        let model = Rbm::from_parts(3, 3, w, vec![0.; 3], vec![0.; 3]).unwrap();
        let c = svd_pca_cosines(&model, &data).unwrap();
        // Principal components: x (variance 1/3), y, z; singular vectors: y (3), x (2), z.
        let want = [[0., 1., 0.], [1., 0., 0.], [0., 0., 1.]];
        for (row, want) in c.matrix.iter().zip(want) {
            for (&a, b) in row.iter().zip(want) {
                assert!((a - b).abs() < 1e-9, "{:?}", c.matrix);
            }
        }
        assert!((c.singular_values[0] - 3.0).abs() < 1e-9);
    }
}
