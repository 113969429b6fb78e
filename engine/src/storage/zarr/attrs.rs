//! Zarr attributes: a JSON object per node, kept in the order the document lists its keys, and
//! each value turned into the [`ArrayData`] the format layer reads (as h5py would have stored
//! the same Python value in HDF5).
//!
//! | JSON                                   | read as                        |
//! |----------------------------------------|--------------------------------|
//! | string                                 | 0-d `String`                   |
//! | integer                                | 0-d `I64` (`U64` when too big) |
//! | float                                  | 0-d `F64`                      |
//! | `true`/`false`                         | 0-d `Bool`                     |
//! | list of one of those kinds             | 1-d array of it (ints with floats: `F64`) |
//! | `[]`                                   | empty 1-d `F64` (as numpy makes `np.array([])`) |
//!
//! `null`, objects and nested or mixed lists are [`Error::Unsupported`], naming the attribute.

use std::fmt;

use ndarray::{ArrayD, IxDyn};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Number, Value};

use crate::data::{ArrayData, CompactString};
use crate::{Error, Result};

/// A JSON object's members in document order (`serde_json`'s own map sorts them).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct OrderedObject(pub(crate) Vec<(String, Value)>);

impl OrderedObject {
    /// The names of the members, in document order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The value of member `name` (the last one, when a document repeats a name).
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    if let Some(i) = members.iter().position(|(k, _)| *k == key) {
                        // A repeated name keeps its first place and its last value.
                        members[i] = (key, value);
                    } else {
                        members.push((key, value));
                    }
                }
                Ok(OrderedObject(members))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Parses a v2 `.zattrs` document.
pub(crate) fn parse_attributes(bytes: &[u8], key: &str) -> Result<OrderedObject> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::malformed(format!("invalid JSON in '{key}': {e}")))
}

/// Converts attribute `name`'s JSON value into an array (see the module docs).
pub(crate) fn attr_value(name: &str, value: &Value) -> Result<ArrayData> {
    let unsupported = |what: &str| {
        Error::unsupported(format!(
            "attribute '{name}' holds {what}, which has no array form"
        ))
    };
    let scalar = IxDyn(&[]);
    Ok(match value {
        Value::String(s) => ArrayData::String(ArrayD::from_elem(scalar, s.into())),
        Value::Bool(b) => ArrayData::Bool(ArrayD::from_elem(scalar, *b)),
        Value::Number(n) => number_array(std::slice::from_ref(n), scalar),
        Value::Null => return Err(unsupported("null")),
        Value::Object(_) => return Err(unsupported("an object")),
        Value::Array(items) => list_value(items).ok_or_else(|| {
            unsupported("a list of mixed or nested values (only flat lists of strings, numbers or booleans are read)")
        })?,
    })
}

/// A flat, homogeneous list as a 1-d array; `None` for any other list.
fn list_value(items: &[Value]) -> Option<ArrayData> {
    let shape = IxDyn(&[items.len()]);
    match items.first() {
        None => Some(ArrayData::F64(ArrayD::from_shape_vec(shape, vec![]).ok()?)),
        Some(Value::String(_)) => {
            let v: Option<Vec<CompactString>> = items
                .iter()
                .map(|i| i.as_str().map(CompactString::from))
                .collect();
            Some(ArrayData::String(ArrayD::from_shape_vec(shape, v?).ok()?))
        }
        Some(Value::Bool(_)) => {
            let v: Option<Vec<bool>> = items.iter().map(Value::as_bool).collect();
            Some(ArrayData::Bool(ArrayD::from_shape_vec(shape, v?).ok()?))
        }
        Some(Value::Number(_)) => {
            let v: Option<Vec<Number>> = items
                .iter()
                .map(|i| match i {
                    Value::Number(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            Some(number_array(&v?, shape))
        }
        Some(_) => None,
    }
}

/// Numbers as one array: all fit `i64` → `I64`, else all fit `u64` → `U64`, else `F64`.
fn number_array(numbers: &[Number], shape: IxDyn) -> ArrayData {
    // `shape` is built from `numbers.len()`, so the shapes always agree.
    fn build<T>(shape: IxDyn, v: Vec<T>) -> ArrayD<T> {
        ArrayD::from_shape_vec(shape, v).expect("one value a number")
    }
    if let Some(v) = numbers
        .iter()
        .map(Number::as_i64)
        .collect::<Option<Vec<_>>>()
    {
        return ArrayData::I64(build(shape, v));
    }
    if let Some(v) = numbers
        .iter()
        .map(Number::as_u64)
        .collect::<Option<Vec<_>>>()
    {
        return ArrayData::U64(build(shape, v));
    }
    // Every JSON number has an f64 form (serde_json parses out-of-range integers as floats).
    let v = numbers
        .iter()
        .map(|n| n.as_f64().unwrap_or(f64::NAN))
        .collect();
    ArrayData::F64(build(shape, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Result<ArrayData> {
        attr_value("a", &serde_json::from_str(json).unwrap())
    }

    #[test]
    fn json_values_map_to_arrays() {
        let s = |v: &str| ArrayData::String(ArrayD::from_elem(IxDyn(&[]), v.into()));
        assert_eq!(value("\"csr_matrix\"").unwrap(), s("csr_matrix"));
        assert_eq!(
            value("3").unwrap(),
            ArrayData::I64(ArrayD::from_elem(IxDyn(&[]), 3))
        );
        assert_eq!(
            value("18446744073709551615").unwrap(),
            ArrayData::U64(ArrayD::from_elem(IxDyn(&[]), u64::MAX))
        );
        assert_eq!(
            value("2.5").unwrap(),
            ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), 2.5))
        );
        assert_eq!(
            value("true").unwrap(),
            ArrayData::Bool(ArrayD::from_elem(IxDyn(&[]), true))
        );
        assert_eq!(value("[5, 4]").unwrap(), ArrayData::from(vec![5i64, 4]));
        assert_eq!(value("[1, 2.5]").unwrap(), ArrayData::from(vec![1.0, 2.5]));
        assert_eq!(
            value("[-1, 18446744073709551615]").unwrap().dtype(),
            crate::data::DType::F64
        );
        assert_eq!(
            value("[\"a\", \"b\"]").unwrap(),
            ArrayData::from(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            value("[true, false]").unwrap(),
            ArrayData::from(vec![true, false])
        );
        assert_eq!(value("[]").unwrap(), ArrayData::from(Vec::<f64>::new()));
        for bad in ["null", "{\"x\": 1}", "[1, \"a\"]", "[[1], [2]]", "[null]"] {
            let err = value(bad).unwrap_err();
            assert!(matches!(err, Error::Unsupported(_)), "{bad}: {err}");
            assert!(err.to_string().contains("attribute 'a'"), "{err}");
        }
    }

    #[test]
    fn objects_keep_document_order() {
        let o = parse_attributes(br#"{"z": 1, "a": 2, "m": {"q": 1}, "a": 3}"#, "k").unwrap();
        assert_eq!(o.names(), ["z", "a", "m"]);
        assert_eq!(o.get("a"), Some(&Value::from(3)));
        let err = parse_attributes(b"{\"z\": ", "g/.zattrs").unwrap_err();
        assert!(
            err.to_string().contains("invalid JSON in 'g/.zattrs'"),
            "{err}"
        );
        assert!(parse_attributes(b"[1]", "k").is_err());
    }
}
