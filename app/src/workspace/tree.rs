//! The file tree: folders and files, expanded on demand, drawn only where the viewport shows
//! them (a project of thousands of files scrolls as smoothly as a small one), with the keyboard
//! navigation of a tree view (arrows, Home/End, Enter, F2 to rename, Delete).

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos::tachys::html::attribute::custom::CustomAttribute;

use super::state::use_workspace;
use crate::types::TreeListing;

/// Height of one row in CSS pixels (kept equal to `.tree-row` in the stylesheet).
pub const ROW_HEIGHT: f64 = 26.0;
/// Rows drawn above and below the viewport.
const OVERSCAN: usize = 12;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowKind {
    Folder { expanded: bool },
    File { id: String, binary: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub path: String,
    pub name: String,
    pub depth: usize,
    pub kind: RowKind,
}

/// The rows a person sees: folders first then files, by name, inside every expanded folder.
pub fn visible_rows(tree: &TreeListing, expanded: &BTreeSet<String>) -> Vec<Row> {
    let mut folders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut files: BTreeMap<&str, Vec<(&str, &str, bool)>> = BTreeMap::new();
    for folder in &tree.folders {
        folders.entry(parent_of(folder)).or_default().push(folder);
    }
    for file in &tree.files {
        files
            .entry(parent_of(&file.path))
            .or_default()
            .push((&file.path, &file.id, file.binary));
    }
    for children in folders.values_mut() {
        children.sort_unstable();
    }
    for children in files.values_mut() {
        children.sort_unstable();
    }
    let mut rows = Vec::new();
    // Depth-first, children in order.
    fn push_children<'a>(
        parent: &str,
        depth: usize,
        folders: &BTreeMap<&str, Vec<&'a str>>,
        files: &BTreeMap<&str, Vec<(&'a str, &'a str, bool)>>,
        expanded: &BTreeSet<String>,
        rows: &mut Vec<Row>,
    ) {
        if let Some(children) = folders.get(parent) {
            for folder in children {
                let is_expanded = expanded.contains(*folder);
                rows.push(Row {
                    path: (*folder).to_owned(),
                    name: name_of(folder).to_owned(),
                    depth,
                    kind: RowKind::Folder {
                        expanded: is_expanded,
                    },
                });
                if is_expanded {
                    push_children(folder, depth + 1, folders, files, expanded, rows);
                }
            }
        }
        if let Some(children) = files.get(parent) {
            for (path, id, binary) in children {
                rows.push(Row {
                    path: (*path).to_owned(),
                    name: name_of(path).to_owned(),
                    depth,
                    kind: RowKind::File {
                        id: (*id).to_owned(),
                        binary: *binary,
                    },
                });
            }
        }
    }
    push_children("", 0, &folders, &files, expanded, &mut rows);
    rows
}

pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The folder a new entry goes into: the selected folder, or the folder of the selected file.
pub fn target_folder(selected: Option<&str>, tree: &TreeListing) -> String {
    match selected {
        Some(path) if tree.folders.iter().any(|folder| folder == path) => path.to_owned(),
        Some(path) => parent_of(path).to_owned(),
        None => String::new(),
    }
}

#[component]
pub fn FileTree(
    on_open: Callback<String>,
    on_rename: Callback<()>,
    on_delete: Callback<()>,
) -> impl IntoView {
    let workspace = use_workspace();
    let rows = Memo::new(move |_| {
        let expanded = workspace.expanded.get();
        workspace.tree.with(|tree| visible_rows(tree, &expanded))
    });
    let scroll_top = RwSignal::new(0.0f64);
    let viewport_height = RwSignal::new(600.0f64);
    let container = NodeRef::<leptos::html::Div>::new();

    let measure = move || {
        if let Some(element) = container.get_untracked() {
            scroll_top.set(f64::from(element.scroll_top()));
            viewport_height.set(f64::from(element.client_height()).max(ROW_HEIGHT));
        }
    };
    Effect::new(move |_| {
        if container.get().is_some() {
            measure();
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());

    let window_range = move || {
        let count = rows.with(Vec::len);
        let first = ((scroll_top.get() / ROW_HEIGHT) as usize).saturating_sub(OVERSCAN);
        let visible = (viewport_height.get() / ROW_HEIGHT).ceil() as usize;
        let last = (first + visible + 2 * OVERSCAN).min(count);
        (first.min(count), last)
    };

    let selected_index = move || {
        let selected = workspace.selected.get()?;
        rows.with(|rows| rows.iter().position(|row| row.path == selected))
    };

    let scroll_into_view = move |index: usize| {
        let Some(element) = container.get_untracked() else {
            return;
        };
        let top = index as f64 * ROW_HEIGHT;
        let current = f64::from(element.scroll_top());
        let height = f64::from(element.client_height());
        if top < current {
            element.set_scroll_top(top as i32);
        } else if top + ROW_HEIGHT > current + height {
            element.set_scroll_top((top + ROW_HEIGHT - height) as i32);
        }
        measure();
    };

    let toggle = move |path: &str| {
        let path = path.to_owned();
        workspace.expanded.update(|expanded| {
            if !expanded.remove(&path) {
                expanded.insert(path);
            }
        });
    };

    let activate = move |row: &Row| match &row.kind {
        RowKind::Folder { .. } => toggle(&row.path),
        RowKind::File { id, .. } => on_open.run(id.clone()),
    };

    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        let all = rows.get_untracked();
        if all.is_empty() {
            return;
        }
        let current = workspace
            .selected
            .get_untracked()
            .and_then(|selected| all.iter().position(|row| row.path == selected));
        let select = |index: usize| {
            workspace.selected.set(Some(all[index].path.clone()));
            scroll_into_view(index);
        };
        match event.key().as_str() {
            "ArrowDown" => select(current.map_or(0, |index| (index + 1).min(all.len() - 1))),
            "ArrowUp" => select(current.map_or(0, |index| index.saturating_sub(1))),
            "Home" => select(0),
            "End" => select(all.len() - 1),
            "ArrowRight" => {
                if let Some(index) = current {
                    match all[index].kind {
                        RowKind::Folder { expanded: false } => toggle(&all[index].path),
                        RowKind::Folder { expanded: true } if index + 1 < all.len() => {
                            select(index + 1)
                        }
                        _ => {}
                    }
                }
            }
            "ArrowLeft" => {
                if let Some(index) = current {
                    if let RowKind::Folder { expanded: true } = all[index].kind {
                        toggle(&all[index].path);
                    } else {
                        let parent = parent_of(&all[index].path);
                        if let Some(parent_index) = all.iter().position(|row| row.path == parent) {
                            select(parent_index);
                        }
                    }
                }
            }
            "Enter" | " " => {
                if let Some(index) = current {
                    activate(&all[index]);
                }
            }
            "F2" => on_rename.run(()),
            "Delete" => on_delete.run(()),
            _ => return,
        }
        event.prevent_default();
    };

    let active_descendant = move || selected_index().map(|index| format!("tree-row-{index}"));

    view! {
        <div
            class="file-tree"
            role="tree"
            aria-label="Files"
            tabindex="0"
            node_ref=container
            aria-activedescendant=active_descendant
            on:scroll=move |_| measure()
            on:keydown=on_keydown
            on:focus=move |_| {
                if workspace.selected.get_untracked().is_none()
                    && let Some(first) = rows.with_untracked(|rows| rows.first().map(|row| row.path.clone()))
                {
                    workspace.selected.set(Some(first));
                }
            }
        >
            <div
                class="tree-spacer"
                style=move || format!("height: {}px", rows.with(Vec::len) as f64 * ROW_HEIGHT)
            >
                {move || {
                    let (first, last) = window_range();
                    let selected = workspace.selected.get();
                    let active = workspace.active.get();
                    rows.with(|rows| {
                        rows[first..last]
                            .iter()
                            .enumerate()
                            .map(|(offset, row)| {
                                let index = first + offset;
                                let row = row.clone();
                                let is_selected = selected.as_deref() == Some(row.path.as_str());
                                let is_active = matches!(&row.kind, RowKind::File { id, .. } if active.as_deref() == Some(id.as_str()));
                                let (icon, expanded) = match &row.kind {
                                    RowKind::Folder { expanded: true } => ("▾", Some("true")),
                                    RowKind::Folder { expanded: false } => ("▸", Some("false")),
                                    RowKind::File { binary: true, .. } => ("◆", None),
                                    RowKind::File { .. } => ("·", None),
                                };
                                let clicked = row.clone();
                                view! {
                                    <div
                                        id=format!("tree-row-{index}")
                                        class="tree-row"
                                        class:selected=is_selected
                                        class:active=is_active
                                        role="treeitem"
                                        aria-expanded=expanded
                                        aria-selected=if is_selected { "true" } else { "false" }
                                        data-path=row.path.clone()
                                        style=format!(
                                            "top: {}px; padding-left: {}rem",
                                            index as f64 * ROW_HEIGHT,
                                            0.5 + row.depth as f64 * 0.9,
                                        )
                                        on:click=move |_| {
                                            workspace.selected.set(Some(clicked.path.clone()));
                                            activate(&clicked);
                                        }
                                    >
                                        <span class="tree-icon" aria-hidden="true">{icon}</span>
                                        <span class="tree-name">{row.name.clone()}</span>
                                    </div>
                                }
                                    // tachys has no `aria-level` method; set it as a plain attribute.
                                    .attr("aria-level", (row.depth + 1).to_string())
                            })
                            .collect_view()
                    })
                }}
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TreeFile;

    fn file(path: &str) -> TreeFile {
        TreeFile {
            id: path.to_owned(),
            path: path.to_owned(),
            version: 1,
            size_bytes: 0,
            binary: false,
        }
    }

    #[test]
    fn rows_follow_expansion_with_folders_first() {
        let tree = TreeListing {
            folders: vec!["src".into(), "src/bin".into(), "docs".into()],
            files: vec![
                file("README.md"),
                file("src/lib.rs"),
                file("src/bin/tool.rs"),
            ],
        };
        let collapsed = visible_rows(&tree, &BTreeSet::new());
        let names: Vec<&str> = collapsed.iter().map(|row| row.path.as_str()).collect();
        assert_eq!(names, vec!["docs", "src", "README.md"]);
        let expanded: BTreeSet<String> = ["src".to_owned(), "src/bin".to_owned()].into();
        let rows = visible_rows(&tree, &expanded);
        let names: Vec<(&str, usize)> = rows
            .iter()
            .map(|row| (row.path.as_str(), row.depth))
            .collect();
        assert_eq!(
            names,
            vec![
                ("docs", 0),
                ("src", 0),
                ("src/bin", 1),
                ("src/bin/tool.rs", 2),
                ("src/lib.rs", 1),
                ("README.md", 0),
            ]
        );
        assert_eq!(target_folder(Some("src/lib.rs"), &tree), "src");
        assert_eq!(target_folder(Some("src/bin"), &tree), "src/bin");
        assert_eq!(target_folder(None, &tree), "");
    }
}
