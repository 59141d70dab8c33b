//! `wfh-agent autostart` on Linux, in a home of its own: the systemd user
//! unit it writes passes `systemd-analyze verify` and is enabled; the XDG
//! autostart entry names this binary; uninstall removes both. (The Windows
//! task and the macOS LaunchAgent cannot be installed here: their files are
//! checked by unit tests in `src/autostart.rs`.)

use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_wfh-agent");

fn agent(home: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(AGENT)
        .args(["--config", &home.join("agent.toml").display().to_string()])
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env_remove("DISPLAY")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "wfh-agent {args:?}: {text}");
    text
}

#[test]
fn autostart_installs_a_valid_enabled_user_unit_and_an_autostart_entry() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    assert!(agent(home, &["autostart", "status"]).contains("Not set to start at login"));
    agent(home, &["autostart", "install", "--headless"]);
    agent(home, &["autostart", "install"]);

    let unit = home.join(".config/systemd/user/wfh-agent.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains(&format!("ExecStart={AGENT} run")), "{text}");
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let wants = home.join(".config/systemd/user/default.target.wants/wfh-agent.service");
    assert_eq!(std::fs::read_link(&wants).unwrap(), unit);
    let entry = std::fs::read_to_string(home.join(".config/autostart/wfh-monitor.desktop")).unwrap();
    assert!(entry.contains(&format!("Exec={AGENT}\n")), "{entry}");

    let status = agent(home, &["autostart", "status"]);
    assert!(
        status.contains("XDG autostart entry") && status.contains("systemd user unit (enabled)"),
        "{status}"
    );
    let removed = agent(home, &["autostart", "uninstall"]);
    assert!(removed.contains("wfh-agent.service"), "{removed}");
    assert!(!unit.exists() && !wants.exists());
    assert!(agent(home, &["autostart", "status"]).contains("Not set to start at login"));
}
