//! Answers: a message sent (or regenerated, edited and resent, continued) is stored with the
//! empty answer first, then a run of its own generates the answer (see the module above):
//! the request is made from the conversation, the gateway's stream is followed into the live
//! answer's events, checkpoints and the final save are fenced by the run's lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use db::ids::{ConversationId, MessageId};
use db::queries::runs::NewRun;
use db::tables::conversations;
use db::tables::messages::{self, MessageRole, MessageStatus};
use db::tables::runs::RunState;
use llm::{Event, Message, ProviderKind, Request, StopReason};

use super::live::{AnswerBatch, AnswerEvent, LiveAnswer, StopRequest};
use super::*;
use crate::ai::{AiCall, AiItem};
use crate::runs::RunError;
use crate::{AuthenticatedUser, Error, Services};

/// How often the text of an answer in progress is written to the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// What the model is asked when the user continues a partial answer.
const CONTINUE_PROMPT: &str = "Continue your previous answer exactly where it stopped. Do not repeat anything you already wrote.";
/// Why an answer stopped by a server's shutdown is interrupted.
const SHUTDOWN_REASON: &str = "The server was stopped while this answer was being written; what arrived is kept. Continue or regenerate it.";
/// Why an answer whose run another instance took over ends here (that instance ends it).
const TAKEN_OVER_REASON: &str =
    "This server lost its hold on the answer; another one ends it with what was saved.";

/// What a generation needs besides the services.
struct AnswerJob {
    user: AuthenticatedUser,
    conversation: conversations::Model,
    mode: Mode,
    /// The messages the answer follows, oldest first (the question last).
    history: Vec<messages::Model>,
    answer: MessageId,
    /// Text the answer already has (when continuing it).
    base: String,
    meta: MessageMeta,
}

impl Services {
    /// Sends a message in a conversation: stores it and the answer-to-be, then starts the
    /// answer. Errors the user can fix before anything is stored (an empty message, the async
    /// mode) come back as errors; everything after is on the answer.
    pub async fn send_message(
        &self,
        user: &AuthenticatedUser,
        conversation: ConversationId,
        text: &str,
        context: ContextInput,
    ) -> Result<Sent, Error> {
        let text = check_text(text)?;
        check_context(&context)?;
        let conversation = self
            .database
            .find_conversation(user.id, conversation)
            .await?
            .ok_or(Error::NotFound)?;
        let mode = self.usable_mode(user, &conversation.mode).await?;
        let chosen = self
            .choose_context(
                user,
                conversation.project_id,
                conversation.model.as_deref(),
                &crate::project_context::choices_of(conversation.context_choices.as_ref()),
                &mode.context,
                &context,
                &text,
            )
            .await?;
        let question_meta = MessageMeta {
            mode: Some(mode.name.clone()),
            context: chosen
                .manifest
                .items
                .into_iter()
                .map(ContextItem::from)
                .collect(),
            context_budget: Some(chosen.manifest.budget),
            tokenizer: Some(chosen.manifest.tokenizer),
            ..MessageMeta::default()
        };
        let answer_meta = MessageMeta {
            mode: Some(mode.name.clone()),
            ..MessageMeta::default()
        };
        let now = Utc::now();
        let stored = self
            .database
            .append_messages(
                conversation.id,
                vec![
                    db::NewMessage {
                        role: MessageRole::User,
                        content: text.clone(),
                        status: MessageStatus::Complete,
                        metadata: Some(question_meta.to_json()),
                    },
                    db::NewMessage {
                        role: MessageRole::Assistant,
                        content: String::new(),
                        status: MessageStatus::Streaming,
                        metadata: Some(answer_meta.to_json()),
                    },
                ],
                now,
            )
            .await?;
        let [question, answer] = <[messages::Model; 2]>::try_from(stored)
            .map_err(|_| Error::Internal("two messages stored, not two returned".into()))?;
        let conversation = if conversation.title == NEW_TITLE {
            self.database
                .update_conversation(
                    user.id,
                    conversation.id,
                    Some(title_from(&text)),
                    None,
                    None,
                    now,
                )
                .await?
                .unwrap_or(conversation)
        } else {
            conversation
        };
        let history = self
            .history_through(user, conversation.id, question.id)
            .await?;
        self.start_answer(AnswerJob {
            user: user.clone(),
            conversation,
            mode,
            history,
            answer: answer.id,
            base: String::new(),
            meta: answer_meta,
        })
        .await;
        Ok(Sent {
            question: question.into(),
            answer: answer.into(),
        })
    }

    /// Answers the question before `answer` again: the old answer (and anything after it) is
    /// replaced by a new one.
    pub async fn regenerate(
        &self,
        user: &AuthenticatedUser,
        answer: MessageId,
    ) -> Result<ChatMessage, Error> {
        let (old, conversation) = self.owned_message(user, answer).await?;
        if old.role != MessageRole::Assistant {
            return Err(Error::Invalid("Only an answer can be regenerated.".into()));
        }
        let messages = self
            .database
            .messages_of(user.id, conversation.id)
            .await?
            .ok_or(Error::NotFound)?;
        let position = messages
            .iter()
            .position(|message| message.id == old.id)
            .ok_or(Error::NotFound)?;
        let question = messages[..position]
            .iter()
            .rev()
            .find(|message| message.role == MessageRole::User)
            .cloned()
            .ok_or_else(|| Error::Invalid("This answer has no question to answer again.".into()))?;
        let mode = self.usable_mode(user, &conversation.mode).await?;
        self.replace_after(user, &conversation, mode, question)
            .await
    }

    /// Changes the text of one of the user's messages and answers it again; what came after
    /// it is replaced.
    pub async fn edit_and_resend(
        &self,
        user: &AuthenticatedUser,
        question: MessageId,
        text: &str,
    ) -> Result<Sent, Error> {
        let text = check_text(text)?;
        let (message, conversation) = self.owned_message(user, question).await?;
        if message.role != MessageRole::User {
            return Err(Error::Invalid(
                "Only your own messages can be edited.".into(),
            ));
        }
        // A resend the mode refuses changes nothing: the edit is kept only with its new answer.
        let mode = self.usable_mode(user, &conversation.mode).await?;
        self.database
            .update_message(message.id, Some(text.clone()), None, None, Utc::now())
            .await?;
        let question = messages::Model {
            content: text,
            ..message
        };
        let answer = self
            .replace_after(user, &conversation, mode, question.clone())
            .await?;
        Ok(Sent {
            question: question.into(),
            answer,
        })
    }

    /// Deletes what follows `question` and starts a new answer to it in `mode` (checked by the
    /// caller before it changed anything).
    async fn replace_after(
        &self,
        user: &AuthenticatedUser,
        conversation: &conversations::Model,
        mode: Mode,
        question: messages::Model,
    ) -> Result<ChatMessage, Error> {
        self.live.stop_conversation(conversation.id);
        self.database
            .delete_messages_after(conversation.id, &question)
            .await?;
        let meta = MessageMeta {
            mode: Some(mode.name.clone()),
            ..MessageMeta::default()
        };
        let stored = self
            .database
            .append_messages(
                conversation.id,
                vec![db::NewMessage {
                    role: MessageRole::Assistant,
                    content: String::new(),
                    status: MessageStatus::Streaming,
                    metadata: Some(meta.to_json()),
                }],
                Utc::now(),
            )
            .await?;
        let answer = stored
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no message stored".into()))?;
        let history = self
            .history_through(user, conversation.id, question.id)
            .await?;
        self.start_answer(AnswerJob {
            user: user.clone(),
            conversation: conversation.clone(),
            mode,
            history,
            answer: answer.id,
            base: String::new(),
            meta,
        })
        .await;
        Ok(answer.into())
    }

    /// Continues a partial answer (stopped, cut or failed after some text) in place.
    pub async fn continue_answer(
        &self,
        user: &AuthenticatedUser,
        answer: MessageId,
    ) -> Result<ChatMessage, Error> {
        let (message, conversation) = self.owned_message(user, answer).await?;
        let refused = || {
            Error::Invalid("Only an answer that stopped before its end can be continued.".into())
        };
        if message.role != MessageRole::Assistant
            || !matches!(
                message.status,
                MessageStatus::Interrupted | MessageStatus::Failed
            )
        {
            return Err(refused());
        }
        // Claimed before anything changes: a second click finds it taken.
        let live = self
            .live
            .start(message.id, user.id, conversation.id)
            .ok_or_else(refused)?;
        match self.prepare_continue(user, &message, &conversation).await {
            Ok((mode, history, meta)) => {
                let run = self.begin_run(user, message.id, &live).await;
                self.spawn_answer(
                    AnswerJob {
                        user: user.clone(),
                        conversation,
                        mode,
                        history,
                        answer: message.id,
                        base: message.content.clone(),
                        meta,
                    },
                    live,
                    run,
                );
            }
            Err(error) => {
                self.live.finish(message.id, &live);
                return Err(error);
            }
        }
        let (message, _) = self.owned_message(user, answer).await?;
        Ok(message.into())
    }

    /// What continuing `message` needs, with the message marked streaming again.
    async fn prepare_continue(
        &self,
        user: &AuthenticatedUser,
        message: &messages::Model,
        conversation: &conversations::Model,
    ) -> Result<(Mode, Vec<messages::Model>, MessageMeta), Error> {
        let mode = self.usable_mode(user, &conversation.mode).await?;
        let mut history = self
            .history_through(user, conversation.id, message.id)
            .await?;
        // A failed answer without text is answered again from its question.
        if message.content.trim().is_empty() {
            history.pop();
        }
        let mut meta = MessageMeta::of(message);
        meta.reason = None;
        meta.error_kind = None;
        meta.mode = Some(mode.name.clone());
        self.database
            .update_message(
                message.id,
                None,
                Some(MessageStatus::Streaming),
                Some(meta.to_json()),
                Utc::now(),
            )
            .await?;
        Ok((mode, history, meta))
    }

    /// Asks an answer in progress to stop, on whichever instance generates it; what it wrote
    /// is kept. Stopping a finished answer changes nothing.
    pub async fn stop_answer(
        &self,
        user: &AuthenticatedUser,
        answer: MessageId,
    ) -> Result<(), Error> {
        if let Some(live) = self.live.get(answer, user.id) {
            live.request_stop(StopRequest::ByUser);
            return Ok(());
        }
        self.database
            .find_message(user.id, answer)
            .await?
            .ok_or(Error::NotFound)?;
        // Generated by another instance: the stop goes through its run, and the instance
        // holding it stops the answer as it would its own stop button.
        let run = self
            .database
            .latest_run_about(ANSWER_RUN_KIND, &answer.to_string())
            .await?
            .filter(|run| run.owner_user_id == Some(user.id) && !run.state.is_terminal());
        if let Some(run) = run {
            self.runs.request_stop(run.id).await?;
        }
        Ok(())
    }

    /// Follows an answer from the event after `after`: live while it is generated (from
    /// memory when this instance generates it, else from its run's rows, written by whichever
    /// instance does), else as stored. Only its owner can (anyone else gets `NotFound`).
    pub async fn follow_answer(
        &self,
        user: &AuthenticatedUser,
        answer: MessageId,
        after: u64,
    ) -> Result<AnswerFeed, Error> {
        if let Some(live) = self.live.get(answer, user.id) {
            return Ok(AnswerFeed::Live(Box::pin(live.follow(after))));
        }
        let (mut message, _) = self.owned_message(user, answer).await?;
        let run = self
            .database
            .latest_run_about(ANSWER_RUN_KIND, &answer.to_string())
            .await?
            .filter(|run| run.owner_user_id == Some(user.id));
        if let Some(run) = &run {
            // Being written (or waiting for its recovery): its rows. Over, but its message not
            // saved as final: its rows too, for a reader that has some of them. Else the stored
            // message is the whole answer.
            let unsaved = message.status == MessageStatus::Streaming && after > 0;
            if !run.state.is_terminal() || unsaved {
                let events = recovery::follow_run(self.runs.clone(), run, after).await?;
                return Ok(AnswerFeed::Live(events));
            }
        }
        // It may have finished between the looks: its stored row is final then. A row still
        // `streaming` with nothing generating it for a while was abandoned (its final save
        // failed); a fresh one may be a send that has not started its answer yet.
        if message.status == MessageStatus::Streaming
            && self.live.get(answer, user.id).is_none()
            && Utc::now() - message.updated_at > chrono::Duration::seconds(5)
        {
            let mut meta = MessageMeta::of(&message);
            meta.reason = Some(LOST_ANSWER.into());
            self.database
                .update_message(
                    answer,
                    None,
                    Some(MessageStatus::Interrupted),
                    Some(meta.to_json()),
                    Utc::now(),
                )
                .await?;
            message.status = MessageStatus::Interrupted;
            message.metadata = Some(meta.to_json());
        }
        Ok(AnswerFeed::Stored(Box::new(message.into())))
    }

    /// How many answers are being generated now.
    pub fn live_answers(&self) -> usize {
        self.live.len()
    }

    /// The user's message with this id and its conversation (`NotFound` for anyone else's).
    async fn owned_message(
        &self,
        user: &AuthenticatedUser,
        id: MessageId,
    ) -> Result<(messages::Model, conversations::Model), Error> {
        self.database
            .find_message(user.id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The mode, if the user may send in it now.
    pub(crate) async fn usable_mode(
        &self,
        user: &AuthenticatedUser,
        name: &str,
    ) -> Result<Mode, Error> {
        let mode = match self.mode_named(user, name).await {
            Ok(mode) => mode,
            // A deleted user mode falls back to chat.
            Err(Error::NotFound) => self.mode_named(user, "chat").await?,
            Err(error) => return Err(error),
        };
        if !mode.available {
            return Err(Error::Invalid(format!(
                "The {} mode is not available on this server. Pick another mode.",
                mode.label
            )));
        }
        if mode.output == Output::Agent {
            return Err(Error::Invalid(format!(
                "The {} mode does not answer in the chat: it starts a background task on a \
                 project (Start task in a project's chat, the Tasks page, or POST /api/tasks).",
                mode.label
            )));
        }
        Ok(mode)
    }

    /// The messages of a conversation up to and including `last`.
    async fn history_through(
        &self,
        user: &AuthenticatedUser,
        conversation: ConversationId,
        last: MessageId,
    ) -> Result<Vec<messages::Model>, Error> {
        let mut messages = self
            .database
            .messages_of(user.id, conversation)
            .await?
            .ok_or(Error::NotFound)?;
        if let Some(position) = messages.iter().position(|message| message.id == last) {
            messages.truncate(position + 1);
        }
        Ok(messages)
    }

    /// The models to ask, in order: the conversation's choice (else the user's default), then
    /// the mode's suggestions the user has, else the first model the user has.
    async fn models_for(
        &self,
        user: &AuthenticatedUser,
        conversation: &conversations::Model,
        mode: &Mode,
    ) -> Result<Vec<String>, Error> {
        let mut models: Vec<String> = Vec::new();
        let chosen = match &conversation.model {
            Some(model) => Some(model.clone()),
            None => self.default_model(user).await?,
        };
        if let Some(chosen) = chosen {
            models.push(chosen);
        }
        if !mode.models.is_empty() || models.is_empty() {
            let choices = self.available_models(user).await?;
            for suggestion in &mode.models {
                if let Some(available) = choices
                    .models
                    .iter()
                    .find(|model| model.route == *suggestion || model.info.id == *suggestion)
                    && !models.contains(&available.route)
                {
                    models.push(available.route.clone());
                }
            }
            if models.is_empty() {
                match choices.models.first() {
                    Some(first) => models.push(first.route.clone()),
                    None if choices.problems.is_empty() => {
                        return Err(Error::NoProvider(
                            "No AI provider is configured: add a key or a local server in Settings → AI providers.".into(),
                        ));
                    }
                    None => {
                        return Err(Error::NoProvider(format!(
                            "None of your providers offers a model right now ({}).",
                            choices
                                .problems
                                .iter()
                                .map(|(label, problem)| format!("{label}: {problem}"))
                                .collect::<Vec<_>>()
                                .join("; ")
                        )));
                    }
                }
            }
        }
        Ok(models)
    }

    /// Registers the answer, creates its run (before returning, so that any instance can
    /// follow it at once) and starts the task that generates it.
    async fn start_answer(&self, job: AnswerJob) {
        match self
            .live
            .start(job.answer, job.user.id, job.conversation.id)
        {
            Some(live) => {
                let run = self.begin_run(&job.user, job.answer, &live).await;
                self.spawn_answer(job, live, run);
            }
            // New messages only: their ids cannot be taken.
            None => tracing::error!("an answer was started twice for one new message"),
        }
    }

    /// Creates the answer's run, held by this instance, and attaches it to the live answer.
    /// A failure is the answer's: the generation ends it as failed, with the reason.
    async fn begin_run(
        &self,
        user: &AuthenticatedUser,
        answer: MessageId,
        live: &LiveAnswer,
    ) -> Result<(), Error> {
        let writer = self
            .runs
            .start::<AnswerBatch>(NewRun {
                kind: ANSWER_RUN_KIND.to_owned(),
                owner_user_id: Some(user.id),
                subject: Some(answer.to_string()),
            })
            .await?;
        live.attach_run(writer);
        Ok(())
    }

    fn spawn_answer(&self, job: AnswerJob, live: Arc<LiveAnswer>, run: Result<(), Error>) {
        let services = self.clone();
        tokio::spawn(async move {
            let answer = job.answer;
            // Whatever happens to the task, followers hear the end and the slot is freed.
            let guard = EndGuard {
                answers: Arc::clone(&services.live),
                answer,
                live: Arc::clone(&live),
            };
            services.generate(job, live, run).await;
            drop(guard);
        });
    }

    /// Ends an answer for its followers: the `Finished` event is written to the run, which ends
    /// in `state`, before local followers see it (so that a follower that comes after it finds
    /// the run over); then the answer leaves the registry.
    async fn end_answer(
        &self,
        answer: MessageId,
        live: &Arc<LiveAnswer>,
        finished: AnswerEvent,
        state: RunState,
    ) {
        if let Some(run) = live.take_run() {
            // Only this task pushes events: the number stays the next one.
            let number = live.next_number();
            let ended = match run.push(AnswerBatch::single(number, finished.clone())) {
                Ok(()) => run.finish(state).await,
                Err(error) => Err(error),
            };
            match ended {
                Ok(()) => {}
                // Another instance took the answer over and ends the run.
                Err(RunError::LeaseLost) => {}
                Err(error) => tracing::warn!(%error, %answer, "ending an answer's run failed"),
            }
        }
        live.push(finished);
        self.live.finish(answer, live);
    }

    /// Saves the answer's text, status and metadata (each when `Some`), fenced by its run's
    /// lease when it has a run: [`db::Error::LeaseLost`] once another instance took it over,
    /// and nothing is written.
    async fn save_answer(
        &self,
        live: &LiveAnswer,
        answer: MessageId,
        content: Option<String>,
        status: Option<MessageStatus>,
        metadata: Option<serde_json::Value>,
    ) -> Result<(), db::Error> {
        match live.fence() {
            Some(lease) => {
                self.database
                    .update_message_under_lease(
                        lease,
                        answer,
                        content,
                        status,
                        metadata,
                        Utc::now(),
                    )
                    .await
            }
            None => {
                self.database
                    .update_message(answer, content, status, metadata, Utc::now())
                    .await
            }
        }
    }

    async fn generate(self, job: AnswerJob, live: Arc<LiveAnswer>, run: Result<(), Error>) {
        let AnswerJob {
            user,
            conversation,
            mode,
            history,
            answer,
            base,
            mut meta,
        } = job;
        if !base.is_empty() {
            live.push(AnswerEvent::Resumed { text: base.clone() });
        }
        let previous_usage = meta.usage.take();
        let mut written = Written {
            content: base.clone(),
            reasoning: meta.reasoning.clone().unwrap_or_default(),
            base,
        };
        let request = self
            .answer_request(
                &user,
                &conversation,
                &mode,
                &history,
                &written.base,
                &mut meta,
            )
            .await;
        let models = match run {
            Ok(()) => self.models_for(&user, &conversation, &mode).await,
            Err(error) => Err(error),
        };
        let outcome = match models {
            Err(error) => Err(error),
            Ok(models) => {
                meta.requested_models = models.clone();
                self.ai_stream(
                    &user,
                    AiCall {
                        models,
                        request,
                        mode: mode.tier_name().to_owned(),
                        origin: Some((conversation.id, answer)),
                    },
                )
                .await
            }
        };
        let (status, reason) = match outcome {
            Err(error) => {
                if let Error::Provider(provider) = &error {
                    meta.error_kind = Some(provider.kind.name().to_owned());
                }
                if let Error::Internal(detail) = &error {
                    tracing::error!(error = %detail, "starting an answer failed");
                }
                let status = if written.content.is_empty() {
                    MessageStatus::Failed
                } else {
                    MessageStatus::Interrupted
                };
                (status, Some(user_reason(&error)))
            }
            Ok(receiver) => {
                self.follow_stream(receiver, &live, answer, &mut written, &mut meta)
                    .await
            }
        };

        let usage = match (previous_usage, meta.usage) {
            (Some(before), Some(now)) => Some(before + now),
            (before, now) => now.or(before),
        };
        meta.usage = usage;
        meta.cost_micros = match (meta.provider.as_deref(), meta.model.as_deref(), usage) {
            (Some(provider), Some(model), Some(usage)) => provider
                .parse::<ProviderKind>()
                .ok()
                .and_then(|kind| self.ai.catalog.cost_micros(kind, model, &usage)),
            _ => None,
        };
        meta.reason = reason.clone();
        meta.reasoning = (!written.reasoning.is_empty()).then_some(written.reasoning);
        let saved = self
            .save_finished_answer(&live, answer, written.content, status, &meta)
            .await;
        let (finished, state) = if saved {
            let state = match status {
                MessageStatus::Complete => RunState::Finished,
                MessageStatus::Failed => RunState::Failed,
                MessageStatus::Interrupted | MessageStatus::Streaming => RunState::Interrupted,
            };
            let finished = AnswerEvent::Finished {
                status,
                reason,
                usage: meta.usage,
                cost_micros: meta.cost_micros,
                system_prompt: meta.system_prompt.clone(),
            };
            (finished, state)
        } else {
            // Another instance holds the answer now and ends it: nothing more is written here.
            let finished = AnswerEvent::Finished {
                status: MessageStatus::Interrupted,
                reason: Some(TAKEN_OVER_REASON.to_owned()),
                usage: None,
                cost_micros: None,
                system_prompt: None,
            };
            (finished, RunState::Interrupted)
        };
        self.end_answer(answer, &live, finished, state).await;
    }

    /// The request for an answer: the mode's system prompt (with the context the question
    /// carried, recorded in `meta`), the conversation so far, and when a partial answer is
    /// continued, the request to continue it.
    async fn answer_request(
        &self,
        user: &AuthenticatedUser,
        conversation: &conversations::Model,
        mode: &Mode,
        history: &[messages::Model],
        base: &str,
        meta: &mut MessageMeta,
    ) -> Request {
        let question_context = history
            .iter()
            .rev()
            .find(|message| message.role == MessageRole::User)
            .map(|message| MessageMeta::of(message).context)
            .unwrap_or_default();
        let project = match conversation.project_id {
            Some(project) => self
                .database
                .find_project(user.id, project)
                .await
                .ok()
                .flatten()
                .map(|project| project.name),
            None => None,
        };
        let prompt = system_prompt(mode, project.as_deref(), &question_context);
        meta.system_prompt = Some(prompt.clone());
        let mut messages = vec![Message::system(prompt)];
        for message in history {
            match message.role {
                MessageRole::User => messages.push(Message::user(message.content.clone())),
                MessageRole::Assistant if !message.content.trim().is_empty() => {
                    messages.push(Message::assistant(message.content.clone()));
                }
                _ => {}
            }
        }
        if !base.is_empty() {
            messages.push(Message::user(CONTINUE_PROMPT));
        }
        Request {
            messages,
            ..Request::default()
        }
    }

    /// Follows the gateway's stream into the live answer (and `written`, `meta`) until it ends,
    /// the person stops it, the server shuts down or the run's lease is lost; saves the text
    /// every [`CHECKPOINT_EVERY`] meanwhile. Returns the answer's status and why it ended so.
    async fn follow_stream(
        &self,
        mut receiver: tokio::sync::mpsc::Receiver<AiItem>,
        live: &Arc<LiveAnswer>,
        answer: MessageId,
        written: &mut Written,
        meta: &mut MessageMeta,
    ) -> (MessageStatus, Option<String>) {
        let stopped = live.stopped();
        futures::pin_mut!(stopped);
        let lease_lost = live.lease_lost();
        futures::pin_mut!(lease_lost);
        let mut saved_length = written.content.len();
        let mut next_checkpoint = tokio::time::Instant::now() + CHECKPOINT_EVERY;
        let ended = loop {
            tokio::select! {
                biased;
                request = &mut stopped => {
                    let reason = match request {
                        StopRequest::ByUser => "Stopped before the end.",
                        StopRequest::ServerShutdown => SHUTDOWN_REASON,
                    };
                    break (MessageStatus::Interrupted, Some(reason.to_owned()));
                }
                () = &mut lease_lost => {
                    break (MessageStatus::Interrupted, Some(TAKEN_OVER_REASON.to_owned()));
                }
                item = receiver.recv() => {
                    if let Some(ended) = take_item(item, live, written, meta) {
                        break ended;
                    }
                }
                () = tokio::time::sleep_until(next_checkpoint), if written.content.len() != saved_length && !live.is_lease_lost() => {
                    next_checkpoint = tokio::time::Instant::now() + CHECKPOINT_EVERY;
                    saved_length = written.content.len();
                    match self.save_answer(live, answer, Some(written.content.clone()), None, None).await {
                        Ok(()) => {}
                        // The lease's loss stops the generation.
                        Err(db::Error::LeaseLost) => {}
                        Err(error) => tracing::warn!(%error, "saving an answer in progress failed"),
                    }
                }
            }
        };
        // Dropping the receiver cancels the call (its usage so far is recorded).
        drop(receiver);
        ended
    }

    /// The final save of an answer, retried (the database may be away for a moment) and fenced
    /// by the run's lease. `false` when another instance took the answer over: nothing was
    /// written, that instance ends it.
    async fn save_finished_answer(
        &self,
        live: &LiveAnswer,
        answer: MessageId,
        content: String,
        status: MessageStatus,
        meta: &MessageMeta,
    ) -> bool {
        if live.is_lease_lost() {
            return false;
        }
        let mut attempt = 0;
        loop {
            let saved = self
                .save_answer(
                    live,
                    answer,
                    Some(content.clone()),
                    Some(status),
                    Some(meta.to_json()),
                )
                .await;
            let error = match saved {
                Ok(()) => return true,
                Err(db::Error::LeaseLost) => return false,
                Err(error) => error,
            };
            attempt += 1;
            if attempt == 3 {
                tracing::error!(%error, "saving a finished answer failed; it stays as last saved");
                return true;
            }
            tracing::warn!(%error, attempt, "saving a finished answer failed; trying again");
            tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
        }
    }
}

/// What an answer holds so far: the text (starting with the partial answer it continues, the
/// `base`) and the model's reasoning.
struct Written {
    base: String,
    content: String,
    reasoning: String,
}

/// Takes one item of the gateway's stream into the live answer, `written` and `meta`; the
/// answer's status and reason when the item ends it (`None`: the stream closed early).
fn take_item(
    item: Option<AiItem>,
    live: &LiveAnswer,
    written: &mut Written,
    meta: &mut MessageMeta,
) -> Option<(MessageStatus, Option<String>)> {
    let item = match item {
        Some(item) => item,
        None => {
            return Some((
                MessageStatus::Interrupted,
                Some("The answer ended before its end; what arrived is kept.".to_owned()),
            ));
        }
    };
    match item {
        AiItem::Answering(answering) => {
            meta.provider = Some(answering.provider.name().to_owned());
            meta.model = Some(answering.model.clone());
            meta.fallback = fallback_notes(&answering.failed);
            live.push(AnswerEvent::Answering {
                provider: answering.provider.name().to_owned(),
                model: answering.model,
                fallback: meta.fallback.clone(),
            });
            None
        }
        AiItem::Event(Event::TextDelta { text }) => {
            written.content.push_str(&text);
            live.push(AnswerEvent::Text(text));
            None
        }
        AiItem::Event(Event::ReasoningDelta { text }) => {
            written.reasoning.push_str(&text);
            live.push(AnswerEvent::Reasoning(text));
            None
        }
        AiItem::Event(Event::Usage { usage }) => {
            meta.usage = Some(usage);
            None
        }
        AiItem::Event(Event::Stop { reason, .. }) => {
            meta.stop_reason = Some(reason.name().to_owned());
            Some(match reason {
                // Cut by the output limit: not the end, and it can be continued.
                StopReason::MaxTokens => (
                    MessageStatus::Interrupted,
                    Some(
                        "The answer reached the model's output limit; continue it to get the rest."
                            .to_owned(),
                    ),
                ),
                StopReason::ContentFilter => (
                    MessageStatus::Complete,
                    Some("The provider's content filter stopped the answer.".to_owned()),
                ),
                _ => (MessageStatus::Complete, None),
            })
        }
        AiItem::Event(_) => None,
        AiItem::Failed { error, failed, .. } => {
            meta.fallback = fallback_notes(&failed);
            meta.error_kind = Some(error.kind.name().to_owned());
            let status = if written.content.len() > written.base.len() || !written.base.is_empty() {
                MessageStatus::Interrupted
            } else {
                MessageStatus::Failed
            };
            Some((status, Some(provider_reason(&error))))
        }
    }
}

/// Held by the task that generates an answer: when the task ends in any way (a panic included)
/// followers hear the end and the message's slot in the registry is freed.
struct EndGuard {
    answers: Arc<live::LiveAnswers>,
    answer: MessageId,
    live: Arc<LiveAnswer>,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if !self.live.is_over() {
            let finished = AnswerEvent::Finished {
                status: MessageStatus::Interrupted,
                reason: Some(LOST_ANSWER.into()),
                usage: None,
                cost_micros: None,
                system_prompt: None,
            };
            // The run ends too, so that followers elsewhere hear the end at once (the message,
            // left `streaming`, is marked interrupted by the next look at it).
            if let Some(run) = self.live.take_run() {
                let number = self.live.next_number();
                let answer = self.answer;
                // A runtime shutting down (the process ending) has nothing to end it with: the
                // run is then recovered by another instance once its lease expires.
                match (
                    run.push(AnswerBatch::single(number, finished.clone())),
                    tokio::runtime::Handle::try_current(),
                ) {
                    (Ok(()), Ok(runtime)) => {
                        runtime.spawn(async move {
                            if let Err(error) = run.finish(RunState::Interrupted).await {
                                tracing::warn!(%error, %answer, "ending a lost answer's run failed");
                            }
                        });
                    }
                    (Err(error), _) => {
                        tracing::warn!(%error, %answer, "ending a lost answer's run failed");
                    }
                    (Ok(()), Err(_)) => {}
                }
            }
            self.live.push(finished);
        }
        self.answers.finish(self.answer, &self.live);
    }
}

/// Why an answer the server stopped writing (a crash, a failed final save) is interrupted.
const LOST_ANSWER: &str = "The server stopped writing this answer before its end; what was saved is kept. Continue or regenerate it.";

fn fallback_notes(failed: &[llm::FailedAttempt]) -> Vec<FallbackNote> {
    failed
        .iter()
        .map(|attempt| FallbackNote {
            provider: attempt.provider.name().to_owned(),
            model: attempt.model.clone(),
            reason: attempt.error.to_string(),
        })
        .collect()
}
