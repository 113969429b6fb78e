//! The chunk shape h5py picks for a dataset when the caller gives none.
//!
//! h5py (`h5py._hl.filters.guess_chunk`) aims at a chunk size in bytes that grows with the
//! dataset (16 KiB at 1 MiB of data, doubling every tenfold increase, kept within
//! 8 KiB – 1 MiB), then halves the axes in turn, starting with the first, until the chunk is
//! below or within half of that target and under 1 MiB. An axis of length 0 counts as 1024.
//! Mirroring it gives files whose chunking matches what anndata writes.

/// The soft target at 1 MiB of data, in bytes.
const CHUNK_BASE: f64 = 16.0 * 1024.0;
/// Smallest target chunk size, in bytes.
const CHUNK_MIN: f64 = 8.0 * 1024.0;
/// Largest chunk size, in bytes.
const CHUNK_MAX: f64 = 1024.0 * 1024.0;
/// The length assumed for an axis of length 0.
const EMPTY_AXIS: f64 = 1024.0;

/// The chunk shape h5py chooses for a dataset of `shape` whose elements take `typesize` bytes.
///
/// A 0-d shape has no chunks and gives an empty vector.
pub fn guess_chunk(shape: &[usize], typesize: usize) -> Vec<usize> {
    if shape.is_empty() {
        return Vec::new();
    }
    let mut chunks: Vec<f64> = shape
        .iter()
        .map(|&d| if d == 0 { EMPTY_AXIS } else { d as f64 })
        .collect();
    let typesize = typesize.max(1) as f64;
    let bytes = |c: &[f64]| c.iter().product::<f64>() * typesize;
    let target =
        (CHUNK_BASE * 2f64.powf((bytes(&chunks) / CHUNK_MAX).log10())).clamp(CHUNK_MIN, CHUNK_MAX);
    let ndim = chunks.len();
    let mut axis = 0;
    loop {
        let size = bytes(&chunks);
        let near_target = size < target || (size - target).abs() / target < 0.5;
        if near_target && size < CHUNK_MAX {
            break;
        }
        if chunks.iter().product::<f64>() <= 1.0 {
            // One element is already larger than the largest chunk.
            break;
        }
        chunks[axis] = (chunks[axis] / 2.0).ceil();
        axis = (axis + 1) % ndim;
    }
    chunks.into_iter().map(|c| c as usize).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::run_python;

    /// Shapes and element sizes covering small, large, multi-axis, empty and odd cases.
    const CASES: &[(&[usize], usize)] = &[
        (&[10], 4),
        (&[5, 3], 4),
        (&[0], 8),
        (&[3, 0], 4),
        (&[0, 0], 1),
        (&[1000, 50], 4),
        (&[2700, 32738], 4),
        (&[1_000_000], 8),
        (&[123_457], 4),
        (&[100_000_000], 1),
        (&[7, 11, 13], 8),
        (&[1], 2_000_000),
        (&[4096, 4096], 8),
    ];

    #[test]
    #[ignore = "checks our guess with h5py, zarr or anndata (the venv); ./dev test runs it"]
    fn matches_h5py() {
        let ours: Vec<String> = CASES
            .iter()
            .map(|(shape, size)| {
                let shape: Vec<String> = shape.iter().map(ToString::to_string).collect();
                let got: Vec<String> = guess_chunk(
                    &shape.iter().map(|s| s.parse().unwrap()).collect::<Vec<_>>(),
                    *size,
                )
                .iter()
                .map(ToString::to_string)
                .collect();
                format!("(({},), {size}, ({},)),", shape.join(", "), got.join(", "))
            })
            .collect();
        let script = format!(
            "from h5py._hl.filters import guess_chunk\n\
             cases = [{}]\n\
             for shape, size, ours in cases:\n    \
                 want = guess_chunk(shape, None, size)\n    \
                 assert tuple(want) == tuple(ours), (shape, size, want, ours)\n",
            ours.join("\n")
        );
        run_python(&script, std::path::Path::new("unused"));
    }

    #[test]
    fn scalars_have_no_chunks() {
        assert!(guess_chunk(&[], 8).is_empty());
        // A single element larger than the maximum stays one element.
        assert_eq!(guess_chunk(&[1], 4 << 20), [1]);
    }

    #[test]
    fn chunks_are_guessed_as_h5py_guesses() {
        // h5py: guess_chunk((1000, 50), None, 4) == (250, 13)
        assert_eq!(guess_chunk(&[1000, 50], 4), [250, 13]);
        assert_eq!(guess_chunk(&[0], 8), [1024]);
    }
}
