//! `annpage serve`: an HTTP API and a browser viewer over AnnData files larger than memory.
//!
//! A [`Server`] opens every dataset (a file, or several as one collection: see [`DatasetSpec`])
//! read-only in backed mode, all of them within one byte
//! budget (one [`BlockCache`](annpage::backed::BlockCache) and one pool of reader threads), and answers
//! requests on tokio's runtime. Reads never run on the runtime's workers: each request
//! reserves the memory its answer will take ([`ServeOptions::response_bytes`] bounds what all
//! requests hold at once; a larger answer is refused with 413), then reads on a blocking
//! thread through the engine's pool. Bodies are released when sent, or dropped when a client
//! reads too slowly ([`ServeOptions::send_timeout`]). [`ServeOptions::index_dir`] keeps local
//! copies that make reads fast (uncompressed, gene-major).
//!
//! # Endpoints
//!
//! | request | answer |
//! |---|---|
//! | `GET /datasets` | JSON: one object per dataset (`name`, `shape`, `elements`, `layers`, `obsm`) |
//! | `GET /datasets/{d}/obs?columns=a,b&rows=0,7` (`/var`) | JSON: `index` and columns, all or those asked in the order asked, of every row or those asked (categoricals as `codes` + `categories`) |
//! | `GET /datasets/{d}/genes/{gene}?layer=L` | one gene over all cells, `float32` |
//! | `GET /datasets/{d}/genes?names=A,B` | several genes: a `genes × cells` `float32` array |
//! | `GET /datasets/{d}/cells?positions=…\|names=…&genes=…` | a CSR block (`data`, `indices`, `indptr`, `shape`) |
//! | `GET /datasets/{d}/obsm/{key}?max_points=N&dims=0,1` | an embedding, every k-th cell when downsampled (`values`, `positions`) |
//! | `POST /datasets/{d}/subset` | JSON `{obs_query, var_query, obs_names, var_names, compression}` → a streamed `.h5ad` |
//! | `GET /healthz`, `GET /metrics` | `ok`; Prometheus text (cache and request counters, latencies) |
//! | `GET /` | the viewer |
//!
//! `/datasets/{d}` also tells which `--index` copies are ready (`"index": {"genes", "plain"}`).
//!
//! Numbers come as the binary array format of [`encode`] (`?format=json` for JSON). Errors are
//! a one-line JSON object `{"error": "..."}` with a 4xx status (5xx for a damaged file): 404 for
//! names a dataset lacks, 400 for other mistakes, 413 for an answer larger than the answers'
//! budget, 503 when one outgrows what comes free within 2 s.
//!
//! ```no_run
//! use annpage_server::{DatasetSpec, ServeOptions, Server};
//! let options = ServeOptions {
//!     datasets: vec!["pbmc=fixtures/pbmc_like_csr.h5ad".parse()?],
//!     ..ServeOptions::default()
//! };
//! let server = Server::bind("127.0.0.1:0".parse().unwrap(), options)?;
//! println!("serving on http://{}", server.local_addr());
//! server.run()?; // until SIGINT or SIGTERM
//! # Ok::<(), annpage_server::ServeError>(())
//! ```
#![deny(missing_docs)]

mod accept;
mod body;
mod catalog;
pub mod encode;
mod error;
mod index;
mod metrics;
mod routes;
mod source;
mod viewer;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::error::ServeError;

/// One dataset to serve: `NAME=PATH`, a path (named by its file stem), or a collection
/// `NAME=PATH,PATH,...` (the files' concatenation along obs, read lazily as one dataset).
///
/// ```
/// use annpage_server::DatasetSpec;
/// let spec: DatasetSpec = "data/pbmc3k.h5ad".parse().unwrap();
/// assert_eq!(spec.name, "pbmc3k");
/// let named: DatasetSpec = "pbmc=data/pbmc3k.h5ad".parse().unwrap();
/// assert_eq!(named.name, "pbmc");
/// assert_eq!(named.paths, ["data/pbmc3k.h5ad"].map(std::path::PathBuf::from));
/// let atlas: DatasetSpec = "atlas=a.h5ad,b.zarr".parse().unwrap();
/// assert_eq!(atlas.paths.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// The name in URLs (`/datasets/{name}`).
    pub name: String,
    /// The `.h5ad` file or Zarr store; several make a collection.
    pub paths: Vec<PathBuf>,
    /// How a collection concatenates its files (`None`: as `anndata.concat`'s defaults, an
    /// inner join). Given with one path, that file is served as a collection of one.
    pub concat: Option<annpage::ConcatOptions>,
}

impl DatasetSpec {
    /// The dataset `name` of the files `paths` (one file, or a collection), the name checked
    /// as URLs need it: letters, digits, `-`, `_` or `.`. Paths are taken as given (commas
    /// and `=` included).
    ///
    /// ```
    /// use annpage_server::DatasetSpec;
    /// let spec = DatasetSpec::named("pbmc", vec!["a,b=c.h5ad".into()]).unwrap();
    /// assert_eq!(spec.paths[0].to_str(), Some("a,b=c.h5ad"));
    /// assert!(DatasetSpec::named("a/b", vec!["x.h5ad".into()]).is_err());
    /// ```
    pub fn named(name: impl Into<String>, paths: Vec<PathBuf>) -> Result<Self, ServeError> {
        let name = name.into();
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if name.is_empty() || !name.chars().all(valid) {
            return Err(ServeError::Name(format!(
                "'{name}': a dataset name is letters, digits, '-', '_' or '.'; give one as \
                 NAME=FILE"
            )));
        }
        if paths.is_empty() || paths.iter().any(|p| p.as_os_str().is_empty()) {
            return Err(ServeError::Name(format!(
                "'{name}': an empty path (a collection is NAME=FILE,FILE,...)"
            )));
        }
        Ok(DatasetSpec {
            name,
            paths,
            concat: None,
        })
    }

    /// The dataset of the file (or store) `path`, named by its file stem.
    pub fn of_path(path: PathBuf) -> Result<Self, ServeError> {
        let mut stem = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for ext in [".zarr.zip", ".h5ad", ".zarr", ".h5"] {
            if let Some(s) = stem.strip_suffix(ext) {
                stem = s.to_string();
                break;
            }
        }
        DatasetSpec::named(stem, vec![path])
    }
}

impl FromStr for DatasetSpec {
    type Err = ServeError;

    fn from_str(s: &str) -> Result<Self, ServeError> {
        match s.split_once('=') {
            Some((name, paths)) if !name.contains('/') => {
                DatasetSpec::named(name, paths.split(',').map(PathBuf::from).collect())
            }
            _ => DatasetSpec::of_path(PathBuf::from(s)),
        }
    }
}

/// What [`Server::bind`] serves and within which limits.
///
/// ```
/// use annpage_server::ServeOptions;
/// let options = ServeOptions::default();
/// assert_eq!(options.cache_bytes, 1 << 30);
/// assert_eq!(options.response_bytes, 128 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The datasets, in the order `/datasets` lists them; names must differ.
    pub datasets: Vec<DatasetSpec>,
    /// The budget of the block cache every dataset shares (default 1 GiB).
    pub cache_bytes: usize,
    /// What the answers of all requests in flight may hold at once (default 128 MiB): a
    /// request waits until its answer fits, and one that could never fit gets 413. An eighth
    /// is kept for answers of at most a 64th of it, which never wait behind large ones. An
    /// answer whose size shows only as it is built (a frame's strings) reserves more as it
    /// grows, waiting at most 2 s: 413 past the whole, 503 (retry) when no room comes.
    pub response_bytes: usize,
    /// Threads of the engine's pool that read and decode for every request (default: one per
    /// core); four times as many requests (and at least six more than the threads) read at
    /// once, so that a small read does not queue behind large ones.
    pub threads: Option<usize>,
    /// How long a client may go without taking any of its answer before the connection is
    /// dropped and the answer's memory released (default 60 s); a slow client that keeps
    /// reading gets the whole answer.
    pub send_timeout: Duration,
    /// The slowest a client may take an answer held in memory, in bytes a second (default
    /// 1 MiB/s): an answer of `n` bytes is dropped, with its reservation, `send_timeout +
    /// n / min_send_rate` after it was made even if the client keeps taking pieces of it, so
    /// a client that trickles cannot hold memory for long. 0 turns the limit off.
    pub min_send_rate: u64,
    /// Where `POST /subset` writes the file it streams (default: the system's temporary
    /// directory); the file is removed as soon as it is opened for sending.
    pub scratch_dir: Option<PathBuf>,
    /// Log one line per request to standard error (default true).
    pub log_requests: bool,
    /// A request's head must arrive within this, or the connection is closed; a request's
    /// body (`POST /subset`) must arrive within as long again, or the answer is a 408
    /// (default 30 s).
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted (default 1024).
    pub max_connections: usize,
    /// A directory for local copies that make reads fast: an uncompressed copy of a
    /// compressed file (`NAME.plain.h5ad`; a batch of cells then reads its rows instead of
    /// inflating a chunk per row) and a gene-major copy of X (`NAME.genes.h5ad`, CSC; a gene
    /// is then read alone instead of by a pass over every cell of a CSR X). A copy is reused
    /// only if the record beside it (`COPY.source`) names the files served now with their
    /// sizes and modification times; others are written again, on a thread of its own when
    /// the server starts, and reads go to the file until they are ready. Default: none.
    pub index_dir: Option<PathBuf>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            datasets: Vec::new(),
            cache_bytes: 1 << 30,
            response_bytes: 128 << 20,
            threads: None,
            send_timeout: Duration::from_secs(60),
            min_send_rate: 1 << 20,
            scratch_dir: None,
            log_requests: true,
            index_dir: None,
            header_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// A server with its datasets open and its socket bound, not yet answering.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    state: Arc<routes::App>,
    stop: Arc<tokio::sync::Notify>,
    limits: accept::Limits,
}

/// Stops a [`Server`] from another thread: the requests in flight are finished first.
///
/// ```no_run
/// # let server = annpage_server::Server::bind("127.0.0.1:0".parse().unwrap(), Default::default()).unwrap();
/// let stop = server.shutdown_handle();
/// let running = std::thread::spawn(move || server.run());
/// stop.shutdown();
/// running.join().unwrap()?;
/// # Ok::<(), annpage_server::ServeError>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle(Arc<tokio::sync::Notify>);

impl ShutdownHandle {
    /// Asks the server to stop (before or while it runs).
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

impl Server {
    /// Opens every dataset (metadata only, read-only) and binds `addr` (port 0 picks a free
    /// port: see [`Server::local_addr`]). Fails on the first dataset that does not open,
    /// naming its file, or on a name given twice.
    pub fn bind(addr: SocketAddr, options: ServeOptions) -> Result<Server, ServeError> {
        let threads = options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let catalog = catalog::Catalog::open(&options, threads)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(routes::readers(threads) + 2)
            .thread_name("annpage-serve")
            .enable_all()
            .build()
            .map_err(ServeError::Io)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| ServeError::Bind(addr, e))?;
        let state = Arc::new(routes::App::new(catalog, &options, threads));
        let limits = accept::Limits {
            header_timeout: options.header_timeout,
            max_connections: options.max_connections.max(1),
            grace: options.send_timeout,
        };
        Ok(Server {
            runtime,
            listener,
            state,
            stop: Arc::new(tokio::sync::Notify::new()),
            limits,
        })
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Answers requests until SIGINT, SIGTERM or [`ShutdownHandle::shutdown`], then finishes
    /// the requests in flight.
    pub fn run(self) -> Result<(), ServeError> {
        self.run_until(shutdown_signal())
    }

    /// Answers requests until `shutdown` completes (or [`ShutdownHandle::shutdown`]), then
    /// finishes the requests in flight.
    pub fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            runtime,
            listener,
            state,
            stop,
            limits,
        } = self;
        let router = routes::router(state);
        runtime.block_on(accept::serve(
            listener,
            router,
            limits,
            first_of(shutdown, async move { stop.notified().await }),
        ));
        runtime.shutdown_timeout(limits.grace);
        Ok(())
    }
}

/// Completes when either future does.
async fn first_of(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    tokio::select! {
        () = a => {}
        () = b => {}
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        // Without a handler the default action (exit) stays.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    first_of(interrupt, terminate).await;
}
