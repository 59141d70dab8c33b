//! Group commit: many requests, few database commits.
//!
//! A request hands its item to a [`GroupCommit`] and waits for the answer;
//! writer tasks take everything queued (up to a batch limit) and store it
//! with one call of the store function, which is one commit. With several
//! writers one batch commits while the next ones fill. Nothing waits on a
//! timer: an item that arrives alone is stored alone, at once.
//!
//! While another writer is committing, a writer whose batch is still smaller
//! than [`Batching::fill`] keeps gathering until it has that many or that
//! commit ends. Each commit has a fixed cost (a statement, a WAL flush,
//! wake-ups), so under load fewer, fuller commits leave more of the machine
//! to everything else: with 64 agents' connections on two cores, 26
//! heartbeats per commit instead of 15.5 took a quarter off PostgreSQL's CPU
//! per heartbeat and raised the rate by about a fifth in most runs
//! (docs/benchmarks.md). The wait never outlasts the other commit, so at
//! low load nothing changes.
//!
//! If a batch fails as a whole, its items are tried again one by one, so
//! one item the database refuses fails only its own request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Mutex, Notify};
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

/// How a [`GroupCommit`] batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Writer tasks, each with at most one commit in flight.
    pub writers: usize,
    /// Items per commit at most.
    pub max_batch: usize,
    /// While another writer commits, a batch smaller than this keeps
    /// gathering until it is this big or that commit ends (0 or 1: never).
    pub fill: usize,
    /// Items waiting at most; more make their requests wait to be queued.
    pub queue: usize,
}

/// What the writer tasks share besides the queue.
struct Writers<T, A> {
    what: &'static str,
    batching: Batching,
    rx: Mutex<mpsc::Receiver<Job<T, A>>>,
    /// Writers storing a batch now.
    committing: AtomicUsize,
    /// Signalled whenever a writer's commit ends.
    committed: Notify,
    store: StoreBatch<T, A>,
}

impl<T: Clone + Send + Sync + 'static, A: Send + 'static> GroupCommit<T, A> {
    /// Start the writers storing batches with `store`; `what` names the
    /// items in logs and errors.
    pub fn spawn(
        what: &'static str,
        batching: Batching,
        store: StoreBatch<T, A>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let batching = Batching {
            writers: batching.writers.max(1),
            max_batch: batching.max_batch.max(1),
            ..batching
        };
        let (tx, rx) = mpsc::channel(batching.queue.max(1));
        let shared = Arc::new(Writers {
            what,
            batching,
            rx: Mutex::new(rx),
            committing: AtomicUsize::new(0),
            committed: Notify::new(),
            store,
        });
        let (stop, stopped) = watch::channel(false);
        let tasks = (0..batching.writers)
            .map(|_| tokio::spawn(write_batches(shared.clone(), stopped.clone())))
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

async fn write_batches<T: Clone, A>(writers: Arc<Writers<T, A>>, mut stop: watch::Receiver<bool>) {
    let Writers {
        what,
        batching: Batching { max_batch, fill, .. },
        ref store,
        ..
    } = *writers;
    let mut jobs = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = writers.rx.lock().await;
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
            while jobs.len() < fill {
                // Registered before the check, so a commit ending in between still wakes it.
                let committed = writers.committed.notified();
                tokio::pin!(committed);
                committed.as_mut().enable();
                if writers.committing.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let room = max_batch - jobs.len();
                tokio::select! {
                    n = rx.recv_many(&mut jobs, room) => if n == 0 { break },
                    () = committed => break,
                    () = stopped(&mut stop) => break,
                }
            }
        }
        let (batch, replies): (Vec<T>, Vec<_>) = jobs.drain(..).unzip();
        let batch: Arc<[T]> = batch.into();
        writers.committing.fetch_add(1, Ordering::SeqCst);
        let stored = store(batch.clone()).await;
        writers.committing.fetch_sub(1, Ordering::SeqCst);
        writers.committed.notify_waiters();
        match stored {
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

    fn one_writer() -> Batching {
        Batching {
            writers: 1,
            max_batch: 64,
            fill: 0,
            queue: 1024,
        }
    }

    #[tokio::test]
    async fn items_queued_together_share_a_commit_and_each_gets_its_own_answer() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (writer, tasks) =
            GroupCommit::spawn("numbers", one_writer(), doubler(calls.clone(), sizes.clone()));
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
        let (writer, _tasks) = GroupCommit::spawn("numbers", one_writer(), doubler(calls, sizes.clone()));
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

    type Sizes = Arc<std::sync::Mutex<Vec<usize>>>;

    /// Two writers filling to `fill`, doubling numbers; a batch holding 1
    /// waits until the gate opens (`notify_one`: a permit, so opening it
    /// before that batch waits still lets it through). Also the batches'
    /// sizes, in the order they went.
    fn two_gated_writers(fill: usize) -> (GroupCommit<u32, u32>, Arc<Notify>, Sizes) {
        let (gate, sizes) = (Arc::new(Notify::new()), Sizes::default());
        let store: StoreBatch<u32, u32> = Arc::new({
            let (gate, sizes) = (gate.clone(), sizes.clone());
            move |batch: Arc<[u32]>| {
                sizes.lock().unwrap().push(batch.len());
                let gate = gate.clone();
                Box::pin(async move {
                    if batch.contains(&1) {
                        gate.notified().await;
                    }
                    Ok(batch.iter().map(|n| n * 2).collect())
                })
            }
        });
        let batching = Batching {
            writers: 2,
            max_batch: 64,
            fill,
            queue: 1024,
        };
        (GroupCommit::spawn("numbers", batching, store).0, gate, sizes)
    }

    /// Submit `n` from a task of its own, once the writers have seen the last.
    async fn submit_soon(writer: &GroupCommit<u32, u32>, n: u32) -> JoinHandle<u32> {
        let writer = writer.clone();
        let task = tokio::spawn(async move { writer.submit(n).await.unwrap() });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        task
    }

    /// Wait (5 s at most) until the batches so far had these sizes.
    async fn until_sizes(sizes: &std::sync::Mutex<Vec<usize>>, expected: &[usize]) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while *sizes.lock().unwrap() != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "batches {:?}",
                sizes.lock().unwrap()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_one_commit_is_in_flight_the_next_batch_fills_up() {
        let (writer, gate, sizes) = two_gated_writers(4);
        // Alone, the first item is stored at once; its commit hangs.
        let first = submit_soon(&writer, 1).await;
        until_sizes(&sizes, &[1]).await;
        // The other writer gathers the next ones one by one into one batch
        // of four, committed while the first commit still hangs.
        let mut next = Vec::new();
        for n in 2..=5 {
            next.push(submit_soon(&writer, n).await);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 4]);
        for (task, n) in next.into_iter().zip(2..) {
            assert_eq!(task.await.unwrap(), n * 2);
        }
        gate.notify_one();
        assert_eq!(first.await.unwrap(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_filling_batch_commits_when_the_commit_in_flight_ends() {
        let (writer, gate, sizes) = two_gated_writers(32);
        let first = submit_soon(&writer, 1).await;
        until_sizes(&sizes, &[1]).await;
        let second = submit_soon(&writer, 2).await;
        // Far from 32, the second batch waits for the first commit...
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
        gate.notify_one();
        // ...and goes as soon as it ends.
        assert_eq!((first.await.unwrap(), second.await.unwrap()), (2, 4));
        assert_eq!(*sizes.lock().unwrap(), vec![1, 1]);
        // With no commit in flight, an item is stored alone at once.
        let third = submit_soon(&writer, 3).await;
        assert_eq!(third.await.unwrap(), 6);
        assert_eq!(*sizes.lock().unwrap(), vec![1, 1, 1]);
    }
}
