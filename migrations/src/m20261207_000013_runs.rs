//! Runs: work that outlives the process that started it (a chat answer being written, later an
//! agent's task), owned by one server instance at a time through a lease.
//!
//! - `runs`: kind, owner user, state (`queued`, `running`, `finished`, `interrupted`,
//!   `failed`), an optional subject (what the run is about, e.g. a message id), the lease
//!   (`lease_owner`: the instance's id, `lease_expires_at`, `fencing_token`: bumped at every
//!   claim, and checked by every write) and `last_seq`, the number of the newest event;
//! - `run_events`: the numbered events of a run, `(run_id, seq)` the key, written only by the
//!   lease's holder with its token.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .col(pk_uuid(Runs::Id))
                    .col(string(Runs::Kind))
                    .col(uuid_null(Runs::OwnerUserId))
                    .col(string(Runs::State))
                    .col(text_null(Runs::Subject))
                    .col(string_null(Runs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Runs::LeaseExpiresAt))
                    .col(big_integer(Runs::FencingToken))
                    .col(big_integer(Runs::LastSeq))
                    .col(timestamp_with_time_zone(Runs::CreatedAt))
                    .col(timestamp_with_time_zone(Runs::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_runs_owner_user")
                            .from(Runs::Table, Runs::OwnerUserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Recovery looks for unfinished runs whose lease expired.
        manager
            .create_index(
                Index::create()
                    .name("idx_runs_state_lease")
                    .table(Runs::Table)
                    .col(Runs::State)
                    .col(Runs::LeaseExpiresAt)
                    .to_owned(),
            )
            .await?;
        // A run is found from what it is about (an answer's message).
        manager
            .create_index(
                Index::create()
                    .name("idx_runs_kind_subject")
                    .table(Runs::Table)
                    .col(Runs::Kind)
                    .col(Runs::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RunEvents::Table)
                    .col(uuid(RunEvents::RunId))
                    .col(big_integer(RunEvents::Seq))
                    .col(string(RunEvents::Kind))
                    .col(text(RunEvents::Payload))
                    .col(timestamp_with_time_zone(RunEvents::CreatedAt))
                    .primary_key(Index::create().col(RunEvents::RunId).col(RunEvents::Seq))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_run_events_run")
                            .from(RunEvents::Table, RunEvents::RunId)
                            .to(Runs::Table, Runs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RunEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Runs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    Kind,
    OwnerUserId,
    State,
    Subject,
    LeaseOwner,
    LeaseExpiresAt,
    FencingToken,
    LastSeq,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RunEvents {
    Table,
    RunId,
    Seq,
    Kind,
    Payload,
    CreatedAt,
}
