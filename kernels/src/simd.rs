//! The loop bodies of the SIMD kernels, written once over the lane operations of
//! [`Simd`] and shared by every ISA, and [`impl_kernel!`], which instantiates them
//! per instruction set.
//!
//! Each ISA's file (`src/portable.rs`, `src/x86/avx2.rs`, `src/x86/avx512.rs`) implements
//! [`Simd`] for its token and invokes [`impl_kernel!`] once with its `#[target_feature]`
//! string: that generates its whole [`Kernel`](crate::kernel::Kernel) implementation — each
//! method checks its lengths, then calls a `#[target_feature]` shim that runs the generic
//! body below. The bodies and every lane operation are `#[inline(always)]`, so the whole loop
//! compiles with the shim's features.
//!
//! Bit-identity across ISAs follows from two rules: the bodies and [`crate::math`] call the
//! same operations in the same order for every lane count, and each lane operation has the
//! same IEEE result on every ISA (see [`Simd`]).

use crate::lanes::Simd;
use crate::math;
use crate::rng::StreamKey;

/// Calls `$f` (an index-list kernel of the token's own file), unsafely where it is a
/// `#[target_feature]` function (`$features` given).
macro_rules! call {
    (; $f:path, $($a:expr),*) => {
        $f($($a),*)
    };
    ($features:literal; $f:path, $($a:expr),*) => {
        // SAFETY: the token exists only where the CPU has the features `$f` is compiled with
        // (its `try_new` checks them; `new_unchecked`'s caller promises them).
        unsafe { $f($($a),*) }
    };
}
pub(crate) use call;

/// Implements [`Kernel`](crate::kernel::Kernel) for the token `$token` of the instruction set
/// `$isa`, compiled with `$features` (none for the portable token): every method checks its
/// lengths, then runs the body of this module inside a `kernel::shim!` — or, for the index lists,
/// the token's own `$nonzero` and `$changed` kernels, which are `#[target_feature]` functions
/// where `$features` is given. The one place a SIMD kernel's per-ISA entry point is written.
macro_rules! impl_kernel {
    (
        $token:ty, $isa:expr $(, $features:literal)?;
        nonzero_indices: $nonzero:path,
        changed_indices: $changed:path $(,)?
    ) => {
        impl $crate::kernel::Kernel for $token {
            const ISA: $crate::dispatch::Isa = $isa;

            #[track_caller]
            fn sigmoid_affine(self, pre: &[f32], scale: f32, bias: &[f32], prob: &mut [f32]) {
                $crate::kernel::check_len("pre", prob.len(), pre.len());
                $crate::kernel::check_len("bias", prob.len(), bias.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (pre: &[f32], scale: f32, bias: &[f32], prob: &mut [f32]) {
                        $crate::simd::sigmoid_affine(s, pre, scale, bias, prob)
                    })
            }

            #[track_caller]
            fn sigmoid_affine_sample(
                self,
                pre: &[f32],
                scale: f32,
                bias: &[f32],
                key: $crate::rng::StreamKey,
                first: u64,
                prob: &mut [f32],
                state: &mut [f32],
            ) {
                $crate::kernel::check_sample(pre.len(), bias.len(), first, prob.len(), state.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (pre: &[f32], scale: f32, bias: &[f32], key: $crate::rng::StreamKey,
                     first: u64, prob: &mut [f32], state: &mut [f32]) {
                        $crate::simd::sigmoid_affine_sample(
                            s, pre, scale, bias, key, first, prob, state,
                        )
                    })
            }

            #[track_caller]
            fn bernoulli(self, p: &[f32], key: $crate::rng::StreamKey, first: u64, state: &mut [f32]) {
                $crate::kernel::check_len("p", state.len(), p.len());
                $crate::kernel::check_draws(first, state.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (p: &[f32], key: $crate::rng::StreamKey, first: u64, state: &mut [f32]) {
                        $crate::simd::bernoulli(s, p, key, first, state)
                    })
            }

            #[track_caller]
            fn softplus_sum_affine(self, pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
                $crate::kernel::check_len("bias", pre.len(), bias.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
                        $crate::simd::softplus_sum_affine(s, pre, scale, bias)
                    })
            }

            #[track_caller]
            fn softplus_sum_affine_sample(
                self,
                pre: &[f32],
                scale: f32,
                bias: &[f32],
                key: $crate::rng::StreamKey,
                first: u64,
                prob: &mut [f32],
                state: &mut [f32],
            ) -> f64 {
                $crate::kernel::check_sample(pre.len(), bias.len(), first, prob.len(), state.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (pre: &[f32], scale: f32, bias: &[f32], key: $crate::rng::StreamKey,
                     first: u64, prob: &mut [f32], state: &mut [f32]) -> f64 {
                        $crate::simd::softplus_sum_affine_sample(
                            s, pre, scale, bias, key, first, prob, state,
                        )
                    })
            }

            #[track_caller]
            fn softplus_diff_affine(
                self,
                pre: &[f32],
                from: (f32, &[f32]),
                to: (f32, &[f32]),
            ) -> f64 {
                $crate::kernel::check_diff(pre.len(), from.1.len(), to.1.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (pre: &[f32], from: (f32, &[f32]), to: (f32, &[f32])) -> f64 {
                        $crate::simd::softplus_diff_affine::<_, false>(
                            s,
                            pre,
                            from,
                            to,
                            $crate::rng::StreamKey::new(0),
                            0,
                            &mut [],
                            &mut [],
                        )
                    })
            }

            #[track_caller]
            fn softplus_diff_affine_sample(
                self,
                pre: &[f32],
                from: (f32, &[f32]),
                to: (f32, &[f32]),
                key: $crate::rng::StreamKey,
                first: u64,
                prob: &mut [f32],
                state: &mut [f32],
            ) -> f64 {
                $crate::kernel::check_diff(pre.len(), from.1.len(), to.1.len());
                $crate::kernel::check_sample(pre.len(), to.1.len(), first, prob.len(), state.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (pre: &[f32], from: (f32, &[f32]), to: (f32, &[f32]),
                     key: $crate::rng::StreamKey, first: u64, prob: &mut [f32],
                     state: &mut [f32]) -> f64 {
                        $crate::simd::softplus_diff_affine::<_, true>(
                            s, pre, from, to, key, first, prob, state,
                        )
                    })
            }

            #[track_caller]
            fn softmax_groups(self, x: &[f32], q: usize, probs: &mut [f32]) {
                $crate::kernel::check_groups(x.len(), q, probs.len());
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (x: &[f32], q: usize, probs: &mut [f32]) {
                        $crate::simd::softmax_groups::<_, false>(
                            s,
                            x,
                            q,
                            $crate::rng::StreamKey::new(0),
                            0,
                            probs,
                            &mut [],
                            &mut [],
                        )
                    })
            }

            #[track_caller]
            fn softmax_groups_sample(
                self,
                x: &[f32],
                q: usize,
                key: $crate::rng::StreamKey,
                first: u64,
                probs: &mut [f32],
                states: &mut [f32],
                ones: &mut [u32],
            ) {
                $crate::kernel::check_groups_sample(
                    x.len(), q, first, probs.len(), states.len(), ones.len(),
                );
                $crate::kernel::shim!($($features)?; s: $token = self;
                    (x: &[f32], q: usize, key: $crate::rng::StreamKey, first: u64,
                     probs: &mut [f32], states: &mut [f32], ones: &mut [u32]) {
                        $crate::simd::softmax_groups::<_, true>(
                            s, x, q, key, first, probs, states, ones,
                        )
                    })
            }

            #[track_caller]
            fn nonzero_indices(self, x: &[f32], out: &mut [u32]) -> usize {
                $crate::kernel::check_nonzero(x.len(), out.len());
                $crate::simd::call!($($features)?; $nonzero, x, out)
            }

            #[track_caller]
            fn changed_indices(self, old: &[f32], new: &[f32], out: &mut [u32]) -> usize {
                $crate::kernel::check_changed(old.len(), new.len(), out.len());
                $crate::simd::call!($($features)?; $changed, old, new, out)
            }
        }
    };
}
pub(crate) use impl_kernel;

// The bodies below take slices whose lengths the `Kernel` methods have checked; they
// re-slice every input to the output's length `n` (a no-op after those checks, and a panic
// rather than an out-of-bounds access if one were missed), so every pointer offset below is
// bounded by `n` and stays inside its slice.

/// `prob[j] = σ(scale·pre[j] + bias[j])`.
#[inline(always)]
pub(crate) fn sigmoid_affine<S: Simd>(
    s: S,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    prob: &mut [f32],
) {
    let n = prob.len();
    let (pre, bias) = (&pre[..n], &bias[..n]);
    let vscale = s.splat(scale);
    let (pp, pb, po) = (pre.as_ptr(), bias.as_ptr(), prob.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: `i + LANES ≤ n` and `pre`, `bias`, `prob` each hold `n` elements.
        unsafe {
            let x = s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i)));
            s.store(po.add(i), math::sigmoid(s, x));
        }
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        // SAFETY: `0 < m < LANES` (the loop above stopped) and `i + m = n`: the partial
        // loads and store touch elements `i..n` of slices of length `n`.
        unsafe {
            let x = s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m));
            s.store_part(po.add(i), math::sigmoid(s, x), m);
        }
    }
}

/// `prob[j] = σ(scale·pre[j] + bias[j])`, `state[j] = bernoulli(prob[j], draw first + j)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sigmoid_affine_sample<S: Simd>(
    s: S,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) {
    let n = prob.len();
    let (pre, bias, state) = (&pre[..n], &bias[..n], &mut state[..n]);
    let vscale = s.splat(scale);
    let mut rng = s.rng(key, first);
    let (pp, pb) = (pre.as_ptr(), bias.as_ptr());
    let (po, ps) = (prob.as_mut_ptr(), state.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= n {
        let u = s.draws(&mut rng);
        // SAFETY: `i + LANES ≤ n` and all four slices hold `n` elements.
        unsafe {
            let x = s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i)));
            let p = math::sigmoid(s, x);
            s.store(po.add(i), p);
            s.store(ps.add(i), s.bernoulli(p, u));
        }
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        let u = s.draws(&mut rng);
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are touched.
        unsafe {
            let x = s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m));
            let p = math::sigmoid(s, x);
            s.store_part(po.add(i), p, m);
            s.store_part(ps.add(i), s.bernoulli(p, u), m);
        }
    }
}

/// [`sigmoid_affine_sample`] that also returns `Σ_j softplus(scale·pre[j] + bias[j])`, summed
/// as [`softplus_sum_affine`] sums: both from one exponential per element.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn softplus_sum_affine_sample<S: Simd>(
    s: S,
    pre: &[f32],
    scale: f32,
    bias: &[f32],
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    let n = prob.len();
    let (pre, bias, state) = (&pre[..n], &bias[..n], &mut state[..n]);
    let vscale = s.splat(scale);
    let mut rng = s.rng(key, first);
    let (pp, pb) = (pre.as_ptr(), bias.as_ptr());
    let (po, ps) = (prob.as_mut_ptr(), state.as_mut_ptr());
    let mut acc = s.acc_zero();
    let mut i = 0;
    while i + S::LANES <= n {
        let u = s.draws(&mut rng);
        // SAFETY: `i + LANES ≤ n` and all four slices hold `n` elements.
        unsafe {
            let x = s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i)));
            let (p, sp) = math::sigmoid_softplus(s, x);
            s.store(po.add(i), p);
            s.store(ps.add(i), s.bernoulli(p, u));
            acc = s.acc_add(acc, sp);
        }
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        let u = s.draws(&mut rng);
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are touched.
        unsafe {
            let x = s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m));
            let (p, sp) = math::sigmoid_softplus(s, x);
            s.store_part(po.add(i), p, m);
            s.store_part(ps.add(i), s.bernoulli(p, u), m);
            // The missing lanes hold softplus(0) = ln 2: drop them.
            acc = s.acc_add(acc, s.keep_first(sp, m));
        }
    }
    s.acc_total(acc)
}

/// `state[j] = bernoulli(p[j], draw first + j)`.
#[inline(always)]
pub(crate) fn bernoulli<S: Simd>(s: S, p: &[f32], key: StreamKey, first: u64, state: &mut [f32]) {
    let n = state.len();
    let p = &p[..n];
    let mut rng = s.rng(key, first);
    let (pp, ps) = (p.as_ptr(), state.as_mut_ptr());
    let mut i = 0;
    while i + S::LANES <= n {
        let u = s.draws(&mut rng);
        // SAFETY: `i + LANES ≤ n` and both slices hold `n` elements.
        unsafe { s.store(ps.add(i), s.bernoulli(s.load(pp.add(i)), u)) };
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        let u = s.draws(&mut rng);
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are touched.
        unsafe { s.store_part(ps.add(i), s.bernoulli(s.load_part(pp.add(i), m), u), m) };
    }
}

/// `Σ_j softplus(scale·pre[j] + bias[j])`, each term in f32, summed in f64 lanes.
#[inline(always)]
pub(crate) fn softplus_sum_affine<S: Simd>(s: S, pre: &[f32], scale: f32, bias: &[f32]) -> f64 {
    let n = pre.len();
    let bias = &bias[..n];
    let vscale = s.splat(scale);
    let (pp, pb) = (pre.as_ptr(), bias.as_ptr());
    let mut acc = s.acc_zero();
    let mut i = 0;
    while i + S::LANES <= n {
        // SAFETY: `i + LANES ≤ n` and both slices hold `n` elements.
        let x = unsafe { s.fma(vscale, s.load(pp.add(i)), s.load(pb.add(i))) };
        acc = s.acc_add(acc, math::softplus(s, x));
        i += S::LANES;
    }
    if i < n {
        let m = n - i;
        // SAFETY: `0 < m < LANES` and `i + m = n`: only elements `i..n` are read.
        let x = unsafe { s.fma(vscale, s.load_part(pp.add(i), m), s.load_part(pb.add(i), m)) };
        // The missing lanes hold softplus(0) = ln 2: drop them.
        acc = s.acc_add(acc, s.keep_first(math::softplus(s, x), m));
    }
    s.acc_total(acc)
}

/// Vectors whose `1 + e^{−|x|}` factors one lane multiplies before they are folded into the
/// f64 logarithm: each factor is in `[1, 2]`, so a lane's product is at most 2³² and the
/// product of the (at most 16) lanes of a fold at most 2⁵¹². The bound that binds is f64's
/// range: 16 lanes × DIFF_FOLD ≤ 1023, so DIFF_FOLD ≤ 63.
const DIFF_FOLD: usize = 32;

/// `Σ_j [softplus(to·pre[j] + bias_to[j]) − softplus(from·pre[j] + bias_from[j])]`, and with
/// `SAMPLE` the [`sigmoid_affine_sample`] of the `to` arguments into `prob` and `state`.
///
/// With `softplus(x) = max(x, 0) + log(1 + e^{−|x|})` the difference is the sum of the
/// `max` parts (f32 terms, summed in f64 lanes) plus `log Π(1 + e^{−|x_to|}) − log Π(1 +
/// e^{−|x_from|})`: lane products in f32, folded every [`DIFF_FOLD`] vectors (512 elements with
/// AVX-512, 256 with AVX2, 32 in scalar code) into one f64 logarithm of the quotient. Two
/// exponentials and no logarithm per element (the separate sums need two exponentials, two
/// logarithms and cancel to the small difference).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn softplus_diff_affine<S: Simd, const SAMPLE: bool>(
    s: S,
    pre: &[f32],
    (from, bias_from): (f32, &[f32]),
    (to, bias_to): (f32, &[f32]),
    key: StreamKey,
    first: u64,
    prob: &mut [f32],
    state: &mut [f32],
) -> f64 {
    let n = pre.len();
    let (bias_from, bias_to) = (&bias_from[..n], &bias_to[..n]);
    let (pp, pf, pt) = (pre.as_ptr(), bias_from.as_ptr(), bias_to.as_ptr());
    let (po, ps) = if SAMPLE {
        (prob[..n].as_mut_ptr(), state[..n].as_mut_ptr())
    } else {
        (std::ptr::null_mut(), std::ptr::null_mut())
    };
    let (vfrom, vto) = (s.splat(from), s.splat(to));
    let (zero, one) = (s.splat(0.0), s.splat(1.0));
    let mut rng = s.rng(key, first);
    let mut lin = s.acc_zero();
    let mut log_ratio = 0.0f64;
    let (mut prod_to, mut prod_from) = (one, one);
    let mut in_fold = 0;
    let mut i = 0;
    while i < n {
        let m = (n - i).min(S::LANES);
        let full = m == S::LANES;
        // SAFETY: `i + m ≤ n` and `pre` and both biases hold `n` elements; a part load reads
        // only lanes `..m`.
        let load = |p: *const f32| unsafe {
            if full {
                s.load(p.add(i))
            } else {
                s.load_part(p.add(i), m)
            }
        };
        let x = load(pp);
        let (xt, xf) = (s.fma(vto, x, load(pt)), s.fma(vfrom, x, load(pf)));
        // Lanes past a partial load hold x = 0 (or NaN where a temperature is infinite:
        // ∞ · 0): set them to 0, where the factors are 2 and 2 and the max parts 0, so that
        // they change neither sum.
        let (xt, xf) = if full {
            (xt, xf)
        } else {
            (s.keep_first(xt, m), s.keep_first(xf, m))
        };
        let et = math::exp_nonpositive(s, s.neg_abs(xt));
        let ef = math::exp_nonpositive(s, s.neg_abs(xf));
        lin = s.acc_add(lin, s.sub(s.max(xt, zero), s.max(xf, zero)));
        prod_to = s.mul(prod_to, s.add(one, et));
        prod_from = s.mul(prod_from, s.add(one, ef));
        if SAMPLE {
            let u = s.draws(&mut rng);
            let p = math::sigmoid_given(s, xt, et);
            // SAFETY: with SAMPLE, `prob` and `state` hold `n` elements (sliced above) and
            // only lanes `i .. i + m` are written.
            unsafe {
                if full {
                    s.store(po.add(i), p);
                    s.store(ps.add(i), s.bernoulli(p, u));
                } else {
                    s.store_part(po.add(i), p, m);
                    s.store_part(ps.add(i), s.bernoulli(p, u), m);
                }
            }
        }
        in_fold += 1;
        i += m;
        if in_fold == DIFF_FOLD || i == n {
            log_ratio += fold_log_ratio(s, prod_to, prod_from);
            (prod_to, prod_from, in_fold) = (one, one, 0);
        }
    }
    s.acc_total(lin) + log_ratio
}

/// `log(Π lanes of a / Π lanes of b)` in f64.
#[inline(always)]
fn fold_log_ratio<S: Simd>(s: S, a: S::F, b: S::F) -> f64 {
    const { assert!(S::LANES <= 16) };
    let (mut la, mut lb) = ([0.0f32; 16], [0.0f32; 16]);
    // SAFETY: `LANES ≤ 16` floats are written to each 16-float array.
    unsafe {
        s.store(la.as_mut_ptr(), a);
        s.store(lb.as_mut_ptr(), b);
    }
    let pa: f64 = la[..S::LANES].iter().map(|&x| x as f64).product();
    let pb: f64 = lb[..S::LANES].iter().map(|&x| x as f64).product();
    (pa / pb).ln()
}

/// The states of a group whose logits (then exponentials) [`softmax_groups`] keeps in a
/// stack buffer of vectors between its passes; the exponentials of states `a ≥ SOFTMAX_KEEP`
/// are recomputed from `x` (the same operations, so the same bits). 32 covers proteins
/// (q = 21) and nucleotides (q = 4, 5) and costs 1 KiB (AVX2) or 2 KiB (AVX-512) of stack.
const SOFTMAX_KEEP: usize = 32;

/// `exp(t)` with `t = x − m`, and `t = 0` where `x = m` (so `+∞` logits share the mass and an
/// all-`−∞` group is uniform instead of `∞ − ∞ = NaN`); NaN for a NaN `x`.
#[inline(always)]
fn softmax_exp<S: Simd>(s: S, x: S::F, m: S::F) -> S::F {
    let t = s.select_eq(x, m, s.splat(0.0), s.sub(x, m));
    math::exp_nonpositive(s, t)
}

/// The softmax of each group of `q` logits into `probs`, and with `SAMPLE` one categorical
/// draw per group into `states` (one-hot) and `ones` (the index of each group's 1).
///
/// Vectorized across groups: a block of `LANES` groups (fewer in the last block) holds group
/// `g0 + l` in lane `l`, and each pass walks the states `a = 0..q`, gathering the logits
/// `x[(g0 + l)·q + a]` (stride `q`); the probabilities of the first [`SOFTMAX_KEEP`] states
/// go back to group-major order from the lane-major stack buffer by consecutive stores, those
/// of later states by a scatter:
///
/// ```text
///            a = 0      1      2    …   q−1
///   lane 0   x[0]     x[1]   x[2]   …  x[q−1]        group g0
///   lane 1   x[q]     x[q+1] x[q+2] …  x[2q−1]       group g0 + 1
///   …
///   pass 1:  m  = max(x_a, m)                 (m starts at −∞; NaN logits skipped)
///   pass 2:  e_a = exp(x_a − m), s = s + e_a  (s starts at 0)
///   pass 3:  p_a = e_a · (1/s); c = c + p_a; count += (u < c ? 0 : 1); last = p_a > 0 ? a : last
///   state:   count < q ? count : last         (c never decreases: count is the first a with u < c)
/// ```
///
/// so each lane performs exactly the scalar sequence of [`Kernel::softmax_groups`] and
/// [`crate::rng::categorical`], whatever the number of lanes: the bits do not depend on the
/// instruction set, and no horizontal operation is needed.
///
/// [`Kernel::softmax_groups`]: crate::kernel::Kernel::softmax_groups
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn softmax_groups<S: Simd, const SAMPLE: bool>(
    s: S,
    x: &[f32],
    q: usize,
    key: StreamKey,
    first: u64,
    probs: &mut [f32],
    states: &mut [f32],
    ones: &mut [u32],
) {
    let n = probs.len();
    let groups = n / q;
    debug_assert!(q > 0 && n == groups * q);
    let x = &x[..n];
    let (states, ones) = if SAMPLE {
        (&mut states[..n], &mut ones[..groups])
    } else {
        (states, ones)
    };
    let (px, pp) = (x.as_ptr(), probs.as_mut_ptr());
    let (zero, one) = (s.splat(0.0), s.splat(1.0));
    // Lane-major: vector `a` (logits, then exponentials, then probabilities of state `a` of
    // the block's groups) at `keep[16·a ..]`, whatever the number of lanes.
    let mut keep = [0.0f32; 16 * SOFTMAX_KEEP];
    let kept = q.min(SOFTMAX_KEEP);
    let pk = keep.as_mut_ptr();
    const { assert!(S::LANES <= 16) };
    // SAFETY: `a < kept ≤ SOFTMAX_KEEP`, so the `LANES ≤ 16` floats at `16·a` lie inside
    // `keep` (16·SOFTMAX_KEEP floats).
    let put = |a: usize, v: S::F| unsafe { s.store(pk.add(16 * a), v) };
    // SAFETY: as for `put`.
    let get = |a: usize| unsafe { s.load(pk.add(16 * a)) };
    let mut rng = s.rng(key, first);
    let mut g0 = 0;
    while g0 < groups {
        let lanes = (groups - g0).min(S::LANES);
        let u = if SAMPLE {
            s.unit(s.draws(&mut rng))
        } else {
            zero
        };
        // SAFETY: lane `l < lanes` of this gather (and of the scatter below) touches element
        // `(g0 + l)·q + a` with `a < q`, below `(g0 + lanes)·q ≤ groups·q = n`, the length of
        // `x` and `probs`; `(LANES − 1)·q ≤ 15·2²⁴ < i32::MAX` (`q ≤ MAX_GROUP`, checked).
        let logits = |a: usize| unsafe { s.gather(px.add(g0 * q + a), q, lanes) };
        let mut m = s.splat(f32::NEG_INFINITY);
        for a in 0..q {
            let xa = logits(a);
            if a < kept {
                put(a, xa);
            }
            m = s.max(xa, m);
        }
        let mut sum = zero;
        for a in 0..q {
            let xa = if a < kept { get(a) } else { logits(a) };
            let e = softmax_exp(s, xa, m);
            if a < kept {
                put(a, e);
            }
            sum = s.add(sum, e);
        }
        let r = s.div(one, sum);
        let (mut c, mut count, mut last) = (zero, zero, zero);
        for a in 0..q {
            let p = if a < kept {
                let p = s.mul(get(a), r);
                put(a, p);
                p
            } else {
                let p = s.mul(softmax_exp(s, logits(a), m), r);
                // SAFETY: as for `logits` above.
                unsafe { s.scatter(pp.add(g0 * q + a), q, p, lanes) };
                p
            };
            if SAMPLE {
                c = s.add(c, p);
                count = s.add(count, s.select_lt(u, c, zero, one));
                last = s.select_lt(zero, p, s.splat(a as f32), last);
            }
        }
        // The kept probabilities back to group-major order: consecutive stores along each
        // group (14% faster on AVX-512 than a scatter per state, see the crate docs).
        for l in 0..lanes {
            for a in 0..kept {
                // SAFETY: `(g0 + l)·q + a < (g0 + lanes)·q ≤ n = probs.len()`, and
                // `16·a + l < 16·SOFTMAX_KEEP` (`a < kept`, `l < LANES ≤ 16`).
                unsafe { pp.add((g0 + l) * q + a).write(pk.add(16 * a + l).read()) };
            }
        }
        if SAMPLE {
            let chosen = s.select_lt(count, s.splat(q as f32), count, last);
            let mut lane = [0.0f32; 16];
            // SAFETY: `LANES ≤ 16` floats are written to a 16-float array.
            unsafe { s.store(lane.as_mut_ptr(), chosen) };
            states[g0 * q..(g0 + lanes) * q].fill(0.0);
            for (l, &a) in lane[..lanes].iter().enumerate() {
                // `a` is an integer below `q` (a count below q, or a state index), exact.
                let at = (g0 + l) * q + a as usize;
                states[at] = 1.0;
                ones[g0 + l] = at as u32;
            }
        }
        g0 += lanes;
    }
}
