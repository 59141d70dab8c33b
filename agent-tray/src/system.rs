//! Facts about this machine: who, which host, which addresses, since when.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

/// The user and host the agent reports (as the OS names them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub hostname: String,
}

impl Identity {
    pub fn current() -> Self {
        Self {
            username: whoami::fallible::username().unwrap_or_else(|_| "unknown".into()),
            hostname: whoami::fallible::hostname().unwrap_or_else(|_| "unknown".into()),
        }
    }
}

/// The machine's own addresses: no loopback, no link-local, no duplicates.
pub fn local_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = local_ip_address::list_afinet_netifas()
        .unwrap_or_default()
        .into_iter()
        .map(|(_, ip)| ip)
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// When the operating system booted.
pub fn boot_time() -> Option<DateTime<Utc>> {
    let secs = sysinfo::System::boot_time().ok()?;
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

/// "Debian GNU/Linux 12", "Windows 11 Pro", "macOS 15.1".
pub fn os_description() -> String {
    sysinfo::System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.to_owned())
}

/// Keep glibc from holding on to screenshot-sized buffers.
///
/// glibc serves blocks of 128 KiB and more with their own mapping, which is
/// unmapped the moment they are freed, but after such a block is freed it
/// raises that threshold to the block's size (up to 32 MiB), so the next
/// frames (6 to 8 MB each: the capture, the canvas, the decoded picture the
/// thumbnail is made from) land inside a thread's arena instead and stay
/// resident there after they are freed — several MB for hours between two
/// screenshots. Fixing the threshold at 128 KiB turns that adjustment off.
/// Call once, first thing in `main`. Nothing to do with other allocators.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets a glibc malloc parameter; it has no
    // preconditions and is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Hand memory freed since the last call back to the operating system.
///
/// Taking a screenshot needs tens of megabytes for a moment; glibc's
/// allocator keeps what was freed for reuse unless asked to return it, and
/// the agent then idles for hours. The engine calls this before each nap (it
/// costs microseconds when there is nothing to return). The allocators of
/// Windows, macOS and musl return memory on their own: nothing to do there.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only walks glibc's own heap; it has no
    // preconditions and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Is there a desktop to show a tray icon on? (Always on Windows and macOS;
/// on Linux, an X11 or Wayland display.)
pub fn has_desktop() -> bool {
    if cfg!(any(windows, target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_a_boot_time_in_the_past() {
        let boot = boot_time().expect("boot time");
        assert!(boot < Utc::now());
        assert!(boot > DateTime::from_timestamp(946_684_800, 0).unwrap());
    }

    #[test]
    fn local_ips_leave_out_loopback() {
        assert!(local_ips().iter().all(|ip| !ip.is_loopback()));
    }
}
