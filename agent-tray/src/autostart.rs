//! Starting at login, for the current user, on each OS.
//!
//! | OS | how | file |
//! |---|---|---|
//! | Linux, tray | XDG autostart (every desktop session starts it) | `~/.config/autostart/wfh-monitor.desktop` |
//! | Linux, headless | systemd user unit, enabled | `~/.config/systemd/user/wfh-agent.service` |
//! | macOS | LaunchAgent | `~/Library/LaunchAgents/org.wfh-monitor.agent.plist` |
//! | Windows | Task Scheduler task at log-on | task `\WFH Monitor` |
//!
//! The files are the templates in `installers/autostart/` with the agent's
//! path filled in; packages install the same files system-wide. Only the
//! Linux paths run here; the macOS and Windows ones are type-checked
//! (`scripts/xcheck`) and their rendered files tested, not executed.

use std::path::{Path, PathBuf};

const UNIT: &str = include_str!("../../installers/autostart/wfh-agent.service");
const DESKTOP: &str = include_str!("../../installers/autostart/wfh-monitor.desktop");
const PLIST: &str = include_str!("../../installers/autostart/org.wfh-monitor.agent.plist");
const TASK: &str = include_str!("../../installers/autostart/wfh-agent-task.xml");

pub const UNIT_NAME: &str = "wfh-agent.service";
pub const DESKTOP_NAME: &str = "wfh-monitor.desktop";
pub const PLIST_NAME: &str = "org.wfh-monitor.agent.plist";
pub const TASK_NAME: &str = "WFH Monitor";

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("no home directory for the current user")]
    NoHome,
    #[error("{command} failed: {detail}")]
    Command { command: String, detail: String },
    #[error("the agent's path {0:?} cannot be written into a start-up entry")]
    BadPath(PathBuf),
}

type Result<T> = std::result::Result<T, AutostartError>;

/// What starts at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The tray app (the desktop session starts it).
    Tray,
    /// The engine alone (`wfh-agent run`), as a service of the user.
    Headless,
}

/// Where the start-up entries live: for one user, or for every user of the
/// machine (what an installer sets up; needs administrator rights).
#[derive(Debug, Clone)]
pub struct Places {
    desktop_entry: PathBuf,
    unit: PathBuf,
    unit_wants: PathBuf,
    launch_agent: PathBuf,
    all_users: bool,
}

impl Places {
    /// The current user's.
    pub fn current() -> Result<Self> {
        let base = directories::BaseDirs::new().ok_or(AutostartError::NoHome)?;
        Ok(Self::user(base.config_dir(), base.home_dir()))
    }

    /// One user's, from `$XDG_CONFIG_HOME` (default `~/.config`) and the home
    /// directory (macOS: `~/Library/LaunchAgents`).
    pub fn user(config_dir: &Path, home: &Path) -> Self {
        Self {
            desktop_entry: config_dir.join("autostart").join(DESKTOP_NAME),
            unit: config_dir.join("systemd/user").join(UNIT_NAME),
            unit_wants: config_dir
                .join("systemd/user/default.target.wants")
                .join(UNIT_NAME),
            launch_agent: home.join("Library/LaunchAgents").join(PLIST_NAME),
            all_users: false,
        }
    }

    /// Every user's: `/etc/xdg/autostart`, `/etc/systemd/user` (enabled as
    /// `systemctl --global enable` does), `/Library/LaunchAgents`, or a task
    /// for the Users group.
    pub fn all_users() -> Self {
        Self::all_users_under(Path::new("/"))
    }

    /// [`Places::all_users`] inside `root` (tests).
    pub fn all_users_under(root: &Path) -> Self {
        Self {
            desktop_entry: root.join("etc/xdg/autostart").join(DESKTOP_NAME),
            unit: root.join("etc/systemd/user").join(UNIT_NAME),
            unit_wants: root.join("etc/systemd/user/default.target.wants").join(UNIT_NAME),
            launch_agent: root.join("Library/LaunchAgents").join(PLIST_NAME),
            all_users: true,
        }
    }

    pub fn desktop_entry(&self) -> PathBuf {
        self.desktop_entry.clone()
    }

    pub fn unit(&self) -> PathBuf {
        self.unit.clone()
    }

    /// The symlink `systemctl [--user|--global] enable` would make.
    pub fn unit_wants(&self) -> PathBuf {
        self.unit_wants.clone()
    }

    pub fn launch_agent(&self) -> PathBuf {
        self.launch_agent.clone()
    }
}

/// Who a Windows task starts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPrincipal<'a> {
    /// One user, `DOMAIN\name`.
    User(&'a str),
    /// Whoever logs on, from the built-in Users group (S-1-5-32-545).
    AllUsers,
}

fn fill(template: &str, exe: &Path) -> Result<String> {
    let s = exe
        .to_str()
        .ok_or_else(|| AutostartError::BadPath(exe.to_owned()))?;
    if s.contains(['\n', '"', '<', '>', '&']) {
        return Err(AutostartError::BadPath(exe.to_owned()));
    }
    // systemd and desktop entries split Exec= on spaces: quote a path with one.
    let quoted = if s.contains(' ') {
        format!("\"{s}\"")
    } else {
        s.to_owned()
    };
    Ok(template.replace("@EXE@", &quoted))
}

pub fn render_unit(exe: &Path) -> Result<String> {
    fill(UNIT, exe)
}

pub fn render_desktop_entry(exe: &Path) -> Result<String> {
    fill(DESKTOP, exe)
}

pub fn render_launch_agent(exe: &Path) -> Result<String> {
    // A plist string holds the path as is (no quoting).
    let s = exe
        .to_str()
        .ok_or_else(|| AutostartError::BadPath(exe.to_owned()))?;
    if s.contains(['<', '>', '&']) {
        return Err(AutostartError::BadPath(exe.to_owned()));
    }
    Ok(PLIST.replace("@EXE@", s))
}

/// The task's XML for `who`, as UTF-16LE with a BOM, the encoding its
/// declaration names and `schtasks /XML` expects.
pub fn render_task(exe: &Path, who: TaskPrincipal<'_>) -> Result<Vec<u8>> {
    let s = exe
        .to_str()
        .ok_or_else(|| AutostartError::BadPath(exe.to_owned()))?;
    if s.contains(['<', '>', '&']) {
        return Err(AutostartError::BadPath(exe.to_owned()));
    }
    // The template's own comment documents its placeholders: not shipped.
    let body = match (TASK.find("<!--"), TASK.find("-->\n")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &TASK[..a], &TASK[b + 4..]),
        _ => TASK.to_owned(),
    };
    let xml = body.replace("@EXE@", s);
    let xml = match who {
        TaskPrincipal::User(user) => {
            if user.contains(['<', '>', '&']) {
                return Err(AutostartError::BadPath(PathBuf::from(user)));
            }
            xml.replace("@USER@", user)
        }
        // Any user's log-on, run as that user in their session.
        TaskPrincipal::AllUsers => xml
            .replace("      <UserId>@USER@</UserId>\n      <Delay>", "      <Delay>")
            .replace(
                "<UserId>@USER@</UserId>\n      <LogonType>InteractiveToken</LogonType>",
                "<GroupId>S-1-5-32-545</GroupId>",
            ),
    };
    let mut out = vec![0xFF, 0xFE];
    for unit in xml.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    Ok(out)
}

fn write(path: &Path, contents: &[u8]) -> Result<()> {
    let io = |e| AutostartError::Io(path.to_owned(), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AutostartError::Io(path.to_owned(), e)),
    }
}

/// Run a command; its failure is reported, not fatal, where `best_effort`.
fn run(program: &str, args: &[&str], best_effort: bool) -> Result<()> {
    let out = std::process::Command::new(program).args(args).output();
    let detail = match out {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        Err(e) => e.to_string(),
    };
    let command = format!("{program} {}", args.join(" "));
    if best_effort {
        tracing::info!(%command, %detail, "not done (the entry is in place and applies at the next login)");
        Ok(())
    } else {
        Err(AutostartError::Command { command, detail })
    }
}

/// What is installed for this user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// Entries in place, each with a description.
    pub entries: Vec<(PathBuf, &'static str)>,
}

/// Make the agent start at login for the current user. Returns what was written.
pub fn install(places: &Places, exe: &Path, mode: Mode) -> Result<Installed> {
    let mut done = Installed::default();
    if cfg!(target_os = "macos") {
        let plist = places.launch_agent();
        write(&plist, render_launch_agent(exe)?.as_bytes())?;
        done.entries.push((plist.clone(), "LaunchAgent"));
        // Every user's LaunchAgent applies at their next log-in.
        #[cfg(unix)]
        if !places.all_users {
            let domain = format!("gui/{}", uid());
            let plist = plist.display().to_string();
            let _ = run("launchctl", &["bootout", &domain, &plist], true);
            run("launchctl", &["bootstrap", &domain, &plist], true)?;
        }
    } else if cfg!(windows) {
        let user = std::env::var("USERDOMAIN")
            .map(|d| format!("{d}\\{}", whoami::username()))
            .unwrap_or_else(|_| whoami::username());
        let who = if places.all_users {
            TaskPrincipal::AllUsers
        } else {
            TaskPrincipal::User(&user)
        };
        let xml = std::env::temp_dir().join("wfh-agent-task.xml");
        write(&xml, &render_task(exe, who)?)?;
        let path = xml.display().to_string();
        let created = run(
            "schtasks",
            &["/Create", "/TN", TASK_NAME, "/XML", &path, "/F"],
            false,
        );
        let _ = remove(&xml);
        created?;
        done.entries
            .push((PathBuf::from(format!("\\{TASK_NAME}")), "Task Scheduler task"));
    } else {
        match mode {
            Mode::Tray => {
                let entry = places.desktop_entry();
                write(&entry, render_desktop_entry(exe)?.as_bytes())?;
                done.entries.push((entry, "XDG autostart entry"));
            }
            Mode::Headless => {
                let unit = places.unit();
                write(&unit, render_unit(exe)?.as_bytes())?;
                enable_unit(places)?;
                done.entries.push((unit, "systemd user unit (enabled)"));
                if !places.all_users {
                    run("systemctl", &["--user", "daemon-reload"], true)?;
                }
            }
        }
    }
    Ok(done)
}

/// Enable the unit the way `systemctl --user enable` does (a symlink in
/// `default.target.wants`), which works without a running user manager.
fn enable_unit(places: &Places) -> Result<()> {
    let link = places.unit_wants();
    let _ = remove(&link)?;
    if let Some(dir) = link.parent() {
        std::fs::create_dir_all(dir).map_err(|e| AutostartError::Io(dir.to_owned(), e))?;
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(places.unit(), &link).map_err(|e| AutostartError::Io(link.clone(), e))?;
    Ok(())
}

/// Remove every start-up entry of the current user. Returns what was removed.
pub fn uninstall(places: &Places) -> Result<Installed> {
    let mut done = Installed::default();
    if cfg!(target_os = "macos") {
        let plist = places.launch_agent();
        #[cfg(unix)]
        if !places.all_users {
            let domain = format!("gui/{}", uid());
            let _ = run(
                "launchctl",
                &["bootout", &domain, &plist.display().to_string()],
                true,
            );
        }
        if remove(&plist)? {
            done.entries.push((plist, "LaunchAgent"));
        }
    } else if cfg!(windows) {
        if run("schtasks", &["/Delete", "/TN", TASK_NAME, "/F"], false).is_ok() {
            done.entries
                .push((PathBuf::from(format!("\\{TASK_NAME}")), "Task Scheduler task"));
        }
    } else {
        if remove(&places.desktop_entry())? {
            done.entries.push((places.desktop_entry(), "XDG autostart entry"));
        }
        let _ = remove(&places.unit_wants())?;
        if remove(&places.unit())? {
            done.entries.push((places.unit(), "systemd user unit"));
            if !places.all_users {
                run("systemctl", &["--user", "daemon-reload"], true)?;
            }
        }
    }
    Ok(done)
}

/// The start-up entries in place for the current user.
pub fn status(places: &Places) -> Result<Installed> {
    let mut found = Installed::default();
    if cfg!(target_os = "macos") {
        if places.launch_agent().exists() {
            found.entries.push((places.launch_agent(), "LaunchAgent"));
        }
    } else if cfg!(windows) {
        if run("schtasks", &["/Query", "/TN", TASK_NAME], false).is_ok() {
            found
                .entries
                .push((PathBuf::from(format!("\\{TASK_NAME}")), "Task Scheduler task"));
        }
    } else {
        if places.desktop_entry().exists() {
            found
                .entries
                .push((places.desktop_entry(), "XDG autostart entry"));
        }
        if places.unit().exists() {
            let what = if places.unit_wants().exists() {
                "systemd user unit (enabled)"
            } else {
                "systemd user unit (not enabled)"
            };
            found.entries.push((places.unit(), what));
        }
    }
    Ok(found)
}

#[cfg(unix)]
fn uid() -> String {
    std::env::var("UID").unwrap_or_else(|_| {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_gets_the_agents_path_and_nothing_is_left_to_fill() {
        let exe = Path::new("/opt/WFH Monitor/wfh-agent");
        let unit = render_unit(exe).unwrap();
        assert!(
            unit.contains("ExecStart=\"/opt/WFH Monitor/wfh-agent\" run"),
            "{unit}"
        );
        let entry = render_desktop_entry(exe).unwrap();
        assert!(entry.contains("Exec=\"/opt/WFH Monitor/wfh-agent\"\n"), "{entry}");
        let plist = render_launch_agent(exe).unwrap();
        assert!(plist.contains("<string>/opt/WFH Monitor/wfh-agent</string>"));
        for text in [&unit, &entry, &plist] {
            assert!(!text.contains('@'), "{text}");
        }
    }

    // Windows cannot run here: the task is checked as the file schtasks reads.
    #[test]
    fn the_windows_task_is_utf16_with_the_user_and_the_agent() {
        let exe = Path::new(r"C:\Program Files\WFH Monitor\wfh-agent.exe");
        let xml = utf16(&render_task(exe, TaskPrincipal::User(r"ACME\ana")).unwrap());
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-16\"?>"));
        assert!(xml.contains(r"<Command>C:\Program Files\WFH Monitor\wfh-agent.exe</Command>"));
        assert_eq!(xml.matches(r"<UserId>ACME\ana</UserId>").count(), 2);
        assert!(xml.contains("<LogonTrigger>") && xml.contains("<MultipleInstancesPolicy>IgnoreNew"));
        assert!(!xml.contains('@'));
    }

    fn utf16(bytes: &[u8]) -> String {
        assert_eq!(&bytes[..2], &[0xFF, 0xFE], "UTF-16LE byte order mark");
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    }

    // The MSI's task: any user's log-on, run as that user (Users group).
    #[test]
    fn the_all_users_windows_task_names_the_users_group_and_no_user() {
        let exe = Path::new(r"C:\Program Files\WFH Monitor\wfh-agent.exe");
        let xml = utf16(&render_task(exe, TaskPrincipal::AllUsers).unwrap());
        assert!(!xml.contains("<UserId>") && !xml.contains('@'), "{xml}");
        assert_eq!(xml.matches("<GroupId>S-1-5-32-545</GroupId>").count(), 1, "{xml}");
        assert!(xml.contains("<LogonTrigger>\n      <Enabled>true</Enabled>\n      <Delay>PT10S</Delay>"));
        assert!(xml.contains("<RunLevel>LeastPrivilege</RunLevel>"));
    }

    // What the agent's .deb installs is what `autostart install` writes.
    #[test]
    fn the_packaged_linux_files_are_the_templates_for_usr_bin() {
        let exe = Path::new("/usr/bin/wfh-agent");
        assert_eq!(
            render_desktop_entry(exe).unwrap(),
            include_str!("../../installers/linux/wfh-monitor-autostart.desktop")
        );
        assert_eq!(
            render_unit(exe).unwrap(),
            include_str!("../../installers/linux/wfh-agent.service")
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn all_users_entries_go_where_every_session_finds_them() {
        let root = tempfile::tempdir().unwrap();
        let places = Places::all_users_under(root.path());
        let exe = Path::new("/usr/bin/wfh-agent");
        install(&places, exe, Mode::Tray).unwrap();
        install(&places, exe, Mode::Headless).unwrap();
        assert!(root
            .path()
            .join("etc/xdg/autostart/wfh-monitor.desktop")
            .is_file());
        assert_eq!(
            std::fs::read_link(
                root.path()
                    .join("etc/systemd/user/default.target.wants/wfh-agent.service")
            )
            .unwrap(),
            root.path().join("etc/systemd/user/wfh-agent.service"),
            "enabled as systemctl --global would"
        );
        assert_eq!(uninstall(&places).unwrap().entries.len(), 2);
        assert_eq!(status(&places).unwrap(), Installed::default());
    }

    #[test]
    fn a_path_that_would_break_the_files_is_refused() {
        for bad in ["/tmp/a\nExecStart=/bin/sh", "/tmp/<evil>", "/tmp/a\"b"] {
            assert!(render_unit(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_install_status_and_uninstall_in_a_home_of_its_own() {
        let home = tempfile::tempdir().unwrap();
        let places = Places::user(&home.path().join(".config"), home.path());
        let exe = Path::new("/usr/bin/wfh-agent");
        assert_eq!(status(&places).unwrap(), Installed::default());
        install(&places, exe, Mode::Tray).unwrap();
        install(&places, exe, Mode::Headless).unwrap();
        let found = status(&places).unwrap();
        let kinds: Vec<_> = found.entries.iter().map(|(_, k)| *k).collect();
        assert_eq!(kinds, ["XDG autostart entry", "systemd user unit (enabled)"]);
        assert_eq!(
            std::fs::read_link(places.unit_wants()).unwrap(),
            places.unit(),
            "enabled as systemctl would"
        );
        // Installing again changes nothing.
        install(&places, exe, Mode::Headless).unwrap();
        assert_eq!(status(&places).unwrap(), found);
        let removed = uninstall(&places).unwrap();
        assert_eq!(removed.entries.len(), 2);
        assert_eq!(status(&places).unwrap(), Installed::default());
        assert!(!places.unit_wants().exists());
    }
}
