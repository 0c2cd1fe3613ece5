//! Connection threads: every accepted connection is served, from its first request to its
//! last, on one of a few threads that each run a single-threaded tokio runtime of their own.
//!
//! On tokio's multi-threaded runtime a request's task may wake on one worker and be stolen by
//! another, and each wake-up of a parked worker can unpark a second one to look for work; with
//! the crypto of a flow taking about 0.2 ms, those hand-offs were a measurable share of the
//! server's CPU per flow on the SQLite store (crates/bench, `broker`). Here a connection never
//! leaves its thread: its socket is registered with that thread's reactor, its timers run
//! there, and its requests are handled there one after the other (HTTP/2 streams as tasks on
//! the same thread). Connections are handed out round robin. The threads stop, dropping the
//! connections they still serve, when the [`ConnectionThreads`] is dropped (when `Server::run`
//! returns).
//!
//! With no threads asked for, connections are served as tasks of the runtime that runs the
//! server. That is the default with PostgreSQL: its client connections are tasks too, which
//! every request talks to, and on the shared multi-threaded runtime a request and the
//! connection task it wakes run on one worker one after the other; on separate threads each
//! query crossed threads twice (server CPU per flow rose from about 0.6 to 0.85 ms at 32
//! clients).
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The threads that serve connections.
pub(crate) struct ConnectionThreads {
    threads: Vec<Thread>,
    next: AtomicUsize,
    /// With no threads: the tasks spawned on the caller's runtime, aborted by
    /// [`ConnectionThreads::close`] (or when this is dropped).
    here: tokio::task::JoinSet<()>,
}

struct Thread {
    handle: Handle,
    /// Dropped to stop the thread.
    stop: Option<oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl ConnectionThreads {
    /// Starts `count` threads (none: tasks are spawned on the caller's runtime).
    ///
    /// # Errors
    /// A runtime or a thread could not be created.
    pub(crate) fn start(count: usize) -> std::io::Result<Self> {
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            let (stop, stopped) = oneshot::channel::<()>();
            let (ready, handle) = std::sync::mpsc::channel();
            // The runtime is made, run and dropped on its own thread: a runtime dropped on an
            // async runtime's thread panics.
            let join = std::thread::Builder::new()
                .name(format!("tessera-conn-{i}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(runtime.handle().clone()));
                    // Returns when the sender is dropped; the connections still served are
                    // then dropped, without waiting for blocking calls they started.
                    let _ = runtime.block_on(stopped);
                    runtime.shutdown_background();
                })?;
            let handle = handle
                .recv()
                .map_err(|_| std::io::Error::other("a connection thread ended at its start"))??;
            threads.push(Thread {
                handle,
                stop: Some(stop),
                join: Some(join),
            });
        }
        Ok(Self {
            threads,
            next: AtomicUsize::new(0),
            here: tokio::task::JoinSet::new(),
        })
    }

    /// How many threads serve connections.
    pub(crate) fn len(&self) -> usize {
        self.threads.len()
    }

    /// Runs `task` on the next thread, round robin; with no threads, on the caller's runtime
    /// (which must be one).
    pub(crate) fn spawn<F>(&mut self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self
            .next
            .fetch_add(1, Ordering::Relaxed)
            .checked_rem(self.threads.len());
        match i.and_then(|i| self.threads.get(i)) {
            Some(thread) => drop(thread.handle.spawn(task)),
            None => {
                // Finished ones leave the set.
                while self.here.try_join_next().is_some() {}
                self.here.spawn(task);
            }
        }
    }

    /// Stops the threads and drops what they still serve; with no threads, aborts the tasks
    /// spawned and waits until they are gone.
    pub(crate) async fn close(mut self) {
        self.here.shutdown().await;
        drop(self);
    }
}

impl Drop for ConnectionThreads {
    fn drop(&mut self) {
        for thread in &mut self.threads {
            drop(thread.stop.take());
        }
        for thread in &mut self.threads {
            if let Some(join) = thread.join.take() {
                let _ = join.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections go round robin to every thread, and dropping the threads drops what they
    /// still run.
    #[test]
    fn tasks_go_round_robin_and_stop_with_the_threads() {
        let mut threads = ConnectionThreads::start(2).unwrap();
        assert_eq!(threads.len(), 2);
        let (names, named) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let names = names.clone();
            threads.spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                names.send(name).unwrap();
            });
        }
        let mut seen: Vec<_> = (0..4)
            .map(|_| {
                named
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .unwrap()
            })
            .collect();
        seen.sort();
        let conn = |i: u32| Some(format!("tessera-conn-{i}"));
        assert_eq!(seen, [conn(0), conn(0), conn(1), conn(1)]);

        /// Says when it is dropped.
        struct Dropped(std::sync::mpsc::Sender<()>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let (dropped, was_dropped) = std::sync::mpsc::channel();
        let (running, is_running) = std::sync::mpsc::channel();
        threads.spawn(async move {
            let _guard = Dropped(dropped);
            running.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        is_running
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert!(was_dropped.try_recv().is_err(), "still running");
        drop(threads);
        // Joined: the task was dropped before `drop` returned.
        assert!(was_dropped.try_recv().is_ok(), "dropped with its thread");
    }

    /// With no threads, tasks run on the caller's runtime, and are gone once the
    /// `ConnectionThreads` is closed.
    #[test]
    fn without_threads_tasks_run_on_the_callers_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (name, aborted) = rt.block_on(async {
            let mut threads = ConnectionThreads::start(0).unwrap();
            assert_eq!(threads.len(), 0);
            let (tx, rx) = tokio::sync::oneshot::channel();
            threads.spawn(async move {
                let _ = tx.send(std::thread::current().id());
            });
            let name = rx.await.unwrap();
            let (held, gone) = tokio::sync::oneshot::channel::<()>();
            threads.spawn(async move {
                let _held = held;
                std::future::pending::<()>().await;
            });
            tokio::task::yield_now().await;
            threads.close().await;
            // Gone: its sender was dropped (detached, it would wait forever).
            let outcome = tokio::time::timeout(std::time::Duration::ZERO, gone).await;
            (name, matches!(outcome, Ok(Err(_))))
        });
        assert_eq!(name, std::thread::current().id());
        assert!(aborted, "the task was dropped with the ConnectionThreads");
    }
}
