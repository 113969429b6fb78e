//! Loom files (loompy's HDF5 layout), read as `anndata.io.read_loom` reads them and written as
//! `AnnData.write_loom` writes them through `loompy.create`.
//!
//! A loom file holds genes × cells: `/matrix` and `/layers/*` (dense), `/row_attrs/*` (per
//! gene) and `/col_attrs/*` (per cell), `/attrs/*` (global). anndata transposes, takes X from the
//! `spliced` layer when there is one, and names cells and genes from `CellID` and `Gene`.

use indexmap::IndexMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hdf5::Group;
use ndarray::{ArrayD, IxDyn};

use crate::data::{ArrayData, Column, DataFrame, Element, Matrix, SparseFormat, SparseMatrix};
use crate::error::{Error, Result, ResultExt};
use crate::format::write::staging::Staged;
use crate::format::AnnDataElements;
use crate::map_array;
use crate::select::AxisIndex;
use crate::storage::h5::write::{
    create_array, write_array, write_block, ArrayOptions, Compression,
};
use crate::storage::h5::{self, read::read_array};

/// How to read a loom file: `anndata.io.read_loom`'s arguments and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoomOptions {
    /// The layer that becomes X when the file has it (else the main matrix does, and the
    /// main matrix is also kept as `layers["matrix"]`). anndata's default: `spliced`.
    pub x_name: String,
    /// The cell attribute holding the cell names (`CellID`).
    pub obs_names: String,
    /// The gene attribute holding the gene names (`Gene`).
    pub var_names: String,
    /// Matrices as CSR (anndata's default) or dense.
    pub sparse: bool,
}

impl Default for LoomOptions {
    fn default() -> Self {
        LoomOptions {
            x_name: "spliced".into(),
            obs_names: "CellID".into(),
            var_names: "Gene".into(),
            sparse: true,
        }
    }
}

/// Reads a loom file as `anndata.io.read_loom(path, sparse=…, X_name=…, obs_names=…,
/// var_names=…)` does: X float32 (CSR, zeros left out, or dense), the other layers float64
/// CSR (or dense as stored), one-column attributes as obs/var columns, wider ones as
/// obsm/varm, strings as loompy returns them (non-ASCII characters dropped, XML character
/// references decoded).
///
/// ```no_run
/// use annpage_engine::format::loom::{read_loom, LoomOptions};
/// let elems = read_loom("cells.loom".as_ref(), &LoomOptions::default())?;
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn read_loom(path: &Path, options: &LoomOptions) -> Result<AnnDataElements> {
    let file = h5::open_read(path).in_file(path)?;
    read_file(&file, options).in_file(path)
}

fn read_file(file: &hdf5::File, options: &LoomOptions) -> Result<AnnDataElements> {
    let main = matrix(file, "matrix").in_element("/matrix")?;
    let (n_genes, n_cells) = match main.shape() {
        &[g, c] => (g, c),
        s => return Err(Error::malformed(format!("a {}-d matrix", s.len())).in_element("/matrix")),
    };
    let layer_names = if file.link_exists("layers") {
        // The trait's order (h5py's), not libhdf5's native one (inherent `member_names`).
        crate::storage::Group::member_names(&h5::open_group(file, "layers").in_element("/layers")?)?
    } else {
        Vec::new()
    };
    let layer = |name: &str| -> Result<ArrayData> {
        let m = matrix(file, &format!("layers/{name}")).in_element(format!("/layers/{name}"))?;
        if m.shape() != [n_genes, n_cells] {
            return Err(Error::shape(format!(
                "layer of shape {:?}, the matrix is {n_genes} × {n_cells}",
                m.shape()
            ))
            .in_element(format!("/layers/{name}")));
        }
        Ok(m)
    };
    let cells_by_genes = |m: &ArrayData, x: bool| -> Result<Matrix> {
        if options.sparse {
            Ok(Matrix::Sparse(sparse_transposed(m, x)?))
        } else {
            let t = map_array!(m, a => a.t().as_standard_layout().into_owned());
            Ok(Matrix::Dense(if x { cast_f32(&t)? } else { t }))
        }
    };
    let x_from_layer = layer_names.contains(&options.x_name) && !options.x_name.is_empty();
    let mut elems = AnnDataElements::empty(n_cells, n_genes);
    if x_from_layer {
        elems.x = Some(cells_by_genes(&layer(&options.x_name)?, true)?);
        elems
            .layers
            .insert("matrix".into(), cells_by_genes(&main, false)?);
    } else {
        elems.x = Some(cells_by_genes(&main, true)?);
    }
    drop(main);
    for name in &layer_names {
        elems
            .layers
            .insert(name.clone(), cells_by_genes(&layer(name)?, false)?);
    }
    let (obs, obsm) = attributes(file, "col_attrs", n_cells, &options.obs_names)?;
    let (var, varm) = attributes(file, "row_attrs", n_genes, &options.var_names)?;
    elems.obs = obs;
    elems.obsm = obsm;
    elems.var = var;
    elems.varm = varm;
    Ok(elems)
}

fn matrix(file: &hdf5::File, name: &str) -> Result<ArrayData> {
    if !file.link_exists(name) {
        return Err(Error::malformed("missing dataset"));
    }
    let ds = h5::open_dataset(file, name)?;
    let m = read_array(&ds)?;
    if m.ndim() != 2 || !(m.dtype().is_integer() || m.dtype().is_float()) {
        return Err(Error::malformed(format!(
            "expected a 2-d matrix of numbers, found {}-d {}",
            m.ndim(),
            m.dtype()
        )));
    }
    Ok(m)
}

fn cast_f32(a: &ArrayData) -> Result<ArrayData> {
    let f = a.to_f64().ok_or_else(|| Error::malformed("not numbers"))?;
    Ok(ArrayData::F32(f.mapv(|v| v as f32)))
}

/// The cells × genes CSR of a genes × cells dense matrix: float32 for X (anndata's
/// `astype`), float64 for layers (loompy's `sparse()`), non-zero values only.
fn sparse_transposed(m: &ArrayData, x: bool) -> Result<SparseMatrix> {
    let (n_genes, n_cells) = (m.shape()[0], m.shape()[1]);
    let f = m.to_f64().ok_or_else(|| Error::malformed("not numbers"))?;
    let mut indptr = Vec::with_capacity(n_cells + 1);
    let mut indices = Vec::new();
    let mut values = Vec::new();
    indptr.push(0u64);
    for c in 0..n_cells {
        for g in 0..n_genes {
            let v = f[[g, c]];
            if v != 0.0 {
                indices.push(g as u32);
                values.push(v);
            }
        }
        indptr.push(indices.len() as u64);
    }
    let data = if x {
        ArrayData::from(values.into_iter().map(|v| v as f32).collect::<Vec<f32>>())
    } else {
        ArrayData::from(values)
    };
    SparseMatrix::new(SparseFormat::Csr, (n_cells, n_genes), indptr, indices, data)
}

/// One axis's attributes: a frame (indexed by `index` when present) and the wider arrays.
fn attributes(
    file: &hdf5::File,
    group: &str,
    n: usize,
    index: &str,
) -> Result<(DataFrame, crate::data::Mapping)> {
    let mut frame = DataFrame::with_default_index(n);
    let mut wide = crate::data::Mapping::new();
    if !file.link_exists(group) {
        return Ok((frame, wide));
    }
    let g = h5::open_group(file, group)?;
    let mut names = None;
    for name in crate::storage::Group::member_names(&g)? {
        let element = format!("/{group}/{name}");
        if crate::storage::Group::member_kind(&g, &name)? != Some(crate::storage::MemberKind::Array)
        {
            continue;
        }
        let ds = h5::open_dataset(&g, &name).in_element(&element)?;
        let mut values = read_array(&ds).in_element(&element)?;
        if values.ndim() == 0 || values.shape()[0] != n {
            return Err(Error::shape(format!(
                "{:?} values for {n} along the axis",
                values.shape()
            ))
            .in_element(element));
        }
        if let ArrayData::String(s) = &values {
            values = ArrayData::String(s.map(|v| loompy_string(v).into()));
        }
        match values.shape() {
            [_, w, ..] if *w > 1 => {
                wide.insert(name, Element::Array(values));
            }
            [_] | [_, 1] => {
                // Shape [n] or [n, 1], with n checked above: n values.
                let flat = map_array!(values, a => a.into_shape_with_order(IxDyn(&[n])).expect("n values"));
                if name == index {
                    names = Some((name, flat));
                } else {
                    frame
                        .insert(name, Column::Array(flat))
                        .in_element(element)?;
                }
            }
            shape => {
                return Err(Error::shape(format!(
                    "{shape:?} values: neither one a row (a column) nor several (an obsm/varm \
                     array)"
                ))
                .in_element(element));
            }
        }
    }
    if let Some((name, values)) = names {
        frame.set_index(ArrayData::from(values.to_python_strings()))?;
        frame.set_index_name(Some(name));
    }
    Ok((frame, wide))
}

/// A string as loompy hands it back: only its ASCII characters, with XML character
/// references (`&#233;`, `&#xe9;`) and the basic entities decoded.
fn loompy_string(s: &str) -> String {
    let ascii: String = s.chars().filter(char::is_ascii).collect();
    if !ascii.contains('&') {
        return ascii;
    }
    let mut out = String::with_capacity(ascii.len());
    let mut rest = ascii.as_str();
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity.strip_prefix('#').and_then(|num| {
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Writes `elems` as a loom file the way `AnnData.write_loom(path, write_obsm_varm)` does:
/// X and each layer transposed into genes × cells dense matrices (gzip level 2, 64 × 64
/// chunks), var and obs columns as row and column attributes in loompy's types (integers as
/// int64, floats as float64, bools as uint8, text and columns with missing values as strings),
/// the names under the index's name (`var_names`/`obs_names` by default); obsm/varm arrays as
/// attributes with `write_obsm_varm`. Written beside `path`, then renamed into place.
///
/// ```no_run
/// # let elems = annpage_engine::format::AnnDataElements::empty(2, 3);
/// annpage_engine::format::loom::write_loom("cells.loom".as_ref(), &elems, false)?;
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn write_loom(path: &Path, elems: &AnnDataElements, write_obsm_varm: bool) -> Result<()> {
    let x = elems.x.as_ref().ok_or_else(|| {
        Error::invalid("loompy does not accept empty matrices as data").in_file(path)
    })?;
    let (n_cells, n_genes) = x.shape();
    if n_cells == 0 || n_genes == 0 {
        return Err(Error::invalid("loompy refuses an empty main matrix").in_file(path));
    }
    let staged = Staged::beside(path).in_file(path)?;
    let write = || -> Result<()> {
        let file = hdf5::File::create(staged.path())?;
        for g in [
            "attrs",
            "layers",
            "row_attrs",
            "col_attrs",
            "row_graphs",
            "col_graphs",
        ] {
            file.create_group(g)?;
        }
        let attrs = file.group("attrs")?;
        let scalar = |s: String| ArrayData::String(ArrayD::from_elem(IxDyn(&[]), s.into()));
        write_array(
            &attrs,
            "CreationDate",
            &scalar(timestamp()),
            &ArrayOptions::default(),
        )?;
        write_array(
            &attrs,
            "LOOM_SPEC_VERSION",
            &scalar("3.0.0".into()),
            &ArrayOptions::default(),
        )?;
        write_matrix(&file, "matrix", x).in_element("/matrix")?;
        let layers = file.group("layers")?;
        for (name, m) in &elems.layers {
            write_matrix(&layers, name, m).in_element(format!("/layers/{name}"))?;
        }
        let wide = |m, what| write_obsm_varm.then_some((m, what));
        let rows = attributes_of(&elems.var, "var_names", wide(&elems.varm, "varm"))?;
        let cols = attributes_of(&elems.obs, "obs_names", wide(&elems.obsm, "obsm"))?;
        for (group, attrs) in [("row_attrs", rows), ("col_attrs", cols)] {
            let g = file.group(group)?;
            for (name, values) in attrs {
                write_array(&g, &name, &values, &attr_options())
                    .in_element(format!("/{group}/{name}"))?;
            }
        }
        file.close()?;
        Ok(())
    };
    write().in_file(path)?;
    staged.commit(path).in_file(path)
}

/// loompy's `timestamp()`: `%Y%m%dT%H%M%S.%fZ` in UTC.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:06}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        now.subsec_micros()
    )
}

/// A cells × genes matrix as a genes × cells dataset, written a block of cells at a time.
fn write_matrix(parent: &Group, name: &str, m: &Matrix) -> Result<()> {
    const BLOCK: usize = 4096;
    let (n_cells, n_genes) = m.shape();
    let dtype = match m {
        Matrix::Dense(a) => a.dtype(),
        Matrix::Sparse(s) => s.data().dtype(),
    };
    if !(dtype.is_integer() || dtype.is_float()) {
        return Err(Error::invalid(format!(
            "loom matrices hold numbers, not {dtype}"
        )));
    }
    if let Matrix::Dense(a) = m {
        if a.to_f64().is_some_and(|f| f.iter().any(|v| !v.is_finite())) {
            return Err(Error::invalid("INF and NaN not allowed in a loom matrix"));
        }
    }
    let options = ArrayOptions {
        compression: Compression::Gzip(2),
        chunks: Some(vec![n_genes.min(64), n_cells.min(64)]),
        ..ArrayOptions::default()
    };
    let ds = create_array(parent, name, dtype, &[n_genes, n_cells], &options)?;
    let genes = AxisIndex::full(n_genes);
    for start in (0..n_cells).step_by(BLOCK) {
        let end = (start + BLOCK).min(n_cells);
        let block = m
            .subset(&AxisIndex::range(start..end, n_cells)?, &genes)?
            .to_dense()?;
        let t = map_array!(&block, a => a.t().as_standard_layout().into_owned());
        write_block(&ds, &[0, start], &t)?;
    }
    Ok(())
}

fn attr_options() -> ArrayOptions {
    ArrayOptions::compressed(Compression::Gzip(2))
}

/// One axis's attributes as anndata's `write_loom` gives them to loompy: a dict of the frame's
/// columns (each as loompy stores `np.array(column.tolist())`), then the names under the
/// index's name (replacing a column of that name), then, with `wide`, the obsm/varm arrays
/// (replacing either). Names loompy refuses (with a slash) are refused.
fn attributes_of(
    frame: &DataFrame,
    default_index: &str,
    wide: Option<(&crate::data::Mapping, &str)>,
) -> Result<IndexMap<String, ArrayData>> {
    let mut attrs = IndexMap::new();
    for (name, column) in frame.columns() {
        attrs.insert(name.clone(), loompy_values(column));
    }
    let index = frame.index_name().unwrap_or(default_index);
    attrs.insert(
        index.to_owned(),
        ArrayData::from(frame.index().to_python_strings()),
    );
    let none = crate::data::Mapping::new();
    let (wide, what) = wide.unwrap_or((&none, ""));
    for (key, value) in wide {
        let Element::Array(a) = value else {
            return Err(Error::unsupported(format!(
                "{what}['{key}'] is not a dense array: loompy stores only arrays"
            )));
        };
        let a = match a {
            ArrayData::Bool(b) => ArrayData::U8(b.mapv(u8::from)),
            other => other.clone(),
        };
        attrs.insert(key.clone(), a);
    }
    if let Some(name) = attrs.keys().find(|n| n.contains('/') || n.is_empty()) {
        return Err(Error::invalid(format!(
            "'{name}' cannot name a loom attribute (loompy refuses empty names and slashes)"
        )));
    }
    Ok(attrs)
}

/// A column as `loompy.normalize_attr_values(np.array(series.tolist()))` stores it:
/// integers as int64, floats as float64, bools as uint8, strings as strings; a column with
/// missing values as the `str` of each value (`tolist()` makes pandas' NA `None`, NaN `nan`).
fn loompy_values(column: &Column) -> ArrayData {
    fn strings(values: Vec<String>) -> ArrayData {
        ArrayData::from(values)
    }
    match column {
        Column::Array(a) => normalized(a),
        Column::Categorical(c) => {
            let categories = normalized(&c.categories);
            let missing = c.codes.iter().any(|&k| k < 0);
            if !missing {
                let idx: Vec<usize> = c.codes.iter().map(|&k| k as usize).collect();
                return categories.select(0, &idx);
            }
            match &categories {
                // NaN among numbers: a float column.
                ArrayData::I64(_) | ArrayData::F64(_) => {
                    let f = categories.to_f64().expect("numbers");
                    let v: Vec<f64> = c
                        .codes
                        .iter()
                        .map(|&k| if k < 0 { f64::NAN } else { f[k as usize] })
                        .collect();
                    ArrayData::from(v)
                }
                // NaN among strings (or bools): each value's `str`.
                _ => {
                    let names = ArrayData::to_python_strings(&c.categories);
                    strings(
                        c.codes
                            .iter()
                            .map(|&k| {
                                if k < 0 {
                                    "nan".into()
                                } else {
                                    names[k as usize].clone()
                                }
                            })
                            .collect(),
                    )
                }
            }
        }
        Column::Nullable(n) => {
            if !n.mask().iter().any(|&m| m) {
                return normalized(n.values());
            }
            let values = ArrayData::to_python_strings(n.values());
            strings(
                values
                    .into_iter()
                    .zip(n.mask())
                    .map(|(v, &missing)| if missing { "None".into() } else { v })
                    .collect(),
            )
        }
    }
}

fn normalized(a: &ArrayData) -> ArrayData {
    match a {
        ArrayData::Bool(b) => ArrayData::U8(b.mapv(u8::from)),
        ArrayData::F32(f) => ArrayData::F64(f.mapv(f64::from)),
        ArrayData::F64(_) | ArrayData::String(_) | ArrayData::I64(_) => a.clone(),
        ArrayData::I8(v) => ArrayData::I64(v.mapv(i64::from)),
        ArrayData::I16(v) => ArrayData::I64(v.mapv(i64::from)),
        ArrayData::I32(v) => ArrayData::I64(v.mapv(i64::from)),
        ArrayData::U8(v) => ArrayData::I64(v.mapv(i64::from)),
        ArrayData::U16(v) => ArrayData::I64(v.mapv(i64::from)),
        ArrayData::U32(v) => ArrayData::I64(v.mapv(i64::from)),
        // numpy keeps uint64 when a value does not fit int64.
        ArrayData::U64(v) if v.iter().any(|&x| x > i64::MAX as u64) => a.clone(),
        ArrayData::U64(v) => ArrayData::I64(v.mapv(|x| x as i64)),
    }
}
