use sea_orm::entity::prelude::*;

use crate::ids::AgentTaskId;

/// What one model call of a task used, recorded once per key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: AgentTaskId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub tokens: i64,
    pub cost_micros: i64,
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
