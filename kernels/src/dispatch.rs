//! Instruction-set dispatch: detected once, cached, overridable for tests and benches.
//!
//! The choice is the best of AVX-512 (`avx512f` + `avx512dq` + `avx512bw` + `avx512vl`),
//! AVX2 + FMA, and scalar that the CPU has, unless the environment variable
//! [`FORCE_ENV`] (`RBM_FORCE_ISA=scalar|avx2|avx512`) names one. Forcing an ISA the CPU lacks
//! falls back to the best available one (and [`Isa::current`] then says which).
//!
//! Every kernel that runs an ISA records it ([`record_use`]), so a test can check that a
//! forced ISA was actually exercised ([`used`]) rather than silently falling back.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that forces an instruction set.
pub const FORCE_ENV: &str = "RBM_FORCE_ISA";

/// An instruction set the kernels are written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Isa {
    /// Portable Rust; always available.
    Scalar = 1,
    /// x86-64 AVX2 with FMA (8 f32 lanes).
    Avx2Fma = 2,
    /// x86-64 AVX-512 F/DQ/BW/VL (16 f32 lanes).
    Avx512 = 4,
}

impl Isa {
    /// Every ISA, from the most portable.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2Fma, Isa::Avx512];

    /// The lower-case name used by [`FORCE_ENV`] and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The ISA named `s` (`scalar`, `avx2`, `avx512`).
    pub fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU can run `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512dq")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && Isa::Avx2Fma.is_available()
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The ISAs this CPU can run, from the most portable.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The best ISA this CPU can run.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// The ISA the kernels use: [`FORCE_ENV`] if set and available, else [`Isa::best`].
    /// Decided on the first call and cached.
    #[inline]
    pub fn current() -> Isa {
        match CURRENT.load(Ordering::Relaxed) {
            0 => init_current(),
            v => from_bits(v),
        }
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);
static USED: AtomicU8 = AtomicU8::new(0);

#[cold]
#[inline(never)]
fn init_current() -> Isa {
    let forced = std::env::var(FORCE_ENV)
        .ok()
        .and_then(|s| Isa::from_name(&s));
    let isa = forced
        .filter(|i| i.is_available())
        .unwrap_or_else(Isa::best);
    CURRENT.store(isa as u8, Ordering::Relaxed);
    isa
}

fn from_bits(v: u8) -> Isa {
    match v {
        2 => Isa::Avx2Fma,
        4 => Isa::Avx512,
        _ => Isa::Scalar,
    }
}

/// Records that a kernel ran on `isa`. A relaxed load, and an atomic OR only the first time
/// (so that threads calling kernels do not contend for the cache line).
#[inline]
pub fn record_use(isa: Isa) {
    if USED.load(Ordering::Relaxed) & isa as u8 == 0 {
        USED.fetch_or(isa as u8, Ordering::Relaxed);
    }
}

/// The ISAs whose kernels have run in this process.
pub fn used() -> Vec<Isa> {
    let bits = USED.load(Ordering::Relaxed);
    Isa::ALL
        .into_iter()
        .filter(|&i| bits & i as u8 != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_scalar_is_always_there() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert_eq!(Isa::from_name("AVX512 "), Some(Isa::Avx512));
        assert_eq!(Isa::from_name("sse"), None);
        assert!(Isa::available().contains(&Isa::Scalar));
        assert!(Isa::best().is_available());
        assert!(Isa::current().is_available());
    }
}
