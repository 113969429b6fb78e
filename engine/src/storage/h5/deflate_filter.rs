//! The deflate filter of the bundled libhdf5, replaced by one whose output is bounded.
//!
//! libhdf5's own deflate filter doubles its output buffer until the zlib stream ends, however
//! long that takes: a chunk of a few megabytes that inflates to gigabytes (a deflate stream can
//! expand about a thousand times) made every whole read through libhdf5 allocate them before
//! libhdf5 found the chunk the wrong size. The filter installed here decodes with libdeflate
//! into at most the buffer libhdf5 hands over — for a dataset chunk that buffer already holds
//! the chunk's decoded size — or, when that buffer is smaller, [`FLOOR`] bytes, and fails past
//! that. Compression is libdeflate's zlib format at the dataset's level, which every zlib
//! reader decodes.
//!
//! The bundled libhdf5 belongs to annpage alone (its symbols are private to the binaries and the
//! Python module), so replacing a filter there changes nothing for h5py in the same process.

use std::ffi::{c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use hdf5_sys::h5::herr_t;
use hdf5_sys::h5::{H5allocate_memory, H5free_memory};
use hdf5_sys::h5z::{H5Z_class2_t, H5Z_CLASS_T_VERS, H5Z_FILTER_DEFLATE, H5Z_FLAG_REVERSE};
use libdeflater::{CompressionLvl, Compressor, DecompressionError, Decompressor};

use crate::{Error, Result};

/// The output a stream may reach when libhdf5's buffer is smaller (the chunk is stored larger
/// than it decodes, or the caller is not a dataset chunk).
pub(crate) const FLOOR: usize = 64 << 20;

const NAME: &[u8] = b"deflate (annpage, bounded)\0";

// A constant reference: promoted to a `'static` value (a `static` of raw pointers is not `Sync`).
const CLASS: &H5Z_class2_t = &H5Z_class2_t {
    version: H5Z_CLASS_T_VERS as _,
    id: H5Z_FILTER_DEFLATE,
    encoder_present: 1,
    decoder_present: 1,
    name: NAME.as_ptr().cast(),
    can_apply: None,
    set_local: None,
    filter: Some(filter),
};

extern "C" {
    /// libhdf5's own registration (`H5Zprivate.h`): unlike the public `H5Zregister`, which
    /// refuses to touch the predefined filters, it replaces the class registered under the
    /// same id. The workspace links the libhdf5 it builds statically (`hdf5-metno-src`), which
    /// exports it; another libhdf5 would fail to link rather than run without the bound.
    fn H5Z_register(cls: *const H5Z_class2_t) -> herr_t;
}

/// Replaces libhdf5's deflate filter with the bounded one, once per process; later calls return
/// the first call's outcome.
pub(crate) fn install() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            hdf5::sync::sync(|| {
                // SAFETY: `sync` has initialised libhdf5 and holds its lock, as every libhdf5
                // call here does; `CLASS` is a complete `'static` filter class of the layout
                // `H5Z_register` copies (`H5Z_class2_t`, version `H5Z_CLASS_T_VERS`), with an
                // id in range and a filter function, and its name a NUL-terminated `'static`
                // string.
                let status = unsafe { H5Z_register(CLASS) };
                if status < 0 {
                    Err("libhdf5 refused the bounded deflate filter".to_string())
                } else {
                    Ok(())
                }
            })
        })
        .clone()
        .map_err(Error::Unsupported)
}

/// libhdf5's filter entry point: `*buf` holds `nbytes` bytes of a buffer of `*buf_size`
/// bytes; on success it is replaced by the result's buffer and the result's length is returned,
/// 0 on failure (libhdf5 then reports the filter as failed).
///
/// # Safety
/// libhdf5 calls it with `*buf` a buffer of its allocator holding at least `nbytes` readable
/// bytes and `cd_values` pointing at `cd_nelmts` values.
unsafe extern "C" fn filter(
    flags: c_uint,
    cd_nelmts: usize,
    cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut c_void,
) -> usize {
    // SAFETY: libhdf5 passes a valid pointer to its buffer's pointer.
    if unsafe { (*buf).is_null() } {
        return 0;
    }
    // SAFETY: as this function's contract states, `*buf` holds `nbytes` initialised bytes.
    let input = unsafe { std::slice::from_raw_parts((*buf).cast::<u8>(), nbytes) };
    let level = if cd_nelmts >= 1 && !cd_values.is_null() {
        // SAFETY: `cd_values` points at `cd_nelmts` ≥ 1 values.
        unsafe { *cd_values }
    } else {
        4
    };
    // SAFETY: libhdf5 passes a valid pointer to the buffer's size.
    let capacity = unsafe { *buf_size };
    // Nothing may unwind into libhdf5's C frames.
    let out = catch_unwind(AssertUnwindSafe(|| {
        if flags & H5Z_FLAG_REVERSE != 0 {
            inflate(input, capacity.max(FLOOR), capacity)
        } else {
            deflate(input, level)
        }
    }));
    let Ok(Some((out, len))) = out else { return 0 };
    // SAFETY: the old buffer came from libhdf5's allocator and nothing refers to it once
    // `*buf` is replaced by `out`, itself from that allocator (freed by the pipeline).
    unsafe {
        H5free_memory(*buf);
        *buf_size = out.len;
        *buf = out.into_raw();
    }
    len
}

/// A zeroed buffer of libhdf5's allocator, freed on drop unless handed to libhdf5.
struct H5Buf {
    ptr: *mut u8,
    len: usize,
}

impl H5Buf {
    fn zeroed(len: usize) -> Option<H5Buf> {
        let len = len.max(1);
        // SAFETY: plain allocation; a null result is checked.
        let ptr = unsafe { H5allocate_memory(len, 1) }.cast::<u8>();
        (!ptr.is_null()).then_some(H5Buf { ptr, len })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live allocation of `len` bytes, zeroed when made (so initialised),
        // owned by `self` alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    fn into_raw(self) -> *mut c_void {
        let ptr = self.ptr.cast();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for H5Buf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `H5allocate_memory` and was not handed over (`into_raw`
        // forgets `self`).
        unsafe { H5free_memory(self.ptr.cast()) };
    }
}

/// The zlib stream `input` decoded (the buffer and the decoded length), trying `first` bytes
/// of room and doubling up to `bound`; `None` when it does not decode or needs more than
/// `bound` bytes.
fn inflate(input: &[u8], bound: usize, first: usize) -> Option<(H5Buf, usize)> {
    let mut inflater = Decompressor::new();
    let mut room = first.clamp(1, bound);
    loop {
        let mut out = H5Buf::zeroed(room)?;
        match inflater.zlib_decompress(input, out.bytes()) {
            Ok(n) => return Some((out, n)),
            Err(DecompressionError::InsufficientSpace) if room < bound => {
                room = room.saturating_mul(2).min(bound);
            }
            Err(_) => return None,
        }
    }
}

/// `input` as a zlib stream at deflate `level` (0–9, as libhdf5 stores it): the buffer and the
/// stream's length.
fn deflate(input: &[u8], level: c_uint) -> Option<(H5Buf, usize)> {
    let level = CompressionLvl::new(level.min(9) as i32).ok()?;
    let mut compressor = Compressor::new(level);
    let mut out = H5Buf::zeroed(compressor.zlib_compress_bound(input.len()))?;
    let n = compressor.zlib_compress(input, out.bytes()).ok()?;
    Some((out, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflate_stops_at_its_bound() {
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 7) as u8).collect();
        let (mut z, n) = deflate(&data, 6).unwrap();
        let stream = z.bytes()[..n].to_vec();
        for first in [1024, 1 << 20] {
            let (mut out, n) = inflate(&stream, 1 << 20, first).unwrap();
            assert_eq!(&out.bytes()[..n], &data[..]);
        }
        assert!(inflate(&stream, (1 << 20) - 1, 1024).is_none());
        assert!(inflate(b"not zlib", 1 << 20, 16).is_none());
    }

    /// A file whose dataset `x` (100 × 100 float64, one chunk, deflated) holds 0, 1, …; with
    /// `stream`, that chunk is replaced by those stored bytes.
    fn file(dir: &std::path::Path, stream: Option<&[u8]>) -> std::path::PathBuf {
        let path = dir.join("t.h5");
        let f = crate::storage::h5::create(&path).unwrap();
        let values: Vec<f64> = (0..10_000).map(f64::from).collect();
        let ds = f
            .new_dataset::<f64>()
            .chunk((100, 100))
            .deflate(4)
            .shape((100, 100))
            .create("x")
            .unwrap();
        ds.write_raw(&values).unwrap();
        if let Some(stream) = stream {
            let offset = [0u64, 0];
            let status = hdf5::sync::sync(|| {
                // SAFETY: `offset` holds the dataset's 2 coordinates; `stream` is a live slice
                // of `stream.len()` bytes, only read during the call; `ds` is open.
                unsafe {
                    hdf5_sys::h5d::H5Dwrite_chunk(
                        ds.id(),
                        hdf5_sys::h5p::H5P_DEFAULT,
                        0,
                        offset.as_ptr(),
                        stream.len(),
                        stream.as_ptr().cast(),
                    )
                }
            });
            assert!(status >= 0);
        }
        path
    }

    #[test]
    fn libhdf5_reads_and_writes_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), None);
        let f = crate::storage::h5::open_read(&path).unwrap();
        let x = crate::storage::h5::read::read_array(&f.dataset("x").unwrap()).unwrap();
        let x = x.to_f64().unwrap();
        assert_eq!((x.len(), x[[99, 99]]), (10_000, 9_999.0));
    }

    #[test]
    fn a_chunk_inflating_past_its_size_fails_before_it_is_inflated() {
        // 256 MiB of zeros: a zlib stream of about 256 KB, for a chunk of 80 KB. libhdf5's own
        // filter inflated all of it before finding the chunk the wrong size.
        let zeros = vec![0u8; 256 << 20];
        let (mut z, n) = deflate(&zeros, 1).unwrap();
        drop(zeros);
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), Some(&z.bytes()[..n]));
        let f = crate::storage::h5::open_read(&path).unwrap();
        let err = crate::storage::h5::read::read_array(&f.dataset("x").unwrap()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, crate::Error::Malformed(_)), "{msg}");
        assert!(msg.contains("decoding past the chunk's size"), "{msg}");
    }
}
