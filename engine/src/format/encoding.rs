//! The `encoding-type` / `encoding-version` pairs of the format.

use crate::storage::Node;
use crate::{Error, Result};

/// An element encoding, as named by the `encoding-type` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The root (`anndata`).
    AnnData,
    /// The `raw` group.
    Raw,
    /// A dense numeric or bool array.
    Array,
    /// An array of strings.
    StringArray,
    /// A CSR sparse matrix.
    CsrMatrix,
    /// A CSC sparse matrix.
    CscMatrix,
    /// A data frame.
    DataFrame,
    /// A categorical array.
    Categorical,
    /// A nullable integer array.
    NullableInteger,
    /// A nullable boolean array.
    NullableBoolean,
    /// A nullable string array.
    NullableStringArray,
    /// A scalar string.
    String,
    /// A numeric scalar.
    NumericScalar,
    /// A mapping of elements.
    Dict,
    /// A compound (structured) array.
    RecArray,
    /// An awkward array.
    AwkwardArray,
}

impl Encoding {
    /// All encodings.
    pub const ALL: [Encoding; 16] = [
        Encoding::AnnData,
        Encoding::Raw,
        Encoding::Array,
        Encoding::StringArray,
        Encoding::CsrMatrix,
        Encoding::CscMatrix,
        Encoding::DataFrame,
        Encoding::Categorical,
        Encoding::NullableInteger,
        Encoding::NullableBoolean,
        Encoding::NullableStringArray,
        Encoding::String,
        Encoding::NumericScalar,
        Encoding::Dict,
        Encoding::RecArray,
        Encoding::AwkwardArray,
    ];

    /// The `encoding-type` attribute value.
    pub fn type_name(self) -> &'static str {
        match self {
            Encoding::AnnData => "anndata",
            Encoding::Raw => "raw",
            Encoding::Array => "array",
            Encoding::StringArray => "string-array",
            Encoding::CsrMatrix => "csr_matrix",
            Encoding::CscMatrix => "csc_matrix",
            Encoding::DataFrame => "dataframe",
            Encoding::Categorical => "categorical",
            Encoding::NullableInteger => "nullable-integer",
            Encoding::NullableBoolean => "nullable-boolean",
            Encoding::NullableStringArray => "nullable-string-array",
            Encoding::String => "string",
            Encoding::NumericScalar => "numeric-scalar",
            Encoding::Dict => "dict",
            Encoding::RecArray => "rec-array",
            Encoding::AwkwardArray => "awkward-array",
        }
    }

    /// The `encoding-version` anndata 0.12 writes.
    pub fn version(self) -> &'static str {
        match self {
            Encoding::AnnData
            | Encoding::Raw
            | Encoding::CsrMatrix
            | Encoding::CscMatrix
            | Encoding::Dict
            | Encoding::NullableInteger
            | Encoding::NullableBoolean
            | Encoding::NullableStringArray
            | Encoding::AwkwardArray => "0.1.0",
            Encoding::Array
            | Encoding::StringArray
            | Encoding::DataFrame
            | Encoding::Categorical
            | Encoding::String
            | Encoding::NumericScalar
            | Encoding::RecArray => "0.2.0",
        }
    }

    /// Looks up an `encoding-type` attribute value.
    ///
    /// ```
    /// use annpage_engine::format::Encoding;
    /// assert_eq!(Encoding::parse("csr_matrix"), Some(Encoding::CsrMatrix));
    /// assert_eq!(Encoding::parse("zarr-thing"), None);
    /// ```
    pub fn parse(type_name: &str) -> Option<Encoding> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.type_name() == type_name)
    }

    /// Whether anndata reads this encoding at `version`: the version it writes, and data
    /// frames of 0.1.0 too.
    pub fn reads_version(self, version: &str) -> bool {
        version == self.version() || (self == Encoding::DataFrame && version == "0.1.0")
    }
}

/// Checks an element's `encoding-type` and `encoding-version` attributes as anndata's reader
/// does, returning the pair, or `None` for an element without encoding (both absent or
/// empty: the legacy layouts). An empty type with a version, or a known type at a version
/// anndata cannot read, is an error; unknown types are left to the caller.
///
/// ```
/// use annpage_engine::format::check_encoding;
/// let s = |v: &str| Some(v.to_owned());
/// assert_eq!(check_encoding(None, None).unwrap(), None);
/// assert!(check_encoding(s("csr_matrix"), s("0.1.0")).unwrap().is_some());
/// assert!(check_encoding(s("csr_matrix"), s("9.9.9")).is_err());
/// assert!(check_encoding(s(""), s("0.1.0")).is_err());
/// ```
pub fn check_encoding(
    encoding_type: Option<String>,
    version: Option<String>,
) -> Result<Option<(String, String)>> {
    let (encoding_type, version) = (
        encoding_type.unwrap_or_default(),
        version.unwrap_or_default(),
    );
    if encoding_type.is_empty() {
        if version.is_empty() {
            return Ok(None);
        }
        return Err(Error::malformed(format!(
            "empty encoding-type with encoding-version '{version}'"
        )));
    }
    match Encoding::parse(&encoding_type) {
        Some(e) if !e.reads_version(&version) => Err(Error::unsupported(format!(
            "encoding-version '{version}' of encoding-type '{encoding_type}' (anndata reads {})",
            e.version()
        ))),
        _ => Ok(Some((encoding_type, version))),
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.type_name(), self.version())
    }
}

/// The `encoding-type` and `encoding-version` attributes of `loc` (`None` when both are absent
/// or empty), checked by [`check_encoding`]: the one reader of an element's encoding.
pub(crate) fn read_encoding(node: &(impl Node + ?Sized)) -> Result<Option<(String, String)>> {
    let mut both = node
        .string_attrs(&["encoding-type", "encoding-version"])?
        .into_iter();
    check_encoding(both.next().flatten(), both.next().flatten())
}
