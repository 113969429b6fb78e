//! Decoding stored chunks: the HDF5 filters annpage undoes itself (deflate, shuffle, LZF, and
//! the Fletcher-32 checksum, verified as libhdf5 verifies it).
//!
//! A [`Pipeline`] is a dataset's filters in the order HDF5 applied them when writing; decoding
//! undoes them in reverse, skipping those a chunk's filter mask marks as not applied. Every
//! decoder writes into a buffer of the chunk's exact decoded size and fails, rather than
//! guessing, when the stored bytes do not decode to exactly that size.

use std::fmt;

use hdf5::filters::Filter;

/// One filter of a pipeline that annpage decodes without libhdf5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// HDF5's deflate filter (a zlib stream; h5py's `gzip`).
    Deflate,
    /// HDF5's byte shuffle for elements of this many bytes.
    Shuffle(usize),
    /// The LZF filter (id 32000) of h5py.
    Lzf,
    /// HDF5's Fletcher-32 checksum: 4 bytes after the chunk's other filters' output, checked
    /// and dropped first when decoding. Only read as the last filter applied (where h5py and
    /// libhdf5 put it).
    Fletcher32,
}

/// The filters of a dataset, in the order they were applied when writing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pipeline {
    steps: Vec<Step>,
}

impl Pipeline {
    /// The pipeline for `filters` (as `Dataset::filters` lists them) on elements of
    /// `element_size` bytes, or the name of the first filter annpage cannot decode.
    pub(crate) fn new(filters: &[Filter], element_size: usize) -> Result<Self, String> {
        let last = filters.len().saturating_sub(1);
        let steps = filters
            .iter()
            .enumerate()
            .map(|(i, f)| match f {
                Filter::Deflate(_) => Ok(Step::Deflate),
                Filter::Shuffle => Ok(Step::Shuffle(element_size)),
                Filter::LZF => Ok(Step::Lzf),
                Filter::Fletcher32 if i == last => Ok(Step::Fletcher32),
                Filter::Fletcher32 => Err("fletcher32 before another filter".to_string()),
                Filter::SZip(..) => Err("szip".to_string()),
                Filter::NBit => Err("nbit".to_string()),
                Filter::ScaleOffset(_) => Err("scale-offset".to_string()),
                other => Err(format!("HDF5 filter {}", other.id())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { steps })
    }

    /// The filters undone, in decoding order, e.g. `"gzip"`, `"shuffle+gzip"`, `"none"`.
    pub(crate) fn describe(&self) -> String {
        if self.steps.is_empty() {
            return "none".into();
        }
        let names: Vec<&str> = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Deflate => "gzip",
                Step::Shuffle(_) => "shuffle",
                Step::Lzf => "lzf",
                Step::Fletcher32 => "fletcher32",
            })
            .collect();
        names.join("+")
    }

    /// Whether no filter is applied (chunks are stored raw).
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether a chunk written with `mask` is stored raw: no filter, or every one skipped.
    pub(crate) fn is_raw(&self, mask: u32) -> bool {
        (0..self.steps.len()).all(|i| skipped(mask, i))
    }

    /// Decodes `stored` (a chunk written with filter mask `mask`) into `out`, whose length is
    /// the chunk's decoded size. `scratch` is one thread's decompressor.
    pub(crate) fn decode(
        &self,
        stored: &[u8],
        mask: u32,
        out: &mut [u8],
        scratch: &mut Scratch,
    ) -> Result<(), String> {
        let mut active: Vec<Step> = self
            .steps
            .iter()
            .enumerate()
            .filter(|&(i, _)| !skipped(mask, i))
            .map(|(_, s)| *s)
            .collect();
        let stored = if active.last() == Some(&Step::Fletcher32) {
            active.pop();
            fletcher32_checked(stored)?
        } else {
            stored
        };
        if active.is_empty() {
            return copy_exact(stored, out);
        }
        // Undo the filters last-applied first; only the last step writes into `out`.
        let mut between: Option<Vec<u8>> = None;
        for (k, &step) in active.iter().rev().enumerate() {
            let input = between.as_deref().unwrap_or(stored);
            if k + 1 == active.len() {
                return step_into(step, input, out, scratch);
            }
            let mut next = vec![0u8; out.len()];
            step_into(step, input, &mut next, scratch)?;
            between = Some(next);
        }
        Ok(())
    }
}

/// Whether filter `i` of the pipeline was skipped for a chunk with filter mask `mask`.
fn skipped(mask: u32, i: usize) -> bool {
    i < 32 && mask & (1 << i) != 0
}

/// Decompressor state reused across chunks by one thread.
pub(crate) struct Scratch {
    inflater: libdeflater::Decompressor,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            inflater: libdeflater::Decompressor::new(),
        }
    }
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch").finish_non_exhaustive()
    }
}

fn step_into(
    step: Step,
    input: &[u8],
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Result<(), String> {
    match step {
        Step::Deflate => {
            let n = scratch
                .inflater
                .zlib_decompress(input, out)
                .map_err(|e| format!("deflate stream does not decode: {e}"))?;
            expect_len(n, out.len())
        }
        Step::Shuffle(size) => {
            if input.len() != out.len() {
                return Err(format!(
                    "shuffled chunk has {} bytes, expected {}",
                    input.len(),
                    out.len()
                ));
            }
            unshuffle(input, out, size);
            Ok(())
        }
        Step::Lzf => {
            let n = lzf_decompress(input, out)?;
            expect_len(n, out.len())
        }
        // Checked and dropped before the other steps (see `Pipeline::decode`).
        Step::Fletcher32 => Err("a Fletcher-32 checksum before another filter".into()),
    }
}

/// `stored` without its last 4 bytes, a Fletcher-32 checksum of the rest that must match
/// (as libhdf5 checks it: also accepted with the bytes of each 16-bit half swapped, as
/// libhdf5 before 1.6.3 wrote it on little-endian machines).
fn fletcher32_checked(stored: &[u8]) -> Result<&[u8], String> {
    let Some(split) = stored.len().checked_sub(4) else {
        return Err(format!(
            "a chunk of {} bytes has no room for its Fletcher-32 checksum",
            stored.len()
        ));
    };
    let (data, sum) = stored.split_at(split);
    let sum = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
    let computed = fletcher32(data);
    let reversed = ((computed & 0x00ff_00ff) << 8) | ((computed >> 8) & 0x00ff_00ff);
    if sum != computed && sum != reversed {
        return Err(format!(
            "data error detected by its Fletcher-32 checksum (stored {sum:#010x}, computed {computed:#010x})"
        ));
    }
    Ok(data)
}

/// HDF5's Fletcher-32 checksum of `data`: big-endian 16-bit words summed modulo 65535 (an odd
/// last byte as the high byte of a word).
pub(crate) fn fletcher32(data: &[u8]) -> u32 {
    let fold = |v: u32| (v & 0xffff) + (v >> 16);
    let (mut sum1, mut sum2) = (0u32, 0u32);
    let words = data.len() / 2 * 2;
    // 360 words at most between folds, as libhdf5 sums them (no overflow; wrapping as C's
    // unsigned sums would if there were).
    for block in data[..words].chunks(720) {
        for word in block.chunks_exact(2) {
            sum1 = sum1.wrapping_add(u32::from(word[0]) << 8 | u32::from(word[1]));
            sum2 = sum2.wrapping_add(sum1);
        }
        (sum1, sum2) = (fold(sum1), fold(sum2));
    }
    if let Some(&last) = data.get(words) {
        sum1 = sum1.wrapping_add(u32::from(last) << 8);
        sum2 = sum2.wrapping_add(sum1);
        (sum1, sum2) = (fold(sum1), fold(sum2));
    }
    (sum1, sum2) = (fold(sum1), fold(sum2));
    (sum2 << 16) | sum1
}

fn expect_len(got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("decoded to {got} bytes, expected {want}"))
    }
}

fn copy_exact(stored: &[u8], out: &mut [u8]) -> Result<(), String> {
    expect_len(stored.len(), out.len())?;
    out.copy_from_slice(stored);
    Ok(())
}

/// Undoes HDF5's shuffle: byte `j` of element `i` was stored at `j * n + i`, for `n` whole
/// elements; trailing bytes that make no whole element are stored as they are.
pub(crate) fn unshuffle(input: &[u8], out: &mut [u8], size: usize) {
    let n = if size > 1 { input.len() / size } else { 0 };
    if n <= 1 {
        out.copy_from_slice(input);
        return;
    }
    for (j, plane) in input[..n * size].chunks_exact(n).enumerate() {
        for (i, &b) in plane.iter().enumerate() {
            out[i * size + j] = b;
        }
    }
    out[n * size..].copy_from_slice(&input[n * size..]);
}

/// Decompresses an LZF stream into `out`, returning the number of bytes written; an error when
/// the stream is corrupt or decodes to more than `out` holds.
///
/// Decoded by liblzf (`lzf-sys`, the decoder h5py's and hdf5-metno's LZF filters use), which
/// checks every read against the input's end and every write against the output's.
pub(crate) fn lzf_decompress(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    if input.is_empty() {
        return Ok(0);
    }
    let (Ok(in_len), Ok(out_len)) = (u32::try_from(input.len()), u32::try_from(out.len())) else {
        return Err("an LZF chunk of 4 GiB or more".into());
    };
    // SAFETY: liblzf reads at most `in_len` bytes from `input` and writes at most `out_len`
    // bytes to `out` (built with CHECK_INPUT, it checks both bounds before every copy); both
    // are live slices of those lengths that do not overlap, and it keeps no pointer.
    let n = unsafe {
        lzf_sys::lzf_decompress(
            input.as_ptr().cast(),
            in_len,
            out.as_mut_ptr().cast(),
            out_len,
        )
    };
    if n > 0 {
        return Ok(n as usize);
    }
    // liblzf returns 0 only for an error (a non-empty stream decodes to at least one byte),
    // having set errno: E2BIG for an output too small, EINVAL for a corrupt stream.
    const E2BIG: i32 = 7;
    Err(match std::io::Error::last_os_error().raw_os_error() {
        Some(E2BIG) => "LZF stream is corrupt: the output is longer than the chunk".into(),
        _ => "LZF stream is corrupt: it does not decode".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffle_inverts_hdf5_shuffle() {
        // Elements 0x0102, 0x0304, 0x0506 (little endian) plus one trailing byte.
        let plain = [0x02u8, 0x01, 0x04, 0x03, 0x06, 0x05, 0xff];
        let shuffled = [0x02u8, 0x04, 0x06, 0x01, 0x03, 0x05, 0xff];
        let mut out = [0u8; 7];
        unshuffle(&shuffled, &mut out, 2);
        assert_eq!(out, plain);
        let mut one = [0u8; 3];
        unshuffle(&[1, 2, 3], &mut one, 4);
        assert_eq!(one, [1, 2, 3]);
    }

    #[test]
    fn lzf_decodes_literals_and_overlapping_references() {
        // "abc" as a literal, then a back-reference of length 7 at distance 3.
        let stream = [2u8, b'a', b'b', b'c', (5 << 5), 2];
        let mut out = [0u8; 10];
        assert_eq!(lzf_decompress(&stream, &mut out), Ok(10));
        assert_eq!(&out, b"abcabcabca");
        // Distance beyond what was written, and output overflow, are errors.
        assert!(lzf_decompress(&[(1 << 5), 5], &mut out).is_err());
        assert!(lzf_decompress(&stream, &mut [0u8; 5]).is_err());
        assert!(lzf_decompress(&[4u8, b'a'], &mut out).is_err());
    }

    #[test]
    fn pipeline_decodes_in_reverse_and_honours_the_mask() {
        let plain: Vec<u8> = (0u32..1000).flat_map(|v| v.to_le_bytes()).collect();
        let mut shuffled = vec![0u8; plain.len()];
        // Shuffle by hand (the inverse of unshuffle).
        let n = plain.len() / 4;
        for i in 0..n {
            for j in 0..4 {
                shuffled[j * n + i] = plain[i * 4 + j];
            }
        }
        let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut deflated = vec![0u8; compressor.zlib_compress_bound(shuffled.len())];
        let n = compressor.zlib_compress(&shuffled, &mut deflated).unwrap();
        deflated.truncate(n);
        let p = Pipeline::new(&[Filter::Shuffle, Filter::Deflate(4)], 4).unwrap();
        let mut scratch = Scratch::new();
        let mut out = vec![0u8; plain.len()];
        p.decode(&deflated, 0, &mut out, &mut scratch).unwrap();
        assert_eq!(out, plain);
        // Deflate skipped (bit 1): the chunk holds shuffled bytes.
        p.decode(&shuffled, 0b10, &mut out, &mut scratch).unwrap();
        assert_eq!(out, plain);
        // Everything skipped: raw bytes.
        assert!(p.is_raw(0b11) && !p.is_raw(0b10));
        p.decode(&plain, 0b11, &mut out, &mut scratch).unwrap();
        assert_eq!(out, plain);
        // A truncated stream is an error, not a short chunk.
        let e = p
            .decode(&deflated[..deflated.len() / 2], 0, &mut out, &mut scratch)
            .unwrap_err();
        assert!(e.contains("deflate"), "{e}");
        assert_eq!(
            Pipeline::new(&[Filter::Fletcher32, Filter::Deflate(4)], 4).unwrap_err(),
            "fletcher32 before another filter"
        );
    }

    /// Datasets h5py writes with `fletcher32=True`: alone on bytes (an odd length: the last
    /// byte summed alone), and after shuffle and deflate (libhdf5 refuses it on strings).
    const FLETCHER: &str = "with h5py.File(path, 'w') as f:\n\
        \x20   f.create_dataset('bytes', data=np.arange(1001) % 251, dtype='u1', chunks=(1001,), fletcher32=True)\n\
        \x20   f.create_dataset('gz', data=np.arange(5000, dtype='f4') / 7, chunks=(700,), compression='gzip', shuffle=True, fletcher32=True)\n";

    /// The chunks of the 1-d dataset `name`: (file offset, stored bytes), in order.
    fn stored_chunks(f: &hdf5::File, name: &str) -> Vec<(u64, Vec<u8>)> {
        let ds = f.dataset(name).unwrap();
        let bytes = std::fs::read(f.filename()).unwrap();
        let Ok(crate::storage::h5::chunks::Placement::Chunked { entries, .. }) =
            crate::storage::h5::chunks::index(
                &ds,
                &ds.shape(),
                ds.dtype().unwrap().size(),
                bytes.len() as u64,
            )
            .unwrap()
        else {
            panic!("{name} is not chunked");
        };
        entries
            .iter()
            .map(|e| {
                (
                    e.addr,
                    bytes[e.addr as usize..(e.addr + e.size) as usize].to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn fletcher32_is_checked_and_dropped_as_libhdf5_does() {
        use crate::storage::h5::read::read_array;
        let (_d, path) = crate::testutil::py_file("fletcher.h5", FLETCHER);
        let f = hdf5::File::open(&path).unwrap();
        for name in ["bytes", "gz"] {
            let ds = f.dataset(name).unwrap();
            let size = ds.dtype().unwrap().size();
            let p = Pipeline::new(&ds.filters(), size).unwrap();
            assert!(p.describe().ends_with("fletcher32"), "{}", p.describe());
            let (n, chunk) = (ds.shape()[0], ds.chunk().unwrap()[0]);
            let mut ours = Vec::new();
            for (i, (_, stored)) in stored_chunks(&f, name).iter().enumerate() {
                let mut out = vec![0u8; chunk * size];
                p.decode(stored, 0, &mut out, &mut Scratch::new()).unwrap();
                ours.extend_from_slice(&out[..(n - i * chunk).min(chunk) * size]);
            }
            let theirs = read_array(&ds).unwrap();
            let theirs: Vec<u8> = match theirs {
                crate::data::ArrayData::U8(a) => a.iter().copied().collect(),
                crate::data::ArrayData::F32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
                other => panic!("{name}: {:?}", other.dtype()),
            };
            assert_eq!(ours, theirs, "{name}");
        }
        // One byte of a chunk changed: refused, as libhdf5 refuses it.
        let p = Pipeline::new(&[Filter::Deflate(4), Filter::Fletcher32], 1).unwrap();
        let (_, mut stored) = stored_chunks(&f, "gz").swap_remove(1);
        let mut out = vec![0u8; 2800];
        p.decode(&stored, 0, &mut out, &mut Scratch::new()).unwrap();
        stored[5] ^= 0x10;
        let err = p
            .decode(&stored, 0, &mut out, &mut Scratch::new())
            .unwrap_err();
        assert!(err.contains("Fletcher-32"), "{err}");
        // Written with the halves' bytes swapped (libhdf5 before 1.6.3): accepted.
        stored[5] ^= 0x10;
        let n = stored.len();
        stored.swap(n - 4, n - 3);
        stored.swap(n - 2, n - 1);
        p.decode(&stored, 0, &mut out, &mut Scratch::new()).unwrap();
        // The mask skipping the checksum (bit 1): nothing checked or dropped (the deflate
        // stream ends before the 4 bytes, which inflating leaves alone).
        let before = out.clone();
        stored[n - 1] ^= 0xff;
        p.decode(&stored, 0b10, &mut out, &mut Scratch::new())
            .unwrap();
        assert_eq!(out, before);
    }
}
