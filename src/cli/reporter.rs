//! Progress on stderr: bars on a terminal, one plain line per step otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use gantry::progress::{Event, Reporter};

use super::ProgressMode;

pub struct CliReporter {
    mode: ProgressMode,
    multi: MultiProgress,
    bars: Mutex<HashMap<(String, String), ProgressBar>>,
}

impl CliReporter {
    pub fn new(mode: ProgressMode) -> CliReporter {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Plain,
            m => m,
        };
        CliReporter {
            mode,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn finish(&self) {
        for (_, bar) in self.bars.lock().expect("bars lock").drain() {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match self.mode {
            ProgressMode::None => {}
            ProgressMode::Bar => {
                let _ = self.multi.println(text);
            }
            _ => eprintln!("{text}"),
        }
    }
}

pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn short(d: &gantry::Digest) -> String {
    d.to_string()[..19].to_string()
}

/// Downloads share the bar map with layers; no image is named "" so the
/// keys cannot collide.
fn download_key(digest: &gantry::Digest) -> (String, String) {
    (String::new(), digest.to_string())
}

impl Reporter for CliReporter {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::LayerStarted {
                image,
                layer,
                bytes,
            } => {
                if self.mode == ProgressMode::Bar {
                    let bar = self.multi.add(ProgressBar::new(bytes));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{image}/{layer}"));
                    self.bars
                        .lock()
                        .expect("bars lock")
                        .insert((image.to_string(), layer.to_string()), bar);
                }
            }
            Event::LayerProgress { image, layer, done } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .expect("bars lock")
                    .get(&(image.to_string(), layer.to_string()))
                {
                    bar.set_position(done);
                }
            }
            Event::LayerFinished {
                image,
                layer,
                digest,
                size,
                reused,
            } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .expect("bars lock")
                    .remove(&(image.to_string(), layer.to_string()))
                {
                    bar.finish_and_clear();
                }
                let how = if reused { "reused" } else { "built" };
                self.line(format!(
                    "{image}: layer {layer} {how}: {} ({})",
                    short(digest),
                    human_size(size)
                ));
            }
            Event::ImageBuilt { image, digest } => {
                self.line(format!("{image}: image {}", short(digest)));
            }
            Event::OutputWritten { image, path } => {
                self.line(format!("{image}: written to {path}"));
            }
            Event::BaseResolved { reference, digest } => {
                self.line(format!("{reference}: resolved to {}", short(digest)));
            }
            Event::DownloadStarted {
                reference,
                digest,
                size,
            } => {
                if self.mode == ProgressMode::Bar {
                    let bar = self.multi.add(ProgressBar::new(size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .expect("static template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("pull {}", short(digest)));
                    self.bars
                        .lock()
                        .expect("bars lock")
                        .insert(download_key(digest), bar);
                } else {
                    self.line(format!(
                        "{reference}: downloading {} ({})",
                        short(digest),
                        human_size(size)
                    ));
                }
            }
            Event::DownloadProgress { digest, done } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .expect("bars lock")
                    .get(&download_key(digest))
                {
                    bar.set_position(done);
                }
            }
            Event::DownloadFinished {
                reference,
                digest,
                size,
            } => {
                if let Some(bar) = self
                    .bars
                    .lock()
                    .expect("bars lock")
                    .remove(&download_key(digest))
                {
                    bar.finish_and_clear();
                }
                self.line(format!(
                    "{reference}: downloaded {} ({})",
                    short(digest),
                    human_size(size)
                ));
            }
            Event::Warning { message } => {
                // Warnings show even in quiet mode.
                if self.mode == ProgressMode::Bar {
                    let _ = self.multi.println(format!("warning: {message}"));
                } else {
                    eprintln!("warning: {message}");
                }
            }
        }
    }
}
