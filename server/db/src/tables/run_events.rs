use sea_orm::entity::prelude::*;

use crate::ids::RunId;

/// One numbered event of a run (1, 2, 3, … without gaps), written by the lease's holder. Readers
/// follow a run by asking for the rows after the last number they saw.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: RunId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// The event's kind, as its run's kind names them (`text`, `usage`, …).
    pub kind: String,
    /// The event itself, as JSON text.
    pub payload: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::runs::Entity",
        from = "Column::RunId",
        to = "super::runs::Column::Id",
        on_delete = "Cascade"
    )]
    Run,
}

impl Related<super::runs::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Run.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
