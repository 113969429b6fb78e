//! The shape rules of an AnnData object, checked when elements come in.
//!
//! Every check names the element and both sizes, e.g. `obsm['X_pca'] has 99 rows, obs has 100`.

use annpage_engine::data::{ArrayData, DataFrame, Element, Mapping, Matrix};
use annpage_engine::format::{AnnDataElements, RawElements};
use annpage_engine::{map_array, Error, Result};

/// Checks every shape of `elems` and normalises what anndata normalises on construction:
/// obs/var indexes become strings, 1-d arrays in obsm/varm become columns, data frames in
/// obsm/varm take the name of the axis's index.
pub(crate) fn normalise(elems: &mut AnnDataElements) -> Result<()> {
    string_index(&mut elems.obs)?;
    string_index(&mut elems.var)?;
    let (n_obs, n_vars) = (elems.obs.nrows(), elems.var.nrows());
    if let Some(x) = &elems.x {
        check_matrix("X", x, (n_obs, n_vars), "obs × var")?;
    }
    for (key, m) in &elems.layers {
        check_matrix(&format!("layers['{key}']"), m, (n_obs, n_vars), "obs × var")?;
    }
    for (key, m) in &elems.obsp {
        check_matrix(&format!("obsp['{key}']"), m, (n_obs, n_obs), "obs × obs")?;
    }
    for (key, m) in &elems.varp {
        check_matrix(&format!("varp['{key}']"), m, (n_vars, n_vars), "var × var")?;
    }
    align_all("obsm", &mut elems.obsm, &elems.obs, "obs")?;
    align_all("varm", &mut elems.varm, &elems.var, "var")?;
    if let Some(raw) = &mut elems.raw {
        normalise_raw(raw, n_obs)?;
    }
    Ok(())
}

/// Checks `raw` against `n_obs` observations and normalises it like the main object.
pub(crate) fn normalise_raw(raw: &mut RawElements, n_obs: usize) -> Result<()> {
    string_index(&mut raw.var)?;
    let (rows, cols) = check_2d("raw.X", &raw.x)?;
    if rows != n_obs {
        return Err(Error::shape(format!(
            "raw.X has {rows} rows, obs has {n_obs}"
        )));
    }
    if cols != raw.var.nrows() {
        return Err(Error::shape(format!(
            "raw.X has {cols} columns, raw.var has {} rows",
            raw.var.nrows()
        )));
    }
    align_all("raw.varm", &mut raw.varm, &raw.var, "raw.var")
}

/// Gives a frame a string index, as anndata does for obs and var (numbers as Python's `str`).
pub(crate) fn string_index(df: &mut DataFrame) -> Result<()> {
    // `index_names` is `None` for non-string (or non-contiguous) indexes.
    if df.index_names().is_none() {
        df.set_index(ArrayData::from(df.index().to_python_strings()))?;
    }
    Ok(())
}

/// The `(rows, columns)` of a matrix, failing for a dense array that is not 2-d.
fn check_2d(what: &str, m: &Matrix) -> Result<(usize, usize)> {
    if let Matrix::Dense(a) = m {
        if a.ndim() != 2 {
            return Err(Error::shape(format!(
                "{what} must be 2-d, got shape {:?}",
                a.shape()
            )));
        }
    }
    Ok(m.shape())
}

/// Checks that a matrix has the shape `expected`, named `axes` (`obs × var`) in the message.
pub(crate) fn check_matrix(
    what: &str,
    m: &Matrix,
    expected: (usize, usize),
    axes: &str,
) -> Result<()> {
    let shape = check_2d(what, m)?;
    if shape != expected {
        return Err(Error::shape(format!(
            "{what} has shape {shape:?}, {axes} is {expected:?}"
        )));
    }
    Ok(())
}

/// Checks that `value` has one row per row of `frame` (named `axis`), and normalises it: a
/// 1-d array becomes an `n × 1` column and a data frame must be indexed by `frame`'s names
/// (its index then takes `frame`'s index name), as anndata's aligned mappings do.
pub(crate) fn align(what: &str, value: &mut Element, frame: &DataFrame, axis: &str) -> Result<()> {
    let n = frame.nrows();
    match value {
        Element::Scalar(_) | Element::Dict(_) => {
            return Err(Error::invalid(format!(
                "{what} is a {}, which has no rows to align with {axis}",
                value.kind()
            )))
        }
        Element::Array(a) if a.ndim() == 0 => {
            return Err(Error::invalid(format!(
                "{what} is a 0-d array, which has no rows to align with {axis}"
            )))
        }
        _ => {}
    }
    // Opaque elements of unknown length cannot be checked; they are kept as they are.
    if let Some(rows) = value.nrows() {
        if rows != n {
            return Err(Error::shape(format!(
                "{what} has {rows} rows, {axis} has {n}"
            )));
        }
    }
    match value {
        Element::Array(a) if a.ndim() == 1 => {
            *a = map_array!(&*a, x => x.clone().insert_axis(ndarray::Axis(1)));
        }
        Element::DataFrame(df) => {
            if df.index_names() != frame.index_names() {
                return Err(Error::invalid(format!(
                    "{what} is a data frame whose index does not match the {axis} names"
                )));
            }
            df.set_index_name(frame.index_name().map(str::to_owned));
        }
        _ => {}
    }
    Ok(())
}

/// Checks and normalises every value of an aligned mapping (see [`align`]).
pub(crate) fn align_all(
    name: &str,
    mapping: &mut Mapping,
    frame: &DataFrame,
    axis: &str,
) -> Result<()> {
    for (key, value) in mapping {
        align(&format!("{name}['{key}']"), value, frame, axis)?;
    }
    Ok(())
}
