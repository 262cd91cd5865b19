//! What administrators do: list accounts, change role and tier, disable and re-enable, read the
//! audit log. Every function checks the caller's role first.

use chrono::Utc;
use db::NewAuditEntry;
use db::ids::UserId;
use db::tables::audit_log;
use db::tables::users::{self, Role, Tier};
use serde_json::json;

use crate::{AuthenticatedUser, Error, RequestMeta, Services};

pub struct AccessChange {
    pub role: Role,
    pub tier: Tier,
    pub disabled: bool,
}

/// Refuses anyone but an administrator.
pub fn require_admin(caller: &AuthenticatedUser) -> Result<(), Error> {
    if caller.role == Role::Admin {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

impl Services {
    pub async fn admin_list_users(
        &self,
        caller: &AuthenticatedUser,
    ) -> Result<Vec<users::Model>, Error> {
        require_admin(caller)?;
        Ok(self.database.list_users().await?)
    }

    /// Changes a user's role, tier and disabled state. Disabling ends every session of the user.
    /// An administrator cannot demote or disable themselves (the instance keeps an admin).
    pub async fn admin_change_access(
        &self,
        caller: &AuthenticatedUser,
        target: UserId,
        change: AccessChange,
        meta: &RequestMeta,
    ) -> Result<users::Model, Error> {
        require_admin(caller)?;
        if target == caller.id && (change.role != Role::Admin || change.disabled) {
            return Err(Error::Invalid(
                "You cannot remove your own admin role or disable yourself.".into(),
            ));
        }
        let before = self
            .database
            .find_user(target)
            .await?
            .ok_or(Error::NotFound)?;
        let now = Utc::now();
        let disabled_at = if change.disabled {
            before.disabled_at.or(Some(now))
        } else {
            None
        };
        let updated = self
            .database
            .update_user_access(target, change.role, change.tier, disabled_at, now)
            .await?
            .ok_or(Error::NotFound)?;
        if change.disabled {
            self.database.delete_sessions_of_user(target).await?;
        }
        // Tokens act with their user's current access.
        self.token_cache.clear();
        self.audit(
            NewAuditEntry {
                actor_id: Some(caller.id),
                action: "admin.user_access_changed",
                target_type: Some("user"),
                target_id: Some(target.to_string()),
                detail: Some(json!({
                    "before": { "role": before.role, "tier": before.tier, "disabled": before.disabled_at.is_some() },
                    "after": { "role": updated.role, "tier": updated.tier, "disabled": updated.disabled_at.is_some() },
                })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        Ok(updated)
    }

    pub async fn admin_audit_log(
        &self,
        caller: &AuthenticatedUser,
        limit: u64,
    ) -> Result<Vec<audit_log::Model>, Error> {
        require_admin(caller)?;
        Ok(self.database.recent_audit_entries(limit.min(1000)).await?)
    }
}
