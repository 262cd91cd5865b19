//! The model side: the [`Model`] trait the loop asks, and [`GatewayModel`], the real one over
//! `llm::Gateway` with the mode's ordered model list (the gateway falls back to the next model
//! when one fails before output).

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One whole model response, as the journal saves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The text.
    pub text: String,
    /// The tool calls (with Gemini's thought signatures).
    pub tool_calls: Vec<llm::ToolCall>,
    /// The reasoning text, when the provider showed it.
    #[serde(default)]
    pub reasoning: String,
    /// The provider's signatures of that reasoning (Anthropic's thinking blocks), kept for the
    /// gateway to send back once requests turn extended thinking on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning_signatures: Vec<String>,
    /// The reasoning as signed blocks (Anthropic's thinking), sent back with this turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning_blocks: Vec<llm::ReasoningBlock>,
    /// The provider's token counts.
    pub usage: llm::Usage,
    /// What the call cost, in micro-dollars (0 when the price is unknown).
    pub cost_micros: u64,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// The models that failed before it, and why.
    #[serde(default)]
    pub fallbacks: Vec<FailedModel>,
}

/// A model that failed before the one that answered (services record its usage too).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedModel {
    /// Its provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Why it failed, for people.
    pub reason: String,
    /// The tokens it used before failing, if it reported any.
    pub usage: Option<llm::Usage>,
}

/// Asks a model.
#[async_trait]
pub trait Model: Send + Sync {
    /// The whole response to `request`. `call_key` names the call (`<task>/step-<n>`, or
    /// `<task>/step-<n>-compaction`): the loop never asks for a key whose response the journal
    /// holds, but asks again under the same key after an error (an error means no response).
    async fn complete(&self, call_key: &str, request: &llm::Request) -> Result<ModelResponse>;
    /// The context window of the model that will be asked first, in tokens, when known.
    fn context_window(&self) -> Option<u64>;
}

/// The mode's models through the gateway.
#[derive(Clone, Debug)]
pub struct GatewayModel {
    gateway: llm::Gateway,
    targets: Vec<llm::Target>,
    catalog: Arc<llm::Catalog>,
}

impl GatewayModel {
    /// Asks `targets` in order (the mode's model list), pricing with `catalog`.
    pub fn new(
        gateway: llm::Gateway,
        targets: Vec<llm::Target>,
        catalog: Arc<llm::Catalog>,
    ) -> Self {
        Self {
            gateway,
            targets,
            catalog,
        }
    }
}

#[async_trait]
impl Model for GatewayModel {
    async fn complete(&self, _call_key: &str, request: &llm::Request) -> Result<ModelResponse> {
        let mut stream = Box::pin(self.gateway.stream(self.targets.clone(), request.clone()));
        let mut answer = llm::Answer::default();
        let mut answering: Option<usize> = None;
        let mut fallbacks = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(llm::StreamItem::Answering { target, failed }) => {
                    answering = Some(target);
                    fallbacks = failed
                        .iter()
                        .map(|attempt| FailedModel {
                            provider: attempt.provider.name().to_owned(),
                            model: attempt.model.clone(),
                            reason: attempt.reason.clone(),
                            usage: attempt.usage,
                        })
                        .collect();
                }
                Ok(llm::StreamItem::Event(event)) => answer.push(&event),
                Ok(llm::StreamItem::UsageSoFar(_)) => {}
                Err(failure) => {
                    return Err(Error::Model(failure.error.describe()));
                }
            }
        }
        let target = answering
            .and_then(|index| self.targets.get(index))
            .ok_or_else(|| Error::Model("no model answered".into()))?;
        let usage = answer.usage.unwrap_or_default();
        let provider = target.endpoint.kind();
        Ok(ModelResponse {
            text: answer.text,
            tool_calls: answer.tool_calls,
            reasoning: answer.reasoning,
            reasoning_signatures: answer.reasoning_signatures,
            reasoning_blocks: answer.reasoning_blocks,
            usage,
            cost_micros: self
                .catalog
                .cost_micros(provider, &target.model, &usage)
                .unwrap_or(0),
            provider: provider.name().to_owned(),
            model: target.model.clone(),
            fallbacks,
        })
    }

    fn context_window(&self) -> Option<u64> {
        let target = self.targets.first()?;
        self.catalog
            .find(target.endpoint.kind(), &target.model)
            .and_then(|info| info.context_window)
    }
}
