//! Redirect targets Treefort gives us (`successUrl`, `cancelUrl`, `backUrl`): absolute http(s) only.

/// The URL, parsed and written back in its normalized form, when it is an absolute `http` or
/// `https` URL with a host and no control characters. What is stored is what was checked: a value
/// that parses only after the parser dropped a CR, LF or tab would otherwise reach a `Location`
/// header as given.
pub fn parse_redirect_url(field: &str, value: &str) -> Result<String, String> {
    if super::text::has_control(value) {
        return Err(format!("{field} must not contain control characters"));
    }
    // A URI is ASCII (RFC 3986): internationalized names come in their xn-- form.
    if !value.is_ascii() || value.contains(' ') {
        return Err(format!(
            "{field} must be a URL in ASCII, without spaces (internationalized names as xn--)"
        ));
    }
    let parsed = reqwest::Url::parse(value)
        .map_err(|_| format!("{field} must be an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field} must be an absolute http(s) URL"));
    }
    if value.len() > 2048 {
        return Err(format!("{field} must be at most 2048 characters"));
    }
    Ok(parsed.to_string())
}

/// Percent-encodes an id (a user's, Treefort's) for use as one path segment: everything but
/// RFC 3986's unreserved characters.
pub fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parse_redirect_url, path_segment};

    #[test]
    fn ids_are_escaped_in_paths() {
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("sub_1-x"), "sub_1-x");
    }

    #[test]
    fn only_absolute_http_urls_pass() {
        assert!(parse_redirect_url("successUrl", "https://app.example.com/done?x=1").is_ok());
        assert!(parse_redirect_url("successUrl", "http://localhost:3000/").is_ok());
        for bad in [
            "/relative",
            "javascript:alert(1)",
            "ftp://x/y",
            "",
            "https://",
            "https://app.example.com/\r\nSet-Cookie: x=1",
            "https://app.example.com/a\nb",
            "https://app.example.com/\0",
            "https://app.example.com/\tx",
        ] {
            assert!(parse_redirect_url("successUrl", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_stored_form_is_the_parsed_one() {
        assert_eq!(
            parse_redirect_url("successUrl", "HTTPS://App.Example.com/a%20b?x=%C3%BC").unwrap(),
            "https://app.example.com/a%20b?x=%C3%BC"
        );
        assert!(parse_redirect_url("successUrl", "https://bücher.example/").is_err());
        assert!(parse_redirect_url("successUrl", "https://a.example/a b").is_err());
    }
}
