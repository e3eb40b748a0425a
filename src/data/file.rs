//! IDX files on disk: read into memory (raw files, after their header has been checked
//! against the file's size), inflated into memory (gzip'd files), or — on request, with
//! [`IdxFile::open_mapped`] — memory-mapped.
//!
//! This is the only module that maps files. Every constructor validates the whole file with
//! [`idx::parse`] before handing out any view, so every [`IdxView`] it gives is of a file
//! whose length matches its header exactly.
//!
//! gzip'd IDX data goes through one function whatever its source: [`IdxFile::open`] (a `.gz`
//! path), [`IdxFile::from_gzip_reader`] (any [`Read`]) and [`IdxFile::from_gzip_bytes`] (the
//! entry point fuzzed in `fuzz/`) all inflate with the same bounded reader, whose buffer never
//! grows past the size the IDX header declares nor much past the bytes actually inflated.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::idx::{self, IdxHeader, IdxView, MAGIC_LEN};
use crate::error::{DatasetError, Error, IdxError, Result};

/// The path reported for data that did not come from a file ([`IdxFile::from_bytes`]).
pub const IN_MEMORY: &str = "<bytes>";

/// Bytes inflated per read from a gzip stream (a stack buffer).
const GZ_CHUNK: usize = 64 * 1024;

/// The first reservation for inflated bytes; the buffer then doubles as data arrives, capped
/// at the declared size, so a header that declares far more than its stream holds costs
/// memory in proportion to the stream, not to the declaration.
const GZ_FIRST_RESERVE: usize = 1 << 20;

/// Where the bytes of an [`IdxFile`] live.
#[derive(Debug)]
enum Storage {
    /// A raw file, mapped read-only ([`IdxFile::open_mapped`]).
    Mapped(Mmap),
    /// A raw file read, an inflated `.gz` file, or bytes handed over by the caller.
    Owned(Vec<u8>),
}

/// How [`IdxFile`] holds a raw file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Read into memory: a file changed later cannot affect the run.
    Read,
    /// Mapped: no copy, but the file must stay as it is while mapped.
    Map,
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A validated IDX file: its header and its bytes (header and data), in memory (read or
/// inflated by [`open`](Self::open), or given to [`from_bytes`](Self::from_bytes)) or
/// memory-mapped ([`open_mapped`](Self::open_mapped)).
#[derive(Debug)]
pub struct IdxFile {
    path: PathBuf,
    header: IdxHeader,
    storage: Storage,
}

impl IdxFile {
    /// Opens and validates an IDX file, reading it into memory: a path ending in `.gz` is
    /// inflated (its buffer is sized by the IDX header, and a stream that inflates past the
    /// declared size is rejected without reading further); any other file's header is
    /// checked against the file's size before its data are read. Nothing that happens to the
    /// file afterwards (another program rewriting or truncating it) can affect the bytes
    /// returned.
    ///
    /// # Errors
    /// [`Error::Dataset`] with [`DatasetError::IsDirectory`] for a folder (or
    /// [`DatasetError::NotAFile`] for a FIFO, a device…), [`Error::Io`] when the file cannot
    /// be opened or read (kind `OutOfMemory` when its declared size cannot be held),
    /// [`Error::Idx`] when its contents (or its gzip stream) are not a valid IDX file, or
    /// when it changed size while it was read. Every error carries `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<IdxFile> {
        Self::open_as(path.as_ref(), Access::Read)
    }

    /// Opens and validates an IDX file as [`open`](Self::open) does, but maps a raw file
    /// instead of reading it: no copy and no up-front read, for datasets larger than memory
    /// would comfortably hold. A `.gz` file is inflated into memory as by `open`.
    ///
    /// # Assumption on mapped files
    /// A raw file is mapped read-only and read in place. The file must not be modified or
    /// truncated by anyone (this process or another) while the returned `IdxFile` is alive:
    /// the header was validated at open time, and a change under the mapping would make the
    /// data change under shared references, or — if the file is truncated — make reading it
    /// end the process with the signal `SIGBUS`, which no error can report. Use
    /// [`open`](Self::open) when that may happen.
    ///
    /// # Errors
    /// Those of [`open`](Self::open).
    pub fn open_mapped(path: impl AsRef<Path>) -> Result<IdxFile> {
        Self::open_as(path.as_ref(), Access::Map)
    }

    fn open_as(path: &Path, access: Access) -> Result<IdxFile> {
        let is_dir = |meta: &std::fs::Metadata| {
            meta.is_dir().then(|| Error::Dataset {
                path: path.to_path_buf(),
                kind: DatasetError::IsDirectory,
            })
        };
        // Checked before opening too: some platforms refuse to open a folder as a file.
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if let Some(e) = is_dir(&meta) {
            return Err(e);
        }
        // Opening a FIFO blocks until a writer appears; a device may never end.
        if !meta.is_file() {
            return Err(Error::Dataset {
                path: path.to_path_buf(),
                kind: DatasetError::NotAFile,
            });
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if let Some(e) = is_dir(&meta) {
            return Err(e);
        }
        if path.extension().is_some_and(|e| e == "gz") {
            return Self::from_gzip_reader(file, path);
        }
        let storage = match access {
            Access::Read => Storage::Owned(read_raw(path, file, meta.len())?),
            Access::Map => map(path, &file, meta.len())?,
        };
        Self::validate(path.to_path_buf(), storage)
    }

    /// Inflates and validates a gzip'd IDX file read from `reader`, as [`open`](Self::open)
    /// does for a `.gz` path; errors name `path`.
    ///
    /// The stream may hold several gzip members (as `cat a.gz b.gz` writes); the IDX data is
    /// their concatenation. The buffer is sized by the IDX header and only grows as inflated
    /// data arrives (doubling, capped at the declared size), and inflating stops one byte past
    /// the declared size, so memory stays below the declared size however far the stream
    /// would inflate (a gzip bomb) and near the stream's real content however much its
    /// header declares.
    ///
    /// # Errors
    /// [`Error::Idx`] with [`IdxError::Gzip`] for a corrupt or truncated gzip stream (or bytes
    /// after its last member), [`IdxError::InflatesTooLong`] for a stream that inflates past
    /// its declared size, and the errors of [`idx::parse`] for the inflated bytes;
    /// [`Error::Io`] when `reader` fails, or (kind `OutOfMemory`) when the data that actually
    /// inflates cannot be held in memory.
    pub fn from_gzip_reader(reader: impl Read, path: impl Into<PathBuf>) -> Result<IdxFile> {
        let path = path.into();
        let bytes = inflate(&path, reader)?;
        Self::validate(path, Storage::Owned(bytes))
    }

    /// Reads and validates a raw IDX stream of `len` bytes (a file's size, a length sent
    /// ahead of the data) from `reader`, as [`open`](Self::open) reads a raw file: the header
    /// first, checked against `len` before anything is allocated, then exactly the declared
    /// bytes; errors name `path`. For a stream that really holds `len` bytes the result is
    /// that of [`from_bytes`](Self::from_bytes) on them, errors included.
    ///
    /// # Errors
    /// [`Error::Idx`] for an invalid header, a `len` other than the header's size, or a stream
    /// shorter ([`IdxError::Truncated`]) or longer ([`IdxError::TrailingBytes`]) than `len`;
    /// [`Error::Io`] when `reader` fails, or (kind `OutOfMemory`) when the declared size
    /// cannot be held in memory.
    pub fn from_raw_reader(
        reader: impl Read,
        len: u64,
        path: impl Into<PathBuf>,
    ) -> Result<IdxFile> {
        let path = path.into();
        let bytes = read_raw(&path, reader, len)?;
        Self::validate(path, Storage::Owned(bytes))
    }

    /// Inflates and validates gzip'd IDX bytes held in memory (see
    /// [`from_gzip_reader`](Self::from_gzip_reader)); errors report the path `<bytes>`.
    ///
    /// # Errors
    /// Those of [`from_gzip_reader`](Self::from_gzip_reader).
    pub fn from_gzip_bytes(gzip: &[u8]) -> Result<IdxFile> {
        Self::from_gzip_reader(gzip, IN_MEMORY)
    }

    /// Validates IDX bytes held in memory; errors report the path `<bytes>`.
    ///
    /// # Errors
    /// [`Error::Idx`] when `bytes` are not a valid IDX file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<IdxFile> {
        Self::validate(PathBuf::from(IN_MEMORY), Storage::Owned(bytes))
    }

    fn validate(path: PathBuf, storage: Storage) -> Result<IdxFile> {
        let parsed = idx::parse(storage.bytes()).map(|v| v.header().clone());
        match parsed {
            Ok(header) => Ok(IdxFile {
                path,
                header,
                storage,
            }),
            Err(kind) => Err(Error::Idx { path, kind }),
        }
    }

    /// The path the file was opened from (`<bytes>` for [`from_bytes`](Self::from_bytes)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &IdxHeader {
        &self.header
    }

    /// The validated array: header and data.
    pub fn view(&self) -> IdxView<'_> {
        IdxView::from_parts(&self.header, self.data())
    }

    /// The whole file as the parser saw it (inflated for `.gz`): `header_len + data_len` bytes.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The data bytes after the header: `data_len` bytes, big-endian elements.
    pub fn data(&self) -> &[u8] {
        // In range: `validate` checked that the length is header_len + data_len.
        &self.storage.bytes()[self.header.header_len..]
    }

    /// Whether the bytes are a memory map of the file (raw files opened with
    /// [`open_mapped`](Self::open_mapped)) rather than a buffer.
    pub fn is_mapped(&self) -> bool {
        matches!(self.storage, Storage::Mapped(_))
    }
}

/// Reads a raw IDX file of `len` bytes (its size when opened): the header first, checked
/// against `len`, then exactly the declared data into a buffer reserved once. Nothing past
/// `len` is read but one byte, to report a file that grew as having trailing bytes; a file
/// that shrank is reported as truncated.
fn read_raw(path: &Path, mut stream: impl Read, len: u64) -> Result<Vec<u8>> {
    let mut file = (&mut stream).take(len);
    let idx_err = |kind| Error::Idx {
        path: path.to_path_buf(),
        kind,
    };
    let io_err = |e| Error::io(path, e);
    let mut head = [0u8; MAGIC_LEN + 4 * idx::MAX_DIMS as usize];
    let got = read_full(&mut file, &mut head[..MAGIC_LEN]).map_err(io_err)?;
    if got == 0 {
        return Err(idx_err(IdxError::TooShort { len: 0 }));
    }
    let header_len = idx::header_len(&head[..got]).map_err(idx_err)?;
    let got = MAGIC_LEN + read_full(&mut file, &mut head[MAGIC_LEN..header_len]).map_err(io_err)?;
    let header = idx::parse_header(&head[..got]).map_err(idx_err)?;
    // The size the file has against the size its header declares, before any allocation.
    let available = len.saturating_sub(header.header_len as u64);
    if available != header.data_len {
        let err = if available < header.data_len {
            IdxError::Truncated {
                declared: header.data_len,
                available,
            }
        } else {
            IdxError::TrailingBytes {
                declared: header.data_len,
                extra: available - header.data_len,
            }
        };
        return Err(idx_err(err));
    }
    let total = header.total_len().map_err(idx_err)?;
    let mut buf = Vec::new();
    let reserved = usize::try_from(total)
        .ok()
        .and_then(|size| buf.try_reserve_exact(size).ok());
    if reserved.is_none() {
        let msg = format!(
            "cannot reserve {total} bytes to read the file into memory (a file this large can be memory-mapped instead: IdxFile::open_mapped)"
        );
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::OutOfMemory, msg),
        ));
    }
    buf.extend_from_slice(&head[..header_len]);
    let read = (&mut file)
        .take(header.data_len)
        .read_to_end(&mut buf)
        .map_err(io_err)? as u64;
    if read < header.data_len {
        return Err(idx_err(IdxError::Truncated {
            declared: header.data_len,
            available: read,
        }));
    }
    // A file that grew while it was read: at least one byte more than declared.
    if read_full(&mut stream, &mut [0u8; 1]).map_err(io_err)? != 0 {
        return Err(idx_err(IdxError::TrailingBytes {
            declared: header.data_len,
            extra: 1,
        }));
    }
    Ok(buf)
}

/// Maps a raw file of `len` bytes; an empty file is reported as too short without mapping
/// (some platforms refuse zero-length maps).
fn map(path: &Path, file: &File, len: u64) -> Result<Storage> {
    if len == 0 {
        return Err(Error::Idx {
            path: path.to_path_buf(),
            kind: IdxError::TooShort { len: 0 },
        });
    }
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes change (or fault, if the file is
    // truncated) when the file is modified while mapped, which would break the immutability
    // that `&[u8]` promises. We assume, as documented on `IdxFile::open`, that dataset files
    // are not modified or truncated while an `IdxFile` maps them. The map is read-only and is
    // owned by the `IdxFile`, so no slice of it outlives the mapping.
    let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    Ok(Storage::Mapped(map))
}

/// Inflates a gzip'd IDX stream into a buffer of at most the size its IDX header declares.
fn inflate(path: &Path, reader: impl Read) -> Result<Vec<u8>> {
    let idx_err = |kind| Error::Idx {
        path: path.to_path_buf(),
        kind,
    };
    let mut gz = flate2::read::MultiGzDecoder::new(reader);
    let mut head = [0u8; MAGIC_LEN + 4 * idx::MAX_DIMS as usize];
    let got = read_full(&mut gz, &mut head[..MAGIC_LEN]).map_err(|e| gz_error(path, e))?;
    let header_len = idx::header_len(&head[..got]).map_err(idx_err)?;
    let got = MAGIC_LEN
        + read_full(&mut gz, &mut head[MAGIC_LEN..header_len]).map_err(|e| gz_error(path, e))?;
    let header = idx::parse_header(&head[..got]).map_err(idx_err)?;
    let total = header.total_len().map_err(idx_err)?;
    let mut buf = allocate(path, total)?;
    buf.extend_from_slice(&head[..header_len]);
    read_data(&mut gz, &mut buf, header.data_len, total).map_err(|e| gz_error(path, e))?;
    let available = (buf.len() - header_len) as u64;
    if available < header.data_len {
        return Err(idx_err(IdxError::Truncated {
            declared: header.data_len,
            available,
        }));
    }
    // One more byte would be past the declared size. Reading to the end also makes the
    // decoder check the gzip trailer (CRC and length).
    if read_full(&mut gz, &mut [0u8; 1]).map_err(|e| gz_error(path, e))? != 0 {
        return Err(idx_err(IdxError::InflatesTooLong { declared: total }));
    }
    Ok(buf)
}

/// An empty buffer for a file of `total` bytes (header and data), with capacity for all of it
/// when small and for [`GZ_FIRST_RESERVE`] bytes otherwise: [`read_data`] grows it as data
/// arrives, so a declared size is never reserved on trust.
fn allocate(path: &Path, total: u64) -> Result<Vec<u8>> {
    let first = usize::try_from(total).map_or(GZ_FIRST_RESERVE, |t| t.min(GZ_FIRST_RESERVE));
    let mut buf = Vec::new();
    buf.try_reserve_exact(first).map_err(|_| {
        let msg = format!("cannot reserve {first} bytes for the inflated data");
        Error::io(path, io::Error::new(io::ErrorKind::OutOfMemory, msg))
    })?;
    Ok(buf)
}

/// Appends up to `len` inflated bytes to `buf` (stops early at the end of the stream),
/// growing `buf` as data arrives: its capacity doubles, never past `total`
/// (`buf.len() + len ≤ total`). An out-of-memory I/O error when the data that actually
/// arrives cannot be held.
fn read_data(r: &mut impl Read, buf: &mut Vec<u8>, len: u64, total: u64) -> io::Result<()> {
    let cap = usize::try_from(total).unwrap_or(usize::MAX);
    let mut chunk = [0u8; GZ_CHUNK];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(GZ_CHUNK, |l| l.min(GZ_CHUNK));
        let n = read_full(r, &mut chunk[..want])?;
        grow(buf, n, cap)?;
        buf.extend_from_slice(&chunk[..n]);
        if n < want {
            break;
        }
        left -= n as u64;
    }
    Ok(())
}

/// Makes room in `buf` for `additional` more bytes: doubles the capacity (or more, if
/// needed), but never past `cap`. An out-of-memory I/O error if the allocator refuses (or
/// the size exceeds `isize::MAX`).
fn grow(buf: &mut Vec<u8>, additional: usize, cap: usize) -> io::Result<()> {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return Ok(());
    }
    let target = buf
        .capacity()
        .saturating_mul(2)
        .max(needed)
        .min(cap.max(needed));
    buf.try_reserve_exact(target - buf.len()).map_err(|_| {
        let msg = format!("cannot grow the inflated data to {target} bytes");
        io::Error::new(io::ErrorKind::OutOfMemory, msg)
    })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A read error of the gzip decoder: corrupt or truncated streams become
/// [`IdxError::Gzip`], anything else (the disk) stays an I/O error.
fn gz_error(path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            Error::Idx {
                path: path.to_path_buf(),
                kind: IdxError::Gzip(e.to_string()),
            }
        }
        _ => Error::io(path, e),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Regression: the buffer was reserved at the declared size before any data arrived (256
    /// TiB for a 40-byte stream claiming 2⁴⁸ bytes: an out-of-memory error at best, a huge
    /// virtual reservation at worst). It now starts small and doubles as data arrives.
    #[test]
    fn buffer_starts_small_and_grows_to_exactly_the_declared_size() {
        let path = Path::new(IN_MEMORY);
        assert_eq!(
            allocate(path, 1 << 48).unwrap().capacity(),
            GZ_FIRST_RESERVE
        );
        assert_eq!(allocate(path, 20).unwrap().capacity(), 20);

        let total = 3 * GZ_FIRST_RESERVE as u64 + 5;
        let data = vec![7u8; total as usize];
        let mut buf = allocate(path, total).unwrap();
        read_data(&mut &data[..], &mut buf, total, total).unwrap();
        assert_eq!(buf.len() as u64, total);
        // 1 MiB, 2 MiB, then capped at the declared size rather than doubled to 4 MiB.
        assert_eq!(buf.capacity() as u64, total);
    }

    #[test]
    fn growth_never_passes_the_cap() {
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(&[1; 8]);
        grow(&mut buf, 1, 12).unwrap();
        assert_eq!(buf.capacity(), 12);
        buf.extend_from_slice(&[1; 4]);
        grow(&mut buf, 0, 12).unwrap();
        assert_eq!(buf.capacity(), 12);
    }

    /// Regression: bytes after the gzip member were ignored (flate2's `GzDecoder` reads one
    /// member), so a file with garbage after its stream loaded as if clean.
    #[test]
    fn bytes_after_the_last_member_are_a_gzip_error() {
        let plain = [0, 0, 8, 1, 0, 0, 0, 2, 5, 6];
        let gz = gzip(&plain);
        assert_eq!(IdxFile::from_gzip_bytes(&gz).unwrap().bytes(), plain);
        let garbage = [gz.as_slice(), b"garbage after the stream"].concat();
        let err = IdxFile::from_gzip_bytes(&garbage).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Idx {
                    kind: IdxError::Gzip(_),
                    ..
                }
            ),
            "{err:?}"
        );
        // Concatenated members are one stream, as gzip(1) reads them.
        let two = [gzip(&plain[..3]), gzip(&plain[3..])].concat();
        assert_eq!(IdxFile::from_gzip_bytes(&two).unwrap().bytes(), plain);
    }
}
