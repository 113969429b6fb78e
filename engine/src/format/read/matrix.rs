//! A matrix element described from metadata only: which arrays hold it, its kind, shape and
//! dtype, before any value is read. The probe, the chunk manager and whole reads start here.

use super::{legacy_format, sparse_shape};
use crate::data::{DType, SparseFormat};
use crate::error::ResultExt;
use crate::format::{read_encoding, Encoding};
use crate::storage::{Array, Group, MemberKind};
use crate::{Error, Result};

/// How a matrix element is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixKind {
    /// One 2-d array, read in blocks of rows.
    Dense,
    /// A CSR matrix (read in blocks of rows) or CSC matrix (in blocks of columns).
    Sparse(SparseFormat),
}

/// The arrays of a matrix element.
pub(crate) enum MatrixArrays {
    /// One 2-d array.
    Dense(Box<dyn Array>),
    /// The three 1-d arrays of a CSR or CSC matrix.
    Sparse {
        indptr: Box<dyn Array>,
        indices: Box<dyn Array>,
        data: Box<dyn Array>,
    },
}

/// A matrix element as its metadata describes it.
pub(crate) struct MatrixLayout {
    pub kind: MatrixKind,
    pub shape: (usize, usize),
    pub dtype: DType,
    pub arrays: MatrixArrays,
}

/// Describes the matrix element `name` of `parent` from metadata only (attributes and array
/// headers): a dense 2-d array (`array` encoding or none), a `csr_matrix`/`csc_matrix` group,
/// or a legacy sparse group. The claims of its arrays are checked, and that `indptr` fits the
/// shape and `indices` and `data` have one length; their values are read when the matrix is.
/// Errors name the element.
pub(crate) fn describe_matrix(parent: &dyn Group, name: &str) -> Result<MatrixLayout> {
    let path = crate::storage::join_path(&parent.path(), name);
    describe(parent, name).in_element(path)
}

fn describe(parent: &dyn Group, name: &str) -> Result<MatrixLayout> {
    let (kind, shape, arrays) = match parent.member_kind(name)? {
        None => return Err(Error::malformed(format!("missing member '{name}'"))),
        Some(MemberKind::Array) => {
            let values = parent.array(name)?;
            let encoding = read_encoding(values.as_ref())?;
            if !matches!(
                encoding.as_ref().map(|(t, _)| Encoding::parse(t)),
                None | Some(Some(Encoding::Array))
            ) {
                return Err(not_a_matrix(encoding));
            }
            values.check_claim()?;
            matrix_dtype(values.as_ref())?;
            let [rows, cols] = values.shape()?[..] else {
                return Err(Error::shape(format!(
                    "a matrix must be 2-d, this array has shape {:?}",
                    values.shape()?
                )));
            };
            (MatrixKind::Dense, (rows, cols), MatrixArrays::Dense(values))
        }
        Some(MemberKind::Group) => {
            let g = parent.group(name)?;
            let encoding = read_encoding(g.as_ref())?;
            let format = match encoding.as_ref().map(|(t, _)| Encoding::parse(t)) {
                Some(Some(Encoding::CsrMatrix)) => SparseFormat::Csr,
                Some(Some(Encoding::CscMatrix)) => SparseFormat::Csc,
                None => legacy_format(g.as_ref())?,
                Some(_) => return Err(not_a_matrix(encoding)),
            };
            let member = |m: &str| match g.member_kind(m)? {
                Some(MemberKind::Array) => {
                    let a = g.array(m)?;
                    a.check_claim()?;
                    Ok(a)
                }
                Some(MemberKind::Group) => Err(Error::malformed(format!(
                    "member '{m}' is a group, expected a dataset"
                ))),
                None => Err(Error::malformed(format!("missing member '{m}'"))),
            };
            let indptr = member("indptr")?;
            let (indices, data) = (member("indices")?, member("data")?);
            let shape = sparse_shape(g.as_ref())?;
            let major = match format {
                SparseFormat::Csr => shape.0,
                SparseFormat::Csc => shape.1,
            };
            let expected = major.saturating_add(1);
            let indptr_shape = indptr.shape()?;
            if indptr_shape != [expected] {
                return Err(Error::malformed(match indptr_shape.len() {
                    1 => format!(
                        "indptr has {} entries, expected {expected}",
                        indptr_shape[0]
                    ),
                    _ => format!("indptr has shape {indptr_shape:?}, expected [{expected}] (1-d)"),
                }));
            }
            if indices.shape()?.len() != 1 || indices.shape()? != data.shape()? {
                return Err(Error::malformed(format!(
                    "'indices' has shape {:?} and 'data' {:?}: both must be 1-d of one length",
                    indices.shape()?,
                    data.shape()?
                )));
            }
            let arrays = MatrixArrays::Sparse {
                indptr,
                indices,
                data,
            };
            (MatrixKind::Sparse(format), shape, arrays)
        }
    };
    let dtype = match &arrays {
        MatrixArrays::Dense(v) | MatrixArrays::Sparse { data: v, .. } => matrix_dtype(v.as_ref())?,
    };
    Ok(MatrixLayout {
        kind,
        shape,
        dtype,
        arrays,
    })
}

/// The dtype of a matrix's values: numbers or bools.
fn matrix_dtype(values: &dyn Array) -> Result<DType> {
    let stored = values.stored_type()?;
    stored
        .dtype()
        .filter(|d| *d != DType::String)
        .ok_or_else(|| Error::unsupported(format!("a matrix of {} values", stored.describe())))
}

fn not_a_matrix(encoding: Option<(String, String)>) -> Error {
    let (encoding_type, version) = encoding.unwrap_or_default();
    Error::UnexpectedEncoding {
        encoding_type,
        version,
        expected: "a dense or sparse matrix",
    }
}
