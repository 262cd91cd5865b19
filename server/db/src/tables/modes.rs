use sea_orm::entity::prelude::*;

use crate::ids::{ModeId, UserId};

/// A mode a user defined (the built-in ones live in the services crate as data).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "modes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ModeId,
    pub user_id: UserId,
    /// The mode's key (lowercase letters, digits and dashes), unique per user.
    pub name: String,
    /// What the selector shows.
    pub label: String,
    pub description: String,
    pub system_prompt: String,
    /// Suggested models, in order: the fallback list (JSON array of strings).
    pub models: Json,
    /// Which context sources and how many tokens (JSON object).
    pub context: Json,
    /// Tools the mode may use (JSON array of strings).
    pub tools: Json,
    /// How the answer is used: `markdown`, `plan`, `review` or `agent`.
    pub output: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
