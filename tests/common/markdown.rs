//! Fenced code blocks of the documentation, for the tests that check
//! what the documents show.

/// The fenced blocks of `lang` in a Markdown text, with the line each
/// starts on.
pub fn fenced_blocks(text: &str, lang: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        match &mut open {
            None if line.trim_end() == format!("```{lang}") => open = Some((n + 2, String::new())),
            Some(_) if line.trim_end() == "```" => blocks.extend(open.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(open.is_none(), "a ```{lang} block is never closed");
    blocks
}
