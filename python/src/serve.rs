//! `annpage.Server`: `annpage serve` inside a Python process (a notebook serving its files),
//! answering on threads of its own until stopped.

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;

use annpage_server::{DatasetSpec, ServeError, ServeOptions, Server as Inner, ShutdownHandle};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::errors::to_py;

fn serve_error(e: ServeError) -> PyErr {
    match e {
        ServeError::Open(e) => to_py(e),
        ServeError::Name(_) | ServeError::NoDatasets => PyValueError::new_err(e.to_string()),
        other => PyOSError::new_err(other.to_string()),
    }
}

/// A server bound to its address and answering on its own threads until `stop`.
#[pyclass(module = "annpage._annpage", frozen)]
pub struct Server {
    address: String,
    names: Vec<String>,
    stop: ShutdownHandle,
    running: Mutex<Option<JoinHandle<Result<(), ServeError>>>>,
}

#[pymethods]
impl Server {
    /// Opens `datasets` (paths, `NAME=PATH`, or `NAME=PATH,PATH` for a collection concatenated
    /// by `concat`), binds `host:port` and starts answering.
    #[new]
    #[pyo3(signature = (datasets, host, port, cache_bytes, response_bytes, threads, index_dir, log_requests, concat))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        datasets: Vec<(Option<String>, Vec<PathBuf>, bool)>,
        host: String,
        port: u16,
        cache_bytes: usize,
        response_bytes: usize,
        threads: Option<usize>,
        index_dir: Option<PathBuf>,
        log_requests: bool,
        concat: crate::concat::ConcatArgs,
    ) -> PyResult<Self> {
        let concat = concat.options()?;
        let datasets = datasets
            .iter()
            .map(|(name, paths, collection)| {
                let mut spec = match (name, paths.as_slice()) {
                    (Some(name), _) => DatasetSpec::named(name.clone(), paths.clone())?,
                    (None, [one]) => DatasetSpec::of_path(one.clone())?,
                    (None, _) => {
                        return Err(ServeError::Name(
                            "several files need a name (a dict of NAME: [FILES])".into(),
                        ))
                    }
                };
                // Given as a list of files (even of one): a collection, concatenated as asked.
                if *collection || spec.paths.len() > 1 {
                    spec.concat = Some(concat.clone());
                }
                Ok(spec)
            })
            .collect::<Result<Vec<_>, ServeError>>()
            .map_err(serve_error)?;
        let names = datasets.iter().map(|d| d.name.clone()).collect();
        let ip: std::net::IpAddr = host
            .parse()
            .map_err(|_| PyValueError::new_err(format!("host {host:?} is not an IP address")))?;
        let options = ServeOptions {
            datasets,
            cache_bytes,
            response_bytes,
            threads,
            index_dir,
            log_requests,
            ..ServeOptions::default()
        };
        let server = py
            .detach(|| Inner::bind((ip, port).into(), options))
            .map_err(serve_error)?;
        let address = server.local_addr().to_string();
        let stop = server.shutdown_handle();
        // Signals stay Python's: only `stop` ends this server.
        let running = std::thread::Builder::new()
            .name("annpage-serve".into())
            .spawn(move || server.run_until(std::future::pending()))
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Server {
            address,
            names,
            stop,
            running: Mutex::new(Some(running)),
        })
    }

    /// The datasets' names, as `/datasets` lists them.
    #[getter]
    fn datasets(&self) -> Vec<String> {
        self.names.clone()
    }

    /// `host:port` the server answers on.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// Stops the server after the requests in flight (again: nothing).
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let running = self
            .running
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the server's state is poisoned"))?
            .take();
        let Some(running) = running else {
            return Ok(());
        };
        self.stop.shutdown();
        py.detach(|| running.join())
            .map_err(|_| PyRuntimeError::new_err("the server's thread panicked"))?
            .map_err(serve_error)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}
