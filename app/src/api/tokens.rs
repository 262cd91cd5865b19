//! The caller's personal access tokens for the HTTP API (`Authorization: Bearer acp_…`).

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{AccessToken, CreatedAccessToken};

#[cfg(feature = "ssr")]
fn to_wire(summary: services::access_tokens::AccessTokenSummary) -> AccessToken {
    AccessToken {
        id: summary.id.to_string(),
        name: summary.name,
        created_at: summary.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        expires_at: summary.expires_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        last_used_at: summary
            .last_used_at
            .map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        revoked: summary.revoked,
        scopes: summary
            .scopes
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// `POST /api/tokens/list`: the caller's tokens (never the secrets).
#[server(prefix = "/api", endpoint = "tokens/list")]
pub async fn list_access_tokens() -> Result<Vec<AccessToken>, AppError> {
    let user = super::request::require_user().await?;
    let tokens = super::request::services()?
        .list_access_tokens(&user)
        .await
        .map_err(super::reject_service_error)?;
    Ok(tokens.into_iter().map(to_wire).collect())
}

/// `POST /api/tokens/create`: a new token living `days` days, allowed what `scopes` names (`ai`,
/// `read`, `write`, space-separated); its secret is returned this once.
#[server(prefix = "/api", endpoint = "tokens/create")]
pub async fn create_access_token(
    name: String,
    days: String,
    scopes: String,
) -> Result<CreatedAccessToken, AppError> {
    use services::ExposeSecret;
    let user = super::request::require_user().await?;
    let days: i64 = days.trim().parse().map_err(|_| {
        super::reject(AppError::BadRequest(
            "Enter the lifetime as a number of days.".into(),
        ))
    })?;
    let scopes = services::access_tokens::TokenScopes::parse(&scopes)
        .map_err(super::reject_service_error)?;
    let (summary, secret) = super::request::services()?
        .create_access_token(&user, &name, days, scopes, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    Ok(CreatedAccessToken {
        token: to_wire(summary),
        secret: secret.expose_secret().to_owned(),
    })
}

/// `POST /api/tokens/revoke`: revokes one of the caller's tokens.
#[server(prefix = "/api", endpoint = "tokens/revoke")]
pub async fn revoke_access_token(id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = id.parse().map_err(|_| super::reject(AppError::NotFound))?;
    super::request::services()?
        .revoke_access_token(&user, id, &super::request::meta())
        .await
        .map_err(super::reject_service_error)
}
