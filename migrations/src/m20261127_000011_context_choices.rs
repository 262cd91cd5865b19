//! Context: the items a user pinned or dropped in a conversation (a JSON object from item key
//! to `pinned` or `dropped`), kept for every later message of it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .add_column(json_null(Conversations::ContextChoices))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .drop_column(Conversations::ContextChoices)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    ContextChoices,
}
