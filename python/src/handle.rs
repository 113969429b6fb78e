//! The methods the two lazy handle classes (`Backed` over a file, `Collection` over several)
//! share word for word: each calls the inner handle's method of the same name
//! (`BackedAnnData` and `BackedCollection` agree on these), so one definition serves both.

/// A `#[pymethods]` block for the handle class `$ty` (a struct with an `inner` handle) holding
/// the shared methods; the class's own methods are in a block of its own.
macro_rules! shared_handle_methods {
    ($ty:ident) => {
        #[::pyo3::pymethods]
        impl $ty {
            /// `(n_obs, n_vars)` of the selection.
            #[getter]
            fn shape(&self) -> (usize, usize) {
                self.inner.shape()
            }

            /// Whether this handle selects part of what it opened.
            #[getter]
            fn is_view(&self) -> bool {
                self.inner.is_view()
            }

            /// A lazy view of `obs` × `var` of this handle (positions relative to it).
            #[pyo3(signature = (obs=None, var=None))]
            fn slice(
                &self,
                py: ::pyo3::Python<'_>,
                obs: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                var: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<Self> {
                let obs = $crate::backed::selection(obs)?;
                let var = $crate::backed::selection(var)?;
                let inner = py
                    .detach(|| self.inner.slice(&obs, &var))
                    .map_err($crate::errors::to_py)?;
                Ok($ty { inner })
            }

            /// `obs` as a tagged data frame.
            fn obs<'py>(
                &self,
                py: ::pyo3::Python<'py>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                let df = py.detach(|| self.inner.obs()).map_err($crate::errors::to_py)?;
                $crate::convert::dataframe(py, df)
            }

            /// `var` as a tagged data frame.
            fn var<'py>(
                &self,
                py: ::pyo3::Python<'py>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                let df = py.detach(|| self.inner.var()).map_err($crate::errors::to_py)?;
                $crate::convert::dataframe(py, df)
            }

            /// The selected names along `axis` (`"obs"` or `"var"`), as a numpy object array
            /// (the frame's columns are not read).
            fn names<'py>(
                &self,
                py: ::pyo3::Python<'py>,
                axis: &str,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                let axis = $crate::backed::axis_of(axis)?;
                let names = py
                    .detach(|| self.inner.names(axis))
                    .map_err($crate::errors::to_py)?;
                Ok($crate::convert::str_array(py, &names))
            }

            /// `uns` as a dict of tagged values.
            fn uns<'py>(
                &self,
                py: ::pyo3::Python<'py>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                let uns = py.detach(|| self.inner.uns()).map_err($crate::errors::to_py)?;
                $crate::convert::mapping(py, uns)
            }

            /// The selection in memory, as a dict of its elements.
            fn to_memory<'py>(
                &self,
                py: ::pyo3::Python<'py>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                let adata = py
                    .detach(|| self.inner.to_memory())
                    .map_err($crate::errors::to_py)?;
                $crate::convert::anndata(py, adata)
            }

            /// Writes the selection to `path` (streaming), compressed with `None`, `"gzip"`
            /// (level `compression_opts`, default 4 as h5py's) or `"lzf"`.
            #[pyo3(signature = (path, compression=None, compression_opts=None))]
            fn write_h5ad(
                &self,
                py: ::pyo3::Python<'_>,
                path: ::std::path::PathBuf,
                compression: Option<&str>,
                compression_opts: Option<u8>,
            ) -> ::pyo3::PyResult<()> {
                let options = ::annpage::WriteOptions {
                    compression: $crate::backed::compression_of(compression, compression_opts)?,
                    ..Default::default()
                };
                py.detach(|| self.inner.write_h5ad(&path, &options))
                    .map_err($crate::errors::to_py)
            }

            /// Writes the selection to `path` as a Zarr store (streaming), in `zarr_format` 2
            /// or 3, with `chunk_rows` / `shard_rows` / `x_chunks` (see `zarr_write_options`).
            #[pyo3(signature = (path, compression=None, zarr_format=3, chunk_rows=None, shard_rows=None, x_chunks=None))]
            #[allow(clippy::too_many_arguments)] // the keyword arguments of the Python call
            fn write_zarr(
                &self,
                py: ::pyo3::Python<'_>,
                path: ::std::path::PathBuf,
                compression: Option<&str>,
                zarr_format: u8,
                chunk_rows: Option<usize>,
                shard_rows: Option<usize>,
                x_chunks: Option<(usize, usize)>,
            ) -> ::pyo3::PyResult<()> {
                let options = $crate::backed::zarr_write_options(
                    compression,
                    (zarr_format, chunk_rows, shard_rows, x_chunks),
                )?;
                py.detach(|| self.inner.write_zarr(&path, &options))
                    .map_err($crate::errors::to_py)
            }

            /// Writes the selection as a loom file, its matrices a block at a time
            /// (`write_loom` of `annpage::backed::BackedAnnData` or `annpage::BackedCollection`).
            fn write_loom(
                &self,
                py: ::pyo3::Python<'_>,
                path: ::std::path::PathBuf,
                write_obsm_varm: bool,
            ) -> ::pyo3::PyResult<()> {
                py.detach(|| self.inner.write_loom(&path, write_obsm_varm))
                    .map_err($crate::errors::to_py)
            }

            /// Writes the selection as CSV files into `dir`, X a block of rows at a time
            /// (`write_csvs` of the Rust handle).
            fn write_csvs(
                &self,
                py: ::pyo3::Python<'_>,
                dir: ::std::path::PathBuf,
                skip_data: bool,
                sep: char,
            ) -> ::pyo3::PyResult<()> {
                py.detach(|| self.inner.write_csvs(&dir, skip_data, sep))
                    .map_err($crate::errors::to_py)
            }

            fn __repr__(&self) -> String {
                format!("{:?}", self.inner)
            }
        }
    };
}

pub(crate) use shared_handle_methods;
