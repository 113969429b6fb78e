//! Ctrl-C, SIGTERM or SIGHUP during a write: the hidden temporary beside the output is
//! removed before the process dies of the signal, instead of staying (gigabytes, for a large
//! output) until the next write of the same target cleans it up.

use std::path::PathBuf;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Watches for SIGINT, SIGTERM and SIGHUP on a thread of its own. On the first, removes this
/// process's temporaries of `targets` and dies of the signal as if no handler were installed
/// (the shell sees 130 for Ctrl-C, 143 for SIGTERM). Without targets, nothing is installed.
pub fn remove_temporaries_on_signal(targets: Vec<PathBuf>) {
    if targets.is_empty() {
        return;
    }
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            for target in &targets {
                annpage::remove_own_temporaries(target);
            }
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            // Only if the default action did not end the process (it always does for these).
            std::process::exit(128 + signal);
        }
    });
}
