//! Panics in the CLI's verbs: reported in one line, like every other error.
//!
//! The engine turns a panic of a third-party decoder on corrupt input (a Zarr chunk's codec,
//! say) into an error naming the file and the element, with the decoder's message; Rust's
//! default hook would still have printed the panic, its location and a backtrace first. The
//! hook installed here keeps the last panic's message and location instead of printing them:
//! a panic the engine contains shows only as its error, and one that reaches `main` is
//! reported by [`uncaught`] as one line. With `RUST_BACKTRACE` set (and not `0`) the default
//! hook's report is printed as well, for whoever debugs.

use std::any::Any;
use std::panic::PanicHookInfo;
use std::sync::Mutex;

/// The last panic's message and location, kept by the hook for [`uncaught`].
static LAST: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the process's panic hook with the quiet one (see the module's documentation).
pub fn install() {
    let default = std::panic::take_hook();
    let verbose = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        if verbose {
            default(info);
        }
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let report = format!("{}{at}", message(info.payload()));
        *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }));
}

/// The one-line report of a panic that reached `main` with `payload`.
pub fn uncaught(payload: &(dyn Any + Send)) -> String {
    let last = LAST.lock().unwrap_or_else(|e| e.into_inner()).take();
    let what = last.unwrap_or_else(|| message(payload));
    format!("internal error (a bug in annpage, please report it): {what}")
}

fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
        .replace('\n', " ")
}
