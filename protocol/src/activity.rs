//! Activity insight: what a stretch of the working day went to.
//!
//! The agent samples the focused application (and, where the policy allows,
//! its window title), the active browser tab's domain, the OS idle time and a
//! count of key presses, and sums them into buckets of
//! [`ActivityPolicy::bucket_secs`]. Each bucket is one
//! [`ActivityRequest`], delivered through the outbox like a heartbeat (an
//! event id, stored once). Every kind of collection is a switch in
//! [`ActivityPolicy`], and the consent names exactly the ones switched on.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Longest application name, window title, domain or URL kept (characters);
/// the agent shortens longer ones.
pub const MAX_LABEL_CHARS: usize = 300;
/// Most applications or websites in one bucket (the agent keeps the ones
/// with the most time and sums the rest into "(other)").
pub const MAX_ENTRIES: usize = 50;
/// Stands in for a window title that matched a redaction pattern.
pub const REDACTED: &str = "(redacted)";
/// Stands in for the applications or websites beyond [`MAX_ENTRIES`].
pub const OTHER: &str = "(other)";

/// Which kinds of activity are collected. Everything is off by default:
/// turning a kind on changes the consent, and the agent waits for the
/// employee to accept it again before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ActivityPolicy {
    /// Time per focused application (its executable's name). Default false.
    pub applications: bool,
    /// Window titles with the applications (needs `applications`). Default false.
    pub window_titles: bool,
    /// Regular expressions; a window title matching any of them is replaced
    /// by "(redacted)" on the device, before anything leaves it. Default none.
    pub title_redactions: Vec<String>,
    /// Time per website (the domain of the active browser tab, through the
    /// browser extension). Default false.
    pub websites: bool,
    /// Full addresses with the websites (needs `websites`). Default false.
    pub full_urls: bool,
    /// Active and idle seconds (no keyboard or mouse input for
    /// `idle_after_secs`). Default false.
    pub idle_time: bool,
    /// The number of key presses, never which keys. Default false.
    pub key_counts: bool,
    /// Seconds between two looks at the focused window. Default 5.
    pub sample_secs: u32,
    /// Length of one bucket in seconds (a divisor of 3600). Default 300.
    pub bucket_secs: u32,
    /// Seconds without input after which time counts as idle. Default 120.
    pub idle_after_secs: u32,
}

impl Default for ActivityPolicy {
    fn default() -> Self {
        Self {
            applications: false,
            window_titles: false,
            title_redactions: Vec::new(),
            websites: false,
            full_urls: false,
            idle_time: false,
            key_counts: false,
            sample_secs: 5,
            bucket_secs: 300,
            idle_after_secs: 120,
        }
    }
}

impl ActivityPolicy {
    /// Is anything collected at all?
    pub fn any(&self) -> bool {
        self.applications || self.websites || self.idle_time || self.key_counts
    }

    /// Everything wrong, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.window_titles && !self.applications {
            problems.push("activity.window_titles needs activity.applications".to_owned());
        }
        if self.full_urls && !self.websites {
            problems.push("activity.full_urls needs activity.websites".to_owned());
        }
        if !(1..=60).contains(&self.sample_secs) {
            problems.push("activity.sample_secs must be between 1 and 60".to_owned());
        }
        if !(60..=3600).contains(&self.bucket_secs) || 3600 % self.bucket_secs != 0 {
            problems.push("activity.bucket_secs must divide an hour and be at least 60".to_owned());
        } else if self.bucket_secs < self.sample_secs {
            problems.push("activity.bucket_secs must be at least activity.sample_secs".to_owned());
        }
        if !(10..=3600).contains(&self.idle_after_secs) {
            problems.push("activity.idle_after_secs must be between 10 and 3600".to_owned());
        }
        if self.title_redactions.len() > 100 {
            problems.push("activity.title_redactions: at most 100 patterns".to_owned());
        }
        for p in &self.title_redactions {
            if let Err(e) = regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                let first = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
                problems.push(format!(
                    "activity.title_redactions: {p:?} is not a regular expression ({first})"
                ));
            }
        }
        problems
    }

    /// The sentences the consent adds for what is switched on (empty when
    /// nothing is).
    pub fn consent_items(&self) -> Vec<String> {
        if !self.any() {
            return Vec::new();
        }
        let mut parts = Vec::new();
        if self.applications {
            parts.push(if self.window_titles {
                if self.title_redactions.is_empty() {
                    "which application is in front and the title of its window".to_owned()
                } else {
                    format!(
                        "which application is in front and the title of its window (titles matching {} \
                         pattern{} set by your employer are replaced by \"{REDACTED}\" on this computer)",
                        self.title_redactions.len(),
                        if self.title_redactions.len() == 1 { "" } else { "s" }
                    )
                }
            } else {
                "which application is in front (its name only, not the window title)".to_owned()
            });
        }
        if self.websites {
            parts.push(if self.full_urls {
                "the full address of the active tab in your browser, through the WFH Monitor browser extension"
                    .to_owned()
            } else {
                "the website (domain only, such as example.com) of the active tab in your browser, through \
                 the WFH Monitor browser extension"
                    .to_owned()
            });
        }
        if self.idle_time {
            parts.push(format!(
                "how long you are active and how long idle (no keyboard or mouse input for {})",
                minutes_text(self.idle_after_secs)
            ));
        }
        if self.key_counts {
            parts.push("how many keys you press (a number only, never which keys)".to_owned());
        }
        vec![format!(
            "Activity while you are signed in and not paused, looked at every {} and summed per {}: {}.",
            seconds_text(self.sample_secs),
            minutes_text(self.bucket_secs),
            join_and(&parts)
        )]
    }

    /// The consent's "not collected" sentences that activity collection
    /// changes (with nothing switched on, the same text as before activity
    /// existed, so the default consent keeps its version).
    pub fn not_collected(&self) -> Vec<String> {
        let first = if self.key_counts {
            "No keystrokes or typed text (key presses are only counted), no microphone, no camera."
        } else {
            "No keystrokes, no typed text, no microphone, no camera."
        };
        let mut no = Vec::new();
        if !self.websites {
            no.push("no browsing history");
        } else if !self.full_urls {
            no.push("no full web addresses, page titles or page contents");
        }
        no.push("no file contents");
        if !self.applications {
            no.push("no list of applications or windows");
        } else if !self.window_titles {
            no.push("no window titles");
        }
        let second = no.join(", ");
        vec![
            first.to_owned(),
            format!("{}{}.", second[..1].to_uppercase(), &second[1..]),
        ]
    }
}

fn seconds_text(s: u32) -> String {
    if s == 1 {
        "second".to_owned()
    } else {
        format!("{s} seconds")
    }
}

fn minutes_text(s: u32) -> String {
    match (s / 60, s % 60) {
        (1, 0) => "a minute".to_owned(),
        (m, 0) => format!("{m} minutes"),
        _ => format!("{s} seconds"),
    }
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}; and {last}", init.join("; ")),
    }
}

/// `POST /api/activity`: one bucket of activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivityRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub hostname: String,
    /// Chosen by the agent; a retry with the same id is stored once.
    pub event_id: Uuid,
    /// Start of the bucket on the device, RFC 3339 with its UTC offset.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub start: DateTime<FixedOffset>,
    /// Length of the bucket in seconds (1 to 3600).
    pub duration_secs: u32,
    /// Seconds sampled while monitoring was on (not paused, agent running).
    pub observed_secs: u32,
    /// Seconds with input and without (when `idle_time` is on).
    #[serde(default)]
    pub active_secs: Option<u32>,
    #[serde(default)]
    pub idle_secs: Option<u32>,
    /// Seconds per focused application (when `applications` is on).
    #[serde(default)]
    pub apps: Vec<AppTime>,
    /// Seconds per website (when `websites` is on).
    #[serde(default)]
    pub sites: Vec<SiteTime>,
    /// Key presses (when `key_counts` is on and the OS lets the agent count).
    #[serde(default)]
    pub key_presses: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppTime {
    /// The application (executable name without path or ".exe").
    pub app: String,
    /// The window title (only when `window_titles` is on; may be "(redacted)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SiteTime {
    /// The domain, lower case, without "www.".
    pub domain: String,
    /// The full address (only when `full_urls` is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub secs: u32,
}

impl ActivityRequest {
    /// Everything wrong with the bucket's figures (not its names), one
    /// sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let d = self.duration_secs;
        if !(1..=3600).contains(&d) {
            p.push("duration_secs must be between 1 and 3600".to_owned());
        }
        if self.observed_secs > d {
            p.push("observed_secs is longer than the bucket".to_owned());
        }
        if let (Some(a), Some(i)) = (self.active_secs, self.idle_secs) {
            if u64::from(a) + u64::from(i) > u64::from(self.observed_secs) {
                p.push("active_secs + idle_secs is more than observed_secs".to_owned());
            }
        } else if self.active_secs.is_some() != self.idle_secs.is_some() {
            p.push("active_secs and idle_secs come together".to_owned());
        }
        for (what, n, sum) in [
            (
                "apps",
                self.apps.len(),
                self.apps.iter().map(|a| u64::from(a.secs)).sum::<u64>(),
            ),
            (
                "sites",
                self.sites.len(),
                self.sites.iter().map(|s| u64::from(s.secs)).sum(),
            ),
        ] {
            if n > MAX_ENTRIES + 1 {
                p.push(format!("{what}: at most {} entries", MAX_ENTRIES + 1));
            }
            if sum > u64::from(self.observed_secs) {
                p.push(format!("{what}: the seconds add up to more than observed_secs"));
            }
        }
        let long = |s: &str| s.trim().is_empty() || s.chars().count() > MAX_LABEL_CHARS;
        if self.apps.iter().any(|a| {
            long(&a.app)
                || a.title
                    .as_deref()
                    .is_some_and(|t| t.chars().count() > MAX_LABEL_CHARS)
        }) {
            p.push(format!(
                "apps: names and titles are 1 to {MAX_LABEL_CHARS} characters"
            ));
        }
        if self
            .sites
            .iter()
            .any(|s| long(&s.domain) || s.url.as_deref().is_some_and(|u| u.chars().count() > 2048))
        {
            p.push(format!(
                "sites: domains are 1 to {MAX_LABEL_CHARS} characters, addresses at most 2048"
            ));
        }
        p
    }

    /// Drop what `policy` does not allow (a bucket made under an older
    /// policy may carry more than the one now in force).
    pub fn restrict_to(&mut self, policy: &ActivityPolicy) -> bool {
        let before = self.clone();
        if !policy.applications {
            self.apps.clear();
        } else if !policy.window_titles {
            let mut merged: Vec<AppTime> = Vec::new();
            for a in self.apps.drain(..) {
                match merged.iter_mut().find(|m| m.app == a.app) {
                    Some(m) => m.secs += a.secs,
                    None => merged.push(AppTime { title: None, ..a }),
                }
            }
            self.apps = merged;
        }
        if !policy.websites {
            self.sites.clear();
        } else if !policy.full_urls {
            let mut merged: Vec<SiteTime> = Vec::new();
            for s in self.sites.drain(..) {
                match merged.iter_mut().find(|m| m.domain == s.domain) {
                    Some(m) => m.secs += s.secs,
                    None => merged.push(SiteTime { url: None, ..s }),
                }
            }
            self.sites = merged;
        }
        if !policy.idle_time {
            self.active_secs = None;
            self.idle_secs = None;
        }
        if !policy.key_counts {
            self.key_presses = None;
        }
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_collected_by_default() {
        let p = ActivityPolicy::default();
        assert!(!p.any());
        assert!(p.consent_items().is_empty());
        assert!(p.problems().is_empty());
        assert_eq!(
            p.not_collected(),
            [
                "No keystrokes, no typed text, no microphone, no camera.",
                "No browsing history, no file contents, no list of applications or windows."
            ]
        );
    }

    #[test]
    fn the_consent_names_each_kind_switched_on() {
        let p = ActivityPolicy {
            applications: true,
            window_titles: true,
            title_redactions: vec!["(?i)bank".into()],
            websites: true,
            idle_time: true,
            key_counts: true,
            ..Default::default()
        };
        let text = p.consent_items().join(" ");
        for phrase in [
            "every 5 seconds",
            "per 5 minutes",
            "which application is in front and the title of its window",
            "1 pattern set by your employer",
            "the website (domain only",
            "browser extension",
            "idle (no keyboard or mouse input for 2 minutes)",
            "how many keys you press (a number only, never which keys)",
        ] {
            assert!(text.contains(phrase), "{phrase:?} missing from {text:?}");
        }
        assert!(!text.contains("full address"));
        let not = p.not_collected().join(" ");
        assert!(not.contains("key presses are only counted"), "{not}");
        assert!(not.contains("No full web addresses"), "{not}");
        assert!(!not.contains("window titles"), "{not}");
    }

    #[test]
    fn bad_switches_and_patterns_are_named() {
        let p = ActivityPolicy {
            window_titles: true,
            full_urls: true,
            title_redactions: vec!["(unclosed".into()],
            bucket_secs: 7,
            sample_secs: 0,
            ..Default::default()
        };
        let problems = p.problems().join("; ");
        for s in [
            "window_titles needs activity.applications",
            "full_urls needs activity.websites",
            "\"(unclosed\" is not a regular expression",
            "bucket_secs must divide an hour",
            "sample_secs must be between 1 and 60",
        ] {
            assert!(problems.contains(s), "{s:?} missing from {problems:?}");
        }
    }

    fn bucket() -> ActivityRequest {
        ActivityRequest {
            username: "ada".into(),
            hostname: "pc".into(),
            event_id: Uuid::nil(),
            start: "2026-12-01T09:00:00+01:00".parse().unwrap(),
            duration_secs: 300,
            observed_secs: 300,
            active_secs: Some(200),
            idle_secs: Some(100),
            apps: vec![
                AppTime {
                    app: "code".into(),
                    title: Some("a.rs".into()),
                    secs: 100,
                },
                AppTime {
                    app: "code".into(),
                    title: Some("b.rs".into()),
                    secs: 50,
                },
                AppTime {
                    app: "firefox".into(),
                    title: Some("News".into()),
                    secs: 150,
                },
            ],
            sites: vec![SiteTime {
                domain: "example.com".into(),
                url: Some("https://example.com/x".into()),
                secs: 150,
            }],
            key_presses: Some(42),
        }
    }

    #[test]
    fn figures_that_cannot_be_are_refused() {
        assert!(bucket().problems().is_empty());
        let mut b = bucket();
        b.idle_secs = Some(101);
        b.apps[0].secs = 101;
        let p = b.problems().join("; ");
        assert!(
            p.contains("active_secs + idle_secs is more than observed_secs"),
            "{p}"
        );
        assert!(
            p.contains("apps: the seconds add up to more than observed_secs"),
            "{p}"
        );
        let mut b = bucket();
        b.duration_secs = 0;
        b.apps[0].app = " ".into();
        let p = b.problems().join("; ");
        assert!(p.contains("duration_secs must be between 1 and 3600"), "{p}");
        assert!(p.contains("apps: names and titles"), "{p}");
    }

    #[test]
    fn what_the_policy_does_not_allow_is_dropped() {
        let mut b = bucket();
        let apps_only = ActivityPolicy {
            applications: true,
            websites: true,
            ..Default::default()
        };
        assert!(b.restrict_to(&apps_only));
        assert_eq!(
            b.apps,
            [
                AppTime {
                    app: "code".into(),
                    title: None,
                    secs: 150
                },
                AppTime {
                    app: "firefox".into(),
                    title: None,
                    secs: 150
                }
            ]
        );
        assert_eq!(b.sites[0].url, None);
        assert_eq!((b.active_secs, b.idle_secs, b.key_presses), (None, None, None));
        let mut b = bucket();
        assert!(b.restrict_to(&ActivityPolicy::default()));
        assert!(b.apps.is_empty() && b.sites.is_empty());
        let mut b = bucket();
        let all = ActivityPolicy {
            applications: true,
            window_titles: true,
            websites: true,
            full_urls: true,
            idle_time: true,
            key_counts: true,
            ..Default::default()
        };
        assert!(!b.restrict_to(&all));
    }
}
