//! How much memory this machine can give, read before a user's sizes are allocated: a model
//! or a batch that cannot fit is refused with a message instead of aborting in the allocator.

/// Bytes the process may still allocate: the smaller of the kernel's `MemAvailable` and the
/// control group's limit (a container's `memory.max`), or `None` where neither can be read
/// (then nothing is refused up front).
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb.saturating_mul(1024))
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A byte count for people: `512 B`, `3.0 KiB`, `1.5 GiB`, `2.8 PiB`.
///
/// ```
/// assert_eq!(backprop_tensor::memory::human_bytes(1536), "1.5 KiB");
/// assert_eq!(backprop_tensor::memory::human_bytes(3 << 30), "3.0 GiB");
/// ```
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let b = available_bytes().expect("/proc/meminfo is readable");
            assert!(b > 1 << 20, "{b} bytes");
        }
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1 << 20), "1.0 MiB");
        assert_eq!(human_bytes(3_136_000_000_000_000), "2.8 PiB");
    }
}
