//! Projects and their files: the dashboard's and the workspace's use cases. Every one checks
//! that the project belongs to the caller first; another user's project is "not found".

use std::time::Instant;

use chrono::Utc;
use db::ids::{FileId, FileRevisionId, ProjectId};
use db::tables::file_revisions::{self, RevisionSource};
use db::tables::{files, projects};
use db::{Authorship, FileBody, NewAuditEntry, ProjectFields, RevisionEntry, SaveOutcome, Tree};
use serde_json::json;

use crate::archives::{self, ImportedTree};
use crate::paths::{self, language_of};
use crate::policy::Work;
use crate::{AuthenticatedUser, Error, RequestMeta, Services};

/// Limits on what a project holds and what an import may bring. Configuration: the server
/// sets them from its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest total of an imported project's files, in bytes.
    pub max_project_bytes: u64,
    /// Most files in an imported project.
    pub max_files: usize,
    /// Largest uploaded archive, in bytes.
    pub max_archive_bytes: u64,
    /// Largest ratio between the unpacked size and the archive's size (zip bombs).
    pub max_expansion_ratio: u64,
}

impl Default for ProjectLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 1024 * 1024,
            max_project_bytes: 200 * 1024 * 1024,
            max_files: 20_000,
            max_archive_bytes: 64 * 1024 * 1024,
            max_expansion_ratio: 100,
        }
    }
}

/// A project's editable fields as the user typed them.
#[derive(Clone, Debug, Default)]
pub struct ProjectInput {
    pub name: String,
    pub description: String,
    pub repository_url: String,
}

/// What to look for across a project's files.
#[derive(Clone, Debug)]
pub struct SearchQuery {
    pub pattern: String,
    pub regex: bool,
    pub case_sensitive: bool,
}

/// One line that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchMatch {
    pub file_id: FileId,
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    /// The line, cut to a readable length.
    pub preview: String,
}

#[derive(Clone, Debug, Default)]
pub struct SearchResults {
    pub matches: Vec<SearchMatch>,
    /// More lines matched than were returned.
    pub truncated: bool,
    pub files_searched: usize,
}

/// Most matches one search returns.
pub const MAX_SEARCH_MATCHES: usize = 500;
const MAX_PREVIEW_CHARACTERS: usize = 200;

fn check_project_input(input: ProjectInput) -> Result<ProjectFields, Error> {
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        return Err(Error::Invalid("A project needs a name.".into()));
    }
    if name.chars().count() > 100 {
        return Err(Error::Invalid(
            "A project name is limited to 100 characters.".into(),
        ));
    }
    let description = input.description.trim().to_owned();
    if description.chars().count() > 2000 {
        return Err(Error::Invalid(
            "A description is limited to 2000 characters.".into(),
        ));
    }
    let repository_url = input.repository_url.trim().to_owned();
    if !repository_url.is_empty() {
        let scheme_ok = ["https://", "http://", "ssh://", "git@"]
            .iter()
            .any(|scheme| repository_url.starts_with(scheme));
        if !scheme_ok || repository_url.len() > 500 || repository_url.contains(char::is_whitespace)
        {
            return Err(Error::Invalid(
                "The repository URL must start with https://, http://, ssh:// or git@ and have no spaces."
                    .into(),
            ));
        }
    }
    Ok(ProjectFields {
        name,
        description: (!description.is_empty()).then_some(description),
        repository_url: (!repository_url.is_empty()).then_some(repository_url),
    })
}

fn conflict(conflict: db::TreeConflict) -> Error {
    Error::Conflict(conflict.to_string())
}

fn by_user(user: &AuthenticatedUser, source: RevisionSource) -> Authorship {
    Authorship {
        author: Some(user.id),
        source,
    }
}

impl Services {
    pub async fn list_projects(
        &self,
        user: &AuthenticatedUser,
    ) -> Result<Vec<projects::Model>, Error> {
        Ok(self.database.projects_of(user.id).await?)
    }

    /// The caller's project; `NotFound` for anyone else's.
    pub async fn project(
        &self,
        user: &AuthenticatedUser,
        id: ProjectId,
    ) -> Result<projects::Model, Error> {
        self.database
            .find_project(user.id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn create_project(
        &self,
        user: &AuthenticatedUser,
        input: ProjectInput,
        meta: &RequestMeta,
    ) -> Result<projects::Model, Error> {
        let fields = check_project_input(input)?;
        let project = self
            .database
            .create_project(user.id, fields, Utc::now(), self.max_projects(user))
            .await
            .map_err(|error| self.project_limit_error(user, error))?;
        self.audit_project(user, "project.create", &project, meta)
            .await?;
        Ok(project)
    }

    fn max_projects(&self, user: &AuthenticatedUser) -> Option<u64> {
        self.tiers.limits(Some(user.tier)).max_projects
    }

    /// The plan's refusal for a creation the database refused at the limit (checked there,
    /// inside the transaction that creates the project).
    fn project_limit_error(&self, user: &AuthenticatedUser, error: db::Error) -> Error {
        match error {
            db::Error::ProjectLimit { limit } => self
                .tiers
                .check(Some(user.tier), &Work::CreateProject { existing: limit })
                .err()
                .unwrap_or_else(|| {
                    Error::LimitReached(format!("Your plan allows {limit} projects."))
                }),
            other => other.into(),
        }
    }

    /// Refuses early (before an upload is unpacked) when the plan's projects are used up; the
    /// creation itself checks again, exactly.
    async fn check_project_allowance(&self, user: &AuthenticatedUser) -> Result<(), Error> {
        let existing = self.database.count_projects(user.id).await?;
        self.tiers
            .check(Some(user.tier), &Work::CreateProject { existing })
    }

    pub async fn update_project(
        &self,
        user: &AuthenticatedUser,
        id: ProjectId,
        input: ProjectInput,
    ) -> Result<projects::Model, Error> {
        let fields = check_project_input(input)?;
        self.database
            .update_project(user.id, id, fields, Utc::now())
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn delete_project(
        &self,
        user: &AuthenticatedUser,
        id: ProjectId,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let project = self.project(user, id).await?;
        if !self.database.delete_project(user.id, id).await? {
            return Err(Error::NotFound);
        }
        self.context.project_deleted(id);
        self.audit_project(user, "project.delete", &project, meta)
            .await
    }

    async fn audit_project(
        &self,
        user: &AuthenticatedUser,
        action: &'static str,
        project: &projects::Model,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action,
                target_type: Some("project"),
                target_id: Some(project.id.to_string()),
                detail: Some(json!({ "name": project.name })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    pub async fn tree(&self, user: &AuthenticatedUser, project: ProjectId) -> Result<Tree, Error> {
        self.project(user, project).await?;
        Ok(self.database.tree_of(project).await?)
    }

    pub async fn open_file(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        file: FileId,
    ) -> Result<files::Model, Error> {
        self.project(user, project).await?;
        self.database
            .find_file(project, file)
            .await?
            .ok_or(Error::NotFound)
    }

    fn check_file_size(&self, size: usize) -> Result<(), Error> {
        if size as u64 > self.projects.max_file_bytes {
            return Err(Error::Invalid(format!(
                "A file is limited to {} bytes; this one has {size}.",
                self.projects.max_file_bytes
            )));
        }
        Ok(())
    }

    pub async fn create_file(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        path: &str,
        content: String,
    ) -> Result<files::Model, Error> {
        let path = paths::normalize(path)?;
        self.check_file_size(content.len())?;
        self.project(user, project).await?;
        let created = self
            .database
            .create_file(
                project,
                &path,
                FileBody::Text(content.clone()),
                language_of(&path).map(str::to_owned),
                by_user(user, RevisionSource::User),
                Utc::now(),
            )
            .await?
            .map_err(conflict)?;
        self.context
            .file_saved(
                &self.database,
                project,
                &path,
                created.version,
                content.into_bytes(),
            )
            .await;
        Ok(created)
    }

    pub async fn create_folder(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        path: &str,
    ) -> Result<String, Error> {
        let path = paths::normalize(path)?;
        self.project(user, project).await?;
        self.database
            .create_folder(project, &path, Utc::now())
            .await?
            .map_err(conflict)?;
        Ok(path)
    }

    /// Saves the text if the file is still at `base_version`; otherwise the outcome is a
    /// conflict holding the current file, and nothing changed.
    pub async fn save_file(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        file: FileId,
        base_version: i64,
        content: String,
    ) -> Result<SaveOutcome, Error> {
        self.check_file_size(content.len())?;
        self.project(user, project).await?;
        let existing = self
            .database
            .find_file(project, file)
            .await?
            .ok_or(Error::NotFound)?;
        if existing.binary_content.is_some() {
            return Err(Error::Invalid(
                "This file is binary; it cannot be saved as text.".into(),
            ));
        }
        let outcome = self
            .database
            .save_file(
                project,
                file,
                base_version,
                FileBody::Text(content),
                by_user(user, RevisionSource::User),
                Utc::now(),
            )
            .await?
            .ok_or(Error::NotFound)?;
        self.index_saved(project, &outcome).await;
        Ok(outcome)
    }

    /// Re-indexes the file a save wrote (a conflict wrote nothing).
    async fn index_saved(&self, project: ProjectId, outcome: &SaveOutcome) {
        if let SaveOutcome::Saved(file) = outcome {
            let content = match &file.binary_content {
                Some(bytes) => bytes.clone(),
                None => file.content.clone().into_bytes(),
            };
            self.context
                .file_saved(&self.database, project, &file.path, file.version, content)
                .await;
        }
    }

    pub async fn move_entry(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        from: &str,
        to: &str,
    ) -> Result<String, Error> {
        let from = paths::normalize(from)?;
        let to = paths::normalize(to)?;
        self.project(user, project).await?;
        self.database
            .move_entry(project, &from, &to, Utc::now())
            .await?
            .map_err(conflict)?;
        self.context.entry_moved(project, &from, &to);
        Ok(to)
    }

    pub async fn delete_entry(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        path: &str,
    ) -> Result<(), Error> {
        let path = paths::normalize(path)?;
        self.project(user, project).await?;
        if self
            .database
            .delete_entry(project, &path, Utc::now())
            .await?
        {
            self.context.entry_deleted(project, &path);
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    pub async fn revisions(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        file: FileId,
    ) -> Result<Vec<RevisionEntry>, Error> {
        self.project(user, project).await?;
        self.database
            .revisions_of(project, file)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn revision(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        file: FileId,
        revision: FileRevisionId,
    ) -> Result<file_revisions::Model, Error> {
        self.project(user, project).await?;
        self.database
            .find_revision(project, file, revision)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Makes an old revision's content the file's newest revision (nothing is overwritten).
    /// Like a save, it is based on the version the user saw.
    pub async fn restore_revision(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        file: FileId,
        revision: FileRevisionId,
        base_version: i64,
    ) -> Result<SaveOutcome, Error> {
        let old = self.revision(user, project, file, revision).await?;
        let outcome = self
            .database
            .save_file(
                project,
                file,
                base_version,
                FileBody::of_revision(&old),
                by_user(user, RevisionSource::Restore),
                Utc::now(),
            )
            .await?
            .ok_or(Error::NotFound)?;
        self.index_saved(project, &outcome).await;
        Ok(outcome)
    }

    /// Lines of the project's text files that match, by path then line.
    pub async fn search(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
        query: SearchQuery,
    ) -> Result<SearchResults, Error> {
        if query.pattern.is_empty() {
            return Err(Error::Invalid("Type something to search for.".into()));
        }
        if query.pattern.len() > 1000 {
            return Err(Error::Invalid(
                "A search is limited to 1000 characters.".into(),
            ));
        }
        let source = if query.regex {
            query.pattern.clone()
        } else {
            regex::escape(&query.pattern)
        };
        let matcher = regex::RegexBuilder::new(&source)
            .case_insensitive(!query.case_sensitive)
            .size_limit(1 << 20)
            .build()
            .map_err(|error| {
                Error::Invalid(format!("That regular expression is invalid: {error}"))
            })?;
        self.project(user, project).await?;
        let started = Instant::now();
        let files = self.database.text_files_of(project).await?;
        let files_searched = files.len();
        let results = tokio::task::spawn_blocking(move || {
            let mut results = SearchResults {
                files_searched,
                ..SearchResults::default()
            };
            'files: for (file_id, path, content) in files {
                if !matcher.is_match(&content) {
                    continue;
                }
                for (index, line) in content.lines().enumerate() {
                    let Some(found) = matcher.find(line) else {
                        continue;
                    };
                    if results.matches.len() == MAX_SEARCH_MATCHES {
                        results.truncated = true;
                        break 'files;
                    }
                    results.matches.push(SearchMatch {
                        file_id,
                        path: path.clone(),
                        line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                        column: u32::try_from(line[..found.start()].chars().count() + 1)
                            .unwrap_or(u32::MAX),
                        preview: line
                            .trim_end()
                            .chars()
                            .take(MAX_PREVIEW_CHARACTERS)
                            .collect(),
                    });
                }
            }
            results
        })
        .await
        .map_err(|error| Error::Internal(format!("the search task failed: {error}")))?;
        tracing::debug!(
            files = files_searched,
            matches = results.matches.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "searched a project"
        );
        Ok(results)
    }

    /// Creates a project from an uploaded .zip or .tar.gz. Every entry is checked first; one
    /// bad entry refuses the whole archive (with a message naming it) and nothing is stored.
    pub async fn import_project(
        &self,
        user: &AuthenticatedUser,
        name: &str,
        archive: Vec<u8>,
        meta: &RequestMeta,
    ) -> Result<projects::Model, Error> {
        let limits = self.projects;
        let fields = check_project_input(ProjectInput {
            name: name.to_owned(),
            ..ProjectInput::default()
        })?;
        self.check_project_allowance(user).await?;
        let ImportedTree { folders, files } =
            tokio::task::spawn_blocking(move || archives::read(&archive, &limits))
                .await
                .map_err(|error| Error::Internal(format!("the import task failed: {error}")))??;
        let now = Utc::now();
        let file_count = files.len();
        let project = projects::Model {
            id: ProjectId::new(),
            owner_id: user.id,
            name: fields.name,
            description: fields.description,
            repository_url: fields.repository_url,
            created_at: now,
            updated_at: now,
        };
        let new_files = files
            .into_iter()
            .map(|(path, body)| {
                let language = language_of(&path).map(str::to_owned);
                (path, body, language)
            })
            .collect();
        let project = self
            .database
            .create_project_with_tree(
                project,
                &folders,
                new_files,
                by_user(user, RevisionSource::Import),
                self.max_projects(user),
            )
            .await
            .map_err(|error| self.project_limit_error(user, error))?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "project.import",
                target_type: Some("project"),
                target_id: Some(project.id.to_string()),
                detail: Some(json!({ "name": project.name, "files": file_count })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        Ok(project)
    }

    /// The project as a .zip: every folder and file, bytes exactly as stored. Returns the file
    /// name to offer and the archive.
    pub async fn export_project(
        &self,
        user: &AuthenticatedUser,
        project: ProjectId,
    ) -> Result<(String, Vec<u8>), Error> {
        let model = self.project(user, project).await?;
        let tree = self.database.tree_of(project).await?;
        let files = self.database.files_with_content(project).await?;
        let entries: Vec<(String, FileBody)> = files
            .iter()
            .map(|file| (file.path.clone(), FileBody::of_file(file)))
            .collect();
        let archive =
            tokio::task::spawn_blocking(move || archives::write_zip(&tree.folders, &entries))
                .await
                .map_err(|error| Error::Internal(format!("the export task failed: {error}")))??;
        Ok((archives::file_name_for(&model.name), archive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_input_is_checked_and_tidied() {
        let fields = check_project_input(ProjectInput {
            name: "  Demo ".into(),
            description: " ".into(),
            repository_url: "https://example.com/demo.git".into(),
        })
        .unwrap();
        assert_eq!(fields.name, "Demo");
        assert_eq!(fields.description, None);
        assert!(check_project_input(ProjectInput::default()).is_err());
        assert!(
            check_project_input(ProjectInput {
                name: "x".into(),
                repository_url: "javascript:alert(1)".into(),
                ..ProjectInput::default()
            })
            .is_err()
        );
    }
}
