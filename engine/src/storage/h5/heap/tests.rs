use super::*;
use crate::storage::h5::read::read_array_through_libhdf5;
use crate::testutil::py_file;

/// Strings of every size h5py writes: empty, non-ASCII, larger than a collection (each in
/// a collection of its own), thousands (many collections), 2-d, 3-d, 0-d and ASCII-typed;
/// contiguous, chunked (1-d to 3-d, compressed or not) and compact.
const SCRIPT: &str = "rng = np.random.default_rng(7)\n\
    names = [f'cell_{i}' * int(rng.integers(0, 4)) + ('é' if i % 7 == 0 else '') for i in range(1500)]\n\
    with h5py.File(path, 'w') as f:\n\
    \x20   f.create_dataset('many', data=names, dtype=h5py.string_dtype())\n\
    \x20   f.create_dataset('big', data=['x' * 10000, '', 'y' * 5000, 'z'], dtype=h5py.string_dtype())\n\
    \x20   f.create_dataset('grid', data=[['a', 'bb', ''], ['細胞', 'e', 'f']], dtype=h5py.string_dtype())\n\
    \x20   f.create_dataset('scalar', data='só', dtype=h5py.string_dtype())\n\
    \x20   f.create_dataset('ascii', data=[b'x', b'yz'], dtype=h5py.string_dtype('ascii'))\n\
    \x20   f.create_dataset('gzip', data=names, dtype=h5py.string_dtype(), compression='gzip', chunks=(64,))\n\
    \x20   f.create_dataset('lzf', data=names[:300], dtype=h5py.string_dtype(), compression='lzf')\n\
    \x20   f.create_dataset('chunked', data=names[:70], dtype=h5py.string_dtype(), chunks=(16,))\n\
    \x20   f.create_dataset('roomy', data=names[:10], dtype=h5py.string_dtype(), chunks=(1000,), maxshape=(None,))\n\
    \x20   f.create_dataset('shuffled', data=names[:50], dtype=h5py.string_dtype(), compression='gzip', shuffle=True)\n\
    \x20   f.create_dataset('grid_gzip', data=[['a', 'bb'], ['c', 'd']], dtype=h5py.string_dtype(), compression='gzip')\n\
    \x20   cube = np.array(names[:60], dtype=object).reshape(3, 4, 5)\n\
    \x20   f.create_dataset('cube', data=cube, dtype=h5py.string_dtype(), chunks=(2, 3, 2), compression='gzip')\n\
    \x20   dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)\n\
    \x20   dcpl.set_layout(h5py.h5d.COMPACT)\n\
    \x20   f.create_dataset('compact', data=names[:40], dtype=h5py.string_dtype(), dcpl=dcpl)\n";

fn direct(path: &std::path::Path, name: &str) -> Result<Option<ArrayData>> {
    read_strings(&hdf5::File::open(path)?.dataset(name)?)
}

#[test]
fn reads_what_libhdf5_reads() {
    let (_d, path) = py_file("strings.h5", SCRIPT);
    let f = hdf5::File::open(&path).unwrap();
    let read = ["many", "big", "grid", "scalar", "ascii"];
    let chunked = [
        "gzip",
        "lzf",
        "chunked",
        "roomy",
        "grid_gzip",
        "cube",
        "compact",
        "shuffled",
    ];
    for name in read.into_iter().chain(chunked) {
        let ds = f.dataset(name).unwrap();
        let ours = read_strings(&ds).unwrap().expect("read from the heap");
        assert_eq!(ours, read_array_through_libhdf5(&ds).unwrap(), "{name}");
    }
    // Strings up to 24 bytes are held inline, longer ones in an allocation of their own.
    let many = read_strings(&f.dataset("many").unwrap()).unwrap().unwrap();
    let many = many.as_strings().unwrap();
    assert!(many.iter().any(|s| s.len() > 24));
    assert!(many.iter().all(|s| s.is_heap_allocated() == (s.len() > 24)));
    assert_eq!(direct(&path, "grid").unwrap().unwrap().shape(), &[2, 3]);
    assert_eq!(direct(&path, "gzip").unwrap().unwrap().shape(), &[1500]);
    // Partial chunks at the edges of every axis, placed where they belong.
    assert_eq!(direct(&path, "cube").unwrap().unwrap().shape(), &[3, 4, 5]);
}

#[test]
fn a_file_with_a_user_block_is_read_and_checked_too() {
    // libhdf5's API gives storage offsets from the file's start, its records addresses
    // from the end of the user block.
    let script = SCRIPT.replace(
        "h5py.File(path, 'w')",
        "h5py.File(path, 'w', userblock_size=512)",
    );
    let (_d, path) = py_file("strings.h5", &script);
    let f = hdf5::File::open(&path).unwrap();
    assert_eq!(f.userblock(), 512);
    for name in ["many", "big", "gzip", "cube", "compact", "shuffled"] {
        let ds = f.dataset(name).unwrap();
        let ours = read_strings(&ds).unwrap().expect("read from the heap");
        assert_eq!(ours, read_array_through_libhdf5(&ds).unwrap(), "{name}");
    }
    drop(f);
    let bad = crate::storage::h5::corrupt::without_free_space(&path);
    let err = read_strings(&bad.dataset("many").unwrap()).unwrap_err();
    assert!(err.to_string().contains("free space of 0 bytes"), "{err}");
}

#[test]
fn a_file_open_for_writing_is_read_as_libhdf5_holds_it() {
    let (_d, path) = py_file("strings.h5", SCRIPT);
    let f = hdf5::File::open_rw(&path).unwrap();
    let many = f.dataset("many").unwrap();
    let ours = read_strings(&many).unwrap().expect("read from the heap");
    assert_eq!(ours, read_array_through_libhdf5(&many).unwrap());
    // Strings written through the handle, still in libhdf5's caches: flushed, then read.
    let values = ArrayData::from(vec!["new", "", "strings é"]);
    let options = crate::storage::ArrayOptions::default();
    crate::storage::h5::write::write_array(&f, "fresh", &values, &options).unwrap();
    let fresh = read_strings(&f.dataset("fresh").unwrap()).unwrap();
    assert_eq!(fresh.expect("read from the heap"), values);
    // A corrupt heap is refused in a file open for writing too.
    let (_d, path) = py_file("strings.h5", SCRIPT);
    let bad = crate::storage::h5::corrupt::without_free_space(&path);
    drop(bad);
    let f = hdf5::File::open_rw(path.with_file_name("corrupt.h5")).unwrap();
    let err = read_strings(&f.dataset("many").unwrap()).unwrap_err();
    assert!(err.to_string().contains("free space of 0 bytes"), "{err}");
}

#[test]
fn strings_come_from_the_file_libhdf5_has_open_even_once_replaced() {
    let (dir, path) = py_file("strings.h5", SCRIPT);
    let f = hdf5::File::open(&path).unwrap();
    let ds = f.dataset("many").unwrap();
    let before = read_array_through_libhdf5(&ds).unwrap();
    // Another file of the same size under the same name (an atomic replacement): the
    // same bytes but for the strings, each letter changed.
    let mut bytes = std::fs::read(&path).unwrap();
    let at: Vec<usize> = (0..bytes.len() - 5)
        .filter(|&i| &bytes[i..i + 5] == b"cell_")
        .collect();
    assert!(!at.is_empty());
    for i in at {
        bytes[i..i + 5].copy_from_slice(b"CELL_");
    }
    let other = dir.path().join("other.h5");
    std::fs::write(&other, &bytes).unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert_eq!(read_strings(&ds).unwrap().expect("from the heap"), before);
    let file = crate::storage::h5::same_file(&f).expect("the POSIX driver");
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        file.metadata().unwrap().ino(),
        std::fs::metadata(&path).unwrap().ino()
    );
}

/// A copy of the strings file with `edit` applied to its bytes, given the offset of the
/// stored references of `many` and the offsets of every collection.
fn corrupted(edit: impl FnOnce(&mut Vec<u8>, usize, &[usize])) -> (tempfile::TempDir, String) {
    let (dir, path) = py_file("strings.h5", SCRIPT);
    let refs = hdf5::File::open(&path)
        .unwrap()
        .dataset("many")
        .unwrap()
        .offset()
        .unwrap() as usize;
    let mut bytes = std::fs::read(&path).unwrap();
    let heaps: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == SIGNATURE)
        .map(|(i, _)| i)
        .collect();
    edit(&mut bytes, refs, &heaps);
    std::fs::write(&path, bytes).unwrap();
    let err = direct(&path, "many").expect_err("a corrupt heap is refused");
    (dir, err.to_string())
}

#[test]
fn a_corrupt_chunk_of_references_is_refused_naming_it() {
    let (_d, path) = py_file("strings.h5", SCRIPT);
    let f = hdf5::File::open(&path).unwrap();
    let ds = f.dataset("gzip").unwrap();
    let mut chunk = None;
    ds.chunks_visit(|info| {
        if info.offset[0] == 128 {
            chunk = Some((info.addr, info.size));
        }
        0
    })
    .unwrap();
    drop((ds, f));
    let (addr, size) = chunk.expect("the third chunk");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = (addr + size / 2) as usize;
    bytes[at..at + 8].copy_from_slice(&[0xff; 8]);
    std::fs::write(&path, bytes).unwrap();
    let err = direct(&path, "gzip").unwrap_err().to_string();
    assert!(err.contains("chunk 2"), "{err}");
}

#[test]
fn references_claiming_more_than_the_file_together_are_refused() {
    // 3,000 one-letter strings, then one of 100,000 bytes, in an attribute.
    let (_d, path) = py_file(
        "attr.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   f.attrs.create('many', data=['a'] * 3000 + ['y' * 100000], dtype=h5py.string_dtype())\n",
    );
    let read = |path: &std::path::Path| {
        let f = hdf5::File::open(path).unwrap();
        crate::storage::h5::read::read_attr(&f, "many")
    };
    assert_eq!(read(&path).unwrap().len(), 3001);
    // Every reference made the last one's: 300 MB of strings from a file of ~200 KB.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes
        .windows(4)
        .position(|w| w == 100_000u32.to_le_bytes())
        .expect("the long string's reference");
    let one = bytes[last..last + 16].to_vec();
    for k in 1..=3000 {
        let at = last - 16 * k;
        assert_eq!(
            &bytes[at..at + 4],
            &1u32.to_le_bytes(),
            "a one-letter string"
        );
        bytes[at..at + 16].copy_from_slice(&one);
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = read(&path).unwrap_err().to_string();
    assert!(
        err.contains("its strings claim 300100000 bytes, more than the file's"),
        "{err}"
    );
}

#[test]
fn corrupt_heaps_are_refused_with_clear_errors() {
    let (_d, err) = corrupted(|b, _, heaps| {
        for &h in heaps {
            b[h] = b'X';
        }
    });
    assert!(err.contains("no global heap collection"), "{err}");
    // A collection claiming more bytes than the file has.
    let (_d, err) = corrupted(|b, _, heaps| {
        b[heaps[0] + 8..heaps[0] + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    });
    assert!(
        err.contains("claims") || err.contains("past the end"),
        "{err}"
    );
    // A string longer than the file: refused before anything is sized from it.
    let (_d, err) = corrupted(|b, refs, _| {
        b[refs..refs + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    assert!(err.contains("more than the file"), "{err}");
    // A string longer than its object.
    let (_d, err) = corrupted(|b, refs, _| {
        let k = 16 * 3; // 'cell_3…': not empty.
        b[refs + k..refs + k + 4].copy_from_slice(&4000u32.to_le_bytes());
    });
    assert!(err.contains("its global heap object holds"), "{err}");
    // A string shorter than its object: libhdf5 refuses it too.
    let (d, err) = corrupted(|b, refs, _| {
        let k = 16 * 3;
        b[refs + k..refs + k + 4].copy_from_slice(&2u32.to_le_bytes());
    });
    assert!(
        err.contains("claims 2 bytes, its global heap object holds"),
        "{err}"
    );
    let libhdf5 = hdf5::File::open(d.path().join("strings.h5"))
        .and_then(|f| f.dataset("many"))
        .and_then(|ds| ds.read_raw::<hdf5::types::VarLenUnicode>());
    assert!(libhdf5.is_err(), "libhdf5 read it");
    // An object the collection does not have.
    let (_d, err) = corrupted(|b, refs, _| {
        let k = 16 * 3;
        b[refs + k + 12..refs + k + 16].copy_from_slice(&60000u32.to_le_bytes());
    });
    assert!(err.contains("which has none"), "{err}");
    // A reference into the middle of the file.
    let (_d, err) = corrupted(|b, refs, _| {
        let k = 16 * 3;
        b[refs + k + 4..refs + k + 12].copy_from_slice(&(refs as u64 + 1).to_le_bytes());
    });
    assert!(err.contains("no global heap collection"), "{err}");
}
