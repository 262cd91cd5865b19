//! The workspace's file tree: folders as rows of their own (so an empty folder exists), binary
//! files kept as bytes, and sizes on files and revisions (history lists them without reading
//! contents). A revision also records the path the file had when it was saved.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261127_000002_projects_and_files::Projects;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Folders::Table)
                    .col(pk_uuid(Folders::Id))
                    .col(uuid(Folders::ProjectId))
                    .col(string(Folders::Path))
                    .col(timestamp_with_time_zone(Folders::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_folders_project")
                            .from(Folders::Table, Folders::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_folders_project_path")
                    .table(Folders::Table)
                    .col(Folders::ProjectId)
                    .col(Folders::Path)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        for column in [
            big_integer(Files::SizeBytes).default(0).to_owned(),
            blob_null(Files::BinaryContent).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Files::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            big_integer(FileRevisions::SizeBytes).default(0).to_owned(),
            blob_null(FileRevisions::BinaryContent).to_owned(),
            string_null(FileRevisions::Path).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(FileRevisions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            FileRevisions::Path,
            FileRevisions::BinaryContent,
            FileRevisions::SizeBytes,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(FileRevisions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [Files::BinaryContent, Files::SizeBytes] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Files::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Folders::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Folders {
    Table,
    Id,
    ProjectId,
    Path,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Files {
    Table,
    SizeBytes,
    BinaryContent,
}

#[derive(DeriveIden)]
enum FileRevisions {
    Table,
    SizeBytes,
    BinaryContent,
    Path,
}
