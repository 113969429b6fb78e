//! [`Value`]: the numeric and bool element types of matrix values, and [`with_value`], which
//! runs generic code at the element type of a [`DType`](super::DType).

use ndarray::{ArrayD, IxDyn};

use super::ArrayData;
use crate::{Error, Result};

/// A numeric or bool element type of matrix values.
pub(crate) trait Value: Copy + Default + Send + Sync + 'static {
    /// The values of an array of this type in standard layout, if it is one.
    fn slice(a: &ArrayData) -> Option<&[Self]>;
    /// The same, mutable.
    fn slice_mut(a: &mut ArrayData) -> Option<&mut [Self]>;
    /// Wraps values into an array of `shape` (whose size must be `values.len()`).
    fn wrap(values: Vec<Self>, shape: &[usize]) -> Result<ArrayData>;
}

macro_rules! impl_value {
    ($($t:ty => $v:ident),*) => {$(
        impl Value for $t {
            fn slice(a: &ArrayData) -> Option<&[Self]> {
                match a {
                    ArrayData::$v(a) => a.as_slice(),
                    _ => None,
                }
            }
            fn slice_mut(a: &mut ArrayData) -> Option<&mut [Self]> {
                match a {
                    ArrayData::$v(a) => a.as_slice_mut(),
                    _ => None,
                }
            }
            fn wrap(values: Vec<Self>, shape: &[usize]) -> Result<ArrayData> {
                ArrayD::from_shape_vec(IxDyn(shape), values)
                    .map(ArrayData::$v)
                    .map_err(|e| Error::shape(e.to_string()))
            }
        }
    )*};
}
impl_value!(bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16,
    u32 => U32, u64 => U64, half::f16 => F16, f32 => F32, f64 => F64);

/// Evaluates `$body` with `$t` the [`Value`] type of `$dtype`; strings give an error.
macro_rules! with_value {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::data::DType::Bool => {
                type $t = bool;
                $body
            }
            $crate::data::DType::I8 => {
                type $t = i8;
                $body
            }
            $crate::data::DType::I16 => {
                type $t = i16;
                $body
            }
            $crate::data::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::data::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::data::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::data::DType::U16 => {
                type $t = u16;
                $body
            }
            $crate::data::DType::U32 => {
                type $t = u32;
                $body
            }
            $crate::data::DType::U64 => {
                type $t = u64;
                $body
            }
            $crate::data::DType::F16 => {
                type $t = half::f16;
                $body
            }
            $crate::data::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::data::DType::F64 => {
                type $t = f64;
                $body
            }
            $crate::data::DType::String => Err($crate::Error::unsupported(
                "matrices of strings cannot be read in backed mode",
            )),
        }
    };
}
pub(crate) use with_value;
