//! Allocator settings the process makes once, at start.

/// Keeps large allocations in mappings of their own, so memory freed after a burst goes back to
/// the system. Call once, first thing in `main`.
///
/// glibc serves a large allocation with its own mapping, returned to the system when freed,
/// but after the first such free it raises that threshold to the freed size, so from then on
/// each argon2id hash (~19 MiB) lands in a malloc arena and stays resident, fragmented across
/// arenas. Measured with the compare bench: 245 MiB peak after 64 sign-ins and the code-flow
/// load, 73 MiB with the threshold pinned at 1 MiB. Pinning it also turns off the raising.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_large_allocations_out_of_the_heap() {
    // SAFETY: mallopt only changes allocator settings and takes glibc's own locks, so it is
    // sound with other threads running; a refused setting (return 0) keeps the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_allocations_out_of_the_heap() {}
