//! Legacy layouts and the compatibility fixes anndata applies when it builds an object from a
//! file, mirrored so that annpage reads what anndata reads.
//!
//! - elements without encoding attributes (anndata < 0.7): plain datasets, compound data frames
//!   and compound `obsm`/`varm`, `h5sparse` groups ([`read_unencoded_dataset`],
//!   [`read_compound_frame`], [`compound_fields`]);
//! - obs/var indexes that are not strings become strings ([`index_as_strings`]);
//! - `uns/<column>_categories` become categorical columns ([`categories_from_uns`]);
//! - `uns['neighbors']` adjacency matrices move to `obsp` ([`move_neighbor_graphs`]);
//! - `uns['obs_keys_multicol']`-style columns move to `obsm`/`varm` ([`move_multicol_keys`]);
//! - 1-d arrays in `obsm`/`varm` become one-column 2-d arrays ([`vectors_as_columns`]).

use ndarray::{ArrayD, Axis, IxDyn};

use crate::data::{
    ArrayData, Categorical, Column, DType, DataFrame, Element, Mapping, Matrix, RawData, RawNode,
    Scalar,
};
use crate::format::Encoding;
use crate::storage::{Array, StoredType};
use crate::{Error, Result};

/// Reads a dataset written without encoding attributes, as anndata's legacy reader does:
/// a compound dataset is kept opaque as a structured array, tagged `rec-array` 0.2.0 as
/// anndata tags it when it writes one back; a 0-d dataset is a scalar, a one-element array
/// of fixed-length byte strings is a single string, anything else an array.
pub(crate) fn read_unencoded_dataset(ds: &dyn Array) -> Result<Element> {
    let ty = ds.stored_type()?;
    if let StoredType::Compound { .. } = ty {
        let mut attrs = ds.attrs()?;
        for (key, value) in [
            ("encoding-type", Encoding::RecArray.type_name()),
            ("encoding-version", Encoding::RecArray.version()),
        ] {
            attrs.insert(
                key.to_string(),
                ArrayData::String(ArrayD::from_elem(IxDyn(&[]), value.into())),
            );
        }
        return Ok(Element::Opaque(RawNode::Dataset {
            attrs,
            data: ds.read_raw()?,
        }));
    }
    let a = ds.read()?;
    let fixed_bytes = matches!(ty, StoredType::FixedString { .. });
    if a.ndim() == 0 || (fixed_bytes && a.ndim() == 1 && a.len() == 1) {
        if let Some(s) = Scalar::from_array(&a) {
            return Ok(Element::Scalar(s));
        }
    }
    Ok(Element::Array(a))
}

/// The fields of a 1-d compound dataset, in order (legacy `obsm`/`varm`: each field is one
/// entry; sub-array fields such as `X_pca` as `(50,) f4` become 2-d arrays).
pub(crate) fn compound_fields(ds: &dyn Array) -> Result<Vec<(String, ArrayData)>> {
    match ds.read_raw()? {
        RawData::Compound { shape, fields } if shape.len() == 1 => Ok(fields),
        RawData::Compound { shape, .. } => Err(Error::malformed(format!(
            "a compound dataset of shape {shape:?} cannot be a table (it must be 1-d)"
        ))),
        RawData::Array(a) => Err(Error::malformed(format!(
            "expected a compound (structured) dataset, found {} of shape {:?}",
            a.dtype(),
            a.shape()
        ))),
    }
}

/// Reads a data frame stored as a compound dataset (anndata < 0.7): the first field is the
/// index (its name becomes the index name, as pandas' `set_index` makes it), the others are
/// columns.
pub(crate) fn read_compound_frame(ds: &dyn Array) -> Result<DataFrame> {
    let mut fields = compound_fields(ds)?.into_iter();
    let Some((index_name, index)) = fields.next() else {
        return Err(Error::malformed(
            "a compound data frame needs at least an index field",
        ));
    };
    let mut df = DataFrame::with_index(index)?;
    df.set_index_name(Some(index_name));
    for (name, values) in fields {
        if values.ndim() != 1 {
            return Err(Error::unsupported(format!(
                "column '{name}' of a compound data frame has sub-array shape {:?}",
                values.shape()
            )));
        }
        df.insert(name, Column::Array(values))?;
    }
    Ok(df)
}

/// Gives `df` a string index, as anndata does for `obs` and `var` (numbers as Python's `str`).
pub(crate) fn index_as_strings(df: &mut DataFrame) -> Result<()> {
    if df.index().dtype() == DType::String {
        return Ok(());
    }
    let names = df.index().to_python_strings();
    df.set_index(ArrayData::from(names))
}

/// anndata's aligned mappings (`obsm`, `varm`, `raw.varm`) store a 1-d array as an `n × 1`
/// column; this does the same to every 1-d array in `m`.
pub(crate) fn vectors_as_columns(m: &mut Mapping) {
    for value in m.values_mut() {
        if let Element::Array(a) = value {
            if a.ndim() == 1 {
                *a = a.clone().insert_column_axis();
            }
        }
    }
}

/// anndata's `_clean_uns` for files whose `obs` is a compound dataset: each
/// `uns['<name>_categories']` turns the integer column `<name>` of `obs` and/or `var` into a
/// categorical when every code is below the number of categories, and is then removed from
/// `uns`.
pub(crate) fn categories_from_uns(
    uns: &mut Mapping,
    obs: &mut DataFrame,
    var: &mut DataFrame,
) -> Result<()> {
    let mut used = Vec::new();
    for (key, value) in uns.iter() {
        if !key.ends_with("_categories") {
            continue;
        }
        let name = key.replace("_categories", "");
        let categories = match value {
            Element::Array(a) if a.ndim() == 1 => a.clone(),
            Element::Scalar(s) => s.to_array().select_all_as_1d(),
            _ => continue,
        };
        for df in [&mut *obs, &mut *var] {
            let Some(Column::Array(codes)) = df.column(&name) else {
                continue;
            };
            if !codes.dtype().is_integer() {
                continue;
            }
            let codes = codes_as_i32(codes)?;
            if codes.iter().any(|&c| c as i64 >= categories.len() as i64) {
                continue;
            }
            let cat = Categorical::new(codes, categories.clone(), false)
                .map_err(|e| Error::malformed(format!("uns['{key}'] for column '{name}': {e}")))?;
            df.insert(name.clone(), Column::Categorical(cat))?;
            used.push(key.clone());
        }
    }
    for key in used {
        uns.shift_remove(&key);
    }
    Ok(())
}

/// Converts categorical codes of any integer dtype to `i32`.
pub(crate) fn codes_as_i32(a: &ArrayData) -> Result<Vec<i32>> {
    fn conv<T: Copy + TryInto<i32> + std::fmt::Display>(a: &ArrayD<T>) -> Result<Vec<i32>> {
        a.iter()
            .map(|&v| {
                v.try_into()
                    .map_err(|_| Error::malformed(format!("categorical code {v} out of range")))
            })
            .collect()
    }
    match a {
        ArrayData::I8(a) => conv(a),
        ArrayData::I16(a) => conv(a),
        ArrayData::I32(a) => Ok(a.iter().copied().collect()),
        ArrayData::I64(a) => conv(a),
        ArrayData::U8(a) => conv(a),
        ArrayData::U16(a) => conv(a),
        ArrayData::U32(a) => conv(a),
        ArrayData::U64(a) => conv(a),
        other => Err(Error::malformed(format!(
            "categorical codes must be integers, found {}",
            other.dtype()
        ))),
    }
}

/// anndata's `_move_adj_mtx`: 2-d `distances` / `connectivities` in `uns['neighbors']` move to
/// `obsp` (replacing entries of the same name).
pub(crate) fn move_neighbor_graphs(
    uns: &mut Mapping,
    obsp: &mut indexmap::IndexMap<String, Matrix>,
) {
    let Some(Element::Dict(neighbors)) = uns.get_mut("neighbors") else {
        return;
    };
    for key in ["distances", "connectivities"] {
        let movable = match neighbors.get(key) {
            Some(Element::Sparse(_)) => true,
            Some(Element::Array(a)) => a.ndim() == 2 && a.dtype() != DType::String,
            _ => false,
        };
        if !movable {
            continue;
        }
        match neighbors.shift_remove(key) {
            Some(Element::Sparse(s)) => {
                obsp.insert(key.to_owned(), Matrix::Sparse(s));
            }
            Some(Element::Array(a)) => {
                obsp.insert(key.to_owned(), Matrix::Dense(a));
            }
            _ => {}
        }
    }
}

/// anndata's `_clean_up_old_format`: the first of `keys` present in `uns` lists column-name
/// prefixes; for each prefix, the frame's columns starting with it are removed and stacked into
/// one 2-d array stored in `m` under the prefix. The `uns` entry is removed.
pub(crate) fn move_multicol_keys(
    uns: &mut Mapping,
    keys: &[&str],
    df: &mut DataFrame,
    m: &mut Mapping,
) -> Result<()> {
    let Some(key) = keys.iter().find(|k| uns.contains_key(**k)) else {
        return Ok(());
    };
    let prefixes = match uns.shift_remove(*key) {
        Some(Element::Array(a)) => a.to_python_strings(),
        // anndata takes `list()` of the value: a single string gives its characters.
        Some(Element::Scalar(Scalar::String(s))) => s.chars().map(String::from).collect(),
        Some(other) => {
            return Err(Error::malformed(format!(
                "uns['{key}'] should list column names, found a {}",
                other.kind()
            )))
        }
        None => return Ok(()),
    };
    for prefix in prefixes {
        let names: Vec<String> = df
            .columns()
            .keys()
            .filter(|c| c.starts_with(&prefix))
            .cloned()
            .collect();
        let mut columns = Vec::with_capacity(names.len());
        for name in &names {
            match df.remove(name) {
                Some(Column::Array(a)) => columns.push(a),
                _ => {
                    return Err(Error::unsupported(format!(
                        "multi-column key '{prefix}': column '{name}' is not a plain array"
                    )))
                }
            }
        }
        m.insert(prefix, Element::Array(stack_columns(&columns, df.nrows())?));
    }
    Ok(())
}

/// Stacks 1-d columns side by side into an `n × k` array (numpy's common dtype: the shared
/// dtype, or float64 for mixed numbers).
fn stack_columns(columns: &[ArrayData], n: usize) -> Result<ArrayData> {
    let Some(first) = columns.first() else {
        return Ok(ArrayData::zeros(DType::F64, &[n, 0]));
    };
    if columns.iter().all(|c| c.dtype() == first.dtype()) {
        let views: Vec<ArrayData> = columns
            .iter()
            .map(|c| c.select_all_as_1d().insert_column_axis())
            .collect();
        return concat_columns(&views);
    }
    let mut floats = Vec::with_capacity(columns.len());
    for c in columns {
        let f = c.to_f64().ok_or_else(|| {
            Error::unsupported("multi-column key mixes strings with other dtypes")
        })?;
        floats.push(f.insert_axis(Axis(1)));
    }
    let views: Vec<_> = floats.iter().map(|a| a.view()).collect();
    ndarray::concatenate(Axis(1), &views)
        .map(ArrayData::F64)
        .map_err(|e| Error::malformed(format!("cannot stack columns: {e}")))
}

fn concat_columns(columns: &[ArrayData]) -> Result<ArrayData> {
    macro_rules! cat {
        ($variant:ident) => {{
            let views: Vec<_> = columns
                .iter()
                .filter_map(|c| match c {
                    ArrayData::$variant(a) => Some(a.view()),
                    _ => None,
                })
                .collect();
            ArrayData::$variant(
                ndarray::concatenate(Axis(1), &views)
                    .map_err(|e| Error::malformed(format!("cannot stack columns: {e}")))?,
            )
        }};
    }
    let Some(first) = columns.first() else {
        return Err(Error::malformed("no columns to stack"));
    };
    Ok(match first {
        ArrayData::Bool(_) => cat!(Bool),
        ArrayData::I8(_) => cat!(I8),
        ArrayData::I16(_) => cat!(I16),
        ArrayData::I32(_) => cat!(I32),
        ArrayData::I64(_) => cat!(I64),
        ArrayData::U8(_) => cat!(U8),
        ArrayData::U16(_) => cat!(U16),
        ArrayData::U32(_) => cat!(U32),
        ArrayData::U64(_) => cat!(U64),
        ArrayData::F16(_) => cat!(F16),
        ArrayData::F32(_) => cat!(F32),
        ArrayData::F64(_) => cat!(F64),
        ArrayData::String(_) => cat!(String),
    })
}

/// Small reshaping helpers for the compatibility fixes.
pub(crate) trait Reshape {
    /// The values as a 1-d array (a 0-d array becomes one element).
    fn select_all_as_1d(&self) -> ArrayData;
    /// A 1-d array as an `n × 1` column.
    fn insert_column_axis(self) -> ArrayData;
}

impl Reshape for ArrayData {
    fn select_all_as_1d(&self) -> ArrayData {
        crate::map_array!(self, a => ndarray::Array1::from_iter(a.iter().cloned()).into_dyn())
    }
    fn insert_column_axis(self) -> ArrayData {
        crate::map_array!(self, a => a.insert_axis(Axis(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SparseFormat, SparseMatrix};

    fn frame(index: &[&str], cols: Vec<(&str, ArrayData)>) -> DataFrame {
        let mut df = DataFrame::from_index(index.iter().map(|s| s.to_string()));
        for (k, v) in cols {
            df.insert(k, Column::Array(v)).unwrap();
        }
        df
    }

    #[test]
    fn floats_print_like_python() {
        let py = |v: f64| ArrayData::from(vec![v]).to_python_strings().remove(0);
        assert_eq!(py(1.0), "1.0");
        assert_eq!(py(-0.0), "-0.0");
        assert_eq!(py(0.1), "0.1");
        assert_eq!(py(1e16), "1e+16");
        assert_eq!(py(1e15), "1000000000000000.0");
        assert_eq!(py(123.456), "123.456");
        assert_eq!(py(0.0001), "0.0001");
        assert_eq!(py(0.00001), "1e-05");
        assert_eq!(py(-2.5e-300), "-2.5e-300");
        assert_eq!(py(f64::NAN), "nan");
        assert_eq!(py(f64::NEG_INFINITY), "-inf");
        let f32s = ArrayData::from(vec![0.1f32, 3.0]).to_python_strings();
        assert_eq!(f32s, ["0.1", "3.0"]);
        let bools = ArrayData::from(vec![true, false]).to_python_strings();
        assert_eq!(bools, ["True", "False"]);
    }

    #[test]
    fn uns_categories_convert_matching_columns_only() {
        let mut obs = frame(&["a", "b"], vec![("kind", ArrayData::from(vec![1i64, 0]))]);
        let mut var = frame(&["g"], vec![("kind", ArrayData::from(vec![5i64]))]);
        let mut uns = Mapping::new();
        uns.insert(
            "kind_categories".into(),
            Element::Array(ArrayData::from(vec!["x", "y"])),
        );
        uns.insert(
            "other_categories".into(),
            Element::Array(ArrayData::from(vec!["z"])),
        );
        categories_from_uns(&mut uns, &mut obs, &mut var).unwrap();
        let Some(Column::Categorical(c)) = obs.column("kind") else {
            panic!("obs.kind should be categorical")
        };
        assert_eq!((c.codes.as_slice(), c.ordered), (&[1, 0][..], false));
        assert_eq!(c.categories, ArrayData::from(vec!["x", "y"]));
        assert_eq!(
            var.column("kind"),
            Some(&Column::Array(ArrayData::from(vec![5i64])))
        );
        assert_eq!(uns.keys().collect::<Vec<_>>(), ["other_categories"]);
    }

    #[test]
    fn neighbor_graphs_move_to_obsp_and_vectors_become_columns() {
        let graph = SparseMatrix::empty(SparseFormat::Csr, (2, 2), DType::F32);
        let mut neighbors = Mapping::new();
        neighbors.insert("connectivities".into(), Element::Sparse(graph.clone()));
        neighbors.insert(
            "distances".into(),
            Element::Array(ArrayData::from(vec![1.0f64])),
        );
        let mut uns = Mapping::new();
        uns.insert("neighbors".into(), Element::Dict(neighbors));
        let mut obsp = indexmap::IndexMap::new();
        move_neighbor_graphs(&mut uns, &mut obsp);
        assert_eq!(obsp.get("connectivities"), Some(&Matrix::Sparse(graph)));
        assert!(!obsp.contains_key("distances"), "a 1-d array stays in uns");
        let Some(Element::Dict(rest)) = uns.get("neighbors") else {
            panic!("neighbors dict")
        };
        assert_eq!(rest.keys().collect::<Vec<_>>(), ["distances"]);

        let mut m = Mapping::new();
        m.insert("v".into(), Element::Array(ArrayData::from(vec![1i32, 2])));
        vectors_as_columns(&mut m);
        assert_eq!(
            m.get("v"),
            Some(&Element::Array(ArrayData::from(ndarray::array![
                [1i32],
                [2]
            ])))
        );
    }

    #[test]
    fn multicol_keys_stack_columns_by_prefix() {
        let mut df = frame(
            &["a", "b"],
            vec![
                ("X_0", ArrayData::from(vec![1i32, 2])),
                ("X_1", ArrayData::from(vec![0.5f32, 1.5])),
                ("keep", ArrayData::from(vec!["p", "q"])),
            ],
        );
        let mut uns = Mapping::new();
        uns.insert(
            "_obs_keys_multicol".into(),
            Element::Array(ArrayData::from(vec!["X_"])),
        );
        let mut m = Mapping::new();
        move_multicol_keys(
            &mut uns,
            &["obs_keys_multicol", "_obs_keys_multicol"],
            &mut df,
            &mut m,
        )
        .unwrap();
        assert!(uns.is_empty());
        assert_eq!(df.columns().keys().collect::<Vec<_>>(), ["keep"]);
        assert_eq!(
            m.get("X_"),
            Some(&Element::Array(ArrayData::from(ndarray::array![
                [1.0, 0.5],
                [2.0, 1.5]
            ])))
        );
    }
}
