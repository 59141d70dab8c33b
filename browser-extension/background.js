// WFH Monitor browser extension: tells the agent on this computer which
// website the active tab of the focused window shows, over native messaging
// (the browser starts `wfh-agent` as its native host; no port is opened).
// The agent decides what is kept: the domain only, or the full address where
// the monitoring policy allows it; nothing is sent while no policy asks.
const HOST = "com.wfh_monitor.agent";
const api = globalThis.browser ?? globalThis.chrome;
let port = null;
let last = "";

function connect() {
  if (port) return port;
  try {
    port = api.runtime.connectNative(HOST);
    port.onDisconnect.addListener(() => {
      port = null;
      // What was posted to a host that has gone may not have reached the
      // agent: the next event sends the current tab again.
      last = "";
    });
  } catch {
    port = null;
  }
  return port;
}

/** The report for a tab: its address when it is a web page, else nothing. */
function report(tab) {
  let url = null;
  try {
    const u = new URL(tab?.url ?? "");
    if (u.protocol === "http:" || u.protocol === "https:") url = u.href;
  } catch {
    url = null;
  }
  return { kind: "active_tab", url, at: new Date().toISOString() };
}

async function tellNow() {
  let tab = null;
  try {
    // The last focused window even if the browser is not in front now: the
    // agent uses the report only while a browser is in front.
    const win = await api.windows.getLastFocused({ populate: false });
    if (win) [tab] = await api.tabs.query({ active: true, windowId: win.id });
  } catch {
    tab = null;
  }
  const msg = report(tab);
  // Send changes at once, and the same tab again at most once a minute.
  const key = msg.url ?? "";
  if (key === last && Date.now() - (tellNow.sentAt ?? 0) < 60_000) return;
  last = key;
  tellNow.sentAt = Date.now();
  connect()?.postMessage(msg);
}

// Events come in bursts (a new tab is activated, updated and focused at
// once); each report waits for the one before, so they reach the agent in the
// order the events happened and the last one describes the current tab.
let queue = Promise.resolve();
function tell() {
  queue = queue.then(tellNow, tellNow);
  return queue;
}

api.tabs.onActivated.addListener(tell);
api.tabs.onUpdated.addListener((_id, change, tab) => {
  if (tab.active && (change.url || change.status === "complete")) tell();
});
api.windows.onFocusChanged.addListener(tell);
api.runtime.onStartup?.addListener(tell);
api.runtime.onInstalled?.addListener(tell);
tell();
