//! Listing a project's tree without touching file contents: a flag for binary files and an index
//! that holds every column the tree shows, so the listing is answered from the index alone (on
//! SQLite, reading the row would walk past each file's content).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Files::Table)
                    .add_column(boolean(Files::IsBinary).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Files::Table)
                    .value(Files::IsBinary, true)
                    .and_where(Expr::col(Files::BinaryContent).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_files_tree")
                    .table(Files::Table)
                    .col(Files::ProjectId)
                    .col(Files::Path)
                    .col(Files::Id)
                    .col(Files::Version)
                    .col(Files::SizeBytes)
                    .col(Files::IsBinary)
                    .col(Files::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_files_tree")
                    .table(Files::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Files::Table)
                    .drop_column(Files::IsBinary)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Files {
    Table,
    Id,
    ProjectId,
    Path,
    Version,
    SizeBytes,
    IsBinary,
    BinaryContent,
    UpdatedAt,
}
