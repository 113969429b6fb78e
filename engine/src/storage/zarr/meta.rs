//! A node's metadata documents, parsed: whether it is a group or an array, its attributes in
//! document order, and for an array the shape, chunking and element type annpage reads it
//! with ([`StoredType`]), plus the `zarrs` metadata its chunks are decoded with.
//!
//! Everything here is checked before `zarrs` sees it, so that a data type annpage cannot read
//! is refused by name and hostile metadata (negative or zero extents, a chunk grid of another
//! rank) is an error rather than something a decoder trips on.

use serde::Deserialize;
use serde_json::Value;
use zarrs::array::{ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3};

use super::attrs::{parse_attributes, OrderedObject};
use super::guard::{v2_layout, v3_layout, Layout};
use super::store::{Store, ZarrFormat};
use crate::storage::StoredType;
use crate::{Error, Result};

/// What a node is, with its metadata.
pub(crate) enum NodeMeta {
    /// A group and its attributes.
    Group(OrderedObject),
    /// An array.
    Array(Box<ArrayMeta>),
}

/// An array's metadata.
pub(crate) struct ArrayMeta {
    /// The array's shape.
    pub(crate) shape: Vec<u64>,
    /// The shape of one chunk of its (regular) grid: a shard when the array is sharded.
    pub(crate) chunk: Vec<u64>,
    /// The shape of the inner chunks of a sharded array.
    pub(crate) inner: Option<Vec<u64>>,
    /// The element type.
    pub(crate) ty: StoredType,
    /// The attributes, in document order.
    pub(crate) attrs: OrderedObject,
    /// Where its compressed values are, for the guard against values that decode past their
    /// chunk's size.
    pub(crate) compressed: Layout,
    /// The metadata document (`zarr.json` or `.zarray`), for `zarrs` to decode chunks with.
    doc: Vec<u8>,
    /// Its key.
    key: String,
    /// Its format.
    format: ZarrFormat,
}

impl ArrayMeta {
    /// The shape of the chunks reads decode one at a time: the inner chunks of a sharded
    /// array, else the chunks.
    pub(crate) fn read_chunk(&self) -> &[u64] {
        self.inner.as_deref().unwrap_or(&self.chunk)
    }

    /// The names of the filters and codecs that encode the values, outermost last, with
    /// their level where they have one (`["bytes", "zstd(0)"]`, `["vlen-utf8", "zlib(4)"]`);
    /// the codecs of a sharded array's inner chunks. Descriptions only: an unreadable
    /// document gives none.
    pub(crate) fn codec_names(&self) -> Vec<String> {
        fn named(codec: &serde_json::Value) -> Option<String> {
            let name = codec.get("name").or_else(|| codec.get("id"))?.as_str()?;
            let config = codec.get("configuration").unwrap_or(codec);
            Some(
                match config.get("level").and_then(serde_json::Value::as_i64) {
                    Some(level) => format!("{name}({level})"),
                    None => name.to_owned(),
                },
            )
        }
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&self.doc) else {
            return Vec::new();
        };
        let list = |v: Option<&serde_json::Value>| -> Vec<serde_json::Value> {
            v.and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        match self.format {
            ZarrFormat::V2 => list(doc.get("filters"))
                .iter()
                .chain(doc.get("compressor").filter(|c| !c.is_null()))
                .filter_map(named)
                .collect(),
            ZarrFormat::V3 => {
                let codecs = list(doc.get("codecs"));
                let inner = codecs
                    .iter()
                    .find(|c| c.get("name").and_then(|n| n.as_str()) == Some("sharding_indexed"))
                    .and_then(|c| c.get("configuration"))
                    .map(|c| list(c.get("codecs")));
                inner.unwrap_or(codecs).iter().filter_map(named).collect()
            }
        }
    }

    /// The metadata document parsed as JSON, for a v3 array (`None` for v2 or a document
    /// that does not parse).
    pub(crate) fn v3_document(&self) -> Option<serde_json::Value> {
        match self.format {
            ZarrFormat::V3 => serde_json::from_slice(&self.doc).ok(),
            ZarrFormat::V2 => None,
        }
    }

    /// The metadata as `zarrs` reads it (parsed when an array is first read, so that an array
    /// whose metadata `zarrs` refuses still has its shape and attributes read).
    pub(crate) fn zarrs_metadata(&self) -> Result<ArrayMetadata> {
        let key = &self.key;
        if let StoredType::Compound { size, .. } = self.ty {
            let mut doc: Value = serde_json::from_slice(&self.doc).map_err(|e| invalid(key, e))?;
            super::records::as_raw_bytes(&mut doc, self.format, &self.ty, size);
            return Ok(match self.format {
                ZarrFormat::V3 => {
                    ArrayMetadata::V3(serde_json::from_value(doc).map_err(|e| invalid(key, e))?)
                }
                ZarrFormat::V2 => {
                    ArrayMetadata::V2(serde_json::from_value(doc).map_err(|e| invalid(key, e))?)
                }
            });
        }
        Ok(match self.format {
            ZarrFormat::V3 => ArrayMetadata::V3(
                serde_json::from_slice::<ArrayMetadataV3>(&self.doc)
                    .map_err(|e| invalid(key, e))?,
            ),
            ZarrFormat::V2 => ArrayMetadata::V2(
                serde_json::from_slice::<ArrayMetadataV2>(&self.doc)
                    .map_err(|e| invalid(key, e))?,
            ),
        })
    }
}

/// Reads the metadata of the node at `prefix` (`""` for the root, else ending in `/`), `None`
/// when there is no node there (in the store's format).
pub(crate) fn read_node(store: &Store, prefix: &str) -> Result<Option<NodeMeta>> {
    match store.format() {
        ZarrFormat::V3 => {
            let key = format!("{prefix}zarr.json");
            let Some(bytes) = store.get(&key)? else {
                return Ok(None);
            };
            parse_v3(&bytes, &key).map(Some)
        }
        ZarrFormat::V2 => {
            let attrs_key = format!("{prefix}.zattrs");
            let attrs = || -> Result<OrderedObject> {
                match store.get(&attrs_key)? {
                    Some(bytes) => parse_attributes(&bytes, &attrs_key),
                    None => Ok(OrderedObject::default()),
                }
            };
            let array_key = format!("{prefix}.zarray");
            if let Some(bytes) = store.get(&array_key)? {
                return parse_v2_array(&bytes, &array_key, attrs()?).map(Some);
            }
            if store.exists(&format!("{prefix}.zgroup"))? {
                return Ok(Some(NodeMeta::Group(attrs()?)));
            }
            Ok(None)
        }
    }
}

/// Whether a node (of the store's format) exists at `prefix`, without parsing it.
pub(crate) fn node_exists(store: &Store, prefix: &str) -> Result<bool> {
    match store.format() {
        ZarrFormat::V3 => store.exists(&format!("{prefix}zarr.json")),
        ZarrFormat::V2 => Ok(store.exists(&format!("{prefix}.zarray"))?
            || store.exists(&format!("{prefix}.zgroup"))?),
    }
}

fn invalid(key: &str, e: impl std::fmt::Display) -> Error {
    Error::malformed(format!("invalid metadata in '{key}': {e}"))
}

#[derive(Deserialize)]
struct V3Node {
    zarr_format: u64,
    node_type: String,
    #[serde(default)]
    attributes: OrderedObject,
    shape: Option<Vec<u64>>,
    data_type: Option<Value>,
    chunk_grid: Option<Value>,
    #[serde(default)]
    codecs: Vec<Value>,
}

fn parse_v3(bytes: &[u8], key: &str) -> Result<NodeMeta> {
    let node: V3Node = serde_json::from_slice(bytes).map_err(|e| invalid(key, e))?;
    if node.zarr_format != 3 {
        return Err(invalid(
            key,
            format!("zarr_format is {}, expected 3", node.zarr_format),
        ));
    }
    match node.node_type.as_str() {
        "group" => return Ok(NodeMeta::Group(node.attributes)),
        "array" => {}
        other => return Err(invalid(key, format!("unknown node_type '{other}'"))),
    }
    let missing = |field: &str| invalid(key, format!("an array needs '{field}'"));
    let shape = node.shape.ok_or_else(|| missing("shape"))?;
    let data_type = node.data_type.ok_or_else(|| missing("data_type"))?;
    let grid = node.chunk_grid.ok_or_else(|| missing("chunk_grid"))?;
    let ty = or_unsupported(v3_type(&data_type));
    let chunk = regular_chunks(&grid, key)?;
    check_chunk_shape(&chunk, &shape, key, "chunk")?;
    let mut inner = None;
    for codec in &node.codecs {
        if codec.get("name").and_then(Value::as_str) == Some("sharding_indexed") {
            let shape_of_inner = codec
                .pointer("/configuration/chunk_shape")
                .cloned()
                .ok_or_else(|| invalid(key, "the sharding codec has no chunk_shape"))?;
            let shape_of_inner: Vec<u64> =
                serde_json::from_value(shape_of_inner).map_err(|e| invalid(key, e))?;
            check_chunk_shape(&shape_of_inner, &shape, key, "inner chunk")?;
            if shape_of_inner.iter().zip(&chunk).any(|(i, c)| c % i != 0) {
                return Err(invalid(
                    key,
                    format!("inner chunks {shape_of_inner:?} do not divide shards {chunk:?}"),
                ));
            }
            inner = Some(shape_of_inner);
        }
    }
    let per_shard = inner.as_ref().map(|inner| {
        chunk
            .iter()
            .zip(inner)
            .map(|(c, i)| c / i)
            .fold(1u64, u64::saturating_mul)
    });
    Ok(NodeMeta::Array(Box::new(ArrayMeta {
        compressed: v3_layout(&node.codecs, per_shard),
        shape,
        chunk,
        inner,
        ty,
        attrs: node.attributes,
        doc: bytes.to_vec(),
        key: key.to_owned(),
        format: ZarrFormat::V3,
    })))
}

#[derive(Deserialize)]
struct V2Array {
    zarr_format: u64,
    shape: Vec<u64>,
    chunks: Vec<u64>,
    dtype: Value,
    #[serde(default)]
    filters: Option<Vec<Value>>,
    #[serde(default)]
    compressor: Option<Value>,
}

fn parse_v2_array(bytes: &[u8], key: &str, attrs: OrderedObject) -> Result<NodeMeta> {
    let node: V2Array = serde_json::from_slice(bytes).map_err(|e| invalid(key, e))?;
    if node.zarr_format != 2 {
        return Err(invalid(
            key,
            format!("zarr_format is {}, expected 2", node.zarr_format),
        ));
    }
    check_chunk_shape(&node.chunks, &node.shape, key, "chunk")?;
    let filters: Vec<&str> = node
        .filters
        .iter()
        .flatten()
        .map(|f| f.get("id").and_then(Value::as_str).unwrap_or("?"))
        .collect();
    let ty = or_unsupported(v2_type(&node.dtype, &filters));
    let compressor = node
        .compressor
        .as_ref()
        .map(|c| c.get("id").and_then(Value::as_str).unwrap_or("?"));
    Ok(NodeMeta::Array(Box::new(ArrayMeta {
        shape: node.shape,
        chunk: node.chunks,
        inner: None,
        ty,
        attrs,
        compressed: v2_layout(&filters, compressor),
        doc: bytes.to_vec(),
        key: key.to_owned(),
        format: ZarrFormat::V2,
    })))
}

/// The chunk shape of a `regular` chunk grid.
fn regular_chunks(grid: &Value, key: &str) -> Result<Vec<u64>> {
    let name = grid.get("name").and_then(Value::as_str).unwrap_or("?");
    if name != "regular" {
        return Err(Error::unsupported(format!(
            "the '{name}' chunk grid of '{key}' (only regular grids are read)"
        )));
    }
    let shape = grid
        .pointer("/configuration/chunk_shape")
        .cloned()
        .ok_or_else(|| invalid(key, "the chunk grid has no chunk_shape"))?;
    serde_json::from_value(shape).map_err(|e| invalid(key, e))
}

/// A chunk shape must have the array's rank and no zero extent.
fn check_chunk_shape(chunk: &[u64], shape: &[u64], key: &str, what: &str) -> Result<()> {
    if chunk.len() != shape.len() {
        return Err(invalid(
            key,
            format!("{what} shape {chunk:?} does not have the rank of shape {shape:?}"),
        ));
    }
    if chunk.contains(&0) {
        return Err(invalid(
            key,
            format!("{what} shape {chunk:?} has a zero extent"),
        ));
    }
    Ok(())
}

/// Describes a data type annpage cannot read; the array's type is then
/// [`StoredType::Unsupported`] with this description, refused when its values are read.
fn unsupported_type(name: &str, what: &str) -> String {
    format!("Zarr data type '{name}' ({what})")
}

/// A classification as the array's type: what cannot be read is [`StoredType::Unsupported`].
fn or_unsupported(ty: Result<StoredType, String>) -> StoredType {
    ty.unwrap_or_else(StoredType::Unsupported)
}

/// Classifies a v3 `data_type`.
fn v3_type(data_type: &Value) -> Result<StoredType, String> {
    let (name, config) = match data_type {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => (
            o.get("name").and_then(Value::as_str).unwrap_or("?"),
            o.get("configuration"),
        ),
        other => return Err(unsupported_type(&other.to_string(), "not a data type name")),
    };
    let int = |signed, size| StoredType::Int { signed, size };
    Ok(match name {
        "bool" => StoredType::Bool,
        "int8" => int(true, 1),
        "int16" => int(true, 2),
        "int32" => int(true, 4),
        "int64" => int(true, 8),
        "uint8" => int(false, 1),
        "uint16" => int(false, 2),
        "uint32" => int(false, 4),
        "uint64" => int(false, 8),
        "float16" => StoredType::Float { size: 2 },
        "float32" => StoredType::Float { size: 4 },
        "float64" => StoredType::Float { size: 8 },
        "string" => StoredType::VarString { utf8: true },
        "fixed_length_utf32" => {
            let bytes = config
                .and_then(|c| c.get("length_bytes"))
                .and_then(Value::as_u64)
                .filter(|b| b % 4 == 0)
                .ok_or_else(|| {
                    unsupported_type(name, "without a length_bytes that is a multiple of 4")
                })?;
            StoredType::FixedString {
                size: usize::try_from(bytes).map_err(|_| unsupported_type(name, "too long"))?,
            }
        }
        "complex64" | "complex128" => return Err(unsupported_type(name, "complex numbers")),
        "numpy.datetime64" | "numpy.timedelta64" => {
            return Err(unsupported_type(name, "dates and times"))
        }
        "null_terminated_bytes" | "bytes" | "variable_length_bytes" => {
            return Err(unsupported_type(name, "byte strings"))
        }
        // zarr-python 3.1 writes `structured`, 3.4 `struct` (fields as objects).
        "structured" | "struct" => return super::records::v3_fields(config, v3_type),
        _ => return Err(unsupported_type(name, "not one annpage reads")),
    })
}

/// Classifies a v2 `dtype` (numpy's type string), given the ids of the array's filters.
fn v2_type(dtype: &Value, filters: &[&str]) -> Result<StoredType, String> {
    let name = match dtype {
        Value::String(name) => name,
        Value::Array(fields) => return super::records::v2_fields(fields, |t| v2_type(t, &[])),
        other => return Err(unsupported_type(&other.to_string(), "not a numpy dtype")),
    };
    let (order, rest) = name.split_at(name.char_indices().nth(1).map_or(name.len(), |(i, _)| i));
    if !matches!(order, "<" | ">" | "|") || rest.is_empty() {
        return Err(unsupported_type(name, "not a numpy type string"));
    }
    let (kind, size) = rest.split_at(1);
    let size: Option<usize> = size.parse().ok();
    let int = |signed| match size {
        Some(size @ (1 | 2 | 4 | 8)) => Ok(StoredType::Int { signed, size }),
        _ => Err(unsupported_type(name, "an integer of another size")),
    };
    match (kind, size) {
        ("b", Some(1)) => Ok(StoredType::Bool),
        ("i", _) => int(true),
        ("u", _) => int(false),
        ("f", Some(size @ (2 | 4 | 8))) => Ok(StoredType::Float { size }),
        ("O", None) if rest == "O" => match filters.first() {
            Some(&"vlen-utf8") => Ok(StoredType::VarString { utf8: true }),
            Some(other) => Err(unsupported_type(
                name,
                &format!("objects encoded by '{other}'; only vlen-utf8 strings are read"),
            )),
            None => Err(unsupported_type(name, "objects without an object codec")),
        },
        ("U", Some(chars)) if chars > 0 => Ok(StoredType::FixedString {
            size: chars
                .checked_mul(4)
                .ok_or_else(|| unsupported_type(name, "too long"))?,
        }),
        ("S", _) => Err(unsupported_type(name, "fixed-length byte strings")),
        ("c", _) => Err(unsupported_type(name, "complex numbers")),
        ("M" | "m", _) => Err(unsupported_type(name, "dates and times")),
        ("V", _) => Err(unsupported_type(name, "raw bytes")),
        _ => Err(unsupported_type(name, "not one annpage reads")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_dtypes_are_classified() {
        let ty = |s: &str, filters: &[&str]| v2_type(&Value::from(s), filters);
        assert_eq!(ty("|b1", &[]).unwrap(), StoredType::Bool);
        assert_eq!(
            ty("<i8", &[]).unwrap(),
            StoredType::Int {
                signed: true,
                size: 8
            }
        );
        assert_eq!(
            ty(">u2", &[]).unwrap(),
            StoredType::Int {
                signed: false,
                size: 2
            }
        );
        assert_eq!(ty("<f2", &[]).unwrap(), StoredType::Float { size: 2 });
        assert_eq!(
            ty("|O", &["vlen-utf8"]).unwrap(),
            StoredType::VarString { utf8: true }
        );
        assert_eq!(
            ty("<U3", &[]).unwrap(),
            StoredType::FixedString { size: 12 }
        );
        for (bad, why) in [
            ("|O", "without an object codec"),
            ("<c16", "complex"),
            ("<M8[ns]", "dates"),
            ("|S4", "byte strings"),
            ("|V8", "raw bytes"),
            ("<i3", "another size"),
            ("f8", "not a numpy type string"),
            ("", "not a numpy type string"),
        ] {
            let msg = ty(bad, &[]).unwrap_err();
            assert!(
                msg.contains(&format!("'{bad}'")) && msg.contains(why),
                "{msg}"
            );
        }
        let err = ty("|O", &["json2"]).unwrap_err();
        assert!(err.contains("json2"), "{err}");
        let structured = serde_json::json!([["a", "<i4"], ["b", "<f8"]]);
        let records = v2_type(&structured, &[]).unwrap();
        assert_eq!(records.size(), Some(12));
    }

    #[test]
    fn v3_data_types_are_classified() {
        let ty = |v: Value| v3_type(&v);
        assert_eq!(ty("uint64".into()).unwrap().describe(), "uint64");
        assert_eq!(ty("float16".into()).unwrap().describe(), "float16");
        assert_eq!(
            ty(serde_json::json!({"name": "fixed_length_utf32", "configuration": {"length_bytes": 8}}))
                .unwrap(),
            StoredType::FixedString { size: 8 }
        );
        for bad in ["complex128", "numpy.datetime64", "r16", "float8_e4m3"] {
            let err = ty(bad.into()).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn hostile_array_metadata_is_refused() {
        let array = |shape: &str, chunks: &str| {
            format!(
                r#"{{"zarr_format": 3, "node_type": "array", "shape": {shape},
                "data_type": "int32", "fill_value": 0, "codecs": [{{"name": "bytes"}}],
                "chunk_key_encoding": {{"name": "default"}},
                "chunk_grid": {{"name": "regular", "configuration": {{"chunk_shape": {chunks}}}}}}}"#
            )
        };
        let parse = |doc: String| parse_v3(doc.as_bytes(), "a/zarr.json");
        assert!(parse(array("[4, 2]", "[2, 2]")).is_ok());
        for (shape, chunks, why) in [
            ("[-4]", "[2]", "invalid metadata"),
            ("[4]", "[0]", "zero extent"),
            ("[4]", "[2, 2]", "rank"),
            ("[1e30]", "[2]", "invalid metadata"),
        ] {
            let err = parse(array(shape, chunks))
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains(why) && err.contains("a/zarr.json"), "{err}");
        }
        let err = parse_v3(b"{\"zarr_format\": 3, ", "k")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("invalid metadata in 'k'"), "{err}");
        let grid = array("[4]", "[2]").replace("\"regular\"", "\"rectilinear\"");
        let err = parse(grid).err().unwrap().to_string();
        assert!(err.contains("rectilinear"), "{err}");
    }
}
