//! Process-wide allocator settings for training. Each step frees and reallocates the same
//! large activation and gradient buffers; glibc returns big blocks to the kernel (mmap/trim)
//! and the next step pays page faults plus the kernel zeroing every page again, single-file
//! on whichever thread touches it first (14% of a d512 step in `perf`). Keeping freed memory
//! in the heap removes that without raising peak RSS, because the step's sizes repeat.

/// Keep freed memory for reuse (glibc only; elsewhere a no-op). `LLITE_MALLOC=default`
/// leaves the allocator alone, for A/B measurements. Call once at startup, before threads.
pub fn keep_freed_memory() {
    if std::env::var("LLITE_MALLOC").is_ok_and(|v| v == "default") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before the
    // program starts other threads and takes plain integers.
    unsafe {
        // Blocks up to 32 MiB (glibc's maximum) come from the heap, not a fresh mmap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // Never shrink the heap top back to the kernel between steps.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        // Grow the heap in large steps: fewer brk/mprotect calls and fresh-page faults.
        // Untouched padding is address space only, not resident memory.
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
