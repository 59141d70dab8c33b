//! Agent benchmark: prints figures, asserts nothing about speed.
//!
//! 1. Capture + encode of the whole desktop, as the agent does it for a
//!    detailed log (`xcap` → stitch → JPEG at the default quality 70), on a
//!    real Xvfb display: one 1920×1080 monitor, and two monitors
//!    (1920×1080 beside 1280×1024; see `capture_bench` for how). The screens show a
//!    synthetic office desktop (wallpaper, a text editor full of glyphs, a
//!    photo, a taskbar) painted as the root window's background, and a flat
//!    one-colour desktop for the lower bound of the size.
//! 2. The real `wfh-agent run`, headless (no tray), enrolled with the real
//!    server over HTTPS, after it has taken its two detailed logs: resident
//!    memory and CPU over a quiet period between events.
//! 3. The same agent with activity sampling off, then on (applications with
//!    titles, idle time, key counts, every 5 s, a terminal in front): what
//!    sampling costs in memory and CPU.
//!
//! Run with `scripts/bench-agent` (see docs/benchmarks.md). Knobs:
//! `WFH_BENCH_CAPTURES` (default 15) and `WFH_BENCH_QUIET_SECS` (default 120).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use support::{enrolled_agent, env_or, free_addr, median, window_from_now, Desktop, Server};
use wfh_agent::capture::{capture_monitors, encode_jpeg, stitch, MonitorShot};

const QUALITY: u8 = 70;

/// A deterministic picture of a busy office desktop of `w`×`h`.
fn office_desktop(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut rng = StdRng::seed_from_u64(seed);
    // Wallpaper: a soft diagonal gradient with grain.
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let t = (x + y) as f32 / (w + h) as f32;
        Rgb([
            (30.0 + 60.0 * t) as u8,
            (70.0 + 50.0 * t) as u8,
            (120.0 + 80.0 * t) as u8,
        ])
    });
    for p in img.pixels_mut() {
        let g: i16 = rng.random_range(-6..=6);
        for c in p.0.iter_mut() {
            *c = (*c as i16 + g).clamp(0, 255) as u8;
        }
    }
    let fill = |img: &mut RgbImage, x0: u32, y0: u32, ww: u32, hh: u32, c: [u8; 3]| {
        for y in y0..(y0 + hh).min(h) {
            for x in x0..(x0 + ww).min(w) {
                img.put_pixel(x, y, Rgb(c));
            }
        }
    };
    // 40 glyphs of 2 to 3 strokes (vertical, horizontal, diagonal) in 6×11.
    let alphabet: Vec<Vec<(u32, u32)>> = (0..40)
        .map(|_| {
            let mut pts = Vec::new();
            for _ in 0..rng.random_range(2..=3) {
                match rng.random_range(0..3) {
                    0 => {
                        let gx = rng.random_range(0..6);
                        pts.extend((rng.random_range(0..4)..11).map(|gy| (gx, gy)));
                    }
                    1 => {
                        let gy = rng.random_range(3..11);
                        pts.extend((0..6).map(|gx| (gx, gy)));
                    }
                    _ => pts.extend((0..6).map(|i| (i, 10 - i * 7 / 5))),
                }
            }
            pts
        })
        .collect();
    // Windows: an editor covering half the screen, a browser with a photo.
    let windows = [
        (w / 24, h / 16, w * 9 / 16, h * 3 / 4, false),
        (w * 7 / 16, h / 5, w / 2, h * 2 / 3, true),
    ];
    for (wx, wy, ww, wh, photo) in windows {
        fill(&mut img, wx, wy, ww, 30, [225, 225, 230]);
        fill(&mut img, wx, wy + 30, ww, wh - 30, [255, 255, 255]);
        let mut text_top = wy + 44;
        if photo {
            let (px, py, pw, ph) = (wx + 16, wy + 46, ww - 32, wh / 2);
            let (a, b) = (rng.random_range(0.005..0.02f32), rng.random_range(0.005..0.02f32));
            for y in py..(py + ph).min(h) {
                for x in px..(px + pw).min(w) {
                    let (fx, fy) = (x as f32, y as f32);
                    let v = ((fx * a).sin() + (fy * b).cos() + ((fx + fy) * 0.013).sin()) / 3.0;
                    let n: f32 = rng.random_range(-12.0..12.0);
                    img.put_pixel(
                        x,
                        y,
                        Rgb([
                            (110.0 + 90.0 * v + n).clamp(0.0, 255.0) as u8,
                            (140.0 + 70.0 * (v * 1.3).sin() + n).clamp(0.0, 255.0) as u8,
                            (90.0 + 60.0 * (v * 0.7).cos() + n).clamp(0.0, 255.0) as u8,
                        ]),
                    );
                }
            }
            text_top = py + ph + 16;
        }
        // Lines of "text": words of 7×11 glyphs drawn from a fixed alphabet
        // of stroke shapes, so that, as in real text, glyphs repeat.
        let mut y = text_top;
        while y + 11 < wy + wh - 8 {
            let mut x = wx + 16;
            let line_end = wx + ww - 16 - rng.random_range(0..ww / 3);
            while x + 7 < line_end {
                let word = rng.random_range(2..10);
                for _ in 0..word {
                    let glyph = &alphabet[rng.random_range(0..alphabet.len())];
                    for &(gx, gy) in glyph {
                        if x + gx < w && y + gy < h {
                            img.put_pixel(x + gx, y + gy, Rgb([30, 30, 40]));
                        }
                    }
                    x += 7;
                }
                x += 7;
            }
            y += 18;
        }
    }
    // Taskbar with icons.
    fill(&mut img, 0, h - 40, w, 40, [40, 40, 48]);
    for i in 0..12 {
        let c = [rng.random(), rng.random(), rng.random()];
        fill(&mut img, 12 + i * 44, h - 34, 28, 28, c);
    }
    img
}

/// Paint `img` as the root window's background of `display`. The returned
/// connection must live while the picture is needed.
fn paint_root(display: &str, img: &RgbImage) -> x11rb::rust_connection::RustConnection {
    use x11rb::connection::{Connection as _, RequestConnection as _};
    use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConnectionExt as _, CreateGCAux, ImageFormat};

    let (conn, screen_num) = x11rb::rust_connection::RustConnection::connect(Some(display)).unwrap();
    let screen = conn.setup().roots[screen_num].clone();
    let (w, h) = (img.width() as u16, img.height() as u16);
    let pixmap = conn.generate_id().unwrap();
    conn.create_pixmap(screen.root_depth, pixmap, screen.root, w, h)
        .unwrap();
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, pixmap, &CreateGCAux::new()).unwrap();
    let row_bytes = w as usize * 4;
    let rows_per_request = ((conn.maximum_request_bytes() - 64) / row_bytes).max(1);
    let mut y0 = 0usize;
    while y0 < h as usize {
        let rows = rows_per_request.min(h as usize - y0);
        let mut data = Vec::with_capacity(rows * row_bytes);
        for y in y0..y0 + rows {
            for x in 0..w as u32 {
                let p = img.get_pixel(x, y as u32);
                data.extend_from_slice(&[p[2], p[1], p[0], 0]);
            }
        }
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            pixmap,
            gc,
            w,
            rows as u16,
            0,
            y0 as i16,
            0,
            screen.root_depth,
            &data,
        )
        .unwrap();
        y0 += rows;
    }
    conn.change_window_attributes(
        screen.root,
        &ChangeWindowAttributesAux::new().background_pixmap(pixmap),
    )
    .unwrap();
    conn.clear_area(false, screen.root, 0, 0, 0, 0).unwrap();
    conn.get_input_focus().unwrap().reply().unwrap();
    conn
}

/// Milliseconds per run of each step, and the last screenshot.
#[derive(Default)]
struct Runs {
    capture: Vec<f64>,
    stitch: Vec<f64>,
    encode: Vec<f64>,
    total: Vec<f64>,
    last: Option<wfh_agent::capture::Screenshot>,
}

impl Runs {
    fn figures(self) -> CaptureFigures {
        let shot = self.last.expect("at least one capture");
        CaptureFigures {
            capture_ms: median(self.capture),
            stitch_ms: median(self.stitch),
            encode_ms: median(self.encode),
            total_ms: median(self.total),
            bytes: shot.bytes.len(),
            width: shot.width,
            height: shot.height,
            monitors: shot.monitors,
        }
    }
}

fn ms(a: Instant, b: Instant) -> f64 {
    (b - a).as_secs_f64() * 1000.0
}

struct CaptureFigures {
    capture_ms: f64,
    stitch_ms: f64,
    encode_ms: f64,
    total_ms: f64,
    bytes: usize,
    width: u32,
    height: u32,
    monitors: usize,
}

/// Capture the desktop of `display` `n` times the agent's way; medians.
fn measure_capture(display: &str, n: u64) -> CaptureFigures {
    // xcap connects to $DISPLAY; this process touches no other display.
    std::env::set_var("DISPLAY", display);
    let mut runs = Runs::default();
    for _ in 0..n {
        let t0 = Instant::now();
        let shots = capture_monitors().expect("capture");
        let t1 = Instant::now();
        let canvas = stitch(&shots).expect("stitch");
        let t2 = Instant::now();
        let shot = encode_jpeg(&canvas, QUALITY, shots.len()).expect("encode");
        let t3 = Instant::now();
        runs.capture.push(ms(t0, t1));
        runs.stitch.push(ms(t1, t2));
        runs.encode.push(ms(t2, t3));
        runs.total.push(ms(t0, t3));
        runs.last = Some(shot);
    }
    runs.figures()
}

fn print_capture(label: &str, f: &CaptureFigures) {
    println!(
        "  {label:<44} {}x{} ({} monitor{}): capture {:>6.1} ms  stitch {:>5.1} ms  encode {:>6.1} ms  total {:>6.1} ms  JPEG q{QUALITY} {:>4} KB",
        f.width,
        f.height,
        f.monitors,
        if f.monitors == 1 { "" } else { "s" },
        f.capture_ms,
        f.stitch_ms,
        f.encode_ms,
        f.total_ms,
        f.bytes / 1024
    );
}

fn capture_bench(n: u64) {
    println!("capture + encode, median of {n} (one core's work; the agent does this twice a day):");
    {
        let desktop = Desktop::start_sized("#1791c9", "1920x1080");
        let flat = measure_capture(&desktop.display, n);
        print_capture("1920x1080, flat one-colour desktop", &flat);
        let _painted = paint_root(&desktop.display, &office_desktop(1920, 1080, 7));
        let busy = measure_capture(&desktop.display, n);
        print_capture("1920x1080, synthetic office desktop", &busy);
    }
    {
        // Two monitors side by side, 1920×1080 and 1280×1024. Xvfb cannot
        // declare RandR monitors (it ignores `xrandr --setmonitor`), so one
        // 3200×1080 X screen is captured for real (the same pixels to read)
        // and cut into the two monitors' pictures, which are then stitched
        // and encoded exactly as the agent does with two monitors.
        let desktop = Desktop::start_sized("#1791c9", "3200x1080");
        let _painted = paint_root(&desktop.display, &office_desktop(3200, 1080, 11));
        std::env::set_var("DISPLAY", &desktop.display);
        let mut runs = Runs::default();
        for _ in 0..n {
            let t0 = Instant::now();
            let whole = capture_monitors().expect("capture");
            let t1 = Instant::now();
            let full = &whole[0].image;
            let shots = [
                MonitorShot {
                    x: 0,
                    y: 0,
                    image: image::imageops::crop_imm(full, 0, 0, 1920, 1080).to_image(),
                },
                MonitorShot {
                    x: 1920,
                    y: 0,
                    image: image::imageops::crop_imm(full, 1920, 0, 1280, 1024).to_image(),
                },
            ];
            let t2 = Instant::now();
            let canvas = stitch(&shots).expect("stitch");
            let t3 = Instant::now();
            let shot = encode_jpeg(&canvas, QUALITY, shots.len()).expect("encode");
            let t4 = Instant::now();
            runs.capture.push(ms(t0, t1));
            runs.stitch.push(ms(t2, t3));
            runs.encode.push(ms(t3, t4));
            // The cut stands in for the second capture; it is not counted.
            runs.total.push(ms(t0, t4) - ms(t1, t2));
            runs.last = Some(shot);
        }
        let two = runs.figures();
        print_capture("1920x1080 + 1280x1024, synthetic office", &two);
    }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name's ")": utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// "RssAnon x MiB + RssFile y MiB" of `pid`: the process's own memory and
/// the pages of its binary and libraries (shared with other processes).
fn memory_split(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mib = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    format!(
        "anonymous {:.1} MiB + file-backed {:.1} MiB",
        mib("RssAnon:"),
        mib("RssFile:")
    )
}

/// (VmRSS, VmHWM) of `pid` in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// Memory and CPU of `pid` over `quiet` seconds, RSS read every 5 s.
struct Quiet {
    samples: Vec<f64>,
    cpu_secs: f64,
    wall_secs: f64,
    split: String,
}

async fn quiet_period(pid: u32, quiet: u64) -> Quiet {
    let hz = clock_ticks_per_second();
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut samples = vec![];
    while t0.elapsed() < Duration::from_secs(quiet) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        samples.push(memory_mib(pid).0);
    }
    Quiet {
        samples,
        cpu_secs: (cpu_ticks(pid) - cpu0) / hz,
        wall_secs: t0.elapsed().as_secs_f64(),
        split: memory_split(pid),
    }
}

async fn idle_bench(quiet: u64) {
    println!("headless agent (`wfh-agent run`, no tray), heartbeat every 300 s, over HTTPS:");
    let desktop = Desktop::start("#1791c9");
    let _painted = paint_root(&desktop.display, &office_desktop(1920, 1080, 7));
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), free_addr()).await;
    let url = format!("https://localhost:{}", server.addr.port());
    // Both detailed logs fall in the next 20 s; the quiet period comes after.
    let window = window_from_now(20).await;
    let extra = format!("token_store = \"keyring\"\n{window}");
    let (_dir, mut agent) = enrolled_agent(&desktop, &url, &server, &extra).await;
    agent.spawn();
    let pid = agent.pid();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_start, _) = memory_mib(pid);
    let deadline = Instant::now() + Duration::from_secs(90);
    let all = wfh_server::db::ListQuery {
        limit: 10,
        ..Default::default()
    };
    while server.state.store.logs(&all).await.unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the agent did not send its two logs:\n{}",
            agent.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss_after_logs, peak) = memory_mib(pid);
    let q = quiet_period(pid, quiet).await;
    let (samples, cpu, wall, split) = (q.samples, q.cpu_secs, q.wall_secs, q.split);
    println!("  RSS 3 s after start                          {rss_start:>6.1} MiB");
    println!("  RSS after its two detailed logs were sent    {rss_after_logs:>6.1} MiB (peak so far {peak:.1} MiB)");
    println!(
        "  RSS over the quiet period (median of {})     {:>6.1} MiB ({split})",
        samples.len(),
        median(samples)
    );
    println!(
        "  CPU over the quiet period ({wall:.0} s)            {:>6.3} % of one core ({:.0} ms in all)",
        100.0 * cpu / wall,
        cpu * 1000.0
    );
    agent.stop();
    server.stop().await;
}

/// The headless agent over a quiet period with activity sampling off, then
/// on (applications with titles, idle time, key counts; every 5 s), in one
/// run: what sampling costs.
async fn sampling_bench(quiet: u64) {
    println!("activity sampling (headless agent, no detailed logs, heartbeat every 300 s), off then on:");
    let desktop = Desktop::start("#1791c9");
    // A window in front, so that every sample reads a real window.
    let mut term = std::process::Command::new("xterm")
        .args(["-T", "Quarterly report - draft"])
        .envs(desktop.env())
        .spawn()
        .expect("xterm (scripts/test installs it)");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_dir = tempfile::tempdir().unwrap();
    let server = Server::start(server_dir.path(), free_addr()).await;
    let url = format!("https://localhost:{}", server.addr.port());
    let mut figures = Vec::new();
    for on in [false, true] {
        let policy = wfh_protocol::MonitoringPolicy {
            logs_per_day: 0,
            activity: wfh_protocol::ActivityPolicy {
                applications: on,
                window_titles: on,
                idle_time: on,
                key_counts: on,
                ..Default::default()
            },
            ..Default::default()
        };
        wfh_server::policy::replace(&server.state, policy).await.unwrap();
        let (_dir, mut agent) = enrolled_agent(&desktop, &url, &server, "").await;
        agent.spawn();
        let pid = agent.pid();
        // Past start-up and the first bucket's first samples.
        tokio::time::sleep(Duration::from_secs(15)).await;
        let q = quiet_period(pid, quiet).await;
        let (samples, cpu, wall, split) = (q.samples, q.cpu_secs, q.wall_secs, q.split);
        let rss = median(samples.clone());
        println!(
            "  sampling {:<3}  RSS median of {} {rss:>6.1} MiB ({split}), CPU {:>6.3} % of one core ({:.0} ms in {wall:.0} s)",
            if on { "on" } else { "off" },
            samples.len(),
            100.0 * cpu / wall,
            cpu * 1000.0
        );
        figures.push((rss, 100.0 * cpu / wall));
        agent.stop();
    }
    println!(
        "  sampling costs {:+.1} MiB of RSS and {:+.3} % of one core (targets: at most 5 MB and 0.2 % average CPU)",
        figures[1].0 - figures[0].0,
        figures[1].1 - figures[0].1
    );
    let _ = term.kill();
    let _ = term.wait();
    server.stop().await;
}

fn main() {
    let captures = env_or("WFH_BENCH_CAPTURES", 15);
    let quiet = env_or("WFH_BENCH_QUIET_SECS", 120);
    capture_bench(captures);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(idle_bench(quiet));
    rt.block_on(sampling_bench(quiet));
}
