//! Whole-project archives over HTTP: `POST /api/projects/import?name=…` takes a .zip or .tar.gz
//! as the request body, `GET /api/projects/<id>/export.zip` downloads one. Both sit under `/api/`,
//! so the authentication guard has already refused a caller without a session or token, and the
//! same-origin guard has refused a cross-site import.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use services::{AuthenticatedUser, ClientAddress, RequestMeta};

use crate::AppState;

pub const IMPORT_PATH: &str = "/api/projects/import";
pub const EXPORT_PATH: &str = "/api/projects/{project_id}/export.zip";

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    name: String,
}

fn error_response(error: services::Error) -> Response {
    let error = app::api::app_error_of(error);
    let body = serde_json::to_string(&error).unwrap_or_else(|_| "\"Unauthorized\"".to_owned());
    (
        error.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn meta_of(
    address: Option<Extension<ClientAddress>>,
    headers: &axum::http::HeaderMap,
) -> RequestMeta {
    RequestMeta {
        ip: address.map(|Extension(ClientAddress(ip))| ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.chars().take(300).collect()),
    }
}

/// Creates a project from the archive in the body; answers the new project as JSON.
pub async fn import(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    Query(query): Query<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let meta = meta_of(address, &headers);
    match state
        .services
        .import_project(&user, &query.name, body.to_vec(), &meta)
        .await
    {
        Ok(project) => axum::Json(app::api::projects::to_wire(project)).into_response(),
        Err(error) => error_response(error),
    }
}

/// The project as a .zip download.
pub async fn export(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(project_id): Path<String>,
) -> Response {
    let Ok(project) = project_id.parse() else {
        return error_response(services::Error::NotFound);
    };
    match state.services.export_project(&user, project).await {
        Ok((file_name, archive)) => {
            let disposition =
                HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
                    .unwrap_or_else(|_| {
                        HeaderValue::from_static("attachment; filename=\"project.zip\"")
                    });
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/zip"),
                    ),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                archive,
            )
                .into_response()
        }
        Err(error) => error_response(error),
    }
}
