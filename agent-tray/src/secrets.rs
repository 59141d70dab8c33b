//! The device token, kept in the OS keyring: Windows Credential Manager,
//! macOS Keychain, the Secret Service on Linux (GNOME Keyring, KWallet).
//!
//! **Headless Linux fallback.** A Linux machine with no Secret Service (a
//! server, a container, a session without a desktop) has no persistent
//! keyring: the kernel keyring forgets at log-out and reboot. With
//! `token_store = "auto"` (the default) the agent then keeps the token in a
//! file readable only by the user (`0600`, in the data directory), says so
//! when it enrols and in `wfh-agent status`, and logs a warning at start.
//! This is what `ssh` does with private keys. `token_store = "keyring"`
//! refuses the fallback instead.
//!
//! The token never appears in a log line or an error message: errors from
//! the keyring are reduced to their kind before they are shown.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};

use crate::client::DeviceToken;
use crate::config::TokenStore;

const SERVICE: &str = "wfh-monitor";
const ACCOUNT: &str = "device-token";
const TOKEN_FILE: &str = "device-token";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the OS keyring is not available ({0}); set token_store = \"file\" to keep the token in a private file")]
    NoKeyring(String),
    #[error("the OS keyring refused the operation: {0}")]
    Keyring(String),
    #[error("the token file {path}: {error}")]
    File { path: PathBuf, error: std::io::Error },
}

/// Where the token lives.
pub struct Secrets {
    backend: Backend,
}

enum Backend {
    Keyring {
        store: Arc<CredentialStore>,
        name: &'static str,
    },
    File(PathBuf),
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Reduce a keyring error to words that cannot carry the secret.
fn kind_of(e: &keyring_core::Error) -> String {
    match e {
        keyring_core::Error::PlatformFailure(inner) => format!("platform failure: {inner}"),
        keyring_core::Error::NoStorageAccess(inner) => format!("no storage access: {inner}"),
        keyring_core::Error::NoEntry => "no entry".into(),
        keyring_core::Error::BadEncoding(_) | keyring_core::Error::BadDataFormat(..) => {
            "the stored token is not readable".into()
        }
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}

#[cfg(target_os = "linux")]
fn native_store() -> Result<(Arc<CredentialStore>, &'static str), String> {
    let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| kind_of(&e))?;
    Ok((store, "Secret Service"))
}

#[cfg(windows)]
fn native_store() -> Result<(Arc<CredentialStore>, &'static str), String> {
    let store = windows_native_keyring_store::Store::new().map_err(|e| kind_of(&e))?;
    Ok((store, "Windows Credential Manager"))
}

#[cfg(target_os = "macos")]
fn native_store() -> Result<(Arc<CredentialStore>, &'static str), String> {
    let store = apple_native_keyring_store::keychain::Store::new().map_err(|e| kind_of(&e))?;
    Ok((store, "macOS Keychain"))
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
fn native_store() -> Result<(Arc<CredentialStore>, &'static str), String> {
    Err("no keyring on this platform".into())
}

/// Does the store answer? (A locked or absent Secret Service fails at once.)
fn probe(store: &Arc<CredentialStore>) -> Result<(), String> {
    let entry = store.build(SERVICE, ACCOUNT, None).map_err(|e| kind_of(&e))?;
    match entry.get_password() {
        Ok(_) | Err(keyring_core::Error::NoEntry) => Ok(()),
        Err(e) => Err(kind_of(&e)),
    }
}

impl Secrets {
    /// Pick the backend `kind` asks for (blocking: talks to the keyring).
    pub fn open(kind: TokenStore, data_dir: &Path) -> Result<Self, SecretError> {
        let file = Backend::File(data_dir.join(TOKEN_FILE));
        let backend = match kind {
            TokenStore::File => file,
            TokenStore::Keyring => {
                let (store, name) = native_store().map_err(SecretError::NoKeyring)?;
                probe(&store).map_err(SecretError::NoKeyring)?;
                Backend::Keyring { store, name }
            }
            TokenStore::Auto => match native_store().and_then(|(s, n)| probe(&s).map(|()| (s, n))) {
                Ok((store, name)) => Backend::Keyring { store, name },
                Err(why) if cfg!(target_os = "linux") => {
                    tracing::warn!(reason = %why, "no Secret Service: the token is kept in a private file instead");
                    file
                }
                Err(why) => return Err(SecretError::NoKeyring(why)),
            },
        };
        Ok(Self { backend })
    }

    /// For people: where the token is.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Keyring { name, .. } => format!("{name} (service \"{SERVICE}\")"),
            Backend::File(path) => format!("private file {} (no OS keyring available)", path.display()),
        }
    }

    pub fn is_keyring(&self) -> bool {
        matches!(self.backend, Backend::Keyring { .. })
    }

    fn entry(store: &Arc<CredentialStore>) -> Result<Entry, SecretError> {
        store
            .build(SERVICE, ACCOUNT, None)
            .map_err(|e| SecretError::Keyring(kind_of(&e)))
    }

    pub fn load(&self) -> Result<Option<DeviceToken>, SecretError> {
        match &self.backend {
            Backend::Keyring { store, .. } => match Self::entry(store)?.get_password() {
                Ok(t) => Ok(Some(DeviceToken::new(t))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(SecretError::Keyring(kind_of(&e))),
            },
            Backend::File(path) => match std::fs::read_to_string(path) {
                Ok(t) => Ok(Some(DeviceToken::new(t.trim()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(SecretError::File {
                    path: path.clone(),
                    error,
                }),
            },
        }
    }

    pub fn save(&self, token: &DeviceToken) -> Result<(), SecretError> {
        match &self.backend {
            Backend::Keyring { store, .. } => Self::entry(store)?
                .set_password(token.expose())
                .map_err(|e| SecretError::Keyring(kind_of(&e))),
            Backend::File(path) => {
                write_private(path, token.expose().as_bytes()).map_err(|error| SecretError::File {
                    path: path.clone(),
                    error,
                })
            }
        }
    }

    pub fn delete(&self) -> Result<(), SecretError> {
        match &self.backend {
            Backend::Keyring { store, .. } => match Self::entry(store)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(SecretError::Keyring(kind_of(&e))),
            },
            Backend::File(path) => match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(SecretError::File {
                    path: path.clone(),
                    error,
                }),
            },
        }
    }
}

/// Write atomically, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_fallback_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::open(TokenStore::File, dir.path()).unwrap();
        assert_eq!(s.load().unwrap(), None);
        s.save(&DeviceToken::new("wfh_d_secret")).unwrap();
        assert_eq!(s.load().unwrap(), Some(DeviceToken::new("wfh_d_secret")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{s:?}").contains("secret"));
        s.delete().unwrap();
        assert_eq!(s.load().unwrap(), None);
    }
}
