//! Reading anndata's default Zarr layout directly: values, refusals, rewritten shards.

use std::path::{Path, PathBuf};

use super::*;
use crate::data::ArrayData;
use crate::storage::zarr::store::Store;
use crate::storage::zarr::write::create;
use crate::storage::{ArrayOptions, ZarrCompression, ZarrFormat, ZarrOptions};

/// A v3 store holding `v`: 1,050 i32 (10 × i) in zstd inner chunks of 100, shards of 400
/// (the last shard short, its last inner chunk padded), laid out as anndata writes X.
fn store(dir: &Path) -> PathBuf {
    store_of(dir, |i| 10 * i)
}

fn store_of(dir: &Path, value: impl Fn(i32) -> i32) -> PathBuf {
    let options = ZarrOptions {
        chunk_rows: Some(100),
        shard_rows: Some(400),
        compression: Some(ZarrCompression::Zstd(3)),
        ..ZarrOptions::unsharded(ZarrFormat::V3)
    };
    let path = dir.join("s.zarr");
    let root = create(&path, &options).unwrap();
    let v: Vec<i32> = (0..1050).map(value).collect();
    root.write_array("v", &ArrayData::from(v), &ArrayOptions::default())
        .unwrap();
    drop(root);
    path
}

fn reader(path: &Path) -> ShardedZstd {
    let doc: Value =
        serde_json::from_slice(&std::fs::read(path.join("v/zarr.json")).unwrap()).unwrap();
    let layout = layout(&doc, 4).expect("the default layout");
    let store = Store::open(path).unwrap();
    ShardedZstd::new(&store, "v/".into(), layout)
}

fn read(r: &ShardedZstd, rows: Range<u64>) -> Result<Option<Vec<i32>>> {
    let mut out = vec![0u8; (rows.end - rows.start) as usize * 4];
    Ok(r.read_into(rows, &mut out)?.then(|| {
        out.chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }))
}

#[test]
fn a_read_over_more_shards_than_it_holds_open_reads_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let options = ZarrOptions {
        chunk_rows: Some(5),
        shard_rows: Some(10),
        compression: Some(ZarrCompression::Zstd(3)),
        ..ZarrOptions::unsharded(ZarrFormat::V3)
    };
    let path = dir.path().join("many.zarr");
    let root = create(&path, &options).unwrap();
    let n = 10 * (2 * OPEN_SHARDS as i32 + 3);
    let v: Vec<i32> = (0..n).map(|i| 3 * i).collect();
    root.write_array("v", &ArrayData::from(v.clone()), &ArrayOptions::default())
        .unwrap();
    drop(root);
    let r = reader(&path);
    assert_eq!(read(&r, 0..n as u64).unwrap().unwrap(), v);
    assert_eq!(
        read(&r, 7..n as u64 - 3).unwrap().unwrap(),
        v[7..v.len() - 3]
    );
}

#[test]
fn reads_every_kind_of_range_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let r = reader(&store(dir.path()));
    for rows in [
        0..1050,
        0..1,
        99..101,
        100..200,
        350..450,
        399..801,
        1000..1050,
        1049..1050,
        7..7,
    ] {
        let want: Vec<i32> = rows.clone().map(|i| 10 * i as i32).collect();
        assert_eq!(read(&r, rows.clone()).unwrap(), Some(want), "{rows:?}");
    }
    let mut small = vec![0u8; 3];
    assert!(r.read_into(0..1, &mut small).is_err());
    assert!(r.read_into(1000..1051, &mut vec![0u8; 51 * 4]).is_err());
    // The array reader takes this path for the layout, with the same values.
    let root = crate::storage::zarr::open(&dir.path().join("s.zarr")).unwrap();
    let v = root.array("v").unwrap();
    let mut out = vec![0u8; 20 * 4];
    v.read_rows_into(390..410, &mut out).unwrap();
    assert_eq!(i32::from_le_bytes(out[..4].try_into().unwrap()), 3900);
    let reader = crate::paged::StoreReader::new(v).unwrap();
    assert_eq!(
        crate::paged::RangeReader::read_path(&reader),
        crate::paged::ReadPath::Shards
    );
}

#[test]
fn a_shard_rewritten_since_its_index_was_kept_is_read_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let r = reader(&path);
    assert_eq!(read(&r, 0..2).unwrap(), Some(vec![0, 10]));
    // Shard 0 replaced by one of other values (another length).
    let other = tempfile::tempdir().unwrap();
    let new = store_of(other.path(), |i| i * i * 7 + 3).join("v/c/0");
    let old = path.join("v/c/0");
    assert_ne!(
        std::fs::metadata(&new).unwrap().len(),
        std::fs::metadata(&old).unwrap().len()
    );
    std::fs::copy(&new, &old).unwrap();
    assert_eq!(read(&r, 0..3).unwrap(), Some(vec![3, 10, 31]));
}

#[test]
fn a_shard_replaced_by_one_of_the_same_length_is_read_anew() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let r = reader(&path);
    let want: Vec<i32> = (0..200).map(|i| 10 * i).collect();
    assert_eq!(read(&r, 0..200).unwrap().as_ref(), Some(&want));
    // Shard 0 with its first two frames swapped and its index rewritten to match: the same
    // length and values, the frames at other offsets. Written beside it, then renamed over it.
    let (file, bytes, at) = shard0(&path);
    let word = |w: usize| u64::from_le_bytes(bytes[at + 8 * w..at + 8 * w + 8].try_into().unwrap());
    let [o0, n0, o1, n1] = [0, 1, 2, 3].map(|w| word(w) as usize);
    assert_eq!(o0 + n0, o1, "frames stored in order");
    let mut swapped = bytes.clone();
    swapped[o0..o0 + n1].copy_from_slice(&bytes[o1..o1 + n1]);
    swapped[o0 + n1..o1 + n1].copy_from_slice(&bytes[o0..o0 + n0]);
    for (w, value) in [(0, o0 + n1), (1, n0), (2, o0), (3, n1)] {
        swapped[at + 8 * w..at + 8 * w + 8].copy_from_slice(&(value as u64).to_le_bytes());
    }
    let end = swapped.len();
    let crc = crc32c::crc32c(&swapped[at..end - 4]);
    swapped[end - 4..].copy_from_slice(&crc.to_le_bytes());
    let beside = file.with_extension("new");
    std::fs::write(&beside, &swapped).unwrap();
    std::fs::rename(&beside, &file).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().len() as usize,
        bytes.len()
    );
    assert_eq!(read(&r, 0..200).unwrap(), Some(want));
}

/// Shard 0's file, its index and where its first frame is.
fn shard0(path: &Path) -> (PathBuf, Vec<u8>, usize) {
    let file = path.join("v/c/0");
    let bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - (4 * 16 + 4);
    (file, bytes, at)
}

#[test]
fn refuses_corrupt_shards_and_leaves_absent_ones_to_zarrs() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let (file, good, at) = shard0(&path);
    let err = |bytes: &[u8]| {
        std::fs::write(&file, bytes).unwrap();
        read(&reader(&path), 0..400).unwrap_err().to_string()
    };
    // An index that does not match its checksum.
    let mut bad = good.clone();
    bad[at + 3] ^= 0xff;
    assert!(err(&bad).contains("checksum"), "{}", err(&bad));
    // The shard with word `w` of its index set to `value`, the checksum recomputed.
    let with_word = |w: usize, value: u64| {
        let mut bytes = good.clone();
        bytes[at + 8 * w..at + 8 * w + 8].copy_from_slice(&value.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[at..at + 64]);
        let end = bytes.len();
        bytes[end - 4..].copy_from_slice(&crc.to_le_bytes());
        bytes
    };
    // An entry claiming more bytes than any frame of a chunk.
    let lying = with_word(1, 1 << 40);
    assert!(
        err(&lying).contains("exceeds any zstd frame"),
        "{}",
        err(&lying)
    );
    // An entry pointing beyond the end of its shard.
    let beyond = with_word(0, 1 << 40);
    assert!(
        err(&beyond).contains("beyond its shard"),
        "{}",
        err(&beyond)
    );
    // A frame whose bytes are garbage.
    let mut garbage = good.clone();
    garbage[..8].copy_from_slice(&[0xde; 8]);
    assert!(
        err(&garbage).contains("cannot be decoded"),
        "{}",
        err(&garbage)
    );
    // A shard cut short: its index is read from what is left, which does not check.
    assert!(!err(&good[..good.len() / 2]).is_empty());
    // An absent shard (its values are the fill value): left to zarrs.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(read(&reader(&path), 0..10).unwrap(), None);
    assert_eq!(read(&reader(&path), 400..410).unwrap().unwrap()[0], 4000);
}

#[test]
fn only_the_default_layout_is_read_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let doc: Value =
        serde_json::from_slice(&std::fs::read(path.join("v/zarr.json")).unwrap()).unwrap();
    assert!(layout(&doc, 4).is_some());
    assert!(layout(&doc, 3).is_none());
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        layout(&d, 4)
    };
    fn sharding(d: &mut Value) -> &mut Value {
        &mut d["codecs"][0]["configuration"]
    }
    assert!(edit(&|d| sharding(d)["index_location"] = "start".into()).is_none());
    assert!(
        edit(&|d| sharding(d)["codecs"][0]["configuration"]["endian"] = "big".into()).is_none()
    );
    assert!(edit(&|d| sharding(d)["codecs"][1]["name"] = "gzip".into()).is_none());
    assert!(edit(&|d| d["shape"] = serde_json::json!([1050, 2])).is_none());
    assert!(edit(&|d| d["chunk_key_encoding"]["name"] = "v2".into()).is_none());
    assert!(edit(&|d| d["zarr_format"] = 2.into()).is_none());
    // Inner chunks too large to decode here (zarrs checks them against memory).
    let huge = |d: &mut Value| {
        d["shape"] = serde_json::json!([1u64 << 40]);
        d["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([1u64 << 40]);
        sharding(d)["chunk_shape"] = serde_json::json!([1u64 << 30]);
    };
    assert!(edit(&huge).is_none());
}

/// Replaces the file at `key` of the store with a FIFO, which no one writes to.
fn fifo(path: &Path, key: &str) {
    let file = path.join(key);
    std::fs::remove_file(&file).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&file).status();
    assert!(made.unwrap().success(), "mkfifo {}", file.display());
}

#[test]
fn a_fifo_in_a_directory_store_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = store(dir.path());
    let not_regular = |e: Error| {
        let msg = e.to_string();
        assert!(msg.contains("is not a regular file (a FIFO"), "{msg}");
    };
    // A shard: read by this module, and by `zarrs` for a whole-array read.
    fifo(&path, "v/c/1");
    not_regular(read(&reader(&path), 400..800).unwrap_err());
    let root = crate::storage::zarr::open(&path).unwrap();
    not_regular(root.array("v").unwrap().read().unwrap_err());
    // A metadata document.
    fifo(&path, "v/zarr.json");
    let root = crate::storage::zarr::open(&path).unwrap();
    not_regular(root.array("v").map(drop).unwrap_err());
}
