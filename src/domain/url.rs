//! Redirect targets Treefort gives us (`successUrl`, `cancelUrl`, `backUrl`): absolute http(s) only.

/// Returns the URL as given when it is an absolute `http` or `https` URL with a host.
pub fn parse_redirect_url(field: &str, value: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(value)
        .map_err(|_| format!("{field} must be an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{field} must be an absolute http(s) URL"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_redirect_url;

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
        ] {
            assert!(parse_redirect_url("successUrl", bad).is_err(), "{bad}");
        }
    }
}
