//! Panic hooks for programs built on annpage (its CLI, its Python module, its server).
//!
//! The engine turns a panic of a third-party decoder on corrupt input (a Zarr chunk's codec,
//! say) into an [`Error`](crate::Error) naming the file and the element, with the decoder's
//! message; Rust's default hook would still have printed the panic, its location and a
//! backtrace to stderr first. [`install_hook`] replaces it: [`Report::Quiet`] keeps the last
//! panic's message and location instead of printing them (a panic the engine contains shows
//! only as its error, and one that reaches the program's top is reported by [`uncaught`] in one
//! line), [`Report::OneLine`] prints each panic as one line (a long-running program's log).
//! With `RUST_BACKTRACE` set (and not `0`) the default hook's report is printed as well, for
//! whoever debugs. The hook is the process's (of the Rust standard library linked into the
//! program): a library embedding annpage leaves it alone unless it owns the process.

use std::any::Any;
use std::panic::PanicHookInfo;
use std::sync::Mutex;

/// The last panic's message and location, kept by the hook for [`uncaught`].
static LAST: Mutex<Option<(String, String)>> = Mutex::new(None);

/// How the hook of [`install_hook`] reports a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Nothing printed; the last panic kept for [`uncaught`] (a command, a Python module).
    Quiet,
    /// One line on stderr, `annpage: panic: MESSAGE at FILE:LINE` (a server's log).
    OneLine,
}

/// Replaces the process's panic hook with one that reports as `report` says (see the
/// module's documentation).
///
/// ```
/// use annpage::panics::{install_hook, uncaught, Report};
/// install_hook(Report::Quiet);
/// let payload = std::panic::catch_unwind(|| panic!("a decoder gave up")).unwrap_err();
/// let report = uncaught(&*payload);
/// assert!(report.contains("a decoder gave up at ") && report.contains(".rs:"), "{report}");
/// ```
pub fn install_hook(report: Report) {
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
        let what = message(info.payload());
        if report == Report::OneLine && !verbose {
            eprintln!("annpage: panic: {what}{at}");
        }
        *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((what, at));
    }));
}

/// The one-line report of a panic that reached the program's top with `payload`: its message
/// and, when the hook saw that panic last, its location.
///
/// ```
/// let payload: Box<dyn std::any::Any + Send> = Box::new("boom");
/// assert!(annpage::panics::uncaught(&*payload).starts_with("internal error"));
/// ```
pub fn uncaught(payload: &(dyn Any + Send)) -> String {
    let what = message(payload);
    let at = match LAST.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some((last, at)) if last == what => at,
        _ => String::new(),
    };
    format!("internal error (a bug in annpage, please report it): {what}{at}")
}

fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
        .replace('\n', " ")
}
