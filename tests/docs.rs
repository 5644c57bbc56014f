//! The build-file examples of the guides parse: every ```toml block of
//! the documents below is a whole build file, read by the library's own
//! parser, so a key renamed or removed breaks this test and not a reader's
//! first build.

mod common;

use std::path::Path;

use gantry::buildfile::BuildFile;

use common::markdown::fenced_blocks;

/// The documents whose ```toml blocks are build files, with how many each
/// holds (so that a block the extraction missed cannot pass unseen).
const DOCS: &[(&str, usize)] = &[
    ("docs/from-dockerfile.md", 6),
    ("docs/ci.md", 1),
    ("docs/cache.md", 1),
];

#[test]
fn every_toml_block_of_the_guides_is_a_build_file_that_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (doc, expected) in DOCS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let blocks = fenced_blocks(&text, "toml");
        assert_eq!(blocks.len(), *expected, "```toml blocks in {doc}");
        for (line, body) in blocks {
            let name = format!("{doc}:{line}");
            if let Err(e) = BuildFile::parse(&body, Path::new(&name)) {
                panic!("the build file at {name} does not parse: {e}\n{body}");
            }
        }
    }
}

#[test]
fn fenced_blocks_finds_each_block_and_its_first_line() {
    let text = "intro\n```toml\na = 1\n```\n```sh\nls\n```\n```toml\nb = 2\nc = 3\n```\n";
    assert_eq!(
        fenced_blocks(text, "toml"),
        [
            (3, "a = 1\n".to_string()),
            (9, "b = 2\nc = 3\n".to_string())
        ]
    );
}
