//! Chat: the model a conversation asks (its own choice, or none to use the mode's and the user's
//! default), and user-defined modes (a mode is data: prompt, suggested models, context policy,
//! allowed tools, output handling).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000001_accounts::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .add_column(string_null(Conversations::Model))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Modes::Table)
                    .col(pk_uuid(Modes::Id))
                    .col(uuid(Modes::UserId))
                    .col(string(Modes::Name))
                    .col(string(Modes::Label))
                    .col(text(Modes::Description))
                    .col(text(Modes::SystemPrompt))
                    .col(json(Modes::Models))
                    .col(json(Modes::Context))
                    .col(json(Modes::Tools))
                    .col(string(Modes::Output))
                    .col(timestamp_with_time_zone(Modes::CreatedAt))
                    .col(timestamp_with_time_zone(Modes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_modes_user")
                            .from(Modes::Table, Modes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_modes_user_name")
                    .table(Modes::Table)
                    .col(Modes::UserId)
                    .col(Modes::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_status")
                    .table(Messages::Table)
                    .col(Messages::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_status")
                    .table(Messages::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Modes::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .drop_column(Conversations::Model)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Model,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Status,
}

#[derive(DeriveIden)]
enum Modes {
    Table,
    Id,
    UserId,
    Name,
    Label,
    Description,
    SystemPrompt,
    Models,
    Context,
    Tools,
    Output,
    CreatedAt,
    UpdatedAt,
}
