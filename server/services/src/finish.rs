//! A future that is finished even if its caller stops waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `future` in the task that awaits it, like any future; if that task drops it before it
/// is done (a client that went away, a timeout around it), the rest of it runs in a task of its
/// own. Cheaper than spawning it from the start, which costs a hand-over between tasks (and
/// often between threads) on every call just to cover the rare caller that leaves.
pub struct FinishWhenDropped<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    future: Option<Pin<Box<F>>>,
}

impl<F> FinishWhenDropped<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub fn new(future: F) -> Self {
        Self {
            future: Some(Box::pin(future)),
        }
    }
}

impl<F> Future for FinishWhenDropped<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<F::Output> {
        // `Self` is `Unpin`: the future is boxed.
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            panic!("FinishWhenDropped polled after it was done");
        };
        let output = std::task::ready!(future.as_mut().poll(context));
        this.future = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for FinishWhenDropped<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(future) = self.future.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            // Nobody waits for the output any more; the task only has to run to its end.
            Ok(runtime) => drop(runtime.spawn(future)),
            Err(_) => {
                tracing::warn!("no runtime to finish a call whose caller left; it stops here")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_future_awaited_to_the_end_gives_its_output() {
        let answer = FinishWhenDropped::new(async { 6 * 7 }).await;
        assert_eq!(answer, 42);
    }

    #[tokio::test]
    async fn a_future_whose_caller_leaves_still_finishes() {
        let finished = Arc::new(AtomicBool::new(false));
        let (started_sender, started) = tokio::sync::oneshot::channel();
        let flag = finished.clone();
        let call = FinishWhenDropped::new(async move {
            started_sender.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        });
        let caller = tokio::spawn(call);
        started.await.unwrap();
        // The caller goes away mid-call.
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        assert!(!finished.load(Ordering::SeqCst));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !finished.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the call stopped with its caller"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
