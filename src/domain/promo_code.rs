//! Promo code syntax, as Treefort fixes it: letters a-z and digits only, compared case-insensitively.

/// Longest code accepted; longer input is treated like any other invalid code.
pub const MAX_LEN: usize = 64;

/// Treefort's promo-code alphabet: ASCII letters and digits, 1 to `MAX_LEN` of them.
static CODE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(&format!("^[A-Za-z0-9]{{1,{MAX_LEN}}}$")).expect("valid pattern")
});

/// The form codes are stored and compared in (lowercase), or `None` when the code has a character
/// Treefort does not allow. Folding is ASCII-only on purpose: nothing else is a valid character.
pub fn normalize(code: &str) -> Option<String> {
    CODE.is_match(code).then(|| code.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn only_ascii_letters_and_digits_are_codes() {
        assert_eq!(normalize("Spring25").as_deref(), Some("spring25"));
        for bad in [
            "",
            "SPRING-25",
            "spring 25",
            "spräng",
            "ＳＰＲＩＮＧ",
            "a_b",
            &"a".repeat(65),
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }
}
