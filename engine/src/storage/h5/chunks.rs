//! Where a dataset's bytes are in its file: one offset for a contiguous dataset, a table of
//! chunks for a chunked one. Built once, from libhdf5's chunk iteration, and checked against
//! the file's length and the dataset's shape before anything is read through it.

use hdf5::dataset::Layout;
use hdf5::Dataset;

/// One stored chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    /// File offset of the stored bytes.
    pub(crate) addr: u64,
    /// Stored (possibly compressed) size in bytes.
    pub(crate) size: u64,
    /// Filters skipped when the chunk was written (bit `i`: filter `i` of the pipeline).
    pub(crate) mask: u32,
}

/// Where the bytes of a dataset are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// All elements, row-major, at this file offset.
    Contiguous { addr: u64 },
    /// Chunks of `chunk` elements per dimension; `entries` in row-major order of the chunk
    /// grid, whose shape is `grid`. Every chunk of the grid is stored.
    Chunked {
        chunk: Vec<usize>,
        grid: Vec<usize>,
        entries: Vec<ChunkEntry>,
    },
}

/// Why a dataset cannot be read directly (it is then read through libhdf5).
pub(crate) type Fallback = String;

/// Indexes `ds` (of `shape`, elements of `element_size` bytes) in a file of `file_len` bytes.
///
/// `Ok(Err(reason))` when the layout is valid but not one annpage reads itself (compact,
/// virtual or external storage, chunks never written); `Err` when the file's own records
/// contradict its shape or length.
pub(crate) fn index(
    ds: &Dataset,
    shape: &[usize],
    element_size: usize,
    file_len: u64,
) -> crate::Result<Result<Placement, Fallback>> {
    let n_bytes = shape
        .iter()
        .try_fold(element_size as u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| crate::Error::malformed("the dataset's size overflows"))?;
    match ds.layout() {
        Layout::Contiguous => {
            if !ds.dcpl()?.external().is_empty() {
                return Ok(Err("its data is in external files".into()));
            }
            let Some(addr) = ds.offset() else {
                return Ok(Err("its storage is not allocated".into()));
            };
            check_span(addr, n_bytes, file_len, "the dataset's data")?;
            Ok(Ok(Placement::Contiguous { addr }))
        }
        Layout::Chunked => chunked(ds, shape, file_len).map(Ok).or_else(|e| match e {
            IndexError::Fallback(reason) => Ok(Err(reason)),
            IndexError::Corrupt(e) => Err(e),
        }),
        Layout::Compact => Ok(Err("it is stored compact (in its header)".into())),
        #[allow(unreachable_patterns)]
        _ => Ok(Err("its layout is virtual".into())),
    }
}

enum IndexError {
    Fallback(Fallback),
    Corrupt(crate::Error),
}

impl From<crate::Error> for IndexError {
    fn from(e: crate::Error) -> Self {
        IndexError::Corrupt(e)
    }
}

fn chunked(ds: &Dataset, shape: &[usize], file_len: u64) -> Result<Placement, IndexError> {
    let chunk = ds
        .chunk()
        .ok_or_else(|| IndexError::Fallback("its chunk shape is unknown".into()))?;
    // Edge chunks stored unfiltered with a mask that says filtered: libhdf5 knows which.
    let opts = ds
        .dcpl()
        .map_err(crate::Error::from)?
        .chunk_opts()
        .unwrap_or_default();
    if opts.contains(hdf5::plist::dataset_create::ChunkOpts::DONT_FILTER_PARTIAL_CHUNKS) {
        return Err(IndexError::Fallback(
            "its partial edge chunks are stored unfiltered".into(),
        ));
    }
    if chunk.len() != shape.len() || chunk.contains(&0) {
        return Err(crate::Error::malformed(format!(
            "chunk shape {chunk:?} does not fit dataset shape {shape:?}"
        ))
        .into());
    }
    let grid: Vec<usize> = shape
        .iter()
        .zip(&chunk)
        .map(|(&n, &c)| n.div_ceil(c))
        .collect();
    // Only a dataset whose every chunk is stored is read directly: count them before making a
    // table over the grid, which a dataset that claims more than it stores can make huge.
    let total = grid
        .iter()
        .try_fold(1usize, |acc, &g| acc.checked_mul(g))
        .filter(|&t| ds.num_chunks() == Some(t))
        .ok_or_else(|| {
            IndexError::Fallback(
                "some chunks were never written (they read as the fill value)".into(),
            )
        })?;
    let mut entries: Vec<Option<ChunkEntry>> = vec![None; total];
    let mut problem: Option<crate::Error> = None;
    let visited = ds.chunks_visit(|info| {
        let at = || format!("chunk at offset {:?}", info.offset);
        let mut linear = 0usize;
        for ((&o, &c), &g) in info.offset.iter().zip(&chunk).zip(&grid) {
            let o = o as usize;
            if !o.is_multiple_of(c) || o / c >= g {
                problem = Some(crate::Error::malformed(format!(
                    "{} does not lie on the chunk grid of shape {shape:?}",
                    at()
                )));
                return -1;
            }
            linear = linear * g + o / c;
        }
        if entries[linear].is_some() {
            problem = Some(crate::Error::malformed(format!("{} is stored twice", at())));
            return -1;
        }
        entries[linear] = Some(ChunkEntry {
            addr: info.addr,
            size: info.size,
            mask: info.filter_mask,
        });
        0
    });
    if let Some(e) = problem {
        return Err(e.into());
    }
    visited.map_err(crate::Error::from)?;
    let mut out = Vec::with_capacity(total);
    for (i, e) in entries.into_iter().enumerate() {
        let Some(e) = e else {
            return Err(IndexError::Fallback(
                "some chunks were never written (they read as the fill value)".into(),
            ));
        };
        if e.size == 0 {
            return Err(
                crate::Error::malformed(format!("chunk {i} is stored with 0 bytes")).into(),
            );
        }
        check_span(e.addr, e.size, file_len, &format!("chunk {i}"))?;
        out.push(e);
    }
    Ok(Placement::Chunked {
        chunk,
        grid,
        entries: out,
    })
}

/// Fails unless `len` bytes at `addr` lie within a file of `file_len` bytes.
pub(crate) fn check_span(addr: u64, len: u64, file_len: u64, what: &str) -> crate::Result<()> {
    match addr.checked_add(len) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(crate::Error::malformed(format!(
            "{what} ({len} bytes at offset {addr}) lies beyond the end of the file ({file_len} \
             bytes): the file is truncated or corrupt"
        ))),
    }
}
