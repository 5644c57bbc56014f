//! Results of a run, and their three renderings: text like
//! container-structure-test's, JSON, and JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Which kind of test a result is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TestKind {
    /// `commandTests`.
    Command,
    /// `fileContentTests`.
    FileContent,
    /// `fileExistenceTests`.
    FileExistence,
    /// `licenseTests`.
    License,
    /// `metadataTest`.
    Metadata,
}

impl TestKind {
    /// The prefix container-structure-test names results with.
    pub fn label(self) -> &'static str {
        match self {
            TestKind::Command => "Command Test",
            TestKind::FileContent => "File Content Test",
            TestKind::FileExistence => "File Existence Test",
            TestKind::License => "License Test",
            TestKind::Metadata => "Metadata Test",
        }
    }
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status", content = "reason")]
pub enum Outcome {
    /// Every check held.
    Pass,
    /// Some check did not; the result's errors say which.
    Fail,
    /// Not run, for this reason (no container runtime).
    NotRun(String),
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// The test's kind.
    pub kind: TestKind,
    /// The name from the config (empty for metadata and licence tests).
    pub name: String,
    /// Pass, fail or not run.
    pub outcome: Outcome,
    /// Each failed check: what was expected and what was found.
    pub errors: Vec<String>,
    /// A command's standard output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// A command's standard error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// How long the test took.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl TestResult {
    /// A result with no check failed yet.
    pub fn new(kind: TestKind, name: &str) -> TestResult {
        TestResult {
            kind,
            name: name.to_string(),
            outcome: Outcome::Pass,
            errors: Vec::new(),
            stdout: None,
            stderr: None,
            duration: Duration::ZERO,
        }
    }

    /// Records a failed check.
    pub fn fail(&mut self, message: String) {
        self.outcome = Outcome::Fail;
        self.errors.push(message);
    }

    /// The title container-structure-test gives the result.
    pub fn title(&self) -> String {
        if self.name.is_empty() {
            self.kind.label().to_string()
        } else {
            format!("{}: {}", self.kind.label(), self.name)
        }
    }
}

/// The results of one config against one image.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    /// The image's name.
    pub image: String,
    /// The config file.
    pub config: String,
    /// Its tests' results, in the order container-structure-test runs
    /// them: commands, file contents, file existence, licences, metadata.
    pub results: Vec<TestResult>,
}

/// Everything a run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// One entry per (image, config) pair, in the order run.
    pub configs: Vec<ConfigReport>,
}

/// Counts of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Tests that passed.
    pub pass: usize,
    /// Tests that failed.
    pub fail: usize,
    /// Tests not run.
    pub not_run: usize,
}

impl Report {
    /// Every result, with its config.
    pub fn results(&self) -> impl Iterator<Item = (&ConfigReport, &TestResult)> {
        self.configs
            .iter()
            .flat_map(|c| c.results.iter().map(move |r| (c, r)))
    }

    /// How many passed, failed, and were not run.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for (_, r) in self.results() {
            match r.outcome {
                Outcome::Pass => t.pass += 1,
                Outcome::Fail => t.fail += 1,
                Outcome::NotRun(_) => t.not_run += 1,
            }
        }
        t
    }

    /// The run's total time.
    pub fn duration(&self) -> Duration {
        self.results().map(|(_, r)| r.duration).sum()
    }

    /// Text in the form container-structure-test prints, per config a
    /// banner, per test its verdict and every error, then the totals.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.configs {
            let banner = format!("====== Test file: {} ({}) ======", c.config, c.image);
            let bar = "=".repeat(banner.len());
            let _ = write!(out, "\n{bar}\n{banner}\n{bar}\n");
            for r in &c.results {
                let _ = writeln!(out, "=== RUN: {}", r.title());
                match &r.outcome {
                    Outcome::Pass => out.push_str("--- PASS\n"),
                    Outcome::Fail => out.push_str("--- FAIL\n"),
                    Outcome::NotRun(why) => {
                        let _ = writeln!(out, "--- NOT RUN: {why}");
                    }
                }
                let _ = writeln!(out, "duration: {:?}", r.duration);
                if let Some(s) = r.stdout.as_deref().filter(|s| !s.is_empty()) {
                    let _ = writeln!(out, "stdout: {s}");
                }
                if let Some(s) = r.stderr.as_deref().filter(|s| !s.is_empty()) {
                    let _ = writeln!(out, "stderr: {s}");
                }
                for e in &r.errors {
                    let _ = writeln!(out, "Error: {e}");
                }
            }
        }
        let t = self.totals();
        let total = t.pass + t.fail + t.not_run;
        if total == 0 {
            out.push_str("No tests run! Check config file format.\n");
            return out;
        }
        let _ = write!(
            out,
            "\n=================================\n============ RESULTS ============\n\
             =================================\nPasses:      {}\nFailures:    {}\n",
            t.pass, t.fail
        );
        if t.not_run > 0 {
            let _ = writeln!(out, "Not run:     {}", t.not_run);
        }
        let _ = write!(
            out,
            "Duration:    {:?}\nTotal tests: {total}\n\n{}\n",
            self.duration(),
            if t.fail == 0 && t.not_run == 0 {
                "PASS"
            } else {
                "FAIL"
            }
        );
        out
    }

    /// The report as JSON: totals and every result.
    pub fn to_json(&self) -> String {
        let t = self.totals();
        let doc = serde_json::json!({
            "pass": t.pass,
            "fail": t.fail,
            "notRun": t.not_run,
            "total": t.pass + t.fail + t.not_run,
            "duration": self.duration().as_secs_f64(),
            "configs": self.configs,
        });
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The report as JUnit XML: one suite per (image, config), a test not
    /// run is `skipped`.
    pub fn to_junit(&self) -> String {
        let t = self.totals();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            t.pass + t.fail + t.not_run,
            t.fail,
            t.not_run,
            self.duration().as_secs_f64()
        );
        for c in &self.configs {
            let fails = c
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Fail)
                .count();
            let skipped = c
                .results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::NotRun(_)))
                .count();
            let time: Duration = c.results.iter().map(|r| r.duration).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skipped}\" time=\"{:.3}\">",
                xml(&format!("{} ({})", c.config, c.image)),
                c.results.len(),
                time.as_secs_f64()
            );
            for r in &c.results {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    xml(&r.title()),
                    xml(&c.image),
                    r.duration.as_secs_f64()
                );
                let body = junit_body(r);
                if body.is_empty() {
                    out.push_str("/>\n");
                } else {
                    let _ = write!(out, ">\n{body}    </testcase>\n");
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

fn junit_body(r: &TestResult) -> String {
    let mut b = String::new();
    match &r.outcome {
        Outcome::Pass => {}
        Outcome::Fail => {
            let first = r.errors.first().map(String::as_str).unwrap_or("failed");
            let _ = writeln!(
                b,
                "      <failure message=\"{}\">{}</failure>",
                xml(first),
                xml(&r.errors.join("\n"))
            );
        }
        Outcome::NotRun(why) => {
            let _ = writeln!(b, "      <skipped message=\"{}\"/>", xml(why));
        }
    }
    if let Some(s) = r.stdout.as_deref().filter(|s| !s.is_empty()) {
        let _ = writeln!(b, "      <system-out>{}</system-out>", xml(s));
    }
    if let Some(s) = r.stderr.as_deref().filter(|s| !s.is_empty()) {
        let _ = writeln!(b, "      <system-err>{}</system-err>", xml(s));
    }
    b
}

/// Text escaped for an XML attribute or element; characters XML 1.0
/// cannot hold at all become U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut failed = TestResult::new(TestKind::FileExistence, "a <b>");
        failed.fail("Expected: -rwxr-xr-x, Actual: -rw-r--r--".into());
        let mut skipped = TestResult::new(TestKind::Command, "c");
        skipped.outcome = Outcome::NotRun("no runtime".into());
        Report {
            configs: vec![ConfigReport {
                image: "img".into(),
                config: "t.yaml".into(),
                results: vec![TestResult::new(TestKind::Metadata, ""), failed, skipped],
            }],
        }
    }

    #[test]
    fn text_says_what_was_expected_and_found() {
        let t = report().to_text();
        assert!(
            t.contains("=== RUN: File Existence Test: a <b>\n--- FAIL\n"),
            "{t}"
        );
        assert!(
            t.contains("Error: Expected: -rwxr-xr-x, Actual: -rw-r--r--"),
            "{t}"
        );
        assert!(t.contains("--- NOT RUN: no runtime"), "{t}");
        assert!(
            t.contains("Passes:      1\nFailures:    1\nNot run:     1\n"),
            "{t}"
        );
        assert!(t.ends_with("FAIL\n"), "{t}");
    }

    #[test]
    fn junit_escapes_names_and_marks_skips() {
        let x = report().to_junit();
        assert!(
            x.contains("name=\"File Existence Test: a &lt;b&gt;\""),
            "{x}"
        );
        assert!(x.contains("<skipped message=\"no runtime\"/>"), "{x}");
        assert!(
            x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
    }

    #[test]
    fn json_counts_every_outcome() {
        let v: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(
            (v["pass"].as_u64(), v["fail"].as_u64(), v["notRun"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(v["configs"][0]["results"][2]["outcome"]["status"], "notRun");
    }
}
