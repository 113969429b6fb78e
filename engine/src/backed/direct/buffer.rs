//! Result buffers for large reads.
//!
//! A read of tens of megabytes fills memory fresh from the kernel, and on Linux every 4 KiB
//! page of it costs a page fault when first written: for a full pass over a large matrix the
//! faults take as much time as copying the bytes. Buffers of at least [`HUGE_MIN_BYTES`] are
//! therefore advised to use transparent huge pages (`madvise(MADV_HUGEPAGE)`, as numpy does
//! for its large arrays), which the kernel honours when huge pages are enabled in `madvise`
//! or `always` mode; elsewhere the advice is a no-op.

/// Buffers from this size up are advised to use huge pages.
pub(crate) const HUGE_MIN_BYTES: usize = 4 << 20;

/// `n` zeroed values, in memory advised to use huge pages when it is large.
pub(crate) fn zeroed<T: bytemuck::Zeroable + Clone>(n: usize) -> Vec<T> {
    // Zero bits for the primitives this is used with: `vec!` asks the allocator for zeroed
    // memory (fresh pages from the kernel for large sizes), untouched until written.
    let mut v = vec![T::zeroed(); n];
    let bytes = std::mem::size_of_val(v.as_slice());
    if bytes >= HUGE_MIN_BYTES {
        advise_huge(v.as_mut_ptr().cast(), bytes);
    }
    v
}

#[cfg(target_os = "linux")]
fn advise_huge(ptr: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    // The whole 2 MiB pages inside the buffer.
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) / HUGE * HUGE;
    if end <= start {
        return;
    }
    // SAFETY: `start..end` lies within the live allocation `ptr..ptr + len` owned by the
    // caller's vector, and is page aligned as madvise requires. MADV_HUGEPAGE only changes how
    // the kernel backs the range with physical pages: it neither unmaps it nor changes its
    // contents (zero until written), so every reference into the vector stays valid. Its
    // failure (e.g. a kernel without transparent huge pages) is harmless and ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_ptr: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_of_every_size_are_zeroed_and_writable() {
        for n in [
            0,
            1,
            1000,
            HUGE_MIN_BYTES / 4 - 1,
            HUGE_MIN_BYTES / 4,
            3 * HUGE_MIN_BYTES,
        ] {
            let mut v: Vec<f32> = zeroed(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
            for (i, x) in v.iter_mut().enumerate() {
                *x = i as f32;
            }
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
        }
        let v: Vec<u64> = zeroed(HUGE_MIN_BYTES);
        assert_eq!(v.iter().copied().max(), Some(0));
    }
}
