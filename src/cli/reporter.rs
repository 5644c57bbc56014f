//! Progress on stderr: bars on a terminal, one plain line per step otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use gantry::progress::BlobAction;
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

    /// A byte bar under `key`, on a terminal only.
    fn start_bar(&self, key: (String, String), len: u64, prefix: String) {
        if self.mode != ProgressMode::Bar {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        self.bars.lock().expect("bars lock").insert(key, bar);
    }

    fn move_bar(&self, key: &(String, String), done: u64) {
        if let Some(bar) = self.bars.lock().expect("bars lock").get(key) {
            bar.set_position(done);
        }
    }

    fn end_bar(&self, key: &(String, String)) {
        if let Some(bar) = self.bars.lock().expect("bars lock").remove(key) {
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

/// One blob may go to several repositories at once; no image name holds a
/// space, so these cannot collide with layer keys either.
fn push_key(target: &str, digest: &gantry::Digest) -> (String, String) {
    (format!("push {target}"), digest.to_string())
}

/// One load runs at a time; no image name holds a space.
fn load_key() -> (String, String) {
    ("load ".to_string(), String::new())
}

impl Reporter for CliReporter {
    fn report(&self, event: Event<'_>) {
        match event {
            Event::LayerStarted { .. }
            | Event::LayerProgress { .. }
            | Event::LayerFinished { .. }
            | Event::ImageBuilt { .. }
            | Event::OutputWritten { .. } => self.build_event(event),
            Event::BaseResolved { .. }
            | Event::DownloadStarted { .. }
            | Event::DownloadProgress { .. }
            | Event::DownloadFinished { .. } => self.download_event(event),
            Event::PushStarted { .. }
            | Event::PushProgress { .. }
            | Event::PushFinished { .. }
            | Event::ManifestPushed { .. } => self.push_event(event),
            Event::LoadStarted { .. } | Event::LoadProgress { .. } | Event::LoadFinished { .. } => {
                self.load_event(event)
            }
            Event::BlobRepaired { .. } | Event::TarballPlatform { .. } | Event::Warning { .. } => {
                self.notice(event)
            }
        }
    }
}

impl CliReporter {
    /// Layers laid down, images assembled and written.
    fn build_event(&self, event: Event<'_>) {
        match event {
            Event::LayerStarted {
                image,
                layer,
                bytes,
            } => self.start_bar(
                (image.to_string(), layer.to_string()),
                bytes,
                format!("{image}/{layer}"),
            ),
            Event::LayerProgress { image, layer, done } => {
                self.move_bar(&(image.to_string(), layer.to_string()), done)
            }
            Event::LayerFinished {
                image,
                layer,
                digest,
                size,
                reused,
                cached_from,
            } => {
                self.end_bar(&(image.to_string(), layer.to_string()));
                let how = match cached_from {
                    Some(from) => format!("cached from {from}"),
                    None if reused => "reused".to_string(),
                    None => "built".to_string(),
                };
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
            _ => unreachable!("not a build event"),
        }
    }

    /// Registry bases resolved and their blobs fetched.
    fn download_event(&self, event: Event<'_>) {
        match event {
            Event::BaseResolved { reference, digest } => {
                self.line(format!("{reference}: resolved to {}", short(digest)));
            }
            Event::DownloadStarted {
                reference,
                digest,
                size,
            } => {
                if self.mode == ProgressMode::Bar {
                    self.start_bar(
                        download_key(digest),
                        size,
                        format!("pull {}", short(digest)),
                    );
                } else {
                    self.line(format!(
                        "{reference}: downloading {} ({})",
                        short(digest),
                        human_size(size)
                    ));
                }
            }
            Event::DownloadProgress { digest, done } => self.move_bar(&download_key(digest), done),
            Event::DownloadFinished {
                reference,
                digest,
                size,
            } => {
                self.end_bar(&download_key(digest));
                self.line(format!(
                    "{reference}: downloaded {} ({})",
                    short(digest),
                    human_size(size)
                ));
            }
            _ => unreachable!("not a download event"),
        }
    }

    /// Blobs and manifests going to registries.
    fn push_event(&self, event: Event<'_>) {
        match event {
            Event::PushStarted {
                target,
                digest,
                size,
            } => self.start_bar(
                push_key(target, digest),
                size,
                format!("push {} {}", target, short(digest)),
            ),
            Event::PushProgress {
                target,
                digest,
                done,
            } => self.move_bar(&push_key(target, digest), done),
            Event::PushFinished {
                target,
                digest,
                size,
                action,
                from,
            } => {
                self.end_bar(&push_key(target, digest));
                let how = match (action, from) {
                    (BlobAction::Skipped, _) => "exists".to_string(),
                    (BlobAction::Mounted, Some(f)) => format!("mounted from {f}"),
                    (BlobAction::Mounted, None) => "mounted".to_string(),
                    (BlobAction::Uploaded, _) => "uploaded".to_string(),
                };
                self.line(format!(
                    "{target}: {} {how} ({})",
                    short(digest),
                    human_size(size)
                ));
            }
            Event::ManifestPushed {
                reference,
                digest,
                unchanged,
            } => {
                let how = if unchanged { "already points at" } else { "->" };
                self.line(format!("{reference} {how} {}", short(digest)));
            }
            _ => unreachable!("not a push event"),
        }
    }

    /// An archive streamed to a container engine.
    fn load_event(&self, event: Event<'_>) {
        match event {
            Event::LoadStarted {
                engine,
                layers,
                of,
                bytes,
            } => {
                self.line(format!(
                    "load: sending {layers} of {of} layers ({}) to {engine}",
                    human_size(bytes)
                ));
                self.start_bar(load_key(), bytes, "load".into());
            }
            Event::LoadProgress { sent, .. } => self.move_bar(&load_key(), sent),
            Event::LoadFinished { sent, ok, .. } => {
                self.end_bar(&load_key());
                let how = if ok { "sent" } else { "failed after" };
                self.line(format!("load: {how} {sent} bytes ({})", human_size(sent)));
            }
            _ => unreachable!("not a load event"),
        }
    }

    /// What is said even in quiet mode.
    fn notice(&self, event: Event<'_>) {
        match event {
            Event::BlobRepaired {
                digest,
                problem,
                moved_to,
            } => {
                // The store was damaged, and a cache in CI may keep being so.
                self.above_bars(format!(
                    "repaired: store blob {digest} ({problem}) moved to {moved_to}; \
                     built or fetched again"
                ));
            }
            Event::TarballPlatform {
                image,
                platform,
                built,
            } => {
                // On stderr as it always was, bars or not: the tarball
                // holds less than the build made.
                eprintln!(
                    "{image}: the docker tarball holds {platform} (built: {built}; choose \
                     another with --platform)"
                );
            }
            Event::Warning { message } => self.above_bars(format!("warning: {message}")),
            _ => unreachable!("not a notice"),
        }
    }

    /// A line on stderr whatever the mode, above the bars when they show.
    fn above_bars(&self, text: String) {
        if self.mode == ProgressMode::Bar {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }
}
