//! HTTPS served by the server itself (rustls), with a test CA made here.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use wfh_agent::client::{ApiClient, Disposition};
use wfh_protocol::HeartbeatStatus;

use crate::helpers::{Backend, TestApp};

/// (CA PEM, server certificate PEM, server key PEM) for 127.0.0.1 and localhost.
pub fn test_pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "WFH Monitor test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_talks_to_the_server_over_https_with_a_company_ca() {
    let (ca, cert, key) = test_pki();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.tls_cert = Some(dir.path().join("cert.pem"));
        c.tls_key = Some(dir.path().join("key.pem"));
    })
    .await;
    assert!(app.base_url.starts_with("https://"));
    let (_, code) = app.add_employee_over_tls(&ca).await;

    let client = ApiClient::new(&app.base_url, Some(ca.as_bytes())).unwrap();
    let enrolled = client.enroll(&code, "quinn", "quinn-laptop").await.unwrap();
    let token = wfh_agent::client::DeviceToken::new(enrolled.token);
    client
        .heartbeat(&token, &app.heartbeat("quinn", HeartbeatStatus::Online))
        .await
        .unwrap();
    let me = client.whoami(&token).await.unwrap();
    assert_eq!(me.employee.username, "quinn");

    // Without the company CA the certificate is not trusted: a transport error, retried later.
    let untrusting = ApiClient::new(&app.base_url, None).unwrap();
    let e = untrusting.whoami(&token).await.unwrap_err();
    assert_eq!(e.disposition(), Disposition::Retry, "{e}");
    // Plain HTTP to the TLS port does not get through either.
    let plain = reqwest::get(format!("http://{}/healthz", app.addr)).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
}

#[tokio::test]
async fn bad_tls_files_stop_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let config = wfh_server::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        tls_cert: Some(dir.path().join("cert.pem")),
        tls_key: Some(dir.path().join("key.pem")),
        ..Default::default()
    };
    let e = wfh_server::Application::build(config)
        .await
        .err()
        .expect("start-up fails");
    assert!(e.to_string().contains("cert.pem"), "{e}");
}

impl TestApp {
    async fn add_employee_over_tls(&self, ca: &str) -> (i64, String) {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .build()
            .unwrap();
        let res = http
            .post(self.url("/api/admin/employees"))
            .bearer_auth(&self.admin_token)
            .json(&serde_json::json!({"username": "quinn"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: serde_json::Value = res.json().await.unwrap();
        (
            body["employee"]["id"].as_i64().unwrap(),
            body["enrollment"]["code"].as_str().unwrap().to_owned(),
        )
    }
}

/// A client that trusts only `ca`, with no connection kept between requests.
fn trusting(ca: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_and_hsts_is_sent() {
    let (old_ca, cert, key) = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.tls_cert = Some(cert_file.clone());
        c.tls_key = Some(key_file.clone());
    })
    .await;
    let healthz = format!("{}/healthz", app.base_url);
    let res = trusting(&old_ca).get(&healthz).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");

    // A half-written renewal keeps the certificate in use.
    std::fs::write(&cert_file, "-----BEGIN CERTIFICATE-----\nMIIB").unwrap();
    tokio::time::sleep(wfh_server::tls::RELOAD_CHECK * 2).await;
    assert!(trusting(&old_ca).get(&healthz).send().await.is_ok());

    // The whole renewal (from another CA, to tell them apart) is served.
    let (new_ca, cert, key) = test_pki();
    std::fs::write(&key_file, &key).unwrap();
    std::fs::write(&cert_file, &cert).unwrap();
    let deadline = std::time::Instant::now() + wfh_server::tls::RELOAD_CHECK * 4;
    loop {
        if trusting(&new_ca).get(&healthz).send().await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate is not served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(trusting(&old_ca).get(&healthz).send().await.is_err());
}
