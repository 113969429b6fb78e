//! annpage errors as Python exceptions.
//!
//! Every error becomes an [`AnnpageError`] subclass chosen by the kind of its root cause,
//! with the same one-line message as the CLI (naming the file and element). A missing file is
//! Python's `FileNotFoundError`, other I/O failures `OSError`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError};
use pyo3::prelude::*;

create_exception!(
    _annpage,
    AnnpageError,
    PyException,
    "Base class of the errors annpage raises for a file it cannot read or write."
);
create_exception!(
    _annpage,
    FormatError,
    AnnpageError,
    "The file is not a valid .h5ad file, or an element does not have the expected encoding."
);
create_exception!(
    _annpage,
    ShapeError,
    AnnpageError,
    "Shapes or lengths that do not agree (a selection, a column, a matrix)."
);
create_exception!(
    _annpage,
    UnsupportedError,
    AnnpageError,
    "Something valid that annpage does not do (yet)."
);
create_exception!(
    _annpage,
    SelectionError,
    AnnpageError,
    "An invalid argument, such as a selection that does not fit the axis."
);

/// Converts an annpage error into the matching Python exception.
pub fn to_py(err: annpage::Error) -> PyErr {
    let msg = err.to_string();
    match err.root() {
        annpage::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        annpage::Error::Io(_) => PyOSError::new_err(msg),
        annpage::Error::Malformed(_) | annpage::Error::UnexpectedEncoding { .. } => {
            FormatError::new_err(msg)
        }
        annpage::Error::Shape(_) => ShapeError::new_err(msg),
        annpage::Error::Unsupported(_) => UnsupportedError::new_err(msg),
        annpage::Error::InvalidArgument(_) | annpage::Error::NotFound(_) => {
            SelectionError::new_err(msg)
        }
        _ => AnnpageError::new_err(msg),
    }
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AnnpageError", py.get_type::<AnnpageError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("ShapeError", py.get_type::<ShapeError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("SelectionError", py.get_type::<SelectionError>())?;
    Ok(())
}
