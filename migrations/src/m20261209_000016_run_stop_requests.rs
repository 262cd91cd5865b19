//! Stopping a run from any instance, and removing old runs:
//! - `runs.stop_requested_at`: set by the instance a stop was asked on; the instance holding the
//!   run's lease sees it (woken by a notification on Postgres, else at its next heartbeat) and
//!   stops the run as a local stop would;
//! - `idx_runs_state_updated`: the retention's periodic deletion finds ended runs by state and
//!   age.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .add_column(timestamp_with_time_zone_null(Runs::StopRequestedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_runs_state_updated")
                    .table(Runs::Table)
                    .col(Runs::State)
                    .col(Runs::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_runs_state_updated")
                    .table(Runs::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .drop_column(Runs::StopRequestedAt)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    StopRequestedAt,
    State,
    UpdatedAt,
}
