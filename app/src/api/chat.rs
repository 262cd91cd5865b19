//! Chat: conversations, messages, modes and the default model. Answers stream from
//! `GET /api/chat/answers/<id>/events` (served by the server crate, see `chat_stream`), not
//! from a server function.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::error::AppError;
use crate::types::{
    ChatMessage, ChatMode, ChatSetup, ContextPreview, ConversationSummary, ConversationView,
    EditorContext, IndexState, ModeDraft, SentMessage,
};
#[cfg(feature = "ssr")]
use crate::types::{ContextEntry, FallbackEntry, LeftOutEntry, TokenCounts, dollars};

#[cfg(feature = "ssr")]
fn conversation_id(text: &str) -> Result<db::ids::ConversationId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

#[cfg(feature = "ssr")]
fn message_id(text: &str) -> Result<db::ids::MessageId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

#[cfg(feature = "ssr")]
fn mode_id(text: &str) -> Result<db::ids::ModeId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

#[cfg(feature = "ssr")]
fn optional_project(text: Option<String>) -> Result<Option<db::ids::ProjectId>, AppError> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => super::projects::project_id(text).map(Some),
    }
}

#[cfg(feature = "ssr")]
pub fn summary_of(entry: db::ConversationEntry) -> ConversationSummary {
    let conversation = entry.conversation;
    ConversationSummary {
        id: conversation.id.to_string(),
        project_id: conversation.project_id.map(|id| id.to_string()),
        title: conversation.title,
        mode: conversation.mode,
        model: conversation.model,
        updated_at: conversation.updated_at.to_rfc3339(),
        input_tokens: entry.totals.input_tokens,
        output_tokens: entry.totals.output_tokens,
        cost: dollars(entry.totals.cost_micros),
    }
}

#[cfg(feature = "ssr")]
fn bare_summary(conversation: db::tables::conversations::Model) -> ConversationSummary {
    summary_of(db::ConversationEntry {
        conversation,
        totals: db::ConversationTotals::default(),
    })
}

#[cfg(feature = "ssr")]
fn tokens_of(usage: services::Usage) -> TokenCounts {
    TokenCounts {
        input: usage.input_tokens,
        output: usage.output_tokens,
        cache_read: usage.cache_read_tokens,
        cache_write: usage.cache_write_tokens,
        reasoning: usage.reasoning_tokens,
    }
}

#[cfg(feature = "ssr")]
fn fallback_of(notes: Vec<services::chat::FallbackNote>) -> Vec<FallbackEntry> {
    notes
        .into_iter()
        .map(|note| FallbackEntry {
            provider: note.provider,
            model: note.model,
            reason: note.reason,
        })
        .collect()
}

#[cfg(feature = "ssr")]
fn status_name(status: db::tables::messages::MessageStatus) -> String {
    use db::tables::messages::MessageStatus;
    match status {
        MessageStatus::Streaming => "streaming",
        MessageStatus::Complete => "complete",
        MessageStatus::Interrupted => "interrupted",
        MessageStatus::Failed => "failed",
    }
    .to_owned()
}

/// The wire form of a stored message.
#[cfg(feature = "ssr")]
pub fn message_of(message: services::chat::ChatMessage) -> ChatMessage {
    use db::tables::messages::MessageRole;
    let meta = message.meta;
    let message = message.message;
    ChatMessage {
        id: message.id.to_string(),
        role: match message.role {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::System => "system",
            MessageRole::Tool => "tool",
        }
        .to_owned(),
        content: message.content,
        status: status_name(message.status),
        mode: meta.mode,
        provider: meta.provider,
        model: meta.model,
        fallback: fallback_of(meta.fallback),
        tokens: meta.usage.map(tokens_of),
        cost: meta.cost_micros.map(dollars),
        reason: meta.reason,
        reasoning: meta.reasoning,
        context: meta.context.into_iter().map(context_entry).collect(),
        system_prompt: meta.system_prompt,
        created_at: message.created_at.to_rfc3339(),
    }
}

/// The wire form of an answer's event.
#[cfg(feature = "ssr")]
pub fn event_of(event: services::chat::live::AnswerEvent) -> crate::types::AnswerEvent {
    use crate::types::AnswerEvent as Wire;
    use services::chat::live::AnswerEvent;
    match event {
        AnswerEvent::Resumed { text } => Wire::Resumed { text },
        AnswerEvent::Answering {
            provider,
            model,
            fallback,
        } => Wire::Answering {
            provider,
            model,
            fallback: fallback_of(fallback),
        },
        AnswerEvent::Text(text) => Wire::Text { text },
        AnswerEvent::Reasoning(text) => Wire::Reasoning { text },
        AnswerEvent::Finished {
            status,
            reason,
            usage,
            cost_micros,
            system_prompt,
        } => Wire::Finished {
            status: status_name(status),
            reason,
            tokens: usage.map(tokens_of),
            cost: cost_micros.map(dollars),
            system_prompt,
        },
    }
}

#[cfg(feature = "ssr")]
fn mode_of(mode: services::chat::Mode) -> ChatMode {
    ChatMode {
        id: mode.id.map(|id| id.to_string()),
        name: mode.name,
        label: mode.label,
        description: mode.description,
        system_prompt: mode.system_prompt,
        models: mode.models,
        send_current_file: mode.context.current_file,
        send_selection: mode.context.selection,
        max_context_tokens: mode.context.max_tokens,
        tools: mode.tools,
        output: mode.output.as_str().to_owned(),
        available: mode.available,
        plan_refusal: None,
    }
}

/// `POST /api/chat/setup`: the modes, the models of the caller's providers and the default model.
#[server(prefix = "/api", endpoint = "chat/setup")]
pub async fn load_chat_setup() -> Result<ChatSetup, AppError> {
    let user = super::request::require_user().await?;
    let services = super::request::services()?;
    let modes = services
        .modes(&user)
        .await
        .map_err(super::reject_service_error)?;
    let has_provider = !services
        .list_credentials(&user)
        .await
        .map_err(super::reject_service_error)?
        .is_empty();
    let choices = if has_provider {
        services
            .available_models(&user)
            .await
            .map_err(super::reject_service_error)?
    } else {
        services::ai::ModelChoices::default()
    };
    let models = super::ai::models_of(choices);
    Ok(ChatSetup {
        modes: modes
            .into_iter()
            .map(|mode| {
                let refusal = services
                    .check_ai_mode(&user, mode.tier_name())
                    .err()
                    .map(|refusal| refusal.to_string());
                ChatMode {
                    plan_refusal: refusal,
                    ..mode_of(mode)
                }
            })
            .collect(),
        models: models.models,
        problems: models.problems,
        default_model: services
            .default_model(&user)
            .await
            .map_err(super::reject_service_error)?,
        has_provider,
    })
}

/// `POST /api/chat/default-model`: the model new conversations use (empty: none chosen).
#[server(prefix = "/api", endpoint = "chat/default-model")]
pub async fn set_default_model(model: String) -> Result<Option<String>, AppError> {
    let user = super::request::require_user().await?;
    super::request::services()?
        .set_default_model(&user, Some(&model))
        .await
        .map_err(super::reject_service_error)
}

/// Longest search of the conversations list, in characters.
pub const MAX_SEARCH_CHARS: usize = 500;

/// `POST /api/chat/conversations`: the caller's conversations (of one project when given),
/// newest first; `search` keeps those whose title or messages contain it.
#[server(prefix = "/api", endpoint = "chat/conversations")]
pub async fn list_conversations(
    project_id: Option<String>,
    search: String,
) -> Result<Vec<ConversationSummary>, AppError> {
    let user = super::request::require_user().await?;
    // A longer search is no search a person types (and SQLite refuses a LIKE pattern of more
    // than 50,000 bytes).
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(AppError::BadRequest(format!(
            "A search is {MAX_SEARCH_CHARS} characters at most."
        )));
    }
    let project = optional_project(project_id)?;
    let entries = super::request::services()?
        .conversations(&user, project, Some(&search))
        .await
        .map_err(super::reject_service_error)?;
    Ok(entries.into_iter().map(summary_of).collect())
}

/// `POST /api/chat/new`: a new conversation (in a project when given) in `mode`.
#[server(prefix = "/api", endpoint = "chat/new")]
pub async fn create_conversation(
    project_id: Option<String>,
    mode: String,
    model: Option<String>,
) -> Result<ConversationSummary, AppError> {
    let user = super::request::require_user().await?;
    let project = optional_project(project_id)?;
    let mode = Some(mode).filter(|mode| !mode.trim().is_empty());
    let conversation = super::request::services()?
        .create_conversation(&user, project, mode.as_deref(), model)
        .await
        .map_err(super::reject_service_error)?;
    Ok(bare_summary(conversation))
}

/// `POST /api/chat/open`: a conversation and its messages.
#[server(prefix = "/api", endpoint = "chat/open")]
pub async fn open_conversation(id: String) -> Result<ConversationView, AppError> {
    let user = super::request::require_user().await?;
    let id = conversation_id(&id)?;
    let services = super::request::services()?;
    let (entry, messages) = services
        .conversation_with_totals(&user, id)
        .await
        .map_err(super::reject_service_error)?;
    Ok(ConversationView {
        conversation: summary_of(entry),
        messages: messages.into_iter().map(message_of).collect(),
    })
}

/// `POST /api/chat/rename`
#[server(prefix = "/api", endpoint = "chat/rename")]
pub async fn rename_conversation(
    id: String,
    title: String,
) -> Result<ConversationSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = conversation_id(&id)?;
    let conversation = super::request::services()?
        .rename_conversation(&user, id, &title)
        .await
        .map_err(super::reject_service_error)?;
    Ok(bare_summary(conversation))
}

/// `POST /api/chat/mode`: the mode the next messages of a conversation are sent in.
#[server(prefix = "/api", endpoint = "chat/mode")]
pub async fn set_conversation_mode(
    id: String,
    mode: String,
) -> Result<ConversationSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = conversation_id(&id)?;
    let conversation = super::request::services()?
        .set_conversation_mode(&user, id, &mode)
        .await
        .map_err(super::reject_service_error)?;
    Ok(bare_summary(conversation))
}

/// `POST /api/chat/model`: the model of a conversation (empty: the mode's and the default).
#[server(prefix = "/api", endpoint = "chat/model")]
pub async fn set_conversation_model(
    id: String,
    model: String,
) -> Result<ConversationSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = conversation_id(&id)?;
    let conversation = super::request::services()?
        .set_conversation_model(&user, id, Some(&model))
        .await
        .map_err(super::reject_service_error)?;
    Ok(bare_summary(conversation))
}

/// `POST /api/chat/delete`: deletes a conversation and its messages (stopping its answers).
#[server(prefix = "/api", endpoint = "chat/delete")]
pub async fn delete_conversation(id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = conversation_id(&id)?;
    super::request::services()?
        .delete_conversation(&user, id)
        .await
        .map_err(super::reject_service_error)
}

#[cfg(feature = "ssr")]
fn context_input(context: Option<EditorContext>) -> services::chat::ContextInput {
    services::chat::ContextInput {
        current_file: context.map(|file| services::chat::CurrentFile {
            path: file.path,
            language: file.language,
            content: file.content,
            selection: match (
                file.selection,
                file.selection_start_line,
                file.selection_end_line,
            ) {
                (Some(text), Some(start_line), Some(end_line)) => Some(services::chat::Selection {
                    start_line,
                    end_line,
                    text,
                }),
                _ => None,
            },
        }),
    }
}

/// `POST /api/chat/send` (JSON): stores the message, starts the answer, and returns both; the
/// answer then streams from its events endpoint.
#[server(prefix = "/api", endpoint = "chat/send", input = Json)]
pub async fn send_message(
    conversation_id: String,
    text: String,
    context: Option<EditorContext>,
) -> Result<SentMessage, AppError> {
    let user = super::request::require_user().await?;
    let id = self::conversation_id(&conversation_id)?;
    let services = super::request::services()?;
    let sent = services
        .send_message(&user, id, &text, context_input(context))
        .await
        .map_err(super::reject_service_error)?;
    let title = services
        .conversation_title(&user, id)
        .await
        .map_err(super::reject_service_error)?;
    Ok(SentMessage {
        question: message_of(sent.question),
        answer: message_of(sent.answer),
        title,
    })
}

/// `POST /api/chat/edit` (JSON): changes one of the caller's messages and answers it again
/// (what followed it is replaced).
#[server(prefix = "/api", endpoint = "chat/edit", input = Json)]
pub async fn edit_message(message_id: String, text: String) -> Result<SentMessage, AppError> {
    let user = super::request::require_user().await?;
    let id = self::message_id(&message_id)?;
    let services = super::request::services()?;
    let sent = services
        .edit_and_resend(&user, id, &text)
        .await
        .map_err(super::reject_service_error)?;
    Ok(SentMessage {
        question: message_of(sent.question),
        answer: message_of(sent.answer),
        title: String::new(),
    })
}

/// `POST /api/chat/regenerate`: answers the question before this answer again.
#[server(prefix = "/api", endpoint = "chat/regenerate")]
pub async fn regenerate_answer(message_id: String) -> Result<ChatMessage, AppError> {
    let user = super::request::require_user().await?;
    let id = self::message_id(&message_id)?;
    super::request::services()?
        .regenerate(&user, id)
        .await
        .map(message_of)
        .map_err(super::reject_service_error)
}

/// `POST /api/chat/continue`: continues an answer that stopped before its end.
#[server(prefix = "/api", endpoint = "chat/continue")]
pub async fn continue_answer(message_id: String) -> Result<ChatMessage, AppError> {
    let user = super::request::require_user().await?;
    let id = self::message_id(&message_id)?;
    super::request::services()?
        .continue_answer(&user, id)
        .await
        .map(message_of)
        .map_err(super::reject_service_error)
}

/// `POST /api/chat/stop`: stops an answer in progress (what it wrote is kept).
#[server(prefix = "/api", endpoint = "chat/stop")]
pub async fn stop_answer(message_id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = self::message_id(&message_id)?;
    super::request::services()?
        .stop_answer(&user, id)
        .await
        .map_err(super::reject_service_error)
}

#[cfg(feature = "ssr")]
fn mode_input(draft: ModeDraft) -> services::chat::ModeInput {
    services::chat::ModeInput {
        name: draft.name,
        label: draft.label,
        description: draft.description,
        system_prompt: draft.system_prompt,
        models: draft.models.split([',', '\n']).map(str::to_owned).collect(),
        context: Some(services::chat::ContextPolicy {
            current_file: draft.send_current_file,
            selection: draft.send_selection,
            max_tokens: draft.max_context_tokens,
            ..services::chat::ContextPolicy::default()
        }),
        tools: Vec::new(),
        output: draft.output,
    }
}

/// `POST /api/chat/modes/save` (JSON): creates a mode of the caller's (no `id`) or changes one.
#[server(prefix = "/api", endpoint = "chat/modes/save", input = Json)]
pub async fn save_mode(id: Option<String>, draft: ModeDraft) -> Result<ChatMode, AppError> {
    let user = super::request::require_user().await?;
    let services = super::request::services()?;
    let input = mode_input(draft);
    let mode = match id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => services.update_mode(&user, mode_id(id)?, input).await,
        None => services.create_mode(&user, input).await,
    }
    .map_err(super::reject_service_error)?;
    Ok(mode_of(mode))
}

/// `POST /api/chat/modes/delete`: deletes one of the caller's modes.
#[server(prefix = "/api", endpoint = "chat/modes/delete")]
pub async fn delete_mode(id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = mode_id(&id)?;
    super::request::services()?
        .delete_mode(&user, id)
        .await
        .map_err(super::reject_service_error)
}

#[cfg(feature = "ssr")]
fn context_entry(item: services::chat::ContextItem) -> ContextEntry {
    ContextEntry {
        kind: item.kind,
        key: item.key,
        label: item.label,
        reason: item.reason,
        score: item.score,
        tokens: item.tokens,
        included: item.included,
        choice: item.choice,
        language: item.language,
        content: item.content,
    }
}

#[cfg(feature = "ssr")]
fn index_state(status: services::project_context::IndexStatus) -> IndexState {
    use services::project_context::IndexPhase;
    IndexState {
        phase: match status.phase {
            IndexPhase::Loading => "loading",
            IndexPhase::Indexing => "indexing",
            IndexPhase::Ready => "ready",
            IndexPhase::Failed => "failed",
        }
        .to_owned(),
        done: status.done,
        total: status.total,
        files: status.files,
        excluded: status.excluded,
    }
}

/// `POST /api/chat/context/preview` (JSON): the context the next message would carry, with
/// why each item is there, its score and cost, and what the index leaves out.
#[server(prefix = "/api", endpoint = "chat/context/preview", input = Json)]
pub async fn preview_context(
    conversation_id: Option<String>,
    project_id: Option<String>,
    mode: String,
    text: String,
    context: Option<EditorContext>,
) -> Result<ContextPreview, AppError> {
    let user = super::request::require_user().await?;
    let conversation = conversation_id
        .as_deref()
        .map(self::conversation_id)
        .transpose()?;
    let project = optional_project(project_id)?;
    let services = super::request::services()?;
    let chosen = services
        .preview_context(
            &user,
            conversation,
            project,
            &mode,
            &context_input(context),
            &text,
        )
        .await
        .map_err(super::reject_service_error)?;
    let manifest = chosen.manifest;
    Ok(ContextPreview {
        items: manifest
            .items
            .into_iter()
            .map(|item| context_entry(item.into()))
            .collect(),
        budget: manifest.budget,
        used: manifest.used,
        tokenizer: manifest.tokenizer,
        left_out: manifest
            .left_out
            .into_iter()
            .map(|group| LeftOutEntry {
                reason: group.reason,
                count: group.count,
                examples: group.examples,
            })
            .collect(),
        index: chosen.index.map(index_state),
    })
}

/// `POST /api/chat/context/choose`: pins (`pinned`), drops (`dropped`) or releases (empty) one
/// context item for the rest of a conversation.
#[server(prefix = "/api", endpoint = "chat/context/choose")]
pub async fn set_context_choice(
    conversation_id: String,
    key: String,
    choice: String,
) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = self::conversation_id(&conversation_id)?;
    let choice = match choice.as_str() {
        "pinned" => Some(services::project_context::Choice::Pinned),
        "dropped" => Some(services::project_context::Choice::Dropped),
        "" => None,
        _ => {
            return Err(AppError::BadRequest(
                "A context item is pinned, dropped or neither.".into(),
            ));
        }
    };
    super::request::services()?
        .set_context_choice(&user, id, &key, choice)
        .await
        .map_err(super::reject_service_error)?;
    Ok(())
}

/// `POST /api/projects/context-index`: where the project's context index stands (asking starts
/// loading it).
#[server(prefix = "/api", endpoint = "projects/context-index")]
pub async fn context_index_state(project_id: String) -> Result<IndexState, AppError> {
    let user = super::request::require_user().await?;
    let project = optional_project(Some(project_id))?
        .ok_or_else(|| AppError::BadRequest("Which project?".into()))?;
    let status = super::request::services()?
        .context_index_status(&user, project)
        .await
        .map_err(super::reject_service_error)?;
    Ok(index_state(status))
}
