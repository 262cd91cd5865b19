//! Personal access tokens for the HTTP API: created with a name and a lifetime, shown once,
//! stored as a hash, revocable, limited to its scopes. A token acts with at most its user's
//! rights and suspension state; it never manages tokens, and a password change revokes them all.

use chrono::{DateTime, Duration, Utc};
use db::NewAuditEntry;
use db::ids::AccessTokenId;
use db::tables::access_tokens;
use secrecy::SecretString;
use serde_json::json;

use crate::{AuthenticatedUser, Error, RequestMeta, Services, tokens};

/// Every token starts so, which lets the server (and secret scanners) recognise one.
pub const PREFIX: &str = "acp_";
pub const MAXIMUM_DAYS: i64 = 366;

/// What a personal access token may do. Managing the account, its tokens, provider keys and
/// administration needs a browser session whatever the scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenScopes {
    /// Call AI models (`/v1/…`, sending chat messages).
    pub ai: bool,
    /// Read projects, files and conversations.
    pub read: bool,
    /// Change projects, files and conversations.
    pub write: bool,
}

impl TokenScopes {
    pub const ALL: TokenScopes = TokenScopes {
        ai: true,
        read: true,
        write: true,
    };

    /// Space- or comma-separated names (`ai read write`); an unknown name is refused.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut scopes = TokenScopes::default();
        for name in text
            .split([' ', ','])
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            match name {
                "ai" => scopes.ai = true,
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                other => {
                    return Err(Error::Invalid(format!(
                        "Unknown token scope \"{other}\": use ai, read and write."
                    )));
                }
            }
        }
        Ok(scopes)
    }

    pub fn is_empty(self) -> bool {
        !(self.ai || self.read || self.write)
    }

    /// Whether every scope in `needed` is granted.
    pub fn allow(self, needed: TokenScopes) -> bool {
        (!needed.ai || self.ai) && (!needed.read || self.read) && (!needed.write || self.write)
    }

    pub fn names(self) -> Vec<&'static str> {
        [(self.ai, "ai"), (self.read, "read"), (self.write, "write")]
            .into_iter()
            .filter_map(|(granted, name)| granted.then_some(name))
            .collect()
    }
}

impl std::fmt::Display for TokenScopes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.names().join(" "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenSummary {
    pub id: AccessTokenId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub scopes: TokenScopes,
}

impl From<access_tokens::Model> for AccessTokenSummary {
    fn from(model: access_tokens::Model) -> Self {
        Self {
            id: model.id,
            name: model.name,
            created_at: model.created_at,
            expires_at: model.expires_at,
            last_used_at: model.last_used_at,
            revoked: model.revoked_at.is_some(),
            // A stored value is always written by `TokenScopes`'s Display; anything else
            // grants nothing.
            scopes: TokenScopes::parse(&model.scopes).unwrap_or_default(),
        }
    }
}

/// Tokens are managed from a browser session only: a token that could mint tokens would outlive
/// its own revocation.
fn require_session(user: &AuthenticatedUser) -> Result<(), Error> {
    if user.token_scopes.is_some() {
        return Err(Error::Forbidden);
    }
    Ok(())
}

impl Services {
    /// Creates a token; the returned secret is the only time it is seen.
    pub async fn create_access_token(
        &self,
        user: &AuthenticatedUser,
        name: &str,
        days: i64,
        scopes: TokenScopes,
        meta: &RequestMeta,
    ) -> Result<(AccessTokenSummary, SecretString), Error> {
        require_session(user)?;
        if scopes.is_empty() {
            return Err(Error::Invalid(
                "Choose what the token may do (AI, read, write).".into(),
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(Error::Invalid(
                "Name the token (at most 60 characters).".into(),
            ));
        }
        if !(1..=MAXIMUM_DAYS).contains(&days) {
            return Err(Error::Invalid(format!(
                "A token lives from 1 to {MAXIMUM_DAYS} days."
            )));
        }
        let secret = format!("{PREFIX}{}", tokens::generate()?);
        let now = Utc::now();
        let created = self
            .database
            .create_access_token(
                user.id,
                name.to_owned(),
                scopes.to_string(),
                tokens::hash(&secret),
                now,
                now + Duration::days(days),
            )
            .await?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "access_token.created",
                target_type: Some("access_token"),
                target_id: Some(created.id.to_string()),
                detail: Some(
                    json!({ "name": created.name, "days": days, "scopes": scopes.names() }),
                ),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        Ok((created.into(), SecretString::from(secret)))
    }

    pub async fn list_access_tokens(
        &self,
        user: &AuthenticatedUser,
    ) -> Result<Vec<AccessTokenSummary>, Error> {
        require_session(user)?;
        Ok(self
            .database
            .access_tokens_of(user.id)
            .await?
            .into_iter()
            .map(AccessTokenSummary::from)
            .collect())
    }

    pub async fn revoke_access_token(
        &self,
        user: &AuthenticatedUser,
        id: AccessTokenId,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        require_session(user)?;
        if !self
            .database
            .revoke_access_token(user.id, id, Utc::now())
            .await?
        {
            return Err(Error::NotFound);
        }
        self.token_cache.clear();
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "access_token.revoked",
                target_type: Some("access_token"),
                target_id: Some(id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    /// The user an `Authorization: Bearer` token acts for, if it is valid: not expired, not
    /// revoked, its user not disabled. A valid answer is reused for a few seconds (see
    /// [`TokenCache`]); revoking a token or changing a user's access empties the cache.
    pub async fn authenticate_bearer(
        &self,
        token: &str,
    ) -> Result<Option<AuthenticatedUser>, Error> {
        if !token.starts_with(PREFIX) {
            return Ok(None);
        }
        let hash = tokens::hash(token);
        if let Some(user) = self.token_cache.get(&hash) {
            return Ok(Some(user));
        }
        let Some((access_token, user)) = self.database.find_access_token(&hash).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if access_token.revoked_at.is_some()
            || access_token.expires_at <= now
            || user.disabled_at.is_some()
        {
            return Ok(None);
        }
        // "Last used" is shown to the minute: writing it once a minute spares a write per call.
        if access_token
            .last_used_at
            .is_none_or(|used| now - used >= Duration::minutes(1))
        {
            self.database
                .mark_access_token_used(access_token.id, now)
                .await?;
        }
        let user = AuthenticatedUser {
            id: user.id,
            session_id: None,
            email: user.email,
            name: user.name,
            role: user.role,
            tier: user.tier,
            token_scopes: Some(TokenScopes::parse(&access_token.scopes).unwrap_or_default()),
        };
        self.token_cache
            .insert(hash, user.clone(), access_token.expires_at);
        Ok(Some(user))
    }
}

/// Tokens recently found valid, so that an API call does not read the database to authenticate.
/// An entry lives [`TokenCache::TTL`] at most (then the token is looked up again, so a change
/// made by another server process applies within that time); this process empties the cache
/// whenever a token is revoked or a user's access changes.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedToken>>,
}

#[derive(Debug, Clone)]
struct CachedToken {
    user: AuthenticatedUser,
    expires_at: DateTime<Utc>,
    cached_at: std::time::Instant,
}

impl TokenCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(10);
    /// More entries than this and the cache starts over (bounded memory).
    const CAPACITY: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, CachedToken>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, hash: &str) -> Option<AuthenticatedUser> {
        let entries = self.lock();
        let entry = entries.get(hash)?;
        (entry.cached_at.elapsed() < Self::TTL && entry.expires_at > Utc::now())
            .then(|| entry.user.clone())
    }

    fn insert(&self, hash: String, user: AuthenticatedUser, expires_at: DateTime<Utc>) {
        let mut entries = self.lock();
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(
            hash,
            CachedToken {
                user,
                expires_at,
                cached_at: std::time::Instant::now(),
            },
        );
    }

    /// Forgets every token (after a revocation or an access change).
    pub fn clear(&self) {
        self.lock().clear();
    }
}
