//! Websites, from the WFH Monitor browser extension (`browser-extension/`)
//! over native messaging.
//!
//! The browser starts `wfh-agent` itself as its *native messaging host*
//! (Chromium and Chrome pass the extension's origin as the first argument,
//! Firefox the host manifest and the extension's id); no port is opened. The
//! host reads the extension's messages from stdin — a 4-byte length in the
//! machine's byte order, then JSON — and keeps the latest active tab in the
//! agent's own database, where the sampling task reads it while a browser is
//! in front. What leaves the device is decided there, by the policy: the
//! domain only, or the full address where `full_urls` is on.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outbox::{Outbox, OutboxError};

/// The native messaging host's name, as the extension connects to it.
pub const HOST_NAME: &str = "com.wfh_monitor.agent";
/// The Chromium extension's id (fixed by the public key in its manifest).
pub const CHROMIUM_EXTENSION_ID: &str = "fpgkacekcpbagllogmgeinjdbcpgikpo";
/// The Firefox extension's id (`browser_specific_settings.gecko.id`).
pub const FIREFOX_EXTENSION_ID: &str = "agent@wfh-monitor.invalid";
const META: &str = "browser_tab";
/// Largest message accepted from the browser.
const MAX_MESSAGE: u32 = 64 * 1024;

/// The active tab as the extension last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabReport {
    /// Lower case, without "www."; `None` for a page that is not a website.
    pub domain: Option<String>,
    pub url: Option<String>,
    pub at: DateTime<Utc>,
}

/// Is this process started by a browser as its native messaging host?
pub fn launched_as_host(args: &[String]) -> bool {
    args.get(1)
        .is_some_and(|a| a.starts_with(&format!("chrome-extension://{CHROMIUM_EXTENSION_ID}")))
        || args.get(2).is_some_and(|a| a == FIREFOX_EXTENSION_ID)
}

/// The domain of a web address: lower case, without "www."; `None` for
/// anything but http(s).
pub fn domain_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    Some(host.strip_prefix("www.").unwrap_or(&host).to_owned())
}

/// Is `app` (as [`crate::foreground::Focus::app`] names it) a web browser?
pub fn is_browser(app: &str) -> bool {
    let a = app.to_ascii_lowercase();
    [
        "chrom",
        "chrome",
        "firefox",
        "msedge",
        "microsoft-edge",
        "brave",
        "vivaldi",
        "opera",
    ]
    .iter()
    .any(|b| a.contains(b))
}

#[derive(Debug, Deserialize)]
struct Message {
    kind: String,
    #[serde(default)]
    url: Option<String>,
}

/// One message from `input`; `None` at the end of the stream.
fn read_message(input: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_ne_bytes(len);
    if len > MAX_MESSAGE {
        return Err(std::io::Error::other(format!("a message of {len} bytes")));
    }
    let mut body = vec![0; len as usize];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Serve the browser until it closes the pipe: keep each reported tab.
pub async fn serve(outbox: &Outbox, input: impl Read + Send + 'static) -> Result<usize, OutboxError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut input = input;
        while let Ok(Some(m)) = read_message(&mut input) {
            if tx.blocking_send(m).is_err() {
                break;
            }
        }
    });
    let mut kept = 0;
    while let Some(body) = rx.recv().await {
        let Ok(m) = serde_json::from_slice::<Message>(&body) else {
            tracing::warn!("an unreadable message from the browser extension");
            continue;
        };
        if m.kind != "active_tab" {
            continue;
        }
        let report = TabReport {
            domain: m.url.as_deref().and_then(domain_of),
            url: m.url.filter(|u| domain_of(u).is_some()),
            at: Utc::now(),
        };
        outbox
            .set_meta(META, Some(&serde_json::to_string(&report).expect("serialises")))
            .await?;
        kept += 1;
    }
    Ok(kept)
}

/// The latest tab the extension reported, if any.
pub async fn current(outbox: &Outbox) -> Result<Option<TabReport>, OutboxError> {
    Ok(outbox
        .meta(META)
        .await?
        .and_then(|j| serde_json::from_str(&j).ok()))
}

/// A Chromium-family host manifest (`allowed_origins`) or Firefox's
/// (`allowed_extensions`), naming `exe` as the host.
pub fn host_manifest(exe: &Path, firefox: bool) -> serde_json::Value {
    let mut m = serde_json::json!({
        "name": HOST_NAME,
        "description": "WFH Monitor agent: the website of the active tab, where the monitoring policy includes websites",
        "path": exe,
        "type": "stdio",
    });
    if firefox {
        m["allowed_extensions"] = serde_json::json!([FIREFOX_EXTENSION_ID]);
    } else {
        m["allowed_origins"] = serde_json::json!([format!("chrome-extension://{CHROMIUM_EXTENSION_ID}/")]);
    }
    m
}

/// Where this user's browsers look for native messaging hosts (Linux and
/// macOS; Windows reads them from the registry, which the MSI writes).
/// With `profile`, the one folder of a Chromium profile started with
/// `--user-data-dir`.
pub fn host_dirs(home: &Path, profile: Option<&Path>) -> Vec<(PathBuf, bool)> {
    if let Some(p) = profile {
        return vec![(p.join("NativeMessagingHosts"), false)];
    }
    if cfg!(target_os = "macos") {
        let support = home.join("Library/Application Support");
        return vec![
            (support.join("Chromium/NativeMessagingHosts"), false),
            (support.join("Google/Chrome/NativeMessagingHosts"), false),
            (support.join("Microsoft Edge/NativeMessagingHosts"), false),
            (support.join("Mozilla/NativeMessagingHosts"), true),
        ];
    }
    let config = home.join(".config");
    vec![
        (config.join("chromium/NativeMessagingHosts"), false),
        (config.join("google-chrome/NativeMessagingHosts"), false),
        (config.join("microsoft-edge/NativeMessagingHosts"), false),
        (home.join(".mozilla/native-messaging-hosts"), true),
    ]
}

/// Write the host manifests; returns the files written.
pub fn install(exe: &Path, dirs: &[(PathBuf, bool)]) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (dir, firefox) in dirs {
        std::fs::create_dir_all(dir)?;
        let file = dir.join(format!("{HOST_NAME}.json"));
        let body = serde_json::to_vec_pretty(&host_manifest(exe, *firefox)).expect("serialises");
        std::fs::write(&file, body)?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_host_manifests_are_what_install_writes() {
        let exe = Path::new("/usr/bin/wfh-agent");
        for (file, firefox) in [
            (
                include_str!("../../installers/linux/native-messaging/chromium.json"),
                false,
            ),
            (
                include_str!("../../installers/linux/native-messaging/firefox.json"),
                true,
            ),
        ] {
            let shipped: serde_json::Value = serde_json::from_str(file).unwrap();
            assert_eq!(shipped, host_manifest(exe, firefox));
        }
        // The extension's manifest carries the key that gives it this id.
        let manifest: serde_json::Value =
            serde_json::from_str(include_str!("../../browser-extension/manifest.json")).unwrap();
        assert_eq!(
            manifest["browser_specific_settings"]["gecko"]["id"],
            FIREFOX_EXTENSION_ID
        );
        assert!(manifest["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "nativeMessaging"));
    }

    #[test]
    fn domains_are_lower_case_without_www_and_only_for_the_web() {
        assert_eq!(
            domain_of("https://WWW.Example.COM/a?b").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            domain_of("http://alpha.test:8080/x").as_deref(),
            Some("alpha.test")
        );
        assert_eq!(domain_of("chrome://newtab/"), None);
        assert_eq!(domain_of("file:///etc/passwd"), None);
        assert_eq!(domain_of("not a url"), None);
    }

    #[test]
    fn the_browser_is_recognised_by_how_it_starts_the_host() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(launched_as_host(&args(&[
            "wfh-agent",
            "chrome-extension://fpgkacekcpbagllogmgeinjdbcpgikpo/"
        ])));
        assert!(launched_as_host(&args(&[
            "wfh-agent",
            "/x/com.wfh_monitor.agent.json",
            "agent@wfh-monitor.invalid"
        ])));
        assert!(!launched_as_host(&args(&[
            "wfh-agent",
            "chrome-extension://someoneelse/"
        ])));
        assert!(!launched_as_host(&args(&["wfh-agent", "run"])));
    }

    #[test]
    fn messages_are_length_prefixed_json() {
        let mut stream = Vec::new();
        for m in [
            r#"{"kind":"active_tab","url":"https://a.test/"}"#,
            r#"{"kind":"x"}"#,
        ] {
            stream.extend((m.len() as u32).to_ne_bytes());
            stream.extend(m.as_bytes());
        }
        let mut input = std::io::Cursor::new(stream);
        assert_eq!(
            read_message(&mut input).unwrap().unwrap(),
            br#"{"kind":"active_tab","url":"https://a.test/"}"#
        );
        assert!(read_message(&mut input).unwrap().is_some());
        assert!(read_message(&mut input).unwrap().is_none());
        let mut huge = std::io::Cursor::new(u32::MAX.to_ne_bytes().to_vec());
        assert!(read_message(&mut huge).is_err());
    }

    /// A hostile or broken browser: thousands of generated streams (random
    /// bytes, lengths past the limit, cut-off frames, JSON of every shape,
    /// addresses of every scheme) never panic the host, and what it keeps is
    /// only ever a web page's domain. Seeded, so a failure repeats.
    #[tokio::test]
    async fn generated_hostile_frames_never_panic_and_keep_only_web_domains() {
        use rand::{Rng as _, SeedableRng as _};
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x7ab5);
        let urls = [
            "https://example.com/x",
            "http://WWW.Site.Test:8080/a?b#c",
            "javascript:alert(1)",
            "file:///etc/shadow",
            "data:text/html,<b>",
            "https://xn--n3h.example/\u{202e}",
            "",
            "https://",
            "chrome://settings",
        ];
        let mut frames_total = 0;
        for _ in 0..300 {
            let mut stream = Vec::new();
            for _ in 0..rng.random_range(0..6) {
                frames_total += 1;
                let body: Vec<u8> = match rng.random_range(0..5) {
                    0 => (0..rng.random_range(0..200)).map(|_| rng.random()).collect(),
                    1 => format!(
                        r#"{{"kind":"active_tab","url":{},"at":"{}"}}"#,
                        serde_json::to_string(urls[rng.random_range(0..urls.len())]).unwrap(),
                        rng.random::<u32>()
                    )
                    .into_bytes(),
                    2 => format!(r#"{{"kind":{},"url":[1,2]}}"#, rng.random::<i64>()).into_bytes(),
                    3 => br#"{"kind":"active_tab","url":null}"#.to_vec(),
                    _ => "[".repeat(rng.random_range(1..2000)).into_bytes(),
                };
                let declared = match rng.random_range(0..10) {
                    0 => rng.random::<u32>(),
                    1 => MAX_MESSAGE + 1,
                    _ => body.len() as u32,
                };
                stream.extend(declared.to_ne_bytes());
                let cut = if rng.random_range(0..8) == 0 {
                    rng.random_range(0..=body.len())
                } else {
                    body.len()
                };
                stream.extend(&body[..cut]);
            }
            serve(&outbox, std::io::Cursor::new(stream)).await.unwrap();
            if let Some(tab) = current(&outbox).await.unwrap() {
                match &tab.domain {
                    Some(d) => assert!(
                        !d.is_empty() && d == &d.to_ascii_lowercase() && !d.starts_with("www."),
                        "{tab:?}"
                    ),
                    None => assert!(tab.url.is_none(), "{tab:?}"),
                }
                if let Some(url) = &tab.url {
                    assert!(
                        url.starts_with("http://") || url.starts_with("https://"),
                        "{tab:?}"
                    );
                }
            }
        }
        assert!(frames_total > 500);
    }
}
