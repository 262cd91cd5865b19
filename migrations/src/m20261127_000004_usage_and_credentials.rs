//! Token usage and cost of every provider call (cost in micro-dollars: cents are too coarse for
//! one call), and each user's provider credentials (API key encrypted with an AEAD; only its last
//! four characters kept in clear).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_accounts::Users;
use crate::m20261127_000003_conversations::{Conversations, Messages};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiUsage::Table)
                    .col(pk_uuid(ApiUsage::Id))
                    .col(uuid(ApiUsage::UserId))
                    .col(uuid_null(ApiUsage::ConversationId))
                    .col(uuid_null(ApiUsage::MessageId))
                    .col(string(ApiUsage::Provider))
                    .col(string(ApiUsage::Model))
                    .col(string(ApiUsage::Mode).default("chat"))
                    .col(big_integer(ApiUsage::InputTokens).default(0))
                    .col(big_integer(ApiUsage::OutputTokens).default(0))
                    .col(big_integer(ApiUsage::CachedTokens).default(0))
                    .col(big_integer(ApiUsage::CacheWriteTokens).default(0))
                    .col(big_integer(ApiUsage::ReasoningTokens).default(0))
                    .col(big_integer(ApiUsage::CostMicros).default(0))
                    .col(timestamp_with_time_zone(ApiUsage::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_usage_user")
                            .from(ApiUsage::Table, ApiUsage::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_usage_conversation")
                            .from(ApiUsage::Table, ApiUsage::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_usage_message")
                            .from(ApiUsage::Table, ApiUsage::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_usage_user_created")
                    .table(ApiUsage::Table)
                    .col(ApiUsage::UserId)
                    .col(ApiUsage::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProviderCredentials::Table)
                    .col(pk_uuid(ProviderCredentials::Id))
                    .col(uuid(ProviderCredentials::UserId))
                    .col(string(ProviderCredentials::Provider))
                    .col(string(ProviderCredentials::Label))
                    .col(string_null(ProviderCredentials::BaseUrl))
                    .col(blob_null(ProviderCredentials::EncryptedKey))
                    .col(string_null(ProviderCredentials::KeyLastFour))
                    .col(string(ProviderCredentials::Status).default("unverified"))
                    .col(timestamp_with_time_zone_null(
                        ProviderCredentials::LastVerifiedAt,
                    ))
                    .col(timestamp_with_time_zone(ProviderCredentials::CreatedAt))
                    .col(timestamp_with_time_zone(ProviderCredentials::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_provider_credentials_user")
                            .from(ProviderCredentials::Table, ProviderCredentials::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_provider_credentials_user_provider_label")
                    .table(ProviderCredentials::Table)
                    .col(ProviderCredentials::UserId)
                    .col(ProviderCredentials::Provider)
                    .col(ProviderCredentials::Label)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProviderCredentials::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ApiUsage::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ApiUsage {
    Table,
    Id,
    UserId,
    ConversationId,
    MessageId,
    Provider,
    Model,
    Mode,
    InputTokens,
    OutputTokens,
    CachedTokens,
    CacheWriteTokens,
    ReasoningTokens,
    CostMicros,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProviderCredentials {
    Table,
    Id,
    UserId,
    Provider,
    Label,
    BaseUrl,
    EncryptedKey,
    KeyLastFour,
    Status,
    LastVerifiedAt,
    CreatedAt,
    UpdatedAt,
}
