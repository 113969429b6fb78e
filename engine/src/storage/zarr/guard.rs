//! A guard between `zarrs` and the store against values that decode past their chunk's size.
//!
//! `zarrs` decompresses a zstd-compressed chunk into a buffer of the size the frame header
//! declares (`ZSTD_decompressBound`): a 50-byte chunk declaring a petabyte makes that
//! allocation fail, which aborts the process. The guard wraps the store `zarrs` reads chunks
//! from and, for arrays whose codecs end in zstd (optionally followed by a crc32c checksum),
//! refuses any value whose frames declare more than the chunk decodes to (or, when that is not
//! known, more than the memory available), before `zarrs` sees it. For sharded arrays whose
//! inner chunks are zstd-compressed, a whole shard is checked chunk by chunk through its index.
//!
//! The other compressors of whole chunks are bounded too ([`Inflate`]): blosc declares its
//! decoded size in its header, checked like zstd's; gzip and zlib declare none and `zarrs`
//! inflates them into a growing buffer, so a value that could inflate far past its chunk (deflate
//! expands at most 1032-fold) is inflated once by the guard, counting, and refused as soon as it
//! passes the chunk's size.

use serde_json::Value;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    Bytes, MaybeBytesIterator, ReadableStorage, ReadableStorageTraits, StorageError, StoreKey,
};

use crate::memory::check_memory;

/// Where an array's zstd frames are, as far as the guard needs to know.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ZstdLayout {
    /// No zstd codec: nothing to check.
    None,
    /// Each stored value (a chunk, or a whole shard) starts with a zstd frame.
    Values,
    /// The inner chunks of each shard start with a zstd frame.
    InnerChunks {
        /// Inner chunks per shard.
        count: u64,
        /// Whether the shard index is at the end (else the start).
        index_at_end: bool,
        /// Whether the index carries a crc32c checksum.
        index_crc: bool,
    },
    /// A placement the guard cannot check (zstd inside another compressor, nested shards):
    /// refused on read, naming why.
    Unchecked(String),
}

/// Whether codecs `names` (in encoding order) end in zstd, optionally followed by crc32c:
/// `Some(true)`; no zstd at all: `Some(false)`; zstd elsewhere: `None`.
fn zstd_outermost(names: &[&str]) -> Option<bool> {
    match names.iter().position(|n| *n == "zstd") {
        None => Some(false),
        Some(i) => names[i + 1..]
            .iter()
            .all(|n| *n == "crc32c")
            .then_some(true),
    }
}

fn names(codecs: &[Value]) -> Vec<&str> {
    codecs
        .iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or("?"))
        .collect()
}

/// The layout of a v3 array's zstd frames, from its codecs; `per_shard` is the number of inner
/// chunks a shard holds when the array is sharded.
pub(crate) fn v3_layout(codecs: &[Value], per_shard: Option<u64>) -> ZstdLayout {
    let unchecked = |why: &str| ZstdLayout::Unchecked(format!("zstd-compressed chunks {why}"));
    let top = names(codecs);
    let Some(outer) = zstd_outermost(&top) else {
        return unchecked("inside another codec");
    };
    let Some(sharding) = codecs
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("sharding_indexed"))
    else {
        return if outer {
            ZstdLayout::Values
        } else {
            ZstdLayout::None
        };
    };
    let config = sharding.get("configuration");
    let field = |name: &str| config.and_then(|c| c.get(name));
    let inner: &[Value] = field("codecs").and_then(Value::as_array).map_or(&[], |v| v);
    let inner_names = names(inner);
    let Some(inner_zstd) = zstd_outermost(&inner_names) else {
        return unchecked("inside another codec of a shard");
    };
    if !inner_zstd {
        return if outer {
            ZstdLayout::Values
        } else {
            ZstdLayout::None
        };
    }
    if outer || inner_names.contains(&"sharding_indexed") {
        return unchecked("in nested shards or compressed shards");
    }
    let index: &[Value] = field("index_codecs")
        .and_then(Value::as_array)
        .map_or(&[], |v| v);
    let index_names = names(index);
    let little = index
        .first()
        .and_then(|c| c.pointer("/configuration/endian"))
        .is_none_or(|e| e == "little");
    let index_crc = match index_names[..] {
        ["bytes"] => false,
        ["bytes", "crc32c"] => true,
        _ => return unchecked("in shards whose index is encoded with other codecs"),
    };
    if !little {
        return unchecked("in shards whose index is big-endian");
    }
    ZstdLayout::InnerChunks {
        count: per_shard.unwrap_or(1),
        index_at_end: field("index_location").and_then(Value::as_str) != Some("start"),
        index_crc,
    }
}

/// The compressor of whole chunk values other than zstd, whose decoded size the guard checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inflate {
    /// None, or one whose values the guard does not check (inside shards, after filters).
    None,
    Blosc,
    Gzip,
    Zlib,
}

impl Inflate {
    fn of(name: Option<&str>) -> Inflate {
        match name {
            Some("blosc") => Inflate::Blosc,
            Some("gzip") => Inflate::Gzip,
            Some("zlib") => Inflate::Zlib,
            _ => Inflate::None,
        }
    }

    /// The compressor of a v2 array's chunks (`compressor`'s id), checked when no filter
    /// changes the size of what it compresses.
    pub(crate) fn v2(compressor: Option<&str>, filters: &[&str]) -> Inflate {
        if filters.iter().all(|f| matches!(*f, "shuffle" | "delta")) {
            Inflate::of(compressor)
        } else {
            Inflate::None
        }
    }

    /// The last codec of a v3 array that is not sharded (a trailing crc32c aside).
    pub(crate) fn v3(codecs: &[Value]) -> Inflate {
        let names = names(codecs);
        if names.contains(&"sharding_indexed") {
            return Inflate::None;
        }
        let mut outer = names.iter().rev().skip_while(|n| **n == "crc32c");
        Inflate::of(outer.next().copied())
    }
}

/// How far past its chunk a gzip or zlib value may inflate before the guard inflates it to
/// check (the rule HDF5 chunks follow: 256 MiB beyond the chunk's bytes).
const INFLATE_SLACK: u64 = 256 << 20;

/// A store that checks what values decode to (zstd frames, blosc headers, gzip and zlib
/// values) before `zarrs` decodes them (see the module docs).
pub(crate) struct SizeGuard {
    inner: ReadableStorage,
    layout: ZstdLayout,
    inflate: Inflate,
    /// The most bytes one checked frame may decode to, when the chunk's size is fixed.
    limit: Option<u64>,
}

impl SizeGuard {
    /// Wraps `inner` for an array with `layout`, whose checked frames decode to at most
    /// `limit` bytes (`None`: as much as memory allows).
    pub(crate) fn wrap(
        inner: ReadableStorage,
        layout: ZstdLayout,
        inflate: Inflate,
        limit: Option<u64>,
    ) -> ReadableStorage {
        let unguarded = matches!(layout, ZstdLayout::None | ZstdLayout::Unchecked(_));
        if unguarded && (inflate == Inflate::None || limit.is_none()) {
            return inner;
        }
        std::sync::Arc::new(SizeGuard {
            inner,
            layout,
            inflate,
            limit,
        })
    }

    fn check(&self, key: &StoreKey, range: &ByteRange, bytes: &[u8]) -> Result<(), StorageError> {
        match &self.layout {
            ZstdLayout::InnerChunks {
                count,
                index_at_end,
                index_crc,
            } if *range == ByteRange::FromStart(0, None) => {
                let index_len =
                    count
                        .saturating_mul(16)
                        .saturating_add(if *index_crc { 4 } else { 0 });
                let len = bytes.len() as u64;
                if index_len > len {
                    return Ok(()); // Not a shard zarrs can decode: it reports that itself.
                }
                let start = if *index_at_end { len - index_len } else { 0 } as usize;
                let index = &bytes[start..start + (*count as usize) * 16];
                for entry in index.chunks_exact(16) {
                    let offset = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
                    let size = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
                    let end = offset.checked_add(size).filter(|&e| e <= len);
                    if let Some(end) = end {
                        self.check_frame(key, &bytes[offset as usize..end as usize])?;
                    }
                }
                Ok(())
            }
            // A whole value, or (in a shard) an inner chunk's frame or the index.
            ZstdLayout::Values | ZstdLayout::InnerChunks { .. } => self.check_frame(key, bytes),
            _ if *range == ByteRange::FromStart(0, None) => self.check_inflate(key, bytes),
            _ => Ok(()),
        }
    }

    /// Checks a whole value of a blosc, gzip or zlib array against its chunk's size.
    fn check_inflate(&self, key: &StoreKey, bytes: &[u8]) -> Result<(), StorageError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let gzip = match self.inflate {
            Inflate::None => return Ok(()),
            Inflate::Blosc => {
                // Bytes 4..8 of a blosc header: the decoded size, which blosc allocates.
                let declared = bytes
                    .get(4..8)
                    .map(|b| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))));
                return match declared {
                    Some(n) if n > limit => Err(StorageError::Other(format!(
                        "the blosc header of '{key}' declares {n} decoded bytes, more than the \
                         {limit} its chunk holds"
                    ))),
                    _ => Ok(()),
                };
            }
            Inflate::Gzip => true,
            Inflate::Zlib => false,
        };
        if (bytes.len() as u64).saturating_mul(1032) <= limit.saturating_add(INFLATE_SLACK) {
            return Ok(()); // Whatever it holds, it cannot inflate far past its chunk.
        }
        let mut inflater: Box<dyn std::io::Read + '_> = if gzip {
            Box::new(flate2::read::GzDecoder::new(bytes))
        } else {
            Box::new(flate2::read::ZlibDecoder::new(bytes))
        };
        let mut scratch = vec![0u8; 64 << 10];
        let mut decoded = 0u64;
        // A read error is corrupt data: zarrs reports it when it decodes.
        while let Ok(n @ 1..) = inflater.read(&mut scratch) {
            decoded += n as u64;
            if decoded > limit {
                return Err(StorageError::Other(format!(
                    "'{key}' inflates past the {limit} bytes its chunk holds"
                )));
            }
        }
        Ok(())
    }

    fn check_frame(&self, key: &StoreKey, bytes: &[u8]) -> Result<(), StorageError> {
        // The bound zarrs' zstd codec allocates; `None` when the frames are not complete
        // (zarrs then decodes as a stream, growing its buffer with the output).
        let Some(bound) = zstd::bulk::Decompressor::upper_bound(bytes) else {
            return Ok(());
        };
        let bound = bound as u64;
        let refuse = |what: String| {
            StorageError::Other(format!(
                "the zstd frames of '{key}' declare {bound} decoded bytes, {what}"
            ))
        };
        if let Some(limit) = self.limit.filter(|&l| bound > l) {
            return Err(refuse(format!("more than the {limit} its chunk holds")));
        }
        check_memory(bound, "decoding it").map_err(|e| refuse(e.to_string()))
    }
}

impl ReadableStorageTraits for SizeGuard {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        let Some(values) = self
            .inner
            .get_partial_many(key, Box::new(ranges.clone().into_iter()))?
        else {
            return Ok(None);
        };
        let checked: Vec<Result<Bytes, StorageError>> = values
            .zip(ranges)
            .map(|(value, range)| {
                let value = value?;
                self.check(key, &range, &value)?;
                Ok(value)
            })
            .collect();
        Ok(Some(Box::new(checked.into_iter())))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layouts_follow_the_codecs() {
        let codecs = |v: Value| v.as_array().unwrap().clone();
        let plain = codecs(json!([{"name": "bytes"}, {"name": "zstd"}, {"name": "crc32c"}]));
        assert_eq!(v3_layout(&plain, None), ZstdLayout::Values);
        let gzip = codecs(json!([{"name": "bytes"}, {"name": "gzip"}]));
        assert_eq!(v3_layout(&gzip, None), ZstdLayout::None);
        let inside = codecs(json!([{"name": "bytes"}, {"name": "zstd"}, {"name": "gzip"}]));
        assert!(matches!(v3_layout(&inside, None), ZstdLayout::Unchecked(_)));
        let sharded = codecs(json!([{"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2],
            "codecs": [{"name": "bytes"}, {"name": "zstd"}],
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}}]));
        assert_eq!(
            v3_layout(&sharded, Some(4)),
            ZstdLayout::InnerChunks {
                count: 4,
                index_at_end: true,
                index_crc: true
            }
        );
    }
}
