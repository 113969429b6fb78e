//! What a stored array's element type is, in the terms annpage reads it in, whatever the
//! backend: each backend classifies its own datatypes into a [`StoredType`].

use crate::data::DType;

/// A member of a compound datatype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompoundField {
    /// The member's name.
    pub name: String,
    /// Byte offset of the member inside one element.
    pub offset: usize,
    /// The member's type.
    pub ty: StoredType,
}

/// The kind of a stored datatype, with the sizes and offsets needed to decode it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredType {
    /// A boolean: a one-byte enum with members FALSE = 0 and TRUE = 1 (h5py's numpy bool;
    /// member names are matched case-insensitively).
    Bool,
    /// An integer of 1, 2, 4 or 8 bytes.
    Int {
        /// Whether it is signed.
        signed: bool,
        /// Size in bytes.
        size: usize,
    },
    /// An enum other than a bool, read as its integer values (as h5py does).
    Enum {
        /// Whether the base integer is signed.
        signed: bool,
        /// Size in bytes.
        size: usize,
    },
    /// A bitfield, read as an unsigned integer of the same size (as h5py does).
    Bitfield {
        /// Size in bytes.
        size: usize,
    },
    /// An IEEE float of 2 (half precision), 4 or 8 bytes.
    Float {
        /// Size in bytes.
        size: usize,
    },
    /// A variable-length string.
    VarString {
        /// UTF-8 (else ASCII) character set.
        utf8: bool,
    },
    /// A fixed-length string of `size` bytes, NUL-padded (numpy's `|S<size>`).
    FixedString {
        /// Size in bytes.
        size: usize,
    },
    /// A compound (structured) type.
    Compound {
        /// Size of one element in bytes.
        size: usize,
        /// The members, in declaration order.
        fields: Vec<CompoundField>,
    },
    /// A fixed-size sub-array of another type (`(50,) f4` in a compound).
    Array {
        /// The element type.
        base: Box<StoredType>,
        /// The sub-array's dimensions.
        dims: Vec<usize>,
    },
    /// An HDF5 object reference.
    ObjectReference,
    /// A datatype annpage cannot read, described (e.g. `opaque`, `long double`).
    Unsupported(String),
}

impl StoredType {
    /// The element dtype of an array of this type, for the types that map onto one
    /// (compounds, sub-arrays and references to `None`).
    pub fn dtype(&self) -> Option<DType> {
        Some(match *self {
            StoredType::Enum { signed, size } => {
                return StoredType::Int { signed, size }.dtype();
            }
            StoredType::Bitfield { size } => {
                return StoredType::Int {
                    signed: false,
                    size,
                }
                .dtype();
            }
            StoredType::Bool => DType::Bool,
            StoredType::Int {
                signed: true,
                size: 1,
            } => DType::I8,
            StoredType::Int {
                signed: true,
                size: 2,
            } => DType::I16,
            StoredType::Int {
                signed: true,
                size: 4,
            } => DType::I32,
            StoredType::Int {
                signed: true,
                size: 8,
            } => DType::I64,
            StoredType::Int {
                signed: false,
                size: 1,
            } => DType::U8,
            StoredType::Int {
                signed: false,
                size: 2,
            } => DType::U16,
            StoredType::Int {
                signed: false,
                size: 4,
            } => DType::U32,
            StoredType::Int {
                signed: false,
                size: 8,
            } => DType::U64,
            StoredType::Float { size: 2 } => DType::F16,
            StoredType::Float { size: 4 } => DType::F32,
            StoredType::Float { size: 8 } => DType::F64,
            StoredType::VarString { .. } | StoredType::FixedString { .. } => DType::String,
            _ => return None,
        })
    }

    /// Whether values of this type hold pointers to variable-length data that HDF5 allocates
    /// on read (and that must be reclaimed).
    pub fn has_vlen(&self) -> bool {
        match self {
            StoredType::VarString { .. } => true,
            StoredType::Compound { fields, .. } => fields.iter().any(|f| f.ty.has_vlen()),
            StoredType::Array { base, .. } => base.has_vlen(),
            _ => false,
        }
    }

    /// Size of one value in memory, in bytes (`None` for unsupported types).
    pub fn size(&self) -> Option<usize> {
        Some(match self {
            StoredType::Bool => 1,
            StoredType::Int { size, .. }
            | StoredType::Enum { size, .. }
            | StoredType::Bitfield { size }
            | StoredType::Float { size }
            | StoredType::FixedString { size }
            | StoredType::Compound { size, .. } => *size,
            StoredType::VarString { .. } => std::mem::size_of::<*const std::ffi::c_char>(),
            StoredType::Array { base, dims } => dims
                .iter()
                .try_fold(base.size()?, |acc, &d| acc.checked_mul(d))?,
            // hobj_ref_t is a 64-bit address.
            StoredType::ObjectReference => 8,
            StoredType::Unsupported(_) => return None,
        })
    }

    /// A short description for messages, e.g. `int32`, `compound{a: int32, b: str}`.
    pub fn describe(&self) -> String {
        match self {
            StoredType::Float { size: 2 } => "float16".into(),
            StoredType::VarString { utf8: true } => "variable-length UTF-8 string".into(),
            StoredType::VarString { utf8: false } => "variable-length ASCII string".into(),
            StoredType::FixedString { size } => format!("bytes{size}"),
            StoredType::Compound { fields, .. } => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.name, f.ty.describe()))
                    .collect();
                format!("compound{{{}}}", inner.join(", "))
            }
            StoredType::Array { base, dims } => format!("{dims:?} {}", base.describe()),
            StoredType::ObjectReference => "object reference".into(),
            StoredType::Unsupported(what) => what.clone(),
            other => other
                .dtype()
                .map_or_else(|| format!("{other:?}"), |d| d.name().to_owned()),
        }
    }
}
