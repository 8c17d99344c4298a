//! API keys: shown once, stored as SHA-256 with a short prefix to find the row; compared in
//! constant time; lookups cached briefly so a request costs no query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::store::User;

const KEY_PREFIX: &str = "mfk_";
/// Characters of the key kept in clear to find its row: the marker plus 8 hex digits.
const LOOKUP_LEN: usize = 12;
const CACHE_TTL: Duration = Duration::from_secs(30);

pub struct NewKey {
    pub key: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

/// 244 random bits from two v4 UUIDs, hex-encoded after a recognisable marker.
pub fn generate_key() -> NewKey {
    let key = format!("{KEY_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    NewKey { prefix: key[..LOOKUP_LEN].to_owned(), hash: hash(&key), key }
}

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Recently verified keys, by hash.
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<Mutex<HashMap<Vec<u8>, (User, Instant)>>>,
}

impl KeyCache {
    fn get(&self, hash: &[u8]) -> Option<User> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(hash).filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(u, _)| u.clone())
    }

    fn put(&self, hash: Vec<u8>, user: User) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(hash, (user, Instant::now()));
    }
}

/// The authenticated user of a request (`Authorization: Bearer <key>` or `X-API-Key`).
pub struct AuthUser(pub User);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let key = header("x-api-key")
            .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
            .map(str::trim)
            .filter(|k| k.len() > LOOKUP_LEN && k.starts_with(KEY_PREFIX))
            .ok_or(ApiError::Unauthorized)?;
        let presented = hash(key);
        if let Some(user) = state.keys.get(&presented) {
            return Ok(AuthUser(user));
        }
        let candidates = state.store.users_by_key_prefix(&key[..LOOKUP_LEN]).await?;
        let user = candidates
            .into_iter()
            .find(|(_, stored)| constant_time_eq(stored, &presented))
            .map(|(user, _)| user)
            .ok_or(ApiError::Unauthorized)?;
        state.keys.put(presented, user.clone());
        Ok(AuthUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_only_their_hash_and_prefix_are_kept() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a.key, b.key);
        assert!(a.key.starts_with("mfk_") && a.key.len() == 68);
        assert_eq!(a.prefix, a.key[..12]);
        assert_eq!(a.hash, hash(&a.key));
        assert!(constant_time_eq(&a.hash, &hash(&a.key)));
        assert!(!constant_time_eq(&a.hash, &b.hash));
    }
}
