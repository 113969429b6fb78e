//! A guard between `zarrs` and the store against values that decode past their chunk's size.
//!
//! A compressed value says little or nothing true about what it decodes to: `zarrs`
//! decompresses a zstd frame into a buffer of the size its header declares (a 50-byte frame
//! declaring a petabyte makes that allocation fail, which aborts the process), blosc allocates
//! what its header declares, and gzip and zlib inflate into a growing buffer (deflate expands
//! up to 1032-fold, a few megabytes into gigabytes). The guard wraps the store `zarrs` reads
//! from and checks every compressed value against the decoded size of one (inner) chunk before
//! `zarrs` sees it: zstd frames and blosc headers by what they declare, gzip and zlib values by
//! inflating them once, counting, when they could inflate far past it. For a sharded array a
//! whole shard is checked inner chunk by inner chunk through its index.
//!
//! That works where each compressed value is one (inner) chunk and nothing decodes it further
//! into more bytes: chains of one compressor, last but for a checksum, after filters that do
//! not change the size (shuffle, delta) or that encode strings. Other chains (two
//! compressors, a compressor around shards or before another codec, nested shards, filters of
//! other sizes) are refused on read, naming why: anndata writes none of them.

use serde_json::Value;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    Bytes, MaybeBytesIterator, ReadableStorage, ReadableStorageTraits, StorageError, StoreKey,
};

/// A compressor of chunk values whose decoded size the guard checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compressor {
    Zstd,
    Blosc,
    Gzip,
    Zlib,
}

impl Compressor {
    /// The compressor a codec (v3, also under numcodecs' names: `numcodecs.zlib`) or filter /
    /// compressor id (v2) names, if it is one.
    fn of(name: &str) -> Option<Compressor> {
        match bare(name) {
            "zstd" => Some(Compressor::Zstd),
            "blosc" => Some(Compressor::Blosc),
            "gzip" => Some(Compressor::Gzip),
            "zlib" => Some(Compressor::Zlib),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compressor::Zstd => "zstd",
            Compressor::Blosc => "blosc",
            Compressor::Gzip => "gzip",
            Compressor::Zlib => "zlib",
        }
    }
}

/// Where an array's compressed values are, as far as the guard needs to know.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Layout {
    /// No compressor: a value holds what it decodes to.
    Plain,
    /// Each stored value is one chunk, compressed.
    Values(Compressor),
    /// Each stored value is a shard whose inner chunks are compressed.
    InnerChunks {
        compressor: Compressor,
        /// Inner chunks per shard.
        count: u64,
        /// Whether the shard index is at the end (else the start).
        index_at_end: bool,
        /// Whether the index carries a crc32c checksum.
        index_crc: bool,
    },
    /// A chain the guard cannot check: refused on read, naming why.
    Unchecked(String),
}

/// Codecs that leave what the compressor after them decodes to the chunk's size (a checksum
/// adds [`CHECKSUM_BYTES`]), or that encode strings (whose decoded size is bounded
/// separately): v3 array-to-bytes codecs, v2 filters, numcodecs' under their bare names.
const SIZE_KEEPING: &[&str] = &[
    "bytes",
    "vlen-utf8",
    "vlen-bytes",
    "shuffle",
    "delta",
    "transpose",
    "crc32c",
];

/// What checksums inside a compressor may add to the chunk it decodes to.
const CHECKSUM_BYTES: u64 = 64;

/// A codec's name without the `numcodecs.` prefix zarr-python 3 gives numcodecs' codecs.
fn bare(name: &str) -> &str {
    name.strip_prefix("numcodecs.").unwrap_or(name)
}

/// The compressor of a chain of codecs (`names`, in encoding order; v2: the filters, then the
/// compressor): `Ok(None)` with none, `Err` naming why a chain cannot be checked.
fn compressor_of(names: &[&str]) -> Result<Option<Compressor>, String> {
    let mut found = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Compressor::of(n).map(|c| (i, c)));
    let Some((at, compressor)) = found.next() else {
        return Ok(None);
    };
    let c = compressor.name();
    if let Some((_, other)) = found.next() {
        return Err(format!(
            "chunks compressed twice ({c}, then {}): annpage cannot bound what they decode to",
            other.name()
        ));
    }
    if let Some(after) = names[at + 1..].iter().find(|n| bare(n) != "crc32c") {
        return Err(format!("{c}-compressed chunks inside the codec '{after}'"));
    }
    if let Some(before) = names[..at]
        .iter()
        .find(|n| !SIZE_KEEPING.contains(&bare(n)))
    {
        return Err(format!(
            "{c}-compressed chunks after the codec '{before}', which changes their size: \
             annpage cannot bound what they decode to"
        ));
    }
    Ok(Some(compressor))
}

fn names(codecs: &[Value]) -> Vec<&str> {
    codecs
        .iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or("?"))
        .collect()
}

/// The layout of a v2 array's compressed values, from its filters and compressor.
pub(crate) fn v2_layout(filters: &[&str], compressor: Option<&str>) -> Layout {
    let chain: Vec<&str> = filters.iter().copied().chain(compressor).collect();
    whole_values(&chain)
}

/// The layout of an array whose stored values are whole chunks encoded by `chain`.
fn whole_values(chain: &[&str]) -> Layout {
    match compressor_of(chain) {
        Ok(Some(c)) => Layout::Values(c),
        Ok(None) => Layout::Plain,
        Err(why) => Layout::Unchecked(why),
    }
}

/// The layout of a v3 array's compressed values, from its codecs; `per_shard` is the number
/// of inner chunks a shard holds when the array is sharded.
pub(crate) fn v3_layout(codecs: &[Value], per_shard: Option<u64>) -> Layout {
    let top = names(codecs);
    let Some(sharding) = codecs
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("sharding_indexed"))
    else {
        return whole_values(&top);
    };
    let unchecked = |why: &str| Layout::Unchecked(why.to_owned());
    if top.iter().any(|n| Compressor::of(n).is_some()) {
        return unchecked("compressed shards: annpage cannot bound what they decode to");
    }
    let config = sharding.get("configuration");
    let field = |name: &str| config.and_then(|c| c.get(name));
    let inner: &[Value] = field("codecs").and_then(Value::as_array).map_or(&[], |v| v);
    let inner_names = names(inner);
    if inner_names.contains(&"sharding_indexed") {
        return unchecked("nested shards");
    }
    let compressor = match compressor_of(&inner_names) {
        Ok(Some(c)) => c,
        Ok(None) => return Layout::Plain,
        Err(why) => return Layout::Unchecked(why),
    };
    let index: &[Value] = field("index_codecs")
        .and_then(Value::as_array)
        .map_or(&[], |v| v);
    let little = index
        .first()
        .and_then(|c| c.pointer("/configuration/endian"))
        .is_none_or(|e| e == "little");
    let index_crc = match names(index)[..] {
        ["bytes"] => false,
        ["bytes", "crc32c"] => true,
        _ => {
            return unchecked(
                "compressed chunks in shards whose index is encoded with other codecs",
            )
        }
    };
    if !little {
        return unchecked("compressed chunks in shards whose index is big-endian");
    }
    Layout::InnerChunks {
        compressor,
        count: per_shard.unwrap_or(1),
        index_at_end: field("index_location").and_then(Value::as_str) != Some("start"),
        index_crc,
    }
}

/// How far past its chunk a gzip or zlib value may inflate unchecked: a value too short to
/// inflate further is not inflated twice. Per chunk: `zarrs` decodes chunks on several
/// threads at once.
const INFLATE_SLACK: u64 = 1 << 20;

/// The bytes a chunk of strings may decode to, per string (beyond its length's bytes), before
/// [`STRINGS_SLACK`] is added: strings have no fixed size, so a chunk of `n` may decode to at
/// most `n * (8 + STRING_BYTES) + STRINGS_SLACK` bytes.
const STRING_BYTES: u64 = 256;

/// What a chunk of strings may decode to beyond [`STRING_BYTES`] a string (the rule of HDF5
/// chunks whose room is small: 64 MiB).
const STRINGS_SLACK: u64 = 64 << 20;

/// The most bytes one compressed value of a chunk of `values` values may decode to: `elem`
/// bytes each for values of a fixed size (`Some`), else (strings) see [`STRING_BYTES`].
pub(crate) fn decoded_limit(values: u64, elem: Option<u64>) -> u64 {
    match elem {
        Some(elem) => values.saturating_mul(elem),
        None => values
            .saturating_mul(8 + STRING_BYTES)
            .saturating_add(STRINGS_SLACK),
    }
}

/// A store that checks what compressed values decode to before `zarrs` decodes them (see the
/// module docs).
pub(crate) struct SizeGuard {
    inner: ReadableStorage,
    layout: Layout,
    /// The most bytes one compressed (inner) chunk may decode to.
    limit: u64,
}

impl SizeGuard {
    /// Wraps `inner` for an array with `layout`, whose compressed (inner) chunks decode to at
    /// most `limit` bytes ([`decoded_limit`]).
    pub(crate) fn wrap(inner: ReadableStorage, layout: Layout, limit: u64) -> ReadableStorage {
        if matches!(layout, Layout::Plain | Layout::Unchecked(_)) {
            return inner;
        }
        std::sync::Arc::new(SizeGuard {
            inner,
            layout,
            limit,
        })
    }

    fn check(&self, key: &StoreKey, range: &ByteRange, bytes: &[u8]) -> Result<(), StorageError> {
        let whole = *range == ByteRange::FromStart(0, None);
        match self.layout {
            Layout::InnerChunks {
                compressor,
                count,
                index_at_end,
                index_crc,
            } => {
                let index_len =
                    count
                        .saturating_mul(16)
                        .saturating_add(if index_crc { 4 } else { 0 });
                let len = bytes.len() as u64;
                if !whole {
                    // An inner chunk read alone, or the index: no compressor takes the index
                    // for its value (checked below), and an inner chunk is checked.
                    return self.check_value(compressor, key, bytes);
                }
                if index_len > len {
                    return Ok(()); // Not a shard zarrs can decode: it reports that itself.
                }
                let start = if index_at_end { len - index_len } else { 0 } as usize;
                let index = &bytes[start..start + (count as usize) * 16];
                for entry in index.chunks_exact(16) {
                    let offset = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
                    let size = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
                    let end = offset.checked_add(size).filter(|&e| e <= len);
                    if let Some(end) = end {
                        self.check_value(compressor, key, &bytes[offset as usize..end as usize])?;
                    }
                }
                Ok(())
            }
            // zarrs reads whole compressed values (a part of a gzip, zlib or blosc value is no
            // value to check; zstd's bound is checked on whatever is read).
            Layout::Values(c) if whole || c == Compressor::Zstd => self.check_value(c, key, bytes),
            _ => Ok(()),
        }
    }

    /// Checks one compressed (inner) chunk against the limit. A value the compressor would
    /// not take for its own (corrupt, or a shard's index read alone) passes: `zarrs` refuses
    /// it without decoding anything.
    fn check_value(&self, c: Compressor, key: &StoreKey, bytes: &[u8]) -> Result<(), StorageError> {
        let limit = self.limit;
        // What the checked codecs may decode to: the chunk, and the checksums inside them.
        let allowed = limit.saturating_add(CHECKSUM_BYTES);
        let past = |what: &str| {
            StorageError::Other(format!(
                "'{key}' {what}, more than the {limit} bytes its chunk holds"
            ))
        };
        match c {
            Compressor::Zstd => match zstd::bulk::Decompressor::upper_bound(bytes) {
                // What zarrs allocates for the frames.
                Some(bound) if bound as u64 > allowed => Err(past(&format!(
                    "holds zstd frames declaring {bound} decoded bytes"
                ))),
                Some(_) => Ok(()),
                // Frames without a bound: zarrs decodes them as a stream, growing its buffer.
                None => match zstd::stream::read::Decoder::new(bytes) {
                    Ok(decoder) => {
                        count_decoded(decoder, allowed, || past("decodes past its chunk"))
                    }
                    Err(_) => Ok(()),
                },
            },
            Compressor::Blosc => {
                // A blosc header: decoded size (bytes 4..8), which blosc allocates, and the
                // value's own size (12..16; blosc refuses a value of another size).
                let word = |at: usize| {
                    bytes
                        .get(at..at + 4)
                        .map(|b| u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))))
                };
                match (word(4), word(12)) {
                    (Some(n), Some(own)) if own == bytes.len() as u64 && n > allowed => Err(past(
                        &format!("has a blosc header declaring {n} decoded bytes"),
                    )),
                    _ => Ok(()),
                }
            }
            Compressor::Gzip | Compressor::Zlib => {
                if (bytes.len() as u64).saturating_mul(1032) <= limit.saturating_add(INFLATE_SLACK)
                {
                    return Ok(()); // Whatever it holds, it cannot inflate far past its chunk.
                }
                let past = || past("inflates past its chunk");
                if c == Compressor::Gzip {
                    count_decoded(flate2::read::GzDecoder::new(bytes), allowed, past)
                } else {
                    count_decoded(flate2::read::ZlibDecoder::new(bytes), allowed, past)
                }
            }
        }
    }
}

/// Decodes `decoder` into a scratch buffer, counting: `past()` once it passes `limit` bytes. A
/// read error is corrupt data, which `zarrs` reports when it decodes.
fn count_decoded(
    mut decoder: impl std::io::Read,
    limit: u64,
    past: impl Fn() -> StorageError,
) -> Result<(), StorageError> {
    let mut scratch = vec![0u8; 64 << 10];
    let mut decoded = 0u64;
    while let Ok(n @ 1..) = decoder.read(&mut scratch) {
        decoded += n as u64;
        if decoded > limit {
            return Err(past());
        }
    }
    Ok(())
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

    fn codecs(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    #[test]
    fn layouts_follow_the_codecs() {
        let plain = codecs(json!([{"name": "bytes"}, {"name": "zstd"}, {"name": "crc32c"}]));
        assert_eq!(v3_layout(&plain, None), Layout::Values(Compressor::Zstd));
        let gzip = codecs(json!([{"name": "bytes"}, {"name": "gzip"}]));
        assert_eq!(v3_layout(&gzip, None), Layout::Values(Compressor::Gzip));
        let none = codecs(json!([{"name": "bytes"}]));
        assert_eq!(v3_layout(&none, None), Layout::Plain);
        let sharded = codecs(json!([{"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2],
            "codecs": [{"name": "bytes"}, {"name": "gzip"}],
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}}]));
        assert_eq!(
            v3_layout(&sharded, Some(4)),
            Layout::InnerChunks {
                compressor: Compressor::Gzip,
                count: 4,
                index_at_end: true,
                index_crc: true
            }
        );
        assert_eq!(
            v2_layout(&["vlen-utf8"], Some("zlib")),
            Layout::Values(Compressor::Zlib)
        );
        assert_eq!(v2_layout(&["shuffle"], None), Layout::Plain);
    }

    #[test]
    fn chains_the_guard_cannot_bound_are_refused() {
        let refused = |l: Layout, what: &str| match l {
            Layout::Unchecked(why) => assert!(why.contains(what), "{why}"),
            other => panic!("{other:?} accepted, expected a refusal naming {what}"),
        };
        let twice = codecs(json!([{"name": "bytes"}, {"name": "gzip"}, {"name": "gzip"}]));
        refused(v3_layout(&twice, None), "compressed twice");
        let inside = codecs(json!([{"name": "bytes"}, {"name": "zstd"}, {"name": "gzip"}]));
        refused(v3_layout(&inside, None), "compressed twice");
        let around = codecs(json!([{"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2], "codecs": [{"name": "bytes"}],
            "index_codecs": [{"name": "bytes"}]}}, {"name": "gzip"}]));
        refused(v3_layout(&around, Some(2)), "compressed shards");
        refused(v2_layout(&["zstd"], Some("zlib")), "compressed twice");
        refused(v2_layout(&["astype"], Some("zlib")), "'astype'");
        // numcodecs' codecs under zarr-python 3's names are known as themselves.
        let numcodecs = codecs(json!([{"name": "bytes"}, {"name": "numcodecs.shuffle"},
            {"name": "crc32c"}, {"name": "numcodecs.zlib"}]));
        assert_eq!(
            v3_layout(&numcodecs, None),
            Layout::Values(Compressor::Zlib)
        );
    }

    #[test]
    fn strings_may_decode_to_more_than_their_count() {
        assert_eq!(decoded_limit(10, Some(4)), 40);
        assert_eq!(decoded_limit(0, None), STRINGS_SLACK);
        assert!(decoded_limit(1_000_000, None) > 1_000_000 * 256);
    }
}
