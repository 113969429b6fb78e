//! The zstd limit of a Zarr store: how fast this machine decodes every stored chunk of
//! `X/data` and `X/indices` on all cores (the counterpart of `inflate_libdeflate_all` for the
//! stores anndata writes by default: Zarr v3, sharded, inner chunks compressed with zstd).
//!
//! Not through annpage: each shard's index (at its end, as anndata writes it) is parsed here,
//! the stored inner chunks read beforehand (not timed), then only the decoding is timed, each
//! chunk into a buffer of its full decoded size.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Instant;

use serde_json::Value;

use crate::inflate::all_cores;
use crate::BenchResult;

/// The arrays decoded (as for the deflate limits).
const ARRAYS: [&str; 2] = ["X/data", "X/indices"];

/// One stored inner chunk: its bytes (a zstd frame) and its size once decoded.
struct RawChunk {
    raw: Vec<u8>,
    decoded: usize,
}

/// What the limit needs of an array's `zarr.json`: (shard length, inner chunk length, element
/// bytes), or `None` when the array is not a 1-d v3 array sharded with its index at the end and
/// inner chunks of `bytes` + `zstd` (the limit does not apply).
fn layout(meta: &Value) -> Option<(usize, usize, usize)> {
    let elem = match meta["data_type"].as_str()? {
        "int8" | "uint8" | "bool" => 1,
        "int16" | "uint16" | "float16" => 2,
        "int32" | "uint32" | "float32" => 4,
        "int64" | "uint64" | "float64" => 8,
        _ => return None,
    };
    let shard = meta["chunk_grid"]["configuration"]["chunk_shape"]
        .as_array()
        .filter(|s| s.len() == 1)?[0]
        .as_u64()? as usize;
    let [sharding] = meta["codecs"].as_array()?.as_slice() else {
        return None;
    };
    let config = &sharding["configuration"];
    let names: Vec<&str> = config["codecs"]
        .as_array()?
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let index_ok = config["index_location"].as_str().unwrap_or("end") == "end";
    if sharding["name"] != "sharding_indexed" || names != ["bytes", "zstd"] || !index_ok {
        return None;
    }
    let inner = config["chunk_shape"].as_array()?.first()?.as_u64()? as usize;
    Some((shard, inner, elem))
}

/// Every stored inner chunk of `X/data` and `X/indices` with its bytes read; `None` when the
/// store's arrays are not laid out as [`layout`] reads them.
fn raw_chunks(store: &Path) -> BenchResult<Option<Vec<RawChunk>>> {
    let mut out = Vec::new();
    for name in ARRAYS {
        let dir = store.join(name);
        let meta: Value = serde_json::from_slice(&std::fs::read(dir.join("zarr.json"))?)?;
        let Some((shard, inner, elem)) = layout(&meta) else {
            return Ok(None);
        };
        let len = meta["shape"][0].as_u64().ok_or("no shape")? as usize;
        let per_shard = shard.div_ceil(inner);
        for s in 0..len.div_ceil(shard) {
            let Ok(bytes) = std::fs::read(dir.join("c").join(s.to_string())) else {
                continue; // An absent shard holds only the fill value.
            };
            // The index: (offset, length) per inner chunk, then a crc32c.
            let at = bytes
                .len()
                .checked_sub(per_shard * 16 + 4)
                .ok_or("a shard shorter than its index")?;
            for entry in bytes[at..at + per_shard * 16].chunks_exact(16) {
                let offset = u64::from_le_bytes(entry[..8].try_into()?);
                let size = u64::from_le_bytes(entry[8..].try_into()?);
                if offset == u64::MAX && size == u64::MAX {
                    continue; // An empty inner chunk.
                }
                let (offset, size) = (offset as usize, size as usize);
                let raw = bytes
                    .get(offset..offset + size)
                    .ok_or("an index entry beyond its shard")?;
                // Chunks at the array's end are stored full size too.
                out.push(RawChunk {
                    raw: raw.to_vec(),
                    decoded: inner * elem,
                });
            }
        }
    }
    Ok(Some(out))
}

/// Decodes every stored chunk of the store's `X/data` and `X/indices` on every core: (bytes
/// decoded, seconds from the common start to the last thread's end), or `None` when the limit
/// does not apply to this store.
pub fn zstd_all(store: &Path) -> BenchResult<Option<(u64, f64)>> {
    // A file (an .h5ad) is no store.
    if !store.is_dir() {
        return Ok(None);
    }
    let Some(chunks) = raw_chunks(store)? else {
        return Ok(None);
    };
    let threads = all_cores();
    let size = chunks.iter().map(|c| c.decoded).max().unwrap_or(0);
    let next = AtomicUsize::new(0);
    let start = Barrier::new(threads + 1);
    let (total, seconds) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, String> {
                    let mut d = zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?;
                    let mut buf = vec![0u8; size];
                    start.wait();
                    let mut total = 0u64;
                    while let Some(c) = chunks.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let n = d
                            .decompress_to_buffer(&c.raw, &mut buf[..c.decoded])
                            .map_err(|e| format!("decoding a chunk: {e}"))?;
                        if n != c.decoded {
                            return Err(format!("a chunk decoded to {n} bytes, not {}", c.decoded));
                        }
                        total += n as u64;
                    }
                    Ok(total)
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let mut total = 0u64;
        for w in workers {
            total += w
                .join()
                .map_err(|_| "a decoding thread panicked".to_string())??;
        }
        Ok::<_, String>((total, t0.elapsed().as_secs_f64()))
    })?;
    Ok(Some((total, seconds)))
}
