//! Text formats beside h5ad: Matrix Market, 10x Genomics directories and CSV/TSV tables.
//!
//! Every reader works on lines from [`Lines`], which opens plain, gzip- or bzip2-compressed
//! files alike and numbers the lines so that an error names the file and the line.

pub mod csv;
pub mod csvs;
pub mod mtx;
pub mod tenx;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, ResultExt};

/// How a text file is compressed, told by its first bytes (not its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Bzip2,
}

impl Compression {
    fn of(start: &[u8]) -> Compression {
        match start {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => Compression::Bzip2,
            _ => Compression::None,
        }
    }
}

/// Lines of a text file, gzip- or bzip2-compressed or not (told by its first bytes, not its
/// name).
pub struct Lines {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    line: usize,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("path", &self.path)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl Lines {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Lines> {
        // A FIFO or device would block or never end; a directory is not a text file.
        if !std::fs::metadata(path).in_file(path)?.is_file() {
            return Err(Error::invalid("not a regular file").in_file(path));
        }
        let mut file = BufReader::with_capacity(1 << 20, File::open(path).in_file(path)?);
        let reader: Box<dyn BufRead + Send> = match Compression::of(file.fill_buf().in_file(path)?)
        {
            Compression::Gzip => Box::new(BufReader::with_capacity(
                1 << 20,
                flate2::bufread::MultiGzDecoder::new(file),
            )),
            Compression::Bzip2 => Box::new(BufReader::with_capacity(
                1 << 20,
                bzip2::bufread::MultiBzDecoder::new(file),
            )),
            Compression::None => Box::new(file),
        };
        Ok(Lines {
            reader,
            path: path.to_path_buf(),
            line: 0,
            buf: Vec::new(),
        })
    }

    /// The next line without its line break (`\n`, `\r\n` or a lone `\r`, as Python's
    /// universal newlines and pandas read them), or `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>> {
        self.buf.clear();
        let mut read_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.error(Error::Io(e))),
            };
            if available.is_empty() {
                break;
            }
            read_any = true;
            let Some(at) = memchr::memchr2(b'\n', b'\r', available) else {
                let n = available.len();
                self.buf.extend_from_slice(available);
                self.reader.consume(n);
                if self.buf.len() > MAX_LINE {
                    break;
                }
                continue;
            };
            let cr = available[at] == b'\r';
            self.buf.extend_from_slice(&available[..at]);
            self.reader.consume(at + 1);
            // `\r\n` is one break: its `\n` may start the next buffer.
            if cr && matches!(self.reader.fill_buf(), Ok([b'\n', ..])) {
                self.reader.consume(1);
            }
            break;
        }
        if !read_any {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.len() > MAX_LINE {
            return Err(self.error(Error::malformed(format!(
                "line longer than {} MiB",
                MAX_LINE >> 20
            ))));
        }
        Ok(Some(&self.buf))
    }

    /// The next line as UTF-8 text.
    pub fn next_str(&mut self) -> Result<Option<&str>> {
        let line = self.line;
        let path = self.path.clone();
        match self.next_line()? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes).map(Some).map_err(|e| {
                Error::malformed(format!("not UTF-8 text: {e}"))
                    .in_element(format!("line {}", line + 1))
                    .in_file(&path)
            }),
        }
    }

    /// Number of the line last returned (1-based; 0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wraps `e` with the file and the current line.
    pub fn error(&self, e: Error) -> Error {
        e.in_element(format!("line {}", self.line))
            .in_file(&self.path)
    }

    /// A malformed-input error at the current line.
    pub fn malformed(&self, msg: impl Into<String>) -> Error {
        self.error(Error::malformed(msg))
    }
}

/// A file name without the suffix of the compression [`Lines`] reads (`.gz`, `.bz2`): what
/// names the format (`t.csv.bz2` is a CSV table).
pub fn strip_compression(name: &str) -> &str {
    [".gz", ".bz2"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// The longest line a text reader accepts (a guard against a file without line breaks).
pub const MAX_LINE: usize = 256 << 20;

/// Every line of a one-record-a-line file (barcodes, features) split at `sep` as pandas'
/// `read_csv` splits it (which scanpy reads them with): a byte-order mark at the start
/// dropped, a field in double quotes unquoted (`""` a quote; `sep` inside kept), blank lines
/// skipped. At most `max` records: one more is an error (a small gzip can hold a billion
/// lines).
pub fn read_records(path: &Path, sep: u8, max: usize) -> Result<Vec<Vec<String>>> {
    let mut lines = Lines::open(path)?;
    let mut out = Vec::new();
    let mut first = true;
    while let Some(line) = lines.next_str()? {
        let line = match std::mem::take(&mut first) {
            true => line.strip_prefix('\u{feff}').unwrap_or(line),
            false => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        if out.len() == max {
            // A small gzip can hold a billion lines: stop at one more than asked for.
            return Err(Error::malformed(format!("more than {max} records")).in_file(path));
        }
        out.push(split_quoted(line, sep as char));
    }
    Ok(out)
}

/// `line`'s fields at `sep`, those that start with a double quote read up to the closing one.
fn split_quoted(line: &str, sep: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
        }
        // Up to the separator (after a closing quote, pandas keeps what follows it).
        let mut more = false;
        for c in chars.by_ref() {
            if c == sep {
                more = true;
                break;
            }
            field.push(c);
        }
        fields.push(field);
        if !more {
            return fields;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_as_pandas_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("barcodes.tsv");
        std::fs::write(
            &path,
            "\u{feff}AAAC-1\n\"B,C\"\n\"say \"\"hi\"\"\",x\n\na,\n",
        )
        .unwrap();
        let got = read_records(&path, b',', usize::MAX).unwrap();
        let want: Vec<Vec<&str>> = vec![
            vec!["AAAC-1"],
            vec!["B,C"],
            vec!["say \"hi\"", "x"],
            vec!["a", ""],
        ];
        assert_eq!(got, want);
        // Blank lines are not records: a trailing one does not count against `max`.
        std::fs::write(&path, "A-1\nC-1\n\n\n").unwrap();
        assert_eq!(read_records(&path, b',', 2).unwrap().len(), 2);
        std::fs::write(&path, "A-1\nC-1\nG-1\n").unwrap();
        let err = read_records(&path, b',', 2).unwrap_err().to_string();
        assert!(err.contains("more than 2 records"), "{err}");
    }

    #[test]
    fn lines_break_as_pythons_universal_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        // \n, \r\n and a lone \r (old Mac files) each end a line; the last needs none. A
        // \r\n split across two reads of the buffer is still one break.
        let head = "a\nb\r\nc\rd\r\r\ne\n";
        // The \r after `long` is the last byte of the reader's first 1 MiB.
        let long = "x".repeat((1 << 20) - 1 - head.len());
        let text = format!("{head}{long}\r\nf");
        std::fs::write(&path, &text).unwrap();
        let mut lines = Lines::open(&path).unwrap();
        let mut got = Vec::new();
        while let Some(line) = lines.next_str().unwrap() {
            got.push(line.to_owned());
        }
        assert_eq!(got, ["a", "b", "c", "d", "", "e", long.as_str(), "f"]);
        assert_eq!(lines.line(), 8);
    }
}
