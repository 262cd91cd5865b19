use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{ProviderCredentialId, UserId};

/// A user's key for one provider, or the base URL of a local OpenAI-compatible server.
/// `encrypted_key` holds nonce and ciphertext; the key in clear never reaches the database.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ProviderCredentialId,
    pub user_id: UserId,
    pub provider: ProviderKind,
    pub label: String,
    pub base_url: Option<String>,
    pub encrypted_key: Option<Vec<u8>>,
    pub key_last_four: Option<String>,
    pub status: CredentialStatus,
    pub last_verified_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ProviderKind {
    #[sea_orm(string_value = "openai")]
    OpenAi,
    #[sea_orm(string_value = "anthropic")]
    Anthropic,
    #[sea_orm(string_value = "gemini")]
    Gemini,
    #[sea_orm(string_value = "openai_compatible")]
    OpenAiCompatible,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum CredentialStatus {
    #[sea_orm(string_value = "unverified")]
    Unverified,
    #[sea_orm(string_value = "valid")]
    Valid,
    #[sea_orm(string_value = "invalid")]
    Invalid,
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
