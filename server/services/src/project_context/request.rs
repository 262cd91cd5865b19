//! What a chat message asks of the context: what the browser sends along (the file open in the
//! editor, its selection), checked, and the mode's policy (which sources, how many tokens).
//! Defined here, below the chat, so that choosing context depends on nothing of the chat.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The largest file or selection a message may carry, in characters.
pub const MAX_CONTEXT_CHARS: usize = 1_000_000;

/// What the browser sends along with a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextInput {
    pub current_file: Option<CurrentFile>,
}

/// The file open in the editor, as the editor holds it (saved or not).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentFile {
    pub path: String,
    pub language: Option<String>,
    pub content: String,
    pub selection: Option<Selection>,
}

/// Selected lines (1-based, inclusive) and their text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub start_line: u32,
    pub end_line: u32,
    pub text: String,
}

pub(crate) fn check_context(input: &ContextInput) -> Result<(), Error> {
    if let Some(file) = &input.current_file {
        if file.path.len() > 1024 {
            return Err(Error::Invalid("That file path is too long.".into()));
        }
        let selection = file
            .selection
            .as_ref()
            .map_or(0, |selection| selection.text.len());
        if file.content.len() > MAX_CONTEXT_CHARS || selection > MAX_CONTEXT_CHARS {
            return Err(Error::Invalid(
                "The current file is too large to send with a message.".into(),
            ));
        }
    }
    Ok(())
}

/// Which context a mode sends, and at most how many tokens of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextPolicy {
    pub current_file: bool,
    pub selection: bool,
    pub max_tokens: u32,
    /// The repo map: the project's files ranked for the request, with their definitions.
    #[serde(default = "yes")]
    pub repo_map: bool,
    /// Places that errors, logs and test output in the message point at.
    #[serde(default = "yes")]
    pub errors: bool,
    /// The last change of recently changed files.
    #[serde(default = "yes")]
    pub recent_changes: bool,
    /// Dependency manifests (Cargo.toml, package.json, ...).
    #[serde(default = "yes")]
    pub manifests: bool,
}

impl Default for ContextPolicy {
    fn default() -> Self {
        Self {
            current_file: true,
            selection: true,
            max_tokens: 8000,
            repo_map: true,
            errors: true,
            recent_changes: true,
            manifests: true,
        }
    }
}

fn yes() -> bool {
    true
}
