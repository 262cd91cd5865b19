//! Rate limits shared by every server instance of one database: `rate_limits`, one row per key
//! (`sign-in|<address>`, `sign-up|<address>`, ...) with its count, the start of its window or
//! the time of its last failure, and the end of the delay it serves.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(string(RateLimits::Key).primary_key())
                    .col(big_integer(RateLimits::Count))
                    .col(timestamp_with_time_zone(RateLimits::Since))
                    .col(timestamp_with_time_zone_null(RateLimits::BlockedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rate_limits_since")
                    .table(RateLimits::Table)
                    .col(RateLimits::Since)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    Count,
    Since,
    BlockedUntil,
}
