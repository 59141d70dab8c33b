//! Screenshots of the whole desktop, every monitor, as one JPEG.
//!
//! Each monitor is captured with `xcap` and placed on one canvas at its
//! position in the virtual desktop (gaps stay black), then encoded as JPEG at
//! `screenshot_quality` (default 70): a deliberately busy 1920×1080 desktop
//! measures 427 KB and a flat one 55 KB (`docs/benchmarks.md`). JPEG
//! was chosen over PNG (3–10× larger for photos and video on screen) and
//! lossy WebP (no maintained pure-Rust encoder).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage, RgbaImage};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no monitor to capture (no display?)")]
    NoMonitor,
    #[error("screen capture failed: {0}")]
    Capture(String),
    #[error("encoding the screenshot failed: {0}")]
    Encode(String),
}

/// One monitor's picture and where it sits in the virtual desktop.
#[derive(Debug, Clone)]
pub struct MonitorShot {
    pub x: i32,
    pub y: i32,
    pub image: RgbaImage,
}

/// An encoded screenshot.
#[derive(Debug, Clone)]
pub struct Screenshot {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub monitors: usize,
}

/// Something that can take the screenshot (the desktop, or a test double).
pub trait Capturer: Send + Sync {
    /// Blocking: call from `spawn_blocking`.
    fn capture(&self) -> Result<Screenshot, CaptureError>;
}

/// The real desktop, through `xcap`.
#[derive(Debug, Clone)]
pub struct DesktopCapturer {
    pub quality: u8,
}

impl Capturer for DesktopCapturer {
    fn capture(&self) -> Result<Screenshot, CaptureError> {
        let shots = capture_monitors()?;
        let canvas = stitch(&shots).ok_or(CaptureError::NoMonitor)?;
        encode_jpeg(&fit_server_limits(canvas), self.quality, shots.len())
    }
}

/// Capture every monitor.
pub fn capture_monitors() -> Result<Vec<MonitorShot>, CaptureError> {
    let err = |e: xcap::XCapError| CaptureError::Capture(e.to_string());
    let monitors = xcap::Monitor::all().map_err(err)?;
    if monitors.is_empty() {
        return Err(CaptureError::NoMonitor);
    }
    monitors
        .iter()
        .map(|m| {
            Ok(MonitorShot {
                x: m.x().map_err(err)?,
                y: m.y().map_err(err)?,
                image: m.capture_image().map_err(err)?,
            })
        })
        .collect()
}

/// Place every monitor at its position on one canvas (the bounding box of
/// all of them); areas no monitor covers stay black.
pub fn stitch(shots: &[MonitorShot]) -> Option<RgbImage> {
    let left = shots.iter().map(|s| s.x).min()?;
    let top = shots.iter().map(|s| s.y).min()?;
    let right = shots.iter().map(|s| s.x + s.image.width() as i32).max()?;
    let bottom = shots.iter().map(|s| s.y + s.image.height() as i32).max()?;
    let (w, h) = (
        u32::try_from(right - left).ok()?,
        u32::try_from(bottom - top).ok()?,
    );
    if w == 0 || h == 0 {
        return None;
    }
    let mut canvas = RgbImage::from_pixel(w, h, Rgb([0, 0, 0]));
    for s in shots {
        let (ox, oy) = ((s.x - left) as u32, (s.y - top) as u32);
        for (x, y, p) in s.image.enumerate_pixels() {
            canvas.put_pixel(ox + x, oy + y, Rgb([p[0], p[1], p[2]]));
        }
    }
    Some(canvas)
}

/// A desktop larger than the server accepts
/// ([`wfh_protocol::SCREENSHOT_MAX_SIDE`], [`wfh_protocol::SCREENSHOT_MAX_PIXELS`])
/// is scaled down to fit, keeping its proportions, rather than refused.
pub fn fit_server_limits(img: RgbImage) -> RgbImage {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let max_side = f64::from(wfh_protocol::SCREENSHOT_MAX_SIDE);
    let by_side = (max_side / w).min(max_side / h);
    let by_area = (wfh_protocol::SCREENSHOT_MAX_PIXELS as f64 / (w * h)).sqrt();
    let scale = by_side.min(by_area);
    if scale >= 1.0 {
        return img;
    }
    // Rounded down, so the result is never over either limit.
    let nw = ((w * scale).floor() as u32).max(1);
    let nh = ((h * scale).floor() as u32).max(1);
    image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle)
}

pub fn encode_jpeg(img: &RgbImage, quality: u8, monitors: usize) -> Result<Screenshot, CaptureError> {
    let mut out = Cursor::new(Vec::with_capacity(256 * 1024));
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode_image(img)
        .map_err(|e| CaptureError::Encode(e.to_string()))?;
    Ok(Screenshot {
        bytes: out.into_inner(),
        mime: "image/jpeg",
        width: img.width(),
        height: img.height(),
        monitors,
    })
}

/// Width of the thumbnails kept for the employee's transparency log.
pub const THUMBNAIL_WIDTH: u32 = 360;

/// A small JPEG of an encoded screenshot (any format `image` reads).
pub fn thumbnail(encoded: &[u8]) -> Option<Vec<u8>> {
    let img = image::load_from_memory(encoded).ok()?;
    let small = img.thumbnail(THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 3).to_rgb8();
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, 70)
        .encode_image(&small)
        .ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn solid(w: u32, h: u32, c: [u8; 3]) -> RgbaImage {
        RgbaImage::from_pixel(w, h, Rgba([c[0], c[1], c[2], 255]))
    }

    #[test]
    fn monitors_are_placed_at_their_positions() {
        // A 1920×1080 primary and a 1280×1024 monitor to its left, lower.
        let shots = [
            MonitorShot {
                x: 0,
                y: 0,
                image: solid(1920, 1080, [255, 0, 0]),
            },
            MonitorShot {
                x: -1280,
                y: 200,
                image: solid(1280, 1024, [0, 0, 255]),
            },
        ];
        let c = stitch(&shots).unwrap();
        assert_eq!((c.width(), c.height()), (3200, 1224));
        assert_eq!(c.get_pixel(1280 + 5, 5), &Rgb([255, 0, 0]));
        assert_eq!(c.get_pixel(5, 205), &Rgb([0, 0, 255]));
        // Above the left monitor nothing is covered: black.
        assert_eq!(c.get_pixel(5, 5), &Rgb([0, 0, 0]));
        let jpeg = encode_jpeg(&c, 70, 2).unwrap();
        assert_eq!(&jpeg.bytes[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!((jpeg.width, jpeg.height, jpeg.monitors), (3200, 1224, 2));
    }

    #[test]
    fn a_desktop_over_the_servers_limits_is_scaled_down_to_fit() {
        let small = RgbImage::new(3840, 2160);
        assert_eq!(fit_server_limits(small).dimensions(), (3840, 2160));
        // Four 5K monitors in a row: too wide and too many pixels.
        let wide = fit_server_limits(RgbImage::new(20_480, 2880));
        let (w, h) = wide.dimensions();
        assert!(w <= wfh_protocol::SCREENSHOT_MAX_SIDE, "{w}x{h}");
        assert!(u64::from(w) * u64::from(h) <= wfh_protocol::SCREENSHOT_MAX_PIXELS);
        assert!((f64::from(w) / f64::from(h) - 20_480.0 / 2880.0).abs() < 0.01);
    }

    #[test]
    fn nothing_to_stitch_is_none() {
        assert!(stitch(&[]).is_none());
    }
}
