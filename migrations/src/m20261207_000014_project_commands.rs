//! A project's named commands (`test`, `lint`, `build`, …, and `setup`, run before the others
//! when it is set): `project_commands`, keyed by project and name, removed with their project.

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
                    .table(ProjectCommands::Table)
                    .col(uuid(ProjectCommands::ProjectId))
                    .col(string(ProjectCommands::Name))
                    .col(text(ProjectCommands::CommandLine))
                    .col(timestamp_with_time_zone(ProjectCommands::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(ProjectCommands::ProjectId)
                            .col(ProjectCommands::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_project_commands_project")
                            .from(ProjectCommands::Table, ProjectCommands::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProjectCommands::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ProjectCommands {
    Table,
    ProjectId,
    Name,
    CommandLine,
    UpdatedAt,
}
