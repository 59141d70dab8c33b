//! How long since the last keyboard or mouse input, from the OS.
//!
//! * Linux/X11: the MIT-SCREEN-SAVER extension (`x11rb`, no C library).
//! * Windows: `GetLastInputInfo`; macOS: `CGEventSource` (through `user-idle`).
//! * Linux/Wayland without XWayland, or no display at all: unknown, and the
//!   heartbeat reports `online` (documented in `docs/agent.md`).

use std::time::Duration;

/// A source of idle time (the OS, or a test double).
pub trait IdleSource: Send + Sync {
    /// `None` when the OS cannot tell.
    fn idle_for(&self) -> Option<Duration>;
}

/// The operating system's idle time.
#[derive(Debug, Default)]
pub struct OsIdle {
    #[cfg(target_os = "linux")]
    x11: std::sync::Mutex<Option<x11rb::rust_connection::RustConnection>>,
}

#[cfg(target_os = "linux")]
impl IdleSource for OsIdle {
    fn idle_for(&self) -> Option<Duration> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::screensaver::ConnectionExt as _;

        std::env::var_os("DISPLAY")?;
        let mut guard = self.x11.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = x11rb::connect(None).ok().map(|(conn, _)| conn);
        }
        let conn = guard.as_ref()?;
        let root = conn.setup().roots.first()?.root;
        match conn
            .screensaver_query_info(root)
            .ok()
            .and_then(|c| c.reply().ok())
        {
            Some(info) => Some(Duration::from_millis(u64::from(info.ms_since_user_input))),
            None => {
                // The display went away: reconnect next time.
                *guard = None;
                None
            }
        }
    }
}

#[cfg(any(windows, target_os = "macos"))]
impl IdleSource for OsIdle {
    fn idle_for(&self) -> Option<Duration> {
        user_idle::UserIdle::get_time()
            .ok()
            .map(|t| Duration::from_millis(u64::try_from(t.as_milliseconds()).unwrap_or(u64::MAX)))
    }
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
impl IdleSource for OsIdle {
    fn idle_for(&self) -> Option<Duration> {
        None
    }
}
