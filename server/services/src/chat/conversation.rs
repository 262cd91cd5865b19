//! Conversations: listed, created, renamed, given a mode and a model, deleted, read with their
//! messages and totals; the person's default model.

use chrono::Utc;
use db::ids::{ConversationId, ProjectId};
use db::tables::conversations;

use super::*;
use crate::{AuthenticatedUser, Error, Services};

/// The user's preference key for the default model.
const DEFAULT_MODEL_KEY: &str = "default_model";

impl Services {
    /// The user's conversations (of one project when given), most recent first, optionally only
    /// those whose title or messages contain `search`.
    pub async fn conversations(
        &self,
        user: &AuthenticatedUser,
        project: Option<ProjectId>,
        search: Option<&str>,
    ) -> Result<Vec<db::ConversationEntry>, Error> {
        if let Some(project) = project
            && self
                .database
                .find_project(user.id, project)
                .await?
                .is_none()
        {
            return Err(Error::NotFound);
        }
        // Each conversation comes with its calls' totals: the rows still queued are written first.
        self.flush_usage().await;
        Ok(self
            .database
            .conversations_of(user.id, project, search)
            .await?)
    }

    pub async fn create_conversation(
        &self,
        user: &AuthenticatedUser,
        project: Option<ProjectId>,
        mode: Option<&str>,
        model: Option<String>,
    ) -> Result<conversations::Model, Error> {
        if let Some(project) = project
            && self
                .database
                .find_project(user.id, project)
                .await?
                .is_none()
        {
            return Err(Error::NotFound);
        }
        let mode = match mode {
            Some(name) => self.mode_named(user, name).await?.name,
            None => "chat".to_owned(),
        };
        let model = check_model_name(model.as_deref())?;
        Ok(self
            .database
            .create_conversation(user.id, project, NEW_TITLE.into(), mode, model, Utc::now())
            .await?)
    }

    pub async fn rename_conversation(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
        title: &str,
    ) -> Result<conversations::Model, Error> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(Error::Invalid(
                "A conversation's title is 1 to 200 characters.".into(),
            ));
        }
        self.database
            .update_conversation(user.id, id, Some(title.to_owned()), None, None, Utc::now())
            .await?
            .ok_or(Error::NotFound)
    }

    /// Sets the mode of a conversation (the next messages are sent in it).
    pub async fn set_conversation_mode(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
        mode: &str,
    ) -> Result<conversations::Model, Error> {
        let mode = self.mode_named(user, mode).await?;
        self.database
            .update_conversation(user.id, id, None, Some(mode.name), None, Utc::now())
            .await?
            .ok_or(Error::NotFound)
    }

    /// Sets the model of a conversation; `None` follows the mode's and the user's default.
    pub async fn set_conversation_model(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
        model: Option<&str>,
    ) -> Result<conversations::Model, Error> {
        let model = check_model_name(model)?;
        self.database
            .update_conversation(user.id, id, None, None, Some(model), Utc::now())
            .await?
            .ok_or(Error::NotFound)
    }

    /// Deletes a conversation, stopping its answers first.
    pub async fn delete_conversation(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
    ) -> Result<(), Error> {
        if self
            .database
            .find_conversation(user.id, id)
            .await?
            .is_none()
        {
            return Err(Error::NotFound);
        }
        self.live.stop_conversation(id);
        self.database.delete_conversation(user.id, id).await?;
        Ok(())
    }

    /// A conversation with its calls' totals and its messages.
    pub async fn conversation_with_totals(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
    ) -> Result<(db::ConversationEntry, Vec<ChatMessage>), Error> {
        let (conversation, messages) = self.conversation(user, id).await?;
        // The totals count the rows still queued: they are written first.
        self.flush_usage().await;
        let totals = self
            .database
            .conversation_totals(&[id])
            .await?
            .into_iter()
            .next()
            .map(|(_, totals)| totals)
            .unwrap_or_default();
        Ok((
            db::ConversationEntry {
                conversation,
                totals,
            },
            messages,
        ))
    }

    /// A conversation's title as it is now (a first message may have named it).
    pub async fn conversation_title(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
    ) -> Result<String, Error> {
        Ok(self
            .database
            .find_conversation(user.id, id)
            .await?
            .ok_or(Error::NotFound)?
            .title)
    }

    /// A conversation with its messages.
    pub async fn conversation(
        &self,
        user: &AuthenticatedUser,
        id: ConversationId,
    ) -> Result<(conversations::Model, Vec<ChatMessage>), Error> {
        let conversation = self
            .database
            .find_conversation(user.id, id)
            .await?
            .ok_or(Error::NotFound)?;
        let messages = self
            .database
            .messages_of(user.id, id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok((
            conversation,
            messages.into_iter().map(ChatMessage::from).collect(),
        ))
    }

    /// The model new conversations use when none is chosen.
    pub async fn default_model(&self, user: &AuthenticatedUser) -> Result<Option<String>, Error> {
        Ok(self
            .database
            .find_user(user.id)
            .await?
            .and_then(|found| found.preferences)
            .and_then(|preferences| {
                preferences
                    .get(DEFAULT_MODEL_KEY)
                    .and_then(|value| value.as_str().map(str::to_owned))
            }))
    }

    pub async fn set_default_model(
        &self,
        user: &AuthenticatedUser,
        model: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let model = check_model_name(model)?;
        self.database
            .set_preference(
                user.id,
                DEFAULT_MODEL_KEY,
                model
                    .clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            )
            .await?;
        Ok(model)
    }
}
