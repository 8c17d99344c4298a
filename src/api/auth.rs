//! API keys: shown once, stored as SHA-256 with a short prefix to find the row; compared in
//! constant time; lookups cached briefly (and dropped on revoke or a tier change) so a request
//! costs no query. The middleware also applies the user's rate limit and counts usage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

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
    let key = format!("{KEY_PREFIX}{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    NewKey { prefix: key[..LOOKUP_LEN].to_owned(), hash: hash(&key), key }
}

fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Clone)]
struct Cached {
    user: User,
    key_id: Uuid,
    at: Instant,
}

/// Recently verified keys, by hash.
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<Mutex<HashMap<Vec<u8>, Cached>>>,
    /// Bumped by every revoke or user change: a lookup that started before one is not cached,
    /// or a revoked key could live on for the TTL.
    generation: Arc<AtomicU64>,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, hash: &[u8]) -> Option<Cached> {
        self.lock().get(hash).filter(|c| c.at.elapsed() < CACHE_TTL).cloned()
    }

    fn put(&self, hash: Vec<u8>, user: User, key_id: Uuid, generation: u64) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() > 10_000 {
            entries.retain(|_, c| c.at.elapsed() < CACHE_TTL);
        }
        entries.insert(hash, Cached { user, key_id, at: Instant::now() });
    }

    /// After a revoke: the key stops working on this instance now (others within the TTL).
    pub fn forget_key(&self, key_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, c| c.key_id != key_id);
    }

    /// After a tier, role or status change.
    pub fn forget_user(&self, user_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, c| c.user.user_id != user_id);
    }
}

/// The authenticated user of a request and the key it used.
#[derive(Clone)]
pub struct AuthUser(pub User, pub Uuid);

fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Browsers cannot set headers on a WebSocket: `?api_key=` is accepted there too.
    let from_query = || query?.split('&').find_map(|pair| pair.strip_prefix("api_key="));
    header("x-api-key")
        .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
        .or_else(from_query)
        .map(str::trim)
        .filter(|k| k.len() > LOOKUP_LEN && k.starts_with(KEY_PREFIX) && k.is_ascii())
}

async fn authenticate(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<AuthUser, ApiError> {
    let key = presented_key(headers, query).ok_or(ApiError::Unauthorized)?;
    let presented = hash(key);
    if let Some(cached) = state.keys.get(&presented) {
        return Ok(AuthUser(cached.user, cached.key_id));
    }
    let generation = state.keys.generation.load(Ordering::Acquire);
    let candidates = state.store.users_by_key_prefix(&key[..LOOKUP_LEN]).await?;
    let (user, _, key_id) = candidates.into_iter().find(|(_, stored, _)| constant_time_eq(stored, &presented)).ok_or(ApiError::Unauthorized)?;
    state.keys.put(presented, user.clone(), key_id, generation);
    Ok(AuthUser(user, key_id))
}

/// For the routes that need a key: authenticate, apply the tier's rate, count the request.
pub async fn require_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let auth = match authenticate(&state, request.headers(), request.uri().query()).await {
        Ok(auth) => auth,
        Err(err) => return err.into_response(),
    };
    let budget = state.limits.check(auth.0.user_id, &auth.0.tier);
    if !budget.allowed {
        let mut response = ApiError::RateLimited { retry_after: budget.reset }.into_response();
        budget.write_headers(response.headers_mut());
        return response;
    }
    state.usage.record_request(auth.0.user_id, auth.1);
    request.extensions_mut().insert(auth);
    let mut response = next.run(request).await;
    budget.write_headers(response.headers_mut());
    response
}

/// For routes without a key (registration): a budget per client address.
pub async fn limit_by_address(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let client = state.address_limits.client(peer.ip(), request.headers());
    let budget = state.address_limits.check(client);
    let mut response = if budget.allowed { next.run(request).await } else { ApiError::RateLimited { retry_after: budget.reset }.into_response() };
    budget.write_headers(response.headers_mut());
    response
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuthUser>().cloned().ok_or(ApiError::Unauthorized)
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

    #[test]
    fn a_key_is_taken_from_either_header_or_the_websocket_query() {
        let key = generate_key().key;
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers, Some(&format!("x=1&api_key={key}"))), Some(key.as_str()));
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        assert_eq!(presented_key(&headers, None), Some(key.as_str()));
        headers.insert("x-api-key", "not-a-key".parse().unwrap());
        assert_eq!(presented_key(&headers, None), None, "a malformed X-API-Key is not ignored in favour of another");
    }
}
