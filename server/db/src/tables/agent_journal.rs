use sea_orm::entity::prelude::*;

use crate::ids::AgentTaskId;

/// One entry of a task's journal, numbered in order; `(task_id, key)` is unique, so an entry
/// written again under the same key is not written twice.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_journal")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: AgentTaskId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub key: String,
    /// The agent's `Entry` as JSON.
    pub entry: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::agent_tasks::Entity",
        from = "Column::TaskId",
        to = "super::agent_tasks::Column::Id",
        on_delete = "Cascade"
    )]
    Task,
}

impl Related<super::agent_tasks::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Task.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
