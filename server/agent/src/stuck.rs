//! Stuck detection over the steps since the task last started or resumed: the same action with
//! the same result repeated, the same error repeated, A-B-A-B ping-pong, and model turns without
//! tool calls. An action repeated with a changing result (polling) is not stuck.

use serde::{Deserialize, Serialize};

/// How the agent is stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StuckReason {
    /// The same call got the same result again and again.
    RepeatedAction,
    /// The same error again and again.
    RepeatedError,
    /// Two actions alternating with the same results.
    PingPong,
    /// Model turns without tool calls.
    Monologue,
}

/// When each detector trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckThresholds {
    /// Identical (action, result) pairs in a row.
    pub repeated_action: usize,
    /// Identical errors in a row (whatever the action).
    pub repeated_error: usize,
    /// Full A-B cycles in a row.
    pub ping_pong_cycles: usize,
    /// Model turns without a tool call in a row.
    pub monologue: usize,
}

impl Default for StuckThresholds {
    fn default() -> Self {
        Self {
            repeated_action: 4,
            repeated_error: 4,
            ping_pong_cycles: 3,
            monologue: 3,
        }
    }
}

/// One thing the agent did, as the detector sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A tool call: the tool with its arguments, and what it returned.
    Action {
        /// The step.
        step: u64,
        /// The tool and its canonical arguments.
        action: String,
        /// The result (its hash or text).
        result: String,
        /// Whether the result is an error.
        error: bool,
    },
    /// A model turn without tool calls.
    TextOnly {
        /// The step.
        step: u64,
    },
}

impl Observation {
    fn step(&self) -> u64 {
        match self {
            Observation::Action { step, .. } | Observation::TextOnly { step } => *step,
        }
    }
}

fn steps(observations: &[Observation]) -> Vec<u64> {
    let mut steps: Vec<u64> = observations.iter().map(Observation::step).collect();
    steps.dedup();
    steps
}

/// Whether the latest observations are stuck, and the steps that show it.
pub fn detect(
    observations: &[Observation],
    thresholds: &StuckThresholds,
) -> Option<(StuckReason, Vec<u64>)> {
    // Monologue: the last turns without tools.
    let text_only = observations
        .iter()
        .rev()
        .take_while(|observation| matches!(observation, Observation::TextOnly { .. }))
        .count();
    if thresholds.monologue > 0 && text_only >= thresholds.monologue {
        let tail = &observations[observations.len() - text_only..];
        return Some((StuckReason::Monologue, steps(tail)));
    }
    let actions: Vec<&Observation> = observations
        .iter()
        .filter(|observation| matches!(observation, Observation::Action { .. }))
        .collect();
    let pair = |observation: &Observation| match observation {
        Observation::Action { action, result, .. } => Some((action.clone(), result.clone())),
        Observation::TextOnly { .. } => None,
    };
    // The same action with the same result.
    let count = thresholds.repeated_action;
    if count > 1 && actions.len() >= count {
        let tail = &actions[actions.len() - count..];
        let first = pair(tail[0]);
        if tail.iter().all(|observation| pair(observation) == first) {
            let tail: Vec<Observation> = tail
                .iter()
                .map(|observation| (*observation).clone())
                .collect();
            return Some((StuckReason::RepeatedAction, steps(&tail)));
        }
    }
    // The same error.
    let count = thresholds.repeated_error;
    if count > 1 && actions.len() >= count {
        let tail = &actions[actions.len() - count..];
        let errors: Vec<&String> = tail
            .iter()
            .filter_map(|observation| match observation {
                Observation::Action {
                    result,
                    error: true,
                    ..
                } => Some(result),
                _ => None,
            })
            .collect();
        if errors.len() == count && errors.iter().all(|error| *error == errors[0]) {
            let tail: Vec<Observation> = tail
                .iter()
                .map(|observation| (*observation).clone())
                .collect();
            return Some((StuckReason::RepeatedError, steps(&tail)));
        }
    }
    // A-B-A-B: two different (action, result) pairs alternating.
    let length = thresholds.ping_pong_cycles * 2;
    if thresholds.ping_pong_cycles > 1 && actions.len() >= length {
        let tail = &actions[actions.len() - length..];
        let first = pair(tail[0]);
        let second = pair(tail[1]);
        if first != second
            && tail.iter().enumerate().all(|(index, observation)| {
                pair(observation)
                    == if index % 2 == 0 {
                        first.clone()
                    } else {
                        second.clone()
                    }
            })
        {
            let tail: Vec<Observation> = tail
                .iter()
                .map(|observation| (*observation).clone())
                .collect();
            return Some((StuckReason::PingPong, steps(&tail)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn action(step: u64, action: &str, result: &str, error: bool) -> Observation {
        Observation::Action {
            step,
            action: action.into(),
            result: result.into(),
            error,
        }
    }

    #[test]
    fn repeated_action_with_the_same_result_is_stuck_but_polling_is_not() {
        let thresholds = StuckThresholds::default();
        let same: Vec<Observation> = (1..=4)
            .map(|step| action(step, "run ls", "a", false))
            .collect();
        assert_eq!(
            detect(&same, &thresholds),
            Some((StuckReason::RepeatedAction, vec![1, 2, 3, 4]))
        );
        let polling: Vec<Observation> = (1..=10)
            .map(|step| action(step, "run status", &format!("{step}%"), false))
            .collect();
        assert_eq!(detect(&polling, &thresholds), None);
    }

    #[test]
    fn same_error_ping_pong_and_monologue() {
        let thresholds = StuckThresholds::default();
        let errors: Vec<Observation> = (1..=4)
            .map(|step| action(step, &format!("edit {step}"), "not found", true))
            .collect();
        assert_eq!(
            detect(&errors, &thresholds).map(|found| found.0),
            Some(StuckReason::RepeatedError)
        );
        let ping_pong: Vec<Observation> = (1..=6)
            .map(|step| {
                if step % 2 == 0 {
                    action(step, "a", "1", false)
                } else {
                    action(step, "b", "2", false)
                }
            })
            .collect();
        assert_eq!(
            detect(&ping_pong, &thresholds),
            Some((StuckReason::PingPong, vec![1, 2, 3, 4, 5, 6]))
        );
        let talk: Vec<Observation> = (1..=3).map(|step| Observation::TextOnly { step }).collect();
        assert_eq!(
            detect(&talk, &thresholds).map(|found| found.0),
            Some(StuckReason::Monologue)
        );
        assert_eq!(detect(&talk[..2], &thresholds), None);
    }
}
