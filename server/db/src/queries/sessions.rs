use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
};

use crate::ids::{SessionId, UserId};
use crate::tables::{sessions, users};
use crate::{Database, Error};

impl Database {
    /// Stores a new session for `user_id`, identified by the hash of its token.
    pub async fn create_session(
        &self,
        user_id: UserId,
        token_hash: String,
        ip_address: Option<String>,
        user_agent: Option<String>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<sessions::Model, Error> {
        let model = sessions::ActiveModel {
            id: Set(SessionId::new()),
            user_id: Set(user_id),
            token_hash: Set(token_hash),
            ip_address: Set(ip_address),
            user_agent: Set(user_agent),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(expires_at),
        };
        Ok(model.insert(self.connection()).await?)
    }

    /// The session with this token hash, with its user.
    pub async fn find_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(sessions::Model, users::Model)>, Error> {
        let found = sessions::Entity::find()
            .filter(sessions::Column::TokenHash.eq(token_hash))
            .find_also_related(users::Entity)
            .one(self.connection())
            .await?;
        Ok(found.and_then(|(session, user)| user.map(|user| (session, user))))
    }

    pub async fn touch_session(
        &self,
        session: sessions::Model,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut active = session.into_active_model();
        active.last_seen_at = Set(now);
        active.update(self.connection()).await?;
        Ok(())
    }

    pub async fn delete_session(&self, id: SessionId) -> Result<(), Error> {
        sessions::Entity::delete_by_id(id)
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Ends every session of a user (sign-out everywhere, password change, disable, delete).
    pub async fn delete_sessions_of_user(&self, user_id: UserId) -> Result<u64, Error> {
        let result = sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user_id))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected)
    }
}
