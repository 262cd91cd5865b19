//! The signed-in person's own account: profile, password, deletion. Each acts on the caller only.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::Profile;

/// `POST /api/account/profile`: the caller's profile.
#[server(prefix = "/api", endpoint = "account/profile")]
pub async fn load_profile() -> Result<Profile, AppError> {
    let user = super::request::require_user().await?;
    let account = super::request::services()?
        .profile(&user)
        .await
        .map_err(super::reject_service_error)?;
    Ok(Profile {
        email: account.email,
        name: account.name,
        avatar_url: account.avatar_url,
    })
}

/// `POST /api/account/update-profile`: changes name and avatar URL.
#[server(prefix = "/api", endpoint = "account/update-profile")]
pub async fn update_profile(name: String, avatar_url: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    super::request::services()?
        .update_profile(&user, &name, &avatar_url, &super::request::meta())
        .await
        .map_err(super::reject_service_error)
}

/// `POST /api/account/change-password`: ends every session, then signs this browser in again.
#[server(prefix = "/api", endpoint = "account/change-password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    let token = super::request::services()?
        .change_password(
            &user,
            services::SecretString::from(current_password),
            services::SecretString::from(new_password),
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)?;
    super::request::set_session_cookie(&token)
}

/// `POST /api/account/delete`: deletes the account and all it owns, after checking the password.
#[server(prefix = "/api", endpoint = "account/delete")]
pub async fn delete_account(password: String) -> Result<(), AppError> {
    let user = super::request::require_user().await?;
    super::request::services()?
        .delete_account(
            &user,
            services::SecretString::from(password),
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)?;
    super::request::clear_session_cookie()
}
