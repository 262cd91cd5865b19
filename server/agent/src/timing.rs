//! Step timings for benchmarks: the instants a [`FailpointHook`](crate::FailpointHook) sees, and
//! from them each step's own time (the step's wall time less its model call and its tool's work)
//! and its model call's time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::Failpoint;

/// When each task reached each boundary of each step.
#[derive(Debug, Default)]
pub struct StepMarks {
    marks: Mutex<HashMap<(String, u64, Failpoint), Instant>>,
}

/// Each step's own time and its model call's, sorted (for [`percentile`]).
#[derive(Debug, Default)]
pub struct StepTimes {
    /// The step's wall time less its model call and its tool's work.
    pub own: Vec<Duration>,
    /// From before the model call to after its response was saved.
    pub model_calls: Vec<Duration>,
}

impl StepMarks {
    /// Notes that `task` reached `point` of `step` now.
    pub fn mark(&self, task: &str, step: u64, point: Failpoint) {
        self.marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((task.to_owned(), step, point), Instant::now());
    }

    /// The times of the steps of `tasks` that were followed by another (the last step of a task
    /// has no end to measure to).
    pub fn times<'a>(&self, tasks: impl IntoIterator<Item = &'a str>, steps: u64) -> StepTimes {
        let marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut times = StepTimes::default();
        for task in tasks {
            for step in 1..steps {
                let at = |step: u64, point: Failpoint| {
                    marks.get(&(task.to_owned(), step, point)).copied()
                };
                let (Some(begin), Some(model_done), Some(tool_begin), Some(tool_done), Some(next)) = (
                    at(step, Failpoint::BeforeModelCall),
                    at(step, Failpoint::AfterModelCall),
                    at(step, Failpoint::AfterToolStart),
                    at(step, Failpoint::BeforeResultSaved),
                    at(step + 1, Failpoint::BeforeModelCall),
                ) else {
                    continue;
                };
                let outside = (model_done - begin) + (tool_done - tool_begin);
                times.own.push((next - begin).saturating_sub(outside));
                times.model_calls.push(model_done - begin);
            }
        }
        times.own.sort();
        times.model_calls.sort();
        times
    }
}

/// The value at `share` (0 to 1) of sorted durations; zero when there are none.
pub fn percentile(sorted: &[Duration], share: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// CPU time (user and system) of this process so far, in 10 ms ticks; zero where
/// `/proc/self/stat` cannot be read.
pub fn process_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .map(|both| {
            both.iter()
                .filter_map(|field| field.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_s_own_time_leaves_out_its_model_call_and_its_tool() {
        let marks = StepMarks::default();
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        let mut table = marks.marks.lock().unwrap();
        for (step, point, millis) in [
            (1, Failpoint::BeforeModelCall, 0),
            (1, Failpoint::AfterModelCall, 10),
            (1, Failpoint::AfterToolStart, 11),
            (1, Failpoint::BeforeResultSaved, 31),
            (2, Failpoint::BeforeModelCall, 35),
        ] {
            table.insert(("task".to_owned(), step, point), at(millis));
        }
        drop(table);
        let times = marks.times(["task"], 2);
        assert_eq!(times.own, vec![Duration::from_millis(5)]);
        assert_eq!(times.model_calls, vec![Duration::from_millis(10)]);
        assert_eq!(percentile(&times.own, 0.5), Duration::from_millis(5));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
