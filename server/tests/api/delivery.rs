//! The agent's delivery against the real server, through a proxy that can
//! answer with an error page of its own: what can succeed later is kept and
//! sent later, what the server refuses for good is shown with its reason.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Duration;
use rand::SeedableRng as _;
use wfh_agent::client::ApiClient;
use wfh_agent::clock::{Clock as _, ManualClock};
use wfh_agent::delivery::{Delivery, Step};
use wfh_agent::outbox::{Backoff, Item, Outbox};
use wfh_protocol::HeartbeatStatus;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// A proxy in front of the server: while `blocked`, every new connection
/// gets a 403 page of the proxy's own; otherwise bytes pass both ways.
async fn proxy(upstream: std::net::SocketAddr, blocked: Arc<AtomicBool>) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let blocked = blocked.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if blocked {
                    let mut buf = vec![0; 64 * 1024];
                    let _ = client.read(&mut buf).await;
                    let page = "<html><body>Access denied by the corporate proxy</body></html>";
                    let _ = client
                        .write_all(
                            format!(
                                "HTTP/1.1 403 Forbidden\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                                 connection: close\r\n\r\n{page}",
                                page.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                    return;
                }
                if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}

async fn what_can_succeed_later_is_kept_and_what_is_refused_is_shown_with_its_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (token, _) = app.enrolled("rae").await;
    let blocked = Arc::new(AtomicBool::new(true));
    let via = proxy(app.addr, blocked.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("agent.db")).await.unwrap();
    let clock = Arc::new(ManualClock::new(wfh_server::clock::Clock::now(
        app.clock.as_ref(),
    )));
    let mut delivery = Delivery::new(
        outbox.clone(),
        ApiClient::new(&format!("http://{via}"), None).unwrap(),
        token,
        clock.clone(),
        Backoff::default(),
        rand::rngs::StdRng::seed_from_u64(7),
    );
    let heartbeat = app.heartbeat("rae", HeartbeatStatus::Online);
    outbox
        .enqueue(&Item::Heartbeat(heartbeat.clone()), clock.now())
        .await
        .unwrap();

    // The proxy's 403 page: kept for later, not set aside.
    assert_eq!(delivery.step().await.unwrap(), Step::Deferred);
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats.queued, stats.set_aside), (1, 0));
    blocked.store(false, Ordering::SeqCst);
    clock.advance(Duration::minutes(20));
    app.clock.advance(Duration::minutes(20));
    assert_eq!(delivery.step().await.unwrap(), Step::Sent);
    assert_eq!(app.count("heartbeats").await, 1);

    // Dated 40 minutes ahead of the server's clock (10 allowed): kept, and
    // not tried again before the server says it would take it.
    let mut ahead = app.heartbeat("rae", HeartbeatStatus::Online);
    ahead.timestamp = app.now() + Duration::minutes(40);
    outbox
        .enqueue(&Item::Heartbeat(ahead.clone()), clock.now())
        .await
        .unwrap();
    assert_eq!(delivery.step().await.unwrap(), Step::Deferred);
    let next = outbox.next_attempt_at().await.unwrap().unwrap();
    assert!(
        next >= clock.now() + Duration::minutes(29),
        "retried at {next}, {} s from now",
        (next - clock.now()).num_seconds()
    );
    clock.advance(Duration::minutes(31));
    app.clock.advance(Duration::minutes(31));
    assert_eq!(delivery.step().await.unwrap(), Step::Sent);
    assert_eq!(app.count("heartbeats").await, 2);

    // Older than the server keeps: refused for good, and the employee sees why.
    let mut expired = app.heartbeat("rae", HeartbeatStatus::Idle);
    expired.timestamp = app.now() - Duration::days(30) + Duration::seconds(15);
    outbox
        .enqueue(&Item::Heartbeat(expired.clone()), clock.now())
        .await
        .unwrap();
    assert_eq!(delivery.step().await.unwrap(), Step::SetAside);
    let sent = outbox.sent(clock.now() - Duration::days(1), 100).await.unwrap();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let refused = sent.iter().find(|e| e.event_id == expired.event_id).unwrap();
    assert!(
        refused.refused.as_deref().unwrap().contains("expired"),
        "{refused:?}"
    );
    assert!(sent
        .iter()
        .filter(|e| e.event_id != expired.event_id)
        .all(|e| e.refused.is_none()));
    assert_eq!(app.count("heartbeats").await, 2);
}

on_both_backends!(what_can_succeed_later_is_kept_and_what_is_refused_is_shown_with_its_reason);
