use sea_orm::entity::prelude::*;

use crate::ids::{FileId, ProjectId};

/// The current content of one file of a project. `(project_id, path)` is unique; `version` grows
/// by one on every save, and a save that names an older version is refused (optimistic concurrency).
/// A binary file keeps its bytes in `binary_content` and an empty `content`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: FileId,
    pub project_id: ProjectId,
    pub path: String,
    pub content: String,
    pub language: Option<String>,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub size_bytes: i64,
    pub binary_content: Option<Vec<u8>>,
    /// `binary_content` is set; kept beside it so that the tree is listed from an index.
    pub is_binary: bool,
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
    #[sea_orm(has_many = "super::file_revisions::Entity")]
    Revisions,
}

impl Related<super::projects::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl Related<super::file_revisions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Revisions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
