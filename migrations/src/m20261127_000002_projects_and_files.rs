//! Projects, their files (one row per path, with a version for optimistic concurrency) and every
//! saved revision of a file (append-only: a revision is never overwritten).

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
                    .table(Projects::Table)
                    .col(pk_uuid(Projects::Id))
                    .col(uuid(Projects::OwnerId))
                    .col(string(Projects::Name))
                    .col(text_null(Projects::Description))
                    .col(string_null(Projects::RepositoryUrl))
                    .col(timestamp_with_time_zone(Projects::CreatedAt))
                    .col(timestamp_with_time_zone(Projects::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_projects_owner")
                            .from(Projects::Table, Projects::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_projects_owner")
                    .table(Projects::Table)
                    .col(Projects::OwnerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .col(pk_uuid(Files::Id))
                    .col(uuid(Files::ProjectId))
                    .col(string(Files::Path))
                    .col(text(Files::Content))
                    .col(string_null(Files::Language))
                    .col(big_integer(Files::Version).default(1))
                    .col(timestamp_with_time_zone(Files::CreatedAt))
                    .col(timestamp_with_time_zone(Files::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_files_project")
                            .from(Files::Table, Files::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_files_project_path")
                    .table(Files::Table)
                    .col(Files::ProjectId)
                    .col(Files::Path)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FileRevisions::Table)
                    .col(pk_uuid(FileRevisions::Id))
                    .col(uuid(FileRevisions::FileId))
                    .col(big_integer(FileRevisions::Version))
                    .col(text(FileRevisions::Content))
                    .col(uuid_null(FileRevisions::AuthorId))
                    .col(string(FileRevisions::Source))
                    .col(timestamp_with_time_zone(FileRevisions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_file_revisions_file")
                            .from(FileRevisions::Table, FileRevisions::FileId)
                            .to(Files::Table, Files::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_file_revisions_author")
                            .from(FileRevisions::Table, FileRevisions::AuthorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_file_revisions_file_version")
                    .table(FileRevisions::Table)
                    .col(FileRevisions::FileId)
                    .col(FileRevisions::Version)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FileRevisions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Files::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Projects::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Projects {
    Table,
    Id,
    OwnerId,
    Name,
    Description,
    RepositoryUrl,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Files {
    Table,
    Id,
    ProjectId,
    Path,
    Content,
    Language,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FileRevisions {
    Table,
    Id,
    FileId,
    Version,
    Content,
    AuthorId,
    Source,
    CreatedAt,
}
