//! Exact limits and narrower tokens:
//!
//! - `plan_counters`: a user's counters of a plan period (`requests:2026-12-06`,
//!   `tokens:2026-12`), reserved with one conditional `UPDATE … WHERE used + n <= limit` before
//!   the work they limit, so concurrent requests (on any number of server instances) cannot pass
//!   a limit together;
//! - `access_tokens.scopes`: what a personal access token may do (`ai`, `read`, `write`,
//!   space-separated); tokens made before this migration keep all three;
//! - `server_settings`: values the whole installation shares (the master key's check).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PlanCounters::Table)
                    .col(uuid(PlanCounters::UserId))
                    .col(string(PlanCounters::Counter))
                    .col(big_integer(PlanCounters::Used))
                    .primary_key(
                        Index::create()
                            .col(PlanCounters::UserId)
                            .col(PlanCounters::Counter),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_plan_counters_user")
                            .from(PlanCounters::Table, PlanCounters::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccessTokens::Table)
                    .add_column(string(AccessTokens::Scopes).default("ai read write"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServerSettings::Table)
                    .col(string(ServerSettings::Name).primary_key())
                    .col(text(ServerSettings::Value))
                    .col(timestamp_with_time_zone(ServerSettings::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerSettings::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccessTokens::Table)
                    .drop_column(AccessTokens::Scopes)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PlanCounters::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PlanCounters {
    Table,
    UserId,
    Counter,
    Used,
}

#[derive(DeriveIden)]
enum AccessTokens {
    Table,
    Scopes,
}

#[derive(DeriveIden)]
enum ServerSettings {
    Table,
    Name,
    Value,
    UpdatedAt,
}
