//! Memory bounds, measured with a counting global allocator: parsing never allocates from
//! declared sizes, a gzip bomb never grows memory past its declared size, and batching does
//! not allocate per epoch or per batch.

mod common;

use common::alloc::{Counting, largest_allocation};
use common::{TempDir, gzip, idx_bytes};
use rbm::data::{Batches, Binarize, Dataset, IdxFile, Order, fill_batch, idx};
use rbm::{Error, IdxError};
use rbm_kernels::rng::StreamKey;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn parse_allocates_nothing_from_declared_sizes() {
    // Declares 2^48 bytes of u8, 2^31 · 8 of f64: only the dimension list is allocated.
    for bytes in [
        idx_bytes(0x08, &[1 << 16, 1 << 16, 1 << 16], &[1, 2, 3]),
        idx_bytes(0x0E, &[1 << 31], &[0; 64]),
    ] {
        let (res, largest) = largest_allocation(|| idx::parse(&bytes).map(|_| ()));
        assert!(matches!(res, Err(IdxError::Truncated { .. })), "{res:?}");
        assert!(largest <= 64, "parse allocated {largest} bytes");
    }
}

#[test]
fn gzip_bomb_stays_within_its_declared_size() {
    // Header declares 10 data bytes; the stream inflates to 10 MiB more.
    let dir = TempDir::new("alloc-bomb");
    let mut bomb = idx_bytes(0x08, &[10], &[]);
    bomb.resize(bomb.len() + (10 << 20), 0);
    let path = dir.write("bomb-idx1-ubyte.gz", &gzip(&bomb));
    drop(bomb);
    let (res, largest) = largest_allocation(|| IdxFile::open(&path));
    assert!(
        matches!(
            res,
            Err(Error::Idx {
                kind: IdxError::InflatesTooLong { declared: 18 },
                ..
            })
        ),
        "{res:?}"
    );
    // The decoder's own state (a 32 KiB window, buffers) is all that may be larger than the
    // 18 declared bytes; nothing near the 10 MiB payload.
    assert!(largest < 512 << 10, "largest allocation {largest} bytes");
}

#[test]
fn gzip_buffer_is_exactly_the_declared_size() {
    let dir = TempDir::new("alloc-exact");
    let data: Vec<u8> = (0..3 << 20).map(|k: u32| (k % 253) as u8).collect();
    let path = dir.write(
        "big-idx1-ubyte.gz",
        &gzip(&idx_bytes(0x08, &[3 << 20], &data)),
    );
    let (file, largest) = largest_allocation(|| IdxFile::open(&path).unwrap());
    assert_eq!(file.data(), &data[..]);
    // One buffer of header + data bytes, never grown past it.
    assert_eq!(largest, 8 + (3 << 20));
}

#[test]
fn huge_declared_gzip_size_is_an_error_not_an_abort() {
    // Declares 2^48 bytes (256 TiB) in a tiny stream: nothing of that size is reserved (the
    // buffer grows with the inflated data), and the error says the stream is short.
    let dir = TempDir::new("alloc-huge");
    let path = dir.write(
        "huge-idx3-ubyte.gz",
        &gzip(&idx_bytes(0x08, &[1 << 16, 1 << 16, 1 << 16], &[1; 100])),
    );
    let (res, largest) = largest_allocation(|| IdxFile::open(&path));
    assert!(
        matches!(
            res,
            Err(Error::Idx {
                kind: IdxError::Truncated {
                    declared: 0x1_0000_0000_0000,
                    available: 100
                },
                ..
            })
        ),
        "{res:?}"
    );
    // The first reservation (1 MiB) and the decoder's state.
    assert!(largest <= 1 << 20, "largest allocation {largest} bytes");
}

#[test]
fn gzip_buffer_grows_with_the_data_not_the_declaration() {
    // Declares 64 MiB, holds 3 MiB: the buffer doubles from 1 MiB as data arrives and stops
    // at 4 MiB, however much is declared.
    let dir = TempDir::new("alloc-grow");
    let data: Vec<u8> = (0..3 << 20).map(|k: u32| (k % 251) as u8).collect();
    let path = dir.write(
        "short-idx1-ubyte.gz",
        &gzip(&idx_bytes(0x08, &[64 << 20], &data)),
    );
    let (res, largest) = largest_allocation(|| IdxFile::open(&path));
    assert!(
        matches!(
            res,
            Err(Error::Idx {
                kind: IdxError::Truncated {
                    declared: 0x400_0000,
                    available: 0x30_0000
                },
                ..
            })
        ),
        "{res:?}"
    );
    assert!(largest <= 4 << 20, "largest allocation {largest} bytes");
}

#[test]
fn epochs_and_batches_do_not_allocate() {
    let n = 300u32;
    let data: Vec<u8> = (0..n * 16).map(|k| (k % 256) as u8).collect();
    let ds = Dataset::from_idx(
        IdxFile::from_bytes(idx_bytes(0x08, &[n, 4, 4], &data)).unwrap(),
        IdxFile::from_bytes(idx_bytes(0x08, &[n], &vec![1; n as usize])).unwrap(),
    )
    .unwrap();
    let mut batches = Batches::new(n as usize, 32, Order::Shuffled, 3, false).unwrap();
    let mut out = vec![0.0f32; 32 * 16];
    let ((), largest) = largest_allocation(|| {
        for epoch in 0..3 {
            batches.epoch(epoch);
            for (b, indices) in batches.iter().enumerate() {
                let out = &mut out[..indices.len() * 16];
                let key = StreamKey::new(3).derive(epoch).derive(b as u64);
                for binarize in [Binarize::Stochastic, Binarize::Threshold, Binarize::None] {
                    fill_batch(&ds, indices, binarize, key, out).unwrap();
                }
            }
        }
    });
    assert_eq!(largest, 0, "batching allocated");
}
