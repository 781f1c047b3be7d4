//! Group commit for writes that finish one by one in many tasks (a webhook attempt's record, say).
//! Each caller queues its item and awaits its own answer; whichever caller's turn comes takes
//! everything queued so far and writes it in one go: one transaction, one turn on SQLite's
//! writer, one commit for all the items that finished meanwhile, instead of one each. There is no
//! task of its own: the callers take turns (first come, first served), so nothing is left
//! behind when the last caller is done.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Items waiting to be written together, and the turn to write them.
pub struct GroupWriter<T, R> {
    queued: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    turn: tokio::sync::Mutex<()>,
    /// The most items one write takes (the oldest first), so that a burst never makes one long
    /// transaction; the rest go in the next turns.
    most: usize,
}

impl<T, R> GroupWriter<T, R> {
    /// A writer whose writes take at most `most` items each (at least 1).
    pub fn new(most: usize) -> Self {
        Self {
            queued: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            most: most.max(1),
        }
    }

    /// Queues `item` and returns its answer once it is written, together with whatever else was
    /// queued by then: by this caller's `write` when its turn comes first, else by the earlier
    /// caller's. `write` answers the items it is given in their order.
    /// `None`: the write that took the item ended without answering it (it panicked, or its task
    /// was cancelled); the caller treats it as not written.
    pub async fn submit<F, Fut>(&self, item: T, write: F) -> Option<R>
    where
        F: FnOnce(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (answer, answered) = oneshot::channel();
        self.queue().push((item, answer));
        {
            // Every caller takes one turn after queueing one item, and every turn writes at
            // least one item while any is queued: so there are never more items queued than
            // turns to come, and none is left behind. (A caller whose item an earlier turn
            // wrote still takes its turn: skipping it could strand an item whose caller's turn
            // had come before it was the oldest.)
            let _turn = self.turn.lock().await;
            let queued: Vec<_> = {
                let mut queue = self.queue();
                let take = queue.len().min(self.most);
                queue.drain(..take).collect()
            };
            if !queued.is_empty() {
                let (items, answers): (Vec<T>, Vec<_>) = queued.into_iter().unzip();
                for (answer, result) in answers.into_iter().zip(write(items).await) {
                    let _ = answer.send(result);
                }
            }
        }
        answered.await.ok()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(T, oneshot::Sender<R>)>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn items_that_finish_while_a_write_runs_are_written_together_and_each_gets_its_answer() {
        let writer = Arc::new(GroupWriter::<u32, u32>::new(10));
        let writes = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let (started, go) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        let write = |writes: Arc<Mutex<Vec<Vec<u32>>>>, gate: Option<(_, _)>| {
            move |items: Vec<u32>| async move {
                if let Some((started, go)) = gate {
                    let (started, go): (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) =
                        (started, go);
                    started.notify_one();
                    go.notified().await;
                }
                writes.lock().unwrap().push(items.clone());
                items.iter().map(|i| i * 10).collect()
            }
        };
        // The first write is held open while three more items arrive.
        let first = tokio::spawn({
            let (writer, write) = (
                writer.clone(),
                write(writes.clone(), Some((started.clone(), go.clone()))),
            );
            async move { writer.submit(1, write).await }
        });
        started.notified().await;
        let later: Vec<_> = (2..=4)
            .map(|i| {
                let (writer, write) = (writer.clone(), write(writes.clone(), None));
                tokio::spawn(async move { writer.submit(i, write).await })
            })
            .collect();
        while writer.queue().len() < 3 {
            tokio::task::yield_now().await;
        }
        go.notify_one();
        assert_eq!(first.await.unwrap(), Some(10));
        for (i, task) in (2..=4).zip(later) {
            assert_eq!(task.await.unwrap(), Some(i * 10));
        }
        let writes = writes.lock().unwrap().clone();
        assert_eq!(writes, vec![vec![1], vec![2, 3, 4]]);
    }

    #[tokio::test]
    async fn a_burst_is_written_a_few_at_a_time_oldest_first_and_every_item_is_answered() {
        let writer = Arc::new(GroupWriter::<u32, u32>::new(2));
        let writes = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        // The turn is held while seven items queue up behind it.
        let turn = writer.turn.lock().await;
        let tasks: Vec<_> = (1..=7)
            .map(|i| {
                let (writer, writes) = (writer.clone(), writes.clone());
                tokio::spawn(async move {
                    writer
                        .submit(i, |items| async move {
                            writes.lock().unwrap().push(items.clone());
                            items
                        })
                        .await
                })
            })
            .collect();
        while writer.queue().len() < 7 {
            tokio::task::yield_now().await;
        }
        drop(turn);
        for (i, task) in (1..=7).zip(tasks) {
            assert_eq!(task.await.unwrap(), Some(i));
        }
        let writes = writes.lock().unwrap().clone();
        assert_eq!(writes.concat(), (1..=7).collect::<Vec<_>>());
        assert!(writes.iter().all(|w| w.len() <= 2), "{writes:?}");
    }

    #[tokio::test]
    async fn a_write_that_ends_without_answering_leaves_its_items_unwritten() {
        let writer = GroupWriter::<u32, u32>::new(10);
        assert_eq!(writer.submit(1, |_| async { Vec::new() }).await, None);
        assert_eq!(
            writer.submit(2, |items| async move { items }).await,
            Some(2)
        );
    }
}
