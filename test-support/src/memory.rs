//! Resident memory of a process, from Linux's /proc, for the tests that bound it.

/// The resident set size of process `pid` (`VmRSS` in `/proc/<pid>/status`), in KiB.
///
/// # Panics
/// When /proc cannot be read or shows no `VmRSS`: a memory bound that cannot be measured
/// must fail its test, not pass it.
pub fn resident_kib(pid: u32) -> u64 {
    read_resident(&format!("/proc/{pid}/status"))
}

/// [`resident_kib`] of this process.
///
/// # Panics
/// As [`resident_kib`].
pub fn own_resident_kib() -> u64 {
    read_resident("/proc/self/status")
}

fn read_resident(path: &str) -> u64 {
    let status = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {path} to measure memory: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{path} shows no readable VmRSS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(own_resident_kib() > 0);
        assert!(resident_kib(std::process::id()) > 0);
    }

    #[test]
    #[should_panic(expected = "cannot read")]
    fn an_unreadable_status_fails() {
        read_resident("/proc/no-such-process/status");
    }
}
