//! The direct read path on files written by h5py and by annpage: values, threads, refusals.

use std::io::{Seek, SeekFrom, Write};

use hdf5::plist::dataset_create::ChunkOpts;

use super::*;

/// What [`DirectReader::open`] finds for dataset `name` of the file at `path`.
fn open(path: &std::path::Path, name: &str, pool: &WorkerPool) -> DirectOpen {
    let f = hdf5::File::open(path).unwrap();
    DirectReader::open(&f.dataset(name).unwrap(), pool).unwrap()
}

/// A file holding `/v`, 1,000 f64 in gzip chunks of 100.
fn gzip_file() -> (tempfile::TempDir, std::path::PathBuf) {
    gzip_values(1000, 100, ChunkOpts::empty())
}

/// A file holding `/v`, the f64 `0..n` in gzip chunks of `chunk` written with `opts`.
fn gzip_values(n: usize, chunk: usize, opts: ChunkOpts) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.h5");
    let values: Vec<f64> = (0..n).map(|i| i as f64).collect();
    hdf5::File::create(&path)
        .unwrap()
        .new_dataset::<f64>()
        .shape([n])
        .chunk([chunk])
        .deflate(6)
        .chunk_opts(opts)
        .create("v")
        .unwrap()
        .write_raw(&values)
        .unwrap();
    (dir, path)
}

#[test]
fn reads_chunks_in_parallel_and_in_part() {
    let (_dir, path) = gzip_file();
    let r = open(&path, "v", &WorkerPool::new(2)).reader().unwrap();
    assert_eq!(r.read_path().to_string(), "direct (gzip, 2 threads)");
    let cache = Arc::new(crate::paged::BlockCache::new(1 << 20));
    r.use_cache(cache.clone());
    for rows in [0..1000, 150..151, 99..201, 950..1000, 0..0] {
        let expected: Vec<f64> = rows.clone().map(|i| i as f64).collect();
        assert_eq!(r.read_rows(rows).unwrap(), ArrayData::from(expected));
    }
    // Chunks needed in part were kept decoded: 1, 0 and 2 (for 99..201), 9.
    assert_eq!(cache.stats().entries, 4);
    drop(r);
    assert_eq!(
        cache.stats().entries,
        0,
        "closing the reader frees its chunks"
    );
}

#[test]
fn large_reads_borrow_the_pool_s_spare_threads_and_give_them_back() {
    let (_dir, path) = gzip_values(200_000, 10_000, ChunkOpts::empty());
    let values: Vec<f64> = (0..200_000).map(f64::from).collect();
    let pool = WorkerPool::new(4);
    let r = open(&path, "v", &pool).reader().unwrap();
    let whole = ArrayData::from(values);
    // Reads on several threads at once, each borrowing what is free: all equal, and every
    // spare thread back afterwards.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(r.read_rows(0..200_000).unwrap(), whole));
        }
    });
    assert_eq!(pool.spare().free(), 4);
    // With every spare thread lent elsewhere, a read decodes on its own thread alone.
    let all = pool.spare().lease(usize::MAX);
    assert_eq!(r.read_rows(0..200_000).unwrap(), whole);
    drop(all);
    assert_eq!(pool.spare().free(), 4);
}

#[test]
fn unfiltered_partial_edge_chunks_are_left_to_libhdf5() {
    let (_dir, path) = gzip_values(1000, 300, ChunkOpts::DONT_FILTER_PARTIAL_CHUNKS);
    let reason = open(&path, "v", &WorkerPool::new(1)).fallback().unwrap();
    assert!(reason.contains("partial edge chunks"), "{reason}");
}

#[test]
fn reads_into_spare_buffers() {
    let (_dir, path) = gzip_file();
    let r = open(&path, "v", &WorkerPool::new(2)).reader().unwrap();
    let expected = |rows: Range<usize>| ArrayData::from(rows.map(|i| i as f64).collect::<Vec<_>>());
    // A spare with room for 2,000 values holds the 550 read: its vector is the result's.
    let mut spare = Vec::with_capacity(2000);
    spare.resize(700, -1.0f64);
    let got = r
        .read_rows_reusing(50..600, ArrayData::from(spare))
        .unwrap();
    assert_eq!(got, expected(50..600));
    let ArrayData::F64(a) = got else {
        unreachable!()
    };
    assert_eq!(a.into_raw_vec_and_offset().0.capacity(), 2000);
    // Spares too small or of another dtype are not used; the values are the same.
    assert_eq!(
        r.read_rows_reusing(0..1000, ArrayData::from(vec![1.0f64; 10]))
            .unwrap(),
        expected(0..1000)
    );
    assert_eq!(
        r.read_rows_reusing(3..9, ArrayData::from(vec![1i32; 10]))
            .unwrap(),
        expected(3..9)
    );
    assert!(r
        .read_rows_reusing(0..1001, ArrayData::from(vec![0.0f64]))
        .is_err());
}

#[test]
fn writable_files_and_other_filters_go_through_libhdf5() {
    let dir = tempfile::tempdir().unwrap();
    let f = hdf5::File::create(dir.path().join("w.h5")).unwrap();
    let ds = f
        .new_dataset::<f32>()
        .shape([10])
        .chunk([5])
        .nbit()
        .create("sum")
        .unwrap();
    let plain = f.new_dataset::<f32>().shape([10]).create("plain").unwrap();
    assert_eq!(
        DirectReader::open(&plain, &WorkerPool::new(1))
            .unwrap()
            .fallback()
            .unwrap(),
        "the file is open for writing"
    );
    drop((ds, plain, f));
    let reason = open(&dir.path().join("w.h5"), "sum", &WorkerPool::new(1))
        .fallback()
        .unwrap();
    assert_eq!(reason, "filter nbit is decoded by libhdf5");
}

#[test]
fn unwritten_chunks_are_counted_before_any_table_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.h5");
    let f = hdf5::File::create(&path).unwrap();
    // A grid of 2^40 chunks of which none is stored: a table over the grid would not fit.
    f.new_dataset::<f64>()
        .shape([1usize << 50, 4])
        .chunk([1024, 4])
        .create("huge")
        .unwrap();
    let part = f
        .new_dataset::<i32>()
        .shape([100])
        .chunk([10])
        .create("part")
        .unwrap();
    part.write_slice(&[1i32; 10], 0..10).unwrap();
    drop((part, f));
    for name in ["huge", "part"] {
        let reason = open(&path, name, &WorkerPool::new(1)).fallback().unwrap();
        assert!(reason.contains("never written"), "{name}: {reason}");
    }
}

#[test]
fn a_corrupt_chunk_is_an_error_naming_dataset_and_chunk() {
    let (_dir, path) = gzip_file();
    let info = {
        let f = hdf5::File::open(&path).unwrap();
        f.dataset("v").unwrap().chunk_info(3).unwrap()
    };
    let mut raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    raw.seek(SeekFrom::Start(info.addr + 2)).unwrap();
    raw.write_all(&[0xff; 16]).unwrap();
    drop(raw);
    let r = open(&path, "v", &WorkerPool::new(2)).reader().unwrap();
    // Chunks before it read fine; a read touching it fails, naming it.
    assert!(r.read_rows(0..300).is_ok());
    let e = r.read_rows(0..1000).unwrap_err().to_string();
    assert!(e.starts_with("/v: malformed element: chunk 3 ("), "{e}");
    assert!(
        e.contains("is corrupt: deflate stream does not decode"),
        "{e}"
    );
}

#[test]
fn spans_beyond_the_file_are_refused() {
    assert!(chunks::check_span(10, 20, 30, "chunk 0").is_ok());
    let e = chunks::check_span(10, 21, 30, "chunk 7").unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed element: chunk 7 (21 bytes at offset 10) lies beyond the end of the file \
         (30 bytes): the file is truncated or corrupt"
    );
    assert!(chunks::check_span(u64::MAX, 2, u64::MAX, "x").is_err());
}
