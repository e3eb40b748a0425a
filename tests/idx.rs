//! The IDX parser and `IdxFile`: every `IdxError` variant from hand-made bytes, every element
//! type, round trips of random valid headers, and raw / gzip'd files on disk.

mod common;

use common::{TempDir, gzip, idx_bytes};
use rbm::data::idx::{self, ElemType, IdxHeader, MAX_DIMS};
use rbm::data::{Dataset, IdxFile};
use rbm::{Error, IdxError};
use rbm_kernels::rng::StreamKey;

/// The `IdxError` of a failed parse.
fn parse_err(bytes: &[u8]) -> IdxError {
    match idx::parse(bytes) {
        Ok(v) => panic!("parsed {:?} from {} bytes", v.header(), bytes.len()),
        Err(e) => e,
    }
}

/// The `IdxError` of a failed `IdxFile::open`, checking that the message names the file.
fn open_err(path: &std::path::Path) -> IdxError {
    match IdxFile::open(path) {
        Ok(f) => panic!("opened {:?}", f.header()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            match e {
                Error::Idx { path: p, kind } => {
                    assert_eq!(p, path);
                    kind
                }
                other => panic!("expected Error::Idx, got {other:?}"),
            }
        }
    }
}

#[test]
fn too_short() {
    for len in 0..4 {
        let bytes = [0u8, 0, 8, 1];
        assert_eq!(
            parse_err(&bytes[..len]),
            IdxError::TooShort { len: len as u64 }
        );
    }
}

#[test]
fn bad_magic() {
    let mut bytes = idx_bytes(0x08, &[1], &[5]);
    bytes[0] = 1;
    assert_eq!(parse_err(&bytes), IdxError::BadMagic { found: [1, 0] });
    bytes[0] = 0;
    bytes[1] = 0x1f;
    assert_eq!(parse_err(&bytes), IdxError::BadMagic { found: [0, 0x1f] });
}

#[test]
fn unknown_type() {
    for code in [0x00, 0x07, 0x0A, 0x0F, 0xFF] {
        let bytes = idx_bytes(code, &[1], &[5]);
        assert_eq!(parse_err(&bytes), IdxError::UnknownType { code });
    }
}

#[test]
fn bad_dim_count() {
    for ndim in [0u8, MAX_DIMS + 1, 200, 255] {
        let mut bytes = vec![0, 0, 8, ndim];
        bytes.resize(4 + 4 * ndim as usize + 1, 1);
        assert_eq!(
            parse_err(&bytes),
            IdxError::BadDimCount {
                ndim,
                max: MAX_DIMS
            }
        );
    }
}

#[test]
fn header_truncated() {
    // 3 dimensions need 16 header bytes; give 8, then 15.
    let full = idx_bytes(0x08, &[1, 1, 1], &[0]);
    for len in [4usize, 8, 15] {
        assert_eq!(
            parse_err(&full[..len]),
            IdxError::HeaderTruncated {
                ndim: 3,
                needed: 16,
                len: len as u64
            }
        );
        assert!(idx::parse_header(&full[..len]).is_err());
    }
    assert!(idx::parse_header(&full[..16]).is_ok());
}

#[test]
fn size_overflow() {
    // (2^32 - 1)^3 ≈ 2^96 elements: overflows u64 for any element size, even with no data.
    for code in [0x08, 0x0E] {
        let bytes = idx_bytes(code, &[u32::MAX; 3], &[]);
        assert_eq!(bytes.len(), 16);
        let elem_size = ElemType::from_code(code).unwrap().size() as u8;
        let expected = IdxError::SizeOverflow {
            dims: vec![u32::MAX; 3],
            elem_size,
        };
        assert_eq!(parse_err(&bytes), expected);
        assert_eq!(idx::parse_header(&bytes), Err(expected));
    }
    // 2^32 · 2^31 · 8 = 2^66: the element size alone pushes it over.
    let bytes = idx_bytes(0x0E, &[u32::MAX, 1 << 31], &[]);
    assert!(matches!(
        parse_err(&bytes),
        IdxError::SizeOverflow { elem_size: 8, .. }
    ));
    // One less factor fits: 2^32 · 2^31 bytes of u8 is declared, and merely truncated.
    let bytes = idx_bytes(0x08, &[u32::MAX, 1 << 31], &[]);
    assert!(matches!(parse_err(&bytes), IdxError::Truncated { .. }));
}

#[test]
fn truncated() {
    // A header declaring 2^48 bytes followed by 3: rejected from the header alone.
    let bytes = idx_bytes(0x08, &[1 << 16, 1 << 16, 1 << 16], &[1, 2, 3]);
    assert_eq!(
        parse_err(&bytes),
        IdxError::Truncated {
            declared: 1 << 48,
            available: 3
        }
    );
    // 2 f64 need 16 bytes; 15 present.
    let bytes = idx_bytes(0x0E, &[2], &[0; 15]);
    assert_eq!(
        parse_err(&bytes),
        IdxError::Truncated {
            declared: 16,
            available: 15
        }
    );
    // Header only.
    let bytes = idx_bytes(0x08, &[1], &[]);
    assert_eq!(
        parse_err(&bytes),
        IdxError::Truncated {
            declared: 1,
            available: 0
        }
    );
}

#[test]
fn trailing_bytes() {
    let bytes = idx_bytes(0x0B, &[2, 2], &[0; 11]);
    assert_eq!(
        parse_err(&bytes),
        IdxError::TrailingBytes {
            declared: 8,
            extra: 3
        }
    );
    // A zero dimension declares no data.
    let bytes = idx_bytes(0x08, &[3, 0], &[9]);
    assert_eq!(
        parse_err(&bytes),
        IdxError::TrailingBytes {
            declared: 0,
            extra: 1
        }
    );
    assert!(idx::parse(&bytes[..12]).unwrap().is_empty());
}

#[test]
fn wrong_type() {
    let bytes = idx_bytes(0x0B, &[1], &[0, 1]);
    let view = idx::parse(&bytes).unwrap();
    assert_eq!(
        view.as_u8(),
        Err(IdxError::WrongType {
            expected: "u8",
            found: "i16"
        })
    );
    // A dataset needs u8 images and labels.
    let images = IdxFile::from_bytes(idx_bytes(0x09, &[1, 1, 1], &[0])).unwrap();
    let labels = IdxFile::from_bytes(idx_bytes(0x08, &[1], &[0])).unwrap();
    let err = Dataset::from_idx(images, labels).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Idx {
                kind: IdxError::WrongType {
                    expected: "u8",
                    found: "i8"
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("<bytes>"), "{err}");
}

#[test]
fn wrong_shape() {
    let cases: [(&[u32], &[u32]); 4] = [
        (&[2, 2], &[2]),       // images with 2 dims
        (&[1, 0, 3], &[1]),    // zero rows
        (&[1, 3, 0], &[1]),    // zero cols
        (&[1, 1, 1], &[1, 1]), // labels with 2 dims
    ];
    for (image_dims, label_dims) in cases {
        let n_img = image_dims.iter().product::<u32>() as usize;
        let n_lab = label_dims.iter().product::<u32>() as usize;
        let images = IdxFile::from_bytes(idx_bytes(0x08, image_dims, &vec![0; n_img])).unwrap();
        let labels = IdxFile::from_bytes(idx_bytes(0x08, label_dims, &vec![0; n_lab])).unwrap();
        match Dataset::from_idx(images, labels) {
            Err(Error::Idx {
                kind: IdxError::WrongShape { found, .. },
                ..
            }) => {
                assert!(found == image_dims || found == label_dims, "{found:?}");
            }
            other => panic!("{image_dims:?} {label_dims:?}: {other:?}"),
        }
    }
}

#[test]
fn every_element_type_decodes_big_endian() {
    let cases: [(u8, Vec<u8>, Vec<f64>); 6] = [
        (0x08, vec![0, 1, 0x80, 0xFF], vec![0.0, 1.0, 128.0, 255.0]),
        (0x09, vec![0, 1, 0x80, 0xFF], vec![0.0, 1.0, -128.0, -1.0]),
        (
            0x0B,
            vec![0x01, 0x02, 0x80, 0x00, 0xFF, 0xFE, 0x7F, 0xFF],
            vec![258.0, -32768.0, -2.0, 32767.0],
        ),
        (
            0x0C,
            [0x0102_0304u32, 0x8000_0000, 0xFFFF_FFFE, 0x7FFF_FFFF]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
            vec![16_909_060.0, -2_147_483_648.0, -2.0, 2_147_483_647.0],
        ),
        (
            0x0D,
            [1.5f32, -0.25, f32::MAX, 1e-40]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
            vec![1.5, -0.25, f64::from(f32::MAX), f64::from(1e-40f32)],
        ),
        (
            0x0E,
            [std::f64::consts::PI, -1e300, f64::MIN_POSITIVE, 0.0]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect(),
            vec![std::f64::consts::PI, -1e300, f64::MIN_POSITIVE, 0.0],
        ),
    ];
    for (code, data, expected) in cases {
        let bytes = idx_bytes(code, &[2, 2], &data);
        let view = idx::parse(&bytes).unwrap();
        let elem = ElemType::from_code(code).unwrap();
        assert_eq!(view.elem(), elem);
        assert_eq!(view.len(), 4);
        assert_eq!(view.data(), &data[..]);
        assert_eq!(view.iter_f64().len(), 4);
        assert_eq!(view.to_f64_vec(), expected, "{}", elem.name());
        assert_eq!(view.as_u8().is_ok(), elem == ElemType::U8);
    }
}

#[test]
fn random_valid_headers_round_trip() {
    let key = StreamKey::new(2024);
    let mut j = 0u64;
    let mut next = |bound: u32| {
        j += 1;
        ((u64::from(key.draw(j)) * u64::from(bound)) >> 32) as u32
    };
    for case in 0..2000 {
        let elem = ElemType::ALL[next(6) as usize];
        let ndim = 1 + next(u32::from(MAX_DIMS)) as usize;
        // Half the cases: small dims with data present; the others: any u32 dims, header only.
        let small = case % 2 == 0;
        let dims: Vec<u32> = (0..ndim)
            .map(|_| if small { 1 + next(3) } else { next(u32::MAX) })
            .collect();
        let header = match IdxHeader::new(elem, dims.clone()) {
            Ok(h) => h,
            Err(e) => {
                assert!(matches!(e, IdxError::SizeOverflow { .. }), "{e:?}");
                let bytes = idx_bytes(elem.code(), &dims, &[]);
                assert_eq!(idx::parse_header(&bytes), Err(e));
                continue;
            }
        };
        let encoded = header.encode();
        assert_eq!(encoded, idx_bytes(elem.code(), &dims, &[]));
        assert_eq!(encoded.len(), header.header_len);
        assert_eq!(idx::parse_header(&encoded).as_ref(), Ok(&header));
        if small {
            let mut file = encoded;
            let n = header.data_len as usize;
            file.extend((0..n).map(|_| next(256) as u8));
            let view = idx::parse(&file).unwrap();
            assert_eq!(view.header(), &header);
            assert_eq!(view.len() as u64, header.num_elements());
            assert_eq!(view.iter_f64().count(), view.len());
            file.push(0);
            assert!(matches!(
                parse_err(&file),
                IdxError::TrailingBytes { extra: 1, .. }
            ));
            file.truncate(file.len() - 2);
            assert!(matches!(parse_err(&file), IdxError::Truncated { .. }));
        }
    }
}

#[test]
fn raw_file_is_read_or_mapped_and_gz_file_matches() {
    let dir = TempDir::new("idx-files");
    let bytes = idx_bytes(0x0C, &[3, 2], &(0..24).collect::<Vec<u8>>());
    let raw_path = dir.write("a-idx2-int", &bytes);
    let gz = dir.write("a-idx2-int.gz", &gzip(&bytes));
    let raw = IdxFile::open(&raw_path).unwrap();
    let mapped = IdxFile::open_mapped(&raw_path).unwrap();
    let gz = IdxFile::open(&gz).unwrap();
    assert!(!raw.is_mapped() && mapped.is_mapped());
    assert!(!gz.is_mapped());
    for file in [&raw, &mapped, &gz] {
        assert_eq!(file.bytes(), &bytes[..]);
        assert_eq!(file.header(), gz.header());
        assert_eq!(file.view().to_f64_vec(), gz.view().to_f64_vec());
        assert_eq!(file.data(), &bytes[12..]);
    }
}

#[test]
fn a_raw_file_read_is_not_affected_when_the_file_is_truncated_later() {
    let dir = TempDir::new("idx-truncated-later");
    let bytes = idx_bytes(0x08, &[4, 1000], &vec![7u8; 4000]);
    let path = dir.write("a-idx2-ubyte", &bytes);
    let file = IdxFile::open(&path).unwrap();
    // Another program truncates the file while it is in use: a mapped file would raise
    // SIGBUS on the next read of its lost pages; the bytes read stay as they were.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert!(file.data().iter().all(|&b| b == 7));
    assert_eq!(file.data().len(), 4000);
    // Opened again, the short file is refused with its sizes.
    let err = IdxFile::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Idx {
                kind: IdxError::Truncated {
                    declared: 4000,
                    available: 88
                },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_raw_file_is_checked_against_its_size_before_its_data_are_read() {
    let dir = TempDir::new("idx-size-first");
    // A header that declares 2^32 - 1 rows of 2^16 - 1 bytes over a 20-byte file: refused
    // from the header and the file's size, without reserving the declared terabytes.
    let mut bytes = vec![0, 0, 0x08, 2];
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    bytes.extend_from_slice(&65_535u32.to_be_bytes());
    bytes.extend_from_slice(&[1; 8]);
    let path = dir.write("huge-idx2-ubyte", &bytes);
    for open in [IdxFile::open, IdxFile::open_mapped] {
        let err = open(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Idx { kind: IdxError::Truncated { available: 8, .. }, path: p } if *p == path),
            "{err}"
        );
    }
    // One byte too many is trailing, read or mapped.
    let mut long = idx_bytes(0x08, &[2], &[1, 2]);
    long.push(0);
    let path = dir.write("long-idx1-ubyte", &long);
    for open in [IdxFile::open, IdxFile::open_mapped] {
        assert!(matches!(
            open(&path),
            Err(Error::Idx {
                kind: IdxError::TrailingBytes { extra: 1, .. },
                ..
            })
        ));
    }
}

#[test]
fn file_errors_carry_the_path() {
    let dir = TempDir::new("idx-errors");
    let empty = dir.write("empty", &[]);
    assert_eq!(open_err(&empty), IdxError::TooShort { len: 0 });
    let empty_gz = dir.write("empty.gz", &gzip(&[]));
    assert_eq!(open_err(&empty_gz), IdxError::TooShort { len: 0 });
    let trailing = dir.write("trailing", &idx_bytes(0x08, &[1], &[1, 2]));
    assert!(matches!(
        open_err(&trailing),
        IdxError::TrailingBytes { extra: 1, .. }
    ));
    let short_gz = dir.write("short.gz", &gzip(&idx_bytes(0x08, &[1, 1, 1], &[])[..9]));
    assert!(matches!(
        open_err(&short_gz),
        IdxError::HeaderTruncated {
            ndim: 3,
            len: 9,
            ..
        }
    ));
    // A well-formed gzip stream whose content is shorter than declared.
    let data_gz = dir.write("data.gz", &gzip(&idx_bytes(0x08, &[100], &[7; 60])));
    assert_eq!(
        open_err(&data_gz),
        IdxError::Truncated {
            declared: 100,
            available: 60
        }
    );
    let magic_gz = dir.write("magic.gz", &gzip(&[1, 2, 3, 4, 5]));
    assert_eq!(open_err(&magic_gz), IdxError::BadMagic { found: [1, 2] });
}

#[test]
fn gzip_corrupt_or_truncated() {
    let dir = TempDir::new("idx-gzip");
    let payload: Vec<u8> = (0..5000u32).map(|k| (k * 31 % 251) as u8).collect();
    let stream = gzip(&idx_bytes(0x08, &[5000], &payload));
    // Cut inside the deflate data, inside the trailer, and just before its last byte.
    for cut in [stream.len() / 2, stream.len() - 6, stream.len() - 1] {
        let path = dir.write(&format!("cut{cut}.gz"), &stream[..cut]);
        let kind = open_err(&path);
        assert!(matches!(kind, IdxError::Gzip(_)), "cut at {cut}: {kind:?}");
    }
    // A flipped CRC byte.
    let mut bad_crc = stream.clone();
    let crc_at = bad_crc.len() - 8;
    bad_crc[crc_at] ^= 0xFF;
    let path = dir.write("crc.gz", &bad_crc);
    assert!(matches!(open_err(&path), IdxError::Gzip(_)));
    // Not gzip at all, under a .gz name.
    let path = dir.write("plain.gz", &idx_bytes(0x08, &[1], &[1]));
    assert!(matches!(open_err(&path), IdxError::Gzip(_)));
    // The intact stream opens.
    let path = dir.write("ok.gz", &stream);
    assert_eq!(IdxFile::open(&path).unwrap().data(), &payload[..]);
}

#[test]
fn inflates_too_long() {
    // A valid header for 10 bytes followed by 10 MB of zeros.
    let dir = TempDir::new("idx-bomb");
    let mut bomb = idx_bytes(0x08, &[10], &[]);
    bomb.resize(bomb.len() + (10 << 20), 0);
    let path = dir.write("bomb.gz", &gzip(&bomb));
    assert_eq!(
        open_err(&path),
        IdxError::InflatesTooLong { declared: 8 + 10 }
    );
}
