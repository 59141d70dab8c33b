//! Exports of detailed logs for a filter (employee, date range): CSV, and a
//! PDF report with a thumbnail of each screenshot.
//!
//! Both are streamed: logs are read a page at a time and each page's bytes
//! go out before the next is read, so a month of a whole team costs the
//! memory of one page. The PDF is written object by object (`pdf-writer`
//! chunks) with the offsets counted as they go out; the cross-reference
//! table and the page tree come last, which PDF allows.

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use pdf_writer::{Chunk, Content, Filter, Finish as _, Name, Rect, Ref, Str};
use tokio::sync::mpsc;
use wfh_protocol::admin::{Summary, SummaryFigures};
use wfh_protocol::LogRecord;

use crate::db::{Cursor, ListQuery, StoreError};
use crate::screenshots::Screenshots;
use crate::state::AppState;

/// Logs read per database round trip.
const PAGE: u32 = 200;

/// Who an employee id is, for the report.
#[derive(Debug, Clone)]
pub struct Person {
    pub username: String,
    pub display_name: Option<String>,
}

impl Person {
    fn label(&self) -> String {
        match &self.display_name {
            Some(name) if !name.is_empty() => format!("{name} ({})", self.username),
            _ => self.username.clone(),
        }
    }
}

/// What the export covers, for its title.
#[derive(Debug, Clone)]
pub struct Scope {
    pub query: ListQuery,
    pub people: HashMap<i64, Person>,
    pub generated_at: DateTime<Utc>,
}

impl Scope {
    fn describe(&self) -> String {
        let who = match self.query.employee_id {
            Some(id) => self
                .people
                .get(&id)
                .map_or_else(|| format!("employee {id}"), Person::label),
            None => "all employees".to_owned(),
        };
        let day = |t: Option<DateTime<Utc>>| t.map(|t| t.format("%Y-%m-%d").to_string());
        let to = self
            .query
            .to
            .map(|t| t - chrono::Duration::microseconds(1))
            .map(|t| t.format("%Y-%m-%d").to_string());
        match (day(self.query.from), to) {
            (Some(f), Some(t)) => format!("{who}, {f} to {t} (UTC days)"),
            (Some(f), None) => format!("{who}, from {f}"),
            (None, Some(t)) => format!("{who}, until {t}"),
            (None, None) => who,
        }
    }
}

type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Reads the logs of a scope a page at a time, newest first.
struct Pager {
    q: ListQuery,
    done: bool,
}

impl Pager {
    fn new(scope: &Scope) -> Self {
        let mut q = scope.query.clone();
        q.limit = PAGE;
        q.after = None;
        Self { q, done: false }
    }

    async fn next(&mut self, state: &AppState) -> Result<Option<Vec<LogRecord>>, ExportError> {
        if self.done {
            return Ok(None);
        }
        let items = state.store.logs(&self.q).await?;
        match items.last() {
            Some(last) if items.len() == PAGE as usize => {
                self.q.after = Some(Cursor {
                    occurred_at: last.timestamp.with_timezone(&Utc),
                    id: last.id,
                });
            }
            _ => self.done = true,
        }
        Ok(Some(items))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the client went away")]
    Closed,
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

async fn send(tx: &Sender, bytes: Vec<u8>) -> Result<(), ExportError> {
    tx.send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| ExportError::Closed)
}

/// A cell that a spreadsheet would run as a formula is prefixed with `'`.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

pub const CSV_HEADER: [&str; 18] = [
    "log_id",
    "timestamp",
    "received_at",
    "employee_id",
    "employee",
    "display_name",
    "reported_username",
    "hostname",
    "local_ips",
    "reported_public_ip",
    "observed_ip",
    "city",
    "region",
    "country",
    "latitude",
    "longitude",
    "screenshot_bytes",
    "screenshot_url",
];

fn csv_row(l: &LogRecord, people: &HashMap<i64, Person>) -> Vec<String> {
    let who = people.get(&l.employee_id);
    let loc = l.location.as_ref();
    let opt = |v: Option<&String>| v.map(|s| cell(s)).unwrap_or_default();
    vec![
        l.id.to_string(),
        l.timestamp.to_rfc3339(),
        l.received_at.to_rfc3339(),
        l.employee_id.to_string(),
        who.map(|p| cell(&p.username)).unwrap_or_default(),
        opt(who.and_then(|p| p.display_name.as_ref())),
        cell(&l.username),
        cell(&l.hostname),
        l.local_ips
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        l.reported_public_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        l.observed_ip.to_string(),
        opt(loc.and_then(|l| l.city.as_ref())),
        opt(loc.and_then(|l| l.region.as_ref())),
        opt(loc.and_then(|l| l.country.as_ref())),
        loc.and_then(|l| l.latitude)
            .map(|v| v.to_string())
            .unwrap_or_default(),
        loc.and_then(|l| l.longitude)
            .map(|v| v.to_string())
            .unwrap_or_default(),
        l.image.bytes.to_string(),
        l.image.url.clone(),
    ]
}

/// Stream the CSV of `scope` into `tx`.
pub async fn csv(state: AppState, scope: Scope, tx: Sender) -> Result<(), ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    send(&tx, w.into_inner().map_err(|e| e.into_error())?).await?;
    let mut pager = Pager::new(&scope);
    while let Some(items) = pager.next(&state).await? {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::with_capacity(items.len() * 256));
        for l in &items {
            w.write_record(csv_row(l, &scope.people))?;
        }
        send(&tx, w.into_inner().map_err(|e| e.into_error())?).await?;
    }
    Ok(())
}

// ---- Summaries -------------------------------------------------------------

/// A name that is safe inside a file name.
pub fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

const SUMMARY_HEADER: [&str; 17] = [
    "employee",
    "team",
    "date",
    "hours in day",
    "first seen",
    "last seen",
    "online (h)",
    "active (h)",
    "idle (h)",
    "active/idle from",
    "paused (h)",
    "boots",
    "shutdowns",
    "top applications",
    "top websites",
    "key presses",
    "detailed logs taken / expected",
];

fn summary_row(who: &str, team: &str, date: &str, hours: String, f: &SummaryFigures) -> Vec<String> {
    let h = |s: u64| format!("{:.2}", s as f64 / 3600.0);
    let time = |t: &Option<DateTime<chrono::FixedOffset>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let times = |v: &[DateTime<chrono::FixedOffset>]| {
        v.iter()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let named = |v: &[wfh_protocol::admin::NamedSecs]| {
        v.iter()
            .map(|n| format!("{} {}m", n.name, n.secs / 60))
            .collect::<Vec<_>>()
            .join("; ")
    };
    vec![
        who.to_owned(),
        team.to_owned(),
        date.to_owned(),
        hours,
        time(&f.first_seen),
        time(&f.last_seen),
        h(f.online_secs),
        h(f.active_secs),
        h(f.idle_secs),
        serde_json::to_value(f.active_idle_source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        h(f.paused_secs),
        times(&f.boots),
        times(&f.shutdowns),
        named(&f.top_apps),
        named(&f.top_sites),
        f.key_presses.map(|k| k.to_string()).unwrap_or_default(),
        format!("{} / {}", f.logs_taken, f.logs_expected),
    ]
}

/// A summary as CSV: one row per employee and day, then the employee's
/// total, then the team's.
pub fn summary_csv(s: &Summary) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = vec![SUMMARY_HEADER.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    for e in &s.employees {
        let who = Person {
            username: e.employee.username.clone(),
            display_name: e.employee.display_name.clone(),
        }
        .label();
        let team = e.team.clone().unwrap_or_default();
        for d in &e.days {
            rows.push(summary_row(
                &who,
                &team,
                &d.date.to_string(),
                d.hours.to_string(),
                &d.figures,
            ));
        }
        rows.push(summary_row(
            &who,
            &team,
            &format!("total {}", s.label),
            String::new(),
            &e.totals,
        ));
    }
    if let (Some(team), Some(totals)) = (&s.team, &s.team_totals) {
        rows.push(summary_row(
            "(team)",
            team,
            &format!("total {}", s.label),
            String::new(),
            totals,
        ));
    }
    // Application and site names come from devices: guarded like every cell.
    for r in rows {
        w.write_record(r.iter().map(|c| cell(c)))
            .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// Columns of the summary PDF's table: (title, x offset from the margin, width).
const SUMMARY_COLUMNS: [(&str, f32, f32); 7] = [
    ("", 0.0, 170.0),
    ("Online", 174.0, 56.0),
    ("Active / idle", 234.0, 96.0),
    ("Paused", 334.0, 50.0),
    ("Logs", 388.0, 50.0),
    ("Key presses", 442.0, 60.0),
    ("Top applications", 506.0, 264.0),
];
const SUMMARY_ROW_H: f32 = 16.0;

fn hm(secs: u64) -> String {
    let m = (secs + 30) / 60;
    format!("{} h {:02}", m / 60, m % 60)
}

fn summary_cells(label: String, f: &SummaryFigures) -> [String; 7] {
    [
        label,
        hm(f.online_secs),
        format!("{} / {}", hm(f.active_secs), hm(f.idle_secs)),
        hm(f.paused_secs),
        format!("{} / {}", f.logs_taken, f.logs_expected),
        f.key_presses.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
        f.top_apps
            .iter()
            .take(3)
            .map(|a| format!("{} {}", a.name, hm(a.secs)))
            .collect::<Vec<_>>()
            .join(", "),
    ]
}

/// A summary as a PDF report (A4 landscape, as many pages as it needs): a
/// row per person, or one person's days, and the team's totals.
pub fn summary_pdf(s: &Summary, generated_at: DateTime<Utc>) -> Vec<u8> {
    let mut rows: Vec<([String; 7], bool)> = Vec::new();
    let single = s.employees.len() == 1 && s.team.is_none();
    if single {
        let e = &s.employees[0];
        for d in &e.days {
            let hours = if d.hours == 24 {
                String::new()
            } else {
                format!(" ({} h)", d.hours)
            };
            rows.push((
                summary_cells(format!("{}{hours}", d.date.format("%a %Y-%m-%d")), &d.figures),
                false,
            ));
        }
        rows.push((summary_cells("Total".into(), &e.totals), true));
    } else {
        for e in &s.employees {
            let who = Person {
                username: e.employee.username.clone(),
                display_name: e.employee.display_name.clone(),
            }
            .label();
            rows.push((summary_cells(who, &e.totals), false));
        }
        if let (Some(team), Some(t)) = (&s.team, &s.team_totals) {
            rows.push((summary_cells(format!("Team {team}, together"), t), true));
        }
    }
    let title = match (&s.team, single) {
        (Some(team), _) => format!("Team {team}"),
        (None, true) => Person {
            username: s.employees[0].employee.username.clone(),
            display_name: s.employees[0].employee.display_name.clone(),
        }
        .label(),
        (None, false) => "Everyone".to_owned(),
    };
    let period = format!(
        "{} {}: {} to {} ({})  -  generated {}",
        match s.period {
            wfh_protocol::admin::Period::Day => "Day",
            wfh_protocol::admin::Period::Week => "Week",
            wfh_protocol::admin::Period::Month => "Month",
        },
        s.label,
        s.start.format("%Y-%m-%d"),
        (s.end - chrono::Duration::days(1)).format("%Y-%m-%d"),
        s.timezone,
        generated_at.format("%Y-%m-%d %H:%M UTC")
    );

    let mut pdf = pdf_writer::Pdf::new();
    let catalog = Ref::new(1);
    let pages_id = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let mut next = 5;
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    let first_row = PAGE_H - MARGIN - 64.0;
    let per_page = ((first_row - MARGIN) / SUMMARY_ROW_H).floor().max(1.0) as usize;
    let chunks: Vec<&[([String; 7], bool)]> = if rows.is_empty() {
        vec![&[]]
    } else {
        rows.chunks(per_page).collect()
    };
    let mut kids = Vec::new();
    let total_pages = chunks.len();
    for (n, chunk) in chunks.into_iter().enumerate() {
        let mut c = Content::new();
        let text = |c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, s: &[u8]| {
            c.begin_text()
                .set_font(Name(font), size)
                .next_line(x, y)
                .show(Str(s))
                .end_text();
        };
        text(
            &mut c,
            b"F2",
            15.0,
            MARGIN,
            PAGE_H - MARGIN - 12.0,
            &fit(
                &format!("WFH Monitor - summary: {title}"),
                15.0,
                PAGE_W - 2.0 * MARGIN,
            ),
        );
        text(
            &mut c,
            b"F1",
            8.5,
            MARGIN,
            PAGE_H - MARGIN - 26.0,
            &fit(
                &format!("{period}  -  page {} of {total_pages}", n + 1),
                8.5,
                PAGE_W - 2.0 * MARGIN,
            ),
        );
        let top = PAGE_H - MARGIN - 36.0;
        c.set_fill_gray(0.92)
            .rect(MARGIN, top - HEADER_H, PAGE_W - 2.0 * MARGIN, HEADER_H)
            .fill_nonzero()
            .set_fill_gray(0.0);
        for (t, x, w) in SUMMARY_COLUMNS {
            let label = if t.is_empty() {
                if single {
                    "Day"
                } else {
                    "Employee"
                }
            } else {
                t
            };
            text(
                &mut c,
                b"F2",
                8.5,
                MARGIN + x + 2.0,
                top - 15.0,
                &fit(label, 8.5, w),
            );
        }
        let mut y = first_row;
        for (cells, strong) in chunk {
            let font: &[u8] = if *strong { b"F2" } else { b"F1" };
            for ((_, x, w), cell) in SUMMARY_COLUMNS.iter().zip(cells) {
                text(
                    &mut c,
                    font,
                    8.5,
                    MARGIN + x + 2.0,
                    y - 11.0,
                    &fit(cell, 8.5, *w - 4.0),
                );
            }
            c.set_stroke_gray(0.85)
                .set_line_width(0.5)
                .move_to(MARGIN, y - SUMMARY_ROW_H)
                .line_to(PAGE_W - MARGIN, y - SUMMARY_ROW_H)
                .stroke();
            y -= SUMMARY_ROW_H;
        }
        let content_id = Ref::new(next);
        let page_id = Ref::new(next + 1);
        next += 2;
        pdf.stream(content_id, &c.finish());
        let mut page = pdf.page(page_id);
        page.parent(pages_id)
            .media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
            .contents(content_id);
        page.resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        page.finish();
        kids.push(page_id);
    }
    pdf.pages(pages_id)
        .kids(kids.iter().copied())
        .count(kids.len() as i32);
    pdf.catalog(catalog).pages(pages_id);
    let info = Ref::new(next);
    pdf.document_info(info)
        .title(pdf_writer::TextStr(&format!("WFH Monitor summary {}", s.label)));
    pdf.finish()
}

// ---- PDF ------------------------------------------------------------------

/// A4 landscape, in points.
const PAGE_W: f32 = 842.0;
const PAGE_H: f32 = 595.0;
const MARGIN: f32 = 36.0;
const ROW_H: f32 = 76.0;
const THUMB_W: f32 = 112.0;
const THUMB_H: f32 = 63.0;
const HEADER_H: f32 = 22.0;
/// Columns: (title, x offset from the margin, width).
const COLUMNS: [(&str, f32, f32); 7] = [
    ("Screenshot", 0.0, 120.0),
    ("Time (employee's local)", 124.0, 104.0),
    ("Employee", 232.0, 134.0),
    ("Computer", 370.0, 86.0),
    ("Local IPs", 460.0, 112.0),
    ("Public IP", 576.0, 78.0),
    ("Location", 658.0, 112.0),
];

/// Helvetica advance widths (1/1000 em) for ASCII 32..=126, from its AFM.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556,
    556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278,
    500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
    556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
    278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// Text in WinAnsiEncoding (Latin-1 for the characters that matter here);
/// what it cannot show becomes `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c as u32 {
            0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

fn text_width(bytes: &[u8], size: f32) -> f32 {
    bytes
        .iter()
        .map(|&b| match b {
            32..=126 => f32::from(HELVETICA[(b - 32) as usize]),
            _ => 556.0,
        })
        .sum::<f32>()
        * size
        / 1000.0
}

/// `s`, cut with an ellipsis to fit `width` points.
fn fit(s: &str, size: f32, width: f32) -> Vec<u8> {
    let mut bytes = win_ansi(s);
    if text_width(&bytes, size) <= width {
        return bytes;
    }
    while !bytes.is_empty() && text_width(&bytes, size) + text_width(b"...", size) > width {
        bytes.pop();
    }
    bytes.extend_from_slice(b"...");
    bytes
}

/// Writes a PDF one object at a time into the stream, counting offsets.
struct PdfStream {
    tx: Sender,
    written: usize,
    /// Offsets of objects 1..; index 0 is object 1.
    offsets: Vec<usize>,
    next_id: i32,
}

impl PdfStream {
    fn alloc(&mut self) -> Ref {
        let r = Ref::new(self.next_id);
        self.next_id += 1;
        r
    }

    async fn raw(&mut self, bytes: Vec<u8>) -> Result<(), ExportError> {
        self.written += bytes.len();
        send(&self.tx, bytes).await
    }

    /// Emit a chunk that holds exactly the object `id`.
    async fn object(&mut self, id: Ref, chunk: Chunk) -> Result<(), ExportError> {
        let index = (id.get() - 1) as usize;
        if self.offsets.len() <= index {
            self.offsets.resize(index + 1, 0);
        }
        self.offsets[index] = self.written;
        self.raw(chunk.as_bytes().to_vec()).await
    }

    async fn finish(mut self, catalog: Ref, info: Ref) -> Result<(), ExportError> {
        let start = self.written;
        let mut x = String::with_capacity(32 + self.offsets.len() * 20);
        let _ = write!(x, "xref\n0 {}\n0000000000 65535 f\r\n", self.offsets.len() + 1);
        for off in &self.offsets {
            let _ = write!(x, "{off:010} 00000 n\r\n");
        }
        let _ = write!(
            x,
            "trailer\n<< /Size {} /Root {} 0 R /Info {} 0 R >>\nstartxref\n{start}\n%%EOF\n",
            self.offsets.len() + 1,
            catalog.get(),
            info.get()
        );
        self.raw(x.into_bytes()).await
    }
}

struct PdfFonts {
    regular: Ref,
    bold: Ref,
}

/// One page's content and the thumbnails it places.
struct PageDraft {
    content: Content,
    images: Vec<(Ref, Vec<u8>, u32, u32)>,
    y: f32,
}

fn page_header(scope: &Scope, number: usize) -> Content {
    let mut c = Content::new();
    let title = win_ansi("WFH Monitor - detailed logs");
    c.begin_text()
        .set_font(Name(b"F2"), 15.0)
        .next_line(MARGIN, PAGE_H - MARGIN - 12.0)
        .show(Str(&title))
        .end_text();
    let sub = fit(
        &format!(
            "{}  -  generated {}  -  page {number}",
            scope.describe(),
            scope.generated_at.format("%Y-%m-%d %H:%M UTC")
        ),
        8.5,
        PAGE_W - 2.0 * MARGIN,
    );
    c.begin_text()
        .set_font(Name(b"F1"), 8.5)
        .next_line(MARGIN, PAGE_H - MARGIN - 26.0)
        .show(Str(&sub))
        .end_text();
    // Column titles on a grey band.
    let top = PAGE_H - MARGIN - 36.0;
    c.set_fill_gray(0.92)
        .rect(MARGIN, top - HEADER_H, PAGE_W - 2.0 * MARGIN, HEADER_H)
        .fill_nonzero()
        .set_fill_gray(0.0);
    for (title, x, w) in COLUMNS {
        let t = fit(title, 8.5, w);
        c.begin_text()
            .set_font(Name(b"F2"), 8.5)
            .next_line(MARGIN + x + 2.0, top - 15.0)
            .show(Str(&t))
            .end_text();
    }
    c
}

fn first_row_top() -> f32 {
    PAGE_H - MARGIN - 36.0 - HEADER_H
}

fn location(l: &LogRecord) -> String {
    let Some(loc) = &l.location else {
        return "unknown".into();
    };
    let parts: Vec<&str> = [loc.city.as_deref(), loc.country.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(", ")
    }
}

fn draw_row(
    draft: &mut PageDraft,
    l: &LogRecord,
    people: &HashMap<i64, Person>,
    thumb: Option<(Ref, Vec<u8>, u32, u32)>,
) {
    let top = draft.y;
    let c = &mut draft.content;
    c.set_stroke_gray(0.8)
        .set_line_width(0.5)
        .move_to(MARGIN, top - ROW_H)
        .line_to(PAGE_W - MARGIN, top - ROW_H)
        .stroke();
    if let Some((id, bytes, w, h)) = thumb {
        // Fit inside THUMB_W × THUMB_H, keeping the aspect ratio.
        let scale = (THUMB_W / w as f32).min(THUMB_H / h as f32);
        let (dw, dh) = (w as f32 * scale, h as f32 * scale);
        let name = format!("Im{}", id.get());
        c.save_state()
            .transform([dw, 0.0, 0.0, dh, MARGIN + 2.0, top - 6.0 - dh])
            .x_object(Name(name.as_bytes()))
            .restore_state();
        draft.images.push((id, bytes, w, h));
    }
    let who = people
        .get(&l.employee_id)
        .map_or_else(|| l.username.clone(), Person::label);
    let public = match l.reported_public_ip {
        Some(r) if r != l.observed_ip => vec![l.observed_ip.to_string(), format!("agent: {r}")],
        _ => vec![l.observed_ip.to_string()],
    };
    let local: Vec<String> = l.local_ips.iter().take(3).map(ToString::to_string).collect();
    let cells: [Vec<String>; 6] = [
        vec![
            l.timestamp.format("%a %Y-%m-%d").to_string(),
            l.timestamp.format("%H:%M:%S %:z").to_string(),
        ],
        vec![who, format!("as {}", l.username)],
        vec![l.hostname.clone()],
        if local.is_empty() {
            vec!["none".into()]
        } else {
            local
        },
        public,
        vec![location(l)],
    ];
    for ((_, x, w), lines) in COLUMNS[1..].iter().zip(cells) {
        for (i, line) in lines.iter().enumerate() {
            let t = fit(line, 8.5, *w - 4.0);
            c.begin_text()
                .set_font(Name(b"F1"), 8.5)
                .next_line(MARGIN + x + 2.0, top - 16.0 - 12.0 * i as f32)
                .show(Str(&t))
                .end_text();
        }
    }
    draft.y -= ROW_H;
}

async fn emit_page(
    pdf: &mut PdfStream,
    pages: Ref,
    fonts: &PdfFonts,
    draft: PageDraft,
    kids: &mut Vec<Ref>,
) -> Result<(), ExportError> {
    for (id, bytes, w, h) in &draft.images {
        let mut chunk = Chunk::new();
        let mut img = chunk.image_xobject(*id, bytes);
        img.filter(Filter::DctDecode);
        img.width(*w as i32);
        img.height(*h as i32);
        img.color_space().device_rgb();
        img.bits_per_component(8);
        img.finish();
        pdf.object(*id, chunk).await?;
    }
    let content_id = pdf.alloc();
    let data = draft.content.finish();
    let mut chunk = Chunk::new();
    chunk.stream(content_id, &data);
    pdf.object(content_id, chunk).await?;

    let page_id = pdf.alloc();
    let mut chunk = Chunk::new();
    let mut page = chunk.page(page_id);
    page.parent(pages)
        .media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H))
        .contents(content_id);
    let mut res = page.resources();
    res.fonts()
        .pair(Name(b"F1"), fonts.regular)
        .pair(Name(b"F2"), fonts.bold);
    let mut xo = res.x_objects();
    for (id, ..) in &draft.images {
        let name = format!("Im{}", id.get());
        xo.pair(Name(name.as_bytes()), *id);
    }
    xo.finish();
    res.finish();
    page.finish();
    pdf.object(page_id, chunk).await?;
    kids.push(page_id);
    Ok(())
}

/// The thumbnail JPEG of a log and its size, or `None` if the file is gone.
/// The screenshot's path is the server's own name for it, derived from the
/// record: no database round trip per row.
async fn thumbnail(state: &AppState, l: &LogRecord) -> Option<(Vec<u8>, u32, u32)> {
    let path = Screenshots::relative_path(l.received_at, l.id, l.image.format);
    let bytes = state.screenshots.thumbnail(&path).await.ok()?;
    let size = imagesize::blob_size(&bytes).ok()?;
    Some((bytes, size.width as u32, size.height as u32))
}

/// Stream the PDF report of `scope` into `tx`.
pub async fn pdf(state: AppState, scope: Scope, tx: Sender) -> Result<(), ExportError> {
    let mut pdf = PdfStream {
        tx,
        written: 0,
        offsets: Vec::new(),
        next_id: 1,
    };
    pdf.raw(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec()).await?;
    let pages_id = pdf.alloc();
    let fonts = PdfFonts {
        regular: pdf.alloc(),
        bold: pdf.alloc(),
    };
    for (id, base) in [(fonts.regular, "Helvetica"), (fonts.bold, "Helvetica-Bold")] {
        let mut chunk = Chunk::new();
        chunk
            .type1_font(id)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.object(id, chunk).await?;
    }

    let mut kids = Vec::new();
    let mut rows = 0usize;
    let mut draft = PageDraft {
        content: page_header(&scope, 1),
        images: Vec::new(),
        y: first_row_top(),
    };
    let mut pager = Pager::new(&scope);
    while let Some(items) = pager.next(&state).await? {
        for l in &items {
            if draft.y - ROW_H < MARGIN {
                let next = PageDraft {
                    content: page_header(&scope, kids.len() + 2),
                    images: Vec::new(),
                    y: first_row_top(),
                };
                let full = std::mem::replace(&mut draft, next);
                emit_page(&mut pdf, pages_id, &fonts, full, &mut kids).await?;
            }
            let thumb = thumbnail(&state, l)
                .await
                .map(|(bytes, w, h)| (pdf.alloc(), bytes, w, h));
            draw_row(&mut draft, l, &scope.people, thumb);
            rows += 1;
        }
    }
    if rows == 0 {
        let msg = win_ansi("No detailed logs match this filter.");
        draft
            .content
            .begin_text()
            .set_font(Name(b"F1"), 10.0)
            .next_line(MARGIN, first_row_top() - 20.0)
            .show(Str(&msg))
            .end_text();
    }
    emit_page(&mut pdf, pages_id, &fonts, draft, &mut kids).await?;

    let mut chunk = Chunk::new();
    chunk
        .pages(pages_id)
        .kids(kids.iter().copied())
        .count(kids.len() as i32);
    pdf.object(pages_id, chunk).await?;
    let info = pdf.alloc();
    let mut chunk = Chunk::new();
    chunk
        .indirect(info)
        .dict()
        .pair(Name(b"Title"), Str(b"WFH Monitor - detailed logs"))
        .pair(Name(b"Producer"), Str(b"WFH Monitor"));
    pdf.object(info, chunk).await?;
    let catalog = pdf.alloc();
    let mut chunk = Chunk::new();
    chunk
        .indirect(catalog)
        .dict()
        .pair(Name(b"Type"), Name(b"Catalog"))
        .pair(Name(b"Pages"), pages_id);
    pdf.object(catalog, chunk).await?;
    tracing::info!(rows, pages = kids.len(), bytes = pdf.written, "pdf export");
    pdf.finish(catalog, info).await
}

/// Run an export in its own task and stream what it writes. An error after
/// the first bytes cuts the download short (the client sees a broken file,
/// never a silently truncated one that looks whole).
pub fn stream<F, Fut>(
    make: F,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync
where
    F: FnOnce(Sender) -> Fut,
    Fut: std::future::Future<Output = Result<(), ExportError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    let fut = make(tx.clone());
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            if !matches!(e, ExportError::Closed) {
                tracing::warn!(error = %e, "export failed");
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}
