//! What the caller's AI providers offer and what the caller used.

use leptos::prelude::*;

use crate::error::AppError;
use crate::types::{AiModels, UsageSummary};

#[cfg(feature = "ssr")]
use crate::types::dollars;

/// Micro-dollars per million tokens as dollars per million tokens.
#[cfg(feature = "ssr")]
fn price(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("${text}")
}

/// `POST /api/ai/models`: the models of the caller's providers (each provider's list merged with
/// the catalog's context windows and prices).
#[server(prefix = "/api", endpoint = "ai/models")]
pub async fn list_models() -> Result<AiModels, AppError> {
    let user = super::request::require_user().await?;
    let choices = super::request::services()?
        .available_models(&user)
        .await
        .map_err(super::reject_service_error)?;
    Ok(models_of(choices))
}

/// The wire form of the models a person can pick.
#[cfg(feature = "ssr")]
pub(crate) fn models_of(choices: services::ai::ModelChoices) -> AiModels {
    AiModels {
        models: choices
            .models
            .into_iter()
            .map(|model| crate::types::AiModel {
                route: model.route,
                display_name: model.info.display_name,
                provider: model.info.provider.name().to_owned(),
                credential_label: model.credential_label,
                context_window: model.info.context_window,
                tools: model.info.tools,
                input_price: model.info.prices.map(|prices| price(prices.input)),
                output_price: model.info.prices.map(|prices| price(prices.output)),
            })
            .collect(),
        problems: choices
            .problems
            .into_iter()
            .map(|(label, problem)| format!("{label}: {problem}"))
            .collect(),
    }
}

/// `POST /api/ai/usage`: the caller's AI calls, tokens and cost today and this month, and the
/// latest 20 calls.
#[server(prefix = "/api", endpoint = "ai/usage")]
pub async fn load_usage() -> Result<UsageSummary, AppError> {
    let user = super::request::require_user().await?;
    let report = super::request::services()?
        .usage_report(&user, 20)
        .await
        .map_err(super::reject_service_error)?;
    Ok(UsageSummary {
        requests_today: report.today.requests,
        tokens_today: report.today.tokens,
        cost_today: dollars(report.today.cost_micros),
        requests_this_month: report.this_month.requests,
        tokens_this_month: report.this_month.tokens,
        cost_this_month: dollars(report.this_month.cost_micros),
        recent: report
            .recent
            .into_iter()
            .map(|row| crate::types::UsageRow {
                at: row.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                provider: row.provider,
                model: row.model,
                mode: row.mode,
                input_tokens: u64::try_from(row.input_tokens).unwrap_or(0),
                output_tokens: u64::try_from(row.output_tokens).unwrap_or(0),
                cost: dollars(u64::try_from(row.cost_micros).unwrap_or(0)),
                outcome: match row.error_kind {
                    Some(kind) => format!("{} ({kind})", row.outcome),
                    None => row.outcome,
                },
            })
            .collect(),
    })
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn money_is_shown_in_dollars() {
        assert_eq!(dollars(1_250), "$0.0012");
        assert_eq!(dollars(12_345_678), "$12.3456");
        assert_eq!(price(2_500_000), "$2.5");
        assert_eq!(price(75_000), "$0.075");
        assert_eq!(price(0), "$0");
    }
}
