//! The workspace's server functions: a project's tree, files, saves, history and search. Each
//! names the project; the use cases check it is the caller's before reading anything.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{
    OpenedFile, RevisionContent, RevisionSummary, SaveResult, SearchOutcome, TreeListing,
};
#[cfg(feature = "ssr")]
use crate::types::{SearchHit, TreeFile};

#[cfg(feature = "ssr")]
use super::projects::project_id;

#[cfg(feature = "ssr")]
fn file_id(text: &str) -> Result<db::ids::FileId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

#[cfg(feature = "ssr")]
fn revision_id(text: &str) -> Result<db::ids::FileRevisionId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

#[cfg(feature = "ssr")]
fn base_version(text: &str) -> Result<i64, AppError> {
    text.trim().parse().map_err(|_| {
        super::reject(AppError::BadRequest(
            "The version a save is based on must be a number.".into(),
        ))
    })
}

#[cfg(feature = "ssr")]
pub(crate) fn opened(file: db::tables::files::Model) -> OpenedFile {
    let binary = file.binary_content.is_some();
    OpenedFile {
        id: file.id.to_string(),
        language: file
            .language
            .or_else(|| services::paths::language_of(&file.path).map(str::to_owned)),
        path: file.path,
        version: file.version,
        content: (!binary).then_some(file.content),
        size_bytes: file.size_bytes,
        binary,
    }
}

#[cfg(feature = "ssr")]
fn save_result(outcome: db::SaveOutcome) -> SaveResult {
    match outcome {
        db::SaveOutcome::Saved(file) => SaveResult::Saved {
            version: file.version,
        },
        db::SaveOutcome::Conflict(current) => SaveResult::Conflict {
            current: opened(current),
        },
    }
}

/// `POST /api/files/tree`: the project's folders and files (no contents).
#[server(prefix = "/api", endpoint = "files/tree")]
pub async fn file_tree(project_id: String) -> Result<TreeListing, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let tree = super::request::services()?
        .tree(&user, project)
        .await
        .map_err(super::reject_service_error)?;
    Ok(TreeListing {
        folders: tree.folders,
        files: tree
            .files
            .into_iter()
            .map(|file| TreeFile {
                id: file.id.to_string(),
                path: file.path,
                version: file.version,
                size_bytes: file.size_bytes,
                binary: file.binary,
            })
            .collect(),
    })
}

/// `POST /api/files/open`: one file with its content and version.
#[server(prefix = "/api", endpoint = "files/open")]
pub async fn open_file(project_id: String, file_id: String) -> Result<OpenedFile, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let file = self::file_id(&file_id)?;
    let file = super::request::services()?
        .open_file(&user, project, file)
        .await
        .map_err(super::reject_service_error)?;
    Ok(opened(file))
}

/// `POST /api/files/create`: a new text file (missing folders above it are created).
#[server(prefix = "/api", endpoint = "files/create")]
pub async fn create_file(
    project_id: String,
    path: String,
    content: String,
) -> Result<OpenedFile, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let file = super::request::services()?
        .create_file(&user, project, &path, content)
        .await
        .map_err(super::reject_service_error)?;
    Ok(opened(file))
}

/// `POST /api/files/create-folder`: a new folder; returns its normalised path.
#[server(prefix = "/api", endpoint = "files/create-folder")]
pub async fn create_folder(project_id: String, path: String) -> Result<String, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    super::request::services()?
        .create_folder(&user, project, &path)
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/files/save`: saves the text if the file is still at `base_version`; otherwise a
/// conflict with the current file, and nothing is overwritten.
#[server(prefix = "/api", endpoint = "files/save")]
pub async fn save_file(
    project_id: String,
    file_id: String,
    base_version: String,
    content: String,
) -> Result<SaveResult, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let file = self::file_id(&file_id)?;
    let base_version = self::base_version(&base_version)?;
    let outcome = super::request::services()?
        .save_file(&user, project, file, base_version, content)
        .await
        .map_err(super::reject_service_error)?;
    Ok(save_result(outcome))
}

/// `POST /api/files/move`: renames or moves a file or a folder with its content; returns the
/// new normalised path.
#[server(prefix = "/api", endpoint = "files/move")]
pub async fn move_entry(project_id: String, from: String, to: String) -> Result<String, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    super::request::services()?
        .move_entry(&user, project, &from, &to)
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/files/delete`: deletes a file, or a folder with everything in it.
#[server(prefix = "/api", endpoint = "files/delete")]
pub async fn delete_entry(project_id: String, path: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    super::request::services()?
        .delete_entry(&user, project, &path)
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/files/revisions`: the file's history, newest first (no contents).
#[server(prefix = "/api", endpoint = "files/revisions")]
pub async fn list_revisions(
    project_id: String,
    file_id: String,
) -> Result<Vec<RevisionSummary>, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let file = self::file_id(&file_id)?;
    let revisions = super::request::services()?
        .revisions(&user, project, file)
        .await
        .map_err(super::reject_service_error)?;
    Ok(revisions
        .into_iter()
        .map(|revision| RevisionSummary {
            id: revision.id.to_string(),
            version: revision.version,
            size_bytes: revision.size_bytes,
            source: format!("{:?}", revision.source).to_lowercase(),
            author: revision.author_name,
            created_at: revision.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        })
        .collect())
}

/// `POST /api/files/revision`: one revision's content, to compare with the current text.
#[server(prefix = "/api", endpoint = "files/revision")]
pub async fn get_revision(
    project_id: String,
    file_id: String,
    revision_id: String,
) -> Result<RevisionContent, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let file = self::file_id(&file_id)?;
    let revision = self::revision_id(&revision_id)?;
    let revision = super::request::services()?
        .revision(&user, project, file, revision)
        .await
        .map_err(super::reject_service_error)?;
    Ok(RevisionContent {
        id: revision.id.to_string(),
        version: revision.version,
        content: revision
            .binary_content
            .is_none()
            .then_some(revision.content),
    })
}

/// `POST /api/files/restore`: makes an old revision the newest one (based on `base_version`,
/// like a save).
#[server(prefix = "/api", endpoint = "files/restore")]
pub async fn restore_revision(
    project_id: String,
    file_id: String,
    revision_id: String,
    base_version: String,
) -> Result<SaveResult, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let file = self::file_id(&file_id)?;
    let revision = self::revision_id(&revision_id)?;
    let base_version = self::base_version(&base_version)?;
    let outcome = super::request::services()?
        .restore_revision(&user, project, file, revision, base_version)
        .await
        .map_err(super::reject_service_error)?;
    Ok(save_result(outcome))
}

/// `POST /api/files/search`: lines of the project's text files matching plain text or a
/// regular expression.
#[server(prefix = "/api", endpoint = "files/search")]
pub async fn search_files(
    project_id: String,
    pattern: String,
    regex: bool,
    case_sensitive: bool,
) -> Result<SearchOutcome, AppError> {
    let user = super::request::require_user().await?;
    let project = self::project_id(&project_id)?;
    let results = super::request::services()?
        .search(
            &user,
            project,
            services::projects::SearchQuery {
                pattern,
                regex,
                case_sensitive,
            },
        )
        .await
        .map_err(super::reject_service_error)?;
    Ok(SearchOutcome {
        hits: results
            .matches
            .into_iter()
            .map(|hit| SearchHit {
                file_id: hit.file_id.to_string(),
                path: hit.path,
                line: hit.line,
                column: hit.column,
                preview: hit.preview,
            })
            .collect(),
        truncated: results.truncated,
        files_searched: results.files_searched,
    })
}
