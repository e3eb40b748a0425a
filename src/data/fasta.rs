//! Aligned sequences (multiple sequence alignments) in FASTA: categorical rows for models of
//! protein families, DNA or any table of symbols.
//!
//! A record is a header line starting with `>` (its name is the rest of the line, leading `>`
//! removed) followed by one or more sequence lines. Upper-case letters and the gap `-` are the
//! alignment's columns; lower-case letters and `.` are insertions (the A2M convention) and are
//! dropped; whitespace is ignored. Every record must then have the same number of columns,
//! and every column's symbol must be in the [`Alphabet`]: anything else is an [`MsaError`]
//! naming the record and the column. [`parse_msa`] works on bytes and never panics;
//! [`Msa::open`] reads a file, plain or gzip'd (by its magic bytes), a line at a time (lines
//! of at most [`MAX_LINE`] bytes, at most [`MAX_INFLATED`] bytes in all), so that memory is
//! the alignment's codes, not the file.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use rbm_kernels::StreamKey;

pub use crate::error::MsaError;
use crate::error::{Error, Result};

/// The most symbols an alphabet may have.
pub const MAX_SYMBOLS: usize = 64;

/// The most bytes a file may hold (inflated, for gzip): 4 GiB, a bound against gzip bombs.
pub const MAX_INFLATED: u64 = 1 << 32;

/// The longest line a file may have (16 MiB): a sequence on one line of up to 16 million
/// columns, or a name; a longer run without a newline is not an alignment.
pub const MAX_LINE: usize = 1 << 24;

/// The symbols of a categorical variable, in the order of their codes `0..q`.
///
/// ```
/// use rbm::data::fasta::Alphabet;
/// let protein = Alphabet::protein();
/// assert_eq!((protein.q(), protein.code(b'A'), protein.code(b'-')), (21, Some(0), Some(20)));
/// assert_eq!(Alphabet::new("ACGT-")?.code(b'T'), Some(3));
/// assert!(Alphabet::new("AA").is_err());
/// # Ok::<(), rbm::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alphabet {
    symbols: Vec<u8>,
}

impl Alphabet {
    /// The 20 amino acids in alphabetical order of their one-letter codes, then the gap:
    /// `ACDEFGHIKLMNPQRSTVWY-` (q = 21).
    pub fn protein() -> Self {
        Alphabet {
            symbols: b"ACDEFGHIKLMNPQRSTVWY-".to_vec(),
        }
    }

    /// DNA with the gap: `ACGT-` (q = 5).
    pub fn dna() -> Self {
        Alphabet {
            symbols: b"ACGT-".to_vec(),
        }
    }

    /// RNA with the gap: `ACGU-` (q = 5).
    pub fn rna() -> Self {
        Alphabet {
            symbols: b"ACGU-".to_vec(),
        }
    }

    /// An alphabet of one's own: distinct printable ASCII symbols other than `>`, at least 2
    /// and at most [`MAX_SYMBOLS`]; letters must be upper case (lower case marks insertions).
    ///
    /// # Errors
    /// [`Error::Config`] naming the offending symbol or count.
    pub fn new(symbols: &str) -> Result<Self> {
        let bytes = symbols.as_bytes();
        if !(2..=MAX_SYMBOLS).contains(&bytes.len()) {
            let expected = format!("2 to {MAX_SYMBOLS} symbols");
            return Err(Error::config("alphabet", expected, bytes.len()));
        }
        for (i, &b) in bytes.iter().enumerate() {
            let allowed = b.is_ascii_graphic() && b != b'>' && b != b'.' && !b.is_ascii_lowercase();
            if !allowed || bytes[..i].contains(&b) {
                let expected = "distinct printable ASCII symbols, not lower case, '>' or '.'";
                return Err(Error::config("alphabet", expected, format!("{symbols:?}")));
            }
        }
        Ok(Alphabet {
            symbols: bytes.to_vec(),
        })
    }

    /// The number of symbols `q`.
    pub fn q(&self) -> usize {
        self.symbols.len()
    }

    /// The symbols, in code order.
    pub fn symbols(&self) -> &[u8] {
        &self.symbols
    }

    /// The code of `symbol`, if it is in the alphabet.
    pub fn code(&self, symbol: u8) -> Option<u8> {
        self.symbols
            .iter()
            .position(|&s| s == symbol)
            .map(|i| i as u8)
    }

    /// A table from byte to code (`u8::MAX` for bytes not in the alphabet).
    fn table(&self) -> [u8; 256] {
        let mut t = [u8::MAX; 256];
        for (code, &s) in self.symbols.iter().enumerate() {
            t[usize::from(s)] = code as u8;
        }
        t
    }
}

/// An alignment: `len()` records of `columns()` symbols each, as codes of an [`Alphabet`]
/// (`len() × columns()` bytes, row-major), with the records' names.
///
/// ```
/// use rbm::data::fasta::{Alphabet, parse_msa};
/// let msa = parse_msa(b">a\nAC-D\n>b desc\nAcC-D\n", Alphabet::protein())?; // 'c': an insertion
/// assert_eq!((msa.len(), msa.columns()), (2, 4));
/// assert_eq!(msa.row(1), &[0, 1, 20, 2]);
/// assert_eq!(msa.name(1), "b desc");
/// # Ok::<(), rbm::data::fasta::MsaError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msa {
    alphabet: Alphabet,
    names: Vec<String>,
    codes: Vec<u8>,
    columns: usize,
}

/// Parses an aligned FASTA file's bytes (see the [module page](self) for the rules).
///
/// # Errors
/// The [`MsaError`] of the first problem, naming its record and column.
pub fn parse_msa(bytes: &[u8], alphabet: Alphabet) -> std::result::Result<Msa, MsaError> {
    let mut parser = Parser::new(alphabet);
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        parser.line(line, i + 1)?;
    }
    parser.finish()
}

/// [`parse_msa`] over a reader, a line at a time (see [`MAX_LINE`], [`MAX_INFLATED`]).
fn read_msa(reader: impl Read, alphabet: Alphabet) -> std::result::Result<Msa, MsaError> {
    let mut reader = BufReader::new(reader.take(MAX_INFLATED));
    let mut parser = Parser::new(alphabet);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| MsaError::Read(e.to_string()))?;
        if read == 0 {
            break;
        }
        if line.len() > MAX_LINE {
            return Err(MsaError::LineTooLong {
                line: number,
                max: MAX_LINE,
            });
        }
        parser.line(line.strip_suffix(b"\n").unwrap_or(&line), number)?;
    }
    if reader
        .into_inner()
        .into_inner()
        .take(1)
        .read(&mut [0])
        .is_ok_and(|n| n > 0)
    {
        return Err(MsaError::Read(format!("longer than {MAX_INFLATED} bytes")));
    }
    parser.finish()
}

/// The state of a parse: the alignment so far and where its current record starts.
struct Parser {
    msa: Msa,
    table: [u8; 256],
    row_start: usize,
}

impl Parser {
    fn new(alphabet: Alphabet) -> Self {
        Parser {
            table: alphabet.table(),
            msa: Msa {
                alphabet,
                names: Vec::new(),
                codes: Vec::new(),
                columns: 0,
            },
            row_start: 0,
        }
    }

    /// One line (without its `\n`), number `number` (1-based).
    fn line(&mut self, line: &[u8], number: usize) -> std::result::Result<(), MsaError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let msa = &mut self.msa;
        if let Some(name) = line.strip_prefix(b">") {
            msa.finish_record(self.row_start)?;
            self.row_start = msa.codes.len();
            let name = name.strip_prefix(b">").unwrap_or(name);
            msa.names
                .push(String::from_utf8_lossy(name).trim().to_string());
        } else if msa.names.is_empty() {
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                return Err(MsaError::NoHeader { line: number });
            }
        } else {
            msa.push_line(line, &self.table, self.row_start)?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::result::Result<Msa, MsaError> {
        self.msa.finish_record(self.row_start)?;
        if self.msa.names.is_empty() {
            return Err(MsaError::Empty);
        }
        Ok(self.msa)
    }
}

impl Msa {
    /// Reads the alignment at `path`: plain text, or gzip (by its first two bytes) inflated up
    /// to [`MAX_INFLATED`] bytes.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Msa`] naming the file and what is
    /// wrong with it.
    pub fn open(path: impl AsRef<Path>, alphabet: Alphabet) -> Result<Msa> {
        let path = path.as_ref();
        let msa_error = |kind| Error::Msa {
            path: path.to_path_buf(),
            kind,
        };
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = BufReader::new(file);
        // The magic bytes, peeked without consuming them.
        let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        let msa = if head.starts_with(&[0x1f, 0x8b]) {
            read_msa(flate2::read::MultiGzDecoder::new(reader), alphabet)
        } else {
            read_msa(reader, alphabet)
        };
        msa.map_err(msa_error)
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no record (never for a parsed alignment; a split's test part may be).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The alignment's columns `L`.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// The alphabet.
    pub fn alphabet(&self) -> &Alphabet {
        &self.alphabet
    }

    /// Record `i`'s codes (`columns()` of them, each below `alphabet().q()`).
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.codes[i * self.columns..(i + 1) * self.columns]
    }

    /// All codes, `len() × columns()` row-major.
    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    /// Record `i`'s name.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The alignment without repeated sequences: each distinct sequence once, at its first
    /// record (names kept), in the original order.
    pub fn deduplicated(&self) -> Msa {
        let mut seen = std::collections::HashSet::with_capacity(self.len());
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| seen.insert(self.row(i)))
            .collect();
        self.select(&keep)
    }

    /// A reproducible split: the records shuffled by `seed`, the first `⌈test_fraction · len⌉`
    /// (at most `len − 1`, and at least 1 when `test_fraction > 0`) in the second alignment,
    /// the rest in the first; each keeps the original order.
    ///
    /// # Errors
    /// [`Error::Config`] unless `test_fraction` is in `[0, 1)`.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Msa, Msa)> {
        if !(0.0..1.0).contains(&test_fraction) {
            return Err(Error::config(
                "test fraction",
                "a value in [0, 1)",
                test_fraction,
            ));
        }
        let n = self.len();
        let n_test = ((test_fraction * n as f64).ceil() as usize).min(n.saturating_sub(1));
        // A random key per record; the records of the n_test smallest keys are the test set.
        let key = StreamKey::new(seed).derive(crate::rng::tags::SPLIT);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| (key.draw(i as u64), i));
        let mut test = vec![false; n];
        order[..n_test].iter().for_each(|&i| test[i] = true);
        let (te, tr): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| test[i]);
        Ok((self.select(&tr), self.select(&te)))
    }

    /// The records `keep`, in that order.
    fn select(&self, keep: &[usize]) -> Msa {
        Msa {
            alphabet: self.alphabet.clone(),
            names: keep.iter().map(|&i| self.names[i].clone()).collect(),
            codes: keep.iter().flat_map(|&i| self.row(i)).copied().collect(),
            columns: self.columns,
        }
    }

    /// Appends one sequence line of the current record (which starts at `row_start`).
    fn push_line(
        &mut self,
        line: &[u8],
        table: &[u8; 256],
        row_start: usize,
    ) -> std::result::Result<(), MsaError> {
        for &b in line {
            if b.is_ascii_lowercase() || b == b'.' || b.is_ascii_whitespace() {
                continue;
            }
            let code = table[usize::from(b)];
            if code == u8::MAX {
                return Err(MsaError::UnknownSymbol {
                    record: self.names.len(),
                    name: self.names.last().cloned().unwrap_or_default(),
                    column: self.codes.len() - row_start + 1,
                    symbol: String::from_utf8_lossy(&[b]).into_owned(),
                    alphabet: String::from_utf8_lossy(self.alphabet.symbols()).into_owned(),
                });
            }
            self.codes.push(code);
        }
        Ok(())
    }

    /// Checks the record that started at `row_start` (if any) against the first one's length.
    fn finish_record(&mut self, row_start: usize) -> std::result::Result<(), MsaError> {
        let Some(name) = self.names.last() else {
            return Ok(());
        };
        let found = self.codes.len() - row_start;
        if self.names.len() == 1 {
            if found == 0 {
                return Err(MsaError::NoColumns);
            }
            self.columns = found;
        } else if found != self.columns {
            return Err(MsaError::Length {
                record: self.names.len(),
                name: name.clone(),
                expected: self.columns,
                found,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protein(text: &str) -> std::result::Result<Msa, MsaError> {
        parse_msa(text.as_bytes(), Alphabet::protein())
    }

    #[test]
    fn errors_name_the_record_and_column() {
        assert_eq!(protein(""), Err(MsaError::Empty));
        assert_eq!(protein("\n \n"), Err(MsaError::Empty));
        assert_eq!(protein("AC\n>a\nAC"), Err(MsaError::NoHeader { line: 1 }));
        assert_eq!(protein(">a\n\n>b\nA"), Err(MsaError::NoColumns));
        match protein(">a\nACD\n>b\nAXD\n") {
            Err(MsaError::UnknownSymbol {
                record: 2,
                column: 2,
                symbol,
                ..
            }) => assert_eq!(symbol, "X"),
            other => panic!("{other:?}"),
        }
        match protein(">a\nACD\n>b x\nAC\n") {
            Err(MsaError::Length {
                record: 2,
                name,
                expected: 3,
                found: 2,
            }) => assert_eq!(name, "b x"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn insertions_whitespace_and_wrapped_lines() {
        let msa = protein(">>a\r\nAC\n D-\n>b\nacAC.D-y\n").unwrap();
        assert_eq!((msa.len(), msa.columns()), (2, 4));
        assert_eq!(msa.row(0), msa.row(1));
        assert_eq!(msa.name(0), "a");
        assert_eq!(msa.row(0), &[0, 1, 2, 20]);
    }

    #[test]
    fn dedup_and_split_are_reproducible() {
        let text: String = (0..50)
            .map(|i| format!(">s{i}\n{}\n", ["ACDE", "ACDF", "GHIK"][i % 3]))
            .collect();
        let msa = protein(&text).unwrap();
        let unique = msa.deduplicated();
        assert_eq!(unique.len(), 3);
        assert_eq!((unique.name(0), unique.name(2)), ("s0", "s2"));
        let (train, test) = msa.split(0.2, 7).unwrap();
        assert_eq!((train.len(), test.len()), (40, 10));
        assert_eq!(msa.split(0.2, 7).unwrap(), (train.clone(), test.clone()));
        assert_ne!(msa.split(0.2, 8).unwrap().1, test);
        let mut names: Vec<&str> = (0..40).map(|i| train.name(i)).collect();
        names.extend((0..10).map(|i| test.name(i)));
        names.sort();
        let mut all: Vec<&str> = (0..50).map(|i| msa.name(i)).collect();
        all.sort();
        assert_eq!(names, all);
        assert!(msa.split(1.0, 0).is_err());
        assert_eq!(msa.split(0.0, 0).unwrap().1.len(), 0);
    }
}

/// Sequence weights against redundant families: sequence `i` weighs `1 / nᵢ`, with `nᵢ` the
/// number of sequences (itself included) whose Hamming distance to it is below
/// `max_fraction · L`; their sum is the effective number of sequences `N_eff`.
///
/// Computed for all `N²` pairs without comparing sequences one by one: for each column and
/// symbol a bitset of the sequences that hold it, and for each sequence `i` bit-sliced
/// counters (one bit of the count of every sequence per word) to which the bitsets of `i`'s
/// symbols are added, then compared with the threshold as bits. Integer arithmetic only, rows
/// in parallel: the same weights on any number of threads.
///
/// ```
/// use rbm::data::fasta::{Alphabet, parse_msa};
/// let msa = parse_msa(b">a\nACDEFGHIKL\n>b\nACDEFGHIKM\n>c\nWWWWWWWWWW\n", Alphabet::protein())?;
/// // a and b differ in 1 column of 10 (< 2): each has 2 neighbours; c has only itself.
/// assert_eq!(msa.weights(0.2), vec![0.5, 0.5, 1.0]);
/// # Ok::<(), rbm::data::fasta::MsaError>(())
/// ```
impl Msa {
    /// The weights `1 / nᵢ` (see above) with the threshold `max_fraction · L` (0.2 in the
    /// literature: neighbours are over 80% identical); `max_fraction` is clamped to `[0, 1]`.
    pub fn weights(&self, max_fraction: f64) -> Vec<f64> {
        neighbour_counts(self, max_fraction)
            .into_iter()
            .map(|n| 1.0 / f64::from(n))
            .collect()
    }
}

/// For each sequence, the sequences (itself included) at Hamming distance below
/// `max_fraction · L`.
fn neighbour_counts(msa: &Msa, max_fraction: f64) -> Vec<u32> {
    use rayon::prelude::*;
    let (n, l) = (msa.len(), msa.columns());
    // Distance d < f·L  ⇔  matches = L − d > L − f·L  ⇔  matches ≥ min_matches.
    let limit = max_fraction.clamp(0.0, 1.0) * l as f64;
    let min_matches = l - ((limit.ceil() as usize).max(1) - 1).min(l);
    let planes = SymbolPlanes::new(msa);
    let bits = usize::BITS as usize - l.leading_zeros() as usize;
    (0..n)
        .into_par_iter()
        .map_init(Vec::new, |rows, i| {
            planes.count_at_least(msa.row(i), min_matches, bits, rows)
        })
        .collect()
}

/// For each column and symbol, the bitset of the sequences holding it (`words` words each).
struct SymbolPlanes {
    q: usize,
    words: usize,
    n: usize,
    bits: Vec<u64>,
}

impl SymbolPlanes {
    fn new(msa: &Msa) -> Self {
        let (n, q) = (msa.len(), msa.alphabet().q());
        let words = n.div_ceil(64);
        let mut bits = vec![0u64; msa.columns() * q * words];
        for j in 0..n {
            for (c, &a) in msa.row(j).iter().enumerate() {
                bits[(c * q + usize::from(a)) * words + j / 64] |= 1 << (j % 64);
            }
        }
        SymbolPlanes { q, words, n, bits }
    }

    /// The bitset of the sequences holding `symbol` in `column`.
    fn plane(&self, column: usize, symbol: u8) -> &[u64] {
        let start = (column * self.q + usize::from(symbol)) * self.words;
        &self.bits[start..start + self.words]
    }

    /// How many sequences share at least `min_matches` columns with `row`: for each word of
    /// 64 sequences, the planes of `row`'s symbols added into `bits`-bit counters held
    /// bit-sliced in registers (bit `k` of the 64 counts in `counters[k]`), then compared with
    /// `min_matches` bit by bit. `scratch` holds the planes of `row`.
    fn count_at_least<'a>(
        &'a self,
        row: &[u8],
        min_matches: usize,
        bits: usize,
        scratch: &mut Vec<&'a [u64]>,
    ) -> u32 {
        scratch.clear();
        scratch.extend(row.iter().enumerate().map(|(c, &a)| self.plane(c, a)));
        let mut total = 0;
        for word in 0..self.words {
            let mut counters = [0u64; usize::BITS as usize];
            let counters = &mut counters[..bits];
            for plane in scratch.iter() {
                // Ripple-carry: add the bit of each sequence to its count, lowest bit first.
                let mut carry = plane[word];
                for ck in counters.iter_mut() {
                    let next = *ck & carry;
                    *ck ^= carry;
                    carry = next;
                }
            }
            let (mut greater, mut equal) = (0u64, u64::MAX);
            for (k, &ck) in counters.iter().enumerate().rev() {
                if (min_matches >> k) & 1 == 1 {
                    equal &= ck;
                } else {
                    greater |= equal & ck;
                    equal &= !ck;
                }
            }
            let valid = if word + 1 == self.words && !self.n.is_multiple_of(64) {
                (1u64 << (self.n % 64)) - 1
            } else {
                u64::MAX
            };
            total += ((greater | equal) & valid).count_ones();
        }
        total
    }
}

#[cfg(test)]
mod weight_tests {
    use super::*;

    /// The oracle: every pair compared symbol by symbol.
    fn counts_by_pairs(msa: &Msa, max_fraction: f64) -> Vec<u32> {
        let limit = max_fraction * msa.columns() as f64;
        (0..msa.len())
            .map(|i| {
                (0..msa.len())
                    .filter(|&j| {
                        let d = msa
                            .row(i)
                            .iter()
                            .zip(msa.row(j))
                            .filter(|(a, b)| a != b)
                            .count();
                        (d as f64) < limit || d == 0
                    })
                    .count() as u32
            })
            .collect()
    }

    /// `n` random sequences of `l` columns over the first `q` symbols, mostly copies of a few
    /// ancestors with mutations, so that neighbour counts vary.
    fn random_msa(n: usize, l: usize, q: usize, seed: u64) -> Msa {
        let key = StreamKey::new(seed);
        let protein = Alphabet::protein();
        let symbols = &protein.symbols()[..q];
        let mut text = String::new();
        for i in 0..n {
            let ancestor = key.draw(i as u64 * 1000) as usize % 4;
            text.push_str(&format!(">s{i}\n"));
            for c in 0..l {
                let mutate = key.draw(i as u64 * 1000 + 1 + c as u64).is_multiple_of(8);
                let base = if mutate {
                    key.draw(i as u64 * 1000 + 500 + c as u64) as usize
                } else {
                    ancestor * 7 + c
                };
                text.push(char::from(symbols[base % q]));
            }
            text.push('\n');
        }
        parse_msa(text.as_bytes(), Alphabet::protein()).unwrap()
    }

    #[test]
    fn bit_sliced_counts_match_pairwise_comparison() {
        for (n, l, q) in [
            (1, 1, 2),
            (5, 3, 2),
            (63, 27, 21),
            (64, 31, 21),
            (65, 10, 4),
            (200, 53, 21),
            (130, 100, 3),
        ] {
            let msa = random_msa(n, l, q, n as u64);
            for f in [0.0, 0.1, 0.2, 0.5, 1.0] {
                assert_eq!(
                    neighbour_counts(&msa, f),
                    counts_by_pairs(&msa, f),
                    "n {n} l {l} q {q} f {f}"
                );
            }
        }
    }

    #[test]
    fn weights_are_the_same_on_any_thread_count() {
        let msa = random_msa(300, 31, 21, 9);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| msa.weights(0.2));
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap()
            .install(|| msa.weights(0.2));
        assert_eq!(one, three);
        assert!(one.iter().all(|&w| w > 0.0 && w <= 1.0));
    }
}
