//! Server benchmark: prints figures, asserts nothing. Run it with
//! `scripts/bench-server` (it builds the release binary and starts PostgreSQL).
//!
//! 1. Idle resident memory of the real `wfh-server` process on PostgreSQL.
//! 2. Heartbeats: C connections (default 64), each sending the next request
//!    as soon as the last is answered, for D seconds; requests/s, p50, p99.
//!    A heartbeat is answered only once committed.
//! 3. Log uploads of a 300 KB PNG over 8 connections: uploads/s, p50, p99.
//! 4. "Last seen" for 10,000 employees with 30 days of heartbeats loaded,
//!    median of 20: as the server answers it (its copy in memory brought up
//!    to date, `Store::employees_with_presence`), the admin API call, and
//!    reading every row as the server did before migration 0008.
//!
//! Environment: WFH_SERVER_BIN (the binary), WFH_BENCH_POSTGRES_URL (a role
//! that may create databases), WFH_BENCH_SECONDS (10), WFH_BENCH_RUNS (3),
//! WFH_BENCH_HEARTBEATS_PER_DAY (288 = every 5 minutes; lower loads faster),
//! WFH_BENCH_PHASES (heartbeats,logs,history: which parts to run; `lastseen`
//! alone re-times the last-seen queries on the database a run with
//! WFH_BENCH_KEEP_DB=1 left), WFH_BENCH_CLIENT_THREADS (2: the load
//! generator's threads), WFH_BENCH_DB_CONNECTIONS (16: the server's pool),
//! WFH_BENCH_CLIENT (`hyper`: send heartbeats with hyper's client instead of
//! the lean one, see `drive_raw`).
//! Each run also prints the CPU time per request, split between the server,
//! PostgreSQL and this load generator (from /proc).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use sqlx::Connection as _;
use uuid::Uuid;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_cmd(bin: &str, db_url: &str, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("WFH_DATABASE_URL", db_url)
        .env("WFH_DATA_DIR", dir)
        .env(
            "WFH_DATABASE_MAX_CONNECTIONS",
            std::env::var("WFH_BENCH_DB_CONNECTIONS").unwrap_or_else(|_| "16".into()),
        )
        // A few devices send as fast as they can: load, not a flood.
        .env("WFH_HEARTBEAT_FLOOD_GUARD", "false")
        .env("RUST_LOG", "warn");
    cmd
}

fn cli_last_line(bin: &str, db_url: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let out = server_cmd(bin, db_url, dir)
        .args(args)
        .output()
        .expect("run wfh-server");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

struct Figures {
    rate: f64,
    count: usize,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// `make(i)` builds request i of a connection; every connection runs until `secs` pass.
async fn drive<F>(addr: SocketAddr, conns: usize, secs: u64, make: F) -> Figures
where
    F: Fn(usize, usize) -> Request<Full<Bytes>> + Send + Sync + Clone + 'static,
{
    connections(conns, secs, move |c, end| {
        let make = make.clone();
        async move {
            let mut sender = connect(addr).await;
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0;
            while Instant::now() < end {
                let req = make(c, i);
                i += 1;
                let t = Instant::now();
                let res = sender.send_request(req).await.unwrap();
                let ok = res.status().is_success();
                let _ = res.into_body().collect().await;
                lat.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        }
    })
    .await
}

/// Like [`drive`], with a leaner client: each connection's one task writes
/// the bytes `make(c, i, buf)` put in `buf` (a whole HTTP/1.1 request) and
/// reads the response itself, parsing only its head (httparse) and reading
/// `content-length` bytes of body. hyper's client costs about 30 µs of CPU
/// per request on a slow 2-core machine — a quarter of all the machine
/// spends per heartbeat — in work a real agent does on its own laptop; this
/// one costs less, which leaves more of the two cores to the server and
/// PostgreSQL. `WFH_BENCH_CLIENT=hyper` measures with hyper's instead.
async fn drive_raw<F>(addr: SocketAddr, conns: usize, secs: u64, make: F) -> Figures
where
    F: Fn(usize, usize, &mut Vec<u8>) + Send + Sync + Clone + 'static,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    connections(conns, secs, move |c, end| {
        let make = make.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut req, mut res) = (Vec::with_capacity(1024), Vec::with_capacity(4096));
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0;
            while Instant::now() < end {
                req.clear();
                make(c, i, &mut req);
                i += 1;
                let t = Instant::now();
                stream.write_all(&req).await.unwrap();
                res.clear();
                let status = loop {
                    assert_ne!(stream.read_buf(&mut res).await.unwrap(), 0, "the server closed");
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut head = httparse::Response::new(&mut headers);
                    let httparse::Status::Complete(head_len) = head.parse(&res).unwrap() else {
                        continue;
                    };
                    let body_len: usize = head
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                        .expect("a response with content-length");
                    let status = head.code.unwrap_or(0);
                    while res.len() < head_len + body_len {
                        assert_ne!(stream.read_buf(&mut res).await.unwrap(), 0, "the server closed");
                    }
                    break status;
                };
                lat.push(t.elapsed());
                if !(200..300).contains(&status) {
                    errors += 1;
                }
            }
            (lat, errors)
        }
    })
    .await
}

/// Runs `conn(c, end)` for `conns` connections at once, each until `end`;
/// each returns its requests' latencies and its count of errors.
async fn connections<F, Fut>(conns: usize, secs: u64, conn: F) -> Figures
where
    F: Fn(usize, Instant) -> Fut,
    Fut: std::future::Future<Output = (Vec<Duration>, usize)> + Send + 'static,
{
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conns).map(|c| tokio::spawn(conn(c, end))).collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Figures {
        rate: all.len() as f64 / elapsed,
        count: all.len(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    }
}

/// The server's metrics now: a lookup of one figure by its name.
async fn scrape(client: &reqwest::Client, base: &str) -> impl Fn(&str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    move |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn noise_png(side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Rgb);
    let mut w = enc.write_header().unwrap();
    let mut x: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..side * side * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    w.write_image_data(&data).unwrap();
    drop(w);
    out
}

/// Every employee with its presence, as the server read it before
/// migration 0008 (all rows each time), and before migration 0007 (a table
/// of its own, joined): timed for comparison, and so that
/// `scripts/bench-compare` can run older binaries.
const ROW_LAST_SEEN_SQL: &str = "SELECT id, username, display_name, active, created_at, team, \
    seen_status AS status, seen_hostname AS hostname, seen_at AS occurred_at FROM employees";
const JOINED_LAST_SEEN_SQL: &str =
    "SELECT e.id, e.username, e.display_name, e.active, e.created_at, e.team, \
    p.status, p.hostname, p.occurred_at \
    FROM employees e LEFT JOIN employee_presence p ON p.employee_id = e.id";

/// Where the server's schema keeps the presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Before migration 0007: a table of its own.
    PresenceTable,
    /// Migration 0007: on the employee's row.
    PresenceOnRow,
    /// Migration 0008: and each row notes the transaction that wrote it.
    WrittenBy,
}

async fn schema(db: &mut sqlx::PgConnection) -> Schema {
    if presence_table(db).await {
        return Schema::PresenceTable;
    }
    let written_by: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT FROM information_schema.columns \
         WHERE table_name = 'employees' AND column_name = 'written_by')",
    )
    .fetch_one(db)
    .await
    .unwrap();
    if written_by {
        Schema::WrittenBy
    } else {
        Schema::PresenceOnRow
    }
}

/// Whether the presence has a table of its own (schemas before migration 0007).
async fn presence_table(db: &mut sqlx::PgConnection) -> bool {
    sqlx::query_scalar("SELECT to_regclass('employee_presence') IS NOT NULL")
        .fetch_one(db)
        .await
        .unwrap()
}

/// "Last seen" for every employee as the server answers it
/// (`Store::employees_with_presence` on PostgreSQL: the copy in memory
/// brought up to date with the rows written since the last call), while
/// presence moves on: before each call another connection moves 100
/// employees' "last seen" forward, what 10,000 employees' heartbeats every
/// 5 minutes bring in 3 seconds.
async fn time_store_last_seen(db: &mut sqlx::PgConnection, db_url: &str, count: usize) {
    use wfh_server::db::Store as _;
    let url = secrecy::SecretString::from(db_url.to_owned());
    let store = wfh_server::db::postgres::PgStore::connect(&url, 2).await.unwrap();
    let t = Instant::now();
    let first = store.employees_with_presence().await.unwrap();
    let cold = ms(t.elapsed());
    assert_eq!(first.len(), count);
    let mut warm = Vec::new();
    for _ in 0..20 {
        sqlx::query(
            "UPDATE employees SET seen_at = seen_at + interval '1 second' \
             WHERE id IN (SELECT id FROM employees ORDER BY random() LIMIT 100)",
        )
        .execute(&mut *db)
        .await
        .unwrap();
        let t = Instant::now();
        let all = store.employees_with_presence().await.unwrap();
        warm.push(ms(t.elapsed()));
        assert_eq!(all.len(), count);
    }
    println!(
        "last seen, {count} employees, as the server answers it (Store::employees_with_presence, \
         100 employees moved on before each call): median {:.2} ms; the first call, reading every row, {cold:.2} ms",
        median(warm)
    );
}

fn main() {
    // The load generator's threads (WFH_BENCH_CLIENT_THREADS, default 2)
    // share the two cores with the server and PostgreSQL.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_or("WFH_BENCH_CLIENT_THREADS", 2))
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let bin = std::env::var("WFH_SERVER_BIN").expect("WFH_SERVER_BIN: run scripts/bench-server");
    let admin_url = std::env::var("WFH_BENCH_POSTGRES_URL").expect("WFH_BENCH_POSTGRES_URL");
    let secs: u64 = env_or("WFH_BENCH_SECONDS", 10);
    let runs: usize = env_or("WFH_BENCH_RUNS", 3);
    let hb_conns: usize = env_or("WFH_BENCH_CONNECTIONS", 64);
    let per_day: i64 = env_or("WFH_BENCH_HEARTBEATS_PER_DAY", 288);
    let phases: String = env_or("WFH_BENCH_PHASES", "heartbeats,logs,history".to_owned());

    // `lastseen` alone times the queries again on the database a previous
    // full run left (loading it takes a quarter of an hour).
    let reuse = phases == "lastseen";
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    if !reuse {
        sqlx::query("DROP DATABASE IF EXISTS wfh_bench WITH (FORCE)")
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE wfh_bench")
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let mut db_url = url::Url::parse(&admin_url).unwrap();
    db_url.set_path("wfh_bench");
    let db_url = db_url.to_string();
    let dir = tempfile::tempdir().unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let admin_token = cli_last_line(&bin, &db_url, dir.path(), &["admin-token", "create"]);
    let mut codes = Vec::new();
    for i in 0..if reuse { 0 } else { hb_conns.max(8) } {
        codes.push(cli_last_line(
            &bin,
            &db_url,
            dir.path(),
            &["employee", "add", &format!("bench{i:03}")],
        ));
    }
    let child = server_cmd(&bin, &db_url, dir.path())
        .env("WFH_LISTEN", addr.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child };
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kib(server.child.id());

    let mut tokens = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let res: serde_json::Value = client
            .post(format!("{base}/api/enroll"))
            .json(&serde_json::json!({"code": code, "username": format!("bench{i:03}"), "hostname": "bench"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(res["token"].as_str().unwrap().to_owned());
    }
    println!(
        "wfh-server benchmark — {} cores, PostgreSQL over loopback",
        num_cpus()
    );
    println!("idle RSS after start-up: {:.1} MiB", idle_rss as f64 / 1024.0);

    // Heartbeats.
    let hb_tokens = tokens.clone();
    let make_hb = move |c: usize, _i: usize| {
        let body = serde_json::json!({
            "username": "bench", "hostname": "bench", "status": "online",
            "timestamp": chrono::Utc::now().to_rfc3339(), "event_id": Uuid::new_v4(),
        });
        Request::post("/api/heartbeat")
            .header("host", "bench")
            .header("authorization", format!("Bearer {}", hb_tokens[c]))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())))
            .unwrap()
    };
    let hb_auth: Vec<String> = tokens.iter().map(|t| format!("Bearer {t}")).collect();
    let make_hb_raw = move |c: usize, _i: usize, buf: &mut Vec<u8>| {
        use std::io::Write as _;
        let body = format!(
            r#"{{"username":"bench","hostname":"bench","status":"online","timestamp":"{}","event_id":"{}"}}"#,
            chrono::Utc::now().to_rfc3339(),
            Uuid::new_v4()
        );
        write!(
            buf,
            "POST /api/heartbeat HTTP/1.1\r\nhost: bench\r\nauthorization: {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            hb_auth[c],
            body.len()
        )
        .unwrap();
    };
    let hyper_client = std::env::var("WFH_BENCH_CLIENT").is_ok_and(|v| v == "hyper");
    let heartbeats = |secs: u64| {
        let (make_hb, make_hb_raw) = (make_hb.clone(), make_hb_raw.clone());
        async move {
            if hyper_client {
                drive(addr, hb_conns, secs, make_hb).await
            } else {
                drive_raw(addr, hb_conns, secs, make_hb_raw).await
            }
        }
    };
    if phases.contains("heartbeats") {
        heartbeats(2).await; // warm-up
        let (rate, p50, p99) = repeat(runs, "heartbeats", server.child.id(), || heartbeats(secs)).await;
        let generator = if hyper_client {
            "hyper's client"
        } else {
            "the lean client"
        };
        println!(
            "heartbeats, {hb_conns} connections ({generator}), median of {runs}: {rate:.0} req/s, \
             p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
        println!(
            "server RSS after the heartbeat load: {:.1} MiB",
            rss_kib(server.child.id()) as f64 / 1024.0
        );
        let metrics = scrape(&client, &base).await;
        println!(
            "heartbeat rows per database commit: {:.1} on average",
            metrics("wfh_heartbeat_batch_size_sum") / metrics("wfh_heartbeat_batch_size_count")
        );
    }

    // Log uploads.
    let image = Bytes::from(noise_png(320));
    let image_kib = image.len() / 1024;
    let log_tokens = tokens.clone();
    let make_log = move |c: usize, _i: usize| {
        let meta = serde_json::json!({
            "username": "bench", "hostname": "bench", "local_ips": ["192.168.1.2"], "public_ip": null,
            "timestamp": chrono::Utc::now().to_rfc3339(), "event_id": Uuid::new_v4(),
        });
        let mut body = Vec::with_capacity(image.len() + 1024);
        body.extend_from_slice(b"--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n");
        body.extend_from_slice(&serde_json::to_vec(&meta).unwrap());
        body.extend_from_slice(b"\r\n--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"screenshot\"; filename=\"s.png\"\r\nContent-Type: image/png\r\n\r\n");
        body.extend_from_slice(&image);
        body.extend_from_slice(b"\r\n--XBOUNDARYX--\r\n");
        Request::post("/api/log")
            .header("host", "bench")
            .header("authorization", format!("Bearer {}", log_tokens[c]))
            .header("content-type", "multipart/form-data; boundary=XBOUNDARYX")
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if phases.contains("logs") {
        let (rate, p50, p99) = repeat(runs, "log uploads", server.child.id(), || {
            drive(addr, 8, secs, make_log.clone())
        })
        .await;
        println!(
            "log uploads ({image_kib} KB PNG), 8 connections, median of {runs}: {rate:.0} uploads/s, \
             p50 {p50:.2} ms, p99 {p99:.2} ms"
        );
        let figure = scrape(&client, &base).await;
        let per_commit = figure("wfh_log_batch_size_sum") / figure("wfh_log_batch_size_count");
        if per_commit.is_finite() {
            println!("log rows per database commit: {per_commit:.1} on average");
        }
    }

    // Last seen for 10,000 employees with 30 days of heartbeats.
    if !phases.contains("history") && !reuse {
        return;
    }
    let mut db = sqlx::PgConnection::connect(&db_url).await.unwrap();
    if !reuse {
        let t = Instant::now();
        load_history(&mut db, 10_000, 30, per_day).await;
        println!(
            "loaded 10,000 employees with {per_day} heartbeats a day for 30 days in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        sqlx::raw_sql("VACUUM ANALYZE").execute(&mut db).await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM employee_heartbeats")
        .fetch_one(&mut db)
        .await
        .unwrap();
    println!("heartbeats in the database: {rows}");
    let schema = schema(&mut db).await;
    let all_rows_sql = match schema {
        Schema::PresenceTable => JOINED_LAST_SEEN_SQL,
        Schema::PresenceOnRow | Schema::WrittenBy => ROW_LAST_SEEN_SQL,
    };
    let mut api = Vec::new();
    let mut sql = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let body: serde_json::Value = client
            .get(format!("{base}/api/admin/employees"))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        api.push(ms(t.elapsed()));
        count = body["employees"].as_array().map_or(0, Vec::len);
        let t = Instant::now();
        let n = sqlx::query(all_rows_sql).fetch_all(&mut db).await.unwrap().len();
        sql.push(ms(t.elapsed()));
        assert_eq!(n, count);
    }
    println!(
        "last seen, {count} employees: GET /api/admin/employees median {:.2} ms; \
         reading every row ({schema:?}) median {:.2} ms",
        median(api),
        median(sql)
    );
    if schema == Schema::WrittenBy {
        time_store_last_seen(&mut db, &db_url, count).await;
    }
    let mut range = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let _: serde_json::Value = client
            .get(format!(
                "{base}/api/admin/heartbeats?employee_id={}&from={}&limit=1000",
                100 + i * 37,
                (chrono::Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%d")
            ))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        range.push(ms(t.elapsed()));
    }
    println!(
        "one employee's heartbeats over 7 days (first 1,000): median {:.2} ms",
        median(range)
    );
    drop(server);
    drop(db);
    if std::env::var_os("WFH_BENCH_KEEP_DB").is_some() {
        println!("kept the database wfh_bench (WFH_BENCH_PHASES=lastseen times it again)");
    } else {
        sqlx::query("DROP DATABASE IF EXISTS wfh_bench WITH (FORCE)")
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// Employees, one device each, `days` of heartbeats `per_day` a day, and presence.
async fn load_history(db: &mut sqlx::PgConnection, employees: i64, days: i64, per_day: i64) {
    let step = 86_400 / per_day;
    sqlx::raw_sql(&format!(
        "INSERT INTO employees (username, display_name, created_at) \
           SELECT 'emp' || g, 'Employee ' || g, now() FROM generate_series(1, {employees}) g \
           ON CONFLICT DO NOTHING;
         INSERT INTO devices (employee_id, token_hash, username, hostname, created_at) \
           SELECT e.id, sha256(e.username::bytea), e.username, e.username || '-laptop', now() \
           FROM employees e WHERE e.username LIKE 'emp%';"
    ))
    .execute(&mut *db)
    .await
    .unwrap();
    // One day at a time, so the load stays in memory and shows progress.
    for day in 0..days {
        sqlx::raw_sql(&format!(
            "INSERT INTO employee_heartbeats (event_id, employee_id, device_id, username, hostname, status, \
                 occurred_at, utc_offset_secs, received_at) \
             SELECT gen_random_uuid(), d.employee_id, d.id, d.username, d.hostname, 'online', t, 0, t \
             FROM devices d, generate_series( \
                 date_trunc('day', now()) - interval '{day} days', \
                 date_trunc('day', now()) - interval '{day} days' + interval '1 day' - interval '1 second', \
                 interval '{step} seconds') t \
             WHERE d.username LIKE 'emp%' AND t < now()"
        ))
        .execute(&mut *db)
        .await
        .unwrap();
    }
    // Where the presence lives depends on the server's schema: the
    // employee's row since migration 0007, a table of its own before (so
    // that `scripts/bench-compare` can run older binaries).
    let presence = if presence_table(db).await {
        "INSERT INTO employee_presence (employee_id, device_id, status, hostname, occurred_at, received_at) \
         SELECT DISTINCT ON (employee_id) employee_id, device_id, status, hostname, occurred_at, received_at \
         FROM employee_heartbeats ORDER BY employee_id, occurred_at DESC \
         ON CONFLICT (employee_id) DO UPDATE SET occurred_at = excluded.occurred_at"
    } else {
        "UPDATE employees e SET seen_device_id = h.device_id, seen_status = h.status, \
             seen_hostname = h.hostname, seen_at = h.occurred_at, seen_received_at = h.received_at \
         FROM (SELECT DISTINCT ON (employee_id) employee_id, device_id, status, hostname, occurred_at, \
               received_at FROM employee_heartbeats ORDER BY employee_id, occurred_at DESC) h \
         WHERE e.id = h.employee_id"
    };
    sqlx::raw_sql(presence).execute(&mut *db).await.unwrap();
}

/// A process's CPU time so far (user + system), in clock ticks.
fn process_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // utime and stime are fields 14 and 15: the 12th and 13th after the
    // command name, which may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// CPU time used so far, in clock ticks: the whole machine (every state but
/// idle and I/O wait), the server (`pid`), this load generator, and every
/// PostgreSQL process. A backend that ended in between is not counted.
fn cpu_ticks(pid: u32) -> [u64; 4] {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let machine = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse::<u64>().ok())
        .enumerate()
        // Not idle (3) or I/O wait (4); guest time (8, 9) is already in user.
        .filter(|(i, _)| !matches!(i, 3 | 4 | 8 | 9))
        .map(|(_, v)| v)
        .sum();
    let postgres = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|p| process_ticks(&p))
        .sum();
    [
        machine,
        process_ticks(&pid.to_string()),
        process_ticks("self"),
        postgres,
    ]
}

/// Run `f` `runs` times; print each run with the CPU time per request
/// (the machine's, and the server's, `pid`, PostgreSQL's and this load
/// generator's shares of it); return the medians (rate, p50 ms, p99 ms).
async fn repeat<F, Fut>(runs: usize, what: &str, pid: u32, f: F) -> (f64, f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Figures>,
{
    // Linux reports CPU time in ticks of 1/100 s (USER_HZ).
    const TICK_US: f64 = 10_000.0;
    let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let before = cpu_ticks(pid);
        let f = f().await;
        let after = cpu_ticks(pid);
        let per = |i: usize| after[i].saturating_sub(before[i]) as f64 * TICK_US / f.count.max(1) as f64;
        println!(
            "{what} run {run}: {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  \
             CPU µs per request: machine {:.0} = server {:.0} + PostgreSQL {:.0} + load generator {:.0} + other",
            f.rate,
            ms(f.p50),
            ms(f.p99),
            f.errors,
            per(0),
            per(1),
            per(3),
            per(2),
        );
        rates.push(f.rate);
        p50s.push(ms(f.p50));
        p99s.push(ms(f.p99));
    }
    (median(rates), median(p50s), median(p99s))
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
