//! Activity insight on the device: samples of the focused application, the
//! idle time and the key-press count, summed into buckets that go to the
//! server through the outbox.
//!
//! [`Recorder`] is pure (time comes with each sample): the state seen at a
//! sample holds until the next sample, at most twice the sampling period (a
//! longer gap is sleep or a stalled agent and counts as not observed). Time
//! is split at bucket edges, which are multiples of `bucket_secs` since the
//! epoch (whole hours and their divisions in every whole-hour time zone).
//! Titles pass the policy's redaction patterns here, before they are stored
//! anywhere; what the policy does not switch on is never put in a bucket.
//!
//! [`run`] is the sampling task: it looks every `sample_secs` while the engine
//! says collection is on, and stops at once (handing over the part of the
//! bucket so far) when it is switched off, paused or waiting for consent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Local, TimeZone as _, Utc};
use regex::Regex;
use tokio::sync::{watch, Notify};
use uuid::Uuid;
use wfh_protocol::activity::{MAX_ENTRIES, MAX_LABEL_CHARS, OTHER, REDACTED};
use wfh_protocol::{ActivityPolicy, ActivityRequest, AppTime, SiteTime};

use crate::clock::Clock;
use crate::foreground::{Focus, ForegroundSource, KeyCounter};
use crate::idle::IdleSource;
use crate::outbox::{Item, Outbox};
use crate::system::Identity;

/// One look at the desktop.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub focus: Option<Focus>,
    pub idle: Option<StdDuration>,
    /// Key presses since the previous sample (`None`: cannot be counted).
    pub keys: Option<u64>,
    /// The website in the browser's active tab, while a browser is in front:
    /// (domain, full address).
    pub site: Option<(String, Option<String>)>,
}

/// The policy with its redaction patterns compiled.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: ActivityPolicy,
    redactions: Vec<Regex>,
}

impl Rules {
    /// Patterns that do not compile redact every title: a policy the server
    /// accepted always compiles, so this only guards against a bad local file.
    pub fn new(policy: ActivityPolicy) -> Self {
        let mut redactions = Vec::new();
        let mut broken = false;
        for p in &policy.title_redactions {
            match Regex::new(p) {
                Ok(r) => redactions.push(r),
                Err(_) => broken = true,
            }
        }
        if broken {
            redactions = vec![Regex::new("").expect("the empty pattern compiles")];
        }
        Self { policy, redactions }
    }

    /// The title as it may leave the device (`None`: titles are off).
    pub fn title(&self, title: Option<&str>) -> Option<String> {
        if !self.policy.window_titles {
            return None;
        }
        let title = title.unwrap_or("").trim();
        if self.redactions.iter().any(|r| r.is_match(title)) {
            return Some(REDACTED.to_owned());
        }
        Some(shorten(title))
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(MAX_LABEL_CHARS).collect()
}

/// Sums samples into buckets.
#[derive(Debug)]
pub struct Recorder {
    rules: Rules,
    bucket: Option<Open>,
    last: Option<Sample>,
}

#[derive(Debug, Default)]
struct Open {
    start: DateTime<Utc>,
    observed_ms: i64,
    active_ms: i64,
    idle_ms: i64,
    apps: HashMap<(String, Option<String>), i64>,
    sites: HashMap<(String, Option<String>), i64>,
    keys: Option<u64>,
}

impl Recorder {
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            bucket: None,
            last: None,
        }
    }

    pub fn policy(&self) -> &ActivityPolicy {
        &self.rules.policy
    }

    fn bucket_len(&self) -> Duration {
        Duration::seconds(i64::from(self.rules.policy.bucket_secs.max(1)))
    }

    fn bucket_start(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let len = i64::from(self.rules.policy.bucket_secs.max(1));
        let secs = t.timestamp().div_euclid(len) * len;
        Utc.timestamp_opt(secs, 0).single().unwrap_or(t)
    }

    fn longest_gap(&self) -> Duration {
        Duration::seconds(i64::from(self.rules.policy.sample_secs.max(1)) * 2)
    }

    /// Take a sample; returns the buckets it completed.
    pub fn record(&mut self, sample: Sample) -> Vec<ActivityRequest> {
        let mut done = Vec::new();
        if let Some(prev) = self.last.take() {
            let mut from = prev.at;
            let until = sample.at.min(prev.at + self.longest_gap());
            while from < until {
                let start = self.bucket_start(from);
                self.enter(start, &mut done);
                let end = (start + self.bucket_len()).min(until);
                let ms = (end - from).num_milliseconds();
                let rules = &self.rules;
                let b = self.bucket.as_mut().expect("entered above");
                b.observed_ms += ms;
                let idle = prev
                    .idle
                    .is_some_and(|i| i >= StdDuration::from_secs(u64::from(rules.policy.idle_after_secs)));
                if idle {
                    b.idle_ms += ms;
                } else {
                    b.active_ms += ms;
                }
                if let Some(f) = &prev.focus {
                    let key = (shorten(&f.app), rules.title(f.title.as_deref()));
                    *b.apps.entry(key).or_default() += ms;
                }
                if let Some((domain, url)) = prev.site.as_ref().filter(|_| rules.policy.websites) {
                    let url = url.as_ref().filter(|_| rules.policy.full_urls);
                    let key = (shorten(domain), url.map(|u| u.chars().take(2048).collect()));
                    *b.sites.entry(key).or_default() += ms;
                }
                from = end;
            }
        }
        // Keys pressed since the previous sample count where they end.
        if let Some(k) = sample.keys.filter(|_| self.rules.policy.key_counts) {
            self.enter(self.bucket_start(sample.at), &mut done);
            let b = self.bucket.as_mut().expect("entered above");
            b.keys = Some(b.keys.unwrap_or(0) + k);
        }
        self.last = Some(sample);
        done
    }

    /// Make the bucket starting at `start` the open one, closing another
    /// into `done`.
    fn enter(&mut self, start: DateTime<Utc>, done: &mut Vec<ActivityRequest>) {
        if self.bucket.as_ref().is_some_and(|b| b.start != start) {
            done.extend(self.close());
        }
        self.bucket.get_or_insert_with(|| Open {
            start,
            ..Open::default()
        });
    }

    /// Hand over the bucket so far (collection stops, or the policy changes).
    pub fn flush(&mut self) -> Option<ActivityRequest> {
        self.last = None;
        self.close()
    }

    fn close(&mut self) -> Option<ActivityRequest> {
        let b = self.bucket.take()?;
        let p = &self.rules.policy;
        let secs = |ms: i64| u32::try_from(ms.max(0) / 1000).unwrap_or(u32::MAX);
        let observed = secs(b.observed_ms);
        if observed == 0 && b.keys.unwrap_or(0) == 0 {
            return None;
        }
        let apps = if p.applications {
            capped(
                b.apps.into_iter().map(|((app, title), ms)| AppTime {
                    app,
                    title,
                    secs: secs(ms),
                }),
                |a| (a.secs, a.app.clone()),
                |rest| AppTime {
                    app: OTHER.to_owned(),
                    title: None,
                    secs: rest,
                },
            )
        } else {
            Vec::new()
        };
        let sites = if p.websites {
            capped(
                b.sites.into_iter().map(|((domain, url), ms)| SiteTime {
                    domain,
                    url,
                    secs: secs(ms),
                }),
                |s| (s.secs, s.domain.clone()),
                |rest| SiteTime {
                    domain: OTHER.to_owned(),
                    url: None,
                    secs: rest,
                },
            )
        } else {
            Vec::new()
        };
        let start = b.start.with_timezone(&Local).fixed_offset();
        Some(ActivityRequest {
            username: String::new(),
            hostname: String::new(),
            event_id: Uuid::new_v4(),
            start,
            duration_secs: p.bucket_secs,
            observed_secs: observed,
            active_secs: p.idle_time.then(|| secs(b.active_ms)),
            idle_secs: p.idle_time.then(|| secs(b.idle_ms)),
            apps,
            sites,
            key_presses: if p.key_counts {
                b.keys.map(|k| u32::try_from(k).unwrap_or(u32::MAX))
            } else {
                None
            },
        })
    }
}

/// Entries with time, most first; beyond [`MAX_ENTRIES`] summed into one
/// made by `other`.
fn capped<T>(
    entries: impl Iterator<Item = T>,
    key: impl Fn(&T) -> (u32, String),
    other: impl FnOnce(u32) -> T,
) -> Vec<T> {
    let mut v: Vec<T> = entries.filter(|e| key(e).0 > 0).collect();
    v.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0).then_with(|| ka.1.cmp(&kb.1))
    });
    if v.len() > MAX_ENTRIES {
        let rest = v[MAX_ENTRIES..].iter().map(|e| key(e).0).sum();
        v.truncate(MAX_ENTRIES);
        v.push(other(rest));
    }
    v
}

/// What the sampling task needs from the agent.
#[derive(Clone)]
pub struct Sources {
    pub clock: Arc<dyn Clock>,
    pub idle: Arc<dyn IdleSource>,
    pub foreground: Arc<dyn ForegroundSource>,
    /// Starts a key counter; called only while the policy counts keys, and
    /// the counter is dropped (it stops listening) when it no longer does.
    pub keys: Arc<dyn Fn() -> Option<Box<dyn KeyCounter>> + Send + Sync>,
    pub identity: Identity,
}

/// Sample while `rules` holds a policy; `None` stops collection at once.
/// Finished buckets go to the outbox and wake `delivery`.
pub async fn run(
    mut rules: watch::Receiver<Option<ActivityPolicy>>,
    sources: Sources,
    outbox: Outbox,
    delivery: Arc<Notify>,
) {
    let mut recorder: Option<Recorder> = None;
    let mut keys_seen: Option<u64> = None;
    let mut counter: Option<Arc<dyn KeyCounter>> = None;
    loop {
        let wanted = rules.borrow_and_update().clone().filter(ActivityPolicy::any);
        if recorder.as_ref().map(Recorder::policy) != wanted.as_ref() {
            // Stopped or changed: the bucket so far goes, within the new
            // policy (a switch turned off drops that kind at once).
            if let Some(mut old) = recorder.take() {
                if let Some(mut b) = old.flush() {
                    if let Some(p) = &wanted {
                        b.restrict_to(p);
                    }
                    enqueue(&outbox, &sources, b, &delivery).await;
                }
            }
            recorder = wanted.map(|p| Recorder::new(Rules::new(p)));
            keys_seen = None;
            counter = None;
            if recorder.as_ref().is_some_and(|r| r.policy().key_counts) {
                let start = sources.keys.clone();
                counter = tokio::task::spawn_blocking(move || start())
                    .await
                    .ok()
                    .flatten()
                    .map(Arc::from);
                if counter.is_none() {
                    tracing::warn!("key presses cannot be counted on this desktop");
                }
            }
            if let Some(r) = &recorder {
                tracing::info!(
                    applications = r.policy().applications,
                    titles = r.policy().window_titles,
                    idle = r.policy().idle_time,
                    keys = r.policy().key_counts,
                    "activity sampling on"
                );
            } else {
                tracing::info!("activity sampling off");
            }
        }
        let Some(rec) = recorder.as_mut() else {
            if rules.changed().await.is_err() {
                return;
            }
            continue;
        };
        let period = StdDuration::from_secs(u64::from(rec.policy().sample_secs.max(1)));
        let s = sources.clone();
        let keys = counter.clone();
        // The window in front is looked at only when applications or
        // websites (which need to know that a browser is in front) are collected.
        let apps_wanted = rec.policy().applications || rec.policy().websites;
        let sites_wanted = rec.policy().websites;
        let taken = tokio::task::spawn_blocking(move || {
            let focus = if apps_wanted { s.foreground.focused() } else { None };
            let idle = s.idle.idle_for();
            (focus, idle, keys.and_then(|k| k.total()))
        })
        .await;
        let (focus, idle, total) = taken.unwrap_or((None, None, None));
        let keys = match (keys_seen, total) {
            (Some(before), Some(now)) => Some(now.saturating_sub(before)),
            (None, Some(_)) => Some(0),
            _ => None,
        };
        keys_seen = total;
        let site = match &focus {
            Some(f) if sites_wanted && crate::browser::is_browser(&f.app) => crate::browser::current(&outbox)
                .await
                .ok()
                .flatten()
                .and_then(|t| Some((t.domain?, t.url))),
            _ => None,
        };
        // Applications off: the window in front was only looked at for the browser.
        let focus = focus.filter(|_| rec.policy().applications);
        let sample = Sample {
            at: sources.clock.now(),
            focus,
            idle,
            keys,
            site,
        };
        for b in rec.record(sample) {
            enqueue(&outbox, &sources, b, &delivery).await;
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = rules.changed() => {
                if changed.is_err() {
                    if let Some(b) = recorder.as_mut().and_then(Recorder::flush) {
                        enqueue(&outbox, &sources, b, &delivery).await;
                    }
                    return;
                }
            }
        }
    }
}

async fn enqueue(outbox: &Outbox, sources: &Sources, mut bucket: ActivityRequest, delivery: &Notify) {
    bucket.username.clone_from(&sources.identity.username);
    bucket.hostname.clone_from(&sources.identity.hostname);
    match outbox.enqueue(&Item::Activity(bucket), sources.clock.now()).await {
        Ok(_) => delivery.notify_one(),
        Err(e) => tracing::error!(error = %e, "an activity bucket could not be queued"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn focus(app: &str, title: &str) -> Option<Focus> {
        Some(Focus {
            app: app.into(),
            title: Some(title.into()),
        })
    }

    fn all_on() -> ActivityPolicy {
        ActivityPolicy {
            applications: true,
            window_titles: true,
            title_redactions: vec!["(?i)bank".into()],
            idle_time: true,
            key_counts: true,
            ..Default::default()
        }
    }

    /// Samples every 5 s from `from` for `n` samples.
    fn feed(
        r: &mut Recorder,
        from: DateTime<Utc>,
        n: i64,
        f: Option<Focus>,
        idle_secs: u64,
        keys: u64,
    ) -> Vec<ActivityRequest> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend(r.record(Sample {
                at: from + Duration::seconds(5 * i),
                focus: f.clone(),
                idle: Some(StdDuration::from_secs(idle_secs)),
                keys: Some(keys),
                site: None,
            }));
        }
        out
    }

    #[test]
    fn time_goes_to_what_was_in_front_split_at_bucket_edges() {
        let mut r = Recorder::new(Rules::new(all_on()));
        // 09:03:00–09:04:00 the editor, then 09:04:00–09:06:00 the bank's page.
        let mut done = feed(
            &mut r,
            t("2026-12-01T09:03:00Z"),
            12,
            focus("code", "main.rs"),
            0,
            3,
        );
        done.extend(feed(
            &mut r,
            t("2026-12-01T09:04:00Z"),
            24,
            focus("firefox", "My Bank - Login"),
            0,
            0,
        ));
        done.extend(feed(
            &mut r,
            t("2026-12-01T09:06:00Z"),
            1,
            focus("firefox", "x"),
            0,
            0,
        ));
        assert_eq!(done.len(), 1, "the 09:00 bucket closed at 09:05");
        let b = &done[0];
        assert_eq!(b.start.to_utc(), t("2026-12-01T09:00:00Z"));
        assert_eq!(b.duration_secs, 300);
        assert_eq!(b.observed_secs, 120, "sampled from 09:03 only");
        assert_eq!(
            b.apps,
            [
                AppTime {
                    app: "code".into(),
                    title: Some("main.rs".into()),
                    secs: 60
                },
                AppTime {
                    app: "firefox".into(),
                    title: Some(REDACTED.into()),
                    secs: 60
                },
            ]
        );
        assert_eq!(b.key_presses, Some(3 * 12), "twelve samples of three presses");
        assert_eq!((b.active_secs, b.idle_secs), (Some(120), Some(0)));
        let rest = r.flush().unwrap();
        assert_eq!(rest.start.to_utc(), t("2026-12-01T09:05:00Z"));
        assert_eq!(rest.observed_secs, 60);
        assert_eq!(rest.apps[0].secs, 60);
        assert!(r.flush().is_none(), "nothing twice");
    }

    #[test]
    fn idle_time_and_gaps() {
        let mut r = Recorder::new(Rules::new(all_on()));
        // 09:00:00–09:00:30 with input, 09:00:30–09:00:55 without (idle for
        // longer than idle_after_secs), then the computer sleeps until 09:11.
        feed(&mut r, t("2026-12-01T09:00:00Z"), 6, focus("code", "a"), 0, 0);
        feed(&mut r, t("2026-12-01T09:00:30Z"), 6, focus("code", "a"), 500, 0);
        let done = r.record(Sample {
            at: t("2026-12-01T09:11:00Z"),
            focus: None,
            idle: None,
            keys: None,
            site: None,
        });
        assert!(done.is_empty());
        let b = r.flush().unwrap();
        assert_eq!(b.start.to_utc(), t("2026-12-01T09:00:00Z"));
        // 30 s active, 25 s idle, and of the sleep only twice the sampling
        // period (10 s, idle as last seen).
        assert_eq!(b.observed_secs, 65);
        assert_eq!((b.active_secs, b.idle_secs), (Some(30), Some(35)));
        assert_eq!(b.apps[0].secs, 65);
        assert_eq!(b.key_presses, Some(0));
    }

    #[test]
    fn what_is_switched_off_is_never_in_a_bucket() {
        let p = ActivityPolicy {
            applications: true,
            ..Default::default()
        };
        let mut r = Recorder::new(Rules::new(p));
        feed(
            &mut r,
            t("2026-12-01T09:00:00Z"),
            13,
            focus("code", "secret.txt"),
            999,
            50,
        );
        let b = r.flush().unwrap();
        assert_eq!(
            b.apps,
            [AppTime {
                app: "code".into(),
                title: None,
                secs: 60
            }]
        );
        assert_eq!((b.active_secs, b.idle_secs, b.key_presses), (None, None, None));
        assert!(!serde_json::to_string(&b).unwrap().contains("secret"));
    }

    #[test]
    fn beyond_fifty_applications_the_rest_is_other() {
        let mut r = Recorder::new(Rules::new(ActivityPolicy {
            applications: true,
            ..Default::default()
        }));
        for i in 0..61 {
            feed(
                &mut r,
                t("2026-12-01T09:00:00Z") + Duration::seconds(5 * i),
                1,
                focus(&format!("app{i:02}"), ""),
                0,
                0,
            );
        }
        let b = r.flush().unwrap();
        assert_eq!(b.apps.len(), MAX_ENTRIES + 1);
        let other = b.apps.last().unwrap();
        assert_eq!(other.app, OTHER);
        assert_eq!(other.secs, 10 * 5, "ten applications of 5 s each");
        assert!(ActivityRequest {
            username: "a".into(),
            hostname: "h".into(),
            ..b
        }
        .problems()
        .is_empty());
    }

    #[test]
    fn a_pattern_that_does_not_compile_redacts_every_title() {
        let rules = Rules::new(ActivityPolicy {
            applications: true,
            window_titles: true,
            title_redactions: vec!["(".into()],
            ..Default::default()
        });
        assert_eq!(rules.title(Some("anything")).as_deref(), Some(REDACTED));
    }
}
