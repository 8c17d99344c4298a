//! `POST /users/register` and `GET /users/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{AuthUser, generate_key};
use super::error::ApiError;
use super::json::ValidJson;
use crate::store::{StoreError, User};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct Registered {
    pub user: User,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

fn check(register: &Register) -> Result<(), ApiError> {
    let email = register.email.trim();
    let at = email.find('@');
    if email.len() > 254 || at.is_none_or(|i| i == 0 || i == email.len() - 1) || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid("email", "must be an email address"));
    }
    if register.name.trim().is_empty() || register.name.len() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    Ok(())
}

/// Creates a user on the free tier with a first key, or an admin (from the command line).
pub async fn create(state: &AppState, register: &Register, role: &str) -> Result<Registered, ApiError> {
    check(register)?;
    let key = generate_key();
    let user = state
        .store
        .create_user(register.email.trim(), register.name.trim(), role, &key.prefix, &key.hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("a user with this email exists".into()),
            other => other.into(),
        })?;
    Ok(Registered { user, api_key: key.key })
}

pub async fn register(State(state): State<AppState>, ValidJson(body): ValidJson<Register>) -> Result<(StatusCode, Json<Registered>), ApiError> {
    Ok((StatusCode::CREATED, Json(create(&state, &body, "user").await?)))
}

pub async fn me(AuthUser(user): AuthUser) -> Json<User> {
    Json(user)
}
