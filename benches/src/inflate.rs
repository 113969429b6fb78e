//! The libdeflate limits: how fast this machine inflates every stored chunk of `X/data` and
//! `X/indices`, on one core and on all of them (the counterparts of `inflate_zlib_1` and
//! `inflate_zlib_all` in `benches/limits.py`, with libdeflate in place of zlib).
//!
//! Not through annpage: the chunks are listed with HDF5 (`H5Dchunk_iter`), their stored bytes
//! read with positioned reads beforehand (not timed), then only the inflating is timed, each
//! chunk into a buffer of its full uncompressed size (chunk elements × element size; HDF5
//! stores the last, partial chunk full size too).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Instant;

use hdf5::filters::Filter;
use libdeflater::Decompressor;

use crate::BenchResult;

/// The datasets inflated (as `INFLATE_DATASETS` in `benches/limits.py`).
const DATASETS: [&str; 2] = ["X/data", "X/indices"];

/// One stored chunk: its bytes as stored (deflated) and its size once inflated.
#[derive(Debug)]
pub struct RawChunk {
    raw: Vec<u8>,
    inflated: usize,
}

/// Where a chunk is stored.
struct ChunkAddr {
    dataset: &'static str,
    addr: u64,
    size: usize,
    filter_mask: u32,
}

/// Every stored chunk of `X/data` and `X/indices` with its bytes read from the file; `None`
/// when a dataset is not chunked and compressed with deflate alone (the limit does not apply,
/// as `chunk_list` in `benches/limits.py` decides).
pub fn raw_chunks(path: &Path) -> BenchResult<Option<Vec<RawChunk>>> {
    let file = hdf5::File::open(path)?;
    let mut addrs = Vec::new();
    let mut inflated_size = Vec::new();
    for name in DATASETS {
        let ds = file.dataset(name)?;
        let Some(chunk) = ds.chunk() else {
            return Ok(None);
        };
        let filters = ds.filters();
        if filters.is_empty() || !filters.iter().all(|f| matches!(f, Filter::Deflate(_))) {
            return Ok(None);
        }
        let chunk_bytes = chunk.iter().product::<usize>() * ds.dtype()?.size();
        ds.chunks_visit(|info| {
            addrs.push(ChunkAddr {
                dataset: name,
                addr: info.addr,
                size: info.size as usize,
                filter_mask: info.filter_mask,
            });
            inflated_size.push(chunk_bytes);
            0
        })?;
    }
    drop(file);
    let f = File::open(path)?;
    let mut out = Vec::with_capacity(addrs.len());
    for (c, inflated) in addrs.iter().zip(inflated_size) {
        if c.filter_mask != 0 {
            return Err(format!(
                "a chunk of {} at byte {} is stored with a filter skipped (mask {:#x})",
                c.dataset, c.addr, c.filter_mask
            )
            .into());
        }
        let mut raw = vec![0u8; c.size];
        f.read_exact_at(&mut raw, c.addr)?;
        out.push(RawChunk { raw, inflated });
    }
    Ok(Some(out))
}

/// Inflates one chunk (a zlib stream, as HDF5's deflate filter writes it) into `buf`, which
/// holds at least its inflated size; returns the bytes inflated.
fn inflate(d: &mut Decompressor, chunk: &RawChunk, buf: &mut [u8]) -> BenchResult<usize> {
    let out = &mut buf[..chunk.inflated];
    let n = d
        .zlib_decompress(&chunk.raw, out)
        .map_err(|e| format!("inflating a chunk: {e}"))?;
    if n != chunk.inflated {
        return Err(format!("chunk inflated to {n} bytes, expected {}", chunk.inflated).into());
    }
    Ok(n)
}

fn largest(chunks: &[RawChunk]) -> usize {
    chunks.iter().map(|c| c.inflated).max().unwrap_or(0)
}

/// Inflates every chunk on this thread: (bytes inflated, seconds).
pub fn inflate_serial(chunks: &[RawChunk]) -> BenchResult<(u64, f64)> {
    let mut d = Decompressor::new();
    let mut buf = vec![0u8; largest(chunks)];
    let t0 = Instant::now();
    let mut total = 0u64;
    for c in chunks {
        total += inflate(&mut d, c, &mut buf)? as u64;
    }
    Ok((total, t0.elapsed().as_secs_f64()))
}

/// Inflates every chunk on `threads` threads, each taking the next chunk from a shared
/// counter: (bytes inflated, seconds from the common start to the last thread's end).
pub fn inflate_parallel(chunks: &[RawChunk], threads: usize) -> BenchResult<(u64, f64)> {
    let next = AtomicUsize::new(0);
    let start = Barrier::new(threads + 1);
    let size = largest(chunks);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let mut d = Decompressor::new();
                    let mut buf = vec![0u8; size];
                    start.wait();
                    let mut total = 0u64;
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(c) = chunks.get(k) else {
                            return Ok(total);
                        };
                        total += inflate(&mut d, c, &mut buf).map_err(|e| e.to_string())? as u64;
                    }
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let mut total = 0u64;
        for w in workers {
            total += w.join().map_err(|_| "an inflating thread panicked")??;
        }
        Ok((total, t0.elapsed().as_secs_f64()))
    })
}

/// The number of threads of the all-cores limit.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
