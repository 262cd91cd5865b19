//! Conversations (one per chat thread, in a mode, optionally tied to a project) and their messages,
//! each with a status (streaming, complete, interrupted, failed) and free-form metadata
//! (model, usage, context manifest, fallbacks taken).

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
                    .table(Conversations::Table)
                    .col(pk_uuid(Conversations::Id))
                    .col(uuid(Conversations::UserId))
                    .col(uuid_null(Conversations::ProjectId))
                    .col(string(Conversations::Title))
                    .col(string(Conversations::Mode).default("chat"))
                    .col(timestamp_with_time_zone(Conversations::CreatedAt))
                    .col(timestamp_with_time_zone(Conversations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_user")
                            .from(Conversations::Table, Conversations::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_conversations_project")
                            .from(Conversations::Table, Conversations::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_user")
                    .table(Conversations::Table)
                    .col(Conversations::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(pk_uuid(Messages::Id))
                    .col(uuid(Messages::ConversationId))
                    .col(string(Messages::Role))
                    .col(text(Messages::Content))
                    .col(string(Messages::Status).default("complete"))
                    .col(json_null(Messages::Metadata))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone(Messages::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_conversation")
                            .from(Messages::Table, Messages::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_conversation_created")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Conversations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Conversations {
    Table,
    Id,
    UserId,
    ProjectId,
    Title,
    Mode,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Messages {
    Table,
    Id,
    ConversationId,
    Role,
    Content,
    Status,
    Metadata,
    CreatedAt,
    UpdatedAt,
}
