//! Loom files (loompy's HDF5 layout), read as `anndata.io.read_loom` reads them and written as
//! `AnnData.write_loom` writes them through `loompy.create`.
//!
//! A loom file holds genes × cells: `/matrix` and `/layers/*` (dense), `/row_attrs/*` (per
//! gene) and `/col_attrs/*` (per cell), `/attrs/*` (global). anndata transposes, takes X from the
//! `spliced` layer when there is one, and names cells and genes from `CellID` and `Gene`.

use std::path::Path;

use ndarray::IxDyn;

use crate::data::{
    ArrayData, Column, DType, DataFrame, Element, Matrix, SparseFormat, SparseMatrix,
};
use crate::error::{Error, Result, ResultExt};
use crate::format::AnnDataElements;
use crate::map_array;
use crate::storage::h5;
use crate::storage::h5::read::{read_array, stored_type};

mod stream;
mod write;

pub use stream::write_matrices;
pub use write::{write_loom, write_loom_from, LoomInput};

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

/// Reads everything of a loom file but X and its layers, as [`read_loom`] reads it: obs, var,
/// obsm and varm, for a caller that streams the matrices ([`write_matrices`]).
///
/// ```no_run
/// use annpage_engine::format::loom::{read_loom_annotations, LoomOptions};
/// let elems = read_loom_annotations("cells.loom".as_ref(), &LoomOptions::default())?;
/// assert!(elems.x.is_none() && elems.layers.is_empty());
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn read_loom_annotations(path: &Path, options: &LoomOptions) -> Result<AnnDataElements> {
    let file = h5::open_read(path).in_file(path)?;
    let plan = Plan::of(&file, options).in_file(path)?;
    read_annotations(&file, options, &plan).in_file(path)
}

fn read_file(file: &hdf5::File, options: &LoomOptions) -> Result<AnnDataElements> {
    let plan = Plan::of(file, options)?;
    let mut elems = read_annotations(file, options, &plan)?;
    for (target, dataset) in &plan.matrices {
        let m = read_array(&h5::open_dataset(file, dataset)?).in_element(format!("/{dataset}"))?;
        let x = *target == Target::X;
        let m = if options.sparse {
            Matrix::Sparse(sparse_transposed(&m, x)?)
        } else {
            let t = map_array!(&m, a => a.t().as_standard_layout().into_owned());
            Matrix::Dense(if x { cast_f32(&t)? } else { t })
        };
        match target {
            Target::X => elems.x = Some(m),
            Target::Layer(name) => {
                elems.layers.insert(name.clone(), m);
            }
        }
    }
    Ok(elems)
}

/// Everything of a loom file but its matrices: obs and var from the column and row
/// attributes (wider ones as obsm/varm), shaped as the file's cells × genes.
fn read_annotations(
    file: &hdf5::File,
    options: &LoomOptions,
    plan: &Plan,
) -> Result<AnnDataElements> {
    let mut elems = AnnDataElements::empty(plan.n_cells, plan.n_genes);
    let (obs, obsm) = attributes(file, "col_attrs", plan.n_cells, &options.obs_names)?;
    let (var, varm) = attributes(file, "row_attrs", plan.n_genes, &options.var_names)?;
    elems.obs = obs;
    elems.obsm = obsm;
    elems.var = var;
    elems.varm = varm;
    Ok(elems)
}

/// What a matrix of the file becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// X: float32 (anndata's `astype`).
    X,
    /// A layer: float64 when sparse (loompy's `sparse()`), as stored when dense.
    Layer(String),
}

/// The matrices `anndata.io.read_loom` makes of a loom file, in its order, checked from
/// metadata: X from the layer `x_name` when there is one (the main matrix is then
/// `layers["matrix"]`), else from the main matrix; then every layer.
struct Plan {
    n_genes: usize,
    n_cells: usize,
    /// Each target with the path of its genes × cells dataset.
    matrices: Vec<(Target, String)>,
}

impl Plan {
    fn of(file: &hdf5::File, options: &LoomOptions) -> Result<Plan> {
        let (n_genes, n_cells) = matrix_shape(file, "matrix").in_element("/matrix")?;
        let layer_names = if file.link_exists("layers") {
            // The trait's order (h5py's), not libhdf5's native one (inherent `member_names`).
            crate::storage::Group::member_names(
                &h5::open_group(file, "layers").in_element("/layers")?,
            )?
        } else {
            Vec::new()
        };
        for name in &layer_names {
            let path = format!("layers/{name}");
            let shape = matrix_shape(file, &path).in_element(format!("/{path}"))?;
            if shape != (n_genes, n_cells) {
                return Err(Error::shape(format!(
                    "layer of shape {shape:?}, the matrix is {n_genes} × {n_cells}"
                ))
                .in_element(format!("/{path}")));
            }
        }
        let x_from_layer = layer_names.contains(&options.x_name) && !options.x_name.is_empty();
        let mut matrices = Vec::with_capacity(layer_names.len() + 2);
        if x_from_layer {
            matrices.push((Target::X, format!("layers/{}", options.x_name)));
            matrices.push((Target::Layer("matrix".into()), "matrix".into()));
        } else {
            matrices.push((Target::X, "matrix".into()));
        }
        for name in layer_names {
            let dataset = format!("layers/{name}");
            // A layer named "matrix" replaces the main matrix's layer, as in anndata's dict.
            match matrices
                .iter_mut()
                .find(|(t, _)| *t == Target::Layer(name.clone()))
            {
                Some(slot) => slot.1 = dataset,
                None => matrices.push((Target::Layer(name), dataset)),
            }
        }
        Ok(Plan {
            n_genes,
            n_cells,
            matrices,
        })
    }
}

/// The genes × cells shape of a 2-d dataset of numbers, from metadata.
fn matrix_shape(file: &hdf5::File, name: &str) -> Result<(usize, usize)> {
    if !file.link_exists(name) {
        return Err(Error::malformed("missing dataset"));
    }
    let ds = h5::open_dataset(file, name)?;
    // Streamed a block at a time ([`write_matrices`]): what the shape claims is checked first.
    h5::claim::check_claim(&ds)?;
    let shape = ds.shape();
    let dtype = stored_type(&ds)?.dtype();
    match (&shape[..], dtype) {
        (&[g, c], Some(d)) if d.is_integer() || d.is_float() => Ok((g, c)),
        _ => Err(Error::malformed(format!(
            "expected a 2-d matrix of numbers, found {}-d {}",
            shape.len(),
            dtype.map_or_else(|| "data of another type".to_owned(), |d| d.to_string())
        ))),
    }
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
    let f = f.as_standard_layout();
    let flat = f
        .as_slice()
        .ok_or_else(|| Error::malformed("not a matrix"))?;
    let (values, indices, ends) = stream::transposed_csr(flat, n_genes, n_cells);
    let indptr = std::iter::once(0).chain(ends).collect();
    let data = stream::values_of(values, if x { DType::F32 } else { DType::F64 });
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
