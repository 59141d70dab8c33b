//! The tray icon's pictures, drawn at start-up: one colour and mark per
//! state, so the state reads at a glance (and not by colour alone: paused
//! has two bars, not set up is a ring, offline a broken ring, needs
//! attention an exclamation mark).

use super::controller::TrayState;

pub const SIZE: u32 = 32;

/// RGBA pixels of the icon for `state`.
pub fn pixels(state: TrayState) -> Vec<u8> {
    let (r, g, b) = match state {
        TrayState::Monitoring => (0x16, 0xa3, 0x4a),
        TrayState::Paused => (0xd9, 0x77, 0x06),
        TrayState::Offline => (0x64, 0x74, 0x8b),
        TrayState::NotEnrolled => (0x9c, 0xa3, 0xaf),
        TrayState::ConsentNeeded => (0x25, 0x63, 0xeb),
        TrayState::Error => (0xdc, 0x26, 0x26),
    };
    let mut px = vec![0u8; (SIZE * SIZE * 4) as usize];
    let c = (SIZE as f32 - 1.0) / 2.0;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (fx, fy) = (x as f32 - c, y as f32 - c);
            let d = (fx * fx + fy * fy).sqrt();
            let outer = (15.5 - d).clamp(0.0, 1.0);
            if outer <= 0.0 {
                continue;
            }
            let ring = d > 10.5;
            let angle = fy.atan2(fx);
            let filled = match state {
                TrayState::NotEnrolled => ring,
                TrayState::Offline => ring && (angle.sin() * 3.0).rem_euclid(2.0) < 1.2,
                _ => true,
            };
            if !filled {
                continue;
            }
            // A white mark on the filled states.
            let mark = match state {
                TrayState::Paused => (fy.abs() < 7.0) && ((fx + 4.0).abs() < 2.0 || (fx - 4.0).abs() < 2.0),
                TrayState::Error => fx.abs() < 2.0 && (fy < 3.0 && fy > -8.0 || (fy - 7.0).abs() < 2.0),
                TrayState::Monitoring => d < 4.0,
                TrayState::ConsentNeeded => {
                    fx.abs() < 2.0 && (fy > -3.0 && fy < 8.0 || (fy + 7.0).abs() < 2.0)
                }
                _ => false,
            };
            let i = ((y * SIZE + x) * 4) as usize;
            let (cr, cg, cb) = if mark { (255, 255, 255) } else { (r, g, b) };
            px[i..i + 4].copy_from_slice(&[cr, cg, cb, (255.0 * outer) as u8]);
        }
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pictures side by side, twice their size, for the docs
    /// (`WFH_AGENT_PICTURES=<folder>`; scripts/docs-pictures).
    #[test]
    fn tray_icons_picture() {
        let Some(dir) = std::env::var_os("WFH_AGENT_PICTURES").map(std::path::PathBuf::from) else {
            return;
        };
        let states = [
            TrayState::Monitoring,
            TrayState::Paused,
            TrayState::Offline,
            TrayState::ConsentNeeded,
            TrayState::NotEnrolled,
            TrayState::Error,
        ];
        let (cell, gap) = (SIZE * 2, 24);
        let width = states.len() as u32 * (cell + gap) + gap;
        let mut strip =
            image::RgbaImage::from_pixel(width, cell + 2 * gap, image::Rgba([255, 255, 255, 255]));
        for (i, state) in states.iter().enumerate() {
            let icon = image::RgbaImage::from_raw(SIZE, SIZE, pixels(*state)).unwrap();
            let big = image::imageops::resize(&icon, cell, cell, image::imageops::FilterType::CatmullRom);
            let x = gap + i as u32 * (cell + gap);
            image::imageops::overlay(&mut strip, &big, i64::from(x), i64::from(gap));
        }
        std::fs::create_dir_all(&dir).unwrap();
        strip.save(dir.join("tray-icons.png")).unwrap();
    }

    #[test]
    fn every_state_has_its_own_picture() {
        let all = [
            TrayState::Monitoring,
            TrayState::Paused,
            TrayState::Offline,
            TrayState::NotEnrolled,
            TrayState::ConsentNeeded,
            TrayState::Error,
        ];
        let pictures: Vec<_> = all.iter().map(|s| pixels(*s)).collect();
        for (i, a) in pictures.iter().enumerate() {
            assert_eq!(a.len(), (SIZE * SIZE * 4) as usize);
            for b in &pictures[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
