//! A project's tree: folders, files and revisions. Every query takes the project id, which the
//! caller has checked belongs to the user; a file id from another project finds nothing.
//! Paths arrive already validated and normalised (see `services::paths`).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};

use crate::ids::{FileId, FileRevisionId, FolderId, ProjectId, UserId};
use crate::tables::file_revisions::{self, RevisionSource};
use crate::tables::{files, folders, projects, users};
use crate::{Database, Error};

/// Rows per multi-row insert: well under every engine's limit on bound parameters.
const INSERT_BATCH: usize = 200;

/// What a file holds: text (edited in the editor, searched) or bytes kept as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileBody {
    Text(String),
    Binary(Vec<u8>),
}

impl FileBody {
    pub fn size(&self) -> i64 {
        let length = match self {
            FileBody::Text(text) => text.len(),
            FileBody::Binary(bytes) => bytes.len(),
        };
        i64::try_from(length).unwrap_or(i64::MAX)
    }

    /// The `(content, binary_content)` columns.
    fn into_columns(self) -> (String, Option<Vec<u8>>) {
        match self {
            FileBody::Text(text) => (text, None),
            FileBody::Binary(bytes) => (String::new(), Some(bytes)),
        }
    }

    pub fn of_file(file: &files::Model) -> Self {
        match &file.binary_content {
            Some(bytes) => FileBody::Binary(bytes.clone()),
            None => FileBody::Text(file.content.clone()),
        }
    }

    pub fn of_revision(revision: &file_revisions::Model) -> Self {
        match &revision.binary_content {
            Some(bytes) => FileBody::Binary(bytes.clone()),
            None => FileBody::Text(revision.content.clone()),
        }
    }
}

/// A file in a tree listing: everything but the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub id: FileId,
    pub path: String,
    pub version: i64,
    pub size_bytes: i64,
    pub binary: bool,
    pub updated_at: DateTime<Utc>,
}

/// A project's whole tree, both lists sorted by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    pub folders: Vec<String>,
    pub files: Vec<FileEntry>,
}

/// A revision in a history listing: everything but the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionEntry {
    pub id: FileRevisionId,
    pub version: i64,
    pub size_bytes: i64,
    pub source: RevisionSource,
    pub author_name: Option<String>,
    pub path: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One change in a project's history (a revision that is not the import's): the file's current
/// path, who saved it and when. What co-changes are learned from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    pub path: String,
    pub author: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// Who saved and why.
#[derive(Clone, Copy, Debug)]
pub struct Authorship {
    pub author: Option<UserId>,
    pub source: RevisionSource,
}

/// How a save ended.
#[derive(Clone, Debug)]
pub enum SaveOutcome {
    Saved(files::Model),
    /// The save was based on an older version; nothing changed. Holds the current file.
    Conflict(files::Model),
}

/// Why a change to the tree was refused; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeConflict {
    #[error("A file or folder {0} exists already.")]
    Exists(String),
    #[error("{0} is a file, so it cannot hold other files.")]
    ParentIsFile(String),
    #[error("Nothing is at {0}.")]
    Missing(String),
    #[error("A folder cannot move into itself.")]
    IntoItself,
}

/// Every folder above `path`, outermost first: `a/b/c` gives `a`, `a/b`.
pub fn ancestors(path: &str) -> Vec<&str> {
    path.match_indices('/')
        .map(|(index, _)| &path[..index])
        .collect()
}

fn is_under(path: &str, folder: &str) -> bool {
    path.len() > folder.len() && path.starts_with(folder) && path.as_bytes()[folder.len()] == b'/'
}

impl Database {
    /// Folders and files of the project, without contents.
    pub async fn tree_of(&self, project: ProjectId) -> Result<Tree, Error> {
        let folders: Vec<String> = folders::Entity::find()
            .select_only()
            .column(folders::Column::Path)
            .filter(folders::Column::ProjectId.eq(project))
            .order_by_asc(folders::Column::Path)
            .into_tuple()
            .all(self.connection())
            .await?;
        let rows: Vec<(FileId, String, i64, i64, bool, DateTime<Utc>)> = files::Entity::find()
            .select_only()
            .column(files::Column::Id)
            .column(files::Column::Path)
            .column(files::Column::Version)
            .column(files::Column::SizeBytes)
            .column(files::Column::IsBinary)
            .column(files::Column::UpdatedAt)
            .filter(files::Column::ProjectId.eq(project))
            .order_by_asc(files::Column::Path)
            .into_tuple()
            .all(self.connection())
            .await?;
        Ok(Tree {
            folders,
            files: rows
                .into_iter()
                .map(
                    |(id, path, version, size_bytes, binary, updated_at)| FileEntry {
                        id,
                        path,
                        version,
                        size_bytes,
                        binary,
                        updated_at,
                    },
                )
                .collect(),
        })
    }

    pub async fn find_file(
        &self,
        project: ProjectId,
        id: FileId,
    ) -> Result<Option<files::Model>, Error> {
        Ok(files::Entity::find_by_id(id)
            .filter(files::Column::ProjectId.eq(project))
            .one(self.connection())
            .await?)
    }

    pub async fn find_file_by_path(
        &self,
        project: ProjectId,
        path: &str,
    ) -> Result<Option<files::Model>, Error> {
        Ok(files::Entity::find()
            .filter(files::Column::ProjectId.eq(project))
            .filter(files::Column::Path.eq(path))
            .one(self.connection())
            .await?)
    }

    /// Creates a file (and any missing folder above it) with its first revision.
    pub async fn create_file(
        &self,
        project: ProjectId,
        path: &str,
        body: FileBody,
        language: Option<String>,
        authorship: Authorship,
        now: DateTime<Utc>,
    ) -> Result<Result<files::Model, TreeConflict>, Error> {
        let transaction = self.begin_write().await?;
        let paths = PathsInProject::load(&transaction, project).await?;
        if let Err(conflict) = paths.check_free(path) {
            return Ok(Err(conflict));
        }
        insert_folders(&transaction, project, &paths.missing_ancestors(path), now).await?;
        let file =
            insert_file(&transaction, project, path, body, language, authorship, now).await?;
        touch_project(&transaction, project, now).await?;
        transaction.commit().await?;
        Ok(Ok(file))
    }

    /// Creates a folder and any missing folder above it.
    pub async fn create_folder(
        &self,
        project: ProjectId,
        path: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TreeConflict>, Error> {
        let transaction = self.begin_write().await?;
        let paths = PathsInProject::load(&transaction, project).await?;
        if let Err(conflict) = paths.check_free(path) {
            return Ok(Err(conflict));
        }
        let mut new_folders = paths.missing_ancestors(path);
        new_folders.push(path.to_owned());
        insert_folders(&transaction, project, &new_folders, now).await?;
        touch_project(&transaction, project, now).await?;
        transaction.commit().await?;
        Ok(Ok(()))
    }

    /// Saves new content if the file is still at `base_version`: the version grows by one and a
    /// revision records the new content. Otherwise nothing changes and the current file comes
    /// back as a conflict. `None` when the project has no such file.
    pub async fn save_file(
        &self,
        project: ProjectId,
        id: FileId,
        base_version: i64,
        body: FileBody,
        authorship: Authorship,
        now: DateTime<Utc>,
    ) -> Result<Option<SaveOutcome>, Error> {
        let transaction = self.begin_write().await?;
        let size = body.size();
        let (content, binary_content) = body.into_columns();
        let is_binary = binary_content.is_some();
        // One conditional update: two saves based on the same version cannot both succeed.
        let updated = files::Entity::update_many()
            .col_expr(files::Column::Content, Expr::value(content.clone()))
            .col_expr(
                files::Column::BinaryContent,
                Expr::value(binary_content.clone()),
            )
            .col_expr(files::Column::IsBinary, Expr::value(is_binary))
            .col_expr(files::Column::SizeBytes, Expr::value(size))
            .col_expr(
                files::Column::Version,
                Expr::col(files::Column::Version).add(1),
            )
            .col_expr(files::Column::UpdatedAt, Expr::value(now))
            .filter(files::Column::Id.eq(id))
            .filter(files::Column::ProjectId.eq(project))
            .filter(files::Column::Version.eq(base_version))
            .exec(&transaction)
            .await?;
        let current = files::Entity::find_by_id(id)
            .filter(files::Column::ProjectId.eq(project))
            .one(&transaction)
            .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        if updated.rows_affected == 0 {
            return Ok(Some(SaveOutcome::Conflict(current)));
        }
        insert_revision(&transaction, &current, authorship, now).await?;
        touch_project(&transaction, project, now).await?;
        transaction.commit().await?;
        Ok(Some(SaveOutcome::Saved(current)))
    }

    /// Moves (renames) a file or a folder with everything in it. Revisions stay with their files.
    pub async fn move_entry(
        &self,
        project: ProjectId,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), TreeConflict>, Error> {
        if from == to {
            return Ok(Ok(()));
        }
        if is_under(to, from) {
            return Ok(Err(TreeConflict::IntoItself));
        }
        let transaction = self.begin_write().await?;
        let paths = PathsInProject::load(&transaction, project).await?;
        if !paths.files.contains_key(from) && !paths.folders.contains_key(from) {
            return Ok(Err(TreeConflict::Missing(from.to_owned())));
        }
        if let Err(conflict) = paths.check_free(to) {
            return Ok(Err(conflict));
        }
        insert_folders(&transaction, project, &paths.missing_ancestors(to), now).await?;
        let renamed = |path: &str| format!("{to}{}", &path[from.len()..]);
        for (path, id) in &paths.files {
            if path == from || is_under(path, from) {
                files::Entity::update_many()
                    .col_expr(files::Column::Path, Expr::value(renamed(path)))
                    .col_expr(files::Column::UpdatedAt, Expr::value(now))
                    .filter(files::Column::Id.eq(*id))
                    .exec(&transaction)
                    .await?;
            }
        }
        for (path, id) in &paths.folders {
            if path == from || is_under(path, from) {
                folders::Entity::update_many()
                    .col_expr(folders::Column::Path, Expr::value(renamed(path)))
                    .filter(folders::Column::Id.eq(*id))
                    .exec(&transaction)
                    .await?;
            }
        }
        touch_project(&transaction, project, now).await?;
        transaction.commit().await?;
        Ok(Ok(()))
    }

    /// Deletes a file, or a folder with everything in it (revisions go with their files).
    /// `false` when nothing has this path.
    pub async fn delete_entry(
        &self,
        project: ProjectId,
        path: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let transaction = self.begin_write().await?;
        let paths = PathsInProject::load(&transaction, project).await?;
        let file_ids: Vec<FileId> = paths
            .files
            .iter()
            .filter(|(file, _)| *file == path || is_under(file, path))
            .map(|(_, id)| *id)
            .collect();
        let folder_ids: Vec<FolderId> = paths
            .folders
            .iter()
            .filter(|(folder, _)| *folder == path || is_under(folder, path))
            .map(|(_, id)| *id)
            .collect();
        if file_ids.is_empty() && folder_ids.is_empty() {
            return Ok(false);
        }
        for batch in file_ids.chunks(INSERT_BATCH) {
            files::Entity::delete_many()
                .filter(files::Column::Id.is_in(batch.iter().copied()))
                .exec(&transaction)
                .await?;
        }
        for batch in folder_ids.chunks(INSERT_BATCH) {
            folders::Entity::delete_many()
                .filter(folders::Column::Id.is_in(batch.iter().copied()))
                .exec(&transaction)
                .await?;
        }
        touch_project(&transaction, project, now).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// The file's revisions, newest first, without contents; `None` when the project has no
    /// such file.
    pub async fn revisions_of(
        &self,
        project: ProjectId,
        file: FileId,
    ) -> Result<Option<Vec<RevisionEntry>>, Error> {
        if self.find_file_entry(project, file).await?.is_none() {
            return Ok(None);
        }
        type Row = (
            FileRevisionId,
            i64,
            i64,
            RevisionSource,
            Option<UserId>,
            Option<String>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = file_revisions::Entity::find()
            .select_only()
            .column(file_revisions::Column::Id)
            .column(file_revisions::Column::Version)
            .column(file_revisions::Column::SizeBytes)
            .column(file_revisions::Column::Source)
            .column(file_revisions::Column::AuthorId)
            .column(file_revisions::Column::Path)
            .column(file_revisions::Column::CreatedAt)
            .filter(file_revisions::Column::FileId.eq(file))
            .order_by_desc(file_revisions::Column::Version)
            .into_tuple()
            .all(self.connection())
            .await?;
        let author_ids: BTreeSet<UserId> = rows.iter().filter_map(|row| row.4).collect();
        let names: HashMap<UserId, String> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .column(users::Column::Name)
            .filter(users::Column::Id.is_in(author_ids))
            .into_tuple::<(UserId, String)>()
            .all(self.connection())
            .await?
            .into_iter()
            .collect();
        Ok(Some(
            rows.into_iter()
                .map(
                    |(id, version, size_bytes, source, author, path, created_at)| RevisionEntry {
                        id,
                        version,
                        size_bytes,
                        source,
                        author_name: author.and_then(|author| names.get(&author).cloned()),
                        path,
                        created_at,
                    },
                )
                .collect(),
        ))
    }

    /// One revision with its content; `None` unless it belongs to this file of this project.
    pub async fn find_revision(
        &self,
        project: ProjectId,
        file: FileId,
        revision: FileRevisionId,
    ) -> Result<Option<file_revisions::Model>, Error> {
        if self.find_file_entry(project, file).await?.is_none() {
            return Ok(None);
        }
        Ok(file_revisions::Entity::find_by_id(revision)
            .filter(file_revisions::Column::FileId.eq(file))
            .one(self.connection())
            .await?)
    }

    /// Every text file's id, path and content, by path: what a project-wide search reads.
    pub async fn text_files_of(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(FileId, String, String)>, Error> {
        Ok(files::Entity::find()
            .select_only()
            .column(files::Column::Id)
            .column(files::Column::Path)
            .column(files::Column::Content)
            .filter(files::Column::ProjectId.eq(project))
            .filter(files::Column::BinaryContent.is_null())
            .order_by_asc(files::Column::Path)
            .into_tuple()
            .all(self.connection())
            .await?)
    }

    /// The text files changed most recently (newest first): id, path and when.
    pub async fn recently_changed_files(
        &self,
        project: ProjectId,
        limit: u64,
    ) -> Result<Vec<(FileId, String, DateTime<Utc>)>, Error> {
        Ok(files::Entity::find()
            .select_only()
            .column(files::Column::Id)
            .column(files::Column::Path)
            .column(files::Column::UpdatedAt)
            .filter(files::Column::ProjectId.eq(project))
            .filter(files::Column::IsBinary.eq(false))
            .order_by_desc(files::Column::UpdatedAt)
            .limit(limit)
            .into_tuple()
            .all(self.connection())
            .await?)
    }

    /// The project's latest changes, newest first, without contents: every revision but the
    /// import's (an import is one change to every file, which says nothing of what goes
    /// together), of the text files still there, under their current paths.
    pub async fn change_history(
        &self,
        project: ProjectId,
        limit: u64,
    ) -> Result<Vec<ChangeEntry>, Error> {
        let rows: Vec<(String, Option<UserId>, DateTime<Utc>)> = file_revisions::Entity::find()
            .select_only()
            .column(files::Column::Path)
            .column(file_revisions::Column::AuthorId)
            .column(file_revisions::Column::CreatedAt)
            .join(JoinType::InnerJoin, file_revisions::Relation::File.def())
            .filter(files::Column::ProjectId.eq(project))
            .filter(files::Column::IsBinary.eq(false))
            .filter(file_revisions::Column::Source.ne(RevisionSource::Import))
            .order_by_desc(file_revisions::Column::CreatedAt)
            .limit(limit)
            .into_tuple()
            .all(self.connection())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(path, author, created_at)| ChangeEntry {
                path,
                author,
                created_at,
            })
            .collect())
    }

    /// A file's newest revisions with their contents, newest first.
    pub async fn latest_revisions(
        &self,
        file: FileId,
        count: u64,
    ) -> Result<Vec<file_revisions::Model>, Error> {
        Ok(file_revisions::Entity::find()
            .filter(file_revisions::Column::FileId.eq(file))
            .order_by_desc(file_revisions::Column::Version)
            .limit(count)
            .all(self.connection())
            .await?)
    }

    /// Every file with its content, by path: what an export writes.
    pub async fn files_with_content(&self, project: ProjectId) -> Result<Vec<files::Model>, Error> {
        Ok(files::Entity::find()
            .filter(files::Column::ProjectId.eq(project))
            .order_by_asc(files::Column::Path)
            .all(self.connection())
            .await?)
    }

    /// Creates a project with its whole tree in one transaction (an import): all or nothing.
    pub async fn create_project_with_tree(
        &self,
        project: projects::Model,
        folder_paths: &[String],
        new_files: Vec<(String, FileBody, Option<String>)>,
        authorship: Authorship,
        max_projects: Option<u64>,
    ) -> Result<projects::Model, Error> {
        let now = project.created_at;
        let transaction = self.begin_write().await?;
        super::projects::check_project_allowance(&transaction, project.owner_id, max_projects)
            .await?;
        let project = projects::ActiveModel::from(project)
            .insert(&transaction)
            .await?;
        insert_folders(&transaction, project.id, folder_paths, now).await?;
        let mut file_rows = Vec::with_capacity(new_files.len());
        let mut revision_rows = Vec::with_capacity(new_files.len());
        for (path, body, language) in new_files {
            let id = FileId::new();
            let size = body.size();
            let (content, binary_content) = body.into_columns();
            revision_rows.push(file_revisions::ActiveModel {
                id: Set(FileRevisionId::new()),
                file_id: Set(id),
                version: Set(1),
                content: Set(content.clone()),
                author_id: Set(authorship.author),
                source: Set(authorship.source),
                created_at: Set(now),
                size_bytes: Set(size),
                binary_content: Set(binary_content.clone()),
                path: Set(Some(path.clone())),
            });
            file_rows.push(files::ActiveModel {
                id: Set(id),
                project_id: Set(project.id),
                path: Set(path),
                content: Set(content),
                language: Set(language),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                size_bytes: Set(size),
                is_binary: Set(binary_content.is_some()),
                binary_content: Set(binary_content),
            });
        }
        while !file_rows.is_empty() {
            let rest = file_rows.split_off(file_rows.len().min(INSERT_BATCH));
            files::Entity::insert_many(std::mem::replace(&mut file_rows, rest))
                .exec(&transaction)
                .await?;
        }
        while !revision_rows.is_empty() {
            let rest = revision_rows.split_off(revision_rows.len().min(INSERT_BATCH));
            file_revisions::Entity::insert_many(std::mem::replace(&mut revision_rows, rest))
                .exec(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(project)
    }

    async fn find_file_entry(
        &self,
        project: ProjectId,
        file: FileId,
    ) -> Result<Option<FileId>, Error> {
        Ok(files::Entity::find_by_id(file)
            .select_only()
            .column(files::Column::Id)
            .filter(files::Column::ProjectId.eq(project))
            .into_tuple()
            .one(self.connection())
            .await?)
    }
}

/// Every path of a project (no contents), read inside a transaction to check a change.
struct PathsInProject {
    files: HashMap<String, FileId>,
    folders: HashMap<String, FolderId>,
}

impl PathsInProject {
    async fn load(transaction: &DatabaseTransaction, project: ProjectId) -> Result<Self, Error> {
        let files: Vec<(String, FileId)> = files::Entity::find()
            .select_only()
            .column(files::Column::Path)
            .column(files::Column::Id)
            .filter(files::Column::ProjectId.eq(project))
            .into_tuple()
            .all(transaction)
            .await?;
        let folders: Vec<(String, FolderId)> = folders::Entity::find()
            .select_only()
            .column(folders::Column::Path)
            .column(folders::Column::Id)
            .filter(folders::Column::ProjectId.eq(project))
            .into_tuple()
            .all(transaction)
            .await?;
        Ok(Self {
            files: files.into_iter().collect(),
            folders: folders.into_iter().collect(),
        })
    }

    /// Nothing has this path and no file sits where one of its folders must be.
    fn check_free(&self, path: &str) -> Result<(), TreeConflict> {
        if self.files.contains_key(path) || self.folders.contains_key(path) {
            return Err(TreeConflict::Exists(path.to_owned()));
        }
        for ancestor in ancestors(path) {
            if self.files.contains_key(ancestor) {
                return Err(TreeConflict::ParentIsFile(ancestor.to_owned()));
            }
        }
        Ok(())
    }

    fn missing_ancestors(&self, path: &str) -> Vec<String> {
        ancestors(path)
            .into_iter()
            .filter(|ancestor| !self.folders.contains_key(*ancestor))
            .map(str::to_owned)
            .collect()
    }
}

async fn insert_folders(
    connection: &impl ConnectionTrait,
    project: ProjectId,
    paths: &[String],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    for batch in paths.chunks(INSERT_BATCH) {
        folders::Entity::insert_many(batch.iter().map(|path| folders::ActiveModel {
            id: Set(FolderId::new()),
            project_id: Set(project),
            path: Set(path.clone()),
            created_at: Set(now),
        }))
        .exec(connection)
        .await?;
    }
    Ok(())
}

async fn insert_file(
    connection: &impl ConnectionTrait,
    project: ProjectId,
    path: &str,
    body: FileBody,
    language: Option<String>,
    authorship: Authorship,
    now: DateTime<Utc>,
) -> Result<files::Model, Error> {
    let size = body.size();
    let (content, binary_content) = body.into_columns();
    let file = files::ActiveModel {
        id: Set(FileId::new()),
        project_id: Set(project),
        path: Set(path.to_owned()),
        content: Set(content),
        language: Set(language),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        size_bytes: Set(size),
        is_binary: Set(binary_content.is_some()),
        binary_content: Set(binary_content),
    }
    .insert(connection)
    .await?;
    insert_revision(connection, &file, authorship, now).await?;
    Ok(file)
}

async fn insert_revision(
    connection: &impl ConnectionTrait,
    file: &files::Model,
    authorship: Authorship,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    file_revisions::ActiveModel {
        id: Set(FileRevisionId::new()),
        file_id: Set(file.id),
        version: Set(file.version),
        content: Set(file.content.clone()),
        author_id: Set(authorship.author),
        source: Set(authorship.source),
        created_at: Set(now),
        size_bytes: Set(file.size_bytes),
        binary_content: Set(file.binary_content.clone()),
        path: Set(Some(file.path.clone())),
    }
    .insert(connection)
    .await?;
    Ok(())
}

async fn touch_project(
    connection: &impl ConnectionTrait,
    project: ProjectId,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    projects::Entity::update_many()
        .col_expr(projects::Column::UpdatedAt, Expr::value(now))
        .filter(projects::Column::Id.eq(project))
        .exec(connection)
        .await?;
    Ok(())
}

/// What a worktree is written from.
impl Database {
    /// The files of `ids` in the project, with their contents (in batches; ids of other
    /// projects find nothing).
    pub async fn files_by_ids(
        &self,
        project: ProjectId,
        ids: &[FileId],
    ) -> Result<Vec<files::Model>, Error> {
        let mut found = Vec::with_capacity(ids.len());
        for batch in ids.chunks(INSERT_BATCH) {
            found.extend(
                files::Entity::find()
                    .filter(files::Column::ProjectId.eq(project))
                    .filter(files::Column::Id.is_in(batch.iter().copied()))
                    .all(self.connection())
                    .await?,
            );
        }
        Ok(found)
    }

    /// Every file's path and version in a project (no content): what a context index compares
    /// with the versions it holds before it ranks, to find what other instances changed.
    pub async fn file_versions(&self, project: ProjectId) -> Result<Vec<(String, i64)>, Error> {
        Ok(files::Entity::find()
            .select_only()
            .column(files::Column::Path)
            .column(files::Column::Version)
            .filter(files::Column::ProjectId.eq(project))
            .into_tuple::<(String, i64)>()
            .all(self.connection())
            .await?)
    }

    /// The files at `paths` in a project, with their content (paths that name no file are
    /// left out).
    pub async fn files_at_paths(
        &self,
        project: ProjectId,
        paths: &[String],
    ) -> Result<Vec<files::Model>, Error> {
        let mut found = Vec::with_capacity(paths.len());
        for batch in paths.chunks(INSERT_BATCH) {
            found.extend(
                files::Entity::find()
                    .filter(files::Column::ProjectId.eq(project))
                    .filter(files::Column::Path.is_in(batch.iter().cloned()))
                    .all(self.connection())
                    .await?,
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_and_containment() {
        assert_eq!(ancestors("a/b/c.rs"), vec!["a", "a/b"]);
        assert!(ancestors("top.rs").is_empty());
        assert!(is_under("src/main.rs", "src"));
        assert!(!is_under("src2/main.rs", "src"));
        assert!(!is_under("src", "src"));
    }
}
