use sea_orm::entity::prelude::*;

use crate::ids::{ApiUsageId, ConversationId, MessageId, UserId};

/// Tokens and cost of one provider call, from the provider's own usage figures.
/// `cost_micros` is in millionths of a US dollar.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ApiUsageId,
    pub user_id: UserId,
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    pub provider: String,
    pub model: String,
    pub mode: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_micros: i64,
    pub created_at: DateTimeUtc,
    /// `ok`, `error`, `incomplete`, `cancelled` or `failed_over`.
    pub outcome: String,
    pub error_kind: Option<String>,
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

impl ActiveModelBehavior for ActiveModel {}
