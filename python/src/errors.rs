//! annpage errors as Python exceptions.
//!
//! Every error becomes an [`AnnpageError`] subclass chosen by the kind of its root cause,
//! with the same one-line message as the CLI (naming the file and element). A missing file is
//! Python's `FileNotFoundError`, other I/O failures `OSError`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

create_exception!(
    annpage,
    AnnpageError,
    PyException,
    "Base class of the errors annpage raises for a file it cannot read or write."
);
create_exception!(
    annpage,
    FormatError,
    AnnpageError,
    "The file is not a valid .h5ad file, or an element does not have the expected encoding."
);
create_exception!(
    annpage,
    UnsupportedError,
    AnnpageError,
    "Something valid that annpage does not do (yet)."
);
/// The errors that are Python `ValueError`s too (what Python users catch for a bad argument or
/// a value of the wrong shape, as anndata raises): subclasses of both [`AnnpageError`] and
/// `ValueError`, made once per interpreter (`create_exception!` takes one base class).
#[derive(Clone, Copy)]
enum ValueKind {
    /// `SelectionError`: an invalid argument, such as a selection that does not fit the axis.
    Selection,
    /// `ShapeError`: shapes or lengths that do not agree (a selection, a column, a matrix).
    Shape,
}

static SELECTION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SHAPE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl ValueKind {
    fn name_doc_cell(self) -> (&'static str, &'static str, &'static PyOnceLock<Py<PyType>>) {
        match self {
            ValueKind::Selection => (
                "SelectionError",
                "An invalid argument, such as a selection that does not fit the axis.",
                &SELECTION_ERROR,
            ),
            ValueKind::Shape => (
                "ShapeError",
                "Shapes or lengths that do not agree (a selection, a column, a matrix).",
                &SHAPE_ERROR,
            ),
        }
    }

    fn get(self, py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
        let (name, doc, cell) = self.name_doc_cell();
        cell.get_or_try_init(py, || {
            let bases = (py.get_type::<AnnpageError>(), py.get_type::<PyValueError>());
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "annpage")?;
            namespace.set_item("__doc__", doc)?;
            let made = py.get_type::<PyType>().call1((name, bases, namespace))?;
            Ok::<_, PyErr>(made.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
    }

    fn new_err(self, msg: String) -> PyErr {
        Python::attach(|py| match self.get(py) {
            Ok(ty) => PyErr::from_type(ty.clone(), msg),
            Err(e) => e,
        })
    }
}

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
        annpage::Error::Shape(_) => ValueKind::Shape.new_err(msg),
        annpage::Error::Unsupported(_) => UnsupportedError::new_err(msg),
        annpage::Error::InvalidArgument(_) | annpage::Error::NotFound(_) => {
            ValueKind::Selection.new_err(msg)
        }
        _ => AnnpageError::new_err(msg),
    }
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AnnpageError", py.get_type::<AnnpageError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("ShapeError", ValueKind::Shape.get(py)?)?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("SelectionError", ValueKind::Selection.get(py)?)?;
    Ok(())
}
