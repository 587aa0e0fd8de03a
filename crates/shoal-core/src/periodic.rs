//! The loop every periodic task of a node runs (reporter, replica refresh, recycle-bin
//! purge, housekeeping): a pass at each tick until the node stops, a failed pass logged and
//! retried at the next tick, a late tick delayed rather than bunched up.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, warn};

use crate::CoreResult;

/// When a periodic task makes its first pass.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FirstPass {
    /// At once.
    Now,
    /// One period after start (the start-up already did the work once).
    AfterOnePeriod,
}

/// Runs `pass` every `period` until `cancel`, each pass inside the span `span` makes; an
/// error is logged as `"{failed}: {err}"` and the task goes on.
pub(crate) async fn run_every<T, F, Fut>(
    period: Duration,
    first: FirstPass,
    cancel: CancellationToken,
    span: impl Fn() -> Span,
    failed: &str,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = CoreResult<T>>,
{
    let start = match first {
        FirstPass::Now => Instant::now(),
        FirstPass::AfterOnePeriod => Instant::now() + period,
    };
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if let Err(err) = pass().instrument(span()).await {
                    warn!(error = %err, "{failed}: {err}");
                }
            }
            _ = cancel.cancelled() => return,
        }
    }
}
