//! The workspace's state, shared by its parts through context: the tree, the open tabs, the
//! active tab, folder expansion. Tabs, the active tab and expansion are kept in the browser's
//! local storage per project, so a reload comes back to the same place.

use std::collections::BTreeSet;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::editor::{Editor, model_uri};
use crate::types::{OpenedFile, ProjectSummary, TreeFile, TreeListing};

/// Where a tab's text stands with the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveState {
    Idle,
    Saving,
    /// Someone saved since this tab's version; holds the file as it is now on the server.
    Conflict(OpenedFile),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tab {
    pub file_id: String,
    pub path: String,
    pub language: Option<String>,
    pub binary: bool,
    pub size_bytes: i64,
    /// The server version the text in the editor is based on.
    pub base_version: i64,
    /// The text as loaded, until the editor holds it.
    pub loaded_text: String,
    pub dirty: bool,
    pub state: SaveState,
}

impl Tab {
    pub fn from_opened(file: OpenedFile) -> Self {
        Self {
            file_id: file.id,
            path: file.path,
            language: file.language,
            binary: file.binary,
            size_bytes: file.size_bytes,
            base_version: file.version,
            loaded_text: file.content.unwrap_or_default(),
            dirty: false,
            state: SaveState::Idle,
        }
    }

    pub fn uri(&self) -> String {
        model_uri(&self.file_id)
    }

    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// What the status bar says.
    pub fn status(&self) -> &'static str {
        match &self.state {
            SaveState::Saving => "Saving…",
            SaveState::Conflict(_) => "Conflict",
            SaveState::Failed(_) => "Not saved",
            SaveState::Idle if self.dirty => "Unsaved",
            SaveState::Idle => "Saved",
        }
    }
}

/// The names a project's README goes by, in order of preference (compared ignoring case).
const README_NAMES: [&str; 6] = [
    "README.md",
    "README.markdown",
    "README",
    "README.txt",
    "README.rst",
    "README.adoc",
];

/// The file a project opens with in a browser that has never had it open: its README at the
/// root, if it has one (the first of [`README_NAMES`] present). `app/src/editor/early.js`
/// applies the same rule before the app runs, so that the app adopts what it showed.
pub fn first_visit_file(tree: &TreeListing) -> Option<&TreeFile> {
    README_NAMES.iter().find_map(|name| {
        tree.files
            .iter()
            .find(|file| !file.binary && file.path.eq_ignore_ascii_case(name))
    })
}

/// What is remembered across reloads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub tabs: Vec<String>,
    pub active: Option<String>,
    pub expanded: Vec<String>,
}

#[derive(Clone, Copy)]
pub struct Workspace {
    pub project_id: StoredValue<String>,
    pub project: RwSignal<Option<ProjectSummary>>,
    pub tree: RwSignal<TreeListing>,
    pub expanded: RwSignal<BTreeSet<String>>,
    /// The tree row with the keyboard focus (a path).
    pub selected: RwSignal<Option<String>>,
    pub tabs: RwSignal<Vec<Tab>>,
    /// The active tab's file id.
    pub active: RwSignal<Option<String>>,
    pub cursor: RwSignal<(u32, u32)>,
    /// Set in the browser only (a server render may move between threads; the wrapper is
    /// single-threaded, which the browser is).
    pub editor: StoredValue<Option<send_wrapper::SendWrapper<Editor>>>,
    pub editor_ready: RwSignal<bool>,
    pub editor_error: RwSignal<Option<String>>,
    /// A line to reveal once the file is shown: `(file id, line, column)`.
    pub pending_reveal: RwSignal<Option<(String, u32, u32)>>,
    /// Set once the remembered state was restored; saving it before would forget it.
    pub restored: RwSignal<bool>,
}

impl Workspace {
    pub fn new(project_id: String) -> Self {
        Self {
            project_id: StoredValue::new(project_id),
            project: RwSignal::new(None),
            tree: RwSignal::new(TreeListing::default()),
            expanded: RwSignal::new(BTreeSet::new()),
            selected: RwSignal::new(None),
            tabs: RwSignal::new(Vec::new()),
            active: RwSignal::new(None),
            cursor: RwSignal::new((1, 1)),
            editor: StoredValue::new(None),
            editor_ready: RwSignal::new(false),
            editor_error: RwSignal::new(None),
            pending_reveal: RwSignal::new(None),
            restored: RwSignal::new(false),
        }
    }

    pub fn project_id(&self) -> String {
        self.project_id.get_value()
    }

    pub fn active_tab(&self) -> Option<Tab> {
        let active = self.active.get()?;
        self.tabs
            .with(|tabs| tabs.iter().find(|tab| tab.file_id == active).cloned())
    }

    pub fn active_tab_untracked(&self) -> Option<Tab> {
        let active = self.active.get_untracked()?;
        self.tabs
            .with_untracked(|tabs| tabs.iter().find(|tab| tab.file_id == active).cloned())
    }

    pub fn update_tab(&self, file_id: &str, change: impl FnOnce(&mut Tab)) {
        self.tabs.update(|tabs| {
            if let Some(tab) = tabs.iter_mut().find(|tab| tab.file_id == file_id) {
                change(tab);
            }
        });
    }

    pub fn any_dirty(&self) -> bool {
        self.tabs
            .with_untracked(|tabs| tabs.iter().any(|tab| tab.dirty))
    }

    fn storage_key(&self) -> String {
        format!("async-coder.workspace.{}", self.project_id())
    }

    /// What this browser remembers of the project; `None` when it has never had it open here.
    pub fn remembered(&self) -> Option<Remembered> {
        window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|storage| storage.get_item(&self.storage_key()).ok().flatten())
            .and_then(|text| serde_json::from_str(&text).ok())
    }

    pub fn remember(&self) {
        let remembered = Remembered {
            tabs: self
                .tabs
                .with(|tabs| tabs.iter().map(|tab| tab.file_id.clone()).collect()),
            active: self.active.get(),
            expanded: self
                .expanded
                .with(|expanded| expanded.iter().cloned().collect()),
        };
        let Ok(text) = serde_json::to_string(&remembered) else {
            return;
        };
        if let Some(storage) = window().local_storage().ok().flatten()
            && let Err(error) = storage.set_item(&self.storage_key(), &text)
        {
            leptos::logging::warn!("could not remember the workspace: {error:?}");
        }
    }
}

pub fn use_workspace() -> Workspace {
    expect_context::<Workspace>()
}

#[cfg(feature = "hydrate")]
#[cfg(feature = "hydrate")]
/// Whether the page shows dark colours now (the person's choice, or the system's).
pub fn prefers_dark(theme: crate::types::Theme) -> bool {
    match theme {
        crate::types::Theme::Dark => true,
        crate::types::Theme::Light => false,
        crate::types::Theme::System => window()
            .match_media("(prefers-color-scheme: dark)")
            .ok()
            .flatten()
            .is_some_and(|query| query.matches()),
    }
}

/// A fuzzy match of `query` in `path` (the characters in order), scored: consecutive characters,
/// a match at the start of a name and a short path score higher. `None` when it does not match.
pub fn fuzzy_score(query: &str, path: &str) -> Option<i64> {
    let query: Vec<char> = query
        .chars()
        .filter(|character| !character.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    if query.is_empty() {
        return Some(0);
    }
    let characters: Vec<char> = path.chars().flat_map(char::to_lowercase).collect();
    let name_start = path
        .rfind('/')
        .map_or(0, |index| path[..=index].chars().count());
    let mut score = 0i64;
    let mut position = 0usize;
    let mut previous: Option<usize> = None;
    for wanted in &query {
        let found = (position..characters.len()).find(|index| characters[*index] == *wanted)?;
        score += 10;
        if previous.is_some_and(|previous| previous + 1 == found) {
            score += 15;
        }
        if found == 0
            || characters
                .get(found - 1)
                .is_some_and(|before| "/_-. ".contains(*before))
        {
            score += 10;
        }
        if found >= name_start {
            score += 5;
        }
        previous = Some(found);
        position = found + 1;
    }
    Some(score - i64::try_from(characters.len()).unwrap_or(i64::MAX) / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(files: &[(&str, bool)]) -> TreeListing {
        TreeListing {
            folders: Vec::new(),
            files: files
                .iter()
                .enumerate()
                .map(|(index, (path, binary))| TreeFile {
                    id: format!("id-{index}"),
                    path: (*path).to_owned(),
                    version: 1,
                    size_bytes: 10,
                    binary: *binary,
                })
                .collect(),
        }
    }

    /// Files (path, binary) and the path a first visit opens.
    type FirstVisitCase = (&'static [(&'static str, bool)], Option<&'static str>);

    #[test]
    fn a_first_visit_opens_the_readme_at_the_root() {
        let cases: [FirstVisitCase; 7] = [
            (
                &[("src/main.rs", false), ("README.md", false)],
                Some("README.md"),
            ),
            (&[("readme.md", false)], Some("readme.md")),
            (
                &[("README", false), ("README.md", false)],
                Some("README.md"),
            ),
            (
                &[("README.txt", false), ("README.rst", false)],
                Some("README.txt"),
            ),
            (&[("docs/README.md", false), ("src/lib.rs", false)], None),
            (&[("README.md", true)], None),
            (&[("READMEs.md", false), ("NOT_README.md", false)], None),
        ];
        for (files, expected) in cases {
            let tree = tree_of(files);
            assert_eq!(
                first_visit_file(&tree).map(|file| file.path.as_str()),
                expected,
                "{files:?}"
            );
        }
    }

    #[test]
    fn fuzzy_matching_prefers_names_and_runs() {
        assert!(fuzzy_score("mainrs", "src/main.rs").is_some());
        assert!(fuzzy_score("xyz", "src/main.rs").is_none());
        let name = fuzzy_score("main", "src/main.rs").unwrap();
        let scattered = fuzzy_score("main", "migrations/a_inner.rs").unwrap();
        assert!(name > scattered, "{name} <= {scattered}");
        assert_eq!(fuzzy_score("", "anything"), Some(0));
    }
}
