//! Corrupt copies of HDF5 files, for the tests of the checks made before libhdf5 reads the
//! global heap.

use std::path::Path;

/// Sets the free space (the last object, index 0) of the global heap collection at `heap` in
/// `b` to 0 bytes, on which libhdf5 2.2 loops forever; in a collection its objects fill, the
/// last object becomes that free space.
pub(super) fn no_free_space(b: &mut [u8], heap: usize) {
    let le = super::heap::le;
    let size = le(&b[heap + 8..heap + 16]) as usize;
    let mut pos = heap + 16;
    while le(&b[pos..pos + 2]) != 0 {
        let last = pos;
        pos += 16 + (le(&b[pos + 8..pos + 16]) as usize).div_ceil(8) * 8;
        if pos + 16 > heap + size {
            b[last..last + 2].fill(0);
            pos = last;
            break;
        }
    }
    b[pos + 8..pos + 16].copy_from_slice(&0u64.to_le_bytes());
}

/// The offsets of the global heap collections in `b` (their signature, `GCOL`).
pub(super) fn collections(b: &[u8]) -> Vec<usize> {
    b.windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"GCOL")
        .map(|(i, _)| i)
        .collect()
}

/// The file at `path` with no free space in any of its collections, written beside it as
/// `corrupt.h5` and opened.
pub(super) fn without_free_space(path: &Path) -> hdf5::File {
    let mut bytes = std::fs::read(path).unwrap();
    for heap in collections(&bytes) {
        no_free_space(&mut bytes, heap);
    }
    written(path, bytes)
}

/// `bytes` written beside `path` as `corrupt.h5` and opened.
pub(super) fn written(path: &Path, bytes: Vec<u8>) -> hdf5::File {
    let copy = path.with_file_name("corrupt.h5");
    std::fs::write(&copy, bytes).unwrap();
    hdf5::File::open(&copy).unwrap()
}
