//! Group commit: many requests, few database commits.
//!
//! A request hands its item to a [`GroupCommit`] and waits for the answer;
//! writer tasks take everything queued (up to a batch limit) and store it
//! with one call of the store function, which is one commit. With several
//! writers one batch commits while the next ones fill. Nothing waits on a
//! timer: an item that arrives alone is stored alone, at once.
//!
//! If a batch fails as a whole, its items are tried again one by one, so
//! one item the database refuses fails only its own request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinHandle;

use crate::db::StoreError;

/// What a writer does with a batch: store it in one commit and answer each
/// item, in order.
pub type StoreBatch<T, A> =
    Arc<dyn Fn(Arc<[T]>) -> Pin<Box<dyn Future<Output = Result<Vec<A>, StoreError>> + Send>> + Send + Sync>;

type Answer<A> = Result<A, Arc<StoreError>>;
type Job<T, A> = (T, oneshot::Sender<Answer<A>>);

/// Handle to the writers. [`GroupCommit::close`] (or dropping every handle)
/// lets them store what is queued and stop.
pub struct GroupCommit<T, A> {
    what: &'static str,
    tx: mpsc::Sender<Job<T, A>>,
    stop: Arc<watch::Sender<bool>>,
}

impl<T, A> Clone for GroupCommit<T, A> {
    fn clone(&self) -> Self {
        Self {
            what: self.what,
            tx: self.tx.clone(),
            stop: self.stop.clone(),
        }
    }
}

impl<T, A> std::fmt::Debug for GroupCommit<T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

/// Why an item was not stored.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The server is shutting down.
    #[error("the writer has stopped")]
    Stopped,
    #[error("storing {what}: {source}")]
    Store {
        what: &'static str,
        source: Arc<StoreError>,
    },
}

impl<T: Clone + Send + Sync + 'static, A: Send + 'static> GroupCommit<T, A> {
    /// Start `writers` tasks storing batches of at most `max_batch` items
    /// with `store`; `what` names the items in logs and errors. At most
    /// `queue` items wait; more make their requests wait to be queued.
    pub fn spawn(
        what: &'static str,
        writers: usize,
        max_batch: usize,
        queue: usize,
        store: StoreBatch<T, A>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..writers.max(1))
            .map(|_| {
                tokio::spawn(write_batches(
                    what,
                    max_batch.max(1),
                    rx.clone(),
                    stopped.clone(),
                    store.clone(),
                ))
            })
            .collect();
        let handle = Self {
            what,
            tx,
            stop: Arc::new(stop),
        };
        (handle, tasks)
    }

    /// Refuse new items; the writers store what is queued, then end.
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }

    /// Store `item` with others queued now; answers once it is committed.
    pub async fn submit(&self, item: T) -> Result<A, Refused> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((item, reply)).await.map_err(|_| Refused::Stopped)?;
        match answer.await.map_err(|_| Refused::Stopped)? {
            Ok(answer) => Ok(answer),
            Err(source) => Err(Refused::Store {
                what: self.what,
                source,
            }),
        }
    }
}

async fn write_batches<T: Clone, A>(
    what: &'static str,
    max_batch: usize,
    rx: Arc<Mutex<mpsc::Receiver<Job<T, A>>>>,
    mut stop: watch::Receiver<bool>,
    store: StoreBatch<T, A>,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            let received = tokio::select! {
                n = rx.recv_many(&mut jobs, max_batch) => n,
                () = stopped(&mut stop) => {
                    rx.close();
                    rx.recv_many(&mut jobs, max_batch).await
                }
            };
            if received == 0 {
                return;
            }
        }
        let (batch, replies): (Vec<T>, Vec<_>) = jobs.drain(..).unzip();
        let batch: Arc<[T]> = batch.into();
        match store(batch.clone()).await {
            Ok(answers) if answers.len() == batch.len() => {
                for (answer, reply) in answers.into_iter().zip(replies) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Ok(answers) => {
                let e = Arc::new(StoreError::Corrupt(format!(
                    "{} answers for a batch of {}",
                    answers.len(),
                    batch.len()
                )));
                tracing::error!(what, error = %e, "storing a batch failed");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) if batch.len() == 1 => {
                tracing::error!(what, error = %e, "storing failed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                tracing::warn!(what, error = %e, batch = batch.len(), "storing a batch failed: trying each alone");
                for (item, reply) in batch.iter().zip(replies) {
                    let one: Arc<[T]> = Arc::new([item.clone()]);
                    let answer = match store(one).await {
                        Ok(mut answers) if answers.len() == 1 => Ok(answers.remove(0)),
                        Ok(_) => Err(Arc::new(StoreError::Corrupt("no answer for the item".into()))),
                        Err(e) => {
                            tracing::error!(what, error = %e, "storing failed");
                            Err(Arc::new(e))
                        }
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(drop);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Doubles numbers; refuses 13 (and so any batch holding it).
    fn doubler(calls: Arc<AtomicUsize>, sizes: Arc<std::sync::Mutex<Vec<usize>>>) -> StoreBatch<u32, u32> {
        Arc::new(move |batch: Arc<[u32]>| {
            calls.fetch_add(1, Ordering::SeqCst);
            sizes.lock().unwrap().push(batch.len());
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if batch.contains(&13) {
                    return Err(StoreError::Corrupt("13 is refused".into()));
                }
                Ok(batch.iter().map(|n| n * 2).collect())
            })
        })
    }

    #[tokio::test]
    async fn items_queued_together_share_a_commit_and_each_gets_its_own_answer() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (writer, tasks) =
            GroupCommit::spawn("numbers", 1, 64, 1024, doubler(calls.clone(), sizes.clone()));
        let answers = futures_util::future::join_all((100..200u32).map(|n| {
            let writer = writer.clone();
            async move { writer.submit(n).await.unwrap() }
        }))
        .await;
        assert_eq!(answers, (100..200u32).map(|n| n * 2).collect::<Vec<_>>());
        // The first item is stored alone at once; the rest queue behind it.
        let calls = calls.load(Ordering::SeqCst);
        assert!(calls < 10, "{calls} commits for 100 items");
        assert!(sizes.lock().unwrap().iter().all(|&n| n <= 64));
        writer.close();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(matches!(writer.submit(1).await, Err(Refused::Stopped)));
    }

    #[tokio::test]
    async fn a_refused_item_fails_alone_and_its_batch_is_stored() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (writer, _tasks) = GroupCommit::spawn("numbers", 1, 64, 1024, doubler(calls, sizes.clone()));
        // Keep the writer busy so that the next items queue up together.
        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.submit(1).await.unwrap() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let answers = futures_util::future::join_all([12u32, 13, 14].map(|n| {
            let writer = writer.clone();
            async move { writer.submit(n).await.map_err(|e| e.to_string()) }
        }))
        .await;
        assert_eq!(first.await.unwrap(), 2);
        assert_eq!(answers[0], Ok(24));
        assert_eq!(
            answers[1],
            Err("storing numbers: stored data is corrupt: 13 is refused".to_owned())
        );
        assert_eq!(answers[2], Ok(28));
        // One batch of three failed, then each went alone.
        assert_eq!(*sizes.lock().unwrap(), vec![1, 3, 1, 1, 1]);
    }
}
