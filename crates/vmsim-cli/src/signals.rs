//! SIGINT, SIGTERM and SIGHUP: vmsim removes its partial outputs and exits with 128+N,
//! as a shell reports a command killed by signal N. While `vmsim record` runs a
//! program, the signal is left to it instead ([`defer`]): it stops the program, removes
//! its partial trace and returns the same status.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static DEFERRED: AtomicBool = AtomicBool::new(false);
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Starts the thread that waits for the signals.
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            RECEIVED.store(sig, Ordering::SeqCst);
            if !DEFERRED.load(Ordering::SeqCst) {
                vmsim::output::remove_partial_files();
                std::process::exit(128 + sig);
            }
        }
    });
}

/// From now on a signal is only noted, for [`received`] to report.
pub fn defer() {
    DEFERRED.store(true, Ordering::SeqCst);
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
