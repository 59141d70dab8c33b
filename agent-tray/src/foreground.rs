//! Which application is in front, and how many keys were pressed, from the OS.
//!
//! * **Linux/X11** (`x11rb`, no C library): the window the window manager
//!   names in `_NET_ACTIVE_WINDOW`, or without a window manager the X input
//!   focus, walked up to its top-level window. The application is the
//!   executable of the window's `_NET_WM_PID` (`/proc/<pid>/exe`), else the
//!   class in `WM_CLASS`; the title is `_NET_WM_NAME`, else `WM_NAME`. Keys
//!   are counted from XInput 2 raw key-press events on the root window: every
//!   press of any keyboard, never which key. Wayland sessions without
//!   XWayland windows in front give nothing (documented in docs/agent.md).
//! * **Windows**: the focused window through `active-win-pos-rs`; keys are
//!   counted by a low-level keyboard hook (`WH_KEYBOARD_LL`) on a thread of
//!   its own, installed only while the policy counts keys (no permission is
//!   asked; the hook sees only key-down events, and only their number is
//!   kept).
//! * **macOS**: the frontmost application from `NSWorkspace` (through
//!   `objc2-app-kit`; `active-win-pos-rs` generates its AppKit bindings with
//!   bindgen against the macOS SDK, which cannot be type-checked from Linux),
//!   named as the user sees it ("Safari", "Google Chrome"). No window titles
//!   yet (they need `CGWindowListCopyWindowInfo` and the Screen Recording
//!   permission) and no key counts (Input Monitoring).

/// The application in front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Focus {
    /// Executable name, without directory or `.exe`.
    pub app: String,
    pub title: Option<String>,
}

/// Something that can tell which application is in front (the OS or a test).
pub trait ForegroundSource: Send + Sync {
    /// Blocking: call from `spawn_blocking`. `None` when nothing is in front
    /// or the OS cannot tell.
    fn focused(&self) -> Option<Focus>;
}

/// Counts key presses since it started.
pub trait KeyCounter: Send + Sync {
    /// Presses so far; `None` when the counter stopped working.
    fn total(&self) -> Option<u64>;
}

/// The operating system's foreground window.
#[derive(Debug, Default)]
pub struct OsForeground {
    #[cfg(target_os = "linux")]
    x11: std::sync::Mutex<Option<x11::Conn>>,
}

/// `app` without its directory and `.exe`.
pub fn app_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit(['/', '\\']).next().unwrap_or(path_or_name);
    let base = base
        .strip_suffix(".exe")
        .or_else(|| base.strip_suffix(".EXE"))
        .unwrap_or(base);
    base.trim().to_owned()
}

#[cfg(target_os = "linux")]
impl ForegroundSource for OsForeground {
    fn focused(&self) -> Option<Focus> {
        std::env::var_os("DISPLAY")?;
        let mut guard = self.x11.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = x11::Conn::open();
        }
        match guard.as_ref()?.focused() {
            Ok(f) => f,
            Err(()) => {
                // The display went away: reconnect next time.
                *guard = None;
                None
            }
        }
    }
}

#[cfg(windows)]
impl ForegroundSource for OsForeground {
    fn focused(&self) -> Option<Focus> {
        let w = active_win_pos_rs::get_active_window().ok()?;
        let app = if w.process_path.as_os_str().is_empty() {
            app_name(&w.app_name)
        } else {
            app_name(&w.process_path.to_string_lossy())
        };
        (!app.is_empty()).then(|| Focus {
            app,
            title: (!w.title.is_empty()).then_some(w.title),
        })
    }
}

#[cfg(target_os = "macos")]
impl ForegroundSource for OsForeground {
    fn focused(&self) -> Option<Focus> {
        let app = objc2_app_kit::NSWorkspace::sharedWorkspace().frontmostApplication()?;
        let name = app.localizedName()?.to_string();
        let name = name.trim();
        (!name.is_empty()).then(|| Focus {
            app: name.to_owned(),
            title: None,
        })
    }
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
impl ForegroundSource for OsForeground {
    fn focused(&self) -> Option<Focus> {
        None
    }
}

/// Start counting with the OS, where it can (Linux/X11, Windows); `None`
/// elsewhere. Counting stops when the counter is dropped.
pub fn os_key_counter() -> Option<Box<dyn KeyCounter>> {
    #[cfg(target_os = "linux")]
    {
        x11::RawKeys::start().map(|k| Box::new(k) as Box<dyn KeyCounter>)
    }
    #[cfg(windows)]
    {
        win::HookKeys::start().map(|k| Box::new(k) as Box<dyn KeyCounter>)
    }
    #[cfg(not(any(target_os = "linux", windows)))]
    {
        None
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod win {
    //! The one Windows FFI in the agent: a low-level keyboard hook that
    //! counts key-down events (never which key) on a thread with a message
    //! loop, as `WH_KEYBOARD_LL` requires.

    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;

    use windows_sys::Win32::Foundation::{LPARAM, LRESULT, WPARAM};
    use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
    use windows_sys::Win32::System::Threading::GetCurrentThreadId;
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        CallNextHookEx, GetMessageW, PostThreadMessageW, SetWindowsHookExW, UnhookWindowsHookEx, MSG,
        WH_KEYBOARD_LL, WM_KEYDOWN, WM_QUIT, WM_SYSKEYDOWN,
    };

    use super::KeyCounter;

    /// Key-downs since the process started (one hook at a time).
    static COUNT: AtomicU64 = AtomicU64::new(0);

    unsafe extern "system" fn on_key(code: i32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
        if code >= 0 && matches!(wparam as u32, WM_KEYDOWN | WM_SYSKEYDOWN) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: passes the hook's own arguments on, as the API requires.
        unsafe { CallNextHookEx(std::ptr::null_mut(), code, wparam, lparam) }
    }

    pub struct HookKeys {
        thread: u32,
        start: u64,
    }

    impl HookKeys {
        pub fn start() -> Option<Self> {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("wfh-key-count".into())
                .spawn(move || {
                    // SAFETY: plain Win32 calls on this thread: the hook
                    // procedure is a static function, the module handle of
                    // this executable outlives the hook, and the MSG buffer
                    // lives on this stack for each GetMessageW call.
                    unsafe {
                        let module = GetModuleHandleW(std::ptr::null());
                        let hook = SetWindowsHookExW(WH_KEYBOARD_LL, Some(on_key), module, 0);
                        let _ = tx.send((!hook.is_null()).then(|| GetCurrentThreadId()));
                        if hook.is_null() {
                            return;
                        }
                        let mut msg: MSG = std::mem::zeroed();
                        while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {}
                        UnhookWindowsHookEx(hook);
                    }
                })
                .ok()?;
            let thread = rx.recv().ok()??;
            Some(Self {
                thread,
                start: COUNT.load(Ordering::Relaxed),
            })
        }
    }

    impl KeyCounter for HookKeys {
        fn total(&self) -> Option<u64> {
            Some(COUNT.load(Ordering::Relaxed) - self.start)
        }
    }

    impl Drop for HookKeys {
        fn drop(&mut self) {
            // SAFETY: asks the hook thread's message loop to end; a thread
            // id that no longer exists makes the call fail harmlessly.
            unsafe {
                PostThreadMessageW(self.thread, WM_QUIT, 0, 0);
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod x11 {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    use x11rb::connection::Connection as _;
    use x11rb::protocol::xinput::{self, ConnectionExt as _};
    use x11rb::protocol::xproto::{Atom, AtomEnum, ConnectionExt as _, Window};
    use x11rb::protocol::Event;
    use x11rb::rust_connection::RustConnection;

    use super::{app_name, Focus, KeyCounter};

    pub struct Conn {
        conn: RustConnection,
        root: Window,
        net_active_window: Atom,
        net_wm_pid: Atom,
        net_wm_name: Atom,
        utf8_string: Atom,
    }

    impl std::fmt::Debug for Conn {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Conn")
                .field("root", &self.root)
                .finish_non_exhaustive()
        }
    }

    fn atom(conn: &RustConnection, name: &str) -> Option<Atom> {
        Some(conn.intern_atom(false, name.as_bytes()).ok()?.reply().ok()?.atom)
    }

    impl Conn {
        pub fn open() -> Option<Self> {
            let (conn, screen) = x11rb::connect(None).ok()?;
            let root = conn.setup().roots.get(screen)?.root;
            Some(Self {
                net_active_window: atom(&conn, "_NET_ACTIVE_WINDOW")?,
                net_wm_pid: atom(&conn, "_NET_WM_PID")?,
                net_wm_name: atom(&conn, "_NET_WM_NAME")?,
                utf8_string: atom(&conn, "UTF8_STRING")?,
                conn,
                root,
            })
        }

        fn property(&self, w: Window, prop: Atom, kind: Atom) -> Result<Vec<u8>, ()> {
            let reply = self
                .conn
                .get_property(false, w, prop, kind, 0, 4096)
                .map_err(drop)?
                .reply()
                .map_err(drop)?;
            Ok(reply.value)
        }

        fn window_prop(&self, w: Window, prop: Atom) -> Result<Option<u32>, ()> {
            let v = self.property(w, prop, AtomEnum::ANY.into())?;
            Ok(v.get(..4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
        }

        /// The top-level window in front; `Err` when the connection broke.
        fn front(&self) -> Result<Option<Window>, ()> {
            if let Some(w) = self.window_prop(self.root, self.net_active_window)? {
                if w != 0 {
                    return Ok(Some(w));
                }
            }
            // No window manager: the input focus, up to the child of the root.
            let focus = self
                .conn
                .get_input_focus()
                .map_err(drop)?
                .reply()
                .map_err(drop)?
                .focus;
            let mut w = focus;
            if w == 0 || w == 1 || w == self.root {
                return Ok(None);
            }
            for _ in 0..32 {
                if self.described(w)? {
                    return Ok(Some(w));
                }
                let tree = self.conn.query_tree(w).map_err(drop)?.reply().map_err(drop)?;
                if tree.parent == self.root || tree.parent == 0 {
                    return Ok(Some(w));
                }
                w = tree.parent;
            }
            Ok(Some(w))
        }

        /// Does `w` carry a name or a class (an application's window)?
        fn described(&self, w: Window) -> Result<bool, ()> {
            Ok(!self
                .property(w, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?
                .is_empty()
                || !self
                    .property(w, AtomEnum::WM_NAME.into(), AtomEnum::ANY.into())?
                    .is_empty())
        }

        pub fn focused(&self) -> Result<Option<Focus>, ()> {
            let Some(w) = self.front()? else {
                return Ok(None);
            };
            let pid = self.window_prop(w, self.net_wm_pid)?;
            let from_exe = pid
                .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
                .map(|p| app_name(&p.to_string_lossy()))
                .filter(|a| !a.is_empty());
            let class = self.property(w, AtomEnum::WM_CLASS.into(), AtomEnum::STRING.into())?;
            // WM_CLASS is "instance\0class\0": the class names the application.
            let from_class = class
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .nth(1)
                .map(|s| String::from_utf8_lossy(s).into_owned());
            let Some(app) = from_exe.or(from_class) else {
                return Ok(None);
            };
            let mut title = self.property(w, self.net_wm_name, self.utf8_string)?;
            if title.is_empty() {
                title = self.property(w, AtomEnum::WM_NAME.into(), AtomEnum::ANY.into())?;
            }
            let title = String::from_utf8_lossy(&title).trim().to_owned();
            Ok(Some(Focus {
                app,
                title: (!title.is_empty()).then_some(title),
            }))
        }
    }

    /// Raw key presses of every keyboard, counted on a thread of its own
    /// that ends when this is dropped.
    pub struct RawKeys {
        count: Arc<AtomicU64>,
        alive: Arc<AtomicBool>,
        stop: Arc<AtomicBool>,
    }

    impl RawKeys {
        pub fn start() -> Option<Self> {
            std::env::var_os("DISPLAY")?;
            let (conn, screen) = x11rb::connect(None).ok()?;
            let root = conn.setup().roots.get(screen)?.root;
            // XInput 2.0 or later has raw events.
            let version = conn.xinput_xi_query_version(2, 0).ok()?.reply().ok()?;
            if version.major_version < 2 {
                return None;
            }
            let mask = xinput::EventMask {
                deviceid: xinput::Device::ALL_MASTER.into(),
                mask: vec![xinput::XIEventMask::RAW_KEY_PRESS],
            };
            conn.xinput_xi_select_events(root, &[mask]).ok()?.check().ok()?;
            let count = Arc::new(AtomicU64::new(0));
            let alive = Arc::new(AtomicBool::new(true));
            let stop = Arc::new(AtomicBool::new(false));
            let (c, a, s) = (count.clone(), alive.clone(), stop.clone());
            std::thread::Builder::new()
                .name("wfh-key-count".into())
                .spawn(move || {
                    // Polled every 100 ms, so that dropping the counter ends
                    // the thread and the connection (and with them the
                    // selection) without waiting for a key.
                    'outer: while !s.load(Ordering::Relaxed) {
                        loop {
                            match conn.poll_for_event() {
                                Ok(Some(Event::XinputRawKeyPress(_))) => {
                                    c.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(_) => break 'outer,
                            }
                        }
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    a.store(false, Ordering::Relaxed);
                })
                .ok()?;
            Some(Self { count, alive, stop })
        }
    }

    impl Drop for RawKeys {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    impl KeyCounter for RawKeys {
        fn total(&self) -> Option<u64> {
            self.alive
                .load(Ordering::Relaxed)
                .then(|| self.count.load(Ordering::Relaxed))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_lose_directory_and_extension() {
        assert_eq!(app_name("/usr/lib/firefox/firefox"), "firefox");
        assert_eq!(app_name(r"C:\Program Files\Code\Code.exe"), "Code");
        assert_eq!(app_name("xterm"), "xterm");
    }
}
