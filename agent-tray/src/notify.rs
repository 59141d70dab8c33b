//! Telling the employee, at the moment it happens, that a screenshot was
//! taken: what was captured and where it goes. Through the desktop's
//! notification service (`notify-rust`: D-Bus on Linux, the notification
//! centre on macOS, toasts on Windows).

use chrono::{DateTime, Local};

/// What the notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenshotNotice {
    pub at: DateTime<Local>,
    pub monitors: usize,
    pub width: u32,
    pub height: u32,
    /// The server's host name.
    pub server: String,
    /// This one included.
    pub taken_today: usize,
    pub per_day: u8,
}

impl ScreenshotNotice {
    pub const SUMMARY: &'static str = "WFH Monitor took a screenshot";

    pub fn body(&self) -> String {
        let screens = match self.monitors {
            1 => "1 screen".to_owned(),
            n => format!("{n} screens"),
        };
        format!(
            "Your whole desktop ({screens}, {}×{}) was captured at {} and is being sent to {} \
             with your user name, computer name and IP addresses. Detailed log {} of {} today.",
            self.width,
            self.height,
            self.at.format("%H:%M"),
            self.server,
            self.taken_today,
            self.per_day
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not show the notification: {0}")]
pub struct NotifyError(String);

/// Shows notices (the desktop, or a test double).
pub trait Notifier: Send + Sync {
    /// Blocking: call from `spawn_blocking`.
    fn screenshot_taken(&self, notice: &ScreenshotNotice) -> Result<(), NotifyError>;
}

#[derive(Debug, Default, Clone)]
pub struct DesktopNotifier;

impl Notifier for DesktopNotifier {
    fn screenshot_taken(&self, notice: &ScreenshotNotice) -> Result<(), NotifyError> {
        notify_rust::Notification::new()
            .appname("WFH Monitor")
            .summary(ScreenshotNotice::SUMMARY)
            .body(&notice.body())
            .icon("camera-photo")
            .show()
            .map(drop)
            .map_err(|e| NotifyError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_says_what_was_captured_and_where_it_goes() {
        let n = ScreenshotNotice {
            at: chrono::TimeZone::with_ymd_and_hms(&Local, 2026, 6, 3, 14, 32, 0).unwrap(),
            monitors: 2,
            width: 3840,
            height: 1080,
            server: "wfh.example.com".into(),
            taken_today: 1,
            per_day: 2,
        };
        let body = n.body();
        for part in [
            "2 screens",
            "3840×1080",
            "14:32",
            "wfh.example.com",
            "IP addresses",
            "1 of 2 today",
        ] {
            assert!(body.contains(part), "{body}");
        }
    }
}
