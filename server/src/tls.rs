//! HTTPS served by the server itself: the certificate is read again when its
//! files change (a renewal by certbot or the company's PKI, checked every
//! [`RELOAD_CHECK`]) or at once on `SIGHUP`, without a restart. A renewal
//! that does not load (a half-written file, a key that does not match)
//! keeps the certificate in use and is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often the certificate's files are looked at for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// The certificate in use, and the files it came from.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

/// When the two files were last changed, to tell a renewal.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let fail = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        TlsError(format!("{what} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail("certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(fail("certificate", cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail("key", key, &e))?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key_der).map_err(|e| fail("key", key, &e))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|e| fail("key", key, &format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

impl Certificate {
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let stamped = stamp(cert, key);
        Ok(Arc::new(Self {
            current: RwLock::new((load(cert, key)?, stamped)),
            cert: cert.to_owned(),
            key: key.to_owned(),
        }))
    }

    /// Read the files again if they changed since the last load; whether
    /// a new certificate is now in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.cert, &self.key);
        if self.current.read().expect("certificate lock").1 == now {
            return false;
        }
        match load(&self.cert, &self.key) {
            Ok(certified) => {
                *self.current.write().expect("certificate lock") = (certified, now);
                tracing::info!(certificate = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the changed TLS certificate does not load; keeping the one in use");
                false
            }
        }
    }

    /// The acceptor for this certificate: HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3.
    pub fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// Look for a renewal every [`RELOAD_CHECK`] and on `SIGHUP`, until
    /// the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        #[cfg(unix)]
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            {
                let signalled = async {
                    match hangup.as_mut() {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = signalled => tracing::info!("SIGHUP: looking at the TLS certificate"),
                }
            }
            #[cfg(not(unix))]
            tick.tick().await;
            self.reload_if_changed();
        }
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").0.clone())
    }
}
