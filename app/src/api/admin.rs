//! Administration: accounts and the audit log. Admins only (others get 403).

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{AdminUser, AuditEntry};

#[cfg(feature = "ssr")]
fn to_wire(user: db::tables::users::Model) -> AdminUser {
    use crate::types::{UserRole, UserTier};
    use db::tables::users::{Role, Tier};
    AdminUser {
        id: user.id.to_string(),
        email: user.email,
        name: user.name,
        role: match user.role {
            Role::Admin => UserRole::Admin,
            Role::User => UserRole::User,
        },
        tier: match user.tier {
            Tier::Free => UserTier::Free,
            Tier::Premium => UserTier::Premium,
            Tier::Enterprise => UserTier::Enterprise,
        },
        disabled: user.disabled_at.is_some(),
        created_at: user.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

/// `POST /api/admin/users`: every account.
#[server(prefix = "/api", endpoint = "admin/users")]
pub async fn admin_users() -> Result<Vec<AdminUser>, AppError> {
    let caller = super::request::require_user().await?;
    let users = super::request::services()?
        .admin_list_users(&caller)
        .await
        .map_err(super::reject_service_error)?;
    Ok(users.into_iter().map(to_wire).collect())
}

/// `POST /api/admin/update-user`: sets role (`user`, `admin`), tier (`free`, `premium`,
/// `enterprise`) and whether the account is disabled (which ends its sessions).
#[server(prefix = "/api", endpoint = "admin/update-user")]
pub async fn admin_update_user(
    id: String,
    role: String,
    tier: String,
    disabled: bool,
) -> Result<AdminUser, AppError> {
    use db::tables::users::{Role, Tier};
    let caller = super::request::require_user().await?;
    // Authorize before looking at anything the request holds.
    services::admin::require_admin(&caller).map_err(super::reject_service_error)?;
    let bad = |message: &str| super::reject(AppError::BadRequest(message.to_owned()));
    let role = match role.as_str() {
        "user" => Role::User,
        "admin" => Role::Admin,
        _ => return Err(bad("The role must be user or admin.")),
    };
    let tier = match tier.as_str() {
        "free" => Tier::Free,
        "premium" => Tier::Premium,
        "enterprise" => Tier::Enterprise,
        _ => return Err(bad("The tier must be free, premium or enterprise.")),
    };
    let target = id.parse().map_err(|_| super::reject(AppError::NotFound))?;
    let updated = super::request::services()?
        .admin_change_access(
            &caller,
            target,
            services::admin::AccessChange {
                role,
                tier,
                disabled,
            },
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)?;
    Ok(to_wire(updated))
}

/// `POST /api/admin/audit`: the newest 200 audit log rows.
#[server(prefix = "/api", endpoint = "admin/audit")]
pub async fn admin_audit() -> Result<Vec<AuditEntry>, AppError> {
    let caller = super::request::require_user().await?;
    let rows = super::request::services()?
        .admin_audit_log(&caller, 200)
        .await
        .map_err(super::reject_service_error)?;
    Ok(rows
        .into_iter()
        .map(|row| AuditEntry {
            created_at: row.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            actor_id: row.actor_id.map(|id| id.to_string()),
            action: row.action,
            target: row
                .target_id
                .map(|id| format!("{} {id}", row.target_type.unwrap_or_default())),
            ip_address: row.ip_address,
            user_agent: row.user_agent,
        })
        .collect())
}
