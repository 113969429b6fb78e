//! Record (structured) arrays: numpy's structured dtypes as zarr-python stores them, which
//! anndata writes for record arrays in `uns` (scanpy's `rank_genes_groups`: `names`,
//! `scores`, `pvals`…, one field per group).
//!
//! - v2: the dtype is a list of `[name, type]` pairs (`[["a", "<U7"], ["b", "<f4"]]`).
//! - v3: the `structured` data type, `{"name": "structured", "configuration": {"fields":
//!   [["a", {"name": "fixed_length_utf32", …}], ["b", "float32"]]}}`.
//!
//! Either way a record is its fields' bytes packed in order, little-endian, strings as UTF-32.
//! `zarrs` has no such data type: the records go through it as raw bytes of the record's size
//! (`|V<n>`, `r<bits>`), with the array's own codecs, and are split into fields (or packed
//! from them) here.

use ndarray::{ArrayD, IxDyn};
use serde_json::{json, Value};

use super::write::meta::{numpy_dtype, v3_data_type};
use super::write::ZarrFormat;
use crate::data::{ArrayData, CompactString, DType, RawData};
use crate::storage::{CompoundField, StoredType};
use crate::{Error, Result};

/// The largest record read or written, in bytes: `zarrs` is handed a fill value of that many
/// bytes as a JSON list (numpy records are far smaller: scanpy's are a few hundred bytes).
const MAX_RECORD_BYTES: usize = 1 << 20;

/// The type of records whose fields are `fields` (name and the type of one value, as the
/// metadata's own classifier reads it), packed in order.
pub(super) fn compound(
    fields: impl IntoIterator<Item = Result<(String, StoredType), String>>,
) -> Result<StoredType, String> {
    let mut size = 0usize;
    let mut out = Vec::new();
    for field in fields {
        let (name, ty) = field?;
        let width = match ty {
            StoredType::Bool
            | StoredType::Int { .. }
            | StoredType::Float { .. }
            | StoredType::FixedString { .. } => ty.size().unwrap_or(0),
            other => {
                return Err(format!(
                    "a structured data type whose field '{name}' holds {}",
                    other.describe()
                ))
            }
        };
        out.push(CompoundField {
            name,
            offset: size,
            ty,
        });
        size = size
            .checked_add(width)
            .ok_or("a structured data type too large")?;
    }
    if out.is_empty() || size == 0 {
        return Err("a structured data type without fields".into());
    }
    if size > MAX_RECORD_BYTES {
        return Err(format!(
            "a structured data type of {size} bytes a record (more than {MAX_RECORD_BYTES})"
        ));
    }
    Ok(StoredType::Compound { size, fields: out })
}

/// The fields of a v2 structured dtype, each classified by `classify` (big-endian fields and
/// sub-array fields are refused).
pub(super) fn v2_fields(
    list: &[Value],
    classify: impl Fn(&Value) -> Result<StoredType, String>,
) -> Result<StoredType, String> {
    compound(list.iter().map(|f| match f.as_array().map(Vec::as_slice) {
        Some([Value::String(name), Value::String(ty)]) if !ty.starts_with('>') => {
            Ok((name.clone(), classify(&Value::String(ty.clone()))?))
        }
        _ => Err(format!(
            "the structured field {f} (only [name, little-endian type] pairs are read)"
        )),
    }))
}

/// The fields of a v3 `structured` (zarr-python 3.1: `[name, type]` pairs) or `struct` data
/// type's configuration (3.4: `{"name", "data_type"}` objects), each classified by `classify`.
pub(super) fn v3_fields(
    config: Option<&Value>,
    classify: impl Fn(&Value) -> Result<StoredType, String>,
) -> Result<StoredType, String> {
    let list = config
        .and_then(|c| c.get("fields"))
        .and_then(Value::as_array)
        .ok_or("a structured data type without a list of fields")?;
    compound(list.iter().map(|f| {
        let named = match f {
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(name), ty] => Some((name, ty)),
                _ => None,
            },
            Value::Object(o) => match (o.get("name"), o.get("data_type")) {
                (Some(Value::String(name)), Some(ty)) => Some((name, ty)),
                _ => None,
            },
            _ => None,
        };
        match named {
            Some((name, ty)) => Ok((name.clone(), classify(ty)?)),
            None => Err(format!(
                "the structured field {f} (neither a [name, type] pair nor a name and data_type)"
            )),
        }
    }))
}

/// A record of `size` bytes holding the fields' `values` (numbers and bools; text fields, and
/// fields without a value, zero); `None` when a value does not fit its field.
fn fill_record(
    values: &serde_json::Map<String, Value>,
    ty: &StoredType,
    size: usize,
) -> Option<Vec<u8>> {
    let StoredType::Compound { fields, .. } = ty else {
        return None;
    };
    let mut record = vec![0u8; size];
    for field in fields {
        let Some(value) = values.get(&field.name) else {
            continue;
        };
        let bytes: Vec<u8> = match (&field.ty, value) {
            (StoredType::Bool, Value::Bool(b)) => vec![u8::from(*b)],
            (StoredType::Int { signed: true, size }, Value::Number(n)) => {
                n.as_i64()?.to_le_bytes()[..*size].to_vec()
            }
            (
                StoredType::Int {
                    signed: false,
                    size,
                },
                Value::Number(n),
            ) => n.as_u64()?.to_le_bytes()[..*size].to_vec(),
            (StoredType::Float { size: 2 }, Value::Number(n)) => {
                half::f16::from_f64(n.as_f64()?).to_le_bytes().to_vec()
            }
            (StoredType::Float { size: 4 }, Value::Number(n)) => {
                (n.as_f64()? as f32).to_le_bytes().to_vec()
            }
            (StoredType::Float { size: 8 }, Value::Number(n)) => n.as_f64()?.to_le_bytes().to_vec(),
            _ => continue,
        };
        record
            .get_mut(field.offset..field.offset + bytes.len())?
            .copy_from_slice(&bytes);
    }
    Some(record)
}

/// The metadata document `doc` of a record array of type `ty` as raw bytes of the record's
/// `size`, the form `zarrs` reads and writes (same shape, chunks and codecs, and the record the
/// metadata fills chunks not stored with: zarr-python 3.1 writes its bytes in base64, 3.4 an
/// object of the fields' values; zeros otherwise).
pub(super) fn as_raw_bytes(doc: &mut Value, format: ZarrFormat, ty: &StoredType, size: usize) {
    use base64::Engine;
    let fill = match &doc["fill_value"] {
        Value::String(text) => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        Value::Object(values) => fill_record(values, ty, size),
        _ => None,
    }
    .filter(|bytes| bytes.len() == size)
    .unwrap_or_else(|| vec![0u8; size]);
    match format {
        ZarrFormat::V2 => {
            doc["dtype"] = json!(format!("|V{size}"));
            doc["fill_value"] = json!(base64::engine::general_purpose::STANDARD.encode(&fill));
        }
        ZarrFormat::V3 => {
            doc["data_type"] = json!(format!("r{}", size * 8));
            doc["fill_value"] = json!(fill);
        }
    }
}

/// Splits `bytes` (records of type `ty`, `shape` of them) into one array per field.
pub(super) fn decode(bytes: &[u8], ty: &StoredType, shape: &[usize]) -> Result<RawData> {
    let StoredType::Compound { size, fields } = ty else {
        return Err(Error::malformed("not a structured array"));
    };
    let count: usize = shape.iter().product();
    if bytes.len() != count.saturating_mul(*size) {
        return Err(Error::malformed(format!(
            "its chunks decoded to {} bytes where {count} records of {size} bytes need {}",
            bytes.len(),
            count.saturating_mul(*size)
        )));
    }
    let records = || bytes.chunks_exact(*size);
    let decoded = fields
        .iter()
        .map(|f| {
            let at = f.offset;
            let array = match f.ty {
                StoredType::Bool => ArrayData::Bool(shaped(shape, records().map(|r| r[at] != 0))?),
                StoredType::Int { signed, size } => ints(records(), at, signed, size, shape)?,
                StoredType::Float { size: 2 } => ArrayData::F16(shaped(
                    shape,
                    records().map(|r| half::f16::from_le_bytes(le(r, at))),
                )?),
                StoredType::Float { size: 4 } => ArrayData::F32(shaped(
                    shape,
                    records().map(|r| f32::from_le_bytes(le(r, at))),
                )?),
                StoredType::Float { size: 8 } => ArrayData::F64(shaped(
                    shape,
                    records().map(|r| f64::from_le_bytes(le(r, at))),
                )?),
                StoredType::FixedString { size } => {
                    let strings = records()
                        .map(|r| utf32(&r[at..at + size]))
                        .collect::<Result<Vec<_>>>()?;
                    ArrayData::String(shaped(shape, strings.into_iter())?)
                }
                ref other => {
                    return Err(Error::unsupported(format!(
                        "a record field of {}",
                        other.describe()
                    )))
                }
            };
            Ok((f.name.clone(), array))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RawData::Compound {
        shape: shape.to_vec(),
        fields: decoded,
    })
}

/// The `N` bytes at `at` of a record (in bounds: fields lie inside the record's size).
fn le<const N: usize>(record: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&record[at..at + N]);
    out
}

fn ints<'a>(
    records: impl Iterator<Item = &'a [u8]>,
    at: usize,
    signed: bool,
    size: usize,
    shape: &[usize],
) -> Result<ArrayData> {
    macro_rules! go {
        ($t:ty, $variant:ident) => {
            ArrayData::$variant(shaped(
                shape,
                records.map(|r| <$t>::from_le_bytes(le(r, at))),
            )?)
        };
    }
    Ok(match (signed, size) {
        (true, 1) => go!(i8, I8),
        (true, 2) => go!(i16, I16),
        (true, 4) => go!(i32, I32),
        (true, 8) => go!(i64, I64),
        (false, 1) => go!(u8, U8),
        (false, 2) => go!(u16, U16),
        (false, 4) => go!(u32, U32),
        (false, 8) => go!(u64, U64),
        _ => return Err(Error::unsupported(format!("{size}-byte integer fields"))),
    })
}

/// A fixed-length UTF-32 (little-endian) string without its NUL padding.
fn utf32(bytes: &[u8]) -> Result<CompactString> {
    let mut text = String::with_capacity(bytes.len() / 4);
    for unit in bytes.chunks_exact(4) {
        let code = u32::from_le_bytes([unit[0], unit[1], unit[2], unit[3]]);
        text.push(
            char::from_u32(code)
                .ok_or_else(|| Error::malformed(format!("a string holds U+{code:X}")))?,
        );
    }
    Ok(text.trim_end_matches('\0').into())
}

fn shaped<T>(shape: &[usize], values: impl Iterator<Item = T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), values.collect())
        .map_err(|e| Error::malformed(format!("records of shape {shape:?}: {e}")))
}

/// The layout of records holding `fields` (one array each, of the records' `shape`) and the
/// records packed: numbers and bools as they are, strings as UTF-32 of the longest one's
/// length (at least one character), as numpy stores a structured array.
pub(super) fn encode(
    shape: &[usize],
    fields: &[(String, ArrayData)],
) -> Result<(StoredType, Vec<u8>)> {
    let widths = fields
        .iter()
        .map(|(name, a)| {
            if a.shape() != shape {
                return Err(Error::invalid(format!(
                    "the record field '{name}' has shape {:?}, not the records' {shape:?} \
                     (sub-array fields are not written to Zarr)",
                    a.shape()
                )));
            }
            Ok(match a {
                ArrayData::String(s) => StoredType::FixedString {
                    size: 4 * s
                        .iter()
                        .map(|v| v.chars().count())
                        .max()
                        .unwrap_or(0)
                        .max(1),
                },
                ArrayData::Bool(_) => StoredType::Bool,
                other => {
                    let d = other.dtype();
                    if d.is_float() {
                        StoredType::Float { size: d.size() }
                    } else {
                        StoredType::Int {
                            signed: matches!(d, DType::I8 | DType::I16 | DType::I32 | DType::I64),
                            size: d.size(),
                        }
                    }
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let ty = compound(
        fields
            .iter()
            .zip(widths)
            .map(|((name, _), ty)| Ok((name.clone(), ty))),
    )
    .map_err(Error::invalid)?;
    let StoredType::Compound {
        size,
        fields: layout,
    } = &ty
    else {
        unreachable!("compound() builds a compound type");
    };
    let count: usize = shape.iter().product();
    let mut bytes = vec![0u8; count * size];
    for ((_, values), f) in fields.iter().zip(layout) {
        let slots = bytes.chunks_exact_mut(*size).map(|r| &mut r[f.offset..]);
        match values {
            ArrayData::String(s) => {
                for (slot, v) in slots.zip(s.iter()) {
                    for (unit, c) in slot.chunks_exact_mut(4).zip(v.chars()) {
                        unit.copy_from_slice(&u32::from(c).to_le_bytes());
                    }
                }
            }
            other => {
                let size = other.dtype().size();
                let mut packed = vec![0u8; count * size];
                other.copy_bytes_into(&mut packed)?;
                for (slot, v) in slots.zip(packed.chunks_exact(size)) {
                    slot[..size].copy_from_slice(v);
                }
            }
        }
    }
    Ok((ty, bytes))
}

/// Makes the metadata document `doc` (written for one-byte values) that of records `ty`: their
/// data type, and a fill value of zero bytes as zarr-python writes one (base64).
pub(super) fn describe(doc: &mut Value, ty: &StoredType, format: ZarrFormat) {
    let key = match format {
        ZarrFormat::V2 => "dtype",
        ZarrFormat::V3 => "data_type",
    };
    doc[key] = data_type(ty, format);
    let zeros = vec![0u8; ty.size().unwrap_or(0)];
    doc["fill_value"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        zeros
    ));
}

/// The data type of records `ty` in the metadata of `format`.
fn data_type(ty: &StoredType, format: ZarrFormat) -> Value {
    let StoredType::Compound { fields, .. } = ty else {
        return Value::Null;
    };
    let field = |f: &CompoundField| -> Value {
        let t = match (&f.ty, format) {
            (&StoredType::FixedString { size }, ZarrFormat::V2) => json!(format!("<U{}", size / 4)),
            (&StoredType::FixedString { size }, ZarrFormat::V3) => json!({
                "name": "fixed_length_utf32", "configuration": { "length_bytes": size }
            }),
            // Numbers and bools as the array writer names them.
            (other, ZarrFormat::V2) => other.dtype().map_or(Value::Null, |d| json!(numpy_dtype(d))),
            (other, ZarrFormat::V3) => other
                .dtype()
                .map_or(Value::Null, |d| json!(v3_data_type(d))),
        };
        json!([f.name, t])
    };
    let list: Vec<Value> = fields.iter().map(field).collect();
    match format {
        ZarrFormat::V2 => Value::Array(list),
        ZarrFormat::V3 => json!({ "name": "structured", "configuration": { "fields": list } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pack_and_split_back_into_their_fields() {
        let fields = vec![
            ("names".to_owned(), ArrayData::from(vec!["CD3E", "", "é"])),
            (
                "scores".to_owned(),
                ArrayData::from(vec![1.5f32, -2.0, 0.0]),
            ),
            ("rank".to_owned(), ArrayData::from(vec![-1i16, 7, 300])),
            ("ok".to_owned(), ArrayData::from(vec![true, false, true])),
        ];
        let (ty, bytes) = encode(&[3], &fields).unwrap();
        // "CD3E" is the longest string: 4 UTF-32 characters, then 4 + 2 + 1 bytes.
        assert_eq!(ty.size(), Some(16 + 4 + 2 + 1));
        assert_eq!(bytes.len(), 3 * 23);
        let RawData::Compound {
            shape,
            fields: back,
        } = decode(&bytes, &ty, &[3]).unwrap()
        else {
            panic!("not records");
        };
        assert_eq!(shape, vec![3]);
        assert_eq!(back, fields);
        // The metadata names each field as zarr-python does, and is read back as the same type.
        let v2 = data_type(&ty, ZarrFormat::V2);
        assert_eq!(v2[0], json!(["names", "<U4"]));
        assert_eq!(v2[2], json!(["rank", "<i2"]));
        let classify = |v: &Value| -> Result<StoredType, String> {
            Ok(match v.as_str() {
                Some("<U4") => StoredType::FixedString { size: 16 },
                Some("<f4") => StoredType::Float { size: 4 },
                Some("<i2") => StoredType::Int {
                    signed: true,
                    size: 2,
                },
                Some("|b1") => StoredType::Bool,
                other => return Err(format!("{other:?}")),
            })
        };
        assert_eq!(v2_fields(v2.as_array().unwrap(), classify).unwrap(), ty);
        let v3 = data_type(&ty, ZarrFormat::V3);
        assert_eq!(
            v3["configuration"]["fields"][1],
            json!(["scores", "float32"])
        );
    }

    #[test]
    fn records_the_reader_cannot_split_are_refused_with_the_reason() {
        let any = |_: &Value| Ok(StoredType::Float { size: 8 });
        let big = v2_fields(&[json!(["a", ">f8"])], any).unwrap_err();
        assert!(big.contains("little-endian"), "{big}");
        let sub = v2_fields(&[json!(["a", "<f8", [3]])], any).unwrap_err();
        assert!(sub.contains("[name, little-endian type]"), "{sub}");
        assert!(v3_fields(Some(&json!({"fields": []})), any).is_err());
        let ty = compound([Ok(("a".to_owned(), StoredType::Float { size: 8 }))]).unwrap();
        let huge = compound([Ok((
            "a".to_owned(),
            StoredType::FixedString { size: 4 << 30 },
        ))]);
        assert!(huge.unwrap_err().contains("bytes a record"));
        let short = decode(&[0u8; 7], &ty, &[1]).unwrap_err();
        assert!(short.to_string().contains("7 bytes"), "{short}");
    }

    #[test]
    fn zarr_3_4_struct_types_read_with_their_fill_record() {
        // zarr-python 3.4: fields as objects, the fill value an object of the fields' values.
        let config = json!({"fields": [{"name": "a", "data_type": "int32"}, {"name": "b", "data_type": "float64"}]});
        let classify = |v: &Value| -> Result<StoredType, String> {
            Ok(match v.as_str() {
                Some("int32") => StoredType::Int {
                    signed: true,
                    size: 4,
                },
                _ => StoredType::Float { size: 8 },
            })
        };
        let ty = v3_fields(Some(&config), classify).unwrap();
        assert_eq!(ty.size(), Some(12));
        let mut doc = json!({"data_type": {"name": "struct"}, "fill_value": {"a": -2, "b": 1.5}});
        as_raw_bytes(&mut doc, ZarrFormat::V3, &ty, 12);
        assert_eq!(doc["data_type"], json!("r96"));
        let mut want = (-2i32).to_le_bytes().to_vec();
        want.extend(1.5f64.to_le_bytes());
        assert_eq!(doc["fill_value"], json!(want));
    }
}
