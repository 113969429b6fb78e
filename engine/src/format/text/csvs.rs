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

use crate::data::numpy_f32;
use crate::data::{ArrayData, Axis, Column, DataFrame, Element, Mapping, Matrix};
use crate::error::{Result, ResultExt};
use crate::format::write::staging::Staged;
use crate::format::AnnDataElements;
use crate::format::{block_ranges, MatrixBlocks};
use crate::select::AxisIndex;
use crate::Error;

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
    let input = CsvsInput {
        obs: &elems.obs,
        var: &elems.var,
        obsm: two_d_arrays(&elems.obsm),
        varm: two_d_arrays(&elems.varm),
        x: (!skip_data).then(|| elems.x.as_ref().map(|x| x as &dyn MatrixBlocks)),
        uns: &elems.uns,
        block_bytes: 64 << 20,
    };
    write_csvs_from(dir, &input, sep)
}

/// The 2-d arrays of `m`, in order: the obsm/varm values a CSV file holds.
pub fn two_d_arrays(m: &Mapping) -> Vec<(String, &dyn MatrixBlocks)> {
    m.iter()
        .filter_map(|(key, value)| match value {
            Element::Array(a) if a.ndim() == 2 => Some((key.clone(), a as &dyn MatrixBlocks)),
            _ => None,
        })
        .collect()
}

/// What a directory of CSV files is written from: the annotations and uns in memory, the
/// matrices read a block of rows at a time (see [`write_csvs_from`]).
pub struct CsvsInput<'a> {
    /// `obs.csv`.
    pub obs: &'a DataFrame,
    /// `var.csv`.
    pub var: &'a DataFrame,
    /// `obsm.csv`: the 2-d arrays of obsm, in order (anndata writes nothing readable for the
    /// other values).
    pub obsm: Vec<(String, &'a dyn MatrixBlocks)>,
    /// `varm.csv`, as `obsm`.
    pub varm: Vec<(String, &'a dyn MatrixBlocks)>,
    /// `X.csv`: `None` to skip it (anndata's `skip_data`), `Some(None)` for an object
    /// without X (an empty file).
    pub x: Option<Option<&'a dyn MatrixBlocks>>,
    /// `uns/KEY.csv` for each array, scalar and frame.
    pub uns: &'a Mapping,
    /// The bytes the text of a block of rows may take (at least one row a block).
    pub block_bytes: usize,
}

impl std::fmt::Debug for CsvsInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |m: &[(String, &dyn MatrixBlocks)]| {
            m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
        };
        f.debug_struct("CsvsInput")
            .field("obsm", &keys(&self.obsm))
            .field("varm", &keys(&self.varm))
            .field("x", &self.x.map(|x| x.map(|x| x.shape())))
            .field("block_bytes", &self.block_bytes)
            .finish_non_exhaustive()
    }
}

/// [`write_csvs`] from annotations in memory and matrices read a block of rows at a time, so
/// that memory holds the annotations and one block's text whatever the matrices' sizes.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use annpage_engine::data::{DataFrame, Mapping, Matrix};
/// use annpage_engine::format::text::csvs::{write_csvs_from, CsvsInput};
/// let x = Matrix::from(ndarray::arr2(&[[1.5f32, 0.0]]));
/// let (obs, var, uns) = (DataFrame::with_default_index(1), DataFrame::with_default_index(2), Mapping::new());
/// let input = CsvsInput { obs: &obs, var: &var, obsm: vec![], varm: vec![], x: Some(Some(&x)), uns: &uns, block_bytes: 1 << 20 };
/// write_csvs_from(&dir.path().join("out"), &input, ',')?;
/// assert_eq!(std::fs::read_to_string(dir.path().join("out/X.csv"))?, "1.5,0.0\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_csvs_from(dir: &Path, input: &CsvsInput<'_>, sep: char) -> Result<()> {
    let dir = match dir.extension() {
        Some(e) if e == "csv" => dir.with_extension(""),
        _ => dir.to_path_buf(),
    };
    // The directories made here are removed again if a file cannot be written.
    let made: Vec<PathBuf> = [dir.join("uns"), dir.clone()]
        .into_iter()
        .filter(|d| !d.exists())
        .collect();
    fs::create_dir_all(dir.join("uns")).in_file(&dir)?;
    let written = write_files(&dir, input, sep);
    if written.is_err() {
        for d in &made {
            let _ = fs::remove_dir(d);
        }
    }
    written
}

/// The longest file name most file systems take, in bytes (Linux's `NAME_MAX`).
const NAME_MAX: usize = 255;

/// The files of [`write_csvs_from`] into the directory `dir`, which exists.
fn write_files(dir: &Path, input: &CsvsInput<'_>, sep: char) -> Result<()> {
    // A name no file can have fails here, before anything is written (it failed renaming
    // into place, after the files before it).
    if let Some(key) = input.uns.keys().find(|k| k.len() + ".csv".len() > NAME_MAX) {
        return Err(Error::invalid(format!(
            "the uns key makes a file name longer than {NAME_MAX} bytes"
        ))
        .in_element(format!("/uns/{key}"))
        .in_file(dir));
    }
    let csv = Csv {
        sep,
        written: RefCell::new(Vec::new()),
        block_bytes: input.block_bytes,
    };
    csv.write(&dir.join("obs.csv"), |w| csv.frame(w, input.obs))?;
    csv.write(&dir.join("var.csv"), |w| csv.frame(w, input.var))?;
    csv.write(&dir.join("obsm.csv"), |w| {
        csv.axis_arrays(w, &input.obsm, input.obs.nrows())
    })?;
    csv.write(&dir.join("varm.csv"), |w| {
        csv.axis_arrays(w, &input.varm, input.var.nrows())
    })?;
    if let Some(x) = input.x {
        csv.write(&dir.join("X.csv"), |w| match x {
            Some(x) => csv.axis_arrays_rows(w, &[("", x)]),
            // pandas' frame of None: an empty file.
            None => Ok(()),
        })?;
    }
    for (key, value) in input.uns {
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
    // as it was; one while renaming takes back the new files renamed before it).
    let mut renamed = Vec::new();
    for (staged, path) in csv.written.into_inner() {
        let new = !path.exists();
        if let Err(e) = staged.commit(&path).in_file(&path) {
            for p in renamed {
                let _ = fs::remove_file(p);
            }
            return Err(e);
        }
        if new {
            renamed.push(path);
        }
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
    /// The bytes of text a block of rows may take.
    block_bytes: usize,
}

impl Csv {
    /// Writes `path` through `body`, staged beside it (as every output: see [`Staged`]) and
    /// renamed into place with the others once all are written.
    fn write(
        &self,
        path: &Path,
        body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let staged = Staged::beside(path).in_file(path)?;
        let file = File::options()
            .write(true)
            .open(staged.path())
            .in_file(path)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        if let Err(e) = body(&mut w) {
            // An input's error (a block that could not be read) names its own file.
            return Err(match e.downcast::<crate::Error>() {
                Ok(input) => input,
                Err(e) => crate::Error::from(e).in_file(path),
            });
        }
        w.into_inner().map_err(|e| e.into_error()).in_file(path)?;
        self.written.borrow_mut().push((staged, path.to_path_buf()));
        Ok(())
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
    fn axis_arrays(
        &self,
        w: &mut dyn Write,
        arrays: &[(String, &dyn MatrixBlocks)],
        nrows: usize,
    ) -> std::io::Result<()> {
        let header: Vec<String> = arrays
            .iter()
            .flat_map(|(key, m)| (1..=m.shape().1).map(move |i| format!("{key}{i}")))
            .collect();
        if header.is_empty() {
            // pandas writes an empty header and one empty line a row.
            return w.write_all("\n".repeat(nrows + 1).as_bytes());
        }
        self.line(w, &header.iter().map(String::as_str).collect::<Vec<_>>())?;
        let arrays: Vec<(&str, &dyn MatrixBlocks)> =
            arrays.iter().map(|(k, m)| (k.as_str(), *m)).collect();
        self.axis_arrays_rows(w, &arrays)
    }

    /// The rows of matrices side by side (of one height), dense, a block of rows at a time;
    /// a row without fields as an empty line.
    fn axis_arrays_rows(
        &self,
        w: &mut dyn Write,
        arrays: &[(&str, &dyn MatrixBlocks)],
    ) -> std::io::Result<()> {
        // Each field becomes a string (about 48 bytes with its text) before it is written.
        let width: usize = arrays.iter().map(|(_, m)| m.shape().1).sum();
        let per = (self.block_bytes / 48 / width.max(1)).max(1);
        let mut emit = |rows: Vec<Vec<String>>| -> std::io::Result<()> {
            for row in rows {
                if row.is_empty() {
                    w.write_all(b"\n")?;
                } else {
                    let fields: Vec<&str> = row.iter().map(String::as_str).collect();
                    self.line(w, &fields)?;
                }
            }
            Ok(())
        };
        let [(_, m)] = arrays else {
            return self.side_by_side(arrays, width, per, &mut emit);
        };
        for block in m.blocks(Axis::Obs, per).map_err(io)? {
            emit(array_rows(&dense(block)?))?;
        }
        Ok(())
    }

    /// [`Csv::axis_arrays_rows`] of several matrices: the rows of a block read from each in
    /// turn (reading them side by side would hold a block of each at once), as many as take
    /// about the block's bytes dense (8 a value), written `per` rows at a time.
    fn side_by_side(
        &self,
        arrays: &[(&str, &dyn MatrixBlocks)],
        width: usize,
        per: usize,
        emit: &mut dyn FnMut(Vec<Vec<String>>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Some(n) = arrays.first().map(|(_, m)| m.shape().0) else {
            return Ok(());
        };
        if let Some((key, _)) = arrays.iter().find(|(_, m)| m.shape().0 != n) {
            let e = crate::Error::shape(format!("'{key}' has not the {n} rows of the others"));
            return Err(io(e));
        }
        let read = (self.block_bytes / 8 / width.max(1)).max(per);
        for range in block_ranges(n, read).map_err(io)? {
            let mut blocks = Vec::with_capacity(arrays.len());
            for (_, m) in arrays {
                blocks.push(dense(m.block(Axis::Obs, range.clone()))?);
            }
            for part in block_ranges(range.len(), per).map_err(io)? {
                let part = AxisIndex::range(part, range.len()).map_err(io)?;
                let mut rows: Option<Vec<Vec<String>>> = None;
                for b in &blocks {
                    let more = array_rows(&b.subset(0, &part).map_err(io)?);
                    match &mut rows {
                        None => rows = Some(more),
                        Some(rows) => rows.iter_mut().zip(more).for_each(|(r, m)| r.extend(m)),
                    }
                }
                emit(rows.unwrap_or_default())?;
            }
        }
        Ok(())
    }
}

/// An error of the engine as the `io::Error` a CSV body returns (taken out again by
/// [`Csv::write`]).
fn io(e: crate::Error) -> std::io::Error {
    std::io::Error::other(e)
}

/// A block read, dense.
fn dense(block: Result<Matrix>) -> std::io::Result<ArrayData> {
    match block.map_err(io)? {
        Matrix::Dense(a) => Ok(a),
        sparse => sparse.to_dense().map_err(io),
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
