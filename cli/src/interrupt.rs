//! Ctrl-C, SIGTERM or SIGHUP during a write: the hidden temporary beside the output is
//! removed before the process dies of the signal, instead of staying (gigabytes, for a large
//! output) until the next write of the same target cleans it up.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What the signal thread tells the command.
#[derive(Debug, Default)]
pub struct Interrupt {
    /// A signal came: the command must not end the process on its own (its write may fail as
    /// its temporary goes away: that error is not the outcome).
    signalled: AtomicBool,
}

impl Interrupt {
    /// Called when the command has returned: if a signal came, waits to die of it.
    pub fn settle(&self) {
        if self.signalled.load(Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
    }
}

/// Watches for SIGINT, SIGTERM and SIGHUP on a thread of its own. On the first, removes this
/// process's temporaries of `targets` and dies of the signal as if no handler were installed
/// (the shell sees 130 for Ctrl-C, 143 for SIGTERM). Without targets, nothing is installed.
pub fn remove_temporaries_on_signal(targets: Vec<PathBuf>) -> Arc<Interrupt> {
    let state = Arc::new(Interrupt::default());
    if targets.is_empty() {
        return state;
    }
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return state;
    };
    let shared = Arc::clone(&state);
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            shared.signalled.store(true, Ordering::SeqCst);
            for target in &targets {
                annpage::remove_own_temporaries(target);
            }
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            // Only if the default action did not end the process (it always does for these).
            std::process::exit(128 + signal);
        }
    });
    state
}
