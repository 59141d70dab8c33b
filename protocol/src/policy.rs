//! The monitoring policy and the consent text it implies.
//!
//! The company sets one [`MonitoringPolicy`] on its server; every agent
//! fetches it (`GET /api/policy`, public: employees have a right to read it)
//! and follows it. The consent the employee is asked for is rendered from the
//! policy by [`MonitoringPolicy::consent`], here, in the shared crate: the
//! agent shows exactly what it will do, and any change to what is collected
//! changes the consent's version, so the agent asks again before it goes on.

use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::activity::ActivityPolicy;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// What the company asks of its agents. `GET /api/policy`,
/// `GET`/`PUT /api/admin/policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringPolicy {
    /// The company's name, as the consent names it. Default: "your employer".
    pub organisation: String,
    /// Who can see what is collected, in the company's words.
    pub viewers: String,
    /// Seconds between heartbeats. Default 300.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3600))]
    pub heartbeat_interval_secs: u32,
    /// Detailed logs (with a desktop screenshot) per working day. Default 2.
    #[cfg_attr(feature = "openapi", schema(maximum = 24))]
    pub logs_per_day: u8,
    /// Working days, `mon` … `sun`. Default Monday to Friday.
    pub working_days: Vec<String>,
    /// Local time the window for detailed logs opens, "HH:MM". Default "08:00".
    pub window_start: String,
    /// Local time it closes, "HH:MM". Default "22:00".
    pub window_end: String,
    pub pause: PausePolicy,
    /// Whether the employee may quit the tray app. Default true.
    pub quit_allowed: bool,
    /// Activity insight (applications, websites, idle time, key counts):
    /// all off by default.
    pub activity: ActivityPolicy,
    /// Days the server keeps what it receives (set by the server's
    /// `retention_days`; read-only here).
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub retention_days: u32,
}

/// Pausing for personal time.
/// The longest pause a policy may allow, in minutes.
pub const MAX_PAUSE_MINUTES: u32 = 7 * 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PausePolicy {
    /// Whether the employee may pause at all. Default true.
    pub allowed: bool,
    /// Longest single pause in minutes (1 to 10080, a week); `null` = until
    /// the next day at most.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10080))]
    pub max_minutes: Option<u32>,
}

impl Default for PausePolicy {
    fn default() -> Self {
        Self {
            allowed: true,
            max_minutes: None,
        }
    }
}

impl Default for MonitoringPolicy {
    fn default() -> Self {
        Self {
            organisation: "your employer".into(),
            viewers: "your managers and the IT administrators of your employer".into(),
            heartbeat_interval_secs: 300,
            logs_per_day: 2,
            working_days: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            window_start: "08:00".into(),
            window_end: "22:00".into(),
            pause: PausePolicy::default(),
            quit_allowed: true,
            activity: ActivityPolicy::default(),
            retention_days: 30,
        }
    }
}

/// The policy with its revision, as the server serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PolicyDocument {
    /// Goes up by one with every change (0: the built-in default).
    pub revision: i64,
    pub policy: MonitoringPolicy,
    /// The consent this policy asks for.
    pub consent: Consent,
}

/// What the employee is asked to accept: plain sentences, grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Consent {
    /// Changes whenever the text changes (a hash of it).
    pub version: String,
    pub title: String,
    pub sections: Vec<ConsentSection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ConsentSection {
    pub heading: String,
    pub items: Vec<String>,
}

/// The employee accepted a consent (sent as an agent event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ConsentRecord {
    pub version: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub accepted_at: chrono::DateTime<chrono::FixedOffset>,
    pub event_id: Uuid,
}

/// "HH:MM", or "HH:MM:SS" (a device's own settings may have seconds).
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .ok()
}

impl MonitoringPolicy {
    /// Working days as chrono weekdays (validated policies only).
    pub fn weekdays(&self) -> Vec<Weekday> {
        self.working_days.iter().filter_map(|d| d.parse().ok()).collect()
    }

    pub fn window(&self) -> Option<(NaiveTime, NaiveTime)> {
        Some((parse_time(&self.window_start)?, parse_time(&self.window_end)?))
    }

    /// Everything wrong with the policy, in one message for the admin.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(1..=3600).contains(&self.heartbeat_interval_secs) {
            problems.push("heartbeat_interval_secs must be between 1 and 3600".to_owned());
        }
        if self.logs_per_day > 24 {
            problems.push("logs_per_day must be between 0 and 24".to_owned());
        }
        for d in &self.working_days {
            if d.len() != 3 || d.parse::<Weekday>().is_err() || d.to_lowercase() != *d {
                problems.push(format!(
                    "{d:?} is not a day (use mon, tue, wed, thu, fri, sat, sun)"
                ));
            }
        }
        match self.window() {
            None => problems.push("window_start and window_end must be times like \"08:00\"".to_owned()),
            Some((s, e)) if s >= e => problems.push("window_start must come before window_end".to_owned()),
            Some(_) => {}
        }
        if self.pause.max_minutes == Some(0) {
            problems.push(
                "pause.max_minutes must be at least 1 (set pause.allowed = false to forbid pausing)".into(),
            );
        }
        if self.pause.max_minutes.is_some_and(|m| m > MAX_PAUSE_MINUTES) {
            problems.push(format!(
                "pause.max_minutes must be at most {MAX_PAUSE_MINUTES} (a week)"
            ));
        }
        for (name, text) in [("organisation", &self.organisation), ("viewers", &self.viewers)] {
            if text.trim().is_empty() || text.len() > 200 {
                problems.push(format!("{name} must be 1 to 200 characters"));
            }
        }
        problems.extend(self.activity.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Does this policy collect nothing that `accepted` did not, and take
    /// nothing away from what the employee may do? Then an agent whose
    /// employee accepted `accepted` may follow it without asking again: a
    /// switch turned off stops that collection at once, while a switch
    /// turned on (or anything that widens collection) waits for consent.
    pub fn collects_no_more_than(&self, accepted: &Self) -> bool {
        let (a, b) = (&self.activity, &accepted.activity);
        let within_window = match (self.window(), accepted.window()) {
            (Some((s, e)), Some((as_, ae))) => s >= as_ && e <= ae,
            _ => false,
        };
        let days = accepted.weekdays();
        let activity_narrower = (!a.applications || b.applications)
            && (!a.window_titles || b.window_titles)
            && (!a.websites || b.websites)
            && (!a.full_urls || b.full_urls)
            && (!a.idle_time || b.idle_time)
            && (!a.key_counts || b.key_counts)
            && (!a.window_titles || b.title_redactions.iter().all(|r| a.title_redactions.contains(r)))
            && a.sample_secs >= b.sample_secs
            && a.bucket_secs >= b.bucket_secs;
        let pause_kept = !accepted.pause.allowed
            || (self.pause.allowed
                && match (self.pause.max_minutes, accepted.pause.max_minutes) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(m), Some(am)) => m >= am,
                });
        self.organisation == accepted.organisation
            && self.viewers == accepted.viewers
            && self.heartbeat_interval_secs >= accepted.heartbeat_interval_secs
            && self.logs_per_day <= accepted.logs_per_day
            && self.weekdays().iter().all(|d| days.contains(d))
            && within_window
            && self.retention_days <= accepted.retention_days
            && (self.quit_allowed || !accepted.quit_allowed)
            && pause_kept
            && activity_narrower
    }

    /// The longest pause allowed from now, in minutes (`None`: not allowed).
    /// `until_tomorrow` is the number of minutes left until midnight.
    pub fn pause_limit(&self, until_tomorrow: u32) -> Option<u32> {
        if !self.pause.allowed {
            return None;
        }
        Some(
            self.pause
                .max_minutes
                .map_or(until_tomorrow, |m| m.min(until_tomorrow)),
        )
    }

    fn days_text(&self) -> String {
        let days = self.weekdays();
        let names = |d: &Weekday| match d {
            Weekday::Mon => "Monday",
            Weekday::Tue => "Tuesday",
            Weekday::Wed => "Wednesday",
            Weekday::Thu => "Thursday",
            Weekday::Fri => "Friday",
            Weekday::Sat => "Saturday",
            Weekday::Sun => "Sunday",
        };
        let weekdays = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        if days.len() == 7 {
            "every day".into()
        } else if days.len() == 5 && weekdays.iter().all(|d| days.contains(d)) {
            "Monday to Friday".into()
        } else {
            days.iter().map(names).collect::<Vec<_>>().join(", ")
        }
    }

    /// The consent this policy asks for.
    pub fn consent(&self) -> Consent {
        let minutes = self.heartbeat_interval_secs / 60;
        let every = if self.heartbeat_interval_secs.is_multiple_of(60) {
            if minutes == 1 {
                "every minute".to_owned()
            } else {
                format!("every {minutes} minutes")
            }
        } else {
            format!("every {} seconds", self.heartbeat_interval_secs)
        };
        let mut collected = vec![format!(
            "A heartbeat {every} while you are signed in: your user name, the computer's name, \
             whether you are active, idle (no keyboard or mouse input for a while) or paused, and the time."
        )];
        if self.logs_per_day > 0 {
            let shots = match self.logs_per_day {
                1 => "One detailed log".to_owned(),
                2 => "Two detailed logs".to_owned(),
                n => format!("{n} detailed logs"),
            };
            collected.push(format!(
                "{shots} each working day ({}), at random times between {} and {}: a screenshot of your \
                 whole desktop, your user name, the computer's name, its local and public IP addresses, \
                 an approximate location (city and country) looked up from the public IP address, and the time.",
                self.days_text(),
                self.window_start,
                self.window_end
            ));
        }
        collected.extend(self.activity.consent_items());
        collected.push(
            "When the app starts and stops, and when a planned detailed log could not be taken (and why)."
                .into(),
        );
        let mut not_collected = self.activity.not_collected();
        not_collected.push(if self.logs_per_day > 0 {
            "No screenshots other than the ones above, and none while monitoring is paused.".to_owned()
        } else {
            "No screenshots.".to_owned()
        });
        let mut control = vec![];
        if self.logs_per_day > 0 {
            control.push(
                "You are notified every time a screenshot is taken. The planned times are never shown in advance."
                    .to_owned(),
            );
        }
        match (self.pause.allowed, self.pause.max_minutes) {
            (false, _) => control.push(format!("Pausing is turned off by {}.", self.organisation)),
            (true, None) => control.push(
                "You can pause monitoring for personal time, up to the end of the day: heartbeats then say \
                 \"paused\" and no screenshot is taken."
                    .to_owned(),
            ),
            (true, Some(m)) => control.push(format!(
                "You can pause monitoring for personal time, up to {m} minutes at a time: heartbeats then say \
                 \"paused\" and no screenshot is taken."
            )),
        }
        control.push(
            "You can see everything this computer has sent, with your own screenshots, in the app's \
             \"Sent\" page for the last 30 days."
                .to_owned(),
        );
        let sections = vec![
            ConsentSection {
                heading: "What is collected".into(),
                items: collected,
            },
            ConsentSection {
                heading: "What is not collected".into(),
                items: not_collected,
            },
            ConsentSection {
                heading: "Who sees it and for how long".into(),
                items: vec![
                    format!(
                        "It is sent over an encrypted connection to {}'s own server.",
                        self.organisation
                    ),
                    format!("It can be seen by {}.", self.viewers),
                    format!(
                        "The server deletes everything, screenshots included, after {} days.",
                        self.retention_days
                    ),
                ],
            },
            ConsentSection {
                heading: "What you control".into(),
                items: control,
            },
        ];
        let title = format!(
            "{} uses WFH Monitor on this computer",
            capitalise(&self.organisation)
        );
        let mut hash = Sha256::new();
        hash.update(title.as_bytes());
        for s in &sections {
            hash.update([0]);
            hash.update(s.heading.as_bytes());
            for i in &s.items {
                hash.update([1]);
                hash.update(i.as_bytes());
            }
        }
        let digest = hash.finalize();
        let version = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Consent {
            version,
            title,
            sections,
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_a_kind_off_is_narrower_turning_one_on_is_not() {
        let accepted = MonitoringPolicy {
            activity: ActivityPolicy {
                applications: true,
                window_titles: true,
                title_redactions: vec!["bank".into()],
                key_counts: true,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(accepted.collects_no_more_than(&accepted));
        let fewer = |f: &dyn Fn(&mut MonitoringPolicy)| {
            let mut p = accepted.clone();
            f(&mut p);
            p.collects_no_more_than(&accepted)
        };
        assert!(fewer(&|p| p.activity.key_counts = false));
        assert!(fewer(&|p| p.activity.window_titles = false));
        assert!(fewer(&|p| p.activity.title_redactions.push("salary".into())));
        assert!(fewer(&|p| p.logs_per_day = 1));
        assert!(fewer(&|p| p.heartbeat_interval_secs = 600));
        assert!(fewer(&|p| p.window_start = "09:00".into()));
        assert!(!fewer(&|p| p.activity.websites = true), "a kind turned on");
        assert!(!fewer(&|p| p.activity.idle_time = true));
        assert!(
            !fewer(&|p| p.activity.title_redactions.clear()),
            "a redaction removed"
        );
        assert!(!fewer(&|p| p.logs_per_day = 3));
        assert!(!fewer(&|p| p.heartbeat_interval_secs = 60));
        assert!(!fewer(&|p| p.working_days.push("sat".into())));
        assert!(!fewer(&|p| p.window_end = "23:00".into()));
        assert!(!fewer(&|p| p.viewers = "everyone".into()), "who sees it changed");
        assert!(!fewer(&|p| p.pause.allowed = false), "the employee loses pausing");
        assert!(!fewer(&|p| p.quit_allowed = false));
    }

    #[test]
    fn the_default_policy_is_valid_and_names_every_promise() {
        let p = MonitoringPolicy::default();
        p.validate().unwrap();
        let c = p.consent();
        let text: String = c.sections.iter().flat_map(|s| s.items.clone()).collect();
        for promise in [
            "every 5 minutes",
            "Two detailed logs",
            "Monday to Friday",
            "between 08:00 and 22:00",
            "screenshot of your whole desktop",
            "public IP",
            "approximate location",
            "after 30 days",
            "notified every time a screenshot is taken",
        ] {
            assert!(text.contains(promise), "missing {promise:?} in {text}");
        }
        assert_eq!(c.version.len(), 16);
    }

    #[test]
    fn any_change_to_what_is_collected_changes_the_version() {
        let base = MonitoringPolicy::default();
        let v = base.consent().version;
        let changes: [fn(&mut MonitoringPolicy); 7] = [
            |p| p.heartbeat_interval_secs = 600,
            |p| p.logs_per_day = 3,
            |p| p.working_days.push("sat".into()),
            |p| p.window_end = "18:00".into(),
            |p| p.retention_days = 60,
            |p| p.viewers = "HR".into(),
            |p| p.pause.max_minutes = Some(60),
        ];
        for change in changes {
            let mut p = base.clone();
            change(&mut p);
            assert_ne!(p.consent().version, v, "{p:?}");
        }
        // Quitting is not about what is collected: same consent.
        let mut p = base.clone();
        p.quit_allowed = false;
        assert_eq!(p.consent().version, v);
    }

    #[test]
    fn validation_names_every_problem() {
        let p = MonitoringPolicy {
            heartbeat_interval_secs: 0,
            working_days: vec!["Monday".into()],
            window_start: "23:00".into(),
            window_end: "08:00".into(),
            organisation: " ".into(),
            ..Default::default()
        };
        let e = p.validate().unwrap_err();
        for part in [
            "heartbeat_interval_secs",
            "\"Monday\"",
            "before window_end",
            "organisation",
        ] {
            assert!(e.contains(part), "{e}");
        }
    }

    #[test]
    fn pause_limits_follow_the_policy() {
        let mut p = MonitoringPolicy::default();
        assert_eq!(p.pause_limit(300), Some(300));
        p.pause.max_minutes = Some(60);
        assert_eq!(p.pause_limit(300), Some(60));
        assert_eq!(p.pause_limit(20), Some(20));
        p.pause.allowed = false;
        assert_eq!(p.pause_limit(300), None);
    }
}
