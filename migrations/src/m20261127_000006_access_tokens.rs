//! Personal access tokens: named, expiring, revocable; only their SHA-256 is stored.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccessTokens::Table)
                    .col(pk_uuid(AccessTokens::Id))
                    .col(uuid(AccessTokens::UserId))
                    .col(string(AccessTokens::Name))
                    .col(string_uniq(AccessTokens::TokenHash))
                    .col(timestamp_with_time_zone(AccessTokens::CreatedAt))
                    .col(timestamp_with_time_zone(AccessTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AccessTokens::LastUsedAt))
                    .col(timestamp_with_time_zone_null(AccessTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_access_tokens_user")
                            .from(AccessTokens::Table, AccessTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_tokens_user")
                    .table(AccessTokens::Table)
                    .col(AccessTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccessTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccessTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}
