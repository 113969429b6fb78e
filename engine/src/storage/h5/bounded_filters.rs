//! libhdf5's deflate and LZF filters, made to decode within bounds.
//!
//! libhdf5's deflate filter doubles its output buffer until the zlib stream ends, however long
//! that takes, and the LZF filter of `hdf5-metno` grows its buffer until the stream fits: a chunk
//! of a few megabytes that decodes to gigabytes (deflate expands up to about a thousand times,
//! LZF about ninety) was decoded whole by every read through libhdf5 before libhdf5 found the
//! chunk the wrong size. [`install`] keeps each filter's class (its name, `set_local`, its
//! compression) and replaces how it decodes: into the room libhdf5 hands over — for a dataset
//! chunk that room already holds the chunk's decoded size (HDF5 2.x allocates the larger of the
//! stored and the decoded size) — or, when that room is smaller, at most [`FLOOR`] bytes, and
//! fails past that. Deflate decodes with libdeflate, LZF with [`super::filters`]'s decoder.
//!
//! The bundled libhdf5 belongs to annpage alone (its symbols are private to the binaries and the
//! Python module), so replacing a filter there changes nothing for h5py in the same process.

use std::ffi::{c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use hdf5_sys::h5::{herr_t, H5allocate_memory, H5free_memory};
use hdf5_sys::h5z::{H5Z_class2_t, H5Z_filter_t, H5Z_FILTER_DEFLATE, H5Z_FLAG_REVERSE};
use libdeflater::{DecompressionError, Decompressor};

use crate::{Error, Result};

/// The output a stream may reach when libhdf5's room is smaller (the chunk is stored larger
/// than it decodes, or the caller is not a dataset chunk).
const FLOOR: usize = 64 << 20;

/// h5py's LZF filter id.
const LZF: H5Z_filter_t = 32000;

/// A filter function of libhdf5's filter classes.
type FilterFn = unsafe extern "C" fn(
    c_uint,
    usize,
    *const c_uint,
    usize,
    *mut usize,
    *mut *mut c_void,
) -> usize;

/// The functions the replaced classes had, which still compress.
static DEFLATE_ENCODER: OnceLock<FilterFn> = OnceLock::new();
static LZF_ENCODER: OnceLock<FilterFn> = OnceLock::new();

extern "C" {
    /// libhdf5's own registration (`H5Zprivate.h`): unlike the public `H5Zregister`, which
    /// refuses to touch the predefined filters, it replaces the class registered under the
    /// same id. The workspace links the libhdf5 it builds statically (`hdf5-metno-src`), which
    /// exports it; another libhdf5 would fail to link rather than run without the bound.
    fn H5Z_register(cls: *const H5Z_class2_t) -> herr_t;
    /// Points `cls` at libhdf5's class registered under `id` (`H5Zprivate.h`), or at null when
    /// there is none (`attempt`: without an error on libhdf5's error stack).
    fn H5Z_find(attempt: bool, id: H5Z_filter_t, cls: *mut *mut H5Z_class2_t) -> herr_t;
}

/// Makes libhdf5's deflate and LZF filters decode within bounds, once per process; later calls
/// return the first call's outcome.
pub(crate) fn install() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // The room libhdf5 gives a chunk's filters holds the chunk's decoded size from
            // HDF5 2.0 on (before, the stored size only: [`FLOOR`] would refuse valid chunks
            // decoding to more).
            let (major, minor, release) = hdf5::library_version();
            if major < 2 {
                return Err(format!(
                    "the bounded filters need HDF5 2.x, this build links {major}.{minor}.{release}"
                ));
            }
            hdf5::sync::sync(|| {
                replace(H5Z_FILTER_DEFLATE, &DEFLATE_ENCODER, deflate)?;
                replace(LZF, &LZF_ENCODER, lzf)
            })
        })
        .clone()
        .map_err(Error::Unsupported)
}

/// Registers the class of filter `id` again with `ours` as its function, keeping the one it
/// had in `encoder` for compression. Runs under the HDF5 lock.
fn replace(
    id: H5Z_filter_t,
    encoder: &OnceLock<FilterFn>,
    ours: FilterFn,
) -> std::result::Result<(), String> {
    let mut found: *mut H5Z_class2_t = std::ptr::null_mut();
    // SAFETY: libhdf5 is initialised and locked (`hdf5::sync`); `H5Z_find` only looks `id` up
    // in libhdf5's table and stores a pointer into it, or null, in `found`.
    let status = unsafe { H5Z_find(true, id, &mut found) };
    if status < 0 || found.is_null() {
        return Err(format!("libhdf5 has no filter {id} to bound"));
    }
    // SAFETY: non-null, so it points at a registered class, which is copied out at once.
    let mut class = unsafe { *found };
    let Some(original) = class.filter else {
        return Err(format!("libhdf5's filter {id} has no function"));
    };
    let _ = encoder.set(original);
    class.filter = Some(ours);
    // SAFETY: `class` is a complete class of the layout `H5Z_register` copies (libhdf5's own,
    // with only its function changed); its name still points at libhdf5's static string.
    let status = unsafe { H5Z_register(&class) };
    if status < 0 {
        return Err(format!("libhdf5 refused the bounded filter {id}"));
    }
    Ok(())
}

/// How a filter's stored bytes decode here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Deflate,
    Lzf,
}

/// Defines `$name`, the function of a class whose stored bytes decode as `$codec` and whose
/// original function, kept in `$encoder`, compresses. See [`filter`].
macro_rules! class_function {
    ($name:ident, $codec:expr, $encoder:ident) => {
        unsafe extern "C" fn $name(
            flags: c_uint,
            cd_nelmts: usize,
            cd_values: *const c_uint,
            nbytes: usize,
            buf_size: *mut usize,
            buf: *mut *mut c_void,
        ) -> usize {
            // SAFETY: libhdf5 calls this with the arguments [`filter`] requires.
            unsafe {
                filter(
                    $codec, &$encoder, flags, cd_nelmts, cd_values, nbytes, buf_size, buf,
                )
            }
        }
    };
}

class_function!(deflate, Codec::Deflate, DEFLATE_ENCODER);
class_function!(lzf, Codec::Lzf, LZF_ENCODER);

/// A filter function: compression is the original class's; decoding takes `*buf`'s `nbytes`
/// stored bytes (of a buffer of `*buf_size`) and replaces the buffer by the decoded one,
/// returning the decoded length, or 0 on failure (libhdf5 then reports the filter failed).
///
/// # Safety
/// libhdf5's filter contract: `*buf` is a buffer of its allocator holding at least `nbytes`
/// readable bytes, `buf_size` points at its size and `cd_values` at `cd_nelmts` values.
#[allow(clippy::too_many_arguments)]
unsafe fn filter(
    codec: Codec,
    encoder: &OnceLock<FilterFn>,
    flags: c_uint,
    cd_nelmts: usize,
    cd_values: *const c_uint,
    nbytes: usize,
    buf_size: *mut usize,
    buf: *mut *mut c_void,
) -> usize {
    if flags & H5Z_FLAG_REVERSE == 0 {
        return match encoder.get() {
            // SAFETY: the original function of this class, called as libhdf5 called us.
            Some(compress) => unsafe {
                compress(flags, cd_nelmts, cd_values, nbytes, buf_size, buf)
            },
            None => 0,
        };
    }
    // SAFETY: libhdf5 passes a valid pointer to its buffer's pointer.
    if unsafe { (*buf).is_null() } {
        return 0;
    }
    // SAFETY: as this function's contract states, `*buf` holds `nbytes` initialised bytes.
    let input = unsafe { std::slice::from_raw_parts((*buf).cast::<u8>(), nbytes) };
    // SAFETY: libhdf5 passes a valid pointer to the buffer's size.
    let room = unsafe { *buf_size };
    // Nothing may unwind into libhdf5's C frames.
    let decoded = catch_unwind(AssertUnwindSafe(|| {
        decode(codec, input, room.max(FLOOR), room)
    }));
    let Ok(Some((out, len))) = decoded else {
        return 0;
    };
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

/// `input` decoded (the buffer and the decoded length), trying `first` bytes of room and
/// doubling up to `bound`; `None` when it does not decode or needs more than `bound` bytes.
fn decode(codec: Codec, input: &[u8], bound: usize, first: usize) -> Option<(H5Buf, usize)> {
    let mut inflater = Decompressor::new();
    let mut room = first.clamp(1, bound);
    loop {
        let mut out = H5Buf::zeroed(room)?;
        // `Err(true)`: more room might do.
        let decoded = match codec {
            Codec::Deflate => inflater
                .zlib_decompress(input, out.bytes())
                .map_err(|e| e == DecompressionError::InsufficientSpace),
            // The LZF decoder does not tell a corrupt stream from one too long for its room.
            Codec::Lzf => super::filters::lzf_decompress(input, out.bytes()).map_err(|_| true),
        };
        match decoded {
            Ok(n) => return Some((out, n)),
            Err(true) if room < bound => room = room.saturating_mul(2).min(bound),
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let level = libdeflater::CompressionLvl::new(1).unwrap();
        let mut compressor = libdeflater::Compressor::new(level);
        let mut out = vec![0; compressor.zlib_compress_bound(data.len())];
        let n = compressor.zlib_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// An LZF stream of `1 + 264 × refs` zero bytes: one literal, then back-references of 264.
    fn lzf_zeros(refs: usize) -> Vec<u8> {
        let mut stream = vec![0u8, 0];
        for _ in 0..refs {
            stream.extend([0xe0, 255, 0]);
        }
        stream
    }

    #[test]
    fn decode_stops_at_its_bound() {
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 7) as u8).collect();
        let stream = zlib(&data);
        for first in [1024, 1 << 20] {
            let (mut out, n) = decode(Codec::Deflate, &stream, 1 << 20, first).unwrap();
            assert_eq!(&out.bytes()[..n], &data[..]);
        }
        assert!(decode(Codec::Deflate, &stream, (1 << 20) - 1, 1024).is_none());
        assert!(decode(Codec::Deflate, b"not zlib", 1 << 20, 16).is_none());
        let zeros = lzf_zeros(10);
        let (mut out, n) = decode(Codec::Lzf, &zeros, 4096, 100).unwrap();
        assert_eq!((n, out.bytes()[..n].iter().all(|&b| b == 0)), (2641, true));
        assert!(decode(Codec::Lzf, &zeros, 2640, 100).is_none());
    }

    /// A file whose dataset `x` (100 × 100 float64, one chunk, compressed by `codec`) holds
    /// 0, 1, …; with `stream`, that chunk is replaced by those stored bytes.
    fn file(dir: &std::path::Path, codec: Codec, stream: Option<&[u8]>) -> std::path::PathBuf {
        let path = dir.join("t.h5");
        let f = crate::storage::h5::create(&path).unwrap();
        let values: Vec<f64> = (0..10_000).map(f64::from).collect();
        let builder = f.new_dataset::<f64>().chunk((100, 100)).shape((100, 100));
        let builder = match codec {
            Codec::Deflate => builder.deflate(4),
            Codec::Lzf => builder.lzf(),
        };
        let ds = builder.create("x").unwrap();
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
    fn libhdf5_reads_and_writes_through_them() {
        for codec in [Codec::Deflate, Codec::Lzf] {
            let dir = tempfile::tempdir().unwrap();
            let path = file(dir.path(), codec, None);
            let f = crate::storage::h5::open_read(&path).unwrap();
            let x = crate::storage::h5::read::read_array(&f.dataset("x").unwrap()).unwrap();
            let x = x.to_f64().unwrap();
            assert_eq!((x.len(), x[[99, 99]]), (10_000, 9_999.0));
        }
    }

    #[test]
    fn a_chunk_decoding_past_its_size_fails_before_it_is_decoded() {
        // 256 MiB of zeros for a chunk of 80 KB: a zlib stream of about 256 KB, an LZF one of
        // 3 MB. libhdf5's deflate filter and hdf5-metno's LZF filter decoded all of it (LZF in
        // steps of the stored size, each decoding from the start) before libhdf5 found the
        // chunk the wrong size.
        let zeros = vec![0u8; 256 << 20];
        let streams = [
            (Codec::Deflate, zlib(&zeros)),
            (Codec::Lzf, lzf_zeros((256 << 20) / 264)),
        ];
        drop(zeros);
        for (codec, stream) in streams {
            let dir = tempfile::tempdir().unwrap();
            let path = file(dir.path(), codec, Some(&stream));
            let f = crate::storage::h5::open_read(&path).unwrap();
            let err = crate::storage::h5::read::read_array(&f.dataset("x").unwrap()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, crate::Error::Malformed(_)), "{msg}");
            assert!(msg.contains("decoding past the chunk's size"), "{msg}");
        }
    }
}
