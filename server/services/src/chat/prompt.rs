//! The system prompt of a mode, with the context it carries fenced, and the token estimate.

use super::*;

/// Estimated tokens of a text.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}

/// The system prompt: the mode's, then the context the user's message carries.
pub fn system_prompt(mode: &Mode, project: Option<&str>, context: &[ContextItem]) -> String {
    let mut prompt = mode.system_prompt.clone();
    if let Some(project) = project {
        prompt.push_str(&format!(
            "\n\nThe user is working in the project \"{project}\"."
        ));
    }
    let map: String = context
        .iter()
        .filter(|item| item.included && item.kind == "symbols")
        .map(|item| item.content.as_str())
        .collect();
    for item in context
        .iter()
        .filter(|item| item.included && item.kind != "symbols")
    {
        let fence = fence_for(&item.content);
        let language = item.language.as_deref().unwrap_or("");
        let heading = match item.kind.as_str() {
            "selection" => format!("The user selected {}:", item.label),
            "current_file" => format!("The file open in the user's editor is {}:", item.label),
            "error_location" => format!(
                "Lines {} (numbered; `>` marks the line), which the output the user attached points at:",
                item.label
            ),
            "recent_change" => format!("A recent change to {}:", item.label),
            "dependencies" => format!("The project's dependency manifest {}:", item.label),
            _ => format!("The file {}:", item.label),
        };
        prompt.push_str(&format!(
            "\n\n{heading}\n{fence}{language}\n{}\n{fence}",
            item.content.trim_end_matches('\n')
        ));
    }
    if !map.is_empty() {
        let fence = fence_for(&map);
        prompt.push_str(&format!(
            "\n\nA map of other files of the project, ranked by how they relate to this request, \
             with their most relevant definitions (`⋮` marks lines left out):\n{fence}\n{}\n{fence}",
            map.trim_end_matches('\n')
        ));
    }
    prompt
}

/// A code fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for character in text.chars() {
        if character == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}
