//! Budgets per task, reserved before each model call. Services make [`Budget`] a conditional
//! update in the database (exact across instances); [`MemoryBudget`] keeps it in memory.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::journal::BudgetKind;

/// A task's limits; `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLimits {
    /// Model calls.
    pub steps: Option<u64>,
    /// Input plus output tokens.
    pub tokens: Option<u64>,
    /// Cost in micro-dollars.
    pub cost_micros: Option<u64>,
    /// Wall-clock time the task may run.
    pub wall_time: Option<Duration>,
}

/// Reserves and records what a task spends.
#[async_trait]
pub trait Budget: Send + Sync {
    /// Reserves model call number `step` of `task`: `Ok(None)` when it may go ahead, or the
    /// budget that ran out. Reserving a step reserved before succeeds again without counting it
    /// twice (a resumed loop asks again).
    async fn reserve(&self, task: &str, step: u64) -> Result<Option<BudgetKind>>;
    /// Records what a model call used, under its idempotency key (the step's, or the
    /// compaction's); recording a key twice counts it once.
    async fn record(
        &self,
        task: &str,
        key: &str,
        usage: &llm::Usage,
        cost_micros: u64,
    ) -> Result<()>;
}

#[derive(Debug, Default)]
struct Spent {
    reserved: HashSet<u64>,
    recorded: HashMap<String, (u64, u64)>,
    started: Option<Instant>,
}

/// Budgets in memory, the same limits for every task; [`MemoryBudget::raise`] is "continue
/// with more budget".
#[derive(Debug, Default)]
pub struct MemoryBudget {
    limits: Mutex<BudgetLimits>,
    spent: Mutex<HashMap<String, Spent>>,
}

impl MemoryBudget {
    /// A budget with these limits.
    pub fn new(limits: BudgetLimits) -> Self {
        Self {
            limits: Mutex::new(limits),
            spent: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the limits.
    pub fn raise(&self, limits: BudgetLimits) {
        *self
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = limits;
    }

    /// Tokens and micro-dollars recorded for `task`.
    pub fn spent(&self, task: &str) -> (u64, u64) {
        let spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        spent.get(task).map_or((0, 0), |spent| {
            spent
                .recorded
                .values()
                .fold((0, 0), |(tokens, cost), (more_tokens, more_cost)| {
                    (tokens + more_tokens, cost + more_cost)
                })
        })
    }
}

#[async_trait]
impl Budget for MemoryBudget {
    async fn reserve(&self, task: &str, step: u64) -> Result<Option<BudgetKind>> {
        let limits = *self
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let spent = all.entry(task.to_owned()).or_default();
        if spent.reserved.contains(&step) {
            return Ok(None);
        }
        let started = *spent.started.get_or_insert_with(Instant::now);
        let (tokens, cost) = spent
            .recorded
            .values()
            .fold((0, 0), |(tokens, cost), (more_tokens, more_cost)| {
                (tokens + more_tokens, cost + more_cost)
            });
        if limits
            .steps
            .is_some_and(|limit| spent.reserved.len() as u64 >= limit)
        {
            return Ok(Some(BudgetKind::Steps));
        }
        if limits.tokens.is_some_and(|limit| tokens >= limit) {
            return Ok(Some(BudgetKind::Tokens));
        }
        if limits.cost_micros.is_some_and(|limit| cost >= limit) {
            return Ok(Some(BudgetKind::Cost));
        }
        if limits
            .wall_time
            .is_some_and(|limit| started.elapsed() >= limit)
        {
            return Ok(Some(BudgetKind::WallTime));
        }
        spent.reserved.insert(step);
        Ok(None)
    }

    async fn record(
        &self,
        task: &str,
        key: &str,
        usage: &llm::Usage,
        cost_micros: u64,
    ) -> Result<()> {
        let mut all = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(task.to_owned())
            .or_default()
            .recorded
            .insert(key.to_owned(), (usage.total_tokens(), cost_micros));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn each_limit_pauses_and_a_step_is_reserved_once() {
        let budget = MemoryBudget::new(BudgetLimits {
            steps: Some(2),
            cost_micros: Some(1_000),
            ..BudgetLimits::default()
        });
        assert_eq!(budget.reserve("t", 1).await.unwrap(), None);
        assert_eq!(budget.reserve("t", 1).await.unwrap(), None);
        assert_eq!(budget.reserve("t", 2).await.unwrap(), None);
        assert_eq!(
            budget.reserve("t", 3).await.unwrap(),
            Some(BudgetKind::Steps)
        );
        // Another task has its own budget.
        assert_eq!(budget.reserve("other", 1).await.unwrap(), None);
        budget.raise(BudgetLimits {
            steps: Some(10),
            cost_micros: Some(1_000),
            ..BudgetLimits::default()
        });
        let usage = llm::Usage::default();
        budget.record("t", "step-1", &usage, 600).await.unwrap();
        budget.record("t", "step-1", &usage, 600).await.unwrap();
        assert_eq!(budget.reserve("t", 3).await.unwrap(), None);
        budget.record("t", "step-2", &usage, 600).await.unwrap();
        assert_eq!(
            budget.reserve("t", 4).await.unwrap(),
            Some(BudgetKind::Cost)
        );
        let timed = MemoryBudget::new(BudgetLimits {
            wall_time: Some(Duration::from_millis(20)),
            ..BudgetLimits::default()
        });
        assert_eq!(timed.reserve("t", 1).await.unwrap(), None);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            timed.reserve("t", 2).await.unwrap(),
            Some(BudgetKind::WallTime)
        );
    }
}
