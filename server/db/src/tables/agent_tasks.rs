use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{AgentTaskId, ProjectId, RunId, UserId};

/// An async agent's task: work on a project in the background, in a worktree at a pinned base,
/// handed back as a change set. Its steps are in `agent_journal`; the run in `run_id` carries it
/// (lease, recovery on another instance).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AgentTaskId,
    pub project_id: ProjectId,
    pub owner_user_id: UserId,
    /// The run working on it now (or last), if any.
    pub run_id: Option<RunId>,
    pub title: String,
    pub instructions: String,
    pub state: TaskState,
    /// Why it paused (the agent's `PauseReason` as JSON), while paused.
    pub pause_reason: Option<String>,
    /// The agent's summary once it finished.
    pub summary: Option<String>,
    /// The base it started from: the project's files and their revisions (JSON).
    pub base: String,
    pub step_limit: Option<i64>,
    pub token_limit: Option<i64>,
    pub cost_limit_micros: Option<i64>,
    pub wall_time_limit_seconds: Option<i64>,
    /// Model steps reserved so far.
    pub steps_used: i64,
    /// The highest step reserved (a step reserved again counts once).
    pub last_step: i64,
    pub tokens_used: i64,
    pub cost_used_micros: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

/// Where a task stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    #[sea_orm(string_value = "running")]
    Running,
    /// Needs input: a budget ran out, it is stuck, or someone paused it.
    #[sea_orm(string_value = "paused")]
    Paused,
    #[sea_orm(string_value = "finished")]
    Finished,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl TaskState {
    /// The state's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Paused => "paused",
            TaskState::Finished => "finished",
            TaskState::Cancelled => "cancelled",
            TaskState::Failed => "failed",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::projects::Entity",
        from = "Column::ProjectId",
        to = "super::projects::Column::Id",
        on_delete = "Cascade"
    )]
    Project,
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::OwnerUserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::projects::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
