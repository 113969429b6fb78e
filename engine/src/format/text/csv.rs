//! Delimited text tables read as a dense float32 X, with `anndata.read_csv`'s rules for where
//! the names are.
//!
//! anndata decides from the first lines: a first line whose last field is not a number holds
//! the column names (else the last `#` comment line does, else they are `0, 1, …`); the first
//! column holds row names when told so or when its field on the first data lines is not a
//! number; a header one field shorter than the rows means the header has no corner field.

use std::path::Path;

use ndarray::Array2;

use crate::data::{ArrayData, DataFrame, Matrix};
use crate::error::{Error, Result, ResultExt};
use crate::format::AnnDataElements;
use crate::memory::check_memory;

use super::Lines;

/// How to read a delimited table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The field separator; `None` splits at runs of whitespace. anndata's default is `,`.
    pub delimiter: Option<char>,
    /// Whether the first column holds row names; `None` lets the first lines decide.
    pub first_column_names: Option<bool>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: Some(','),
            first_column_names: None,
        }
    }
}

impl CsvOptions {
    /// anndata's defaults with the separator a table's extension implies, as `annpage
    /// convert` and `annpage::FileFormat::read` read it: tab for `.tsv`/`.tab`, runs of whitespace for `.txt`/`.data`, else a comma (a `.gz`
    /// suffix aside).
    ///
    /// ```
    /// use annpage_engine::format::text::csv::CsvOptions;
    /// assert_eq!(CsvOptions::for_path("t.tsv.gz".as_ref()).delimiter, Some('\t'));
    /// assert_eq!(CsvOptions::for_path("t.txt".as_ref()).delimiter, None);
    /// ```
    pub fn for_path(path: &std::path::Path) -> CsvOptions {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let name = super::strip_compression(&name);
        let delimiter = match name.rsplit_once('.').map(|(_, e)| e) {
            Some("tsv" | "tab") => Some('\t'),
            Some("txt" | "data") => None,
            _ => Some(','),
        };
        CsvOptions {
            delimiter,
            ..CsvOptions::default()
        }
    }
}

/// Reads a delimited text file (plain or gzipped) as `anndata.read_csv` does: X a dense float32
/// matrix, obs and var names from the file or `0, 1, …`.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use annpage_engine::format::text::csv::{read_csv, CsvOptions};
/// let path = dir.path().join("t.csv");
/// std::fs::write(&path, "cell,CD3E,LYZ\nc1,1,0\nc2,0,2.5\n")?;
/// let elems = read_csv(&path, &CsvOptions::default())?;
/// assert_eq!(elems.obs.index_names().unwrap(), ["c1", "c2"]);
/// assert_eq!(elems.var.index_names().unwrap(), ["CD3E", "LYZ"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_csv(path: &Path, options: &CsvOptions) -> Result<AnnDataElements> {
    let mut lines = Lines::open(path)?;
    let mut table = Table {
        delimiter: options.delimiter,
        values: Vec::new(),
        width: None,
        rows: 0,
        row_names: Vec::new(),
    };
    let mut first_column_names = options.first_column_names;
    let mut comments: Vec<String> = Vec::new();
    let mut col_names: Vec<String> = Vec::new();
    let mut first_row: Option<Vec<f32>> = None;

    // The header, or the first data line.
    while let Some(line) = next_nonempty(&mut lines)? {
        if line.starts_with('#') {
            let comment = line.trim_start_matches(['#', ' ']);
            if !comment.is_empty() {
                comments.push(comment.to_owned());
            }
            continue;
        }
        if let Some(d) = options.delimiter {
            if !line.contains(d) {
                return Err(lines.malformed(format!("did not find the delimiter {d:?}")));
            }
        }
        let fields = table.split(&lines, &line)?;
        if !is_float(fields[fields.len() - 1]) {
            col_names = fields.iter().map(|s| s.to_string()).collect();
        } else if !is_float(fields[0]) || first_column_names == Some(true) {
            first_column_names = Some(true);
            table
                .push_name(fields[0].to_owned())
                .map_err(|e| lines.error(e))?;
            first_row = Some(parse_row(&lines, &fields[1..])?);
        } else {
            first_row = Some(parse_row(&lines, &fields)?);
        }
        break;
    }
    if col_names.is_empty() {
        col_names = match (comments.last(), &first_row) {
            (Some(c), _) => c.split_whitespace().map(str::to_owned).collect(),
            (None, Some(row)) => (0..row.len()).map(|i| i.to_string()).collect(),
            (None, None) => return Err(Error::malformed("no table in the file").in_file(path)),
        };
    }
    let mut first_column_names = first_column_names.unwrap_or(false);

    // The second line settles whether the first column holds names.
    let mut second_row: Option<Vec<f32>> = None;
    if let Some(line) = next_nonempty(&mut lines)? {
        let fields = table.split(&lines, &line)?;
        if first_column_names || !is_float(fields[0]) {
            first_column_names = true;
            table
                .push_name(fields[0].to_owned())
                .map_err(|e| lines.error(e))?;
            second_row = Some(parse_row(&lines, &fields[1..])?);
        } else {
            second_row = Some(parse_row(&lines, &fields)?);
        }
    }
    match (first_row, second_row) {
        // Two data lines of different lengths: the first was a header of numbers without a
        // corner field, and the second line starts with its row name.
        (Some(first), Some(second)) if first.len() != second.len() => {
            if second.is_empty() {
                return Err(lines.malformed("a row without values"));
            }
            first_column_names = true;
            col_names = first.iter().map(|&v| (v as i64).to_string()).collect();
            table
                .push_name((second[0] as i64).to_string())
                .map_err(|e| lines.error(e))?;
            table.push_row(&lines, second[1..].to_vec())?;
        }
        (first, second) => {
            for row in [first, second].into_iter().flatten() {
                table.push_row(&lines, row)?;
            }
        }
    }
    // The rest in batches of lines, each parsed on every core and appended in order.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut batch: Vec<(usize, String)> = Vec::with_capacity(BATCH_LINES);
    loop {
        let mut bytes = 0;
        batch.clear();
        while bytes < BATCH_BYTES && batch.len() < BATCH_LINES {
            let Some(line) = next_nonempty(&mut lines)? else {
                break;
            };
            bytes += line.len();
            batch.push((lines.line(), line));
        }
        if batch.is_empty() {
            break;
        }
        let parsed = parse_batch(&batch, options.delimiter, first_column_names, threads);
        for (row, &(line_no, _)) in parsed.into_iter().zip(&batch) {
            let at = |e: Error| e.in_element(format!("line {line_no}")).in_file(path);
            let (name, values) = row.map_err(|m| at(Error::malformed(m)))?;
            if let Some(name) = name {
                table.push_name(name).map_err(at)?;
            }
            table.push_values(values).map_err(at)?;
        }
        table.check_growth().in_file(path)?;
    }
    table.into_elements(path, col_names)
}

/// The error of a table that cannot grow: the memory ran out (a process limit, or none left).
fn out_of_memory(values: &[f32]) -> Error {
    Error::invalid(format!(
        "the table does not fit in memory: {} values read so far",
        values.len()
    ))
}

/// The text of the lines parsed together (at least one line).
const BATCH_BYTES: usize = 16 << 20;
/// The most lines parsed together (each costs a few words besides its text).
const BATCH_LINES: usize = 1 << 18;

/// One parsed line: the row name (with `first_column_names`) and the values.
type Row = std::result::Result<(Option<String>, Vec<f32>), String>;

/// Parses the lines of `batch` on `threads` threads, in order.
fn parse_batch(
    batch: &[(usize, String)],
    delimiter: Option<char>,
    first_column_names: bool,
    threads: usize,
) -> Vec<Row> {
    let parse = |line: &str| -> Row {
        let fields: Vec<&str> = match delimiter {
            Some(d) => line.split(d).collect(),
            None => line.split_whitespace().collect(),
        };
        let (name, values) = match (first_column_names, fields.split_first()) {
            (true, Some((name, rest))) => (Some(name.to_string()), rest),
            (true, None) => return Err("a line of whitespace only".into()),
            (false, _) => (None, &fields[..]),
        };
        let values = values
            .iter()
            .map(|f| {
                parse_float(f)
                    .map(|v| v as f32)
                    .ok_or_else(|| format!("'{f}' is not a number"))
            })
            .collect::<std::result::Result<Vec<f32>, String>>()?;
        Ok((name, values))
    };
    let per_thread = batch.len().div_ceil(threads.max(1)).max(1);
    if threads <= 1 || batch.len() < 1024 {
        return batch.iter().map(|(_, l)| parse(l)).collect();
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = batch
            .chunks(per_thread)
            .map(|part| s.spawn(move || part.iter().map(|(_, l)| parse(l)).collect::<Vec<Row>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Rows parsed so far.
struct Table {
    delimiter: Option<char>,
    values: Vec<f32>,
    width: Option<usize>,
    rows: usize,
    row_names: Vec<String>,
}

impl Table {
    fn split<'a>(&self, lines: &Lines, line: &'a str) -> Result<Vec<&'a str>> {
        let fields = split_fields(line, self.delimiter);
        if fields.is_empty() {
            return Err(lines.malformed("a line of whitespace only"));
        }
        Ok(fields)
    }

    /// Fails unless the table can grow once more (its vectors reallocated at twice their
    /// size) in the memory available: a small gzip can hold billions of rows, and running out
    /// of memory would abort.
    fn check_growth(&self) -> Result<()> {
        let vectors = self.values.capacity() * std::mem::size_of::<f32>()
            + self.row_names.capacity() * std::mem::size_of::<String>();
        // Each name's text is an allocation of its own (32 bytes at least, with malloc's).
        let names = self.row_names.len() * 32;
        check_memory((2 * vectors + names) as u64, "the table read so far")
    }

    fn push_row(&mut self, lines: &Lines, row: Vec<f32>) -> Result<()> {
        self.push_values(row).map_err(|e| lines.error(e))
    }

    fn push_values(&mut self, row: Vec<f32>) -> Result<()> {
        match self.width {
            Some(w) if w != row.len() => {
                return Err(Error::malformed(format!(
                    "{} values where the first row has {w}",
                    row.len()
                )))
            }
            _ => self.width = Some(row.len()),
        }
        self.values
            .try_reserve(row.len())
            .map_err(|_| out_of_memory(&self.values))?;
        self.values.extend(row);
        self.rows += 1;
        Ok(())
    }

    fn push_name(&mut self, name: String) -> Result<()> {
        self.row_names
            .try_reserve(1)
            .map_err(|_| out_of_memory(&self.values))?;
        self.row_names.push(name);
        Ok(())
    }

    fn into_elements(self, path: &Path, mut col_names: Vec<String>) -> Result<AnnDataElements> {
        let width = self.width.unwrap_or(0);
        let row_names: Vec<String> = if self.row_names.is_empty() {
            (0..self.rows).map(|i| i.to_string()).collect()
        } else {
            self.row_names
                .iter()
                .map(|n| n.trim_matches('"').to_owned())
                .collect()
        };
        if row_names.len() != self.rows {
            return Err(Error::shape(format!(
                "{} row names for {} rows",
                row_names.len(),
                self.rows
            ))
            .in_file(path));
        }
        if col_names.len() > width {
            col_names.remove(0);
        }
        if col_names.len() != width {
            return Err(Error::shape(format!(
                "{} column names for rows of {width} values",
                col_names.len()
            ))
            .in_file(path));
        }
        let col_names: Vec<String> = col_names
            .iter()
            .map(|n| n.trim_matches('"').to_owned())
            .collect();
        let x = Array2::from_shape_vec((self.rows, width), self.values)
            .expect("every row has `width` values");
        let mut elems = AnnDataElements::empty(self.rows, width);
        elems.obs = DataFrame::from_index(row_names);
        elems.var = DataFrame::from_index(col_names);
        elems.x = Some(Matrix::Dense(ArrayData::from(x)));
        Ok(elems)
    }
}

fn next_nonempty(lines: &mut Lines) -> Result<Option<String>> {
    while let Some(line) = lines.next_str()? {
        if !line.is_empty() {
            return Ok(Some(line.to_owned()));
        }
    }
    Ok(None)
}

/// Whether Python's `float(s)` accepts `s`.
fn is_float(s: &str) -> bool {
    parse_float(s).is_some()
}

fn parse_float(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

fn parse_row(lines: &Lines, fields: &[&str]) -> Result<Vec<f32>> {
    parse_values(fields).map_err(|m| lines.malformed(m))
}

/// The fields of a line: split at `delimiter`, or at runs of whitespace.
fn split_fields(line: &str, delimiter: Option<char>) -> Vec<&str> {
    match delimiter {
        Some(d) => line.split(d).collect(),
        None => line.split_whitespace().collect(),
    }
}

/// Fields as float32 values (parsed as Python floats, then rounded as numpy casts them).
fn parse_values(fields: &[&str]) -> std::result::Result<Vec<f32>, String> {
    fields
        .iter()
        .map(|f| {
            parse_float(f)
                .map(|v| v as f32)
                .ok_or_else(|| format!("'{f}' is not a number"))
        })
        .collect()
}
