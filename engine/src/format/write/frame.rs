//! Data frames and their column encodings: `dataframe`, `categorical`, `nullable-*`.

use ndarray::{ArrayD, IxDyn, Zip};

use super::{check_key, new_group, path_of, prepare, write_array_element, WriteOptions};
use crate::data::{
    ArrayData, Categorical, Column, DType, DataFrame, Nullable, NullableKind, StringNa,
};
use crate::error::ResultExt;
use crate::format::Encoding;
use crate::storage::GroupWriter;
use crate::{map_array, Error, Result};

/// The member holding a frame's index when the index has no name.
const DEFAULT_INDEX_KEY: &str = "_index";

/// Writes a `dataframe` group as anndata does, replacing any member of that name.
///
/// Attributes: `_index` names the member holding the index (the index's name, or `_index`);
/// `column-order` lists the columns (an empty float64 array when there are none, as anndata
/// 0.12 writes). The index is a `string-array` (a `nullable-string-array` when
/// [`DataFrame::index_string_na`] says so; an `array` for a non-string index), each column an `array`, `string-array`, `categorical` or `nullable-*` member.
///
/// An index name that is also a column name is accepted only if that column holds the index's
/// values (pandas' rule in anndata): the column then stands for the index.
pub(crate) fn write_dataframe(
    group: &dyn GroupWriter,
    name: &str,
    df: &DataFrame,
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    let path = path_of(group, name);
    let index_key = df.index_name().unwrap_or(DEFAULT_INDEX_KEY);
    check_key(index_key).in_element(&path)?;
    for key in df.columns().keys() {
        check_key(key).in_element(&path)?;
    }
    let index_is_column = match df.column(index_key) {
        None => false,
        Some(Column::Array(values)) if values == df.index() => true,
        // pandas' `str`/`string` column (anndata 0.13): the index has no missing values.
        Some(Column::Nullable(n))
            if matches!(n.kind(), NullableKind::String(_))
                && !n.mask().contains(&true)
                && n.values() == df.index() =>
        {
            true
        }
        Some(_) => {
            return Err(Error::invalid(format!(
                "the index is named '{index_key}' like a column whose values differ from it"
            ))
            .in_element(path));
        }
    };
    let g = new_group(group, name, Encoding::DataFrame)?;
    let order = if df.columns().is_empty() {
        ArrayData::zeros(DType::F64, &[0])
    } else {
        ArrayData::from(df.columns().keys().cloned().collect::<Vec<String>>())
    };
    let attrs = || -> Result<()> {
        g.set_attr("column-order", &order)?;
        g.set_str_attr("_index", index_key)
    };
    attrs().in_element(&path)?;
    match df.index_string_na() {
        _ if index_is_column => {}
        None => write_array_element(g.as_ref(), index_key, df.index(), &options.array_options())?,
        Some(na) => {
            let mask = vec![false; df.nrows()];
            let kind = NullableKind::String(na);
            write_nullable_parts(g.as_ref(), index_key, kind, df.index(), &mask, options)?
        }
    }
    for (key, column) in df.columns() {
        write_column(g.as_ref(), key, column, options)?;
    }
    Ok(())
}

/// Writes one column of a frame.
fn write_column(
    group: &dyn GroupWriter,
    name: &str,
    column: &Column,
    options: &WriteOptions,
) -> Result<()> {
    match column {
        Column::Array(a) => write_array_element(group, name, a, &options.array_options()),
        Column::Categorical(c) => write_categorical(group, name, c, options),
        Column::Nullable(n) => write_nullable(group, name, n, options),
    }
}

/// Writes a `categorical` group, replacing any member of that name: the `ordered` attribute
/// (a bool), `codes` in [`Categorical::code_dtype`] (pandas' smallest signed integer) and
/// `categories`.
pub(crate) fn write_categorical(
    group: &dyn GroupWriter,
    name: &str,
    categorical: &Categorical,
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    let g = new_group(group, name, Encoding::Categorical)?;
    let ordered = ArrayData::Bool(ArrayD::from_elem(IxDyn(&[]), categorical.ordered));
    g.set_attr("ordered", &ordered).in_element(g.path())?;
    let codes = codes_array(&categorical.codes, categorical.code_dtype())
        .in_element(path_of(g.as_ref(), "codes"))?;
    let array = options.array_options();
    write_array_element(g.as_ref(), "codes", &codes, &array)?;
    write_array_element(g.as_ref(), "categories", &categorical.categories, &array)
}

/// Categorical codes as an array of `dtype` (a signed integer type).
fn codes_array(codes: &[i32], dtype: DType) -> Result<ArrayData> {
    fn narrow<T: TryFrom<i32>>(codes: &[i32], dtype: DType) -> Result<Vec<T>> {
        codes
            .iter()
            .map(|&c| {
                T::try_from(c).map_err(|_| {
                    Error::invalid(format!("categorical code {c} does not fit {dtype}"))
                })
            })
            .collect()
    }
    Ok(match dtype {
        DType::I8 => ArrayData::from(narrow::<i8>(codes, dtype)?),
        DType::I16 => ArrayData::from(narrow::<i16>(codes, dtype)?),
        DType::I32 => ArrayData::from(codes.to_vec()),
        _ => ArrayData::from(codes.iter().map(|&c| i64::from(c)).collect::<Vec<_>>()),
    })
}

/// Writes a `nullable-integer`, `nullable-boolean` or `nullable-string-array` group, replacing
/// any member of that name: `values` (with missing entries set to 0, `False` or `""`, as
/// anndata writes them) and `mask` (`True` where missing).
pub(crate) fn write_nullable(
    group: &dyn GroupWriter,
    name: &str,
    nullable: &Nullable,
    options: &WriteOptions,
) -> Result<()> {
    let mask = nullable.mask();
    let values = map_array!(nullable.values(), a => blank_missing(a, mask));
    write_nullable_parts(group, name, nullable.kind(), &values, mask, options)
}

/// Writes a nullable group from its parts; `values` already hold the blanks under `mask`.
fn write_nullable_parts(
    group: &dyn GroupWriter,
    name: &str,
    kind: NullableKind,
    values: &ArrayData,
    mask: &[bool],
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    let encoding = match kind {
        NullableKind::Integer => Encoding::NullableInteger,
        NullableKind::Boolean => Encoding::NullableBoolean,
        NullableKind::String(_) => Encoding::NullableStringArray,
    };
    let g = new_group(group, name, encoding)?;
    if kind == NullableKind::String(StringNa::NaN) {
        g.set_str_attr("na-value", "NaN")?;
    }
    let array = options.array_options();
    write_array_element(g.as_ref(), "values", values, &array)?;
    write_array_element(g.as_ref(), "mask", &ArrayData::from(mask.to_vec()), &array)
}

/// `values` with the entries under `mask` replaced by the type's default (0, false, "").
fn blank_missing<T: Clone + Default>(values: &ArrayD<T>, mask: &[bool]) -> ArrayD<T> {
    let mut out = values.clone();
    // `Nullable` guarantees a 1-d array as long as the mask.
    if let Some(mask) = ndarray::ArrayView1::from(mask)
        .into_dyn()
        .broadcast(out.raw_dim())
    {
        Zip::from(&mut out).and(&mask).for_each(|v, &missing| {
            if missing {
                *v = T::default();
            }
        });
    }
    out
}
