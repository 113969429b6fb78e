//! Matrix Market (`.mtx`, `.mtx.gz`) files read into a CSR matrix, as `anndata.read_mtx` does.
//!
//! anndata reads with `scipy.io.mmread(path).astype(dtype)` and converts to CSR: coordinate
//! files keep their explicit zeros, duplicated entries are summed (after the cast) and every
//! row's indices are sorted; dense `array` files drop their zeros. Symmetric, skew-symmetric
//! and (real) Hermitian files are expanded to both triangles. Complex values are refused.

use std::path::Path;

use crate::data::{ArrayData, DType, SparseFormat, SparseMatrix};
use crate::error::{Error, Result};
use crate::format::write::CsrAppender;

use super::Lines;

/// How the entries are laid out: a list of coordinates or every value of a dense matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtxLayout {
    /// `coordinate`: one `row col [value]` line per stored entry.
    Coordinate,
    /// `array`: every value, column by column.
    Array,
}

/// The type of the values written in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `real` or `double`.
    Real,
    /// `integer`, `signed-integer` or `unsigned-integer`.
    Integer,
    /// `pattern`: coordinates only, every value is 1.
    Pattern,
}

/// Which entries the file spells out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symmetry {
    /// Every entry.
    General,
    /// The lower triangle; `a[j, i] = a[i, j]`.
    Symmetric,
    /// The strict lower triangle; `a[j, i] = -a[i, j]`.
    SkewSymmetric,
    /// The lower triangle of a Hermitian matrix (real values: as symmetric).
    Hermitian,
}

/// The banner and size line of a Matrix Market file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MtxHeader {
    /// Rows × columns.
    pub shape: (usize, usize),
    /// Entries the file declares (coordinate layout; rows × columns for arrays).
    pub entries: u64,
    /// Coordinates or dense values.
    pub layout: MtxLayout,
    /// Type of the values.
    pub field: Field,
    /// Which triangle is written.
    pub symmetry: Symmetry,
}

/// Reads a Matrix Market file into a canonical CSR matrix of `dtype` (`F32` is anndata's
/// default; `F64`, `I32` and `I64` are also accepted: real values read as integers are
/// truncated toward zero, as anndata's `astype` makes them).
///
/// Errors name the file and the line: a bad banner, a size line that does not parse, an index
/// past the shape, more or fewer entries than the header declares.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("m.mtx");
/// std::fs::write(&path, "%%MatrixMarket matrix coordinate integer general\n2 3 2\n2 3 7\n1 1 4\n")?;
/// let m = annpage_engine::format::text::mtx::read_mtx(&path, annpage_engine::data::DType::F32)?;
/// assert_eq!(m.shape(), (2, 3));
/// assert_eq!(m.indptr(), [0, 1, 2]);
/// assert_eq!(m.indices(), [0, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_mtx(path: &Path, dtype: DType) -> Result<SparseMatrix> {
    let mut lines = Lines::open(path)?;
    let header = read_header(&mut lines)?;
    check_dtype(dtype)?;
    match dtype {
        DType::F32 => read_values::<f32>(&mut lines, &header),
        DType::F64 => read_values::<f64>(&mut lines, &header),
        DType::I32 => read_values::<i32>(&mut lines, &header),
        _ => read_values::<i64>(&mut lines, &header),
    }
}

/// Fails unless the file's values can be read as `dtype`: float32, float64, int32 or int64.
/// The readers dispatch on those four.
fn check_dtype(dtype: DType) -> Result<()> {
    match dtype {
        DType::F32 | DType::F64 | DType::I32 | DType::I64 => Ok(()),
        other => Err(Error::invalid(format!(
            "a Matrix Market file is read as float32, float64, int32 or int64, not {}",
            other.name()
        ))),
    }
}

/// Reads the banner and the size line, leaving `lines` at the first entry.
pub fn read_header(lines: &mut Lines) -> Result<MtxHeader> {
    let banner = match lines.next_str()? {
        Some(b) => b.to_ascii_lowercase(),
        None => return Err(lines.malformed("empty file, expected a %%MatrixMarket banner")),
    };
    let words: Vec<&str> = banner.split_ascii_whitespace().collect();
    if words.len() != 5 || words[0] != "%%matrixmarket" || words[1] != "matrix" {
        return Err(lines.malformed(
            "expected the banner '%%MatrixMarket matrix <coordinate|array> <field> <symmetry>'",
        ));
    }
    let layout = match words[2] {
        "coordinate" => MtxLayout::Coordinate,
        "array" => MtxLayout::Array,
        w => return Err(lines.malformed(format!("unknown layout '{w}'"))),
    };
    let field = match words[3] {
        "real" | "double" => Field::Real,
        "integer" | "signed-integer" | "unsigned-integer" => Field::Integer,
        "pattern" if layout == MtxLayout::Coordinate => Field::Pattern,
        "complex" => return Err(lines.error(Error::unsupported("complex values"))),
        w => return Err(lines.malformed(format!("unknown field '{w}'"))),
    };
    let symmetry = match words[4] {
        "general" => Symmetry::General,
        "symmetric" => Symmetry::Symmetric,
        "skew-symmetric" => Symmetry::SkewSymmetric,
        "hermitian" => Symmetry::Hermitian,
        w => return Err(lines.malformed(format!("unknown symmetry '{w}'"))),
    };
    let size = loop {
        match lines.next_line()? {
            None => return Err(lines.malformed("no size line after the banner")),
            Some(l) if is_blank_or_comment(l) => continue,
            Some(l) => {
                break parse_integers(l).ok_or_else(|| {
                    lines.malformed("the size line must hold non-negative integers")
                })?
            }
        }
    };
    let (rows, cols, entries) = match (layout, size.as_slice()) {
        (MtxLayout::Coordinate, &[r, c, n]) => (r, c, n),
        (MtxLayout::Array, &[r, c]) => (r, c, r.saturating_mul(c)),
        (MtxLayout::Coordinate, _) => {
            return Err(lines.malformed("expected 'rows columns entries' on the size line"))
        }
        (MtxLayout::Array, _) => {
            return Err(lines.malformed("expected 'rows columns' on the size line"))
        }
    };
    if rows > u32::MAX as u64 || cols > u32::MAX as u64 {
        return Err(lines.error(Error::unsupported(format!(
            "a {rows} × {cols} matrix: each dimension must be below 2^32"
        ))));
    }
    // Each row takes 8 bytes of offsets and each row and column a name (`0`, `1`, … when no
    // other file names them) whatever the file holds: a header declaring far more of them
    // than entries (a three-line file declaring 10^9 rows took 24 GB) is refused.
    let limit = entries.saturating_mul(64).max(1 << 26);
    for (n, what) in [(rows, "rows"), (cols, "columns")] {
        if n > limit {
            return Err(lines.malformed(format!(
                "the header declares {n} {what} for {entries} entries; refusing to allocate \
                 their offsets and names"
            )));
        }
    }
    crate::memory::check_memory(
        rows.saturating_add(cols).saturating_mul(48),
        "the offsets and names of the rows and columns the header declares",
    )
    .map_err(|e| lines.error(e))?;
    if symmetry != Symmetry::General && rows != cols {
        return Err(lines.malformed(format!(
            "a non-square {rows} × {cols} matrix cannot be symmetric"
        )));
    }
    Ok(MtxHeader {
        shape: (rows as usize, cols as usize),
        entries,
        layout,
        field,
        symmetry,
    })
}

fn is_blank_or_comment(line: &[u8]) -> bool {
    line.starts_with(b"%") || line.iter().all(u8::is_ascii_whitespace)
}

fn parse_integers(line: &[u8]) -> Option<Vec<u64>> {
    line.split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
        .map(parse_u64)
        .collect()
}

fn parse_u64(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 19 {
        return None;
    }
    word.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// A value type a Matrix Market file is read into.
trait Value: Copy + Default + std::ops::AddAssign + Send + 'static {
    fn from_real(v: f64) -> Self;
    fn from_integer(v: i64) -> Self;
    fn negate(self) -> Self;
    fn is_zero(self) -> bool;
    fn into_array(values: Vec<Self>) -> ArrayData;
}

macro_rules! value {
    ($t:ty, $neg:expr) => {
        impl Value for $t {
            fn from_real(v: f64) -> Self {
                v as $t
            }
            fn from_integer(v: i64) -> Self {
                v as $t
            }
            fn negate(self) -> Self {
                $neg(self)
            }
            fn is_zero(self) -> bool {
                self == (0 as $t)
            }
            fn into_array(values: Vec<Self>) -> ArrayData {
                ArrayData::from(values)
            }
        }
    };
}
value!(f32, |v: f32| -v);
value!(f64, |v: f64| -v);
value!(i32, i32::wrapping_neg);
value!(i64, i64::wrapping_neg);

/// Entries in file order, in the file's orientation.
struct Entries<T> {
    rows: Vec<u32>,
    cols: Vec<u32>,
    values: Vec<T>,
    rows_sorted: bool,
}

impl<T: Value> Entries<T> {
    fn push(&mut self, row: u32, col: u32, value: T) {
        if self.rows.last().is_some_and(|&last| last > row) {
            self.rows_sorted = false;
        }
        self.rows.push(row);
        self.cols.push(col);
        self.values.push(value);
    }

    /// Adds an entry and, outside the diagonal of a symmetric file, its mirror image.
    fn push_mirrored(&mut self, row: u32, col: u32, value: T, symmetry: Symmetry) {
        self.push(row, col, value);
        if row != col {
            match symmetry {
                Symmetry::General => {}
                Symmetry::Symmetric | Symmetry::Hermitian => self.push(col, row, value),
                Symmetry::SkewSymmetric => self.push(col, row, value.negate()),
            }
        }
    }
}

fn read_values<T: Value>(lines: &mut Lines, header: &MtxHeader) -> Result<SparseMatrix> {
    let (n_rows, n_cols) = header.shape;
    let mut entries: Entries<T> = Entries {
        rows: Vec::new(),
        cols: Vec::new(),
        values: Vec::new(),
        rows_sorted: true,
    };
    match header.layout {
        MtxLayout::Coordinate => read_coordinates(lines, header, &mut entries)?,
        MtxLayout::Array => read_dense(lines, header, &mut entries)?,
    }
    csr_from_entries(n_rows, n_cols, entries)
}

fn read_coordinates<T: Value>(
    lines: &mut Lines,
    header: &MtxHeader,
    entries: &mut Entries<T>,
) -> Result<()> {
    let mut seen = 0u64;
    loop {
        let parsed = match lines.next_line()? {
            None => break,
            Some(line) if is_blank_or_comment(line) => continue,
            Some(line) => parse_entry::<T>(line, header),
        };
        let (row, col, value) = parsed.map_err(|m| lines.malformed(m))?;
        seen += 1;
        if seen > header.entries {
            return Err(lines.malformed(format!(
                "more entries than the {} the header declares",
                header.entries
            )));
        }
        entries.push_mirrored(row, col, value, header.symmetry);
    }
    if seen != header.entries {
        return Err(lines.malformed(format!(
            "the header declares {} entries, the file ends after {seen}",
            header.entries
        )));
    }
    Ok(())
}

/// One `row column [value]` line, as 0-based positions checked against the shape.
fn parse_entry<T: Value>(
    line: &[u8],
    header: &MtxHeader,
) -> std::result::Result<(u32, u32, T), String> {
    let (n_rows, n_cols) = header.shape;
    let mut words = line
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty());
    let (Some(r), Some(c)) = (words.next(), words.next()) else {
        return Err("expected 'row column [value]'".into());
    };
    let position = |w: &[u8], n: usize, what: &str| match parse_u64(w) {
        Some(i) if i >= 1 && i <= n as u64 => Ok((i - 1) as u32),
        Some(i) => Err(format!("{what} {i} is outside 1..={n}")),
        None => Err(format!(
            "{what} '{}' is not a positive integer",
            String::from_utf8_lossy(w)
        )),
    };
    let row = position(r, n_rows, "row")?;
    let col = position(c, n_cols, "column")?;
    let value = match header.field {
        Field::Pattern => T::from_integer(1),
        field => parse_value(words.next(), field)?,
    };
    if words.next().is_some() {
        return Err("more fields than 'row column value'".into());
    }
    Ok((row, col, value))
}

/// Values of a dense file, column by column (lower triangle for symmetric files); zeros are
/// not stored, as `csr_matrix(dense)` does not store them.
fn read_dense<T: Value>(
    lines: &mut Lines,
    header: &MtxHeader,
    entries: &mut Entries<T>,
) -> Result<()> {
    let (n_rows, n_cols) = header.shape;
    // (row, column) of the next value, or None once every value has been read.
    let first_row = |col: usize| match header.symmetry {
        Symmetry::General => 0,
        Symmetry::SkewSymmetric => col + 1,
        Symmetry::Symmetric | Symmetry::Hermitian => col,
    };
    let advance = |(row, col): (usize, usize)| -> Option<(usize, usize)> {
        let mut next = (row + 1, col);
        while next.0 >= n_rows {
            next.1 += 1;
            if next.1 >= n_cols {
                return None;
            }
            next.0 = first_row(next.1);
        }
        Some(next)
    };
    let mut at = if n_cols == 0 || first_row(0) >= n_rows {
        None
    } else {
        Some((first_row(0), 0))
    };
    let mut values: Vec<T> = Vec::new();
    loop {
        values.clear();
        let parsed = match lines.next_line()? {
            None => break,
            Some(line) if is_blank_or_comment(line) => continue,
            Some(line) => line
                .split(u8::is_ascii_whitespace)
                .filter(|w| !w.is_empty())
                .try_for_each(|w| parse_value(Some(w), header.field).map(|v| values.push(v))),
        };
        parsed.map_err(|m| lines.malformed(m))?;
        for &value in &values {
            let Some((row, col)) = at else {
                return Err(lines.malformed("more values than the header's shape holds"));
            };
            if !value.is_zero() {
                entries.push_mirrored(row as u32, col as u32, value, header.symmetry);
            }
            at = advance((row, col));
        }
    }
    if at.is_some() {
        return Err(lines.malformed(format!(
            "the file ends before all {} × {} values",
            n_rows, n_cols
        )));
    }
    Ok(())
}

fn parse_value<T: Value>(word: Option<&[u8]>, field: Field) -> std::result::Result<T, String> {
    let word = word.ok_or("missing value")?;
    let text = std::str::from_utf8(word).map_err(|_| "a value is not ASCII text".to_owned())?;
    match field {
        Field::Integer => text
            .parse::<i64>()
            .map(T::from_integer)
            .map_err(|_| format!("'{text}' is not an integer")),
        _ => text
            .parse::<f64>()
            .map(T::from_real)
            .map_err(|_| format!("'{text}' is not a number")),
    }
}

/// Writes a coordinate file whose entries come row by row (any order within a row) as the CSR
/// `X` of `root`, as [`read_mtx`] would read it, a block of about a million values at a time.
/// Returns `Ok(false)`, having written nothing useful, when the file is not in row order (or
/// not `coordinate general`): the caller then reads it whole.
pub fn write_rows_sorted(
    path: &Path,
    dtype: DType,
    root: &dyn crate::storage::GroupWriter,
    options: &crate::format::WriteOptions,
) -> Result<bool> {
    let mut lines = Lines::open(path)?;
    let header = read_header(&mut lines)?;
    if header.layout != MtxLayout::Coordinate || header.symmetry != Symmetry::General {
        return Ok(false);
    }
    check_dtype(dtype)?;
    match dtype {
        DType::F32 => stream::<f32>(&mut lines, &header, root, options),
        DType::F64 => stream::<f64>(&mut lines, &header, root, options),
        DType::I32 => stream::<i32>(&mut lines, &header, root, options),
        _ => stream::<i64>(&mut lines, &header, root, options),
    }
}

/// Canonical rows gathered into blocks and appended to the output.
struct RowBlocks<T> {
    out: CsrAppender,
    /// The row the entries of `current` belong to.
    row: usize,
    current: Vec<(u32, T)>,
    indices: Vec<u32>,
    values: Vec<T>,
    row_ends: Vec<u64>,
}

impl<T: Value> RowBlocks<T> {
    const BLOCK: usize = 1 << 20;

    /// Ends the rows before `row` (the current one and any empty ones after it), appending
    /// the block when it is full.
    fn advance_to(&mut self, row: usize) -> Result<()> {
        while self.row < row {
            merge_row(&mut self.current, |c, v| {
                self.indices.push(c);
                self.values.push(v);
            });
            self.current.clear();
            self.row_ends.push(self.indices.len() as u64);
            self.row += 1;
            if self.indices.len() >= Self::BLOCK {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let values = T::into_array(std::mem::take(&mut self.values));
        self.out.push(&values, &self.indices, &self.row_ends)?;
        self.indices.clear();
        self.row_ends.clear();
        Ok(())
    }
}

fn stream<T: Value>(
    lines: &mut Lines,
    header: &MtxHeader,
    root: &dyn crate::storage::GroupWriter,
    options: &crate::format::WriteOptions,
) -> Result<bool> {
    let max_values = usize::try_from(header.entries).unwrap_or(usize::MAX);
    let dtype = T::into_array(Vec::new()).dtype();
    let mut blocks = RowBlocks::<T> {
        out: CsrAppender::create(root, "X", header.shape, dtype, max_values, options)?,
        row: 0,
        current: Vec::new(),
        indices: Vec::new(),
        values: Vec::new(),
        row_ends: Vec::new(),
    };
    let mut seen = 0u64;
    loop {
        let parsed = match lines.next_line()? {
            None => break,
            Some(line) if is_blank_or_comment(line) => continue,
            Some(line) => parse_entry::<T>(line, header),
        };
        let (r, c, v) = parsed.map_err(|m| lines.malformed(m))?;
        seen += 1;
        if seen > header.entries {
            return Err(lines.malformed(format!(
                "more entries than the {} the header declares",
                header.entries
            )));
        }
        if (r as usize) < blocks.row {
            return Ok(false);
        }
        blocks.advance_to(r as usize)?;
        blocks.current.push((c, v));
    }
    if seen != header.entries {
        return Err(lines.malformed(format!(
            "the header declares {} entries, the file ends after {seen}",
            header.entries
        )));
    }
    blocks.advance_to(header.shape.0)?;
    blocks.flush()?;
    Ok(true)
}

/// Sorts a row's entries by column (stably) and hands each column once to `emit`, its values
/// summed in file order, as `scipy.sparse.csr_matrix.sum_duplicates` does.
fn merge_row<T: Value>(row: &mut [(u32, T)], mut emit: impl FnMut(u32, T)) {
    row.sort_by_key(|&(c, _)| c);
    let mut k = 0;
    while k < row.len() {
        let (c, mut v) = row[k];
        k += 1;
        while k < row.len() && row[k].0 == c {
            v += row[k].1;
            k += 1;
        }
        emit(c, v);
    }
}

/// A canonical CSR matrix (indices sorted in each row, duplicates summed) from entries.
fn csr_from_entries<T: Value>(n_rows: usize, n_cols: usize, e: Entries<T>) -> Result<SparseMatrix> {
    let nnz = e.values.len();
    let mut indptr = vec![0u64; n_rows + 1];
    for &r in &e.rows {
        indptr[r as usize + 1] += 1;
    }
    for i in 0..n_rows {
        indptr[i + 1] += indptr[i];
    }
    let (mut indices, mut values) = if e.rows_sorted {
        (e.cols, e.values)
    } else {
        let mut next: Vec<u64> = indptr[..n_rows].to_vec();
        let mut indices = vec![0u32; nnz];
        let mut values = vec![T::default(); nnz];
        for ((&r, &c), &v) in e.rows.iter().zip(&e.cols).zip(&e.values) {
            let at = &mut next[r as usize];
            indices[*at as usize] = c;
            values[*at as usize] = v;
            *at += 1;
        }
        (indices, values)
    };
    canonicalize(&mut indptr, &mut indices, &mut values);
    SparseMatrix::new(
        SparseFormat::Csr,
        (n_rows, n_cols),
        indptr,
        indices,
        T::into_array(values),
    )
}

/// Sorts each row's entries by column (stably) and sums duplicates in order, compacting the
/// arrays as `scipy.sparse.csr_matrix.sum_duplicates` does.
fn canonicalize<T: Value>(indptr: &mut [u64], indices: &mut Vec<u32>, values: &mut Vec<T>) {
    let canonical = indptr.windows(2).all(|w| {
        indices[w[0] as usize..w[1] as usize]
            .windows(2)
            .all(|p| p[0] < p[1])
    });
    if canonical {
        return;
    }
    let mut write = 0usize;
    let mut row: Vec<(u32, T)> = Vec::new();
    for i in 0..indptr.len() - 1 {
        let (start, end) = (indptr[i] as usize, indptr[i + 1] as usize);
        row.clear();
        row.extend(
            indices[start..end]
                .iter()
                .copied()
                .zip(values[start..end].iter().copied()),
        );
        indptr[i] = write as u64;
        merge_row(&mut row, |c, v| {
            indices[write] = c;
            values[write] = v;
            write += 1;
        });
    }
    *indptr.last_mut().expect("indptr has n_rows + 1 entries") = write as u64;
    indices.truncate(write);
    values.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, dtype: DType) -> Result<SparseMatrix> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.mtx");
        std::fs::write(&path, text).unwrap();
        read_mtx(&path, dtype)
    }

    #[test]
    fn unsorted_coordinates_with_duplicates_become_canonical_csr() {
        let m = read(
            "%%MatrixMarket matrix coordinate real general\n% c\n3 4 5\n3 4 1.5\n1 2 2\n3 1 0\n3 4 0.25\n1 1 -1e-3\n",
            DType::F64,
        )
        .unwrap();
        assert_eq!(m.indptr(), [0, 2, 2, 4]);
        assert_eq!(m.indices(), [0, 1, 0, 3]);
        assert_eq!(m.data(), &ArrayData::from(vec![-1e-3, 2.0, 0.0, 1.75]));
    }

    #[test]
    fn symmetric_and_dense_files_expand_like_mmread() {
        let s = read(
            "%%MatrixMarket matrix coordinate pattern symmetric\n2 2 2\n1 1\n2 1\n",
            DType::I64,
        )
        .unwrap();
        assert_eq!(s.indices(), [0, 1, 0]);
        assert_eq!(s.data(), &ArrayData::from(vec![1i64, 1, 1]));
        let d = read(
            "%%MatrixMarket matrix array integer skew-symmetric\n3 3\n5\n0\n7\n",
            DType::F32,
        )
        .unwrap();
        // The strict lower triangle, column by column: a[1,0] = 5, a[2,0] = 0, a[2,1] = 7.
        assert_eq!(d.indptr(), [0, 1, 3, 4]);
        assert_eq!(d.indices(), [1, 0, 2, 1]);
        assert_eq!(d.data(), &ArrayData::from(vec![-5.0f32, 5.0, -7.0, 7.0]));
    }

    #[test]
    fn bad_files_name_the_line() {
        let cases = [
            ("", "line 0"),
            (
                "%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1\n",
                "line 3",
            ),
            (
                "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n",
                "line 3",
            ),
            (
                "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\n2 2 2\n",
                "line 4",
            ),
            (
                "%%MatrixMarket matrix coordinate complex general\n2 2 1\n",
                "line 1",
            ),
            (
                "%%MatrixMarket matrix coordinate real general\n2 x 1\n",
                "line 2",
            ),
            (
                "%%MatrixMarket matrix coordinate real general\n99999999999 2 1\n",
                "line 2",
            ),
            // Far more columns than entries: their names alone would take gigabytes.
            (
                "%%MatrixMarket matrix coordinate real general\n3 1000000000 1\n1 1 1\n",
                "line 2: malformed element: the header declares 1000000000 columns",
            ),
            (
                "%%MatrixMarket matrix array real general\n2 2\n1 2 3\n",
                "line 3",
            ),
        ];
        for (text, line) in cases {
            let e = read(text, DType::F32).unwrap_err().to_string();
            assert!(e.contains("m.mtx") && e.contains(line), "{text:?}: {e}");
        }
    }
}
