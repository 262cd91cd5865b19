//! Modes: the built-in ones (a data file in the binary) and each user's own (stored). A mode is
//! data: prompt, suggested models, context policy, tools, output handling.

use chrono::Utc;
use db::ids::ModeId;
use serde::{Deserialize, Serialize};

use crate::project_context::ContextPolicy;
use crate::{AuthenticatedUser, Error, Services};

const BUILTIN_MODES: &str = include_str!("../../data/modes.toml");

/// The name the tier policy knows user-defined modes by.
pub const CUSTOM_MODE_TIER_NAME: &str = "custom";

/// How a mode's answer is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Output {
    /// Markdown with code blocks that can be applied to files.
    Markdown,
    /// A plan before code.
    Plan,
    /// Review comments with `path:line` references.
    Review,
    /// Handed to the autonomous agent.
    Agent,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Markdown => "markdown",
            Output::Plan => "plan",
            Output::Review => "review",
            Output::Agent => "agent",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "markdown" => Some(Output::Markdown),
            "plan" => Some(Output::Plan),
            "review" => Some(Output::Review),
            "agent" => Some(Output::Agent),
            _ => None,
        }
    }
}

/// The most context tokens a mode may ask for.
pub const MAX_CONTEXT_TOKENS: u32 = 200_000;

/// Tools a mode may name (the autonomous agent uses them).
pub const KNOWN_TOOLS: &[&str] = &["read_file", "search", "write_file", "run_tests"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mode {
    /// `None` for a built-in mode.
    pub id: Option<ModeId>,
    pub name: String,
    pub label: String,
    pub description: String,
    pub system_prompt: String,
    pub models: Vec<String>,
    pub context: ContextPolicy,
    pub tools: Vec<String>,
    pub output: Output,
    /// `false` for a mode whose machinery has not landed yet (shown as coming).
    pub available: bool,
}

impl Mode {
    pub fn builtin(&self) -> bool {
        self.id.is_none()
    }

    /// The name the tier policy checks.
    pub fn tier_name(&self) -> &str {
        if self.builtin() {
            &self.name
        } else {
            CUSTOM_MODE_TIER_NAME
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    modes: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    label: String,
    description: String,
    system_prompt: String,
    models: Vec<String>,
    context: ContextPolicy,
    tools: Vec<String>,
    output: Output,
    #[serde(default = "yes")]
    available: bool,
}

fn yes() -> bool {
    true
}

/// The built-in modes, in the selector's order.
pub fn builtin_modes() -> Result<Vec<Mode>, Error> {
    let file: File = toml::from_str(BUILTIN_MODES)
        .map_err(|error| Error::Internal(format!("data/modes.toml: {error}")))?;
    Ok(file
        .modes
        .into_iter()
        .map(|entry| Mode {
            id: None,
            name: entry.name,
            label: entry.label,
            description: entry.description,
            system_prompt: entry.system_prompt.trim().to_owned(),
            models: entry.models,
            context: entry.context,
            tools: entry.tools,
            output: entry.output,
            available: entry.available,
        })
        .collect())
}

/// A mode as its owner writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModeInput {
    pub name: String,
    pub label: String,
    pub description: String,
    pub system_prompt: String,
    pub models: Vec<String>,
    pub context: Option<ContextPolicy>,
    pub tools: Vec<String>,
    pub output: String,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

/// Checks and normalises a user's mode; the message says what to change.
pub fn validate(input: ModeInput, builtin_names: &[String]) -> Result<db::ModeFields, Error> {
    let name = input.name.trim().to_lowercase();
    if name.is_empty() || name.len() > 40 {
        return Err(invalid("A mode needs a name of 1 to 40 characters."));
    }
    if !name.chars().all(|character| {
        character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
    }) || name.starts_with('-')
    {
        return Err(invalid(
            "A mode's name may hold only lowercase letters, digits and dashes (like code-golf).",
        ));
    }
    if builtin_names.contains(&name) {
        return Err(invalid(format!(
            "\"{name}\" is a built-in mode; choose another name."
        )));
    }
    let label = match input.label.trim() {
        "" => name.clone(),
        label if label.chars().count() > 60 => {
            return Err(invalid("A mode's label may be 60 characters at most."));
        }
        label => label.to_owned(),
    };
    let description = input.description.trim().to_owned();
    if description.chars().count() > 300 {
        return Err(invalid(
            "A mode's description may be 300 characters at most.",
        ));
    }
    let system_prompt = input.system_prompt.trim().to_owned();
    if system_prompt.is_empty() {
        return Err(invalid(
            "A mode needs a system prompt: what the model should do.",
        ));
    }
    if system_prompt.chars().count() > 20_000 {
        return Err(invalid(
            "A mode's system prompt may be 20,000 characters at most.",
        ));
    }
    let mut models: Vec<String> = Vec::new();
    for model in input.models {
        let model = model.trim().to_owned();
        if model.is_empty() || models.contains(&model) {
            continue;
        }
        if model.len() > 200 || model.chars().any(char::is_whitespace) {
            return Err(invalid(format!("\"{model}\" is not a model name.")));
        }
        models.push(model);
    }
    if models.len() > 8 {
        return Err(invalid("A mode may suggest 8 models at most."));
    }
    let context = input.context.unwrap_or_default();
    if context.max_tokens > MAX_CONTEXT_TOKENS {
        return Err(invalid(format!(
            "A mode may send {MAX_CONTEXT_TOKENS} context tokens at most."
        )));
    }
    let mut tools: Vec<String> = Vec::new();
    for tool in input.tools {
        let tool = tool.trim().to_owned();
        if tool.is_empty() || tools.contains(&tool) {
            continue;
        }
        if !KNOWN_TOOLS.contains(&tool.as_str()) {
            return Err(invalid(format!(
                "Unknown tool \"{tool}\"; known tools: {}.",
                KNOWN_TOOLS.join(", ")
            )));
        }
        tools.push(tool);
    }
    let output = match input.output.trim() {
        "" => Output::Markdown,
        text => Output::parse(text)
            .ok_or_else(|| invalid("A mode's output is one of markdown, plan or review."))?,
    };
    if output == Output::Agent {
        return Err(invalid(
            "Agent output belongs to the async mode; choose markdown, plan or review.",
        ));
    }
    Ok(db::ModeFields {
        name,
        label,
        description,
        system_prompt,
        models: serde_json::json!(models),
        context: serde_json::to_value(context)
            .map_err(|error| Error::Internal(error.to_string()))?,
        tools: serde_json::json!(tools),
        output: output.as_str().to_owned(),
    })
}

fn strings_of(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn from_row(row: db::tables::modes::Model) -> Mode {
    Mode {
        id: Some(row.id),
        name: row.name,
        label: row.label,
        description: row.description,
        system_prompt: row.system_prompt,
        models: strings_of(&row.models),
        context: serde_json::from_value(row.context).unwrap_or_default(),
        tools: strings_of(&row.tools),
        output: Output::parse(&row.output).unwrap_or(Output::Markdown),
        available: true,
    }
}

impl Services {
    /// The built-in modes, then the user's own.
    pub async fn modes(&self, user: &AuthenticatedUser) -> Result<Vec<Mode>, Error> {
        let mut modes = builtin_modes()?;
        modes.extend(
            self.database
                .modes_of(user.id)
                .await?
                .into_iter()
                .map(from_row),
        );
        Ok(modes)
    }

    /// The mode with this name for this user; `NotFound` when there is none.
    pub async fn mode_named(&self, user: &AuthenticatedUser, name: &str) -> Result<Mode, Error> {
        self.modes(user)
            .await?
            .into_iter()
            .find(|mode| mode.name == name)
            .ok_or(Error::NotFound)
    }

    /// Checks a mode the user writes: valid, and its name not taken by another of theirs
    /// (`except` is the mode being changed).
    async fn checked_mode(
        &self,
        user: &AuthenticatedUser,
        input: ModeInput,
        except: Option<ModeId>,
    ) -> Result<db::ModeFields, Error> {
        let builtin: Vec<String> = builtin_modes()?.into_iter().map(|mode| mode.name).collect();
        let fields = validate(input, &builtin)?;
        if self
            .database
            .modes_of(user.id)
            .await?
            .iter()
            .any(|mode| mode.name == fields.name && Some(mode.id) != except)
        {
            return Err(Error::Conflict(format!(
                "You have a mode named \"{}\" already.",
                fields.name
            )));
        }
        Ok(fields)
    }

    pub async fn create_mode(
        &self,
        user: &AuthenticatedUser,
        input: ModeInput,
    ) -> Result<Mode, Error> {
        let fields = self.checked_mode(user, input, None).await?;
        let row = self
            .database
            .create_mode(user.id, fields, Utc::now())
            .await?;
        Ok(from_row(row))
    }

    pub async fn update_mode(
        &self,
        user: &AuthenticatedUser,
        id: ModeId,
        input: ModeInput,
    ) -> Result<Mode, Error> {
        let fields = self.checked_mode(user, input, Some(id)).await?;
        let row = self
            .database
            .update_mode(user.id, id, fields, Utc::now())
            .await?
            .ok_or(Error::NotFound)?;
        Ok(from_row(row))
    }

    pub async fn delete_mode(&self, user: &AuthenticatedUser, id: ModeId) -> Result<(), Error> {
        if self.database.delete_mode(user.id, id).await? {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_modes_are_the_seven_of_the_product() {
        let modes = builtin_modes().unwrap();
        let names: Vec<&str> = modes.iter().map(|mode| mode.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "chat",
                "ask",
                "debug",
                "documentation",
                "architect",
                "review",
                "async"
            ]
        );
        assert!(modes.iter().all(|mode| !mode.system_prompt.is_empty()));
        let unavailable: Vec<&str> = modes
            .iter()
            .filter(|mode| !mode.available)
            .map(|mode| mode.name.as_str())
            .collect();
        assert!(unavailable.is_empty(), "{unavailable:?}");
        for mode in &modes {
            for tool in &mode.tools {
                assert!(KNOWN_TOOLS.contains(&tool.as_str()), "{tool}");
            }
        }
    }

    fn input(name: &str) -> ModeInput {
        ModeInput {
            name: name.into(),
            system_prompt: "Answer in haiku.".into(),
            ..ModeInput::default()
        }
    }

    #[test]
    fn user_modes_are_checked() {
        let builtin = vec!["chat".to_owned()];
        let fields = validate(
            ModeInput {
                models: vec![" gpt-4.1 ".into(), "gpt-4.1".into(), String::new()],
                tools: vec!["search".into()],
                ..input(" Haiku-2 ")
            },
            &builtin,
        )
        .unwrap();
        assert_eq!(fields.name, "haiku-2");
        assert_eq!(fields.label, "haiku-2");
        assert_eq!(fields.models, serde_json::json!(["gpt-4.1"]));
        assert_eq!(fields.output, "markdown");
        for (bad, expected) in [
            (input("chat"), "built-in"),
            (input("has space"), "lowercase letters"),
            (input(""), "name"),
            (
                ModeInput {
                    system_prompt: " ".into(),
                    ..input("x")
                },
                "system prompt",
            ),
            (
                ModeInput {
                    tools: vec!["rm_rf".into()],
                    ..input("x")
                },
                "Unknown tool",
            ),
            (
                ModeInput {
                    output: "agent".into(),
                    ..input("x")
                },
                "async mode",
            ),
            (
                ModeInput {
                    output: "poem".into(),
                    ..input("x")
                },
                "markdown, plan or review",
            ),
            (
                ModeInput {
                    context: Some(ContextPolicy {
                        max_tokens: MAX_CONTEXT_TOKENS + 1,
                        ..ContextPolicy::default()
                    }),
                    ..input("x")
                },
                "context tokens",
            ),
            (
                ModeInput {
                    models: vec!["two words".into()],
                    ..input("x")
                },
                "not a model name",
            ),
        ] {
            let error = validate(bad, &builtin).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{error} should mention {expected}"
            );
        }
    }
}
