//! Tokens and enrolment codes: generation, hashing and the in-memory cache
//! that keeps token checks off the database's hot path.
//!
//! Tokens are 256 random bits; only their SHA-256 is stored. A slow password
//! hash would add nothing for secrets of that entropy and would cost on every
//! request. Codes are short for typing, single-use and expire.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use wfh_protocol::{EmployeeRef, ADMIN_TOKEN_PREFIX, DEVICE_TOKEN_PREFIX};

use crate::clock::Clock;
use crate::db::{DeviceIdentity, NewAdminToken, Store};
use crate::error::ApiError;

pub type TokenHash = [u8; 32];

/// The characters of an enrolment code: no 0/O, 1/I/L, to survive being read aloud.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_GROUPS: usize = 3;
const CODE_GROUP_LEN: usize = 4;

pub fn hash_secret(secret: &str) -> TokenHash {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn new_device_token() -> String {
    random_token(DEVICE_TOKEN_PREFIX)
}

pub fn new_admin_token() -> String {
    random_token(ADMIN_TOKEN_PREFIX)
}

/// A dashboard session id (the cookie's value) or CSRF token: 256 random bits.
pub fn new_session_secret() -> String {
    random_token("")
}

/// A code like `K7QP-M3XD-9HWT` (about 59 bits).
pub fn new_enrollment_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_GROUPS)
        .map(|_| {
            (0..CODE_GROUP_LEN)
                .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Codes are compared without case, spaces or dashes.
pub fn hash_enrollment_code(code: &str) -> TokenHash {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hash_secret(&normal)
}

/// `Authorization: Bearer <token>` → the token.
pub fn bearer(header: Option<&str>) -> Result<&str, ApiError> {
    let value = header.ok_or(ApiError::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::MissingToken);
    }
    Ok(token.trim())
}

/// An authenticated device: who is speaking, decided by the token alone.
#[derive(Debug, Clone)]
pub struct Device {
    pub device_id: i64,
    pub employee: EmployeeRef,
}

/// Resolves tokens to identities. Device answers are remembered for `ttl`
/// so that the ingest path does not touch the database; revocation and
/// disabling through this server clear them at once, changes made by another
/// process (the CLI) take effect within `ttl`. Admin tokens are checked
/// against the database on every request (one indexed read): admin requests
/// are few, and a revoked or expired admin token must stop working at once,
/// whichever process revoked it.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    devices: RwLock<HashMap<TokenHash, (DeviceIdentity, Instant)>>,
}

/// Longest lifetime an admin token can be given, in days.
pub const MAX_ADMIN_TOKEN_DAYS: u32 = 3650;
const MAX_LABEL_LEN: usize = 100;

/// Make an admin token and store its hash; the token itself is in the
/// answer and nowhere else.
pub async fn create_admin_token(
    store: &dyn Store,
    label: &str,
    expires_days: Option<u32>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<wfh_protocol::admin::CreatedAdminToken, ApiError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL_LEN || label.chars().any(char::is_control) {
        return Err(ApiError::field(
            "label",
            format!("1 to {MAX_LABEL_LEN} characters, no control characters"),
        ));
    }
    if expires_days.is_some_and(|d| d == 0 || d > MAX_ADMIN_TOKEN_DAYS) {
        return Err(ApiError::field(
            "expires_days",
            format!("from 1 to {MAX_ADMIN_TOKEN_DAYS} days"),
        ));
    }
    let token = new_admin_token();
    let new = NewAdminToken {
        token_hash: hash_secret(&token),
        label: label.to_owned(),
        created_at: now,
        expires_at: expires_days.map(|d| now + chrono::Duration::days(i64::from(d))),
    };
    let id = store.add_admin_token(&new).await?;
    Ok(wfh_protocol::admin::CreatedAdminToken {
        token,
        info: wfh_protocol::admin::AdminToken {
            id,
            label: new.label,
            created_at: new.created_at,
            expires_at: new.expires_at,
            last_used_at: None,
            revoked_at: None,
        },
    })
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            store,
            clock,
            ttl,
            devices: RwLock::default(),
        }
    }

    pub async fn device(&self, token: &str) -> Result<Device, ApiError> {
        if !token.starts_with(DEVICE_TOKEN_PREFIX) {
            return Err(ApiError::InvalidToken);
        }
        let hash = hash_secret(token);
        let cached = self
            .devices
            .read()
            .expect("auth cache")
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(id, _)| id.clone());
        let identity = match cached {
            Some(id) => id,
            None => {
                let id = self
                    .store
                    .device_by_token(&hash)
                    .await?
                    .ok_or(ApiError::InvalidToken)?;
                self.devices
                    .write()
                    .expect("auth cache")
                    .insert(hash, (id.clone(), Instant::now()));
                id
            }
        };
        if identity.revoked {
            return Err(ApiError::DeviceRevoked);
        }
        if !identity.employee_active {
            return Err(ApiError::EmployeeDisabled);
        }
        Ok(Device {
            device_id: identity.device_id,
            employee: identity.employee,
        })
    }

    /// Admin endpoints: a valid device token is told it is the wrong kind (403).
    pub async fn admin(&self, token: &str) -> Result<(), ApiError> {
        if token.starts_with(DEVICE_TOKEN_PREFIX) {
            self.device(token).await?;
            return Err(ApiError::AdminOnly);
        }
        if !token.starts_with(ADMIN_TOKEN_PREFIX) {
            return Err(ApiError::InvalidToken);
        }
        if !self
            .store
            .admin_token_valid(&hash_secret(token), self.clock.now())
            .await?
        {
            return Err(ApiError::InvalidToken);
        }
        Ok(())
    }

    /// Forget every cached device answer (after a revoke or a disable).
    pub fn forget_devices(&self) {
        self.devices.write().expect("auth cache").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_kind_and_256_bits() {
        let d = new_device_token();
        let a = new_admin_token();
        assert!(d.starts_with(DEVICE_TOKEN_PREFIX) && a.starts_with(ADMIN_TOKEN_PREFIX));
        assert_eq!(d.len(), DEVICE_TOKEN_PREFIX.len() + 43);
        assert_ne!(new_device_token(), d);
    }

    #[test]
    fn enrollment_codes_compare_without_case_or_dashes() {
        let code = new_enrollment_code();
        assert_eq!(code.len(), 14);
        assert!(code
            .chars()
            .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8))));
        let sloppy = code.replace('-', " ").to_lowercase();
        assert_eq!(hash_enrollment_code(&code), hash_enrollment_code(&sloppy));
        assert_ne!(
            hash_enrollment_code(&code),
            hash_enrollment_code("AAAA-AAAA-AAAA")
        );
    }

    #[test]
    fn bearer_header_is_parsed_strictly() {
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer  abc ")).unwrap(), "abc");
        assert!(bearer(Some("Basic abc")).is_err());
        assert!(bearer(Some("Bearer ")).is_err());
        assert!(bearer(None).is_err());
    }
}
