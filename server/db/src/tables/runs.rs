use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{RunId, UserId};

/// Work that outlives the process that started it (a chat answer, later an agent's task), owned
/// by one server instance at a time through a lease. Every write by the lease's holder carries
/// its fencing token; a claim bumps the token, so a former holder's writes are refused.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: RunId,
    /// What kind of work this is (`chat_answer`, `agent_task`, …); recovery is chosen by kind.
    pub kind: String,
    /// The user the run works for, if any.
    pub owner_user_id: Option<UserId>,
    pub state: RunState,
    /// What the run is about (a message's id, …), as its kind understands it.
    pub subject: Option<String>,
    /// The instance holding the lease; `None` when nobody does (queued, released or ended).
    pub lease_owner: Option<String>,
    /// When the lease ends unless its holder renews it.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Bumped at every claim; a write must carry the current value.
    pub fencing_token: i64,
    /// The number of the newest event (0: none yet).
    pub last_seq: i64,
    /// When a stop was asked for on an instance that does not hold the run (the holder stops
    /// it when it sees this).
    pub stop_requested_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Where a run stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RunState {
    /// Waiting for an instance to claim it.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Held by an instance (or its lease expired and nobody recovered it yet).
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "finished")]
    Finished,
    /// Its owner went away before the end (the events written stay).
    #[sea_orm(string_value = "interrupted")]
    Interrupted,
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl RunState {
    /// Whether the run has ended: no more events will come.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Finished | RunState::Interrupted | RunState::Failed
        )
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::OwnerUserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    #[sea_orm(has_many = "super::run_events::Entity")]
    Events,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::run_events::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
