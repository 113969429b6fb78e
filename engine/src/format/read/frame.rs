//! Data frames and their columns: `dataframe` groups (current and 0.7-era), categoricals,
//! nullable arrays, and legacy categoricals pointing into `__categories`.

use super::legacy::{self, Reshape};
use super::{is_compound, member_dataset, path_of, read_element, read_node, unexpected, Node};
use crate::data::{
    integers_as_u64, ArrayData, Categorical, Column, DataFrame, Element, Nullable, NullableKind,
    Scalar, StringNa,
};
use crate::error::ResultExt;
use crate::format::{read_encoding, Encoding};
use crate::storage::{Array, Group, MemberKind};
use crate::{Error, Result};

pub(super) fn dataframe_of(node: &Node) -> Result<DataFrame> {
    let encoding = node.encoding()?;
    let ty = encoding.as_ref().map(|(t, _)| Encoding::parse(t));
    match (ty, node) {
        (Some(Some(Encoding::DataFrame)), Node::Group(g)) => read_frame(g.as_ref()),
        (None, Node::Dataset(d)) if is_compound(d.as_ref())? => {
            legacy::read_compound_frame(d.as_ref())
        }
        _ => Err(unexpected(encoding, "a dataframe")),
    }
}

/// A `dataframe` group (0.2.0, or 0.1.0 with categorical columns pointing into `__categories`).
pub(super) fn read_frame(g: &dyn Group) -> Result<DataFrame> {
    let (index_key, columns) = dataframe_members(g)?;
    let index = read_dataframe_index(g, &index_key)?;
    let mut df = DataFrame::with_index(index)?;
    let na = dataframe_index_na(g, &index_key).in_element(path_of(g, &index_key))?;
    df.set_index_string_na(na)
        .in_element(path_of(g, &index_key))?;
    if index_key != "_index" {
        df.set_index_name(Some(index_key));
    }
    for name in columns {
        let col = read_column(g, &name)?;
        df.insert(name.clone(), col).in_element(path_of(g, &name))?;
    }
    Ok(df)
}

/// The members of a `dataframe` group, from its attributes only: the member holding the index
/// (the `_index` attribute) and the columns in order (`column-order`).
///
/// For readers that read a frame column by column ([`read_dataframe_column`],
/// [`read_dataframe_index`]) instead of whole ([`read_dataframe`](super::read_dataframe)).
pub fn dataframe_members(frame: &dyn Group) -> Result<(String, Vec<String>)> {
    let index_key = match frame.string_attr("_index")? {
        Some(k) => k,
        None if frame.contains("_index")? => "_index".to_owned(),
        None => return Err(Error::malformed("data frame has no '_index' attribute")),
    };
    Ok((index_key, column_order(frame)?))
}

/// Reads the index of a `dataframe` group from its member `key` (see [`dataframe_members`]),
/// as [`read_dataframe`](super::read_dataframe) does: a categorical index becomes its values; the index is returned
/// as stored (not turned into strings).
pub fn read_dataframe_index(frame: &dyn Group, key: &str) -> Result<ArrayData> {
    match read_column(frame, key)? {
        Column::Array(a) => Ok(a),
        Column::Categorical(c) => materialize(&c).in_element(path_of(frame, key)),
        // anndata 0.13 writes string indices as nullable string arrays.
        Column::Nullable(n) if matches!(n.kind(), NullableKind::String(_)) => {
            if n.mask().contains(&true) {
                return Err(Error::unsupported("missing values in a data frame index")
                    .in_element(path_of(frame, key)));
            }
            Ok(n.into_parts().1)
        }
        Column::Nullable(_) => Err(Error::unsupported("a nullable array as a data frame index")
            .in_element(path_of(frame, key))),
    }
}

/// How the index of a `dataframe` group (its member `key`) is stored, from metadata only:
/// `Some(na-value)` for a `nullable-string-array` (see [`DataFrame::index_string_na`]), else
/// `None`.
pub fn dataframe_index_na(frame: &dyn Group, key: &str) -> Result<Option<StringNa>> {
    if frame.member_kind(key)? != Some(MemberKind::Group) {
        return Ok(None);
    }
    let g = frame.group(key)?;
    match read_encoding(g.as_ref())? {
        Some((t, _)) if Encoding::parse(&t) == Some(Encoding::NullableStringArray) => {
            Ok(Some(string_na(g.as_ref())?))
        }
        _ => Ok(None),
    }
}

/// Reads one column of a `dataframe` group as [`read_dataframe`](super::read_dataframe) does, whatever its encoding
/// (including the categoricals of 0.7-era frames, whose categories live in `__categories`).
pub fn read_dataframe_column(frame: &dyn Group, name: &str) -> Result<Column> {
    read_column(frame, name)
}

/// The `column-order` attribute: an array of strings (any string storage, or one string);
/// an empty array of any dtype (anndata writes float64) or no attribute means no columns.
/// A name listed twice is refused (anndata does not write a frame whose columns repeat).
fn column_order(g: &dyn Group) -> Result<Vec<String>> {
    let names: Vec<String> = match g.attr("column-order")? {
        None => Vec::new(),
        Some(ArrayData::String(a)) => a.iter().map(|s| s.to_string()).collect(),
        Some(a) if a.is_empty() => Vec::new(),
        Some(a) => {
            return Err(Error::malformed(format!(
                "'column-order' should hold column names, found {} of shape {:?}",
                a.dtype(),
                a.shape()
            )))
        }
    };
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(Error::malformed(format!(
            "'column-order' lists column '{twice}' twice"
        )));
    }
    Ok(names)
}

/// Reads one column (or the index) of a frame.
fn read_column(g: &dyn Group, name: &str) -> Result<Column> {
    let path = path_of(g, name);
    let node = Node::open(g, name).in_element(&path)?;
    let read = || -> Result<Column> {
        if let Node::Dataset(d) = &node {
            if d.has_attr("categories")? {
                return legacy_categorical(g, d.as_ref()).map(Column::Categorical);
            }
        }
        match read_node(&node)? {
            Element::Array(a) if a.ndim() == 1 => Ok(Column::Array(a)),
            Element::Categorical(c) => Ok(Column::Categorical(c)),
            Element::Nullable(n) => Ok(Column::Nullable(n)),
            // anndata's legacy reader turns a one-element byte-string dataset into a scalar.
            Element::Scalar(s) => Ok(Column::Array(s.to_array().select_all_as_1d())),
            // What annpage keeps verbatim elsewhere (complex numbers, compounds) is valid
            // anndata, not a malformed frame: annpage cannot hold it as a column.
            Element::Opaque(_) => Err(Error::unsupported(
                "a data frame column of a type annpage does not hold (complex numbers, \
                 records); anndata reads it",
            )),
            other => Err(Error::malformed(format!(
                "a data frame column must be a 1-d array, categorical or nullable array, \
                 found a {}{}",
                other.kind(),
                match &other {
                    Element::Array(a) => format!(" of shape {:?}", a.shape()),
                    _ => String::new(),
                }
            ))),
        }
    };
    read().in_element(path)
}

/// A 0.7-era categorical column: a codes dataset whose `categories` attribute references (or
/// names) the categories dataset, which may carry an `ordered` attribute.
fn legacy_categorical(parent: &dyn Group, codes: &dyn Array) -> Result<Categorical> {
    let cats = match codes.referenced("categories")? {
        Some(d) => d,
        None => {
            let target = codes.string_attr("categories")?.unwrap_or_default();
            member_dataset(parent, &target)?
        }
    };
    let cats_path = cats.path();
    let ordered = flag(cats.attr("ordered")?)?;
    let categories = match read_node(&Node::Dataset(cats)).in_element(cats_path)? {
        Element::Array(a) if a.ndim() == 1 => a,
        Element::Scalar(s) => s.to_array().select_all_as_1d(),
        other => {
            return Err(Error::malformed(format!(
                "categories must be a 1-d array, found a {}",
                other.kind()
            )))
        }
    };
    let codes = legacy::codes_as_i32(&codes.read()?)?;
    Categorical::new(codes, categories, ordered)
}

pub(super) fn read_categorical(g: &dyn Group) -> Result<Categorical> {
    let codes = member_dataset(g, "codes")
        .and_then(|d| d.read())
        .in_element(path_of(g, "codes"))?;
    let codes = legacy::codes_as_i32(&codes).in_element(path_of(g, "codes"))?;
    let categories = match read_element(g, "categories")? {
        Element::Array(a) if a.ndim() == 1 => a,
        other => {
            return Err(Error::malformed(format!(
                "categories must be a 1-d array, found a {}",
                other.kind()
            )))
        }
    };
    let ordered = flag(g.attr("ordered")?)?;
    Categorical::new(codes, categories, ordered)
}

/// A boolean attribute stored as h5py's bool enum or as an integer; absent means false.
fn flag(value: Option<ArrayData>) -> Result<bool> {
    let Some(value) = value else {
        return Ok(false);
    };
    let single = value.len() == 1;
    match (single, Scalar::from_array(&value)) {
        (true, Some(Scalar::Bool(b))) => Ok(b),
        (true, Some(s)) if s.dtype().is_integer() => Ok(integers_as_u64(&value)
            .map(|v| v.first() != Some(&0))
            .unwrap_or(true)),
        _ => Err(Error::malformed(format!(
            "'ordered' should be a bool, found {} of shape {:?}",
            value.dtype(),
            value.shape()
        ))),
    }
}

/// The missing-value marker a `nullable-string-array` group declares (`na-value`).
pub(super) fn string_na(g: &dyn Group) -> Result<StringNa> {
    match g.string_attr("na-value")?.as_deref() {
        None | Some("NA") => Ok(StringNa::Na),
        Some("NaN") => Ok(StringNa::NaN),
        Some(other) => Err(Error::malformed(format!(
            "na-value '{other}' is neither 'NA' nor 'NaN'"
        ))),
    }
}

pub(super) fn read_nullable(g: &dyn Group, kind: NullableKind) -> Result<Nullable> {
    let values = match read_element(g, "values")? {
        Element::Array(a) => a,
        other => {
            return Err(Error::malformed(format!(
                "nullable 'values' must be an array, found a {}",
                other.kind()
            )))
        }
    };
    let mask = match read_element(g, "mask")? {
        Element::Array(ArrayData::Bool(m)) => m.iter().copied().collect(),
        other => {
            return Err(Error::malformed(format!(
                "nullable 'mask' must be a bool array, found {}",
                match &other {
                    Element::Array(a) => a.dtype().to_string(),
                    e => e.kind().to_owned(),
                }
            )))
        }
    };
    Nullable::new(kind, values, mask)
}

/// The values of a categorical with no missing values, as a plain array.
fn materialize(c: &Categorical) -> Result<ArrayData> {
    let idx = c
        .codes
        .iter()
        .map(|&code| {
            usize::try_from(code)
                .map_err(|_| Error::unsupported("a categorical index with missing values"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(c.categories.select(0, &idx))
}
