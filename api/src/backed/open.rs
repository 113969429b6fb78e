//! Opening a file or store in backed mode: [`read_h5ad_backed`], [`read_zarr_backed`] and
//! their [`BackedOptions`].

use std::path::Path;
use std::sync::Arc;

use annpage_engine::file::File;
use annpage_engine::select::AxisIndex;
use annpage_engine::storage::StoreKind;
use annpage_engine::{Error, Result};

use super::shared::Shared;
use super::{BackedAnnData, BlockCache, ReadOptions};

/// How a backed file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Read only: the file is opened read-only and every modifying method fails.
    Read,
    /// Read and modify: changes are written back on [`BackedAnnData::flush`] or when the last
    /// handle is dropped (see the [module docs](super#modifying-a-file)).
    ReadWrite,
}

/// Options of [`read_h5ad_backed`].
///
/// ```
/// use std::sync::Arc;
/// use annpage::backed::{BackedOptions, BlockCache};
/// assert_eq!(BackedOptions::default().cache_bytes, 256 << 20);
/// // Two handles within one budget.
/// let shared = BackedOptions { cache: Some(Arc::new(BlockCache::new(64 << 20))), ..Default::default() };
/// # let _ = shared;
/// ```
#[derive(Clone, Debug)]
pub struct BackedOptions {
    /// The memory budget of the handle's cache in bytes (default 256 MiB), used when
    /// [`BackedOptions::cache`] is `None`. See the [module docs](super#memory-budget).
    pub cache_bytes: usize,
    /// A cache to share with other handles (its budget then applies to all of them).
    pub cache: Option<Arc<BlockCache>>,
    /// How matrices are read: directly (annpage decodes the stored chunks, outside the HDF5 library)
    /// or not, and on which worker threads. By default directly, on a pool of one thread per
    /// core for this handle; handles given clones of one `ReadOptions` share its threads, and
    /// a server answering many small requests at once may want fewer.
    pub read: ReadOptions,
}

impl Default for BackedOptions {
    fn default() -> Self {
        BackedOptions {
            cache_bytes: 256 << 20,
            cache: None,
            read: ReadOptions::default(),
        }
    }
}

/// Opens an `.h5ad` file in backed mode, reading metadata only (see the [module docs](super)).
///
/// Current and legacy layouts are accepted. For legacy files whose annotations anndata fixes
/// up on reading (compound `obs`/`var` frames, `uns` multi-column keys), `obs`, `var` and
/// `uns` are read in memory here; matrices stay on disk whatever the layout. The shape rules
/// of [`AnnData`](crate::AnnData) are checked from metadata. With [`Mode::ReadWrite`], the file must be
/// writable and in the current layout.
///
/// ```no_run
/// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
/// let adata = read_h5ad_backed("data.h5ad", Mode::Read, BackedOptions::default())?;
/// assert_eq!(adata.cache_stats().bytes_read, 0); // no matrix data read yet
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_h5ad_backed(
    path: impl AsRef<Path>,
    mode: Mode,
    options: BackedOptions,
) -> Result<BackedAnnData> {
    let path = path.as_ref();
    if mode == Mode::ReadWrite && StoreKind::of_path(path) == StoreKind::Zarr {
        return Err(Error::unsupported(
            "modifying a Zarr store in place (Mode::ReadWrite): open it with Mode::Read and \
             write a new store",
        )
        .in_file(path));
    }
    // A missing or unreadable file is an I/O error, not an HDF5 one; a FIFO is refused before
    // an open for writing could block on it.
    if mode == Mode::ReadWrite {
        annpage_engine::file::check_writable(path)?;
    }
    let file = File::open(path)?;
    let layout = file.probe()?;
    if mode == Mode::ReadWrite && !layout.current {
        return Err(Error::unsupported(
            "modifying a file in a legacy layout (written by anndata < 0.8): convert it first \
             (`annpage convert`), or open it with Mode::Read",
        )
        .in_file(path));
    }
    let cache = options
        .cache
        .unwrap_or_else(|| Arc::new(BlockCache::new(options.cache_bytes)));
    let (n_obs, n_vars) = (layout.n_obs, layout.n_vars);
    Ok(BackedAnnData {
        shared: Arc::new(Shared::new(
            path.to_path_buf(),
            mode,
            cache,
            options.read,
            file,
            layout,
        )),
        obs: AxisIndex::full(n_obs),
        var: AxisIndex::full(n_vars),
        view: false,
    })
}

/// Opens a Zarr store (a `.zarr` directory, v2 or v3, or a `.zarr.zip` archive) in backed
/// mode: everything [`read_h5ad_backed`] gives for a file (lazy elements, composable plans,
/// `to_memory`, `chunk_x`, streaming writes, one byte budget), the store's chunks decoded on
/// the backend's threads. Stores are read-only: [`Mode::ReadWrite`] is refused.
///
/// ```
/// use annpage::backed::{read_zarr_backed, BackedOptions, Mode};
/// use annpage::{Selection, WriteOptions};
/// # let dir = tempfile::tempdir().unwrap();
/// # let store = dir.path().join("x.zarr");
/// # annpage::read_h5ad(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/x_csr_f32.h5ad"))?
/// #     .write_zarr(&store, &WriteOptions::default())?;
/// let adata = read_zarr_backed(&store, Mode::Read, BackedOptions::default())?;
/// let rows = adata.slice(&Selection::from(0..3), &Selection::All)?.to_memory()?;
/// assert_eq!(rows.n_obs(), 3);
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_zarr_backed(
    path: impl AsRef<Path>,
    mode: Mode,
    options: BackedOptions,
) -> Result<BackedAnnData> {
    let path = path.as_ref();
    if StoreKind::of_path(path) != StoreKind::Zarr {
        return Err(
            Error::invalid("not a Zarr store (a directory, or a .zarr / .zip name)").in_file(path),
        );
    }
    read_h5ad_backed(path, mode, options)
}
