//! Waking the readers of a run inside this process: a writer here (or the Postgres listener,
//! for writers elsewhere) bumps the run's generation, and every reader subscribed to it looks at
//! its rows again. Only runs someone reads have an entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use db::ids::RunId;
use tokio::sync::watch;

/// The runs read in this process, each with a generation bumped at every write.
#[derive(Debug, Default)]
pub struct RunNotifier {
    runs: Mutex<HashMap<RunId, watch::Sender<u64>>>,
}

impl RunNotifier {
    /// Subscribes to the run's writes; the entry goes when its last subscription is dropped.
    pub fn subscribe(self: &Arc<Self>, run_id: RunId) -> Subscription {
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = runs
            .entry(run_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        Subscription {
            receiver,
            notifier: Arc::clone(self),
            run_id,
        }
    }

    /// Wakes the run's readers (nothing when nobody reads it).
    pub fn notify(&self, run_id: RunId) {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = runs.get(&run_id) {
            sender.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }

    /// Wakes every reader (notices may have been missed).
    pub fn notify_all(&self) {
        let runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in runs.values() {
            sender.send_modify(|generation| *generation = generation.wrapping_add(1));
        }
    }

    /// How many runs have readers here.
    pub fn followed_runs(&self) -> usize {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A reader's interest in one run's writes.
#[derive(Debug)]
pub struct Subscription {
    receiver: watch::Receiver<u64>,
    notifier: Arc<RunNotifier>,
    run_id: RunId,
}

impl Subscription {
    /// Forgets the writes so far: [`Subscription::changed`] waits for a later one. Call it
    /// before reading the rows, so that a write after the read is never missed.
    pub fn mark_seen(&mut self) {
        self.receiver.mark_unchanged();
    }

    /// Waits for a write after the last [`Subscription::mark_seen`].
    pub async fn changed(&mut self) {
        if self.receiver.changed().await.is_err() {
            // The sender lives as long as a subscription does; should it be gone, never wake
            // (the reader's polling goes on).
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut runs = self
            .notifier
            .runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // This subscription's receiver is still alive here: it is the last one when it is alone.
        if runs
            .get(&self.run_id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            runs.remove(&self.run_id);
        }
    }
}
