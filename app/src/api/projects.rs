//! The dashboard's server functions: the caller's projects. Import (`POST /api/projects/import`)
//! and export (`GET /api/projects/<id>/export.zip`) move whole archives and are plain axum routes
//! in the server crate.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::ProjectSummary;

#[cfg(feature = "ssr")]
pub fn to_wire(project: db::tables::projects::Model) -> ProjectSummary {
    ProjectSummary {
        id: project.id.to_string(),
        name: project.name,
        description: project.description,
        repository_url: project.repository_url,
        updated_at: project.updated_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

/// A project id from the wire; anything unparsable is a project that does not exist.
#[cfg(feature = "ssr")]
pub(crate) fn project_id(text: &str) -> Result<db::ids::ProjectId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

/// `POST /api/projects/list`: the caller's projects, most recently changed first.
#[server(prefix = "/api", endpoint = "projects/list")]
pub async fn list_projects() -> Result<Vec<ProjectSummary>, AppError> {
    let user = super::request::require_user().await?;
    let projects = super::request::services()?
        .list_projects(&user)
        .await
        .map_err(super::reject_service_error)?;
    Ok(projects.into_iter().map(to_wire).collect())
}

/// `POST /api/projects/get`: one of the caller's projects.
#[server(prefix = "/api", endpoint = "projects/get")]
pub async fn get_project(project_id: String) -> Result<ProjectSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::project_id(&project_id)?;
    let project = super::request::services()?
        .project(&user, id)
        .await
        .map_err(super::reject_service_error)?;
    Ok(to_wire(project))
}

/// `POST /api/projects/create`: a new, empty project (within the plan's project allowance).
#[server(prefix = "/api", endpoint = "projects/create")]
pub async fn create_project(
    name: String,
    description: String,
    repository_url: String,
) -> Result<ProjectSummary, AppError> {
    let user = super::request::require_user().await?;
    let project = super::request::services()?
        .create_project(
            &user,
            services::projects::ProjectInput {
                name,
                description,
                repository_url,
            },
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)?;
    Ok(to_wire(project))
}

/// `POST /api/projects/update`: renames or edits one of the caller's projects.
#[server(prefix = "/api", endpoint = "projects/update")]
pub async fn update_project(
    project_id: String,
    name: String,
    description: String,
    repository_url: String,
) -> Result<ProjectSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::project_id(&project_id)?;
    let project = super::request::services()?
        .update_project(
            &user,
            id,
            services::projects::ProjectInput {
                name,
                description,
                repository_url,
            },
        )
        .await
        .map_err(super::reject_service_error)?;
    Ok(to_wire(project))
}

/// `POST /api/projects/delete`: deletes one of the caller's projects with all its files.
#[server(prefix = "/api", endpoint = "projects/delete")]
pub async fn delete_project(project_id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = self::project_id(&project_id)?;
    super::request::services()?
        .delete_project(&user, id, &super::request::meta())
        .await
        .map_err(super::reject_service_error)
}
