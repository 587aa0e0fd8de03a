//! Failpoints at durable steps, for the crash tests (`crates/shoal/tests/binary.rs`,
//! `a_crash_at_each_failpoint_leaves_consistent_state`). Only with the `testing` feature:
//! without it [`crash_point`] is an empty function and the `fail` crate is not linked.
//! A failpoint armed with `FAILPOINTS=<name>=return` aborts the process on the spot, as
//! kill -9 would, after one line on stderr naming it. The one implementation for the whole
//! workspace: shoal-driver and shoal-core call it too (their `testing` features forward here).

/// Aborts the process when the failpoint `name` is armed; does nothing otherwise.
#[cfg(feature = "testing")]
pub fn crash_point(name: &str) {
    fail::fail_point!(name, |_| {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort()
    });
}

/// Without the `testing` feature, failpoints compile to nothing.
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}
