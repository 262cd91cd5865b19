use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder,
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

    pub async fn create_project(
        &self,
        owner: UserId,
        fields: ProjectFields,
        now: DateTime<Utc>,
    ) -> Result<projects::Model, Error> {
        let model = projects::ActiveModel {
            id: Set(ProjectId::new()),
            owner_id: Set(owner),
            name: Set(fields.name),
            description: Set(fields.description),
            repository_url: Set(fields.repository_url),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(model.insert(self.connection()).await?)
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
