//! Dense n-dimensional arrays of any dtype anndata writes, and scalars.

use super::floats::{numpy_half, python_float};
use compact_str::CompactString;
use ndarray::{ArrayD, Axis, IxDyn, Slice};

use crate::select::{AxisIndex, IndexKind};
use crate::{Error, Result};

/// The element types of dense arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// `bool` (stored by h5py as an enum over int8).
    Bool,
    /// `int8`.
    I8,
    /// `int16`.
    I16,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `uint8`.
    U8,
    /// `uint16`.
    U16,
    /// `uint32`.
    U32,
    /// `uint64`.
    U64,
    /// `float16` (IEEE half precision).
    F16,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
    /// Variable-length UTF-8 strings.
    String,
}

impl DType {
    /// The numpy name of the dtype (`"float32"`, `"bool"`, `"str"` for strings).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::String => "str",
        }
    }

    /// Whether the dtype is a signed or unsigned integer.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        )
    }

    /// Whether the dtype is a float.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// Size of one element in bytes (a string counts its inline storage, not a longer text).
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
            DType::String => size_of::<CompactString>(),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense n-dimensional array of one of the supported dtypes, row-major.
///
/// ```
/// use annpage_engine::data::{ArrayData, DType};
/// let a = ArrayData::from(vec![1.0f32, 2.0, 3.0]);
/// assert_eq!(a.dtype(), DType::F32);
/// assert_eq!(a.shape(), &[3]);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum ArrayData {
    Bool(ArrayD<bool>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F16(ArrayD<half::f16>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    String(ArrayD<CompactString>),
}

/// Applies an expression to the `ndarray` inside any [`ArrayData`] variant.
///
/// `dispatch_array!(value, a => a.len())` evaluates `a.len()` with `a` bound to the inner array.
#[macro_export]
macro_rules! dispatch_array {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            $crate::data::ArrayData::Bool($a) => $body,
            $crate::data::ArrayData::I8($a) => $body,
            $crate::data::ArrayData::I16($a) => $body,
            $crate::data::ArrayData::I32($a) => $body,
            $crate::data::ArrayData::I64($a) => $body,
            $crate::data::ArrayData::U8($a) => $body,
            $crate::data::ArrayData::U16($a) => $body,
            $crate::data::ArrayData::U32($a) => $body,
            $crate::data::ArrayData::U64($a) => $body,
            $crate::data::ArrayData::F16($a) => $body,
            $crate::data::ArrayData::F32($a) => $body,
            $crate::data::ArrayData::F64($a) => $body,
            $crate::data::ArrayData::String($a) => $body,
        }
    };
}

/// Like [`dispatch_array!`] but rebuilds the same variant from the expression's result.
#[macro_export]
macro_rules! map_array {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            $crate::data::ArrayData::Bool($a) => $crate::data::ArrayData::Bool($body),
            $crate::data::ArrayData::I8($a) => $crate::data::ArrayData::I8($body),
            $crate::data::ArrayData::I16($a) => $crate::data::ArrayData::I16($body),
            $crate::data::ArrayData::I32($a) => $crate::data::ArrayData::I32($body),
            $crate::data::ArrayData::I64($a) => $crate::data::ArrayData::I64($body),
            $crate::data::ArrayData::U8($a) => $crate::data::ArrayData::U8($body),
            $crate::data::ArrayData::U16($a) => $crate::data::ArrayData::U16($body),
            $crate::data::ArrayData::U32($a) => $crate::data::ArrayData::U32($body),
            $crate::data::ArrayData::U64($a) => $crate::data::ArrayData::U64($body),
            $crate::data::ArrayData::F16($a) => $crate::data::ArrayData::F16($body),
            $crate::data::ArrayData::F32($a) => $crate::data::ArrayData::F32($body),
            $crate::data::ArrayData::F64($a) => $crate::data::ArrayData::F64($body),
            $crate::data::ArrayData::String($a) => $crate::data::ArrayData::String($body),
        }
    };
}

impl ArrayData {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            ArrayData::Bool(_) => DType::Bool,
            ArrayData::I8(_) => DType::I8,
            ArrayData::I16(_) => DType::I16,
            ArrayData::I32(_) => DType::I32,
            ArrayData::I64(_) => DType::I64,
            ArrayData::U8(_) => DType::U8,
            ArrayData::U16(_) => DType::U16,
            ArrayData::U32(_) => DType::U32,
            ArrayData::U64(_) => DType::U64,
            ArrayData::F16(_) => DType::F16,
            ArrayData::F32(_) => DType::F32,
            ArrayData::F64(_) => DType::F64,
            ArrayData::String(_) => DType::String,
        }
    }

    /// The shape of the array.
    pub fn shape(&self) -> &[usize] {
        dispatch_array!(self, a => a.shape())
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// Total number of elements.
    pub fn len(&self) -> usize {
        dispatch_array!(self, a => a.len())
    }

    /// Whether the array holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the values (numbers or bools, in standard layout order) into `out` as native
    /// bytes (bools as 0 or 1); `out` must hold exactly as many bytes as they take.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// let mut out = [0u8; 4];
    /// ArrayData::from(vec![1u16, 2]).copy_bytes_into(&mut out).unwrap();
    /// assert_eq!(out, [1, 0, 2, 0]);
    /// assert!(ArrayData::from(vec![1u16]).copy_bytes_into(&mut out).is_err());
    /// ```
    pub fn copy_bytes_into(&self, out: &mut [u8]) -> Result<()> {
        if self.dtype() == DType::String || self.len() * self.dtype().size() != out.len() {
            return Err(Error::shape(format!(
                "{} {} values do not fill {} bytes",
                self.len(),
                self.dtype(),
                out.len()
            )));
        }
        match self {
            ArrayData::Bool(a) => {
                for (o, &b) in out.iter_mut().zip(a.iter()) {
                    *o = u8::from(b);
                }
            }
            ArrayData::I8(a) => copy_pod(a, out),
            ArrayData::I16(a) => copy_pod(a, out),
            ArrayData::I32(a) => copy_pod(a, out),
            ArrayData::I64(a) => copy_pod(a, out),
            ArrayData::U8(a) => copy_pod(a, out),
            ArrayData::U16(a) => copy_pod(a, out),
            ArrayData::U32(a) => copy_pod(a, out),
            ArrayData::U64(a) => copy_pod(a, out),
            ArrayData::F16(a) => copy_pod(a, out),
            ArrayData::F32(a) => copy_pod(a, out),
            ArrayData::F64(a) => copy_pod(a, out),
            ArrayData::String(_) => unreachable!("refused above"),
        }
        Ok(())
    }

    /// Size of the first axis (0 for a 0-d array).
    pub fn nrows(&self) -> usize {
        self.shape().first().copied().unwrap_or(0)
    }

    /// An empty array of the given dtype and shape, filled with zeros (or empty strings).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Self {
        let s = IxDyn(shape);
        match dtype {
            DType::Bool => ArrayData::Bool(ArrayD::from_elem(s, false)),
            DType::I8 => ArrayData::I8(ArrayD::zeros(s)),
            DType::I16 => ArrayData::I16(ArrayD::zeros(s)),
            DType::I32 => ArrayData::I32(ArrayD::zeros(s)),
            DType::I64 => ArrayData::I64(ArrayD::zeros(s)),
            DType::U8 => ArrayData::U8(ArrayD::zeros(s)),
            DType::U16 => ArrayData::U16(ArrayD::zeros(s)),
            DType::U32 => ArrayData::U32(ArrayD::zeros(s)),
            DType::U64 => ArrayData::U64(ArrayD::zeros(s)),
            DType::F16 => ArrayData::F16(ArrayD::from_elem(s, half::f16::ZERO)),
            DType::F32 => ArrayData::F32(ArrayD::zeros(s)),
            DType::F64 => ArrayData::F64(ArrayD::zeros(s)),
            DType::String => ArrayData::String(ArrayD::from_elem(s, CompactString::default())),
        }
    }

    /// Selects positions along one axis (any order, repeats allowed). Indices must be in bounds.
    ///
    /// # Panics
    ///
    /// On an index out of bounds (or, for an array, an axis it does not have). `subset` is
    /// the checked form, for indices that come from outside.
    pub fn select(&self, axis: usize, indices: &[usize]) -> Self {
        map_array!(self, a => a.select(ndarray::Axis(axis), indices))
    }

    /// The rows of `parts` (arrays of one dtype and the same trailing axes, owned or borrowed)
    /// one after the other. Fails for no parts, two dtypes or other trailing axes.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// let a = ArrayData::from(ndarray::arr2(&[[1i32, 2]]));
    /// let b = ArrayData::from(ndarray::arr2(&[[3i32, 4], [5, 6]]));
    /// let ab = ArrayData::concat_rows(&[a, b])?;
    /// assert_eq!(ab, ArrayData::from(ndarray::arr2(&[[1i32, 2], [3, 4], [5, 6]])));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn concat_rows<P: std::borrow::Borrow<ArrayData>>(parts: &[P]) -> Result<ArrayData> {
        macro_rules! go {
            ($($v:ident),*) => {
                match parts.first().map(P::borrow) {
                    $(Some(ArrayData::$v(_)) => {
                        let views = parts
                            .iter()
                            .map(|p| match p.borrow() {
                                ArrayData::$v(a) => Ok(a.view()),
                                other => Err(Error::invalid(format!(
                                    "rows of {} and of {} cannot be joined",
                                    parts[0].borrow().dtype(),
                                    other.dtype()
                                ))),
                            })
                            .collect::<Result<Vec<_>>>()?;
                        ndarray::concatenate(ndarray::Axis(0), &views)
                            .map(ArrayData::$v)
                            .map_err(|e| Error::shape(format!("joining rows: {e}")))
                    })*
                    None => Err(Error::invalid("no rows to join")),
                }
            };
        }
        go!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, F32, F64, String)
    }

    /// Selects the positions of `index` along `axis`: ranges are sliced, explicit positions
    /// gathered (any order, repeats allowed). The result is in standard (row-major) layout.
    ///
    /// Fails if the array has no such axis or `index` was resolved for another length.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// use annpage_engine::select::Selection;
    /// let a = ArrayData::from(ndarray::arr2(&[[1i32, 2, 3], [4, 5, 6]]));
    /// let cols = Selection::slice(None, None, -2).resolve(3, None).unwrap();
    /// assert_eq!(a.subset(1, &cols).unwrap(), ArrayData::from(ndarray::arr2(&[[3i32, 1], [6, 4]])));
    /// ```
    pub fn subset(&self, axis: usize, index: &AxisIndex) -> Result<Self> {
        let shape = self.shape();
        let Some(&n) = shape.get(axis) else {
            return Err(Error::invalid(format!(
                "cannot select along axis {axis} of a {}-d array",
                shape.len()
            )));
        };
        if n != index.axis_len() {
            return Err(Error::shape(format!(
                "the selection is for an axis of length {}, the array has {n} along axis {axis}",
                index.axis_len()
            )));
        }
        Ok(map_array!(self, a => subset_axis(a, Axis(axis), index)))
    }

    /// Each element as Python's `str()` writes it: `True`/`False`, integers in decimal,
    /// floats in their shortest round-trip form (`1.0`, `0.1`, `1e+16`, `nan`, `inf`).
    ///
    /// This is how anndata turns a non-string `obs`/`var` index into names.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// let a = ArrayData::from(vec![1.0f64, 0.25, 1e16, -1.5e-5]);
    /// assert_eq!(a.to_python_strings(), ["1.0", "0.25", "1e+16", "-1.5e-05"]);
    /// assert_eq!(ArrayData::from(vec![true]).to_python_strings(), ["True"]);
    /// let halves = vec![half::f16::from_f32(0.1), half::f16::from_f32(2048.0)];
    /// assert_eq!(ArrayData::from(halves).to_python_strings(), ["0.1", "2.048e+03"]);
    /// ```
    pub fn to_python_strings(&self) -> Vec<String> {
        fn each<T>(a: &ArrayD<T>, f: impl Fn(&T) -> String) -> Vec<String> {
            a.iter().map(f).collect()
        }
        match self {
            ArrayData::Bool(a) => each(a, |&b| if b { "True" } else { "False" }.to_owned()),
            ArrayData::I8(a) => each(a, ToString::to_string),
            ArrayData::I16(a) => each(a, ToString::to_string),
            ArrayData::I32(a) => each(a, ToString::to_string),
            ArrayData::I64(a) => each(a, ToString::to_string),
            ArrayData::U8(a) => each(a, ToString::to_string),
            ArrayData::U16(a) => each(a, ToString::to_string),
            ArrayData::U32(a) => each(a, ToString::to_string),
            ArrayData::U64(a) => each(a, ToString::to_string),
            ArrayData::F16(a) => each(a, |&v| numpy_half(v)),
            ArrayData::F32(a) => each(a, |v| python_float(&format!("{v:e}"), None)),
            ArrayData::F64(a) => each(a, |&v| python_float(&format!("{v:e}"), Some(v))),
            ArrayData::String(a) => a.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The strings of a 1-d string array, if it is one.
    pub fn as_strings(&self) -> Option<&[CompactString]> {
        match self {
            ArrayData::String(a) => a.as_slice(),
            _ => None,
        }
    }

    /// Converts the elements to `f64` (bools become 0/1, strings fail with `None`).
    pub fn to_f64(&self) -> Option<ArrayD<f64>> {
        Some(match self {
            ArrayData::Bool(a) => a.mapv(|v| v as u8 as f64),
            ArrayData::I8(a) => a.mapv(|v| v as f64),
            ArrayData::I16(a) => a.mapv(|v| v as f64),
            ArrayData::I32(a) => a.mapv(|v| v as f64),
            ArrayData::I64(a) => a.mapv(|v| v as f64),
            ArrayData::U8(a) => a.mapv(|v| v as f64),
            ArrayData::U16(a) => a.mapv(|v| v as f64),
            ArrayData::U32(a) => a.mapv(|v| v as f64),
            ArrayData::U64(a) => a.mapv(|v| v as f64),
            ArrayData::F16(a) => a.mapv(f64::from),
            ArrayData::F32(a) => a.mapv(|v| v as f64),
            ArrayData::F64(a) => a.clone(),
            ArrayData::String(_) => return None,
        })
    }
}

/// `a` with the positions of `index` along `axis` (already checked to fit).
fn subset_axis<T: Clone>(a: &ArrayD<T>, axis: Axis, index: &AxisIndex) -> ArrayD<T> {
    let picked = match index.kind() {
        IndexKind::Range(r) if r.start == 0 && r.end == a.len_of(axis) => a.clone(),
        IndexKind::Range(r) => a.slice_axis(axis, Slice::from(r)).to_owned(),
        IndexKind::Strided { start, step, len } => {
            // Positions fit in isize; ndarray steps through [lo, hi) from the end for step < 0.
            let last = start as isize + step * (len as isize - 1);
            let (lo, hi) = if step > 0 {
                (start as isize, last + 1)
            } else {
                (last, start as isize + 1)
            };
            a.slice_axis(axis, Slice::new(lo, Some(hi), step))
                .to_owned()
        }
        IndexKind::Positions(ps) => a.select(axis, ps),
    };
    if picked.is_standard_layout() {
        picked
    } else {
        picked.as_standard_layout().into_owned()
    }
}

/// Copies `a`'s values, in standard layout order, into `out` (of the same byte length).
fn copy_pod<T: bytemuck::Pod>(a: &ArrayD<T>, out: &mut [u8]) {
    let a = a.as_standard_layout();
    let values = a
        .as_slice()
        .expect("an array in standard layout is contiguous");
    out.copy_from_slice(bytemuck::cast_slice(values));
}

macro_rules! impl_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<ArrayD<$t>> for ArrayData {
            fn from(a: ArrayD<$t>) -> Self { ArrayData::$v(a) }
        }
        impl From<Vec<$t>> for ArrayData {
            fn from(v: Vec<$t>) -> Self { ArrayData::$v(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-d shape matches length")) }
        }
        impl From<ndarray::Array2<$t>> for ArrayData {
            fn from(a: ndarray::Array2<$t>) -> Self { ArrayData::$v(a.into_dyn()) }
        }
    )*};
}
impl_from!(bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16,
    u32 => U32, u64 => U64, half::f16 => F16, f32 => F32, f64 => F64, CompactString => String);

impl From<ArrayD<String>> for ArrayData {
    fn from(a: ArrayD<String>) -> Self {
        ArrayData::String(a.mapv(CompactString::from))
    }
}

impl From<Vec<String>> for ArrayData {
    fn from(v: Vec<String>) -> Self {
        v.into_iter()
            .map(CompactString::from)
            .collect::<Vec<_>>()
            .into()
    }
}

impl From<Vec<&str>> for ArrayData {
    fn from(v: Vec<&str>) -> Self {
        v.into_iter()
            .map(CompactString::from)
            .collect::<Vec<_>>()
            .into()
    }
}

/// A single value: `numeric-scalar` or `string` on disk.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Scalar {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F16(half::f16),
    F32(f32),
    F64(f64),
    String(String),
}

impl Scalar {
    /// The dtype of the value.
    pub fn dtype(&self) -> DType {
        self.to_array().dtype()
    }

    /// The value as a 0-d array.
    pub fn to_array(&self) -> ArrayData {
        let s = IxDyn(&[]);
        match self.clone() {
            Scalar::Bool(v) => ArrayData::Bool(ArrayD::from_elem(s, v)),
            Scalar::I8(v) => ArrayData::I8(ArrayD::from_elem(s, v)),
            Scalar::I16(v) => ArrayData::I16(ArrayD::from_elem(s, v)),
            Scalar::I32(v) => ArrayData::I32(ArrayD::from_elem(s, v)),
            Scalar::I64(v) => ArrayData::I64(ArrayD::from_elem(s, v)),
            Scalar::U8(v) => ArrayData::U8(ArrayD::from_elem(s, v)),
            Scalar::U16(v) => ArrayData::U16(ArrayD::from_elem(s, v)),
            Scalar::U32(v) => ArrayData::U32(ArrayD::from_elem(s, v)),
            Scalar::U64(v) => ArrayData::U64(ArrayD::from_elem(s, v)),
            Scalar::F16(v) => ArrayData::F16(ArrayD::from_elem(s, v)),
            Scalar::F32(v) => ArrayData::F32(ArrayD::from_elem(s, v)),
            Scalar::F64(v) => ArrayData::F64(ArrayD::from_elem(s, v)),
            Scalar::String(v) => ArrayData::String(ArrayD::from_elem(s, v.into())),
        }
    }

    /// The first element of an array as a scalar (`None` for an empty array).
    pub fn from_array(a: &ArrayData) -> Option<Scalar> {
        Some(match a {
            ArrayData::Bool(a) => Scalar::Bool(*a.iter().next()?),
            ArrayData::I8(a) => Scalar::I8(*a.iter().next()?),
            ArrayData::I16(a) => Scalar::I16(*a.iter().next()?),
            ArrayData::I32(a) => Scalar::I32(*a.iter().next()?),
            ArrayData::I64(a) => Scalar::I64(*a.iter().next()?),
            ArrayData::U8(a) => Scalar::U8(*a.iter().next()?),
            ArrayData::U16(a) => Scalar::U16(*a.iter().next()?),
            ArrayData::U32(a) => Scalar::U32(*a.iter().next()?),
            ArrayData::U64(a) => Scalar::U64(*a.iter().next()?),
            ArrayData::F16(a) => Scalar::F16(*a.iter().next()?),
            ArrayData::F32(a) => Scalar::F32(*a.iter().next()?),
            ArrayData::F64(a) => Scalar::F64(*a.iter().next()?),
            ArrayData::String(a) => Scalar::String(a.iter().next()?.to_string()),
        })
    }
}

/// Converts an array of integers of any dtype to `u64`, refusing negative values and non-integers.
pub(crate) fn integers_as_u64(a: &ArrayData) -> Result<Vec<u64>> {
    fn signed<T: Copy + Into<i64>>(a: &ArrayD<T>) -> Result<Vec<u64>> {
        a.iter()
            .map(|&v| {
                let v: i64 = v.into();
                u64::try_from(v).map_err(|_| Error::malformed(format!("negative value {v}")))
            })
            .collect()
    }
    fn unsigned<T: Copy + Into<u64>>(a: &ArrayD<T>) -> Vec<u64> {
        a.iter().map(|&v| v.into()).collect()
    }
    Ok(match a {
        ArrayData::I8(a) => signed(a)?,
        ArrayData::I16(a) => signed(a)?,
        ArrayData::I32(a) => signed(a)?,
        ArrayData::I64(a) => signed(a)?,
        ArrayData::U8(a) => unsigned(a),
        ArrayData::U16(a) => unsigned(a),
        ArrayData::U32(a) => unsigned(a),
        ArrayData::U64(a) => unsigned(a),
        other => {
            return Err(Error::malformed(format!(
                "expected integers, found {}",
                other.dtype()
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_convert_to_u64_and_refuse_negatives() {
        assert_eq!(
            integers_as_u64(&ArrayData::from(vec![0i32, 7])).unwrap(),
            [0, 7]
        );
        assert_eq!(integers_as_u64(&ArrayData::from(vec![9u16])).unwrap(), [9]);
        let err = integers_as_u64(&ArrayData::from(vec![1i64, -3])).unwrap_err();
        assert!(err.to_string().contains("negative value -3"), "{err}");
        assert!(integers_as_u64(&ArrayData::from(vec![1.0f32])).is_err());
    }

    #[test]
    fn select_keeps_dtype_and_order() {
        let a = ArrayData::from(vec![10i16, 11, 12, 13]);
        let s = a.select(0, &[3, 0, 0]);
        assert_eq!(s, ArrayData::from(vec![13i16, 10, 10]));
    }

    #[test]
    fn subset_slices_and_gathers_along_either_axis() {
        // numpy: a = np.arange(12).reshape(3, 4)
        let a = ArrayData::from(ndarray::Array2::from_shape_fn((3, 4), |(i, j)| {
            (i * 4 + j) as i64
        }));
        let idx = |s: crate::select::Selection, n| s.resolve(n, None).unwrap();
        use crate::select::Selection;
        // a[::-2] == [[8, 9, 10, 11], [0, 1, 2, 3]]
        assert_eq!(
            a.subset(0, &idx(Selection::slice(None, None, -2), 3))
                .unwrap(),
            ArrayData::from(ndarray::arr2(&[[8i64, 9, 10, 11], [0, 1, 2, 3]]))
        );
        // a[:, [3, 0, 0]] == [[3, 0, 0], [7, 4, 4], [11, 8, 8]]
        assert_eq!(
            a.subset(1, &idx(Selection::positions([3, 0, 0]), 4))
                .unwrap(),
            ArrayData::from(ndarray::arr2(&[[3i64, 0, 0], [7, 4, 4], [11, 8, 8]]))
        );
        // a[:, 1:3] == [[1, 2], [5, 6], [9, 10]]
        let sub = a.subset(1, &idx(Selection::from(1..3), 4)).unwrap();
        assert_eq!(
            sub,
            ArrayData::from(ndarray::arr2(&[[1i64, 2], [5, 6], [9, 10]]))
        );
        assert!(dispatch_array!(&sub, x => x.is_standard_layout()));
        // A reversed 1-d string array comes back contiguous.
        let s = ArrayData::from(vec!["a", "b", "c"]);
        let r = s
            .subset(0, &idx(Selection::slice(None, None, -1), 3))
            .unwrap();
        assert_eq!(r.as_strings().unwrap(), ["c", "b", "a"]);
        // Empty selections keep the other axes.
        let e = a.subset(0, &idx(Selection::positions([]), 3)).unwrap();
        assert_eq!(e.shape(), &[0, 4]);
    }

    #[test]
    fn subset_checks_the_axis() {
        let a = ArrayData::from(vec![1u8, 2, 3]);
        let e = a.subset(1, &AxisIndex::full(3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: cannot select along axis 1 of a 1-d array"
        );
        let e = a.subset(0, &AxisIndex::full(4)).unwrap_err();
        assert!(matches!(e, Error::Shape(_)), "{e}");
    }

    /// Expected strings from `pd.Index([...]).astype(str)` in the venv.
    #[test]
    fn python_strings_match_pandas() {
        let f = ArrayData::from(vec![
            1.0f64,
            0.1,
            100.0,
            1e15,
            1e16,
            1.5e-5,
            0.0001,
            123456789.125,
            -0.0,
            f64::NAN,
            f64::NEG_INFINITY,
            2.5e300,
        ]);
        assert_eq!(
            f.to_python_strings(),
            [
                "1.0",
                "0.1",
                "100.0",
                "1000000000000000.0",
                "1e+16",
                "1.5e-05",
                "0.0001",
                "123456789.125",
                "-0.0",
                "nan",
                "-inf",
                "2.5e+300"
            ]
        );
        assert_eq!(
            ArrayData::from(vec![0.1f32, 3.0]).to_python_strings(),
            ["0.1", "3.0"]
        );
        assert_eq!(
            ArrayData::from(vec![-3i64, 7]).to_python_strings(),
            ["-3", "7"]
        );
        assert_eq!(
            ArrayData::from(vec![true, false]).to_python_strings(),
            ["True", "False"]
        );
    }

    #[test]
    fn scalar_round_trips_through_array() {
        let s = Scalar::F32(1.5);
        assert_eq!(Scalar::from_array(&s.to_array()), Some(s));
    }
}
