//! A person's AI provider credentials: API keys for OpenAI, Anthropic and Gemini, base URLs (and
//! optional keys) for local OpenAI-compatible servers. A key is encrypted before it reaches the
//! database and never leaves the server again: callers get its last four characters only.

use chrono::{DateTime, Utc};
use db::ids::ProviderCredentialId;
use db::tables::provider_credentials::{self, CredentialStatus, ProviderKind};
use db::{NewAuditEntry, NewCredential};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::secrets::MasterKey;
use crate::{AuthenticatedUser, Error, RequestMeta, Services};

/// What may be shown of a stored credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSummary {
    pub id: ProviderCredentialId,
    pub provider: ProviderKind,
    pub label: String,
    pub base_url: Option<String>,
    pub key_last_four: Option<String>,
    pub status: CredentialStatus,
    pub updated_at: DateTime<Utc>,
}

impl From<provider_credentials::Model> for CredentialSummary {
    fn from(model: provider_credentials::Model) -> Self {
        Self {
            id: model.id,
            provider: model.provider,
            label: model.label,
            base_url: model.base_url,
            key_last_four: model.key_last_four,
            status: model.status,
            updated_at: model.updated_at,
        }
    }
}

pub struct SaveCredential {
    pub provider: ProviderKind,
    pub label: String,
    pub api_key: Option<SecretString>,
    pub base_url: Option<String>,
}

/// The gateway's kind for a stored credential's kind (the same names: tested below).
pub(crate) fn llm_kind(kind: ProviderKind) -> llm::ProviderKind {
    match kind {
        ProviderKind::OpenAi => llm::ProviderKind::OpenAi,
        ProviderKind::Anthropic => llm::ProviderKind::Anthropic,
        ProviderKind::Gemini => llm::ProviderKind::Gemini,
        ProviderKind::OpenAiCompatible => llm::ProviderKind::OpenAiCompatible,
    }
}

/// The stored credential kind for a gateway's kind.
pub(crate) fn stored_kind(kind: llm::ProviderKind) -> ProviderKind {
    match kind {
        llm::ProviderKind::OpenAi => ProviderKind::OpenAi,
        llm::ProviderKind::Anthropic => ProviderKind::Anthropic,
        llm::ProviderKind::Gemini => ProviderKind::Gemini,
        llm::ProviderKind::OpenAiCompatible => ProviderKind::OpenAiCompatible,
    }
}

pub fn provider_name(provider: ProviderKind) -> &'static str {
    llm_kind(provider).name()
}

/// What the ciphertext is bound to.
fn binding(user: &AuthenticatedUser, provider: ProviderKind, label: &str) -> String {
    binding_of(user.id, provider, label)
}

pub(crate) fn binding_of(user_id: db::ids::UserId, provider: ProviderKind, label: &str) -> String {
    format!("{user_id}|{}|{label}", provider_name(provider))
}

/// Re-encrypts every stored provider key from `old` to `new` in one transaction (all or
/// nothing): the master-key rotation behind `server rotate-master-key`. Returns how many keys
/// changed.
pub async fn rotate_master_key(
    database: &db::Database,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, Error> {
    if old.version() == new.version() {
        return Err(Error::Invalid(
            "the new master key must have another version than the old one".into(),
        ));
    }
    let check = new.check();
    database
        .reencrypt_credentials(
            |credential, stored| {
                let binding =
                    binding_of(credential.user_id, credential.provider, &credential.label);
                let key = old.decrypt(stored, &binding)?;
                new.encrypt(&key, &binding)
            },
            (crate::secrets::MASTER_KEY_CHECK, &check),
            chrono::Utc::now(),
        )
        .await?
}

fn check_label(label: &str) -> Result<String, Error> {
    let label = label.trim();
    let label = if label.is_empty() { "default" } else { label };
    if label.chars().count() > 60 {
        return Err(Error::Invalid(
            "The label must have at most 60 characters.".into(),
        ));
    }
    Ok(label.to_owned())
}

fn check_key(key: &SecretString) -> Result<(), Error> {
    let key = key.expose_secret();
    if key.len() < 8
        || key.len() > 500
        || key
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(Error::Invalid(
            "That does not look like an API key: paste it whole, without spaces.".into(),
        ));
    }
    Ok(())
}

fn check_base_url(url: &str) -> Result<String, Error> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && url.len() <= 500 && !url.chars().any(char::is_whitespace) =>
        {
            Ok(url.to_owned())
        }
        _ => Err(Error::Invalid(
            "Enter the server's address, such as http://127.0.0.1:11434/v1.".into(),
        )),
    }
}

fn last_four(key: &SecretString) -> String {
    let characters: Vec<char> = key.expose_secret().chars().collect();
    characters[characters.len().saturating_sub(4)..]
        .iter()
        .collect()
}

impl Services {
    pub async fn list_credentials(
        &self,
        user: &AuthenticatedUser,
    ) -> Result<Vec<CredentialSummary>, Error> {
        Ok(self
            .database
            .credentials_of(user.id)
            .await?
            .into_iter()
            .map(CredentialSummary::from)
            .collect())
    }

    /// Adds a credential, or replaces the one with the same provider and label.
    pub async fn save_credential(
        &self,
        user: &AuthenticatedUser,
        input: SaveCredential,
        meta: &RequestMeta,
    ) -> Result<CredentialSummary, Error> {
        let label = check_label(&input.label)?;
        let api_key = input
            .api_key
            .filter(|key| !key.expose_secret().trim().is_empty());
        let base_url = match input.provider {
            ProviderKind::OpenAiCompatible => {
                let url = check_base_url(input.base_url.as_deref().unwrap_or_default())?;
                // Private, loopback and link-local addresses only where an admin allowed them.
                self.ai
                    .gateway
                    .address_policy()
                    .check_url(&url)
                    .map_err(|error| Error::Invalid(error.describe()))?;
                Some(url)
            }
            _ => {
                if api_key.is_none() {
                    return Err(Error::Invalid("Paste the API key.".into()));
                }
                None
            }
        };
        if let Some(key) = &api_key {
            check_key(key)?;
        }
        let encrypted_key = api_key
            .as_ref()
            .map(|key| {
                self.master_key
                    .encrypt(key, &binding(user, input.provider, &label))
            })
            .transpose()?;
        let saved = self
            .database
            .save_credential(
                NewCredential {
                    user_id: user.id,
                    provider: input.provider,
                    label,
                    base_url,
                    encrypted_key,
                    key_last_four: api_key.as_ref().map(last_four),
                },
                Utc::now(),
            )
            .await?;
        self.forget_credentials(user.id);
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "provider_key.saved",
                target_type: Some("provider_credential"),
                target_id: Some(saved.id.to_string()),
                detail: Some(
                    json!({ "provider": provider_name(saved.provider), "label": saved.label }),
                ),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        Ok(saved.into())
    }

    /// Removes one of the user's credentials; another user's id is "not found".
    pub async fn remove_credential(
        &self,
        user: &AuthenticatedUser,
        id: ProviderCredentialId,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        if !self.database.delete_credential(user.id, id).await? {
            return Err(Error::NotFound);
        }
        self.forget_credentials(user.id);
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "provider_key.removed",
                target_type: Some("provider_credential"),
                target_id: Some(id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    /// The key in clear, for the AI gateway to call the provider with. Only for the owner.
    pub async fn credential_key(
        &self,
        user: &AuthenticatedUser,
        id: ProviderCredentialId,
    ) -> Result<Option<SecretString>, Error> {
        let credential = self
            .database
            .find_credential(user.id, id)
            .await?
            .ok_or(Error::NotFound)?;
        credential
            .encrypted_key
            .as_deref()
            .map(|stored| {
                self.master_key.decrypt(
                    stored,
                    &binding(user, credential.provider, &credential.label),
                )
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_kinds_are_named_as_the_gateway_names_them() {
        use db::sea_orm::{ActiveEnum, Iterable};
        for kind in ProviderKind::iter() {
            assert_eq!(kind.to_value(), llm_kind(kind).name());
            assert_eq!(provider_name(kind), llm_kind(kind).name());
            assert_eq!(stored_kind(llm_kind(kind)), kind);
        }
        assert_eq!(ProviderKind::iter().count(), llm::ProviderKind::ALL.len());
    }

    #[test]
    fn inputs_are_checked() {
        assert_eq!(check_label("  ").unwrap(), "default");
        assert!(check_label(&"l".repeat(61)).is_err());
        assert!(check_key(&SecretString::from("sk-abc def ghi".to_owned())).is_err());
        assert!(check_key(&SecretString::from("short".to_owned())).is_err());
        assert!(check_key(&SecretString::from("sk-proj-abcdefgh1234".to_owned())).is_ok());
        assert_eq!(
            check_base_url("http://127.0.0.1:11434/v1/").unwrap(),
            "http://127.0.0.1:11434/v1"
        );
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("http://").is_err());
        assert_eq!(
            last_four(&SecretString::from("sk-proj-abcdefgh1234".to_owned())),
            "1234"
        );
    }
}
