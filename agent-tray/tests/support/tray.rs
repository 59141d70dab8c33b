//! The tray item on the session bus: StatusNotifierItem properties and its
//! dbusmenu, read and clicked with `busctl`, as a desktop panel would.

use std::process::Command;

use serde_json::Value;

use super::Desktop;

/// `busctl --user --json=short <args>` in the desktop's session.
pub fn busctl(desktop: &Desktop, args: &[&str]) -> Option<Value> {
    let out = Command::new("busctl")
        .args(["--user", "--json=short"])
        .args(args)
        .envs(desktop.env())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The registered tray item: (bus name, object path).
pub fn tray_item(desktop: &Desktop) -> Option<(String, String)> {
    let v = busctl(
        desktop,
        &[
            "get-property",
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "org.kde.StatusNotifierWatcher",
            "RegisteredStatusNotifierItems",
        ],
    )?;
    let first = v["data"].as_array()?.first()?.as_str()?.to_owned();
    // "<bus name>/<path>", or the bus name alone (libayatana): then the item
    // is whichever of the name's objects answers as a StatusNotifierItem.
    if let Some(slash) = first.find('/') {
        return Some((first[..slash].to_owned(), first[slash..].to_owned()));
    }
    let out = Command::new("busctl")
        .args(["--user", "--list", "tree", &first])
        .envs(desktop.env())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|p| p.starts_with('/'))
        .map(|p| (first.clone(), p.to_owned()))
        .find(|item| item_property(desktop, item, "Status").is_some())
}

pub fn item_property(desktop: &Desktop, item: &(String, String), name: &str) -> Option<Value> {
    busctl(
        desktop,
        &[
            "get-property",
            &item.0,
            &item.1,
            "org.kde.StatusNotifierItem",
            name,
        ],
    )
    .map(|v| v["data"].clone())
}

/// Every (id, label, enabled) of the item's menu, depth first.
pub fn menu(desktop: &Desktop, item: &(String, String)) -> Vec<(i64, String, bool)> {
    let Some(path) = item_property(desktop, item, "Menu").and_then(|v| v.as_str().map(str::to_owned)) else {
        return Vec::new();
    };
    let Some(layout) = busctl(
        desktop,
        &[
            "call",
            &item.0,
            &path,
            "com.canonical.dbusmenu",
            "GetLayout",
            "iias",
            "0",
            "10",
            "0",
        ],
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    fn walk(node: &Value, out: &mut Vec<(i64, String, bool)>) {
        // (id, {properties}, [children as variants])
        let id = node[0].as_i64().unwrap_or(-1);
        let props = &node[1];
        if let Some(label) = props["label"]["data"].as_str() {
            let enabled = props["enabled"]["data"].as_bool().unwrap_or(true);
            out.push((id, label.replace('_', ""), enabled));
        }
        for child in node[2].as_array().into_iter().flatten() {
            walk(&child["data"], out);
        }
    }
    walk(&layout["data"][1], &mut out);
    out
}

pub fn click(desktop: &Desktop, item: &(String, String), id: i64) {
    let path = item_property(desktop, item, "Menu").unwrap();
    let path = path.as_str().unwrap();
    let status = Command::new("busctl")
        .args([
            "--user",
            "call",
            &item.0,
            path,
            "com.canonical.dbusmenu",
            "Event",
            "isvu",
        ])
        .arg(id.to_string())
        .args(["clicked", "s", "", "0"])
        .envs(desktop.env())
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn find(menu: &[(i64, String, bool)], label: &str) -> Option<(i64, bool)> {
    menu.iter()
        .find(|(_, l, _)| l.starts_with(label))
        .map(|(id, _, enabled)| (*id, *enabled))
}

/// How many windows titled "WFH Monitor" are on the display.
pub fn app_windows(desktop: &Desktop) -> usize {
    let out = Command::new("xdotool")
        .args(["search", "--name", "^WFH Monitor$"])
        .envs(desktop.env())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}
