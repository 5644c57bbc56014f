//! Running a graph of tasks in parallel within one budget of cores.
//!
//! Every running task holds at least one of `budget` tokens, so at most
//! `budget` tasks run at once. A task that can use more threads (a layer
//! being compressed) has a weight (its input bytes) and takes a share of
//! the free tokens in proportion to its weight against the weights of the
//! other such tasks waiting: a large layer queued with two small ones takes
//! every core, two layers of the same size take half each. A task's thread
//! count is fixed when it starts (the compressor's is), so the share is
//! decided then. A task is ready once the tasks it depends on have
//! finished; of the ready tasks the heaviest starts first (the one added
//! first among equals), so a large layer is not left with the cores a light
//! task did not take.
//!
//! A running task may also take the tokens no ready task is waiting for
//! ([`Spare`]): a layer that found, after hashing its tar stream, that it
//! must compress after all, while its neighbours turned out to need no
//! compression, uses the cores they left instead of the share it started
//! with. Such tokens are given back when the task is done with them.
//!
//! A running task may also step aside ([`Spare::aside`]) for a stretch of
//! work that is short beside the rest and whose outcome decides whether
//! the rest is needed (hashing a layer's tar stream to ask a build cache):
//! its tokens go to the next ready task meanwhile, and it takes them back
//! before any new task starts. Without that, a layer that must compress
//! after all starts hashing only when its neighbours are done with theirs.
//!
//! The first task to fail stops the graph: nothing new starts, the running
//! tasks finish, and that first error is returned. Which bytes a task
//! produces never depends on the budget or on the order tasks ran in; only
//! when they ran does.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use crate::error::Result;

type Work<'a> = Box<dyn FnOnce(usize, &Spare<'_>) -> Result<()> + Send + 'a>;

/// The budget's tokens that no ready task is waiting for, lent to a
/// running task on request.
pub struct Spare<'s> {
    pool: &'s (dyn Lend + Sync),
}

impl Spare<'_> {
    /// Takes up to `max` free tokens, none while any task is ready to
    /// start or waits to come back from [`aside`](Self::aside); returns how
    /// many were taken.
    pub fn take(&self, max: usize) -> usize {
        self.pool.take(max)
    }

    /// Gives back `n` tokens [`take`](Self::take) returned.
    pub fn give_back(&self, n: usize) {
        self.pool.give_back(n)
    }

    /// Runs `f` with the task's `tokens` lent to whatever task is ready
    /// to start, and returns once they are the task's again (waiting for
    /// them if need be; tasks waiting to come back go before new ones).
    pub fn aside<T>(&self, tokens: usize, f: impl FnOnce() -> T) -> T {
        self.pool.step_aside(tokens);
        let out = f();
        self.pool.step_back(tokens);
        out
    }
}

/// What lends spare tokens: the running graph's state.
trait Lend {
    fn take(&self, max: usize) -> usize;
    fn give_back(&self, n: usize);
    fn step_aside(&self, tokens: usize);
    fn step_back(&self, tokens: usize);
}

struct Pool<'s, 'a> {
    state: &'s Mutex<State<'a>>,
    wake: &'s Condvar,
}

impl Lend for Pool<'_, '_> {
    fn take(&self, max: usize) -> usize {
        let mut s = self.state.lock().expect("jobs lock");
        if !s.ready.is_empty() || s.coming_back > 0 {
            return 0;
        }
        let n = s.free.min(max);
        s.free -= n;
        n
    }

    fn give_back(&self, n: usize) {
        if n > 0 {
            self.state.lock().expect("jobs lock").free += n;
            self.wake.notify_all();
        }
    }

    fn step_aside(&self, tokens: usize) {
        let mut s = self.state.lock().expect("jobs lock");
        s.free += tokens;
        self.wake.notify_all();
    }

    fn step_back(&self, tokens: usize) {
        let mut s = self.state.lock().expect("jobs lock");
        s.coming_back += 1;
        // A panicked task never returns its tokens; the graph is stopping.
        while s.free < tokens && !s.panicked {
            s = self.wake.wait(s).expect("jobs lock");
        }
        s.free = s.free.saturating_sub(tokens);
        s.coming_back -= 1;
        drop(s);
        self.wake.notify_all();
    }
}

/// A task graph under construction.
#[derive(Default)]
pub struct Graph<'a> {
    tasks: Vec<Task<'a>>,
}

struct Task<'a> {
    deps: Vec<usize>,
    /// 0 for a task that uses one thread; otherwise how much work it has,
    /// to share threads by.
    weight: u64,
    work: Option<Work<'a>>,
}

/// A task's handle, to name it as a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskId(usize);

impl<'a> Graph<'a> {
    /// An empty graph.
    pub fn new() -> Graph<'a> {
        Graph { tasks: Vec::new() }
    }

    /// Adds a task that runs after `deps`; it is called with the number of
    /// threads it may use (always 1 when `weight` is 0).
    pub fn add(
        &mut self,
        deps: &[TaskId],
        weight: u64,
        work: impl FnOnce(usize) -> Result<()> + Send + 'a,
    ) -> TaskId {
        self.add_with_spare(deps, weight, move |threads, _| work(threads))
    }

    /// Like [`add`](Self::add), for a task that may take [`Spare`] tokens
    /// while it runs.
    pub fn add_with_spare(
        &mut self,
        deps: &[TaskId],
        weight: u64,
        work: impl FnOnce(usize, &Spare<'_>) -> Result<()> + Send + 'a,
    ) -> TaskId {
        self.tasks.push(Task {
            deps: deps.iter().map(|d| d.0).collect(),
            weight,
            work: Some(Box::new(work)),
        });
        TaskId(self.tasks.len() - 1)
    }

    /// Runs every task, at most `budget` threads' worth at a time.
    pub fn run(mut self, budget: usize) -> Result<()> {
        let budget = budget.max(1);
        let n = self.tasks.len();
        let mut waiting_on = vec![0usize; n];
        let mut dependents = vec![Vec::new(); n];
        for (i, t) in self.tasks.iter().enumerate() {
            for &d in &t.deps {
                assert!(d < i, "a task depends only on tasks added before it");
                waiting_on[i] += 1;
                dependents[d].push(i);
            }
        }
        let state = Mutex::new(State {
            ready: (0..n).filter(|&i| waiting_on[i] == 0).collect(),
            waiting_on,
            free: budget,
            coming_back: 0,
            finished: 0,
            failed: None,
            panicked: false,
            works: self.tasks.iter_mut().map(|t| t.work.take()).collect(),
        });
        let weight: Vec<u64> = self.tasks.iter().map(|t| t.weight).collect();
        let wake = Condvar::new();
        let pool = Pool {
            state: &state,
            wake: &wake,
        };
        let spare = Spare { pool: &pool };
        let worker = || loop {
            let mut s = state.lock().expect("jobs lock");
            let (i, tokens, work) = loop {
                if s.failed.is_some() || s.panicked || s.finished == n {
                    return;
                }
                if s.free > 0 && s.coming_back == 0 {
                    // The heaviest ready task first: a light one taken first
                    // would hold a token while the heavy one, started beside
                    // it, is given fewer threads for its whole run.
                    let heaviest = (0..s.ready.len()).rev().max_by_key(|&k| weight[s.ready[k]]);
                    if let Some(i) = heaviest.and_then(|k| s.ready.remove(k)) {
                        let tokens = if weight[i] == 0 {
                            1
                        } else {
                            let queued: u64 = s.ready.iter().map(|&j| weight[j]).sum();
                            share(s.free, weight[i], queued)
                        };
                        s.free -= tokens;
                        let work = s.works[i].take().expect("each task runs once");
                        break (i, tokens, work);
                    }
                }
                s = wake.wait(s).expect("jobs lock");
            };
            drop(s);
            let guard = PanicGuard {
                state: &state,
                wake: &wake,
            };
            let result = work(tokens, &spare);
            std::mem::forget(guard);
            let mut s = state.lock().expect("jobs lock");
            s.free += tokens;
            s.finished += 1;
            match result {
                Ok(()) => {
                    for &j in &dependents[i] {
                        s.waiting_on[j] -= 1;
                        if s.waiting_on[j] == 0 {
                            s.ready.push_back(j);
                        }
                    }
                }
                Err(e) => {
                    if s.failed.is_none() {
                        s.failed = Some(e);
                    }
                }
            }
            wake.notify_all();
        };
        // Twice the budget's workers: a task that stepped aside still
        // holds its thread, and another must be there to use its tokens.
        std::thread::scope(|scope| {
            for _ in 0..(2 * budget).min(n) {
                scope.spawn(worker);
            }
        });
        let s = state.into_inner().expect("jobs lock");
        match s.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Calls `f` on every item, on up to `workers` threads, and returns the
/// results in the items' order, so nothing downstream depends on which call
/// finished first. The first failure stops new calls from starting and is
/// returned once the running ones end.
pub fn for_each_parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let mut graph = Graph::new();
    let f = &f;
    for (item, slot) in items.iter().zip(&slots) {
        graph.add(&[], 0, move |_| {
            let result = f(item)?;
            *slot.lock().expect("slot lock") = Some(result);
            Ok(())
        });
    }
    graph.run(workers)?;
    Ok(slots
        .into_iter()
        .map(|s| s.into_inner().expect("slot lock").expect("every call ran"))
        .collect())
}

/// Of `free` tokens, the share of a task of weight `mine` against `queued`
/// waiting: in proportion, rounded to nearest, at least one.
fn share(free: usize, mine: u64, queued: u64) -> usize {
    let total = u128::from(mine) + u128::from(queued);
    let exact = free as u128 * u128::from(mine);
    let rounded = (exact + total / 2) / total;
    (rounded as usize).clamp(1, free)
}

struct State<'a> {
    ready: VecDeque<usize>,
    waiting_on: Vec<usize>,
    free: usize,
    /// Tasks waiting for their tokens back: no new task starts meanwhile.
    coming_back: usize,
    finished: usize,
    failed: Option<crate::error::Error>,
    /// A task panicked: the other workers stop waiting, and the panic
    /// reaches the caller when the scope ends.
    panicked: bool,
    works: Vec<Option<Work<'a>>>,
}

/// Wakes the other workers if a task panics, so they do not wait forever
/// for a task that will never finish. Forgotten when the task returns.
struct PanicGuard<'s, 'a> {
    state: &'s Mutex<State<'a>>,
    wake: &'s Condvar,
}

impl Drop for PanicGuard<'_, '_> {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.panicked = true;
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn spare_tokens_are_lent_only_when_no_task_waits_and_come_back() {
        // Two tokens: the first task takes the spare one while nothing is
        // ready; the second, started after it, finds none to take.
        let taken = Mutex::new(Vec::new());
        let mut g = Graph::new();
        let first = g.add_with_spare(&[], 1, |threads, spare| {
            let n = spare.take(8);
            taken.lock().unwrap().push((threads, n));
            spare.give_back(n);
            Ok(())
        });
        g.add_with_spare(&[first], 1, |threads, spare| {
            taken.lock().unwrap().push((threads, spare.take(8)));
            Ok(())
        });
        g.run(2).unwrap();
        // The first started alone with both tokens; the second too, once
        // the first gave its tokens back: nothing spare is left either time.
        assert_eq!(*taken.lock().unwrap(), [(2, 0), (2, 0)]);

        let taken = Mutex::new(Vec::new());
        let mut g = Graph::new();
        g.add_with_spare(&[], 0, |threads, spare| {
            let n = spare.take(8);
            taken.lock().unwrap().push((threads, n));
            std::thread::sleep(Duration::from_millis(20));
            spare.give_back(n);
            Ok(())
        });
        g.run(3).unwrap();
        assert_eq!(
            *taken.lock().unwrap(),
            [(1, 2)],
            "a light task takes the idle tokens"
        );
    }

    #[test]
    fn a_task_stepping_aside_lends_its_token_and_waits_for_it_back() {
        // One token: the first task steps aside, the second starts on its
        // token meanwhile, and the first comes back only once it is free.
        let second_started = AtomicUsize::new(0);
        let order = Mutex::new(Vec::new());
        let mut g = Graph::new();
        g.add_with_spare(&[], 0, |_, spare| {
            spare.aside(1, || {
                for _ in 0..500 {
                    if second_started.load(Ordering::SeqCst) == 1 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                order.lock().unwrap().push("aside done");
            });
            order.lock().unwrap().push("back");
            Ok(())
        });
        g.add(&[], 0, |_| {
            second_started.store(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            order.lock().unwrap().push("second done");
            Ok(())
        });
        g.run(1).unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            ["aside done", "second done", "back"]
        );
    }

    #[test]
    fn no_spare_token_is_lent_while_a_task_waits_to_come_back() {
        // Three tokens, all the heavy task's. It steps aside; the light
        // task starts and takes the two left spare. The heavy one then waits
        // for its three: of the first token given back, nothing may be
        // lent again, or it would wait for as long as lending goes on.
        let lent = AtomicUsize::new(0);
        let second = Mutex::new(None);
        let mut g = Graph::new();
        g.add_with_spare(&[], 10, |threads, spare| {
            assert_eq!(threads, 3);
            spare.aside(3, || {
                for _ in 0..500 {
                    if lent.load(Ordering::SeqCst) > 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            });
            Ok(())
        });
        g.add_with_spare(&[], 0, |_, spare| {
            let n = spare.take(8);
            lent.store(n, Ordering::SeqCst);
            // Time for the heavy task to ask for its tokens back.
            std::thread::sleep(Duration::from_millis(100));
            spare.give_back(1);
            let again = spare.take(1);
            *second.lock().unwrap() = Some(again);
            spare.give_back(n - 1 + again);
            Ok(())
        });
        g.run(3).unwrap();
        assert_eq!(lent.load(Ordering::SeqCst), 2);
        assert_eq!(*second.lock().unwrap(), Some(0));
    }

    #[test]
    fn dependencies_run_first_and_the_budget_bounds_concurrency() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let order = Mutex::new(Vec::new());
        let mut g = Graph::new();
        let step = |name: &'static str| {
            let (running, peak, order) = (&running, &peak, &order);
            move |_threads: usize| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
                order.lock().unwrap().push(name);
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let a = g.add(&[], 0, step("a"));
        let b = g.add(&[], 0, step("b"));
        let c = g.add(&[], 0, step("c"));
        g.add(&[a, b, c], 0, step("d"));
        g.run(2).unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(order.lock().unwrap().last(), Some(&"d"));
    }

    #[test]
    fn threads_are_shared_by_weight() {
        // A large layer queued with small ones takes every core; equal ones
        // share; a lone one takes all; nobody gets none.
        assert_eq!(share(4, 500, 2), 4);
        assert_eq!(share(4, 100, 100), 2);
        assert_eq!(share(2, 24, 24), 1);
        assert_eq!(share(4, 1, 0), 4);
        assert_eq!(share(4, 1, 1000), 1);
        assert_eq!(share(1, 1000, 0), 1);

        let seen = Mutex::new(Vec::new());
        let mut g = Graph::new();
        for w in [1000, 1, 1] {
            g.add(&[], w, |t| {
                seen.lock().unwrap().push(t);
                Ok(())
            });
        }
        g.run(4).unwrap();
        assert_eq!(seen.lock().unwrap()[0], 4);
    }

    #[test]
    fn a_heavy_task_added_after_a_light_one_still_gets_every_token() {
        // A scratch image's light task is added before its one big layer;
        // whichever worker wakes first must take the layer, or the layer
        // compresses on one core while the light task's token sits idle.
        for _ in 0..5 {
            let seen = Mutex::new(Vec::new());
            let mut g = Graph::new();
            g.add(&[], 1, |_| {
                std::thread::sleep(Duration::from_millis(20));
                Ok(())
            });
            g.add(&[], 1_000_000, |t| {
                seen.lock().unwrap().push(t);
                Ok(())
            });
            g.run(2).unwrap();
            assert_eq!(seen.into_inner().unwrap(), [2]);
        }
    }

    #[test]
    fn a_panicking_task_does_not_leave_the_others_waiting() {
        let result = std::panic::catch_unwind(|| {
            let mut g = Graph::new();
            let bad = g.add(&[], 0, |_| panic!("task bug"));
            g.add(&[bad], 0, |_| Ok(()));
            g.add(&[], 0, |_| {
                std::thread::sleep(Duration::from_millis(20));
                Ok(())
            });
            g.run(3)
        });
        assert!(result.is_err(), "the panic reaches the caller");
    }

    #[test]
    fn parallel_results_keep_the_order_of_the_items() {
        // Earlier items take longer, so they finish last.
        let items: Vec<u64> = (0..8).collect();
        let out = for_each_parallel(&items, 4, |&i| {
            std::thread::sleep(Duration::from_millis(5 * (8 - i)));
            Ok(i * 10)
        })
        .unwrap();
        assert_eq!(out, (0..8).map(|i| i * 10).collect::<Vec<_>>());
        assert!(for_each_parallel(&[] as &[u8], 4, |_| Ok(()))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_parallel_failure_stops_new_calls() {
        let ran = AtomicUsize::new(0);
        let items: Vec<usize> = (0..100).collect();
        let e = for_each_parallel(&items, 1, |&i| {
            ran.fetch_add(1, Ordering::SeqCst);
            if i == 2 {
                return Err(Error::internal("boom"));
            }
            Ok(())
        })
        .unwrap_err();
        assert!(e.to_string().contains("boom"));
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn first_failure_stops_the_graph() {
        let ran = AtomicUsize::new(0);
        let mut g = Graph::new();
        let bad = g.add(&[], 0, |_| Err(Error::internal("boom")));
        g.add(&[bad], 0, |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let e = g.run(2).unwrap_err();
        assert!(e.to_string().contains("boom"));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
