//! The harnesses behind the fuzz targets: one per parser entry point of `rbm`, each driving
//! the parser to the end of its input (every element, row, label and value is read) and
//! checking what it returns against the documented invariants and, where one exists, an
//! independent oracle.
//!
//! This file is also compiled into the root crate's `tests/hostile.rs` (by `#[path]`), which
//! replays the committed seeds (`fuzz/seeds/<target>/`), any local corpus (`fuzz/corpus/`) and
//! the hostile inputs (`tests/hostile/`) through these same functions on stable Rust, without
//! a fuzzer. So it depends on nothing but `rbm` and `flate2`.
//!
//! Every function returns whether `rbm` accepted the input. It panics only when `rbm` breaks
//! an invariant: a panic here is a bug in `rbm` (or in the harness), never in the input.

use std::hint::black_box;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use rbm::checkpoint::{parse_checkpoint, serialize_checkpoint};
use rbm::data::file::IN_MEMORY;
use rbm::data::idx::{self, ElemType, IdxHeader, IdxView};
use rbm::data::{Binarize, CLASSES, Dataset, IdxFile, fill_batch, mean_pixels};
use rbm::model_file::{parse_model, serialize_model};
use rbm::{Error, IdxError, StreamKey};

/// Target `idx_parse`: raw bytes → [`idx::parse_header`] and [`idx::parse`] → every element
/// decoded with [`IdxView::iter_f64`]; [`IdxFile::from_bytes`] must agree.
pub fn idx_parse(data: &[u8]) -> bool {
    let header = idx::parse_header(data);
    let from_bytes = IdxFile::from_bytes(data.to_vec());
    check_raw_reader(data, &from_bytes);
    match idx::parse(data) {
        Ok(view) => {
            let header = header.expect("parse accepted bytes that parse_header refuses");
            check_view(&view, &header, data);
            let file = from_bytes.expect("IdxFile::from_bytes refused bytes that parse accepts");
            assert_eq!(file.header(), &header);
            assert_eq!(file.bytes(), data);
            assert_eq!(file.view().data(), view.data());
            true
        }
        Err(kind) => {
            match &header {
                // A valid header leaves only the data length to be wrong.
                Ok(h) => match kind {
                    IdxError::Truncated {
                        declared,
                        available,
                    } => {
                        assert_eq!(declared, h.data_len);
                        assert!(available < declared);
                        assert_eq!(available + h.header_len as u64, data.len() as u64);
                    }
                    IdxError::TrailingBytes { declared, extra } => {
                        assert_eq!(declared, h.data_len);
                        assert!(extra > 0);
                        assert_eq!(
                            Some(data.len() as u64),
                            (h.header_len as u64 + declared).checked_add(extra)
                        );
                    }
                    ref other => panic!("header {h:?} is valid, yet parse says {other:?}"),
                },
                Err(header_kind) => assert_eq!(header_kind, &kind),
            }
            match from_bytes {
                Err(Error::Idx { path, kind: k }) => {
                    assert_eq!(path, Path::new(IN_MEMORY));
                    assert_eq!(k, kind);
                }
                other => panic!("parse says {kind:?}, IdxFile::from_bytes says {other:?}"),
            }
            black_box(kind.to_string());
            false
        }
    }
}

/// Target `idx_gzip`: the first byte picks the mode, the rest is the input.
///
/// - Even first byte: the rest is a gzip stream, fed to [`idx_gzip_stream`].
/// - Odd first byte: the rest is a plain IDX file; it is gzip'd here (in one member, or two
///   split where the first byte says) so that the fuzzer reaches the IDX checks behind a
///   valid gzip layer, and [`idx_gzip_plain`] compares the result with [`idx::parse`].
pub fn idx_gzip(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    if mode & 1 == 0 {
        idx_gzip_stream(rest)
    } else {
        // mode >> 1 in 0..=127: 0 for one member, else a split at that fraction of the input.
        let split = usize::from(mode >> 1);
        let members = (split > 0).then(|| rest.len() * split / 128);
        idx_gzip_plain(rest, members)
    }
}

/// The raw-file reader ([`IdxFile::from_raw_reader`]) on `data`: with the true length it
/// agrees with `from_bytes` (`expected`) exactly, errors included; with a length off by a
/// little either way (a file that changed size while it was read) it refuses the bytes.
fn check_raw_reader(data: &[u8], expected: &rbm::Result<IdxFile>) {
    let len = data.len() as u64;
    match (IdxFile::from_raw_reader(data, len, IN_MEMORY), expected) {
        (Ok(file), Ok(want)) => assert_eq!(file.bytes(), want.bytes()),
        (Err(Error::Idx { kind, .. }), Err(Error::Idx { kind: want, .. })) => {
            assert_eq!(&kind, want);
        }
        (got, want) => panic!("from_raw_reader gave {got:?}, from_bytes {want:?}"),
    }
    for wrong in [
        len.saturating_sub(1),
        len + 1,
        len.saturating_sub(8),
        len + 8,
    ] {
        if wrong != len {
            match IdxFile::from_raw_reader(data, wrong, IN_MEMORY) {
                Ok(_) => panic!("a stream of {len} bytes accepted as {wrong}"),
                Err(Error::Idx { .. } | Error::Io { .. }) => {}
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
    }
}

/// Arbitrary bytes as a gzip stream → [`IdxFile::from_gzip_bytes`] → every element.
pub fn idx_gzip_stream(gz: &[u8]) -> bool {
    match IdxFile::from_gzip_bytes(gz) {
        Ok(file) => {
            check_file(&file);
            true
        }
        Err(Error::Idx { path, kind }) => {
            assert_eq!(path, Path::new(IN_MEMORY));
            black_box(kind.to_string());
            false
        }
        // Only a declared size that cannot be held in memory is an I/O error for bytes.
        Err(Error::Io { path, source }) => {
            assert_eq!(path, Path::new(IN_MEMORY));
            assert_eq!(source.kind(), std::io::ErrorKind::OutOfMemory, "{source}");
            false
        }
        Err(other) => panic!("unexpected error from from_gzip_bytes: {other:?}"),
    }
}

/// `plain` gzip'd (as one member, or as two split at byte `split`) →
/// [`IdxFile::from_gzip_bytes`], which must give what [`idx::parse`] gives for `plain`: the
/// same bytes, or the same error, except that data past the declared size is
/// [`IdxError::InflatesTooLong`] (the inflater stops there) rather than
/// [`IdxError::TrailingBytes`].
pub fn idx_gzip_plain(plain: &[u8], split: Option<usize>) -> bool {
    let gz = match split {
        Some(at) => {
            let (a, b) = plain.split_at(at.min(plain.len()));
            [gzip(a), gzip(b)].concat()
        }
        None => gzip(plain),
    };
    let expected = idx::parse(plain).map(|v| v.header().clone());
    match (IdxFile::from_gzip_bytes(&gz), expected) {
        (Ok(file), Ok(header)) => {
            assert_eq!(file.header(), &header);
            assert_eq!(file.bytes(), plain);
            check_file(&file);
            true
        }
        (Err(Error::Idx { path, kind }), Err(expected)) => {
            assert_eq!(path, Path::new(IN_MEMORY));
            match expected {
                IdxError::TrailingBytes { declared, .. } => {
                    let header = idx::parse_header(plain).expect("a valid header");
                    assert_eq!(header.data_len, declared);
                    let total = header.total_len().expect("a total that fits");
                    assert_eq!(kind, IdxError::InflatesTooLong { declared: total });
                }
                expected => assert_eq!(kind, expected),
            }
            false
        }
        (got, expected) => panic!("gzip path gives {got:?}, parse gives {expected:?}"),
    }
}

/// Target `dataset_pair`: the first two bytes (little-endian) say where the image file ends
/// and the label file begins in the rest; both go through [`IdxFile::from_bytes`], then
/// [`Dataset::from_idx`]; every row and label is read, pixel means computed and every row
/// binarized through [`fill_batch`].
pub fn dataset_pair(data: &[u8]) -> bool {
    let Some((split, rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let at = usize::from(u16::from_le_bytes(*split)).min(rest.len());
    let (images, labels) = rest.split_at(at);
    let (Ok(images), Ok(labels)) = (
        IdxFile::from_bytes(images.to_vec()),
        IdxFile::from_bytes(labels.to_vec()),
    ) else {
        return false;
    };
    let ds = match Dataset::from_idx(images, labels) {
        Ok(ds) => ds,
        Err(e @ (Error::Idx { .. } | Error::Dataset { .. })) => {
            assert!(e.to_string().starts_with(IN_MEMORY), "{e}");
            return false;
        }
        Err(other) => panic!("unexpected error from Dataset::from_idx: {other:?}"),
    };
    let (n, row_len) = (ds.len(), ds.row_len());
    let (rows, cols) = ds.image_shape();
    assert_eq!(rows * cols, row_len);
    assert!(row_len >= 1);
    assert_eq!(
        ds.images_file().header().dims,
        [n, rows, cols].map(|d| d as u32)
    );
    assert_eq!(ds.pixels().len(), n * row_len);
    assert_eq!(ds.labels().len(), n);
    let mut sum = 0u64;
    for i in 0..n {
        let row = ds.row(i);
        assert_eq!(row.len(), row_len);
        sum += row.iter().map(|&p| u64::from(p)).sum::<u64>();
        assert!(ds.label(i) < CLASSES);
    }
    black_box(sum);
    // Per-row buffers only when rows exist: an empty file's row size is declared, not backed
    // by its bytes (see `Dataset::row_len`).
    if n > 0 {
        let means = mean_pixels(&ds);
        assert_eq!(means.len(), row_len);
        assert!(means.iter().all(|m| (0.0..=1.0).contains(m)), "{means:?}");
        let mut out = vec![0.0f32; row_len];
        let key = StreamKey::new(7);
        for i in 0..n as u32 {
            for binarize in [Binarize::Stochastic, Binarize::Threshold, Binarize::None] {
                fill_batch(&ds, &[i], binarize, key, &mut out).expect("a valid batch");
                assert!(out.iter().all(|x| (0.0..=1.0).contains(x)));
            }
        }
        let past_end = u32::try_from(n).unwrap_or(u32::MAX);
        assert!(fill_batch(&ds, &[past_end], Binarize::None, key, &mut out).is_err());
    }
    true
}

/// Target `model_file`: raw bytes → [`parse_model`] → every value read → serialized and
/// parsed again, unchanged bit for bit.
pub fn model_file(data: &[u8]) -> bool {
    let file = match parse_model(data) {
        Ok(file) => file,
        Err(kind) => {
            black_box(kind.to_string());
            return false;
        }
    };
    let model = &file.model;
    let (v, h) = (model.n_visible(), model.n_hidden());
    assert!(v >= 1 && h >= 1);
    assert_eq!(model.weights().len(), v * h);
    assert_eq!(model.v_bias().len(), v);
    assert_eq!(model.h_bias().len(), h);
    let mut sum = 0.0f64;
    for &x in model
        .weights()
        .iter()
        .chain(model.v_bias())
        .chain(model.h_bias())
    {
        assert!(x.is_finite(), "parse_model returned a non-finite value");
        sum += f64::from(x);
    }
    black_box(sum);
    for (key, value) in &file.metadata {
        black_box((key.len(), value.len()));
    }

    // What was accepted is written back and read again unchanged, bit for bit.
    let bytes = serialize_model(model, file.config()).expect("an accepted model serializes");
    let again = parse_model(&bytes).expect("a serialized model parses");
    let bits = |m: &rbm::Rbm| -> Vec<u32> {
        let all = m.weights().iter().chain(m.v_bias()).chain(m.h_bias());
        all.map(|x| x.to_bits()).collect()
    };
    assert_eq!((again.model.n_visible(), again.model.n_hidden()), (v, h));
    assert_eq!(bits(&again.model), bits(model));
    assert_eq!(again.config(), file.config());
    true
}

/// Checks a validated view against its header and the bytes it came from, decoding every
/// element.
fn check_view(view: &IdxView<'_>, header: &IdxHeader, bytes: &[u8]) {
    assert_eq!(view.header(), header);
    assert_eq!(bytes.get(..header.header_len), Some(&header.encode()[..]));
    assert_eq!(
        IdxHeader::new(header.elem, header.dims.clone()).as_ref(),
        Ok(header)
    );
    assert_eq!(header.total_len(), Ok(bytes.len() as u64));
    assert_eq!(view.len() as u64, header.num_elements());
    assert_eq!(view.is_empty(), header.num_elements() == 0);
    assert_eq!(view.as_u8().is_ok(), header.elem == ElemType::U8);

    let size = header.elem.size();
    let mut count = 0usize;
    let mut sum = 0.0f64;
    for (x, raw) in view.iter_f64().zip(view.data().chunks_exact(size)) {
        assert_eq!(x.to_bits(), decode(header.elem, raw).to_bits(), "{raw:?}");
        sum += x;
        count += 1;
    }
    assert_eq!(count, view.len());
    assert_eq!(view.iter_f64().len(), view.len());
    black_box(sum);
}

/// Checks an [`IdxFile`]: its bytes parse to the same header, and every element decodes.
fn check_file(file: &IdxFile) {
    let view = idx::parse(file.bytes()).expect("an IdxFile holds valid IDX bytes");
    assert_eq!(view.header(), file.header());
    assert_eq!(view.data(), file.data());
    check_view(&file.view(), file.header(), file.bytes());
}

/// An element decoded independently of `rbm`: big-endian, exact in `f64`.
fn decode(elem: ElemType, b: &[u8]) -> f64 {
    match (elem, b) {
        (ElemType::U8, &[x]) => f64::from(x),
        (ElemType::I8, &[x]) => f64::from(x as i8),
        (ElemType::I16, &[a, b]) => f64::from(i16::from_be_bytes([a, b])),
        (ElemType::I32, &[a, b, c, d]) => f64::from(i32::from_be_bytes([a, b, c, d])),
        (ElemType::F32, &[a, b, c, d]) => f64::from(f32::from_be_bytes([a, b, c, d])),
        (ElemType::F64, b) if b.len() == 8 => {
            f64::from_be_bytes(b.try_into().expect("eight bytes"))
        }
        _ => panic!("{} bytes for one {}", b.len(), elem.name()),
    }
}

/// `bytes` as one gzip member (fast compression).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// Target `checkpoint`: raw bytes → [`parse_checkpoint`] → every value read, the parts checked
/// against each other, a trainer made from it → serialize → parse again, equal.
pub fn checkpoint(data: &[u8]) -> bool {
    let c = match parse_checkpoint(data) {
        Ok(c) => c,
        Err(kind) => {
            black_box(kind.to_string());
            return false;
        }
    };
    let (v, h) = (c.model.n_visible(), c.model.n_hidden());
    assert!(v >= 1 && h >= 1);
    let mut sum = 0.0f64;
    let momentum = c
        .state
        .momentum
        .iter()
        .flat_map(|m| m.w.iter().chain(&m.v_bias).chain(&m.h_bias));
    for &x in c
        .model
        .weights()
        .iter()
        .chain(c.model.v_bias())
        .chain(c.model.h_bias())
        .chain(momentum)
        .chain(c.state.negative.chains().into_iter().flatten())
    {
        assert!(
            x.is_finite(),
            "parse_checkpoint returned a non-finite value"
        );
        sum += f64::from(x);
    }
    black_box(sum);
    if let Some(m) = &c.state.momentum {
        assert_eq!((m.w.len(), m.v_bias.len(), m.h_bias.len()), (h * v, v, h));
    }
    if let Some(chains) = c.state.negative.chains() {
        assert_eq!(chains.len(), c.config.persistent_rows() * v);
    }
    assert!(c.position.epoch < c.schedule.epochs);
    // A trainer allocates buffers for a batch: only for batch sizes a fuzz input could back.
    let rows = c.config.batch_size.max(c.config.persistent_rows());
    if rows.saturating_mul(v + h) <= 1 << 20 {
        let trainer = c.trainer().expect("an accepted checkpoint gives a trainer");
        assert_eq!(trainer.steps(), c.state.steps);
        assert_eq!(trainer.state(), c.state);
    }

    // What was accepted is written back and read again unchanged.
    let bytes = serialize_checkpoint(&c).expect("an accepted checkpoint serializes");
    let again = parse_checkpoint(&bytes).expect("a serialized checkpoint parses");
    assert_eq!(again, c);
    true
}

/// Raw bytes → `rbm::data::fasta::parse_msa` with the protein alphabet, every code checked,
/// then deduplication, a split and (for small alignments) the sequence weights against a
/// pairwise count. Returns whether the bytes parsed.
pub fn fasta(data: &[u8]) -> bool {
    use rbm::data::fasta::{Alphabet, parse_msa};
    let Ok(msa) = parse_msa(data, Alphabet::protein()) else {
        return false;
    };
    let (n, l) = (msa.len(), msa.columns());
    assert!(n >= 1 && l >= 1);
    assert_eq!(msa.codes().len(), n * l);
    assert!(
        msa.codes()
            .iter()
            .all(|&c| usize::from(c) < msa.alphabet().q())
    );
    let unique = msa.deduplicated();
    assert!(!unique.is_empty() && unique.len() <= n);
    let (train, test) = msa.split(0.25, 1).expect("0.25 is a valid fraction");
    assert_eq!(train.len() + test.len(), n);
    if n <= 64 {
        let weights = msa.weights(0.2);
        for (i, w) in weights.iter().enumerate() {
            let close = (0..n)
                .filter(|&j| {
                    let d = msa
                        .row(i)
                        .iter()
                        .zip(msa.row(j))
                        .filter(|(a, b)| a != b)
                        .count();
                    (d as f64) < 0.2 * l as f64 || d == 0
                })
                .count();
            assert_eq!(*w, 1.0 / close as f64);
        }
    }
    true
}
