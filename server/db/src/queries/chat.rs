//! Conversations, their messages and users' own modes. Every read takes the owner's id.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, FromQueryResult,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use crate::ids::{ConversationId, MessageId, ModeId, ProjectId, UserId};
use crate::queries::runs::{RunLease, hold_lease};
use crate::tables::messages::{MessageRole, MessageStatus};
use crate::tables::{api_usage, conversations, messages, modes};
use crate::{Database, Error};

/// The update of a message's text, status and metadata (each when `Some`).
fn message_update(
    id: MessageId,
    content: Option<String>,
    status: Option<MessageStatus>,
    metadata: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<messages::Entity> {
    let mut update = messages::Entity::update_many()
        .col_expr(messages::Column::UpdatedAt, Expr::value(now))
        .filter(messages::Column::Id.eq(id));
    if let Some(content) = content {
        update = update.col_expr(messages::Column::Content, Expr::value(content));
    }
    if let Some(status) = status {
        update = update.col_expr(messages::Column::Status, Expr::value(status));
    }
    if let Some(metadata) = metadata {
        update = update.col_expr(messages::Column::Metadata, Expr::value(metadata));
    }
    update
}

/// A conversation with what its calls used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationEntry {
    pub conversation: conversations::Model,
    pub totals: ConversationTotals,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConversationTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

/// A message to store.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub role: MessageRole,
    pub content: String,
    pub status: MessageStatus,
    pub metadata: Option<serde_json::Value>,
}

/// The fields of a mode its owner edits.
#[derive(Clone, Debug)]
pub struct ModeFields {
    pub name: String,
    pub label: String,
    pub description: String,
    pub system_prompt: String,
    pub models: serde_json::Value,
    pub context: serde_json::Value,
    pub tools: serde_json::Value,
    pub output: String,
}

#[derive(FromQueryResult)]
struct TotalsRow {
    conversation_id: Option<ConversationId>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cost_micros: Option<i64>,
}

fn unsigned(value: Option<i64>) -> u64 {
    value
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0)
}

/// `text` as a `LIKE` pattern matching it anywhere, its own wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.to_lowercase().chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

impl Database {
    /// The owner's conversations (of one project when `project` is given, else all of them),
    /// most recent first, optionally only those whose title or messages contain `search`
    /// (case-insensitive).
    pub async fn conversations_of(
        &self,
        owner: UserId,
        project: Option<ProjectId>,
        search: Option<&str>,
    ) -> Result<Vec<ConversationEntry>, Error> {
        let mut query = conversations::Entity::find()
            .filter(conversations::Column::UserId.eq(owner))
            .order_by_desc(conversations::Column::UpdatedAt)
            .order_by_desc(conversations::Column::Id);
        if let Some(project) = project {
            query = query.filter(conversations::Column::ProjectId.eq(project));
        }
        if let Some(search) = search.map(str::trim).filter(|search| !search.is_empty()) {
            let pattern = contains_pattern(search);
            let in_messages = messages::Entity::find()
                .select_only()
                .column(messages::Column::ConversationId)
                .filter(
                    Expr::expr(Func::lower(Expr::col((
                        messages::Entity,
                        messages::Column::Content,
                    ))))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .into_query();
            query = query.filter(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col((
                            conversations::Entity,
                            conversations::Column::Title,
                        ))))
                        .like(sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')),
                    )
                    .add(conversations::Column::Id.in_subquery(in_messages)),
            );
        }
        let found = query.limit(500).all(self.connection()).await?;
        let ids: Vec<ConversationId> = found.iter().map(|conversation| conversation.id).collect();
        let totals = self.conversation_totals(&ids).await?;
        Ok(found
            .into_iter()
            .map(|conversation| {
                let totals = totals
                    .iter()
                    .find(|(id, _)| *id == conversation.id)
                    .map(|(_, totals)| *totals)
                    .unwrap_or_default();
                ConversationEntry {
                    conversation,
                    totals,
                }
            })
            .collect())
    }

    /// Tokens and cost of every call made for these conversations.
    pub async fn conversation_totals(
        &self,
        ids: &[ConversationId],
    ) -> Result<Vec<(ConversationId, ConversationTotals)>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = api_usage::Entity::find()
            .select_only()
            .column(api_usage::Column::ConversationId)
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT)"),
                "input_tokens",
            )
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT)"),
                "output_tokens",
            )
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)"),
                "cost_micros",
            )
            .filter(api_usage::Column::ConversationId.is_in(ids.iter().copied()))
            .group_by(api_usage::Column::ConversationId)
            .into_model::<TotalsRow>()
            .all(self.connection())
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some((
                    row.conversation_id?,
                    ConversationTotals {
                        input_tokens: unsigned(row.input_tokens),
                        output_tokens: unsigned(row.output_tokens),
                        cost_micros: unsigned(row.cost_micros),
                    },
                ))
            })
            .collect())
    }

    /// The owner's conversation with this id; `None` for anyone else's.
    pub async fn find_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<Option<conversations::Model>, Error> {
        Ok(conversations::Entity::find_by_id(id)
            .filter(conversations::Column::UserId.eq(owner))
            .one(self.connection())
            .await?)
    }

    pub async fn create_conversation(
        &self,
        owner: UserId,
        project: Option<ProjectId>,
        title: String,
        mode: String,
        model: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<conversations::Model, Error> {
        let model = conversations::ActiveModel {
            id: Set(ConversationId::new()),
            user_id: Set(owner),
            project_id: Set(project),
            title: Set(title),
            mode: Set(mode),
            model: Set(model),
            context_choices: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(model.insert(self.connection()).await?)
    }

    /// Changes the title, mode or model of a conversation (each when `Some`); `None` when the
    /// owner has no conversation with this id.
    pub async fn update_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        title: Option<String>,
        mode: Option<String>,
        model: Option<Option<String>>,
        now: DateTime<Utc>,
    ) -> Result<Option<conversations::Model>, Error> {
        let Some(conversation) = self.find_conversation(owner, id).await? else {
            return Ok(None);
        };
        let mut active = conversation.into_active_model();
        if let Some(title) = title {
            active.title = Set(title);
        }
        if let Some(mode) = mode {
            active.mode = Set(mode);
        }
        if let Some(model) = model {
            active.model = Set(model);
        }
        active.updated_at = Set(now);
        Ok(Some(active.update(self.connection()).await?))
    }

    /// Replaces the context items pinned or dropped in a conversation; `None` when not theirs.
    pub async fn set_context_choices(
        &self,
        owner: UserId,
        id: ConversationId,
        choices: serde_json::Value,
    ) -> Result<Option<conversations::Model>, Error> {
        let Some(conversation) = self.find_conversation(owner, id).await? else {
            return Ok(None);
        };
        let mut active = conversation.into_active_model();
        active.context_choices = Set(Some(choices));
        Ok(Some(active.update(self.connection()).await?))
    }

    /// Deletes a conversation and its messages; `false` when the owner has none with this id.
    pub async fn delete_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<bool, Error> {
        let result = conversations::Entity::delete_many()
            .filter(conversations::Column::Id.eq(id))
            .filter(conversations::Column::UserId.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// The messages of the owner's conversation, oldest first; `None` when it is not theirs.
    pub async fn messages_of(
        &self,
        owner: UserId,
        conversation: ConversationId,
    ) -> Result<Option<Vec<messages::Model>>, Error> {
        if self.find_conversation(owner, conversation).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            messages::Entity::find()
                .filter(messages::Column::ConversationId.eq(conversation))
                .order_by_asc(messages::Column::CreatedAt)
                .order_by_asc(messages::Column::Id)
                .all(self.connection())
                .await?,
        ))
    }

    /// The owner's message with this id, with its conversation; `None` for anyone else's.
    pub async fn find_message(
        &self,
        owner: UserId,
        id: MessageId,
    ) -> Result<Option<(messages::Model, conversations::Model)>, Error> {
        let found = messages::Entity::find_by_id(id)
            .find_also_related(conversations::Entity)
            .filter(conversations::Column::UserId.eq(owner))
            .one(self.connection())
            .await?;
        Ok(found.and_then(|(message, conversation)| Some((message, conversation?))))
    }

    /// Appends messages to a conversation (in this order, in one transaction) and marks the
    /// conversation as changed. The caller has checked that the conversation is the user's.
    pub async fn append_messages(
        &self,
        conversation: ConversationId,
        new: Vec<NewMessage>,
        now: DateTime<Utc>,
    ) -> Result<Vec<messages::Model>, Error> {
        let transaction = self.begin_write().await?;
        let mut stored = Vec::with_capacity(new.len());
        for (index, message) in new.into_iter().enumerate() {
            // Messages of one call get increasing timestamps so that their order never rests
            // on ids alone.
            let at = now + chrono::Duration::microseconds(i64::try_from(index).unwrap_or(0));
            let model = messages::ActiveModel {
                id: Set(MessageId::new()),
                conversation_id: Set(conversation),
                role: Set(message.role),
                content: Set(message.content),
                status: Set(message.status),
                metadata: Set(message.metadata),
                created_at: Set(at),
                updated_at: Set(at),
            };
            stored.push(model.insert(&transaction).await?);
        }
        conversations::Entity::update_many()
            .col_expr(conversations::Column::UpdatedAt, Expr::value(now))
            .filter(conversations::Column::Id.eq(conversation))
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(stored)
    }

    /// Stores the text, status and metadata of a message (each when `Some`).
    pub async fn update_message(
        &self,
        id: MessageId,
        content: Option<String>,
        status: Option<MessageStatus>,
        metadata: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        message_update(id, content, status, metadata, now)
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Stores the text, status and metadata of a message (each when `Some`) if `lease` still
    /// holds its run (an answer's saves): the lease is checked and the message written in one
    /// transaction, so an instance whose lease was taken over writes nothing
    /// ([`Error::LeaseLost`]) and cannot overwrite what the instance that recovered the
    /// answer saved.
    pub async fn update_message_under_lease(
        &self,
        lease: &RunLease,
        id: MessageId,
        content: Option<String>,
        status: Option<MessageStatus>,
        metadata: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let transaction = self.begin_write().await?;
        if let Err(error) = hold_lease(&transaction, lease, now).await {
            transaction.rollback().await?;
            return Err(error);
        }
        message_update(id, content, status, metadata, now)
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes the messages of a conversation that come after `message` (not `message`
    /// itself): what an edit or a regeneration replaces.
    pub async fn delete_messages_after(
        &self,
        conversation: ConversationId,
        message: &messages::Model,
    ) -> Result<u64, Error> {
        let result = messages::Entity::delete_many()
            .filter(messages::Column::ConversationId.eq(conversation))
            .filter(
                Condition::any()
                    .add(messages::Column::CreatedAt.gt(message.created_at))
                    .add(
                        Condition::all()
                            .add(messages::Column::CreatedAt.eq(message.created_at))
                            .add(messages::Column::Id.gt(message.id)),
                    ),
            )
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected)
    }

    /// Messages left `streaming`, last changed before `changed_before`, that no run of
    /// `run_kind` is about (rows from before answers had runs, or whose run could not be
    /// created): marked `interrupted`, with the reason in their metadata. A message with a run
    /// is left to the run's recovery, which knows whether its writer is alive. Returns how many.
    pub async fn interrupt_streaming_messages_without_run(
        &self,
        run_kind: &str,
        changed_before: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let left = messages::Entity::find()
            .filter(messages::Column::Status.eq(MessageStatus::Streaming))
            .filter(messages::Column::UpdatedAt.lt(changed_before))
            .all(self.connection())
            .await?;
        let subjects: Vec<String> = left.iter().map(|message| message.id.to_string()).collect();
        let with_run = self.subjects_with_runs(run_kind, &subjects).await?;
        let mut count = 0;
        for message in left {
            if with_run.contains(&message.id.to_string()) {
                continue;
            }
            let mut metadata = message
                .metadata
                .clone()
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| serde_json::json!({}));
            if let Some(object) = metadata.as_object_mut() {
                object.insert("reason".into(), serde_json::Value::String(reason.into()));
            }
            self.update_message(
                message.id,
                None,
                Some(MessageStatus::Interrupted),
                Some(metadata),
                now,
            )
            .await?;
            count += 1;
        }
        Ok(count)
    }

    /// A message by id alone, for work that acts on its behalf (a run's recovery), never for a
    /// request.
    pub async fn message_by_id(&self, id: MessageId) -> Result<Option<messages::Model>, Error> {
        Ok(messages::Entity::find_by_id(id)
            .one(self.connection())
            .await?)
    }

    /// The user's own modes, by name.
    pub async fn modes_of(&self, owner: UserId) -> Result<Vec<modes::Model>, Error> {
        Ok(modes::Entity::find()
            .filter(modes::Column::UserId.eq(owner))
            .order_by_asc(modes::Column::Name)
            .all(self.connection())
            .await?)
    }

    pub async fn find_mode(
        &self,
        owner: UserId,
        id: ModeId,
    ) -> Result<Option<modes::Model>, Error> {
        Ok(modes::Entity::find_by_id(id)
            .filter(modes::Column::UserId.eq(owner))
            .one(self.connection())
            .await?)
    }

    pub async fn create_mode(
        &self,
        owner: UserId,
        fields: ModeFields,
        now: DateTime<Utc>,
    ) -> Result<modes::Model, Error> {
        let model = modes::ActiveModel {
            id: Set(ModeId::new()),
            user_id: Set(owner),
            name: Set(fields.name),
            label: Set(fields.label),
            description: Set(fields.description),
            system_prompt: Set(fields.system_prompt),
            models: Set(fields.models),
            context: Set(fields.context),
            tools: Set(fields.tools),
            output: Set(fields.output),
            created_at: Set(now),
            updated_at: Set(now),
        };
        Ok(model.insert(self.connection()).await?)
    }

    /// `None` when the owner has no mode with this id.
    pub async fn update_mode(
        &self,
        owner: UserId,
        id: ModeId,
        fields: ModeFields,
        now: DateTime<Utc>,
    ) -> Result<Option<modes::Model>, Error> {
        let Some(mode) = self.find_mode(owner, id).await? else {
            return Ok(None);
        };
        let mut active = mode.into_active_model();
        active.name = Set(fields.name);
        active.label = Set(fields.label);
        active.description = Set(fields.description);
        active.system_prompt = Set(fields.system_prompt);
        active.models = Set(fields.models);
        active.context = Set(fields.context);
        active.tools = Set(fields.tools);
        active.output = Set(fields.output);
        active.updated_at = Set(now);
        Ok(Some(active.update(self.connection()).await?))
    }

    pub async fn delete_mode(&self, owner: UserId, id: ModeId) -> Result<bool, Error> {
        let result = modes::Entity::delete_many()
            .filter(modes::Column::Id.eq(id))
            .filter(modes::Column::UserId.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Foo"), "%foo%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
