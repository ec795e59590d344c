//! The repository speaks to users who have only the repository: no text points at the internal design document
//! (its name, in capitals, as a whole word), the reference pages under `docs/` exist, every `docs/<page>.md#<anchor>`
//! pointer anywhere resolves to a page and a heading, and every test a page cites as `path/to/file.rs::name`
//! still exists in that file, so the pages stay true to the tests that check them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The internal document's name, assembled so that this file does not match itself.
const NEEDLE: &str = concat!("SP", "EC");

/// The reference pages and what the index must link.
const PAGES: &[&str] = &[
    "chip-model.md",
    "forms.md",
    "surrogate-gradient.md",
    "mapping.md",
    "cost-model.md",
    "chip-toml.md",
    "cell-fit.md",
    "speed.md",
];

/// Folders never scanned: build output, version control, and the local run and data folders.
const SKIP_DIRS: &[&str] = &["target", ".git", "runs", "data"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate sits two levels below the workspace root")
        .to_path_buf()
}

/// Licence texts are quoted as published and never edited.
fn is_licence(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_uppercase();
    ["LICENSE", "LICENCE", "COPYING"]
        .iter()
        .any(|l| name.contains(l))
}

fn skipped(rel: &str) -> bool {
    rel.split('/')
        .next()
        .is_some_and(|first| SKIP_DIRS.contains(&first))
}

/// Every file of the repository, relative to the root: git's tracked and untracked-but-not-ignored files, or, without
/// git, a walk of the tree.
fn repository_files(root: &Path) -> Vec<String> {
    let git = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let mut files: Vec<String> = match git {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        _ => {
            let mut v = Vec::new();
            walk(root, root, &mut v);
            v
        }
    };
    files.retain(|f| !skipped(f) && root.join(f).is_file());
    files.sort();
    files.dedup();
    files
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            if !skipped(&rel) && !rel.rsplit('/').next().unwrap_or("").starts_with('.') {
                walk(root, &path, out);
            }
        } else {
            out.push(rel);
        }
    }
}

/// The text of a file, or `None` for a binary one.
fn text(root: &Path, rel: &str) -> Option<String> {
    let bytes = std::fs::read(root.join(rel)).ok()?;
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte offsets of `needle` as a whole word. A letter right before it still counts as a boundary when it ends an
/// escape sequence written in source (`"\n\nNEEDLE §3"` in a string literal).
fn whole_word_hits(text: &str, needle: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut hits = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(needle).map(|i| i + from) {
        let end = i + needle.len();
        let before_ok = i == 0
            || !is_word(b[i - 1])
            || (i >= 2 && b[i - 2] == b'\\' && matches!(b[i - 1], b'n' | b't' | b'r'));
        let after_ok = end == b.len() || !is_word(b[end]);
        if before_ok && after_ok {
            hits.push(i);
        }
        from = end;
    }
    hits
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

#[test]
fn no_file_points_at_the_internal_design_document() {
    let root = root();
    let files = repository_files(&root);
    assert!(
        files.iter().any(|f| f == "README.md") && files.len() > 50,
        "the file list looks wrong ({} files)",
        files.len()
    );
    let mut found = Vec::new();
    for rel in &files {
        if is_licence(rel) {
            continue;
        }
        let Some(t) = text(&root, rel) else { continue };
        for i in whole_word_hits(&t, NEEDLE) {
            let line = t[..i].rsplit('\n').next().unwrap_or("").len();
            let rest: String = t[i - line..]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(100)
                .collect();
            found.push(format!("{rel}:{}: {rest}", line_of(&t, i)));
        }
    }
    assert!(
        found.is_empty(),
        "{} reference(s) to the internal design document, which users do not have; point at the page of docs/ \
         that explains it instead (docs/README.md lists them):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_needle_matcher_sees_words_and_escapes_only() {
    let n = NEEDLE;
    assert_eq!(whole_word_hits(&format!("({n} §2)"), n).len(), 1);
    assert_eq!(
        whole_word_hits(&format!("the {n}'s cubic, {n}.md"), n).len(),
        2
    );
    assert_eq!(
        whole_word_hits(&format!("\"\\n\\n{n} §3 step 3\""), n).len(),
        1
    );
    assert_eq!(
        whole_word_hits(&format!("{n}IAL, X{n}, {n}_1, {}", n.to_lowercase()), n).len(),
        0
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (letters, digits, spaces, `-` and `_` kept),
/// spaces turned into hyphens; a repeated heading gets `-1`, `-2`, ….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

fn is_page_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

fn is_anchor_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_')
}

/// `(page, anchor)` for every `docs/<page>.md` or `docs/<page>.md#<anchor>` in `text`.
fn docs_pointers(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("docs/").map(|i| i + from) {
        from = i + 5;
        if i > 0 && is_page_char(text[..i].chars().next_back().unwrap()) {
            continue; // part of a longer name, e.g. `mydocs/`
        }
        let rest = &text[i + 5..];
        let name: String = rest.chars().take_while(|&c| is_page_char(c)).collect();
        if name.is_empty() || !rest[name.len()..].starts_with(".md") {
            continue;
        }
        let after = &rest[name.len() + 3..];
        let anchor = after
            .strip_prefix('#')
            .map(|a| {
                a.chars()
                    .take_while(|&c| is_anchor_char(c))
                    .collect::<String>()
            })
            .filter(|a| !a.is_empty());
        out.push((format!("{name}.md"), anchor));
    }
    out
}

/// `(page, anchor)` of the relative links inside a docs page: `](page.md#anchor)`, `](#anchor)`.
fn relative_links(page: &str, text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for part in text.split("](").skip(1) {
        let target: String = part.chars().take_while(|&c| c != ')' && c != ' ').collect();
        if target.contains("://") || target.starts_with("../") || target.contains('/') {
            continue;
        }
        let (file, anchor) = match target.split_once('#') {
            Some((f, a)) => (f, Some(a.to_string())),
            None => (target.as_str(), None),
        };
        if !file.is_empty() && !file.ends_with(".md") {
            continue;
        }
        let file = if file.is_empty() { page } else { file };
        out.push((file.to_string(), anchor));
    }
    out
}

#[test]
fn the_reference_pages_exist_and_every_pointer_to_them_resolves() {
    let root = root();
    let docs = root.join("docs");
    let index = std::fs::read_to_string(docs.join("README.md")).expect("docs/README.md, the index");
    for page in PAGES {
        assert!(docs.join(page).is_file(), "docs/{page} is missing");
        assert!(
            index.contains(&format!("({page})")),
            "docs/README.md does not link {page}"
        );
    }
    let mut headings: HashMap<String, BTreeSet<String>> = HashMap::new();
    for page in PAGES.iter().copied().chain(["README.md"]) {
        let t = std::fs::read_to_string(docs.join(page)).unwrap();
        headings.insert(page.to_string(), anchors(&t));
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    let mut check = |origin: &str, page: &str, anchor: &Option<String>| {
        checked += 1;
        match (headings.get(page), anchor) {
            (None, _) => broken.push(format!("{origin}: docs/{page} does not exist")),
            (Some(h), Some(a)) if !h.contains(a) => broken.push(format!(
                "{origin}: docs/{page} has no heading #{a} (it has: {})",
                h.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            _ => {}
        }
    };
    for rel in repository_files(&root) {
        if is_licence(&rel) || rel.starts_with("docs/results/") {
            continue;
        }
        let Some(t) = text(&root, &rel) else { continue };
        for (page, anchor) in docs_pointers(&t) {
            check(&rel, &page, &anchor);
        }
        if let Some(page) = rel
            .strip_prefix("docs/")
            .filter(|p| !p.contains('/') && p.ends_with(".md"))
        {
            for (target, anchor) in relative_links(page, &t) {
                check(&rel, &target, &anchor);
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} pointers to docs/ found: is the scan broken?"
    );
    assert!(
        broken.is_empty(),
        "pointers into docs/ that do not resolve:\n{}",
        broken.join("\n")
    );
}

/// `(file, function)` for every backticked `path/to/file.rs::function` in `text`.
fn cited_tests(text: &str) -> Vec<(String, String)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (file, name) = span.rsplit_once("::")?;
            let ok_file = file.ends_with(".rs")
                && file.contains('/')
                && file
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
            let ok_name = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            (ok_file && ok_name).then(|| (file.to_string(), name.to_string()))
        })
        .collect()
}

#[test]
fn every_test_the_pages_cite_exists_in_the_file_they_name() {
    let root = root();
    let mut missing = Vec::new();
    let mut total = 0;
    for page in PAGES {
        let t = std::fs::read_to_string(root.join("docs").join(page)).unwrap();
        let cited = cited_tests(&t);
        assert!(
            !cited.is_empty(),
            "docs/{page} names no test that checks it"
        );
        for (file, name) in cited {
            total += 1;
            let Ok(src) = std::fs::read_to_string(root.join(&file)) else {
                missing.push(format!("docs/{page}: `{file}::{name}`: no file {file}"));
                continue;
            };
            let defined = [format!("fn {name}("), format!("fn {name}<")]
                .iter()
                .any(|d| src.contains(d.as_str()));
            if !defined {
                missing.push(format!(
                    "docs/{page}: `{file}::{name}`: {file} has no fn {name}"
                ));
            }
        }
    }
    assert!(
        total >= 30,
        "only {total} cited tests found: is the parser broken?"
    );
    assert!(
        missing.is_empty(),
        "the pages cite tests that do not exist (renamed or moved? update the page):\n{}",
        missing.join("\n")
    );
}
