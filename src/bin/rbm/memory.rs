//! The process's resident memory, as the kernel reports it.

/// The peak resident set size of this process so far (`VmHWM`), in bytes: mapped files'
/// pages that were read count as well as allocations. `None` where the system does not say
/// (only Linux's `/proc/self/status` is read).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM:   12345 kB` → bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut words = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next()? {
        "kB" => value.checked_mul(1024),
        _ => None,
    }
}

/// Bytes as MiB, for reports.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_from_a_status_text() {
        let status = "Name:\trbm\nVmPeak:\t  99 kB\nVmHWM:\t    4096 kB\nVmRSS:\t 10 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(4096 * 1024));
        assert_eq!(parse_vm_hwm("VmHWM:\t 12 MB\n"), None);
        assert_eq!(parse_vm_hwm("VmRSS:\t 12 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t x kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_peak() {
        let peak = peak_rss_bytes().expect("Linux reports VmHWM");
        assert!(peak > 0);
    }
}
