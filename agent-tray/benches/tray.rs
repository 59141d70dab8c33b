//! Tray app benchmark: resident memory of the whole process tree (the app
//! and the WebKit processes it starts), idle with the window closed, then
//! with the window open, on a real Xvfb desktop session with a real server.
//! Prints figures (`scripts/bench-tray`; see docs/benchmarks.md).
//!
//! Figures: the sum of RSS over the tree (pages shared between the processes
//! counted once per process: the pessimistic number, the one the target is
//! judged by) and the sum of PSS (shared pages split between them).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::tray::{click, find, menu, tray_item};
use support::{enrolled_agent, env_or, eventually, free_addr, median, Desktop, Server};

/// `pid` and all its descendants, with their command names.
fn tree(pid: u32) -> BTreeMap<u32, String> {
    let mut parents: Vec<(u32, u32, String)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let ppid = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        parents.push((p, ppid, name));
    }
    let mut found = BTreeMap::new();
    found.insert(pid, "wfh-agent".to_owned());
    loop {
        let before = found.len();
        for (p, ppid, name) in &parents {
            if found.contains_key(ppid) && !found.contains_key(p) {
                found.insert(*p, name.clone());
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// (RSS, PSS) of one process in MiB, from smaps_rollup.
fn rss_pss(pid: u32) -> (f64, f64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return (0.0, 0.0);
    };
    let kib = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (kib("Rss:") / 1024.0, kib("Pss:") / 1024.0)
}

struct Sample {
    rss: f64,
    pss: f64,
    per_process: BTreeMap<String, f64>,
}

fn sample(pid: u32) -> Sample {
    let mut s = Sample {
        rss: 0.0,
        pss: 0.0,
        per_process: BTreeMap::new(),
    };
    for (p, name) in tree(pid) {
        let (rss, pss) = rss_pss(p);
        s.rss += rss;
        s.pss += pss;
        *s.per_process.entry(name).or_default() += rss;
    }
    s
}

async fn measure(label: &str, pid: u32, settle: u64, seconds: u64) {
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let mut samples = Vec::new();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(seconds) {
        samples.push(sample(pid));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let last = samples.last().map(|s| s.per_process.clone()).unwrap_or_default();
    let n = samples.len();
    let rss = median(samples.iter().map(|s| s.rss).collect());
    let pss = median(samples.iter().map(|s| s.pss).collect());
    println!("  {label:<34} RSS {rss:>6.1} MiB   PSS {pss:>6.1} MiB   (median of {n})");
    let parts: Vec<String> = last
        .iter()
        .map(|(name, mib)| format!("{name} {mib:.1}"))
        .collect();
    println!("  {:<34} {}", "", parts.join(", "));
}

async fn bench(settle: u64, seconds: u64) {
    println!("tray app (wfh-agent, Tauri 2 + WebKitGTK), enrolled, heartbeat every 300 s, over HTTPS:");
    let desktop = Desktop::start("#1791c9");
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), free_addr()).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let (_dir, mut agent) = enrolled_agent(&desktop, &url, &server, "token_store = \"keyring\"\n").await;
    agent.spawn_tray();
    let pid = agent.pid();
    let item = eventually("the tray item", Duration::from_secs(60), || async {
        tray_item(&desktop)
    })
    .await;
    measure("window closed (tray only)", pid, settle, seconds).await;

    let m = menu(&desktop, &item);
    let (open, _) = find(&m, "Open WFH Monitor").expect("an Open item");
    click(&desktop, &item, open);
    measure("window open (status page)", pid, settle, seconds).await;
    agent.stop();
    server.stop().await;
}

fn main() {
    let settle = env_or("WFH_BENCH_SETTLE_SECS", 15);
    let seconds = env_or("WFH_BENCH_SECS", 30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(settle, seconds));
}
