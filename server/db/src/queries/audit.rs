use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::ids::{AuditLogId, UserId};
use crate::tables::audit_log;
use crate::{Database, Error};

/// One event for the audit log. Never put a secret (password, key, token) in `detail`.
#[derive(Clone, Debug, Default)]
pub struct NewAuditEntry {
    pub actor_id: Option<UserId>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl Database {
    pub async fn record_audit(
        &self,
        entry: NewAuditEntry,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let model = audit_log::ActiveModel {
            id: Set(AuditLogId::new()),
            actor_id: Set(entry.actor_id),
            action: Set(entry.action.to_owned()),
            target_type: Set(entry.target_type.map(str::to_owned)),
            target_id: Set(entry.target_id),
            ip_address: Set(entry.ip_address),
            user_agent: Set(entry.user_agent),
            detail: Set(entry.detail),
            created_at: Set(now),
        };
        model.insert(self.connection()).await?;
        Ok(())
    }

    /// The newest `limit` audit entries.
    pub async fn recent_audit_entries(&self, limit: u64) -> Result<Vec<audit_log::Model>, Error> {
        Ok(audit_log::Entity::find()
            .order_by_desc(audit_log::Column::CreatedAt)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// The audit entries whose actor is `actor_id`, newest first.
    pub async fn audit_entries_of(&self, actor_id: UserId) -> Result<Vec<audit_log::Model>, Error> {
        Ok(audit_log::Entity::find()
            .filter(audit_log::Column::ActorId.eq(actor_id))
            .order_by_desc(audit_log::Column::CreatedAt)
            .all(self.connection())
            .await?)
    }
}
