//! Everything the command line shows a person: status lines and progress bars, on stderr.
//!
//! stdout carries data only (a schema, a JSON report), so it can be piped. Progress bars are
//! hidden under `-q`, `--no-progress`, or when stderr is not a terminal.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Decides what is shown on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    progress: bool,
}

impl Printer {
    /// A printer for the global flags.
    pub fn new(quiet: bool, no_progress: bool) -> Printer {
        Printer {
            quiet,
            progress: !quiet && !no_progress && std::io::stderr().is_terminal(),
        }
    }

    /// Prints a status line, unless quiet.
    pub fn status(&self, message: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }

    /// A progress bar of `length` units, hidden when progress is off.
    pub fn bar(&self, length: u64, template: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }
}
