//! The caller's AI provider credentials. Keys go in, never out: only their last four characters
//! come back.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{CredentialTestResult, ProviderCredential};

#[cfg(feature = "ssr")]
fn to_wire(summary: services::providers::CredentialSummary) -> ProviderCredential {
    use crate::types::ProviderChoice;
    use db::tables::provider_credentials::{CredentialStatus, ProviderKind};
    ProviderCredential {
        id: summary.id.to_string(),
        provider: match summary.provider {
            ProviderKind::OpenAi => ProviderChoice::OpenAi,
            ProviderKind::Anthropic => ProviderChoice::Anthropic,
            ProviderKind::Gemini => ProviderChoice::Gemini,
            ProviderKind::OpenAiCompatible => ProviderChoice::OpenAiCompatible,
        },
        label: summary.label,
        base_url: summary.base_url,
        key_last_four: summary.key_last_four,
        status: match summary.status {
            CredentialStatus::Unverified => "not tested yet",
            CredentialStatus::Valid => "working",
            CredentialStatus::Invalid => "refused by the provider",
        }
        .to_owned(),
    }
}

/// `POST /api/providers/list`: the caller's credentials.
#[server(prefix = "/api", endpoint = "providers/list")]
pub async fn list_credentials() -> Result<Vec<ProviderCredential>, AppError> {
    let user = super::request::require_user().await?;
    let credentials = super::request::services()?
        .list_credentials(&user)
        .await
        .map_err(super::reject_service_error)?;
    Ok(credentials.into_iter().map(to_wire).collect())
}

/// `POST /api/providers/save`: adds a credential, or replaces the one with the same provider and
/// label. `api_key` may be empty for a local server that needs none.
#[server(prefix = "/api", endpoint = "providers/save")]
pub async fn save_credential(
    provider: String,
    label: String,
    api_key: String,
    base_url: String,
) -> Result<ProviderCredential, AppError> {
    use db::tables::provider_credentials::ProviderKind;
    let user = super::request::require_user().await?;
    let choice: crate::types::ProviderChoice = provider
        .parse()
        .map_err(|message| super::reject(AppError::BadRequest(message)))?;
    let provider = match choice {
        crate::types::ProviderChoice::OpenAi => ProviderKind::OpenAi,
        crate::types::ProviderChoice::Anthropic => ProviderKind::Anthropic,
        crate::types::ProviderChoice::Gemini => ProviderKind::Gemini,
        crate::types::ProviderChoice::OpenAiCompatible => ProviderKind::OpenAiCompatible,
    };
    let saved = super::request::services()?
        .save_credential(
            &user,
            services::providers::SaveCredential {
                provider,
                label,
                api_key: Some(services::SecretString::from(api_key)),
                base_url: Some(base_url),
            },
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)?;
    Ok(to_wire(saved))
}

/// `POST /api/providers/remove`: removes one of the caller's credentials.
#[server(prefix = "/api", endpoint = "providers/remove")]
pub async fn remove_credential(id: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let id = id.parse().map_err(|_| super::reject(AppError::NotFound))?;
    super::request::services()?
        .remove_credential(&user, id, &super::request::meta())
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/providers/test`: tests one of the caller's keys with a cheap call to its provider
/// (the model list) and stores whether it works.
#[server(prefix = "/api", endpoint = "providers/test")]
pub async fn test_credential(id: String) -> Result<CredentialTestResult, AppError> {
    let user = super::request::require_user().await?;
    let id = id.parse().map_err(|_| super::reject(AppError::NotFound))?;
    let result = super::request::services()?
        .test_credential(&user, id)
        .await
        .map_err(super::reject_service_error)?;
    Ok(CredentialTestResult {
        ok: result.ok,
        message: result.message,
    })
}
