//! Checking the size a Zarr array claims before anything is allocated for it.
//!
//! As with HDF5 (see [`crate::storage::h5::claim`], whose limits are used here), an array's
//! shape is a claim: chunks that were never written read as the fill value, so a few bytes of
//! metadata can claim an exabyte. Zarr adds claims of its own: a chunk shape far larger than
//! the array (each chunk is decoded whole) and a shard index sized by the ratio of shard to
//! inner chunk (read whole from the end of each shard). All are checked here, from the
//! metadata and a count of the stored chunk keys.

use super::meta::ArrayMeta;
use super::store::Store;
use crate::memory::check_memory;
use crate::storage::h5::claim::{check_chunk_size, element_count, MAX_FILL_BYTES};
use crate::storage::StoredType;
use crate::{Error, Result};

/// Bytes one value takes once read into memory (a `String` for strings).
pub(crate) fn value_bytes(ty: &StoredType) -> u64 {
    let string = std::mem::size_of::<String>() as u64;
    match ty {
        StoredType::VarString { .. } => string,
        StoredType::FixedString { size } => string.saturating_add(*size as u64),
        other => other.size().unwrap_or(8) as u64,
    }
}

/// Bytes one value takes in a decoded chunk, for types of a fixed size.
pub(crate) fn stored_bytes(ty: &StoredType) -> Option<u64> {
    match ty {
        StoredType::VarString { .. } | StoredType::Unsupported(_) => None,
        other => other.size().map(|s| s as u64),
    }
}

/// Checks what the array at `prefix` claims against what the store holds; its element count
/// when the claim holds. Errors are not yet wrapped with the array's path.
pub(crate) fn check_claim(store: &Store, prefix: &str, meta: &ArrayMeta) -> Result<u64> {
    let shape = usize_shape(&meta.shape)?;
    let count = element_count(&shape)?;
    let elem = value_bytes(&meta.ty);
    check_chunks(meta, count, elem)?;
    if count == 0 {
        return Ok(0);
    }
    // The chunks that must be stored for the fill to stay within the allowance.
    let per_chunk = element_count(&usize_shape(&meta.chunk)?)?;
    let fill_allowed = MAX_FILL_BYTES / elem.max(1);
    let needed = count.saturating_sub(fill_allowed).div_ceil(per_chunk);
    let stored = if needed == 0 {
        0
    } else {
        store.count_chunks(prefix, needed)?
    };
    let backed = stored.saturating_mul(per_chunk);
    if stored < needed {
        return Err(Error::malformed(format!(
            "its shape {shape:?} claims {count} values ({} bytes), but its {stored} stored \
             chunks hold at most {backed}: the store claims more than it holds (the rest was \
             never written and would read as fill value)",
            count.saturating_mul(elem)
        )));
    }
    Ok(count)
}

/// Each chunk (the inner chunks of a sharded array) and each shard index is decoded whole: its
/// size must stay near the array's. A shard is not: only its inner chunks that a read needs
/// are decoded, so shards far larger than the array are accepted (annbatch writes `indptr`
/// with its `data`'s shard size).
fn check_chunks(meta: &ArrayMeta, count: u64, elem: u64) -> Result<()> {
    let (what, chunk) = match &meta.inner {
        Some(inner) => ("inner chunk", inner),
        None => ("chunk", &meta.chunk),
    };
    check_chunk_size(
        what,
        &usize_shape(chunk)?,
        &usize_shape(&meta.shape)?,
        count,
        elem,
    )?;
    if let Some(inner) = &meta.inner {
        // The shard index: 16 bytes (offset, length) per inner chunk of a shard.
        let per_shard: u64 = meta
            .chunk
            .iter()
            .zip(inner)
            .map(|(c, i)| c / i)
            .try_fold(1u64, |acc, n| acc.checked_mul(n))
            .unwrap_or(u64::MAX);
        let index = per_shard.saturating_mul(16);
        if index > MAX_FILL_BYTES {
            return Err(Error::malformed(format!(
                "its shards of {:?} hold {per_shard} inner chunks of {inner:?}: a shard index \
                 of {index} bytes",
                meta.chunk
            )));
        }
    }
    Ok(())
}

/// A shape in `usize`s (on 64-bit targets every `u64` fits).
pub(crate) fn usize_shape(shape: &[u64]) -> Result<Vec<usize>> {
    shape
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                Error::malformed(format!("its shape {shape:?} exceeds the address space"))
            })
        })
        .collect()
}

/// Checks a buffer of `values` values of type `ty` against the memory available.
pub(crate) fn check_buffer(values: u64, ty: &StoredType, what: &str) -> Result<()> {
    check_memory(values.saturating_mul(value_bytes(ty)), what)
}
