//! In-memory values of AnnData elements.
//!
//! These are plain data: no file handles, no I/O. The [`crate::format`] module turns them
//! into on-disk elements and back.

mod array;
mod axis;
mod dataframe;
mod element;
mod floats;
mod size;
mod sparse;
mod typed;
mod value;

pub(crate) use array::integers_as_u64;
pub use array::{ArrayData, DType, Scalar};
pub use axis::Axis;
/// The element of string arrays: strings up to 24 bytes are held inline, without an
/// allocation each (re-exported from `compact_str`).
pub use compact_str::CompactString;
pub use dataframe::{Categorical, Column, DataFrame, Nullable, NullableKind, StringNa};
pub use element::{AttrValue, Attrs, Element, Mapping, Matrix, RawData, RawNode};
pub(crate) use floats::{numpy_f32, numpy_half};
pub(crate) use sparse::{check_indices_below, check_minor, minor_indices};
pub use sparse::{SparseFormat, SparseMatrix, MAX_MINOR};
pub use typed::Primitive;
pub(crate) use value::{with_value, Value};
