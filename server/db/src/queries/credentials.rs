use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};

use crate::ids::{ProviderCredentialId, UserId};
use crate::tables::provider_credentials::{self, CredentialStatus, ProviderKind};
use crate::{Database, Error};

/// A credential to store: the key already encrypted by the caller.
#[derive(Clone, Debug)]
pub struct NewCredential {
    pub user_id: UserId,
    pub provider: ProviderKind,
    pub label: String,
    pub base_url: Option<String>,
    pub encrypted_key: Option<Vec<u8>>,
    pub key_last_four: Option<String>,
}

impl Database {
    /// The user's credentials, by provider then label.
    pub async fn credentials_of(
        &self,
        user_id: UserId,
    ) -> Result<Vec<provider_credentials::Model>, Error> {
        Ok(provider_credentials::Entity::find()
            .filter(provider_credentials::Column::UserId.eq(user_id))
            .order_by_asc(provider_credentials::Column::Provider)
            .order_by_asc(provider_credentials::Column::Label)
            .all(self.connection())
            .await?)
    }

    /// Adds the credential, or replaces the user's one with the same provider and label.
    pub async fn save_credential(
        &self,
        new: NewCredential,
        now: DateTime<Utc>,
    ) -> Result<provider_credentials::Model, Error> {
        let existing = provider_credentials::Entity::find()
            .filter(provider_credentials::Column::UserId.eq(new.user_id))
            .filter(provider_credentials::Column::Provider.eq(new.provider))
            .filter(provider_credentials::Column::Label.eq(new.label.clone()))
            .one(self.connection())
            .await?;
        match existing {
            Some(existing) => {
                let mut active = existing.into_active_model();
                active.base_url = Set(new.base_url);
                active.encrypted_key = Set(new.encrypted_key);
                active.key_last_four = Set(new.key_last_four);
                active.status = Set(CredentialStatus::Unverified);
                active.last_verified_at = Set(None);
                active.updated_at = Set(now);
                Ok(active.update(self.connection()).await?)
            }
            None => {
                let model = provider_credentials::ActiveModel {
                    id: Set(ProviderCredentialId::new()),
                    user_id: Set(new.user_id),
                    provider: Set(new.provider),
                    label: Set(new.label),
                    base_url: Set(new.base_url),
                    encrypted_key: Set(new.encrypted_key),
                    key_last_four: Set(new.key_last_four),
                    status: Set(CredentialStatus::Unverified),
                    last_verified_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                };
                Ok(model.insert(self.connection()).await?)
            }
        }
    }

    /// The user's credential with this id; `None` for another user's.
    pub async fn find_credential(
        &self,
        user_id: UserId,
        id: ProviderCredentialId,
    ) -> Result<Option<provider_credentials::Model>, Error> {
        Ok(provider_credentials::Entity::find_by_id(id)
            .filter(provider_credentials::Column::UserId.eq(user_id))
            .one(self.connection())
            .await?)
    }

    /// Deletes the user's credential; `false` when the user has none with this id.
    pub async fn delete_credential(
        &self,
        user_id: UserId,
        id: ProviderCredentialId,
    ) -> Result<bool, Error> {
        let result = provider_credentials::Entity::delete_many()
            .filter(provider_credentials::Column::Id.eq(id))
            .filter(provider_credentials::Column::UserId.eq(user_id))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }
}

impl Database {
    /// Re-encrypts every stored key in one transaction: `reencrypt` gets each credential and
    /// returns its new ciphertext. Either every row changes or none does. Returns how many keys
    /// were re-encrypted.
    /// One stored encrypted key (any), to check a master key against on a database that has no
    /// key check yet.
    pub async fn any_encrypted_credential(
        &self,
    ) -> Result<Option<provider_credentials::Model>, Error> {
        Ok(provider_credentials::Entity::find()
            .filter(provider_credentials::Column::EncryptedKey.is_not_null())
            .one(self.connection())
            .await?)
    }

    /// Re-encrypts every stored key and writes `setting` (name, value: the new key's check) in
    /// the same transaction: all or nothing.
    pub async fn reencrypt_credentials<E>(
        &self,
        mut reencrypt: impl FnMut(&provider_credentials::Model, &[u8]) -> Result<Vec<u8>, E>,
        setting: (&str, &str),
        now: DateTime<Utc>,
    ) -> Result<Result<usize, E>, Error> {
        let transaction = self.begin_write().await?;
        super::server_settings::upsert_server_setting(&transaction, setting.0, setting.1, now)
            .await?;
        let rows = provider_credentials::Entity::find()
            .filter(provider_credentials::Column::EncryptedKey.is_not_null())
            .all(&transaction)
            .await?;
        let mut count = 0;
        for row in rows {
            let Some(stored) = row.encrypted_key.clone() else {
                continue;
            };
            let reencrypted = match reencrypt(&row, &stored) {
                Ok(reencrypted) => reencrypted,
                Err(error) => {
                    transaction.rollback().await?;
                    return Ok(Err(error));
                }
            };
            let mut active = row.into_active_model();
            active.encrypted_key = Set(Some(reencrypted));
            active.updated_at = Set(now);
            active.update(&transaction).await?;
            count += 1;
        }
        transaction.commit().await?;
        Ok(Ok(count))
    }
}
