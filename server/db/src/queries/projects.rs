use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::ids::{ProjectId, UserId};
use crate::tables::projects;
use crate::{Database, Error};

/// The fields of a project its owner edits.
#[derive(Clone, Debug)]
pub struct ProjectFields {
    pub name: String,
    pub description: Option<String>,
    pub repository_url: Option<String>,
}

impl Database {
    /// The owner's projects, most recently changed first.
    pub async fn projects_of(&self, owner: UserId) -> Result<Vec<projects::Model>, Error> {
        Ok(projects::Entity::find()
            .filter(projects::Column::OwnerId.eq(owner))
            .order_by_desc(projects::Column::UpdatedAt)
            .all(self.connection())
            .await?)
    }

    pub async fn count_projects(&self, owner: UserId) -> Result<u64, Error> {
        Ok(projects::Entity::find()
            .filter(projects::Column::OwnerId.eq(owner))
            .count(self.connection())
            .await?)
    }

    /// The owner's project with this id; `None` for anyone else's.
    pub async fn find_project(
        &self,
        owner: UserId,
        id: ProjectId,
    ) -> Result<Option<projects::Model>, Error> {
        Ok(projects::Entity::find_by_id(id)
            .filter(projects::Column::OwnerId.eq(owner))
            .one(self.connection())
            .await?)
    }

    /// Creates a project unless the owner has `max_projects` already: counted inside the
    /// write transaction with the owner's row locked, so concurrent creations cannot pass the
    /// limit together.
    pub async fn create_project(
        &self,
        owner: UserId,
        fields: ProjectFields,
        now: DateTime<Utc>,
        max_projects: Option<u64>,
    ) -> Result<projects::Model, Error> {
        let transaction = self.begin_write().await?;
        check_project_allowance(&transaction, owner, max_projects).await?;
        let model = projects::ActiveModel {
            id: Set(ProjectId::new()),
            owner_id: Set(owner),
            name: Set(fields.name),
            description: Set(fields.description),
            repository_url: Set(fields.repository_url),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let project = model.insert(&transaction).await?;
        transaction.commit().await?;
        Ok(project)
    }

    /// `None` when the owner has no project with this id.
    pub async fn update_project(
        &self,
        owner: UserId,
        id: ProjectId,
        fields: ProjectFields,
        now: DateTime<Utc>,
    ) -> Result<Option<projects::Model>, Error> {
        let Some(project) = self.find_project(owner, id).await? else {
            return Ok(None);
        };
        let mut active = project.into_active_model();
        active.name = Set(fields.name);
        active.description = Set(fields.description);
        active.repository_url = Set(fields.repository_url);
        active.updated_at = Set(now);
        Ok(Some(active.update(self.connection()).await?))
    }

    /// Deletes the project with its folders, files and revisions; `false` when the owner has no
    /// project with this id.
    pub async fn delete_project(&self, owner: UserId, id: ProjectId) -> Result<bool, Error> {
        let result = projects::Entity::delete_many()
            .filter(projects::Column::Id.eq(id))
            .filter(projects::Column::OwnerId.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }
}

/// Inside a write transaction: locks the owner's row (Postgres; SQLite's write transaction holds
/// the whole database) and refuses when they own `max_projects` already.
pub(crate) async fn check_project_allowance(
    transaction: &sea_orm::DatabaseTransaction,
    owner: UserId,
    max_projects: Option<u64>,
) -> Result<(), Error> {
    let Some(limit) = max_projects else {
        return Ok(());
    };
    crate::tables::users::Entity::find_by_id(owner)
        .lock_exclusive()
        .one(transaction)
        .await?;
    let existing = projects::Entity::find()
        .filter(projects::Column::OwnerId.eq(owner))
        .count(transaction)
        .await?;
    if existing >= limit {
        return Err(Error::ProjectLimit { limit });
    }
    Ok(())
}
