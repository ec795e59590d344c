//! wikitext (`wikitext.yaml`, version 2.0): WikiText-2 raw test set, one document per Wikipedia page
//! (`EleutherAI/wikitext_document_level`), each page detokenized (`preprocess_wikitext.wikitext_detokenizer`)
//! and scored whole with rolling windows; words and bytes are counted on the page before detokenization.

use std::path::Path;
use std::sync::LazyLock;

use regex::{NoExpand, Regex};

use super::{find, read_text, Doc, Task};
use crate::error::Result;

const HINT: &str = "put WikiText-2 raw's wiki.test.raw there (wikitext-2-raw-v1.zip from \
                    https://wikitext.smerity.com/wikitext-2-raw-v1.zip, or HF dataset Salesforce/wikitext)";

pub fn load(dir: &Path) -> Result<Vec<Doc>> {
    let path = find(Task::Wikitext, dir, &["wikitext-2-raw/wiki.test.raw"], HINT)?;
    Ok(pages(&read_text(&path)?).into_iter().map(doc).collect())
}

/// The document of one page.
pub fn doc(page: String) -> Doc {
    Doc::Rolling {
        text: detokenize(&page),
        words: words(&page),
        bytes: page.len(),
    }
}

/// Pages of a raw WikiText file: a new page starts at every level-1 heading (` = Title = `), as
/// `wikitext_document_level._generate_examples` splits them.
pub fn pages(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut page: Vec<&str> = Vec::new();
    for line in raw.split('\n') {
        let r = line.replace("= = =", "===").replace("= =", "==");
        let r = r.trim();
        if r.starts_with("= ") && r.ends_with(" =") {
            let text = page.join("\n");
            if !text.trim().is_empty() {
                out.push(text);
            }
            page.clear();
        }
        page.push(line);
    }
    out.push(page.join("\n"));
    out
}

/// `len(re.split(r"\s+", page))`.
pub fn words(page: &str) -> usize {
    static WS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("valid"));
    WS.split(page).count()
}

/// `wikitext_detokenizer`, step by step.
pub fn detokenize(page: &str) -> String {
    static SLASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"/' [0-9]/").expect("valid"));
    static BRACKETS: LazyLock<[(Regex, &str); 5]> = LazyLock::new(|| {
        let re = |p: &str| Regex::new(p).expect("valid");
        [
            (re(r"\(\s*([^\)]*?)\s*\)"), "(${1})"),
            (re(r"\[\s*([^\]]*?)\s*\]"), "[${1}]"),
            (re(r"\{\s*([^}]*?)\s*\}"), "{${1}}"),
            (re(r#""\s*([^"]*?)\s*""#), "\"${1}\""),
            (re(r"'\s*([^']*?)\s*'"), "'${1}'"),
        ]
    });
    let mut s = page.replace("s '", "s'");
    // The harness's `re.sub(r"/' [0-9]/", r"/'[0-9]/", …)`: a literal replacement.
    s = SLASH.replace_all(&s, NoExpand("/'[0-9]/")).into_owned();
    for (from, to) in [
        (" @-@ ", "-"),
        (" @,@ ", ","),
        (" @.@ ", "."),
        (" : ", ": "),
        (" ; ", "; "),
        (" . ", ". "),
        (" ! ", "! "),
        (" ? ", "? "),
        (" , ", ", "),
    ] {
        s = s.replace(from, to);
    }
    for (re, to) in BRACKETS.iter() {
        s = re.replace_all(&s, *to).into_owned();
    }
    for (from, to) in [
        ("= = = =", "===="),
        ("= = =", "==="),
        ("= =", "=="),
        (" \u{b0} ", "\u{b0}"),
        (" \n", "\n"),
        ("\n ", "\n"),
        (" N ", " 1 "),
        (" 's", "'s"),
    ] {
        s = s.replace(from, to);
    }
    s
}
