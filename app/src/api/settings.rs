//! Display preferences: theme and editor font size, kept in long-lived cookies so that the server
//! renders every page right from the first byte.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{Preferences, Theme};

/// `POST /api/settings/theme`: remembers the theme and returns it.
#[server(prefix = "/api", endpoint = "settings/theme")]
pub async fn set_theme(theme: String) -> Result<Theme, AppError> {
    let theme: Theme = theme.parse().map_err(|error: crate::types::UnknownTheme| {
        super::reject(AppError::BadRequest(error.to_string()))
    })?;
    cookies::remember(crate::types::THEME_COOKIE, theme.as_str())?;
    Ok(theme)
}

/// `POST /api/settings/editor-font-size`: remembers the editor font size (10 to 24 pixels).
#[server(prefix = "/api", endpoint = "settings/editor-font-size")]
pub async fn set_editor_font_size(size: String) -> Result<u8, AppError> {
    let size = crate::types::parse_editor_font_size(&size)
        .map_err(|error| super::reject(AppError::BadRequest(error.to_string())))?;
    cookies::remember(crate::types::EDITOR_FONT_SIZE_COOKIE, &size.to_string())?;
    Ok(size)
}

/// `POST /api/settings/reset`: forgets every display preference and returns the defaults.
#[server(prefix = "/api", endpoint = "settings/reset")]
pub async fn reset_preferences() -> Result<Preferences, AppError> {
    cookies::forget(crate::types::THEME_COOKIE)?;
    cookies::forget(crate::types::EDITOR_FONT_SIZE_COOKIE)?;
    Ok(Preferences::default())
}

#[cfg(feature = "ssr")]
mod cookies {
    use http::HeaderValue;
    use http::header::SET_COOKIE;
    use leptos::prelude::use_context;
    use leptos_axum::ResponseOptions;

    use crate::error::AppError;

    const ONE_YEAR_SECONDS: u32 = 365 * 24 * 60 * 60;

    /// Adds a `Set-Cookie` for a preference. Values are checked by the caller, so they are plain
    /// tokens. Preferences are not secrets: no `Secure`, so they also work on plain-http loopback.
    pub fn remember(name: &str, value: &str) -> Result<(), AppError> {
        set(&format!(
            "{name}={value}; Path=/; Max-Age={ONE_YEAR_SECONDS}; SameSite=Lax; HttpOnly"
        ))
    }

    pub fn forget(name: &str) -> Result<(), AppError> {
        set(&format!(
            "{name}=; Path=/; Max-Age=0; SameSite=Lax; HttpOnly"
        ))
    }

    fn set(cookie: &str) -> Result<(), AppError> {
        let response = use_context::<ResponseOptions>()
            .ok_or_else(|| AppError::internal("no ResponseOptions in a server function"))?;
        let value = HeaderValue::from_str(cookie).map_err(AppError::internal)?;
        response.append_header(SET_COOKIE, value);
        Ok(())
    }
}

/// The preferences of the request being rendered, from its cookies.
#[cfg(feature = "ssr")]
pub fn preferences_of_request() -> Preferences {
    use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .headers
                .get(http::header::COOKIE)
                .and_then(|value| value.to_str().ok())
                .map(Preferences::from_cookie_header)
        })
        .unwrap_or_default()
}
