//! Async agent tasks: background coding work on a project, durable through a journal.
//!
//! - `agent_tasks`: project, owner, title and instructions, state (`running`, `paused`,
//!   `finished`, `cancelled`, `failed`), why it paused (JSON), the run that carries it, the
//!   base it started from (the project's file revisions, JSON), its budget limits and what it
//!   used so far (steps reserved, the last step reserved, tokens, cost in micro-dollars);
//! - `agent_journal`: the task's journal, numbered (`seq`), one entry (JSON) per idempotency
//!   key: `(task_id, key)` is unique, so an entry written twice is written once;
//! - `agent_usage`: what each model call used, once per key, so that recording it again after a
//!   resume adds nothing.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_accounts::Users;
use crate::m20261127_000002_projects_and_files::Projects;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AgentTasks::Table)
                    .col(pk_uuid(AgentTasks::Id))
                    .col(uuid(AgentTasks::ProjectId))
                    .col(uuid(AgentTasks::OwnerUserId))
                    .col(uuid_null(AgentTasks::RunId))
                    .col(string(AgentTasks::Title))
                    .col(text(AgentTasks::Instructions))
                    .col(string(AgentTasks::State))
                    .col(text_null(AgentTasks::PauseReason))
                    .col(text_null(AgentTasks::Summary))
                    .col(text(AgentTasks::Base))
                    .col(big_integer_null(AgentTasks::StepLimit))
                    .col(big_integer_null(AgentTasks::TokenLimit))
                    .col(big_integer_null(AgentTasks::CostLimitMicros))
                    .col(big_integer_null(AgentTasks::WallTimeLimitSeconds))
                    .col(big_integer(AgentTasks::StepsUsed))
                    .col(big_integer(AgentTasks::LastStep))
                    .col(big_integer(AgentTasks::TokensUsed))
                    .col(big_integer(AgentTasks::CostUsedMicros))
                    .col(timestamp_with_time_zone(AgentTasks::CreatedAt))
                    .col(timestamp_with_time_zone(AgentTasks::UpdatedAt))
                    .col(timestamp_with_time_zone_null(AgentTasks::EndedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_agent_tasks_project")
                            .from(AgentTasks::Table, AgentTasks::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_agent_tasks_owner_user")
                            .from(AgentTasks::Table, AgentTasks::OwnerUserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The task list: a user's tasks, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_agent_tasks_owner_created")
                    .table(AgentTasks::Table)
                    .col(AgentTasks::OwnerUserId)
                    .col(AgentTasks::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AgentJournal::Table)
                    .col(uuid(AgentJournal::TaskId))
                    .col(big_integer(AgentJournal::Seq))
                    .col(string(AgentJournal::Key))
                    .col(text(AgentJournal::Entry))
                    .col(timestamp_with_time_zone(AgentJournal::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(AgentJournal::TaskId)
                            .col(AgentJournal::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_agent_journal_task")
                            .from(AgentJournal::Table, AgentJournal::TaskId)
                            .to(AgentTasks::Table, AgentTasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_agent_journal_task_key")
                    .table(AgentJournal::Table)
                    .col(AgentJournal::TaskId)
                    .col(AgentJournal::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AgentUsage::Table)
                    .col(uuid(AgentUsage::TaskId))
                    .col(string(AgentUsage::Key))
                    .col(big_integer(AgentUsage::Tokens))
                    .col(big_integer(AgentUsage::CostMicros))
                    .col(timestamp_with_time_zone(AgentUsage::CreatedAt))
                    .primary_key(Index::create().col(AgentUsage::TaskId).col(AgentUsage::Key))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_agent_usage_task")
                            .from(AgentUsage::Table, AgentUsage::TaskId)
                            .to(AgentTasks::Table, AgentTasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AgentUsage::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AgentJournal::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AgentTasks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AgentTasks {
    Table,
    Id,
    ProjectId,
    OwnerUserId,
    RunId,
    Title,
    Instructions,
    State,
    PauseReason,
    Summary,
    Base,
    StepLimit,
    TokenLimit,
    CostLimitMicros,
    WallTimeLimitSeconds,
    StepsUsed,
    LastStep,
    TokensUsed,
    CostUsedMicros,
    CreatedAt,
    UpdatedAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum AgentJournal {
    Table,
    TaskId,
    Seq,
    Key,
    Entry,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AgentUsage {
    Table,
    TaskId,
    Key,
    Tokens,
    CostMicros,
    CreatedAt,
}
