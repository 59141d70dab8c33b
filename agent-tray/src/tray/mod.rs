//! The tray app (Tauri 2): the icon and its menu, the employee's window
//! (`agent-ui/`), and the engine running inside. Feature `tray`.
//!
//! * [`controller`] — the engine's lifecycle and every answer the UI needs.
//! * [`icon`] — the icon's picture for each state.
//!
//! The window is created when it is opened and destroyed when it is closed
//! (the web view costs tens of megabytes; the tray alone costs little).
//! A second launch focuses the running app's window (single instance).

pub mod controller;
pub mod icon;

use std::sync::{Arc, Mutex};

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};
use uuid::Uuid;
use wfh_protocol::ShutdownReason;

use crate::cli::{Cli, Context};
use controller::{ConsentView, Controller, SentView, Snapshot, TrayState};

const TRAY_ID: &str = "wfh-monitor";
const WINDOW: &str = "main";

/// The page the window should show when it (re)opens.
#[derive(Default)]
struct Pending(Mutex<Option<String>>);

/// Run the tray app until Quit (or the session ends).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    // GTK 3 on X11 initialises OpenGL when it opens the display, to choose
    // visuals for GL drawing that this app never does: that loads the GL
    // driver (with Mesa's software renderer, all of LLVM: ~45 MB resident)
    // into a process that mostly sits in the tray. The window's web content
    // is drawn by WebKit's own processes either way.
    #[cfg(target_os = "linux")]
    if std::env::var_os("GDK_GL").is_none() {
        std::env::set_var("GDK_GL", "disable");
    }
    let ctx = tauri::async_runtime::block_on(Context::load(&cli))?;
    let controller = Controller::new(ctx);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            open_window(app, None);
        }))
        .manage(controller.clone())
        .manage(Pending::default())
        .invoke_handler(tauri::generate_handler![
            snapshot,
            consent,
            accept_consent,
            enroll,
            pause,
            resume,
            sent,
            thumbnail,
            take_page,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let tray = TrayIconBuilder::with_id(TRAY_ID)
                .icon(tauri::image::Image::new_owned(
                    icon::pixels(TrayState::NotEnrolled),
                    icon::SIZE,
                    icon::SIZE,
                ))
                .tooltip("WFH Monitor")
                .title("WFH Monitor")
                .menu(&Menu::new(app)?)
                .show_menu_on_left_click(true)
                .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
                .build(app)?;
            let c = controller.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = c.start().await {
                    tracing::error!(error = %e, "the engine could not start");
                }
                let first = c.snapshot().await.ok();
                if first
                    .as_ref()
                    .is_some_and(|s| matches!(s.state, TrayState::NotEnrolled | TrayState::ConsentNeeded))
                {
                    open_window(&handle, None);
                }
                keep_tray_current(handle.clone(), tray, c.clone()).await;
            });
            let (h, c) = (app.handle().clone(), controller.clone());
            tauri::async_runtime::spawn(async move {
                let reason = crate::cli::shutdown_signal().await;
                c.stop(reason).await;
                h.exit(0);
            });
            Ok(())
        })
        .build(tauri::generate_context!())?;
    app.run(|_app, event| {
        // Closing the window leaves the tray running.
        if let RunEvent::ExitRequested { api, code: None, .. } = event {
            api.prevent_exit();
        }
    });
    Ok(())
}

/// Refresh the icon, tooltip and menu whenever the state changes (and every
/// few seconds, for the clock-driven parts: end of a pause, last heartbeat).
async fn keep_tray_current(app: AppHandle, tray: TrayIcon, c: Arc<Controller>) {
    let mut changed = c.subscribe();
    let mut shown: Option<(TrayState, String, Option<u32>, bool)> = None;
    loop {
        match c.snapshot().await {
            Ok(s) => {
                let key = (
                    s.state,
                    s.summary.clone(),
                    s.status.pause_limit_minutes,
                    s.status.quit_allowed,
                );
                if shown.as_ref() != Some(&key) {
                    if let Err(e) = show_state(&app, &tray, &s) {
                        tracing::warn!(error = %e, "updating the tray failed");
                    }
                    // A new policy changed what is collected: collection has
                    // stopped; ask the employee now rather than wait for a click.
                    let was = shown.as_ref().map(|k| k.0);
                    if s.state == TrayState::ConsentNeeded
                        && was.is_some_and(|w| w != TrayState::ConsentNeeded)
                    {
                        open_window(&app, Some("consent"));
                    }
                    shown = Some(key);
                }
            }
            Err(e) => tracing::warn!(error = %e, "reading the agent's state failed"),
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { break },
            () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
    }
}

fn show_state(app: &AppHandle, tray: &TrayIcon, s: &Snapshot) -> tauri::Result<()> {
    tray.set_icon(Some(tauri::image::Image::new_owned(
        icon::pixels(s.state),
        icon::SIZE,
        icon::SIZE,
    )))?;
    let line = format!("WFH Monitor: {}", s.summary);
    tray.set_tooltip(Some(&line))?;
    tray.set_title(Some(s.state.label()))?;
    tray.set_menu(Some(menu(app, s)?))?;
    tracing::debug!(state = ?s.state, "tray updated");
    Ok(())
}

fn menu(app: &AppHandle, s: &Snapshot) -> tauri::Result<Menu<tauri::Wry>> {
    let status = MenuItem::with_id(app, "status", &s.summary, false, None::<&str>)?;
    let sep = || PredefinedMenuItem::separator(app);
    let menu = Menu::with_items(app, &[&status])?;
    let monitoring = matches!(s.state, TrayState::Monitoring | TrayState::Offline);
    if s.state == TrayState::Paused || monitoring {
        menu.append(&sep()?)?;
    }
    if s.state == TrayState::Paused {
        menu.append(&MenuItem::with_id(
            app,
            "resume",
            "Resume monitoring",
            true,
            None::<&str>,
        )?)?;
    } else if monitoring {
        match s.status.pause_limit_minutes {
            Some(limit) => {
                let mut items = Vec::new();
                for (id, label, minutes) in
                    [("pause-15", "For 15 minutes", 15), ("pause-60", "For 1 hour", 60)]
                {
                    items.push(MenuItem::with_id(app, id, label, minutes <= limit, None::<&str>)?);
                }
                let tomorrow =
                    MenuItem::with_id(app, "pause-tomorrow", "Until tomorrow", true, None::<&str>)?;
                let label = if s.status.pause_limit_minutes.is_some_and(|l| l < 24 * 60) {
                    format!("Pause monitoring (up to {})", minutes_text(limit))
                } else {
                    "Pause monitoring".to_owned()
                };
                let sub = Submenu::with_id_and_items(
                    app,
                    "pause",
                    label,
                    true,
                    &[&items[0], &items[1], &tomorrow],
                )?;
                menu.append(&sub)?;
            }
            None => menu.append(&MenuItem::with_id(
                app,
                "pause-off",
                "Pausing is turned off by your employer",
                false,
                None::<&str>,
            )?)?,
        }
    }
    menu.append(&sep()?)?;
    menu.append(&MenuItem::with_id(
        app,
        "open",
        "Open WFH Monitor",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "sent",
        "What was sent",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        app,
        "collected",
        "What is collected",
        true,
        None::<&str>,
    )?)?;
    if s.status.quit_allowed {
        menu.append(&sep()?)?;
        menu.append(&MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?)?;
    }
    Ok(menu)
}

fn minutes_text(m: u32) -> String {
    if m >= 60 && m.is_multiple_of(60) {
        format!("{} h", m / 60)
    } else if m >= 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{m} min")
    }
}

fn on_menu(app: &AppHandle, id: &str) {
    let c = app.state::<Arc<Controller>>().inner().clone();
    let app = app.clone();
    let id = id.to_owned();
    tauri::async_runtime::spawn(async move {
        let result = match id.as_str() {
            "pause-15" => c.pause(Some(15)).await.map(drop),
            "pause-60" => c.pause(Some(60)).await.map(drop),
            "pause-tomorrow" => c.pause(None).await.map(drop),
            "resume" => c.resume().await,
            "open" => {
                open_window(&app, None);
                Ok(())
            }
            "sent" | "collected" => {
                open_window(&app, Some(&id));
                Ok(())
            }
            "quit" => {
                let allowed = c.snapshot().await.map(|s| s.status.quit_allowed).unwrap_or(true);
                if allowed {
                    c.stop(ShutdownReason::Stopped).await;
                    app.exit(0);
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(item = %id, error = %e, "menu action failed");
        }
    });
}

/// Show the window (creating it if it is closed), on `page` if given.
fn open_window(app: &AppHandle, page: Option<&str>) {
    if let Some(page) = page {
        *app.state::<Pending>().0.lock().expect("not poisoned") = Some(page.to_owned());
    }
    if let Some(w) = app.get_webview_window(WINDOW) {
        if let Some(page) = page {
            let _ = w.eval(format!("window.wfhNavigate && window.wfhNavigate({page:?})"));
        }
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
        .title("WFH Monitor")
        .inner_size(780.0, 700.0)
        .min_inner_size(420.0, 480.0)
        .build();
    if let Err(e) = built {
        tracing::error!(error = %e, "the window could not be opened");
    }
}

type Answer<T> = Result<T, String>;

/// The error for people: what failed and its root cause, once each.
fn answer<T>(r: anyhow::Result<T>) -> Answer<T> {
    r.map_err(|e| {
        let top = e.to_string();
        let root = e.root_cause().to_string();
        if top.contains(&root) {
            top
        } else {
            format!("{top}: {root}")
        }
    })
}

#[tauri::command]
async fn snapshot(c: tauri::State<'_, Arc<Controller>>) -> Answer<Snapshot> {
    answer(c.snapshot().await)
}

#[tauri::command]
async fn consent(c: tauri::State<'_, Arc<Controller>>, server: Option<String>) -> Answer<ConsentView> {
    answer(c.consent(server.as_deref()).await)
}

#[tauri::command]
async fn accept_consent(c: tauri::State<'_, Arc<Controller>>, version: String) -> Answer<()> {
    answer(c.accept(&version).await)
}

#[tauri::command]
async fn enroll(c: tauri::State<'_, Arc<Controller>>, server: String, code: String) -> Answer<()> {
    answer(c.inner().enroll(&server, &code).await)
}

#[tauri::command]
async fn pause(c: tauri::State<'_, Arc<Controller>>, minutes: Option<u32>) -> Answer<String> {
    answer(c.pause(minutes).await.map(|t| t.to_rfc3339()))
}

#[tauri::command]
async fn resume(c: tauri::State<'_, Arc<Controller>>) -> Answer<()> {
    answer(c.resume().await)
}

#[tauri::command]
async fn sent(c: tauri::State<'_, Arc<Controller>>, days: u32) -> Answer<Vec<SentView>> {
    answer(c.sent(days).await)
}

#[tauri::command]
async fn thumbnail(c: tauri::State<'_, Arc<Controller>>, event_id: Uuid) -> Answer<Option<String>> {
    answer(c.thumbnail(event_id).await)
}

/// The page a menu item asked for, once.
#[tauri::command]
fn take_page(pending: tauri::State<'_, Pending>) -> Option<String> {
    pending.0.lock().expect("not poisoned").take()
}
