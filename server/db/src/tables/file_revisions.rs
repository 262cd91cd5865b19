use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{FileId, FileRevisionId, UserId};

/// One saved state of a file: every save and every agent edit adds a row; rows are never updated.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "file_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: FileRevisionId,
    pub file_id: FileId,
    pub version: i64,
    pub content: String,
    pub author_id: Option<UserId>,
    pub source: RevisionSource,
    pub created_at: DateTimeUtc,
    pub size_bytes: i64,
    pub binary_content: Option<Vec<u8>>,
    /// The file's path when this revision was saved.
    pub path: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RevisionSource {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "agent")]
    Agent,
    #[sea_orm(string_value = "import")]
    Import,
    #[sea_orm(string_value = "restore")]
    Restore,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::files::Entity",
        from = "Column::FileId",
        to = "super::files::Column::Id",
        on_delete = "Cascade"
    )]
    File,
}

impl Related<super::files::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::File.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
