use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use crate::ids::{AccessTokenId, UserId};
use crate::tables::{access_tokens, users};
use crate::{Database, Error};

impl Database {
    pub async fn create_access_token(
        &self,
        user_id: UserId,
        name: String,
        scopes: String,
        token_hash: String,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<access_tokens::Model, Error> {
        let model = access_tokens::ActiveModel {
            id: Set(AccessTokenId::new()),
            user_id: Set(user_id),
            name: Set(name),
            token_hash: Set(token_hash),
            created_at: Set(now),
            expires_at: Set(expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            scopes: Set(scopes),
        };
        Ok(model.insert(self.connection()).await?)
    }

    /// The user's tokens, newest first.
    pub async fn access_tokens_of(
        &self,
        user_id: UserId,
    ) -> Result<Vec<access_tokens::Model>, Error> {
        Ok(access_tokens::Entity::find()
            .filter(access_tokens::Column::UserId.eq(user_id))
            .order_by_desc(access_tokens::Column::CreatedAt)
            .all(self.connection())
            .await?)
    }

    /// The token with this hash, with its user.
    pub async fn find_access_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(access_tokens::Model, users::Model)>, Error> {
        let found = access_tokens::Entity::find()
            .filter(access_tokens::Column::TokenHash.eq(token_hash))
            .find_also_related(users::Entity)
            .one(self.connection())
            .await?;
        Ok(found.and_then(|(token, user)| user.map(|user| (token, user))))
    }

    pub async fn mark_access_token_used(
        &self,
        id: AccessTokenId,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        access_tokens::Entity::update_many()
            .col_expr(access_tokens::Column::LastUsedAt, Expr::value(now))
            .filter(access_tokens::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Revokes one of the user's tokens; `false` when the user has no such (unrevoked) token.
    pub async fn revoke_access_token(
        &self,
        user_id: UserId,
        id: AccessTokenId,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let result = access_tokens::Entity::update_many()
            .col_expr(access_tokens::Column::RevokedAt, Expr::value(now))
            .filter(access_tokens::Column::Id.eq(id))
            .filter(access_tokens::Column::UserId.eq(user_id))
            .filter(access_tokens::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Revokes every token of the user (a password change ends them all); how many.
    pub async fn revoke_access_tokens_of(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let result = access_tokens::Entity::update_many()
            .col_expr(access_tokens::Column::RevokedAt, Expr::value(now))
            .filter(access_tokens::Column::UserId.eq(user_id))
            .filter(access_tokens::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected)
    }
}
