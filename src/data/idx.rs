//! The IDX format, parsed from bytes.
//!
//! An IDX file is a 4-byte magic number, a list of big-endian `u32` dimensions and the data:
//!
//! ```text
//! offset  size     field
//! 0       2        0x00 0x00
//! 2       1        element type code (see ElemType)
//! 3       1        ndim, 1..=MAX_DIMS
//! 4       4·ndim   dims[0..ndim], big-endian u32
//! 4+4·ndim         product(dims) elements, big-endian, row-major (last dimension fastest)
//! ```
//!
//! The parsers here work on `&[u8]`, never panic on any input and never allocate an amount
//! derived from the input's declared sizes (the only allocation is the dimension list, at most
//! [`MAX_DIMS`] entries). Every size derived from the header is computed with checked
//! arithmetic, and a file is valid only if header + data is exactly its length.

use std::borrow::Cow;

use crate::error::IdxError;

/// The largest number of dimensions accepted (the format allows 255; no real file needs 8).
pub const MAX_DIMS: u8 = 8;

/// Bytes of the fixed prefix: two zero bytes, the type code, the dimension count.
pub const MAGIC_LEN: usize = 4;

/// The type of the elements of an IDX file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// Unsigned byte (code 0x08).
    U8,
    /// Signed byte (code 0x09).
    I8,
    /// Big-endian signed 16-bit integer (code 0x0B).
    I16,
    /// Big-endian signed 32-bit integer (code 0x0C).
    I32,
    /// Big-endian IEEE 754 single (code 0x0D).
    F32,
    /// Big-endian IEEE 754 double (code 0x0E).
    F64,
}

impl ElemType {
    /// Every element type, in code order.
    pub const ALL: [ElemType; 6] = [
        ElemType::U8,
        ElemType::I8,
        ElemType::I16,
        ElemType::I32,
        ElemType::F32,
        ElemType::F64,
    ];

    /// Bytes per element: 1, 1, 2, 4, 4 or 8.
    pub const fn size(self) -> usize {
        match self {
            ElemType::U8 | ElemType::I8 => 1,
            ElemType::I16 => 2,
            ElemType::I32 | ElemType::F32 => 4,
            ElemType::F64 => 8,
        }
    }

    /// The Rust name of the element type (`"u8"`, `"i8"`, `"i16"`, `"i32"`, `"f32"`, `"f64"`).
    pub const fn name(self) -> &'static str {
        match self {
            ElemType::U8 => "u8",
            ElemType::I8 => "i8",
            ElemType::I16 => "i16",
            ElemType::I32 => "i32",
            ElemType::F32 => "f32",
            ElemType::F64 => "f64",
        }
    }

    /// The type code stored in byte 2 of the magic number.
    pub const fn code(self) -> u8 {
        match self {
            ElemType::U8 => 0x08,
            ElemType::I8 => 0x09,
            ElemType::I16 => 0x0B,
            ElemType::I32 => 0x0C,
            ElemType::F32 => 0x0D,
            ElemType::F64 => 0x0E,
        }
    }

    /// The element type of a type code, or `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<ElemType> {
        match code {
            0x08 => Some(ElemType::U8),
            0x09 => Some(ElemType::I8),
            0x0B => Some(ElemType::I16),
            0x0C => Some(ElemType::I32),
            0x0D => Some(ElemType::F32),
            0x0E => Some(ElemType::F64),
            _ => None,
        }
    }

    /// Decodes one big-endian element to `f64` (exact for every type).
    ///
    /// `bytes` must hold exactly [`size`](Self::size) bytes; a slice of another length
    /// decodes as `NaN` (never happens for chunks taken from an [`IdxView`]).
    pub fn decode_f64(self, bytes: &[u8]) -> f64 {
        fn be<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
            bytes.try_into().ok()
        }
        let value = match self {
            ElemType::U8 => be::<1>(bytes).map(|b| f64::from(b[0])),
            ElemType::I8 => be::<1>(bytes).map(|b| f64::from(i8::from_be_bytes(b))),
            ElemType::I16 => be::<2>(bytes).map(|b| f64::from(i16::from_be_bytes(b))),
            ElemType::I32 => be::<4>(bytes).map(|b| f64::from(i32::from_be_bytes(b))),
            ElemType::F32 => be::<4>(bytes).map(|b| f64::from(f32::from_be_bytes(b))),
            ElemType::F64 => be::<8>(bytes).map(f64::from_be_bytes),
        };
        value.unwrap_or(f64::NAN)
    }
}

/// The parsed header of an IDX file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdxHeader {
    /// The element type.
    pub elem: ElemType,
    /// The dimensions, outermost first (`[n, rows, cols]` for an image file); 1 to
    /// [`MAX_DIMS`] entries.
    pub dims: Vec<u32>,
    /// Bytes of the header: `4 + 4 · dims.len()`.
    pub header_len: usize,
    /// Bytes of data declared: `product(dims) · elem.size()`.
    pub data_len: u64,
}

impl IdxHeader {
    /// The header of an array of `elem` with dimensions `dims`.
    ///
    /// # Errors
    /// [`IdxError::BadDimCount`] for 0 or more than [`MAX_DIMS`] dimensions,
    /// [`IdxError::SizeOverflow`] if the data size overflows `u64`.
    pub fn new(elem: ElemType, dims: Vec<u32>) -> Result<IdxHeader, IdxError> {
        let ndim = u8::try_from(dims.len()).unwrap_or(u8::MAX);
        if ndim == 0 || ndim > MAX_DIMS {
            return Err(IdxError::BadDimCount {
                ndim,
                max: MAX_DIMS,
            });
        }
        let data_len = data_len(elem, &dims)?;
        Ok(IdxHeader {
            elem,
            header_len: MAGIC_LEN + 4 * dims.len(),
            dims,
            data_len,
        })
    }

    /// The number of elements, `product(dims)`.
    pub fn num_elements(&self) -> u64 {
        // Cannot overflow: the product times the element size (≥ 1) fits in u64.
        self.data_len / self.elem.size() as u64
    }

    /// Bytes of the whole file, header and data: `header_len + data_len`.
    ///
    /// # Errors
    /// [`IdxError::SizeOverflow`] if the sum overflows `u64`.
    pub fn total_len(&self) -> Result<u64, IdxError> {
        (self.header_len as u64)
            .checked_add(self.data_len)
            .ok_or_else(|| self.overflow())
    }

    /// The header's bytes: magic number and dimension list (`header_len` bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len);
        out.extend_from_slice(&[0, 0, self.elem.code(), self.dims.len() as u8]);
        for d in &self.dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    fn overflow(&self) -> IdxError {
        IdxError::SizeOverflow {
            dims: self.dims.clone(),
            elem_size: self.elem.size() as u8,
        }
    }
}

/// `product(dims) · elem.size()` in checked `u64` arithmetic.
fn data_len(elem: ElemType, dims: &[u32]) -> Result<u64, IdxError> {
    dims.iter()
        .try_fold(elem.size() as u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .ok_or_else(|| IdxError::SizeOverflow {
            dims: dims.to_vec(),
            elem_size: elem.size() as u8,
        })
}

/// Validates the 4-byte magic number at the start of `bytes` and returns the header length it
/// implies, `4 + 4 · ndim`.
///
/// A streaming reader calls this on the first 4 bytes to learn how many more to read before
/// [`parse_header`].
///
/// # Errors
/// [`IdxError::TooShort`], [`IdxError::BadMagic`], [`IdxError::UnknownType`],
/// [`IdxError::BadDimCount`].
pub fn header_len(bytes: &[u8]) -> Result<usize, IdxError> {
    magic(bytes).map(|(_, ndim)| MAGIC_LEN + 4 * usize::from(ndim))
}

/// The element type and dimension count of the magic number at the start of `bytes`.
fn magic(bytes: &[u8]) -> Result<(ElemType, u8), IdxError> {
    let Some(&[m0, m1, code, ndim]) = bytes.first_chunk::<MAGIC_LEN>() else {
        return Err(IdxError::TooShort {
            len: bytes.len() as u64,
        });
    };
    if [m0, m1] != [0, 0] {
        return Err(IdxError::BadMagic { found: [m0, m1] });
    }
    let elem = ElemType::from_code(code).ok_or(IdxError::UnknownType { code })?;
    if ndim == 0 || ndim > MAX_DIMS {
        return Err(IdxError::BadDimCount {
            ndim,
            max: MAX_DIMS,
        });
    }
    Ok((elem, ndim))
}

/// Parses the header at the start of `bytes`; the data need not be present.
///
/// # Errors
/// Those of [`header_len`], then [`IdxError::HeaderTruncated`] if the dimension list is cut
/// short and [`IdxError::SizeOverflow`] if the declared data size overflows `u64`.
pub fn parse_header(bytes: &[u8]) -> Result<IdxHeader, IdxError> {
    let (elem, ndim) = magic(bytes)?;
    let header_len = MAGIC_LEN + 4 * usize::from(ndim);
    let Some(dim_bytes) = bytes.get(MAGIC_LEN..header_len) else {
        return Err(IdxError::HeaderTruncated {
            ndim,
            needed: header_len as u64,
            len: bytes.len() as u64,
        });
    };
    let dims: Vec<u32> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let data_len = data_len(elem, &dims)?;
    Ok(IdxHeader {
        elem,
        dims,
        header_len,
        data_len,
    })
}

/// Parses a whole IDX file: the header, and data of exactly the declared length.
///
/// # Errors
/// Those of [`parse_header`], then [`IdxError::Truncated`] if the data is shorter than
/// declared and [`IdxError::TrailingBytes`] if longer.
pub fn parse(bytes: &[u8]) -> Result<IdxView<'_>, IdxError> {
    let header = parse_header(bytes)?;
    let data = check_data(&header, bytes)?;
    Ok(IdxView {
        header: Cow::Owned(header),
        data,
    })
}

/// The data of `bytes` after `header`, if its length is exactly the declared one.
pub(crate) fn check_data<'a>(header: &IdxHeader, bytes: &'a [u8]) -> Result<&'a [u8], IdxError> {
    let data = bytes.get(header.header_len..).unwrap_or_default();
    let available = data.len() as u64;
    if available < header.data_len {
        return Err(IdxError::Truncated {
            declared: header.data_len,
            available,
        });
    }
    if available > header.data_len {
        return Err(IdxError::TrailingBytes {
            declared: header.data_len,
            extra: available - header.data_len,
        });
    }
    Ok(data)
}

/// A validated IDX array: its header and its data bytes (big-endian elements, row-major).
#[derive(Debug, Clone)]
pub struct IdxView<'a> {
    header: Cow<'a, IdxHeader>,
    data: &'a [u8],
}

impl<'a> IdxView<'a> {
    /// A view of `data` under `header`, trusted to have been checked by [`check_data`].
    pub(crate) fn from_parts(header: &'a IdxHeader, data: &'a [u8]) -> Self {
        debug_assert_eq!(data.len() as u64, header.data_len);
        IdxView {
            header: Cow::Borrowed(header),
            data,
        }
    }

    /// The header.
    pub fn header(&self) -> &IdxHeader {
        &self.header
    }

    /// The element type.
    pub fn elem(&self) -> ElemType {
        self.header.elem
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[u32] {
        &self.header.dims
    }

    /// The data bytes: `len() · elem().size()` bytes, big-endian elements.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The number of elements, `product(dims)`.
    pub fn len(&self) -> usize {
        self.data.len() / self.header.elem.size()
    }

    /// Whether the array has no elements (some dimension is 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The data as bytes, if the element type is `u8`.
    ///
    /// # Errors
    /// [`IdxError::WrongType`] for any other element type.
    pub fn as_u8(&self) -> Result<&'a [u8], IdxError> {
        match self.header.elem {
            ElemType::U8 => Ok(self.data),
            other => Err(IdxError::WrongType {
                expected: ElemType::U8.name(),
                found: other.name(),
            }),
        }
    }

    /// Every element, decoded to `f64` (exact for every element type), in storage order.
    pub fn iter_f64(&self) -> ElemsF64<'a> {
        ElemsF64 {
            chunks: self.data.chunks_exact(self.header.elem.size()),
            elem: self.header.elem,
        }
    }

    /// Every element, decoded to `f64`, collected (allocates `len()` values: as many as the
    /// input holds, never more).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.iter_f64().collect()
    }
}

/// Iterator over the elements of an [`IdxView`] as `f64`; see [`IdxView::iter_f64`].
#[derive(Debug, Clone)]
pub struct ElemsF64<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
    elem: ElemType,
}

impl Iterator for ElemsF64<'_> {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        self.chunks.next().map(|c| self.elem.decode_f64(c))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for ElemsF64<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for e in ElemType::ALL {
            assert_eq!(ElemType::from_code(e.code()), Some(e));
        }
        let known = (0..=255u8).filter(|&c| ElemType::from_code(c).is_some());
        assert_eq!(known.count(), 6);
    }

    #[test]
    fn decode_wrong_length_is_nan() {
        assert!(ElemType::I16.decode_f64(&[1]).is_nan());
        assert_eq!(ElemType::I16.decode_f64(&[0xff, 0xfe]), -2.0);
    }

    #[test]
    fn every_prefix_of_a_valid_file_is_an_error_not_a_panic() {
        let mut file = IdxHeader::new(ElemType::I16, vec![2, 3]).unwrap().encode();
        file.extend((0..12u8).map(|b| b.wrapping_mul(37)));
        assert_eq!(parse(&file).unwrap().len(), 6);
        for cut in 0..file.len() {
            assert!(parse(&file[..cut]).is_err(), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn header_new_rejects_bad_counts() {
        assert!(matches!(
            IdxHeader::new(ElemType::U8, vec![]),
            Err(IdxError::BadDimCount { ndim: 0, .. })
        ));
        assert!(matches!(
            IdxHeader::new(ElemType::U8, vec![1; 300]),
            Err(IdxError::BadDimCount { ndim: 255, .. })
        ));
    }
}
