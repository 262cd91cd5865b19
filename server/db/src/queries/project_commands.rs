//! A project's named commands. The caller has checked that the project is the user's.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::ids::ProjectId;
use crate::tables::project_commands;
use crate::{Database, Error};

impl Database {
    /// The project's commands, by name.
    pub async fn project_commands(
        &self,
        project: ProjectId,
    ) -> Result<Vec<project_commands::Model>, Error> {
        Ok(project_commands::Entity::find()
            .filter(project_commands::Column::ProjectId.eq(project))
            .order_by_asc(project_commands::Column::Name)
            .all(self.connection())
            .await?)
    }

    /// Saves the command `name` (a new one, or a new command line for an existing one).
    pub async fn save_project_command(
        &self,
        project: ProjectId,
        name: &str,
        command_line: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        project_commands::Entity::insert(project_commands::ActiveModel {
            project_id: Set(project),
            name: Set(name.to_owned()),
            command_line: Set(command_line.to_owned()),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                project_commands::Column::ProjectId,
                project_commands::Column::Name,
            ])
            .update_columns([
                project_commands::Column::CommandLine,
                project_commands::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(self.connection())
        .await?;
        Ok(())
    }

    /// Removes the command `name`; whether it existed.
    pub async fn delete_project_command(
        &self,
        project: ProjectId,
        name: &str,
    ) -> Result<bool, Error> {
        let result = project_commands::Entity::delete_many()
            .filter(project_commands::Column::ProjectId.eq(project))
            .filter(project_commands::Column::Name.eq(name))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }
}
