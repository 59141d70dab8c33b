# Shared by the scripts in this folder. Source it; do not run it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Build outputs live outside the clone so that a fresh clone builds warm.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wfh-monitor/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=
# apt_install PKG...: install the Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

require_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || {
    echo "Rust is not installed: install it with rustup (https://rustup.rs), then run this again." >&2
    exit 1
  }
}

# The build tools every crate here needs: ring and SQLite compile C; the
# agent's screen capture (xcap) links libxcb, PipeWire and GBM and runs
# bindgen (libclang).
build_deps() {
  apt_install build-essential pkg-config ca-certificates \
    libxcb1-dev libxcb-randr0-dev libxcb-shm0-dev libdbus-1-dev \
    libgbm-dev libegl-dev libwayland-dev libpipewire-0.3-dev libclang-dev
}

# What the agent's desktop tests need: a virtual X display, a D-Bus session,
# a notification daemon, a Secret Service, the kernel keyring tools, a
# StatusNotifierWatcher for the tray item, WebKitGTK's WebDriver, and systemd's
# busctl (the tray's D-Bus menu) and systemd-analyze (the autostart unit).
desktop_deps() {
  apt_install xvfb xauth x11-xserver-utils x11-utils xterm xdotool dbus dbus-x11 systemd \
    dunst gnome-keyring libsecret-tools keyutils \
    haskell-status-notifier-item-utils webkit2gtk-driver
}

# The tray app: WebKitGTK and the tray library (Tauri 2 on Linux).
tray_deps() {
  apt_install libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev
}

# What the install test needs: nginx (its own instance on test ports: the
# Debian service is not started here) and adduser (the server package's
# postinst). scripts/package installs what packaging needs (dpkg-dev).
deploy_deps() {
  if ! command -v nginx >/dev/null 2>&1; then
    local blocked=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
      as_root chmod 755 /usr/sbin/policy-rc.d
      blocked=1
    fi
    apt_install nginx
    [ -z "$blocked" ] || as_root rm -f /usr/sbin/policy-rc.d
  fi
  apt_install adduser
}

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/wfh-monitor

# Build the tray app's web UI (agent-ui/dist, embedded into wfh-agent) with
# the tools from the npm registry; nothing is downloaded at run time.
agent_ui() {
  local ui="$ROOT/agent-ui"
  if [ ! -d "$ui/node_modules/vite" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
    say "npm ci (agent-ui)"
    (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  say "building agent-ui"
  (cd "$ui" && npm run --silent build >/dev/null)
}

# tauri-driver (the WebDriver bridge for Tauri apps), built once from the
# crate registry into the cache; pinned (unpinned resolves to a 3.0 alpha).
tauri_driver() {
  if [ ! -x "$CACHE/tools/bin/tauri-driver" ]; then
    say "building tauri-driver 2.1.0 (once)"
    CARGO_TARGET_DIR="$CACHE/tools-target" cargo install tauri-driver@2.1.0 --locked --root "$CACHE/tools" --quiet
  fi
  export WFH_TAURI_DRIVER="$CACHE/tools/bin/tauri-driver"
}

# What the dashboard's browser tests need: Debian's Chromium (driven by
# Playwright from the npm registry; no browser is downloaded), poppler's
# pdftoppm/pdftotext for the PDF export, fonts, and Node.js.
browser_deps() {
  apt_install chromium poppler-utils fonts-dejavu-core fonts-liberation
  command -v node >/dev/null 2>&1 || apt_install nodejs npm
  # Playwright 1.61 (pinned) runs on Node 18, Debian 12's and Ubuntu 24.04's.
  if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
    echo "Node.js 18 or newer is needed for the dashboard tests; found $(node --version)" >&2
    exit 1
  fi
  local e2e="$ROOT/server/dashboard/e2e"
  if [ ! -d "$e2e/node_modules/@playwright/test" ] || [ "$e2e/package-lock.json" -nt "$e2e/node_modules/.package-lock.json" ]; then
    say "npm ci (dashboard end-to-end tests)"
    (cd "$e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Start PostgreSQL (installing it if missing) and export WFH_TEST_POSTGRES_URL
# for a role that may create databases, reachable over TCP with a password.
postgres_up() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start" >&2; exit 1; }
  as_root su postgres -c "psql -q -v ON_ERROR_STOP=1" >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wfh_test') THEN
    CREATE ROLE wfh_test LOGIN CREATEDB PASSWORD 'wfh_test';
  END IF;
END $$;
SQL
  export WFH_TEST_POSTGRES_URL=${WFH_TEST_POSTGRES_URL:-postgres://wfh_test:wfh_test@127.0.0.1:5432/postgres}
  # Databases left by interrupted test runs.
  as_root su postgres -c "psql -qtA -c \"SELECT datname FROM pg_database WHERE datname LIKE 'wfh_test_%'\"" |
    while read -r db; do as_root su postgres -c "psql -q -c 'DROP DATABASE IF EXISTS $db WITH (FORCE)'" >/dev/null; done
}

# Python tools from PyPI (the OpenAPI validator and the API fuzzer), pinned,
# in a venv under the cache; exports VENV.
VENV=$CACHE/venv
python_tools() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  command -v curl >/dev/null 2>&1 || apt_install curl
  local want="openapi-spec-validator==0.9.0 schemathesis==4.32.5"
  if [ ! -x "$VENV/bin/schemathesis" ] || [ "$(cat "$VENV/.wanted" 2>/dev/null)" != "$want" ]; then
    say "Python tools for the API checks: $want (once)"
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" >"$VENV/.wanted"
  fi
  export VENV
}
