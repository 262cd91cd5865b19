use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, SqlErr,
};

use crate::ids::UserId;
use crate::tables::users::{self, Role, Tier};
use crate::{Backend, Database, Error};

/// What sign-up stores. Role and tier are not chosen by the caller: the first account of the
/// instance becomes its admin, every other one starts as a free user.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Already normalised (trimmed, lower case).
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

impl Database {
    /// Creates a user. Fails with [`Error::EmailTaken`] when the email is registered already.
    pub async fn create_user(
        &self,
        new_user: NewUser,
        now: DateTime<Utc>,
    ) -> Result<users::Model, Error> {
        let transaction = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            // Two first sign-ups at once must not both become admin.
            transaction
                .execute_unprepared("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        let existing = users::Entity::find().count(&transaction).await?;
        // The first account is the person who installed the server: its administrator, on
        // the top tier (held to the free plan, they could not try their own instance).
        let (role, tier) = if existing == 0 {
            (Role::Admin, Tier::Enterprise)
        } else {
            (Role::User, Tier::Free)
        };
        let model = users::ActiveModel {
            id: Set(UserId::new()),
            email: Set(new_user.email),
            name: Set(new_user.name),
            password_hash: Set(new_user.password_hash),
            role: Set(role),
            tier: Set(tier),
            avatar_url: Set(None),
            preferences: Set(None),
            disabled_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let inserted = match model.insert(&transaction).await {
            Ok(inserted) => inserted,
            Err(error) => {
                if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                    return Err(Error::EmailTaken);
                }
                return Err(error.into());
            }
        };
        transaction.commit().await?;
        Ok(inserted)
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<users::Model>, Error> {
        Ok(users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .one(self.connection())
            .await?)
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<users::Model>, Error> {
        Ok(users::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// Changes name and avatar of `id`; `Ok(None)` when there is no such user.
    pub async fn update_profile(
        &self,
        id: UserId,
        name: String,
        avatar_url: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<users::Model>, Error> {
        let Some(user) = self.find_user(id).await? else {
            return Ok(None);
        };
        let mut active = user.into_active_model();
        active.name = Set(name);
        active.avatar_url = Set(avatar_url);
        active.updated_at = Set(now);
        Ok(Some(active.update(self.connection()).await?))
    }

    pub async fn update_password_hash(
        &self,
        id: UserId,
        password_hash: String,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(users::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Every account, oldest first (for administrators).
    pub async fn list_users(&self) -> Result<Vec<users::Model>, Error> {
        Ok(users::Entity::find()
            .order_by_asc(users::Column::CreatedAt)
            .all(self.connection())
            .await?)
    }

    /// Sets role, tier and the disabled mark of a user; `Ok(None)` when there is no such user.
    pub async fn update_user_access(
        &self,
        id: UserId,
        role: Role,
        tier: Tier,
        disabled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<users::Model>, Error> {
        let Some(user) = self.find_user(id).await? else {
            return Ok(None);
        };
        let mut active = user.into_active_model();
        active.role = Set(role);
        active.tier = Set(tier);
        active.disabled_at = Set(disabled_at);
        active.updated_at = Set(now);
        Ok(Some(active.update(self.connection()).await?))
    }

    /// Deletes the user and, by cascade, their sessions, projects, files, conversations, usage
    /// and provider credentials. Audit rows stay, with the actor set to null.
    pub async fn delete_user(&self, id: UserId) -> Result<(), Error> {
        users::Entity::delete_by_id(id)
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Sets one key of the user's stored preferences (JSON object), keeping the others; a
    /// `null` value removes the key.
    pub async fn set_preference(
        &self,
        id: UserId,
        key: &str,
        value: serde_json::Value,
    ) -> Result<(), Error> {
        let Some(user) = self.find_user(id).await? else {
            return Ok(());
        };
        let mut preferences = user
            .preferences
            .clone()
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(object) = preferences.as_object_mut() {
            if value.is_null() {
                object.remove(key);
            } else {
                object.insert(key.to_owned(), value);
            }
        }
        users::Entity::update_many()
            .col_expr(users::Column::Preferences, Expr::value(preferences))
            .filter(users::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }
}
