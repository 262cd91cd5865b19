//! Accounts and sessions: sign-up, sign-in, sign-out, and turning a session token back into a
//! signed-in user.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use db::ids::{SessionId, UserId};
use db::tables::users::{self, Role, Tier};
use db::{NewAuditEntry, NewUser};
use secrecy::SecretString;
use serde_json::json;

use crate::rate_limit::{FailurePolicy, WindowPolicy};
use crate::{Error, RequestMeta, Services, passwords, tokens};

/// A session token as handed to the browser (in a cookie). Never logged, never stored in clear.
pub struct SessionToken(pub SecretString);

/// The user a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub id: UserId,
    /// The browser session; `None` when the request came with a personal access token.
    pub session_id: Option<SessionId>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tier: Tier,
    /// `Some` when the request came with a personal access token: what it may do.
    pub token_scopes: Option<crate::access_tokens::TokenScopes>,
}

pub struct SignUp {
    pub email: String,
    pub name: String,
    pub password: SecretString,
}

const SIGN_IN_PER_ACCOUNT_AND_ADDRESS: FailurePolicy = FailurePolicy {
    free: 5,
    cap: StdDuration::from_secs(15 * 60),
};
const SIGN_IN_PER_ADDRESS: FailurePolicy = FailurePolicy {
    free: 30,
    cap: StdDuration::from_secs(15 * 60),
};
/// Sign-ups allowed per client address and hour, unless configured otherwise.
pub const DEFAULT_SIGN_UPS_PER_ADDRESS_PER_HOUR: u32 = 10;
/// A session is written back (last seen) at most this often.
const TOUCH_EVERY: Duration = Duration::minutes(1);

fn client_address(meta: &RequestMeta) -> String {
    meta.ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Lower-cased, trimmed, checked for the shape of an address.
pub fn normalise_email(email: &str) -> Result<String, Error> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(Error::Invalid(
            "Enter an email address such as ada@example.com.".into(),
        ))
    }
}

fn check_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    match name.chars().count() {
        0 => Err(Error::Invalid("Enter your name.".into())),
        1..=100 => Ok(name.to_owned()),
        _ => Err(Error::Invalid(
            "The name must have at most 100 characters.".into(),
        )),
    }
}

impl Services {
    pub(crate) async fn audit(
        &self,
        entry: NewAuditEntry,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let entry = NewAuditEntry {
            ip_address: meta.ip.map(|ip| ip.to_string()),
            user_agent: meta.user_agent.clone(),
            ..entry
        };
        self.database.record_audit(entry, Utc::now()).await?;
        Ok(())
    }

    async fn open_session(
        &self,
        user: &users::Model,
        meta: &RequestMeta,
    ) -> Result<(AuthenticatedUser, SessionToken), Error> {
        let token = tokens::generate()?;
        let now = Utc::now();
        let session = self
            .database
            .create_session(
                user.id,
                tokens::hash(&token),
                meta.ip.map(|ip| ip.to_string()),
                meta.user_agent.clone(),
                now,
                now + self.sessions.absolute_timeout,
            )
            .await?;
        Ok((
            AuthenticatedUser {
                id: user.id,
                session_id: Some(session.id),
                email: user.email.clone(),
                name: user.name.clone(),
                role: user.role,
                tier: user.tier,
                token_scopes: None,
            },
            SessionToken(SecretString::from(token)),
        ))
    }

    /// Creates an account and signs it in. The first account of the instance becomes its admin.
    pub async fn sign_up(
        &self,
        input: SignUp,
        meta: &RequestMeta,
    ) -> Result<(AuthenticatedUser, SessionToken), Error> {
        self.limiter
            .hit(
                &format!("sign-up|{}", client_address(meta)),
                WindowPolicy {
                    limit: self.sign_ups_per_address_per_hour,
                    window: StdDuration::from_secs(3600),
                },
            )
            .await?;
        let email = normalise_email(&input.email)?;
        let name = check_name(&input.name)?;
        passwords::check_policy(&input.password)?;
        let password_hash = passwords::hash(input.password).await?;
        let user = self
            .database
            .create_user(
                NewUser {
                    email,
                    name,
                    password_hash,
                },
                Utc::now(),
            )
            .await?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "user.sign_up",
                target_type: Some("user"),
                target_id: Some(user.id.to_string()),
                detail: Some(json!({ "role": user.role, "tier": user.tier })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        self.open_session(&user, meta).await
    }

    /// Signs in with email and password. A wrong email and a wrong password get the same answer,
    /// in the same time. Repeated failures are slowed down per account and client address, and
    /// per client address.
    pub async fn sign_in(
        &self,
        email: &str,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<(AuthenticatedUser, SessionToken), Error> {
        let email = email.trim().to_lowercase();
        let address = client_address(meta);
        let address_key = format!("sign-in|{address}");
        let account_key = format!("sign-in|{address}|{email}");
        // Each attempt is counted as a failure before the password is checked (and given back
        // if it succeeds): guesses sent at once are refused past the free ones, instead of all
        // being checked before the first failure is counted.
        self.limiter
            .reserve_attempt(&address_key, SIGN_IN_PER_ADDRESS)
            .await?;
        if let Err(refused) = self
            .limiter
            .reserve_attempt(&account_key, SIGN_IN_PER_ACCOUNT_AND_ADDRESS)
            .await
        {
            self.limiter
                .refund(&address_key, SIGN_IN_PER_ADDRESS)
                .await?;
            return Err(refused);
        }

        let user = self.database.find_user_by_email(&email).await?;
        let stored_hash = user
            .as_ref()
            .map(|user| user.password_hash.clone())
            .unwrap_or_else(|| passwords::DECOY_HASH.clone());
        let password_matches = passwords::verify(password, stored_hash).await?;

        // A disabled account gets the same answer as a wrong password: a different one would
        // tell whoever guessed that the password was right.
        let Some(user) = user.filter(|user| password_matches && user.disabled_at.is_none()) else {
            let known = self.database.find_user_by_email(&email).await?;
            let disabled = known
                .as_ref()
                .is_some_and(|user| user.disabled_at.is_some());
            self.audit(
                NewAuditEntry {
                    actor_id: known.as_ref().map(|user| user.id),
                    action: "user.sign_in_failed",
                    target_type: Some("user"),
                    target_id: known.map(|user| user.id.to_string()),
                    detail: Some(json!({ "email": email, "disabled": disabled })),
                    ..NewAuditEntry::default()
                },
                meta,
            )
            .await?;
            return Err(Error::SignInFailed);
        };
        self.limiter
            .refund(&address_key, SIGN_IN_PER_ADDRESS)
            .await?;
        self.limiter.clear(&account_key).await?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "user.sign_in",
                target_type: Some("user"),
                target_id: Some(user.id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        self.open_session(&user, meta).await
    }

    /// Ends one session.
    pub async fn sign_out(
        &self,
        user: &AuthenticatedUser,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let session_id = user.session_id.ok_or(Error::Unauthorized)?;
        self.database.delete_session(session_id).await?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "user.sign_out",
                target_type: Some("session"),
                target_id: Some(session_id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    /// The signed-in person's account as stored.
    pub async fn profile(&self, user: &AuthenticatedUser) -> Result<users::Model, Error> {
        self.database
            .find_user(user.id)
            .await?
            .ok_or(Error::Unauthorized)
    }

    /// Changes name and avatar URL (empty for none; otherwise an https:// address).
    pub async fn update_profile(
        &self,
        user: &AuthenticatedUser,
        name: &str,
        avatar_url: &str,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let name = check_name(name)?;
        let avatar_url = check_avatar_url(avatar_url)?;
        self.database
            .update_profile(user.id, name, avatar_url, Utc::now())
            .await?
            .ok_or(Error::Unauthorized)?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "user.profile_changed",
                target_type: Some("user"),
                target_id: Some(user.id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    async fn check_current_password(
        &self,
        user: &AuthenticatedUser,
        password: SecretString,
    ) -> Result<(), Error> {
        let stored = self
            .database
            .find_user(user.id)
            .await?
            .ok_or(Error::Unauthorized)?
            .password_hash;
        if passwords::verify(password, stored).await? {
            Ok(())
        } else {
            Err(Error::Invalid("The current password is wrong.".into()))
        }
    }

    /// Changes the password after checking the current one, ends every session of the user,
    /// revokes every personal access token and opens a fresh session for this browser.
    pub async fn change_password(
        &self,
        user: &AuthenticatedUser,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<SessionToken, Error> {
        if user.token_scopes.is_some() {
            return Err(Error::Forbidden);
        }
        self.check_current_password(user, current).await?;
        passwords::check_policy(&new)?;
        let hash = passwords::hash(new).await?;
        let now = Utc::now();
        self.database
            .update_password_hash(user.id, hash, now)
            .await?;
        self.database.delete_sessions_of_user(user.id).await?;
        // Tokens made under the old password end with it.
        self.database.revoke_access_tokens_of(user.id, now).await?;
        self.token_cache.clear();
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "user.password_changed",
                target_type: Some("user"),
                target_id: Some(user.id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        let account = self
            .database
            .find_user(user.id)
            .await?
            .ok_or(Error::Unauthorized)?;
        let (_, token) = self.open_session(&account, meta).await?;
        Ok(token)
    }

    /// Deletes the account and everything it owns, after checking the password.
    pub async fn delete_account(
        &self,
        user: &AuthenticatedUser,
        password: SecretString,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        if user.token_scopes.is_some() {
            return Err(Error::Forbidden);
        }
        self.check_current_password(user, password).await?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "user.deleted",
                target_type: Some("user"),
                target_id: Some(user.id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        self.database.delete_user(user.id).await?;
        self.token_cache.clear();
        Ok(())
    }

    /// The user a session token belongs to, if the session is still valid (not expired, not
    /// idle too long, account not disabled). Expired sessions are deleted.
    pub async fn authenticate(&self, token: &str) -> Result<Option<AuthenticatedUser>, Error> {
        let Some((session, user)) = self.database.find_session(&tokens::hash(token)).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let expired =
            session.expires_at <= now || session.last_seen_at + self.sessions.idle_timeout <= now;
        if expired || user.disabled_at.is_some() {
            self.database.delete_session(session.id).await?;
            return Ok(None);
        }
        let authenticated = AuthenticatedUser {
            id: user.id,
            session_id: Some(session.id),
            email: user.email,
            name: user.name,
            role: user.role,
            tier: user.tier,
            token_scopes: None,
        };
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.database.touch_session(session, now).await?;
        }
        Ok(Some(authenticated))
    }
}

fn check_avatar_url(url: &str) -> Result<Option<String>, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let valid = url.len() <= 500
        && url
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty())
        && !url
            .chars()
            .any(|character| character.is_whitespace() || character.is_control());
    if valid {
        Ok(Some(url.to_owned()))
    } else {
        Err(Error::Invalid(
            "The avatar must be an https:// address of at most 500 characters.".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@example",
            "ada@.com",
            "a da@example.com",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn avatar_urls_are_https_or_nothing() {
        assert_eq!(check_avatar_url(" ").unwrap(), None);
        assert_eq!(
            check_avatar_url("https://example.com/a.png")
                .unwrap()
                .as_deref(),
            Some("https://example.com/a.png")
        );
        for bad in [
            "http://example.com/a.png",
            "javascript:alert(1)",
            "https://",
            "https://a b",
        ] {
            assert!(check_avatar_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"n".repeat(101)).is_err());
    }
}
