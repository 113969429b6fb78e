//! The binary form of numeric answers: named little-endian arrays behind a small header.
//!
//! ```text
//! b"APAR"  u8 version (1)  u8 0  u16 count
//! count × { u16 name length, name (UTF-8), dtype (2 ASCII bytes, numpy's: f4 f8 i4 i8 u4 u8 u1 b1),
//!           u8 ndim, u8 0, ndim × u64 dims, u64 byte length, the values (C order) }
//! ```
//! All integers little-endian. In numpy, one array is
//! `np.frombuffer(body, dtype="<" + dtype, count=n, offset=at).reshape(dims)`. With
//! `?format=json` the same arrays come as `{name: {"dtype", "shape", "data"}}` (NaN as `null`).
//!
//! ```
//! use annpage_server::encode::{decode, encode, NamedArray};
//! let values = NamedArray::new("values", vec![2, 2], &[1.0f32, 0.0, 2.5, 7.0]);
//! let body = encode(&[values.clone()]);
//! assert_eq!(&body[..4], b"APAR");
//! let back = decode(&body).unwrap();
//! assert_eq!(back, vec![values]);
//! assert_eq!(back[0].values::<f32>(), Some(vec![1.0, 0.0, 2.5, 7.0]));
//! ```

use bytes::Bytes;

/// A value type of the binary form.
pub trait Value: Copy + Send + bytemuck::Pod + 'static {
    /// numpy's two-character type code (`f4`, `u8`…).
    const DTYPE: &'static str;
    /// Appends the little-endian bytes of `values`.
    fn put(values: &[Self], out: &mut Vec<u8>);
    /// Reads one value from its little-endian bytes.
    fn get(bytes: &[u8]) -> Self;
    /// The value in JSON (NaN and infinities as `null`).
    fn json(self) -> serde_json::Value;
}

macro_rules! value {
    ($($t:ty => $code:literal, $json:expr);* $(;)?) => {$(
        impl Value for $t {
            const DTYPE: &'static str = $code;
            fn put(values: &[Self], out: &mut Vec<u8>) {
                // Into room made at once, value by value in fixed-size pieces: a copy the
                // compiler vectorises (one push per value was most of a gene's answer).
                const N: usize = std::mem::size_of::<$t>();
                let at = out.len();
                out.resize(at + N * values.len(), 0);
                for (piece, v) in out[at..].chunks_exact_mut(N).zip(values) {
                    piece.copy_from_slice(&v.to_le_bytes());
                }
            }
            fn get(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn json(self) -> serde_json::Value {
                $json(self)
            }
        }
    )*};
}
fn float(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into)
}
value!(
    u8 => "u1", |v: u8| v.into();
    i32 => "i4", |v: i32| v.into();
    i64 => "i8", |v: i64| v.into();
    u32 => "u4", |v: u32| v.into();
    u64 => "u8", |v: u64| v.into();
    f32 => "f4", |v: f32| float(v as f64);
    f64 => "f8", float;
);

/// One named array of an answer, its values as little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedArray {
    /// The array's name in the answer (`values`, `indptr`…).
    pub name: String,
    /// numpy's type code of the values (`f4`…).
    pub dtype: String,
    /// The dimensions (C order).
    pub shape: Vec<u64>,
    /// The values, little-endian.
    pub bytes: Bytes,
}

impl NamedArray {
    /// An array of `values` with dimensions `shape` (their product is `values.len()`).
    pub fn new<T: Value>(name: &str, shape: Vec<u64>, values: &[T]) -> Self {
        debug_assert_eq!(shape.iter().product::<u64>(), values.len() as u64);
        let mut bytes = Vec::new();
        T::put(values, &mut bytes);
        NamedArray {
            name: name.to_string(),
            dtype: T::DTYPE.to_string(),
            shape,
            bytes: Bytes::from(bytes),
        }
    }

    /// An array of `values` kept as they are (no copy where the machine is little-endian).
    ///
    /// ```
    /// use annpage_server::encode::NamedArray;
    /// let a = NamedArray::from_vec("indptr", vec![3], vec![0u64, 2, 5]);
    /// assert_eq!(a, NamedArray::new("indptr", vec![3], &[0u64, 2, 5]));
    /// ```
    pub fn from_vec<T: Value>(name: &str, shape: Vec<u64>, mut values: Vec<T>) -> Self {
        debug_assert_eq!(shape.iter().product::<u64>(), values.len() as u64);
        // A server answer keeps its body's length reserved: no spare capacity may outlive it.
        values.shrink_to_fit();
        #[cfg(target_endian = "little")]
        let bytes = Bytes::from_owner(LittleEndian(values));
        #[cfg(not(target_endian = "little"))]
        let bytes = {
            let mut out = Vec::new();
            T::put(&values, &mut out);
            Bytes::from(out)
        };
        NamedArray {
            name: name.to_string(),
            dtype: T::DTYPE.to_string(),
            shape,
            bytes,
        }
    }

    /// The values as `T`, or `None` when the array holds another type.
    pub fn values<T: Value>(&self) -> Option<Vec<T>> {
        if self.dtype != T::DTYPE {
            return None;
        }
        let size = std::mem::size_of::<T>();
        Some(self.bytes.chunks_exact(size).map(T::get).collect())
    }

    fn json(&self) -> serde_json::Value {
        fn all<T: Value>(a: &NamedArray) -> Vec<serde_json::Value> {
            let size = std::mem::size_of::<T>();
            a.bytes
                .chunks_exact(size)
                .map(|b| T::get(b).json())
                .collect()
        }
        let data = match self.dtype.as_str() {
            "f4" => all::<f32>(self),
            "f8" => all::<f64>(self),
            "i4" => all::<i32>(self),
            "i8" => all::<i64>(self),
            "u4" => all::<u32>(self),
            "u8" => all::<u64>(self),
            _ => all::<u8>(self),
        };
        serde_json::json!({ "dtype": self.dtype, "shape": self.shape, "data": data })
    }
}

/// Values a [`Bytes`] owns and shows as their little-endian bytes (their memory as it is, on
/// a little-endian machine).
#[cfg(target_endian = "little")]
struct LittleEndian<T>(Vec<T>);

#[cfg(target_endian = "little")]
impl<T: bytemuck::Pod> AsRef<[u8]> for LittleEndian<T> {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// The binary form of `arrays`.
pub fn encode(arrays: &[NamedArray]) -> Vec<u8> {
    encode_parts(arrays.to_vec()).concat()
}

/// The binary form of `arrays` as consecutive parts: each array's header, then its values as
/// they are (not copied).
pub(crate) fn encode_parts(arrays: Vec<NamedArray>) -> Vec<Bytes> {
    let mut parts = Vec::with_capacity(2 * arrays.len() + 1);
    let mut head = Vec::with_capacity(8);
    head.extend_from_slice(b"APAR");
    head.extend_from_slice(&[1, 0]);
    head.extend_from_slice(&(arrays.len() as u16).to_le_bytes());
    for a in arrays {
        head.extend_from_slice(&(a.name.len() as u16).to_le_bytes());
        head.extend_from_slice(a.name.as_bytes());
        head.extend_from_slice(a.dtype.as_bytes());
        head.extend_from_slice(&[a.shape.len() as u8, 0]);
        for d in &a.shape {
            head.extend_from_slice(&d.to_le_bytes());
        }
        head.extend_from_slice(&(a.bytes.len() as u64).to_le_bytes());
        parts.push(Bytes::from(std::mem::take(&mut head)));
        parts.push(a.bytes);
    }
    if !head.is_empty() {
        parts.push(Bytes::from(head));
    }
    parts
}

/// The JSON form of `arrays`: an object by name.
pub fn to_json(arrays: &[NamedArray]) -> serde_json::Value {
    serde_json::Value::Object(arrays.iter().map(|a| (a.name.clone(), a.json())).collect())
}

/// Reads the binary form back (for clients and tests); the error says what is wrong where.
pub fn decode(body: &[u8]) -> Result<Vec<NamedArray>, String> {
    struct Cursor<'a>(&'a [u8], usize);
    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            let end = self.1.checked_add(n).filter(|&e| e <= self.0.len());
            let end = end.ok_or_else(|| format!("truncated at byte {}", self.1))?;
            let s = &self.0[self.1..end];
            self.1 = end;
            Ok(s)
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            ))
        }
        fn u16(&mut self) -> Result<u16, String> {
            Ok(u16::from_le_bytes(
                self.take(2)?.try_into().expect("2 bytes"),
            ))
        }
    }
    let mut c = Cursor(body, 0);
    if c.take(4)? != b"APAR" || c.take(2)? != [1, 0] {
        return Err("not an annpage array answer (magic APAR, version 1)".into());
    }
    let count = c.u16()?;
    let mut arrays = Vec::new();
    for _ in 0..count {
        let n = c.u16()? as usize;
        let name = String::from_utf8(c.take(n)?.to_vec()).map_err(|e| e.to_string())?;
        let dtype = String::from_utf8(c.take(2)?.to_vec()).map_err(|e| e.to_string())?;
        let ndim = c.take(2)?[0] as usize;
        let shape = (0..ndim).map(|_| c.u64()).collect::<Result<Vec<_>, _>>()?;
        let len = usize::try_from(c.u64()?).map_err(|e| e.to_string())?;
        let bytes = Bytes::copy_from_slice(c.take(len)?);
        arrays.push(NamedArray {
            name,
            dtype,
            shape,
            bytes,
        });
    }
    Ok(arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_kept_as_they_are_or_copied_encode_and_decode_alike() {
        let none: Vec<NamedArray> = vec![];
        let several = vec![
            NamedArray::from_vec("data", vec![2], vec![1.5f32, -2.0]),
            NamedArray::new("empty", vec![0], &[] as &[u64]),
            NamedArray::from_vec("indices", vec![1, 3], vec![7u32, 0, 9]),
            NamedArray::new("indptr", vec![2], &[0u64, 3]),
        ];
        for arrays in [none, several] {
            let body = encode(&arrays);
            assert_eq!(body[6..8], (arrays.len() as u16).to_le_bytes());
            assert_eq!(decode(&body).unwrap(), arrays);
        }
        let a = NamedArray::from_vec("v", vec![2], vec![1u64 << 40, 3]);
        assert_eq!(a.values::<u64>(), Some(vec![1 << 40, 3]));
    }
}
