//! A directory of CSV files written as `anndata.AnnData.write_csvs` writes it: `obs.csv` and
//! `var.csv` (with header and index), `obsm.csv` and `varm.csv` (columns `KEY1`, `KEY2`, …,
//! header, no index), `X.csv` unless skipped (no header, no index) and `uns/KEY.csv` for each
//! array or scalar of uns — values formatted as pandas' `to_csv` formats them.
//!
//! Like anndata, sparse obsm/varm/uns values are left out. Unlike anndata, which writes
//! garbage for them, data-frame obsm/varm values and nested uns mappings are left out too.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::data::float_text;
use crate::data::{ArrayData, Column, DataFrame, Element, Mapping, Matrix};
use crate::error::{Result, ResultExt};
use crate::format::write::staging::Staged;
use crate::format::AnnDataElements;
use crate::select::AxisIndex;

/// Writes `elems` as CSV files into `dir` (created if needed; a trailing `.csv` is dropped
/// from its name, as anndata drops it), `sep` between fields. Each file is written beside its
/// final name, and all are renamed into place once every one is complete.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use annpage_engine::format::{text::csvs::write_csvs, AnnDataElements};
/// write_csvs(&dir.path().join("out"), &AnnDataElements::empty(2, 1), true, ',')?;
/// assert_eq!(std::fs::read_to_string(dir.path().join("out/var.csv"))?, "\"\"\n0\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_csvs(dir: &Path, elems: &AnnDataElements, skip_data: bool, sep: char) -> Result<()> {
    let dir = match dir.extension() {
        Some(e) if e == "csv" => dir.with_extension(""),
        _ => dir.to_path_buf(),
    };
    fs::create_dir_all(dir.join("uns")).in_file(&dir)?;
    let csv = Csv {
        sep,
        written: RefCell::new(Vec::new()),
    };
    csv.write(&dir.join("obs.csv"), |w| csv.frame(w, &elems.obs))?;
    csv.write(&dir.join("var.csv"), |w| csv.frame(w, &elems.var))?;
    csv.write(&dir.join("obsm.csv"), |w| {
        csv.axis_arrays(w, &elems.obsm, elems.obs.nrows())
    })?;
    csv.write(&dir.join("varm.csv"), |w| {
        csv.axis_arrays(w, &elems.varm, elems.var.nrows())
    })?;
    if !skip_data {
        csv.write(&dir.join("X.csv"), |w| match &elems.x {
            Some(x) => csv.matrix(w, x),
            // pandas' frame of None: an empty file.
            None => Ok(()),
        })?;
    }
    for (key, value) in &elems.uns {
        let columns = match value {
            Element::Array(a) if a.ndim() <= 2 => array_columns(a),
            Element::Scalar(s) => array_columns(&s.to_array()),
            Element::Categorical(_) | Element::Nullable(_) => {
                vec![column_cells(&frame_column(value))]
            }
            Element::DataFrame(df) => df.columns().values().map(column_cells).collect(),
            // None: one empty field.
            Element::Opaque(node) if node.is_null() => vec![vec![String::new()]],
            _ => continue,
        };
        let path = dir.join("uns").join(format!("{key}.csv"));
        csv.write(&path, |w| csv.rows(w, &columns, None))?;
    }
    // Every file is written: each renamed into place (a failure before leaves the directory
    // as it was).
    for (staged, path) in csv.written.into_inner() {
        staged.commit(&path).in_file(&path)?;
    }
    Ok(())
}

fn frame_column(value: &Element) -> Column {
    match value {
        Element::Categorical(c) => Column::Categorical(c.clone()),
        Element::Nullable(n) => Column::Nullable(n.clone()),
        _ => unreachable!("called on categorical and nullable values only"),
    }
}

struct Csv {
    sep: char,
    /// The files written so far, each staged beside its final name until all are.
    written: RefCell<Vec<(Staged, PathBuf)>>,
}

impl Csv {
    /// Writes `path` through `body`, staged beside it (as every output: see [`Staged`]) and
    /// renamed into place with the others once all are written.
    fn write(
        &self,
        path: &Path,
        body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let result = (|| -> Result<()> {
            let staged = Staged::beside(path)?;
            let file = File::options().write(true).open(staged.path())?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            body(&mut w)?;
            w.into_inner().map_err(|e| e.into_error())?;
            self.written.borrow_mut().push((staged, path.to_path_buf()));
            Ok(())
        })();
        result.in_file(path)
    }

    /// One line: fields quoted where the csv module quotes them (those holding the separator,
    /// a quote or `\n`, pandas' line terminator; a lone `\r` is not quoted).
    fn line(&self, w: &mut dyn Write, fields: &[&str]) -> std::io::Result<()> {
        if let [only] = fields {
            if only.is_empty() {
                // A lone empty field is quoted, so that the line is not blank.
                return w.write_all(b"\"\"\n");
            }
        }
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                write!(w, "{}", self.sep)?;
            }
            if f.contains([self.sep, '"', '\n']) {
                write!(w, "\"{}\"", f.replace('"', "\"\""))?;
            } else {
                w.write_all(f.as_bytes())?;
            }
        }
        w.write_all(b"\n")
    }

    /// Rows from columns of cells; `header` first when given.
    fn rows(
        &self,
        w: &mut dyn Write,
        columns: &[Vec<String>],
        header: Option<&[String]>,
    ) -> std::io::Result<()> {
        if let Some(h) = header {
            let h: Vec<&str> = h.iter().map(String::as_str).collect();
            self.line(w, &h)?;
        }
        let n = columns.first().map_or(0, Vec::len);
        let mut fields: Vec<&str> = Vec::with_capacity(columns.len());
        for i in 0..n {
            fields.clear();
            fields.extend(columns.iter().map(|c| c[i].as_str()));
            self.line(w, &fields)?;
        }
        Ok(())
    }

    fn frame(&self, w: &mut dyn Write, df: &DataFrame) -> std::io::Result<()> {
        let mut header = vec![df.index_name().unwrap_or("").to_owned()];
        header.extend(df.columns().keys().cloned());
        let mut columns = vec![cells(df.index())];
        columns.extend(df.columns().values().map(column_cells));
        self.rows(w, &columns, Some(&header))
    }

    /// `obsm.to_df()` without its index: each 2-d array's columns as `KEY1`, `KEY2`, …
    fn axis_arrays(&self, w: &mut dyn Write, m: &Mapping, nrows: usize) -> std::io::Result<()> {
        let mut header = Vec::new();
        let mut columns = Vec::new();
        for (key, value) in m {
            if let Element::Array(a) = value {
                if a.ndim() == 2 {
                    for (i, c) in array_columns(a).into_iter().enumerate() {
                        header.push(format!("{key}{}", i + 1));
                        columns.push(c);
                    }
                }
            }
        }
        if columns.is_empty() {
            // pandas writes an empty header and one empty line a row.
            return w.write_all("\n".repeat(nrows + 1).as_bytes());
        }
        self.rows(w, &columns, Some(&header))
    }

    /// X as dense rows, densified a block of rows at a time.
    fn matrix(&self, w: &mut dyn Write, x: &Matrix) -> std::io::Result<()> {
        // Rows of about a million cells at a time (each becomes a string before it is written).
        const CELLS: usize = 1 << 20;
        let (n_rows, n_cols) = x.shape();
        let block = (CELLS / n_cols.max(1)).max(1);
        let cols = AxisIndex::full(n_cols);
        for start in (0..n_rows).step_by(block) {
            let end = (start + block).min(n_rows);
            let block = AxisIndex::range(start..end, n_rows)
                .and_then(|rows| x.subset(&rows, &cols))
                .map_err(std::io::Error::other)?;
            let dense = block.to_dense().map_err(std::io::Error::other)?;
            for row in array_rows(&dense) {
                if row.is_empty() {
                    w.write_all(b"\n")?;
                } else {
                    let fields: Vec<&str> = row.iter().map(String::as_str).collect();
                    self.line(w, &fields)?;
                }
            }
        }
        Ok(())
    }
}

/// The rows of a 2-d array as cells.
fn array_rows(a: &ArrayData) -> Vec<Vec<String>> {
    let all = cells(a);
    let cols = a.shape().get(1).copied().unwrap_or(1).max(1);
    if all.is_empty() {
        return vec![Vec::new(); a.shape().first().copied().unwrap_or(0)];
    }
    all.chunks(cols).map(<[String]>::to_vec).collect()
}

/// The columns of a 0-, 1- or 2-d array as pandas' `DataFrame(np.array(value))` has them.
fn array_columns(a: &ArrayData) -> Vec<Vec<String>> {
    let all = cells(a);
    match a.shape() {
        [] | [_] => vec![all],
        [rows, cols] => (0..*cols)
            .map(|c| (0..*rows).map(|r| all[r * cols + c].clone()).collect())
            .collect(),
        _ => Vec::new(),
    }
}

fn column_cells(c: &Column) -> Vec<String> {
    match c {
        Column::Array(a) => cells(a),
        Column::Categorical(cat) => {
            let names = cells(&cat.categories);
            cat.codes
                .iter()
                .map(|&k| {
                    if k < 0 {
                        String::new()
                    } else {
                        names[k as usize].clone()
                    }
                })
                .collect()
        }
        Column::Nullable(n) => cells(n.values())
            .into_iter()
            .zip(n.mask())
            .map(|(v, &missing)| if missing { String::new() } else { v })
            .collect(),
    }
}

/// Each value as pandas' `to_csv` writes it (row-major): floats as numpy's `str` (float16 and
/// float32 in their own precision), NaN as an empty field, bools `True`/`False`.
fn cells(a: &ArrayData) -> Vec<String> {
    match a {
        ArrayData::F16(v) => v
            .iter()
            .map(|&x| {
                if x.is_nan() {
                    String::new()
                } else {
                    crate::data::numpy_half(x)
                }
            })
            .collect(),
        ArrayData::F32(v) => v.iter().map(|&x| numpy_f32(x)).collect(),
        ArrayData::F64(v) => {
            let text = a.to_python_strings();
            v.iter()
                .zip(text)
                .map(|(x, t)| if x.is_nan() { String::new() } else { t })
                .collect()
        }
        _ => a.to_python_strings(),
    }
}

/// numpy's `str(np.float32(x))`: the shortest digits that read back as the same float32,
/// positional for 1e-4 <= |x| < 1e6 (and 0), else `d.ddde±XX`.
fn numpy_f32(x: f32) -> String {
    if x.is_nan() {
        return String::new();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", x.abs()), f64::from(x.abs()));
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let abs = f64::from(x).abs();
    let positional = x == 0.0 || (1e-4..1e6).contains(&abs);
    format!("{sign}{}", float_text(&digits, exp, positional))
}

/// The digits and decimal exponent of Rust's shortest round-trip form `sci` (`{:e}` of a
/// non-negative value), with numpy's choice where two shortest forms are equally close to the
/// value (`exact`, the same value as an f64): the even last digit, where Rust rounds up.
fn shortest_digits(sci: &str, exact: f64) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
    let digits = mantissa.replace('.', "");
    let n = digits.len();
    // A tie: the value has exactly one more digit, a 5, and the shortest form rounded it up.
    let longer = format!("{:.*e}", n, exact);
    let (long_mantissa, long_exp) = longer.split_once('e').expect("`{:e}` writes an exponent");
    let long_digits = long_mantissa.replace('.', "");
    if long_exp.parse::<i32>() != Ok(exp) || !long_digits.ends_with('5') {
        return (digits, exp);
    }
    let truncated = &long_digits[..n];
    let last_even = truncated
        .bytes()
        .last()
        .is_some_and(|d| (d - b'0').is_multiple_of(2));
    // Exactly halfway only if no digit follows the 5 (an f64 has at most 767 of them).
    let full = format!("{:.*e}", 800, exact);
    let full_digits = full.split_once('e').map_or("", |(m, _)| m).replace('.', "");
    let exact_tie = full_digits[n + 1..].bytes().all(|d| d == b'0');
    if exact_tie && last_even && truncated != digits {
        (truncated.to_owned(), exp)
    } else {
        (digits, exp)
    }
}
