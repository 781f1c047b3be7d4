//! Outbound webhooks as the Standard Webhooks specification has them: the signing secret
//! (`whsec_` + base64 of 32 bytes), the signature (`v1,` + base64 HMAC-SHA256 of
//! `id.timestamp.body`), and the address rule that keeps deliveries off private networks.

use std::net::IpAddr;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A fresh salt: 32 random bytes. The secret is derived from it with the service's signing key,
/// so the salt alone (what the database keeps) signs nothing.
pub fn new_salt() -> Result<String, getrandom::Error> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt)?;
    Ok(URL_SAFE_NO_PAD.encode(salt))
}

/// The endpoint's secret bytes: HMAC-SHA256(signing key, salt).
pub fn secret_bytes(signing_key: &str, salt: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(signing_key.as_bytes()).expect("HMAC takes any key");
    mac.update(b"treefort-webpay webhook secret v1:");
    mac.update(salt.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The secret as the receiver configures it: `whsec_<base64>`.
pub fn display_secret(secret: &[u8; 32]) -> String {
    format!("whsec_{}", STANDARD.encode(secret))
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether an address is one a public endpoint cannot have: loopback, private (RFC 1918, unique
/// local), link-local, unspecified, shared (CGNAT), multicast, broadcast or documentation ranges,
/// and IPv4 written inside IPv6.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            // 6to4 carries an IPv4 address in its second and third groups.
            if first == 0x2002 {
                let [hi, lo] = [segments[1], segments[2]];
                let v4 =
                    std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
                return is_private(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64
                || first == 0x2001 && v6.segments()[1] == 0 // Teredo
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible
        }
    }
}

/// Checks an endpoint URL: absolute http(s), ASCII, at most 2048 characters, no credentials in
/// it, and, unless `allow_private`, not a name or literal address of a private network. Names
/// are checked again at every delivery, on the addresses they resolve to.
pub fn check_url(value: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let normalized = super::url::parse_redirect_url("url", value)?;
    let url =
        reqwest::Url::parse(&normalized).map_err(|_| "url must be an absolute http(s) URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("url must not carry a user name or password".into());
    }
    if !allow_private {
        let private = match url.host() {
            Some(url::Host::Ipv4(ip)) => is_private(ip.into()),
            Some(url::Host::Ipv6(ip)) => is_private(ip.into()),
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost"
                    || name.ends_with(".localhost")
                    || name.ends_with(".local")
                    || name.ends_with(".internal")
                    || !name.contains('.')
            }
            None => true,
        };
        if private {
            return Err("url must be a public address: private, loopback and link-local addresses are refused (WEBHOOKS_ALLOW_PRIVATE=1 allows them)".into());
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_ne!(
            sign(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265331,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "the timestamp is signed"
        );
    }

    #[test]
    fn secrets_depend_on_key_and_salt() {
        let a = secret_bytes("k".repeat(32).as_str(), "salt-a");
        assert_eq!(a, secret_bytes("k".repeat(32).as_str(), "salt-a"));
        assert_ne!(a, secret_bytes("k".repeat(32).as_str(), "salt-b"));
        assert_ne!(a, secret_bytes("j".repeat(32).as_str(), "salt-a"));
        assert!(display_secret(&a).starts_with("whsec_"));
    }

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://198.18.0.1/",
            "http://[2002:a9fe:a9fe::]/",
            "http://[2001:0:4136:e378::1]/",
            "http://localhost:8080/",
            "http://metadata.google.internal/",
            "http://intranet/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad}");
        }
        for good in ["https://hooks.example.com/tfw", "http://93.184.216.34/x"] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for never in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "/relative",
        ] {
            assert!(check_url(never, true).is_err(), "{never}");
        }
    }
}
