//! Sign-up, sign-in, sign-out and "who am I". The session lives server-side; the browser holds
//! only a random token in an HttpOnly cookie.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::CurrentUser;

/// `POST /api/auth/sign-up`: creates an account and signs it in. Any other field sent (a role, a
/// tier) is ignored: the first account becomes admin, every other one starts free.
#[server(prefix = "/api", endpoint = "auth/sign-up")]
pub async fn sign_up(
    email: String,
    name: String,
    password: String,
) -> Result<CurrentUser, AppError> {
    use services::accounts::SignUp;
    let services = super::request::services()?;
    let meta = super::request::meta();
    let (user, token) = services
        .sign_up(
            SignUp {
                email,
                name,
                password: services::SecretString::from(password),
            },
            &meta,
        )
        .await
        .map_err(super::reject_service_error)?;
    super::request::set_session_cookie(&token)?;
    Ok(super::request::to_wire(&user))
}

/// `POST /api/auth/sign-in`: signs in with email and password. A wrong email and a wrong
/// password get the same message.
#[server(prefix = "/api", endpoint = "auth/sign-in")]
pub async fn sign_in(email: String, password: String) -> Result<CurrentUser, AppError> {
    let services = super::request::services()?;
    let meta = super::request::meta();
    // A session the browser may still hold is ended: the id rotates at every sign-in.
    if let Some(previous) = super::request::current_user().await? {
        services
            .sign_out(&previous, &meta)
            .await
            .map_err(super::reject_service_error)?;
    }
    let (user, token) = services
        .sign_in(&email, services::SecretString::from(password), &meta)
        .await
        .map_err(super::reject_service_error)?;
    super::request::set_session_cookie(&token)?;
    Ok(super::request::to_wire(&user))
}

/// `POST /api/auth/sign-out`: ends this session.
#[server(prefix = "/api", endpoint = "auth/sign-out")]
pub async fn sign_out() -> Result<(), AppError> {
    let services = super::request::services()?;
    let user = super::request::require_user().await?;
    services
        .sign_out(&user, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    super::request::clear_session_cookie()
}

/// `POST /api/auth/me`: the signed-in person, or nothing for a visitor. Public.
#[server(prefix = "/api", endpoint = "auth/me")]
pub async fn who_am_i() -> Result<Option<CurrentUser>, AppError> {
    Ok(super::request::current_user()
        .await?
        .map(|user| super::request::to_wire(&user)))
}
