//! API keys: shown once, stored as SHA-256 with a short prefix to find the row; compared in
//! constant time; lookups cached briefly (and dropped on revoke or a tier change) so a request
//! costs no query. Unknown keys cost no query either: a repeated one is remembered as unknown
//! (bounded, briefly), and a client address gets a budget of lookups for keys not cached, so a
//! flood of random keys cannot turn into a query per request. The middleware also applies the
//! user's rate limit and counts usage.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{IntCounterVec, Opts};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::config::ApiConfig;
use crate::store::User;
use crate::telemetry::{Metrics, register};

const KEY_PREFIX: &str = "mfk_";
/// Characters of the key kept in clear to find its row: the marker plus 8 hex digits.
const LOOKUP_LEN: usize = 12;
const CACHE_TTL: Duration = Duration::from_secs(30);
/// The one route where a key may come in the query string (browsers cannot set headers on a
/// WebSocket); anywhere else a key in a URL would end up in proxy and access logs.
const QUERY_KEY_ROUTE: &str = "/ws/systems/{system_id}/scores";

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

/// Recently verified keys, by hash, and recently refused ones.
#[derive(Clone)]
pub struct KeyCache {
    entries: Arc<Mutex<HashMap<Vec<u8>, Cached>>>,
    unknown: Arc<Mutex<UnknownKeys>>,
    /// Bumped by every revoke, user change or new key: a lookup that started before one is not
    /// cached (either way), or a revoked key could live on for the TTL, or a new one be refused.
    generation: Arc<AtomicU64>,
    checks: IntCounterVec,
}

/// Hashes of well-formed keys the database did not know, oldest first; bounded in size and age.
struct UnknownKeys {
    at: HashMap<Vec<u8>, Instant>,
    order: VecDeque<(Vec<u8>, Instant)>,
    max: usize,
    ttl: Duration,
}

impl UnknownKeys {
    fn contains(&self, hash: &[u8]) -> bool {
        self.at.get(hash).is_some_and(|at| at.elapsed() < self.ttl)
    }

    fn insert(&mut self, hash: Vec<u8>) {
        if self.max == 0 {
            return;
        }
        let now = Instant::now();
        self.at.insert(hash.clone(), now);
        self.order.push_back((hash, now));
        while self.order.len() > self.max || self.order.front().is_some_and(|(_, at)| at.elapsed() >= self.ttl) {
            let Some((old, at)) = self.order.pop_front() else { break };
            // A re-inserted hash has a newer entry further back; only its last one removes it.
            if self.at.get(&old) == Some(&at) {
                self.at.remove(&old);
            }
        }
    }

    fn remove(&mut self, hash: &[u8]) {
        self.at.remove(hash);
    }

    fn clear(&mut self) {
        self.at.clear();
        self.order.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.at.len()
    }
}

/// Where an API key check was answered: a bounded label set for the counter.
#[derive(Debug, Clone, Copy)]
enum KeyCheck {
    Cached,
    CachedUnknown,
    Found,
    Unknown,
    AddressLimited,
}

impl KeyCheck {
    fn as_str(self) -> &'static str {
        match self {
            KeyCheck::Cached => "cache",
            KeyCheck::CachedUnknown => "unknown_cache",
            KeyCheck::Found => "database_found",
            KeyCheck::Unknown => "database_unknown",
            KeyCheck::AddressLimited => "address_limited",
        }
    }
}

impl KeyCache {
    pub fn new(config: &ApiConfig, metrics: &Metrics) -> Self {
        let unknown = UnknownKeys {
            at: HashMap::new(),
            order: VecDeque::new(),
            max: config.unknown_keys_cached,
            ttl: config.unknown_keys_cache_seconds,
        };
        Self {
            entries: Arc::default(),
            unknown: Arc::new(Mutex::new(unknown)),
            generation: Arc::default(),
            checks: register(
                metrics.registry(),
                IntCounterVec::new(
                    Opts::new("manifold_api_key_checks_total", "API key checks by where they were answered (database_* are queries)"),
                    &["source"],
                ),
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_unknown(&self) -> std::sync::MutexGuard<'_, UnknownKeys> {
        self.unknown.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, check: KeyCheck) {
        self.checks.with_label_values(&[check.as_str()]).inc();
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

    fn known_unknown(&self, hash: &[u8]) -> bool {
        self.lock_unknown().contains(hash)
    }

    fn put_unknown(&self, hash: Vec<u8>, generation: u64) {
        let mut unknown = self.lock_unknown();
        if self.generation.load(Ordering::Acquire) == generation {
            unknown.insert(hash);
        }
    }

    /// After a key is created: it works at once, even if someone presented it before.
    pub fn created(&self, hash: &[u8]) {
        let mut unknown = self.lock_unknown();
        self.generation.fetch_add(1, Ordering::AcqRel);
        unknown.remove(hash);
    }

    /// After a revoke: the key stops working on this instance now (others within the TTL).
    pub fn forget_key(&self, key_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, c| c.key_id != key_id);
    }

    /// After a tier, role or status change (a re-enabled user's keys must work again, and
    /// which refused hashes were theirs is unknown: all are forgotten).
    pub fn forget_user(&self, user_id: Uuid) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, c| c.user.user_id != user_id);
        self.lock_unknown().clear();
    }
}

/// The authenticated user of a request and the key it used.
#[derive(Clone)]
pub struct AuthUser(pub User, pub Uuid);

/// The key of a request: a header, or `?api_key=` where `query` is given (the WebSocket route
/// only; elsewhere a key in the query is ignored, so the request is answered as without one).
fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let from_query = || query?.split('&').find_map(|pair| pair.strip_prefix("api_key="));
    header("x-api-key")
        .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ")))
        .or_else(from_query)
        .map(str::trim)
        .filter(|k| k.len() > LOOKUP_LEN && k.starts_with(KEY_PREFIX) && k.is_ascii())
}

async fn authenticate(state: &AppState, headers: &HeaderMap, query: Option<&str>, client: IpAddr) -> Result<AuthUser, ApiError> {
    let key = presented_key(headers, query).ok_or(ApiError::Unauthorized)?;
    let presented = hash(key);
    let keys = &state.keys;
    if let Some(cached) = keys.get(&presented) {
        keys.count(KeyCheck::Cached);
        return Ok(AuthUser(cached.user, cached.key_id));
    }
    if keys.known_unknown(&presented) {
        keys.count(KeyCheck::CachedUnknown);
        return Err(ApiError::Unauthorized);
    }
    // Random keys never repeat, so no cache stops them: each address pays for its lookups.
    let budget = state.key_lookups.check(client);
    if !budget.allowed {
        keys.count(KeyCheck::AddressLimited);
        return Err(ApiError::RateLimited { retry_after: budget.reset });
    }
    let generation = keys.generation.load(Ordering::Acquire);
    let candidates = state.store.users_by_key_prefix(&key[..LOOKUP_LEN]).await?;
    match candidates.into_iter().find(|(_, stored, _)| constant_time_eq(stored, &presented)) {
        Some((user, _, key_id)) => {
            keys.count(KeyCheck::Found);
            keys.put(presented, user.clone(), key_id, generation);
            Ok(AuthUser(user, key_id))
        }
        None => {
            keys.count(KeyCheck::Unknown);
            keys.put_unknown(presented, generation);
            Err(ApiError::Unauthorized)
        }
    }
}

/// The client's address as the address limits see it (the peer, or the entry a trusted proxy
/// added); a request served without connection info shares one budget.
fn client_of(state: &AppState, request: &Request) -> IpAddr {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    state.key_lookups.client(peer, request.headers())
}

/// For the routes that need a key: authenticate, apply the tier's rate, count the request.
pub async fn require_key(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let on_query_route = request.extensions().get::<MatchedPath>().is_some_and(|m| m.as_str() == QUERY_KEY_ROUTE);
    let query = if on_query_route { request.uri().query() } else { None };
    let client = client_of(&state, &request);
    let auth = match authenticate(&state, request.headers(), query, client).await {
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
    fn unknown_keys_are_remembered_within_their_size_and_age() {
        let mut unknown = UnknownKeys { at: HashMap::new(), order: VecDeque::new(), max: 3, ttl: Duration::from_secs(60) };
        for i in 0..5u8 {
            unknown.insert(vec![i]);
        }
        assert_eq!(unknown.len(), 3, "the oldest are dropped beyond the size");
        assert!(!unknown.contains(&[0]) && !unknown.contains(&[1]));
        assert!(unknown.contains(&[4]));
        unknown.insert(vec![2]);
        unknown.insert(vec![5]);
        assert!(unknown.contains(&[2]), "a re-inserted hash counts as new");
        unknown.remove(&[2]);
        assert!(!unknown.contains(&[2]));

        let mut expiring = UnknownKeys { at: HashMap::new(), order: VecDeque::new(), max: 10, ttl: Duration::ZERO };
        expiring.insert(vec![1]);
        assert!(!expiring.contains(&[1]), "nothing outlives its age");
        assert_eq!(expiring.len(), 0);
    }

    #[test]
    fn a_key_is_taken_from_either_header_or_the_websocket_query() {
        let key = generate_key().key;
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers, Some(&format!("x=1&api_key={key}"))), Some(key.as_str()));
        assert_eq!(presented_key(&headers, None), None, "no query given (not the WebSocket route): no key");
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        assert_eq!(presented_key(&headers, None), Some(key.as_str()));
        headers.insert("x-api-key", "not-a-key".parse().unwrap());
        assert_eq!(presented_key(&headers, None), None, "a malformed X-API-Key is not ignored in favour of another");
    }
}
