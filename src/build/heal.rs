//! Healing the store: a build (and whatever it writes) that fails because
//! a store blob turned out not to match its name runs again once the blob
//! is moved aside, so that the layer is laid down again from its sources, a
//! local base's blob copied again, or a registry base's fetched again.

use crate::error::Result;
use crate::progress::{Event, Reporter};
use crate::store::Store;

/// More rounds than blobs one run can find damaged is a store that keeps
/// being damaged; the error then stands.
const MAX_ROUNDS: usize = 4;

/// Runs `attempt` until it succeeds or fails without the store having moved
/// a damaged blob aside during it, reporting each repair. `can_retry` says
/// whether a failed attempt may be made again (not once it has streamed
/// part of an output that cannot be taken back).
pub fn healing<T>(
    store: &Store,
    reporter: &dyn Reporter,
    can_retry: impl Fn() -> bool,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut reported = store.repairs().len();
    let mut round = 0;
    loop {
        round += 1;
        let result = attempt();
        let repairs = store.repairs();
        let repaired = repairs.len() > reported;
        for r in &repairs[reported..] {
            reporter.report(Event::BlobRepaired {
                digest: &r.digest,
                problem: &r.problem,
                moved_to: &r.moved_to.display().to_string(),
            });
        }
        reported = repairs.len();
        match result {
            Err(_) if repaired && round < MAX_ROUNDS && can_retry() => continue,
            r => return r,
        }
    }
}
