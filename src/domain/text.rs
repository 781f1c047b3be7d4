//! Free text and identifiers from outside (Treefort's user ids, e-mails, names): no control
//! characters. A NUL byte is refused by PostgreSQL's text type, and CR/LF have no business in an id
//! or a header; both backends refuse them alike, with a 400, before anything is stored.

use std::sync::LazyLock;

use regex::Regex;

/// Any C0 or C1 control character, or DEL (tab, CR, LF and NUL included).
static CONTROL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[\x00-\x1F\x7F-\x9F]").expect("valid pattern"));

pub fn has_control(text: &str) -> bool {
    CONTROL.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::has_control;

    #[test]
    fn control_characters_are_found_anywhere() {
        for bad in ["a\0b", "\r\n", "id\t", "x\u{7f}", "\u{85}next line"] {
            assert!(has_control(bad), "{bad:?}");
        }
        for good in ["user-42", "Zoë Ångström", "東京", "a b", ""] {
            assert!(!has_control(good), "{good:?}");
        }
    }
}
