//! The engine's error type: what went wrong, with the file and element it concerns.

use std::path::{Path, PathBuf};

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
///
/// Errors from deep inside a file are wrapped with context on their way out:
/// [`Error::InFile`] names the file and [`Error::InElement`] the element
/// (an HDF5 path such as `/obs/cell_type`), so the message reads
/// `data.h5ad: /X: missing member 'indptr'`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error that happened while working on a file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An error that happened while working on one element of a file.
    #[error("{element}: {source}")]
    InElement {
        /// Path of the element inside the file, e.g. `/obsm/X_pca`.
        element: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An error reported by the storage library (libhdf5), as its message: the library's own
    /// error type stays out of the public API, so that callers do not depend on it.
    #[error("HDF5 error: {0}")]
    Storage(String),
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An element has an `encoding-type` that cannot stand where it was found.
    #[error("unknown or unexpected encoding-type '{encoding_type}' (version '{version}'), expected {expected}")]
    UnexpectedEncoding {
        /// The `encoding-type` attribute found.
        encoding_type: String,
        /// The `encoding-version` attribute found.
        version: String,
        /// What kind of element was expected there.
        expected: &'static str,
    },
    /// The file does not follow the format: a missing member, a wrong dtype, inconsistent lengths.
    #[error("malformed element: {0}")]
    Malformed(String),
    /// Shapes that must agree do not, e.g. `obsm['X_pca'] has 99 rows, obs has 100`.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A valid construct that annpage does not handle (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A caller passed an argument that cannot be used (an out-of-range index, a zero step, a
    /// name found more than once).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A caller asked for names the axis does not have (the message lists them).
    #[error("{0}")]
    NotFound(String),
}

impl From<hdf5::Error> for Error {
    fn from(e: hdf5::Error) -> Self {
        Error::Storage(capped(e.to_string()))
    }
}

/// The longest message or element path an error keeps, in bytes: messages quote names, types
/// and values read from a file, which a crafted file can make megabytes long (a compound type
/// nested 500 deep, a 1 MB link name), and an error is one line.
pub const MAX_MESSAGE: usize = 1024;

/// `msg` cut to [`MAX_MESSAGE`] bytes (at a character boundary), saying how much was cut.
fn capped(msg: String) -> String {
    if msg.len() <= MAX_MESSAGE {
        return msg;
    }
    let mut end = MAX_MESSAGE;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &msg[..end], msg.len() - end)
}

impl Error {
    /// Builds a [`Error::Malformed`] from a message.
    pub fn malformed(msg: impl Into<String>) -> Self {
        Error::Malformed(capped(msg.into()))
    }

    /// Builds a [`Error::Shape`] from a message.
    pub fn shape(msg: impl Into<String>) -> Self {
        Error::Shape(capped(msg.into()))
    }

    /// Builds a [`Error::InvalidArgument`] from a message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(capped(msg.into()))
    }

    /// Builds a [`Error::NotFound`] from a message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(capped(msg.into()))
    }

    /// Builds a [`Error::Unsupported`] from a message.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Error::Unsupported(capped(msg.into()))
    }

    /// Wraps the error with the file it concerns (once: an error that names a file keeps it).
    pub fn in_file(self, path: impl AsRef<Path>) -> Self {
        match self {
            e @ Error::InFile { .. } => e,
            e => Error::InFile {
                path: path.as_ref().to_path_buf(),
                source: Box::new(e),
            },
        }
    }

    /// Wraps the error with the element it concerns (the innermost element is kept).
    pub fn in_element(self, element: impl Into<String>) -> Self {
        match self {
            e @ (Error::InElement { .. } | Error::InFile { .. }) => e,
            e => Error::InElement {
                element: capped(element.into()),
                source: Box::new(e),
            },
        }
    }

    /// The error without its file and element context.
    pub fn root(&self) -> &Error {
        match self {
            Error::InFile { source, .. } | Error::InElement { source, .. } => source.root(),
            e => e,
        }
    }

    /// The element path this error names, if any.
    pub fn element(&self) -> Option<&str> {
        match self {
            Error::InFile { source, .. } => source.element(),
            Error::InElement { element, .. } => Some(element),
            _ => None,
        }
    }

    /// Whether the underlying cause is an operating-system I/O error.
    pub fn is_io(&self) -> bool {
        matches!(self.root(), Error::Io(_))
    }
}

/// Adds file and element context to results.
pub trait ResultExt<T> {
    /// See [`Error::in_file`].
    fn in_file(self, path: impl AsRef<Path>) -> Result<T>;
    /// See [`Error::in_element`].
    fn in_element(self, element: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn in_file(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| e.into().in_file(path))
    }
    fn in_element(self, element: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().in_element(element))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_keep_the_librarys_message_only() {
        let e: Error = hdf5::Error::from("unable to open file").into();
        assert!(matches!(&e, Error::Storage(m) if m.contains("unable to open file")));
        assert_eq!(e.to_string(), "HDF5 error: unable to open file");
    }

    #[test]
    fn context_reads_file_then_element() {
        let e = Error::malformed("missing member 'indptr'")
            .in_element("/X")
            .in_element("/")
            .in_file("data.h5ad");
        assert_eq!(
            e.to_string(),
            "data.h5ad: /X: malformed element: missing member 'indptr'"
        );
        assert_eq!(e.element(), Some("/X"));
        assert!(matches!(e.root(), Error::Malformed(_)));
        assert!(!e.is_io());
    }

    #[test]
    fn long_messages_and_paths_are_cut() {
        let name = "é".repeat(3000); // 6,000 bytes
        let e = Error::malformed(format!("type {name}")).in_element(format!("/uns/{name}"));
        let Error::InElement { element, source } = &e else {
            panic!("{e:?}")
        };
        assert!(element.starts_with("/uns/éé") && element.ends_with("… (4982 more bytes)"));
        assert!(element.len() < MAX_MESSAGE + 30, "{}", element.len());
        assert!(
            source.to_string().ends_with("… (4982 more bytes)"),
            "{source}"
        );
        // Short ones are kept whole.
        assert_eq!(
            Error::invalid("a zero step").to_string(),
            "invalid argument: a zero step"
        );
    }
}
