//! Wire types: the only data that crosses between server and browser.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The colour scheme a person chose. `System` follows the operating system's setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Light, Theme::Dark, Theme::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Theme::Light => "Light",
            Theme::Dark => "Dark",
            Theme::System => "System",
        }
    }

    /// The theme the header's toggle switches to next.
    pub fn next(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::System,
            Theme::System => Theme::Light,
        }
    }
}

impl fmt::Display for Theme {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Unknown theme \"{0}\": choose light, dark or system.")]
pub struct UnknownTheme(pub String);

impl FromStr for Theme {
    type Err = UnknownTheme;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            "system" => Ok(Theme::System),
            other => Err(UnknownTheme(other.chars().take(40).collect())),
        }
    }
}

/// The smallest and largest editor font sizes offered, in CSS pixels.
pub const EDITOR_FONT_SIZES: std::ops::RangeInclusive<u8> = 10..=24;
pub const DEFAULT_EDITOR_FONT_SIZE: u8 = 14;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFontSize {
    #[error("Enter the font size as a whole number of pixels.")]
    NotANumber,
    #[error("The font size must be between 10 and 24 pixels.")]
    OutOfRange,
}

/// Parses an editor font size typed by a person.
pub fn parse_editor_font_size(text: &str) -> Result<u8, InvalidFontSize> {
    let size: u32 = text
        .trim()
        .parse()
        .map_err(|_| InvalidFontSize::NotANumber)?;
    u8::try_from(size)
        .ok()
        .filter(|size| EDITOR_FONT_SIZES.contains(size))
        .ok_or(InvalidFontSize::OutOfRange)
}

/// A visitor's display preferences. Kept in cookies so that the server renders the page in the
/// right theme on the first byte (no flash), signed in or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    pub theme: Theme,
    pub editor_font_size: u8,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            theme: Theme::System,
            editor_font_size: DEFAULT_EDITOR_FONT_SIZE,
        }
    }
}

pub const THEME_COOKIE: &str = "theme";
pub const EDITOR_FONT_SIZE_COOKIE: &str = "editor_font_size";

impl Preferences {
    /// Reads the preferences from a `Cookie` request header; anything missing or invalid falls
    /// back to its default.
    pub fn from_cookie_header(header: &str) -> Self {
        let mut preferences = Self::default();
        for pair in header.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            match name {
                THEME_COOKIE => {
                    if let Ok(theme) = value.parse() {
                        preferences.theme = theme;
                    }
                }
                EDITOR_FONT_SIZE_COOKIE => {
                    if let Ok(size) = parse_editor_font_size(value) {
                        preferences.editor_font_size = size;
                    }
                }
                _ => {}
            }
        }
        preferences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn themes_parse_and_print() {
        for theme in Theme::ALL {
            assert_eq!(theme.as_str().parse::<Theme>(), Ok(theme));
        }
        let error = "purple".parse::<Theme>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "Unknown theme \"purple\": choose light, dark or system."
        );
        assert_eq!(Theme::Light.next().next().next(), Theme::Light);
    }

    #[test]
    fn font_sizes_are_checked() {
        assert_eq!(parse_editor_font_size(" 16 "), Ok(16));
        assert_eq!(parse_editor_font_size("10"), Ok(10));
        assert_eq!(parse_editor_font_size("24"), Ok(24));
        assert_eq!(
            parse_editor_font_size("9"),
            Err(InvalidFontSize::OutOfRange)
        );
        assert_eq!(
            parse_editor_font_size("300"),
            Err(InvalidFontSize::OutOfRange)
        );
        assert_eq!(
            parse_editor_font_size("12px"),
            Err(InvalidFontSize::NotANumber)
        );
        assert_eq!(parse_editor_font_size(""), Err(InvalidFontSize::NotANumber));
    }

    #[test]
    fn preferences_come_from_cookies_and_ignore_garbage() {
        assert_eq!(Preferences::from_cookie_header(""), Preferences::default());
        assert_eq!(
            Preferences::from_cookie_header("a=b; theme=dark; editor_font_size=18"),
            Preferences {
                theme: Theme::Dark,
                editor_font_size: 18
            }
        );
        assert_eq!(
            Preferences::from_cookie_header("theme=<script>; editor_font_size=99; junk"),
            Preferences::default()
        );
    }
}

/// What a signed-in person may do beyond their own data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    User,
    Admin,
}

/// The plan of an account. Visitors who are not signed in are "public" and have no account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserTier {
    Free,
    Premium,
    Enterprise,
}

/// The signed-in person, as the browser sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub tier: UserTier,
}

/// What the account page shows and edits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub email: String,
    pub name: String,
    pub avatar_url: Option<String>,
}

/// The AI services a person can add credentials for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderChoice {
    OpenAi,
    Anthropic,
    Gemini,
    OpenAiCompatible,
}

impl ProviderChoice {
    pub const ALL: [ProviderChoice; 4] = [
        ProviderChoice::OpenAi,
        ProviderChoice::Anthropic,
        ProviderChoice::Gemini,
        ProviderChoice::OpenAiCompatible,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderChoice::OpenAi => "openai",
            ProviderChoice::Anthropic => "anthropic",
            ProviderChoice::Gemini => "gemini",
            ProviderChoice::OpenAiCompatible => "openai_compatible",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ProviderChoice::OpenAi => "OpenAI",
            ProviderChoice::Anthropic => "Anthropic",
            ProviderChoice::Gemini => "Google Gemini",
            ProviderChoice::OpenAiCompatible => {
                "Local server (OpenAI-compatible: Ollama, llama.cpp, vLLM)"
            }
        }
    }
}

/// How a provider kind name (`openai_compatible`, as the server sends it) reads in the page:
/// never the internal name.
pub fn provider_display_name(kind: &str) -> String {
    match kind.parse::<ProviderChoice>() {
        Ok(ProviderChoice::OpenAiCompatible) => "Local server".to_owned(),
        Ok(ProviderChoice::Gemini) => "Gemini".to_owned(),
        Ok(choice) => choice.label().to_owned(),
        Err(_) => kind.to_owned(),
    }
}

impl FromStr for ProviderChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ProviderChoice::ALL
            .into_iter()
            .find(|choice| choice.as_str() == text)
            .ok_or_else(|| "Choose OpenAI, Anthropic, Google Gemini or a local server.".to_owned())
    }
}

/// A stored provider credential as the browser sees it: the key itself never, only its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCredential {
    pub id: String,
    pub provider: ProviderChoice,
    pub label: String,
    pub base_url: Option<String>,
    pub key_last_four: Option<String>,
    pub status: String,
}

/// What testing a saved key found: whether the provider accepted it, in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialTestResult {
    pub ok: bool,
    pub message: String,
}

/// A model the person can pick, with the name that routes to it and what it costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiModel {
    /// What to send as the model name (`gpt-4o`, or `<label>/<model>` for a local server).
    pub route: String,
    pub display_name: String,
    pub provider: String,
    pub credential_label: String,
    pub context_window: Option<u64>,
    pub tools: bool,
    /// US dollars per million input and output tokens; `None` when unknown.
    pub input_price: Option<String>,
    pub output_price: Option<String>,
}

/// The models the person's providers offer, and the providers that could not be asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiModels {
    pub models: Vec<AiModel>,
    pub problems: Vec<String>,
}

/// One recorded AI call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub at: String,
    pub provider: String,
    pub model: String,
    pub mode: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: String,
    pub outcome: String,
}

/// What the person used today and this month, and their latest calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSummary {
    pub requests_today: u64,
    pub tokens_today: u64,
    pub cost_today: String,
    pub requests_this_month: u64,
    pub tokens_this_month: u64,
    pub cost_this_month: String,
    pub recent: Vec<UsageRow>,
}

/// An account as administrators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub tier: UserTier,
    pub disabled: bool,
    pub created_at: String,
}

/// One audit log row, for administrators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub created_at: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
        }
    }
}

impl UserTier {
    pub const ALL: [UserTier; 3] = [UserTier::Free, UserTier::Premium, UserTier::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            UserTier::Free => "free",
            UserTier::Premium => "premium",
            UserTier::Enterprise => "enterprise",
        }
    }
}

/// A personal access token as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
    pub revoked: bool,
    /// What it may do: `ai`, `read`, `write`.
    pub scopes: Vec<String>,
}

/// A token just created, with its secret: the only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedAccessToken {
    pub token: AccessToken,
    pub secret: String,
}

/// A project on the dashboard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub repository_url: Option<String>,
    /// When a file or a field last changed, `YYYY-MM-DD HH:MM UTC`.
    pub updated_at: String,
}

/// A file in the workspace's tree (no content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFile {
    pub id: String,
    pub path: String,
    pub version: i64,
    pub size_bytes: i64,
    pub binary: bool,
}

/// A project's whole tree, each list sorted by path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeListing {
    pub folders: Vec<String>,
    pub files: Vec<TreeFile>,
}

/// A file opened in the editor. A binary file has no text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedFile {
    pub id: String,
    pub path: String,
    pub version: i64,
    /// Monaco's language id, from the file name.
    pub language: Option<String>,
    pub content: Option<String>,
    pub size_bytes: i64,
    pub binary: bool,
}

/// How a save (or a restore) ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaveResult {
    Saved {
        version: i64,
    },
    /// Someone saved since the version this save was based on; nothing was overwritten. Holds
    /// the file as it is now.
    Conflict {
        current: OpenedFile,
    },
}

/// One revision in a file's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSummary {
    pub id: String,
    pub version: i64,
    pub size_bytes: i64,
    /// user, agent, import or restore.
    pub source: String,
    pub author: Option<String>,
    pub created_at: String,
}

/// A revision's content (none for a binary file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionContent {
    pub id: String,
    pub version: i64,
    pub content: Option<String>,
}

/// A line that matched a project-wide search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub file_id: String,
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub preview: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchOutcome {
    pub hits: Vec<SearchHit>,
    pub truncated: bool,
    pub files_searched: usize,
}

/// A mode of the chat: built-in (`id` is `None`) or the person's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMode {
    pub id: Option<String>,
    pub name: String,
    pub label: String,
    pub description: String,
    pub system_prompt: String,
    pub models: Vec<String>,
    pub send_current_file: bool,
    pub send_selection: bool,
    pub max_context_tokens: u32,
    pub tools: Vec<String>,
    /// `markdown`, `plan`, `review` or `agent`.
    pub output: String,
    /// `false` for a mode that is coming (shown, not usable).
    pub available: bool,
    /// Why the person's plan does not include this mode (shown before sending, never refused
    /// after); `None` when it may be used.
    pub plan_refusal: Option<String>,
}

/// A mode as its owner writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeDraft {
    pub name: String,
    pub label: String,
    pub description: String,
    pub system_prompt: String,
    /// One model name per line or comma-separated.
    pub models: String,
    pub send_current_file: bool,
    pub send_selection: bool,
    pub max_context_tokens: u32,
    pub output: String,
}

/// What the chat panel needs to start: modes, models and the default model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSetup {
    pub modes: Vec<ChatMode>,
    pub models: Vec<AiModel>,
    /// Providers whose model list could not be read.
    pub problems: Vec<String>,
    pub default_model: Option<String>,
    /// `false` when the person has no provider at all.
    pub has_provider: bool,
}

/// A conversation in the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub id: String,
    pub project_id: Option<String>,
    pub title: String,
    pub mode: String,
    pub model: Option<String>,
    pub updated_at: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Dollars, e.g. `$0.0123`.
    pub cost: String,
}

/// Context sent with a message (or offered for the next one): what, why, how relevant, and its
/// cost in tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextEntry {
    /// `selection`, `current_file`, `file`, `error_location`, `recent_change`, `dependencies` or
    /// `symbols` (a file's part of the repo map).
    pub kind: String,
    /// What a pin or a drop is kept under.
    pub key: String,
    pub label: String,
    pub reason: String,
    /// Relevance in thousandths.
    pub score: u32,
    pub tokens: u32,
    pub included: bool,
    /// `pinned` or `dropped`.
    pub choice: Option<String>,
    pub language: Option<String>,
    pub content: String,
}

/// Files the index leaves out for one reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOutEntry {
    pub reason: String,
    pub count: u32,
    pub examples: Vec<String>,
}

/// Where a project's context index stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexState {
    /// `loading`, `indexing`, `ready` or `failed`.
    pub phase: String,
    pub done: usize,
    pub total: usize,
    pub files: usize,
    pub excluded: usize,
}

/// The context the next message would carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextPreview {
    pub items: Vec<ContextEntry>,
    pub budget: u32,
    pub used: u32,
    pub tokenizer: String,
    pub left_out: Vec<LeftOutEntry>,
    /// `None` without a project.
    pub index: Option<IndexState>,
}

/// A model tried before the one that answered, and why it did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallbackEntry {
    pub provider: String,
    pub model: String,
    pub reason: String,
}

/// Token figures of an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// A stored chat message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// `streaming`, `complete`, `interrupted` or `failed`.
    pub status: String,
    pub mode: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub fallback: Vec<FallbackEntry>,
    pub tokens: Option<TokenCounts>,
    /// Dollars, when the price is known.
    pub cost: Option<String>,
    pub reason: Option<String>,
    pub reasoning: Option<String>,
    pub context: Vec<ContextEntry>,
    pub system_prompt: Option<String>,
    pub created_at: String,
}

/// A conversation with its messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationView {
    pub conversation: ConversationSummary,
    pub messages: Vec<ChatMessage>,
}

/// The file open in the editor, sent with a message as context.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorContext {
    pub path: String,
    pub language: Option<String>,
    pub content: String,
    /// 1-based, inclusive.
    pub selection_start_line: Option<u32>,
    pub selection_end_line: Option<u32>,
    pub selection: Option<String>,
}

/// The question stored and the answer started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub question: ChatMessage,
    pub answer: ChatMessage,
    /// The conversation's title after the send (the first message names it).
    pub title: String,
}

/// One event of an answer's stream (`GET /api/chat/answers/<id>/events`), numbered by the SSE
/// `id` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// A wire type that lives for one event: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnswerEvent {
    /// The text so far of an answer being continued.
    Resumed {
        text: String,
    },
    Answering {
        provider: String,
        model: String,
        fallback: Vec<FallbackEntry>,
    },
    Text {
        text: String,
    },
    Reasoning {
        text: String,
    },
    Finished {
        status: String,
        reason: Option<String>,
        tokens: Option<TokenCounts>,
        cost: Option<String>,
        system_prompt: Option<String>,
    },
    /// The answer is not being generated: here it is as stored.
    Stored {
        message: ChatMessage,
    },
}

/// Micro-dollars as dollars, to the hundredth of a cent.
pub fn dollars(micros: u64) -> String {
    format!("${}.{:04}", micros / 1_000_000, (micros % 1_000_000) / 100)
}

/// One layer of the command sandbox as the server probed it at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxLayer {
    pub name: String,
    pub available: bool,
    pub detail: String,
}

/// Whether this server may run project commands, and with what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerInfo {
    pub available: bool,
    /// Why commands cannot run here.
    pub reason: Option<String>,
    /// What an operator can do about it.
    pub fix: Option<String>,
    /// `uid:gid` commands run as.
    pub identity: Option<String>,
    /// The isolation runs get (`Bubblewrap`, `Namespaces`).
    pub isolation: Option<String>,
    /// Each layer, for administrators (empty for others).
    pub layers: Vec<SandboxLayer>,
}

/// A command of a project: saved, or suggested by its files (never run unasked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectCommand {
    pub name: String,
    pub command_line: String,
    /// Suggested from a file, not saved.
    pub suggested: bool,
    /// The file that suggested it.
    pub source: Option<String>,
}

/// How a run of a project's command ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRunOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    pub timed_out: bool,
    pub stopped: bool,
    /// Output bytes left out between each stream's head and tail.
    pub omitted_bytes: u64,
}

/// One run of a project's command, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRunSummary {
    pub id: String,
    /// `running`, `finished`, `interrupted`, `failed`.
    pub state: String,
    pub command_name: String,
    pub command_line: String,
    pub revision: String,
    pub created_at: String,
    pub outcome: Option<CommandRunOutcome>,
    pub failure: Option<String>,
}

/// What the Run panel shows of a project.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRunner {
    pub runner: RunnerInfo,
    pub commands: Vec<ProjectCommand>,
    /// The last runs, newest first.
    pub runs: Vec<CommandRunSummary>,
    /// Administrators may run a command line typed for one run.
    pub free_text_allowed: bool,
}

/// An event of a command run, as `GET /api/runs/<id>/events` sends it (its SSE id is its number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandRunEvent {
    Started {
        command_name: String,
        command_line: String,
        revision: String,
        files: u64,
        files_written: u64,
        isolation: String,
    },
    /// `stream` is `stdout` or `stderr`.
    Output {
        stream: String,
        text: String,
    },
    Omitted {
        stream: String,
        bytes: u64,
    },
    Finished(CommandRunOutcome),
    Failed {
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Async tasks (`/api/tasks` and the `/api/tasks/...` server functions). The shapes are the
// server's JSON; `server/tests/agent_tasks.rs` reads real responses into these types.
// ---------------------------------------------------------------------------------------------

/// Why a task waits for the person (`paused`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskPauseReason {
    /// A budget ran out: `steps`, `tokens`, `cost` or `wall_time`.
    Budget { which: String },
    /// The agent repeats itself (`repeated_action`, `repeated_error`, `ping_pong`,
    /// `monologue`); `steps` tripped it.
    Stuck { reason: String, steps: Vec<u64> },
    /// The person asked for it.
    Requested,
    /// Every model failed.
    ModelFailed { message: String },
}

impl TaskPauseReason {
    /// What a person reads.
    pub fn describe(&self) -> String {
        match self {
            TaskPauseReason::Budget { which } => {
                let which = match which.as_str() {
                    "steps" => "step",
                    "tokens" => "token",
                    "cost" => "cost",
                    "wall_time" => "time",
                    other => other,
                };
                format!("Its {which} budget ran out: continue with more budget.")
            }
            TaskPauseReason::Stuck { reason, steps } => {
                let how = match reason.as_str() {
                    "repeated_action" => "it repeated the same action with the same result",
                    "repeated_error" => "it got the same error again and again",
                    "ping_pong" => "it went back and forth between two actions",
                    "monologue" => "it kept talking without using a tool",
                    other => other,
                };
                let steps: Vec<String> = steps.iter().map(u64::to_string).collect();
                format!(
                    "The agent looks stuck: {how} (steps {}). Tell it what to do differently, or resume.",
                    steps.join(", ")
                )
            }
            TaskPauseReason::Requested => "Paused at your request.".to_owned(),
            TaskPauseReason::ModelFailed { message } => {
                format!("Every model failed: {message}")
            }
        }
    }

    /// Whether more budget is what it needs.
    pub fn is_budget(&self) -> bool {
        matches!(self, TaskPauseReason::Budget { .. })
    }
}

/// A task's limits (`None`: no limit of the task's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLimits {
    pub max_steps: Option<i64>,
    pub max_tokens: Option<i64>,
    pub max_cost_micros: Option<i64>,
    pub max_wall_time_seconds: Option<i64>,
}

/// A task in the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub id: String,
    pub project_id: String,
    pub title: String,
    /// `running`, `paused`, `finished`, `cancelled` or `failed`.
    pub state: String,
    pub pause_reason: Option<TaskPauseReason>,
    /// The agent's summary once it finished.
    pub summary: Option<String>,
    pub steps: i64,
    pub tokens: i64,
    pub cost_micros: i64,
    pub limits: TaskLimits,
    pub created_at: String,
    pub last_activity_at: String,
    pub ended_at: Option<String>,
}

impl TaskSummary {
    /// The state as a person reads it (`paused` is "needs input" unless the person paused it).
    pub fn state_label(&self) -> &'static str {
        match self.state.as_str() {
            "running" => "Running",
            "paused" => match self.pause_reason {
                Some(TaskPauseReason::Requested) => "Paused",
                _ => "Needs input",
            },
            "finished" => "Finished",
            "cancelled" => "Cancelled",
            "failed" => "Failed",
            _ => "Unknown",
        }
    }

    /// Whether nothing more will happen unless the person acts.
    pub fn is_settled(&self) -> bool {
        self.state != "running"
    }
}

/// A step of the visible plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPlanItem {
    pub text: String,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
}

/// How a command of the task ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskCommandStatus {
    Exited { code: Option<i32> },
    Denied { reason: String },
    TimedOut,
    Interrupted,
}

impl TaskCommandStatus {
    pub fn describe(&self) -> String {
        match self {
            TaskCommandStatus::Exited { code: Some(code) } => format!("exit {code}"),
            TaskCommandStatus::Exited { code: None } => "ended by a signal".to_owned(),
            TaskCommandStatus::Denied { reason } => format!("refused: {reason}"),
            TaskCommandStatus::TimedOut => "timed out".to_owned(),
            TaskCommandStatus::Interrupted => "interrupted".to_owned(),
        }
    }

    pub fn succeeded(&self) -> bool {
        *self == TaskCommandStatus::Exited { code: Some(0) }
    }
}

/// A command the agent ran: the change set's evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCommandOutcome {
    pub status: TaskCommandStatus,
    pub duration_milliseconds: u64,
    pub output: String,
}

/// A tool call of a model response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskToolCall {
    pub id: String,
    pub name: String,
    /// The JSON text of the arguments.
    pub arguments: String,
}

/// Token counts of a model response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

/// A model's response in the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskModelResponse {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub tool_calls: Vec<TaskToolCall>,
    #[serde(default)]
    pub usage: TaskUsage,
    #[serde(default)]
    pub cost_micros: u64,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
}

/// A file a tool call changes (its content stays on the server's side of the timeline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFileEffect {
    pub path: String,
}

/// One record of a task's timeline, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskEntry {
    /// The instructions, or a follow-up.
    UserMessage {
        text: String,
    },
    ModelResponse {
        step: u64,
        response: TaskModelResponse,
    },
    ToolStarted {
        step: u64,
        call_id: String,
        name: String,
        #[serde(default)]
        effects: Vec<TaskFileEffect>,
    },
    ToolDone {
        step: u64,
        call_id: String,
        name: String,
        /// `ok`, `error`, `interrupted` or `conflict`.
        status: String,
        /// What the model was told (capped).
        content: String,
        #[serde(default)]
        plan: Option<Vec<TaskPlanItem>>,
        #[serde(default)]
        command: Option<TaskCommandOutcome>,
    },
    Compaction {
        step: u64,
        summary: String,
    },
    Paused {
        step: u64,
        reason: TaskPauseReason,
    },
    Resumed {
        note: Option<String>,
    },
    Cancelled {
        step: u64,
    },
    /// A record this page does not know (a newer server).
    #[serde(other)]
    Other,
}

/// A numbered record of the timeline (its number is its SSE id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTimelineEntry {
    pub seq: i64,
    pub entry: TaskEntry,
}

/// The task page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: TaskSummary,
    pub instructions: String,
    pub plan: Vec<TaskPlanItem>,
    /// Each command the agent ran and how it ended.
    pub commands: Vec<(String, TaskCommandOutcome)>,
    pub timeline: Vec<TaskTimelineEntry>,
}

/// One contiguous change of a file in a change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskHunk {
    /// The base's lines it replaces (0-based, end excluded).
    pub base_range: std::ops::Range<usize>,
    /// The new lines' place in the task's version (0-based, end excluded).
    pub new_range: std::ops::Range<usize>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

/// One file of a task's change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFileChange {
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub operation: String,
    pub base: Option<String>,
    pub current: Option<String>,
    pub hunks: Vec<TaskHunk>,
}

/// What the person decided for one file: a flag per hunk, or the whole text as they edited it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFileDecision {
    pub path: String,
    pub accepted: Vec<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Hunks of a file that could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskConflict {
    pub path: String,
    pub hunks: Vec<usize>,
}

/// What applying a change set did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskApplyReport {
    pub applied: Vec<String>,
    pub conflicts: Vec<TaskConflict>,
}
