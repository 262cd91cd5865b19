//! The system prompt: the mode's, the project's rules (AGENTS.md and similar files), and how to
//! work.

use crate::cap::{OutputCap, cap_output};
use crate::workspace::Workspace;

/// The files whose text is the project's rules for agents, in this order.
pub const RULE_FILES: [&str; 4] = ["AGENTS.md", "CLAUDE.md", "CONVENTIONS.md", ".cursorrules"];

/// The prompt used when the mode has none.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a coding agent working alone on a task in a worktree of the project. Work with the tools: look at the code (list, grep, repo_map, read), keep a short plan with update_plan, change files with edit, write or apply_patch, and check your work by running the tests with run. When the task is done and checked, call finish with a summary and the evidence (the commands you ran and their results).";

/// The rule files present in the worktree, with their (capped) text.
pub async fn load_project_rules(workspace: &dyn Workspace) -> Vec<(String, String)> {
    let mut rules = Vec::new();
    for name in RULE_FILES {
        match workspace.read(name).await {
            Ok(Some(text)) if !text.trim().is_empty() => rules.push((
                name.to_owned(),
                cap_output(
                    &text,
                    OutputCap {
                        bytes: 8_000,
                        lines: 300,
                    },
                ),
            )),
            Ok(_) => {}
            Err(error) => tracing::debug!(%name, %error, "a rule file could not be read"),
        }
    }
    rules
}

/// The mode's prompt followed by the project's rules.
pub fn system_prompt(base: &str, rules: &[(String, String)]) -> String {
    let mut prompt = base.to_owned();
    for (name, text) in rules {
        prompt.push_str(&format!(
            "\n\n# The project's rules ({name})\n{}",
            text.trim_end()
        ));
    }
    prompt
}
