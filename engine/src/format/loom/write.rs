//! Writing loom files as `AnnData.write_loom` does through loompy.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hdf5::Group;
use indexmap::IndexMap;

use ndarray::{ArrayD, IxDyn};

use crate::data::{ArrayData, Axis, Column, DataFrame, Element, Mapping, Matrix};
use crate::error::{Error, Result, ResultExt};
use crate::format::write::staging::Staged;
use crate::format::{named_blocks, AnnDataElements, MatrixBlocks};
use crate::map_array;
use crate::storage::h5::write::{
    create_array, write_array, write_block, ArrayOptions, Compression,
};

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
    let input = LoomInput {
        obs: &elems.obs,
        var: &elems.var,
        obsm_varm: write_obsm_varm.then_some((&elems.obsm, &elems.varm)),
        x: elems.x.as_ref().map(|x| x as &dyn MatrixBlocks),
        layers: named_blocks(&elems.layers),
        block_bytes: 64 << 20,
    };
    write_loom_from(path, &input)
}

/// What a loom file is written from: the annotations, in memory, and the matrices, read a
/// block at a time (see [`write_loom_from`]).
pub struct LoomInput<'a> {
    /// The cells' annotations (column attributes).
    pub obs: &'a DataFrame,
    /// The genes' annotations (row attributes).
    pub var: &'a DataFrame,
    /// obsm and varm, written as attributes too (anndata's `write_obsm_varm=True`), or none.
    pub obsm_varm: Option<(&'a Mapping, &'a Mapping)>,
    /// X, cells × genes (loompy refuses a file without it).
    pub x: Option<&'a dyn MatrixBlocks>,
    /// The layers, cells × genes.
    pub layers: Vec<(String, &'a dyn MatrixBlocks)>,
    /// The bytes a block of a matrix may take made dense (it is held twice: as read and
    /// transposed); blocks hold at least 64 cells or genes.
    pub block_bytes: usize,
}

impl std::fmt::Debug for LoomInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoomInput")
            .field("shape", &self.x.map(|x| x.shape()))
            .field(
                "layers",
                &self.layers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("obsm_varm", &self.obsm_varm.is_some())
            .field("block_bytes", &self.block_bytes)
            .finish_non_exhaustive()
    }
}

/// [`write_loom`] from annotations and matrices read a block at a time: a matrix stored by
/// columns (CSC) is read in blocks of genes, any other in blocks of cells, so that memory
/// holds the annotations and one block whatever the matrices' sizes.
///
/// ```
/// use annpage_engine::data::{DataFrame, Matrix};
/// use annpage_engine::format::loom::{write_loom_from, LoomInput};
/// # let dir = tempfile::tempdir()?;
/// let x = Matrix::from(ndarray::arr2(&[[1.0f32, 0.0], [0.0, 2.5], [3.0, 0.0]]));
/// let (obs, var) = (DataFrame::with_default_index(3), DataFrame::with_default_index(2));
/// let input = LoomInput { obs: &obs, var: &var, obsm_varm: None, x: Some(&x), layers: vec![], block_bytes: 1 << 20 };
/// write_loom_from(&dir.path().join("cells.loom"), &input)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_loom_from(path: &Path, input: &LoomInput<'_>) -> Result<()> {
    let x = input.x.ok_or_else(|| {
        Error::invalid("loompy does not accept empty matrices as data").in_file(path)
    })?;
    let (n_cells, n_genes) = x.shape();
    if n_cells == 0 || n_genes == 0 {
        return Err(Error::invalid("loompy refuses an empty main matrix").in_file(path));
    }
    let staged = Staged::beside(path).in_file(path)?;
    let write = || -> Result<()> {
        let file = crate::storage::h5::create(staged.path())?;
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
        let bytes = input.block_bytes;
        write_matrix(&file, "matrix", x, bytes).in_element("/matrix")?;
        let layers = file.group("layers")?;
        for (name, m) in &input.layers {
            write_matrix(&layers, name, *m, bytes).in_element(format!("/layers/{name}"))?;
        }
        let (obsm, varm) = input.obsm_varm.unzip();
        let rows = attributes_of(input.var, "var_names", varm.map(|m| (m, "varm")))?;
        let cols = attributes_of(input.obs, "obs_names", obsm.map(|m| (m, "obsm")))?;
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

/// A cells × genes matrix as a genes × cells dataset, written a block of cells (or, from a
/// matrix stored by columns, of genes) at a time: blocks of whole 64 × 64 chunks, at most
/// `bytes` dense.
fn write_matrix(parent: &Group, name: &str, m: &dyn MatrixBlocks, bytes: usize) -> Result<()> {
    const CHUNK: usize = 64;
    let (n_cells, n_genes) = m.shape();
    let dtype = m.dtype();
    if !(dtype.is_integer() || dtype.is_float()) {
        return Err(Error::invalid(format!(
            "loom matrices hold numbers, not {dtype}"
        )));
    }
    let options = ArrayOptions {
        compression: Compression::Gzip(2),
        chunks: Some(vec![n_genes.min(CHUNK), n_cells.min(CHUNK)]),
        ..ArrayOptions::default()
    };
    let ds = create_array(parent, name, dtype, &[n_genes, n_cells], &options)?;
    let along = m.stored_along();
    // A block of `per` cells (or genes) is held dense twice: as read and transposed.
    let across = match along {
        Axis::Obs => n_genes,
        Axis::Var => n_cells,
    };
    // Whole chunks: a block of part of a chunk would have it compressed again and again.
    let per = (bytes / (2 * dtype.size() * across).max(1)).max(CHUNK) / CHUNK * CHUNK;
    let mut start = 0;
    for block in m.blocks(along, per)? {
        let block = match block? {
            Matrix::Dense(a) => {
                if !all_finite(&a) {
                    return Err(Error::invalid("INF and NaN not allowed in a loom matrix"));
                }
                a
            }
            sparse => sparse.to_dense()?,
        };
        let t = map_array!(&block, a => a.t().as_standard_layout().into_owned());
        let (offset, len) = match along {
            Axis::Obs => ([0, start], t.shape()[1]),
            Axis::Var => ([start, 0], t.shape()[0]),
        };
        write_block(&ds, &offset, &t)?;
        start += len;
    }
    Ok(())
}

/// Whether every value of `a` is finite (integers are).
fn all_finite(a: &ArrayData) -> bool {
    match a {
        ArrayData::F16(v) => v.iter().all(|x| x.is_finite()),
        ArrayData::F32(v) => v.iter().all(|x| x.is_finite()),
        ArrayData::F64(v) => v.iter().all(|x| x.is_finite()),
        _ => true,
    }
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
        ArrayData::F16(f) => ArrayData::F64(f.mapv(f64::from)),
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
