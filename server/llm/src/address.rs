//! Where the gateway may connect. A provider base URL must be http(s) and reach a public
//! address: private, loopback, link-local, shared, multicast and reserved addresses are refused
//! in every spelling (the URL is parsed by the same WHATWG parser the HTTP client uses, so
//! `2130706433`, `0x7f.1`, `127.0.0.1.` and `[::ffff:127.0.0.1]` are all seen as 127.0.0.1), and
//! names are checked again on every connection by [`GuardedResolver`], so a name that resolves
//! to a private address (or starts to) is refused too. Redirects are never followed. An admin
//! may allow named endpoints (a local Ollama, say) with `host[:port]` entries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

use crate::error::{ErrorKind, ProviderError};

/// An endpoint an admin allowed although its address is not public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedEndpoint {
    host: String,
    port: Option<u16>,
}

impl AllowedEndpoint {
    /// Parses `host`, `host:port`, `[v6]:port` or a URL.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let with_scheme = if entry.contains("://") {
            entry.to_owned()
        } else {
            format!("http://{entry}")
        };
        let url = Url::parse(&with_scheme)
            .map_err(|error| format!("{entry:?} is not a host[:port]: {error}"))?;
        let host = url
            .host()
            .ok_or_else(|| format!("{entry:?} names no host"))?;
        Ok(Self {
            host: host_key(&host),
            port: url.port(),
        })
    }

    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && (self.port.is_none() || self.port == port)
    }
}

/// The rules for provider addresses.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allowed: Vec<AllowedEndpoint>,
}

fn host_key(host: &Host<&str>) -> String {
    match host {
        Host::Domain(name) => name.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(address) => address.to_string(),
        Host::Ipv6(address) => match address.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => address.to_string(),
        },
    }
}

fn refused(detail: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::AddressRefused).with_message(detail)
}

impl AddressPolicy {
    pub fn new(allowed: Vec<AllowedEndpoint>) -> Self {
        Self { allowed }
    }

    fn allowed_host(&self, host: &str, port: Option<u16>) -> bool {
        self.allowed
            .iter()
            .any(|endpoint| endpoint.matches(host, port))
    }

    /// Checks a base URL before it is stored or called; returns it parsed, without a trailing
    /// slash.
    pub fn check_url(&self, text: &str) -> Result<Url, ProviderError> {
        let url = Url::parse(text.trim())
            .map_err(|_| refused("enter an address such as https://host/v1"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refused("only http and https addresses are allowed"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused("the address must not hold a user name or password"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refused("the address must not have a query or fragment"));
        }
        let host = url
            .host()
            .ok_or_else(|| refused("the address has no host"))?;
        let key = host_key(&host);
        if self.allowed_host(&key, url.port_or_known_default()) || self.allowed_host(&key, None) {
            return Ok(url);
        }
        match host {
            Host::Ipv4(address) => check_ip(IpAddr::V4(address))?,
            Host::Ipv6(address) => check_ip(IpAddr::V6(address))?,
            Host::Domain(_) => {
                if key == "localhost" || key.ends_with(".localhost") {
                    return Err(refused(
                        "localhost is a loopback address; an administrator can allow it",
                    ));
                }
            }
        }
        Ok(url)
    }

    /// Whether a name may resolve to `address` (a connection is about to be made).
    fn allows_resolved(&self, name: &str, address: IpAddr) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_host(&name, None)
            || self.allowed.iter().any(|endpoint| endpoint.host == name)
            || is_public(address)
    }
}

fn check_ip(address: IpAddr) -> Result<(), ProviderError> {
    if is_public(address) {
        Ok(())
    } else {
        Err(refused(format!(
            "{address} is a private, loopback or reserved address; an administrator can allow it"
        )))
    }
}

/// Whether an address is a public unicast one.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(a == 0                                   // "this network"
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // shared (CGNAT)
        || (a == 169 && b == 254)              // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 192 && b == 168)              // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = address.segments();
    // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4
    // address that decides.
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if segments[..6] == [0, 0, 0, 0, 0, 0] {
        return !address.is_unspecified()
            && !address.is_loopback()
            && is_public_v4(embedded(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded(segments[1], segments[2]));
    }
    !((segments[0] & 0xfe00) == 0xfc00     // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] & 0xff00) == 0xff00 // multicast
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] == 0)) // Teredo
}

/// The HTTP client's resolver: resolves with the system, then drops every address the policy
/// does not allow, so a public-looking name that points inside is refused at connect time.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|address| policy.allows_resolved(&host, address.ip()))
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = if resolved.is_empty() {
                    format!("{host} does not resolve").into()
                } else {
                    format!("{host} resolves to a private or reserved address").into()
                };
                return Err(error);
            }
            let addresses: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused_in_every_spelling() {
        let policy = AddressPolicy::default();
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:a00:1::]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://224.0.0.1/",
        ] {
            let error = policy.check_url(url).expect_err(url);
            assert_eq!(error.kind, ErrorKind::AddressRefused, "{url}");
        }
        for url in [
            "file:///etc/passwd",
            "gopher://example.com/",
            "http://user:pass@example.com/",
            "not a url",
        ] {
            assert!(policy.check_url(url).is_err(), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://8.8.8.8/v1",
            "http://[2606:4700::1111]/",
        ] {
            assert!(policy.check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn an_allowed_endpoint_passes_with_its_port_only() {
        let policy = AddressPolicy::new(vec![
            AllowedEndpoint::parse("127.0.0.1:11434").expect("entry"),
            AllowedEndpoint::parse("ollama.internal").expect("entry"),
        ]);
        assert!(policy.check_url("http://127.0.0.1:11434/v1").is_ok());
        assert!(policy.check_url("http://2130706433:11434/v1").is_ok());
        assert!(policy.check_url("http://127.0.0.1:6379/").is_err());
        assert!(policy.check_url("http://10.0.0.1:11434/").is_err());
        assert!(policy.allows_resolved("ollama.internal.", "10.0.0.5".parse().expect("ip")));
        assert!(!policy.allows_resolved("evil.example", "10.0.0.5".parse().expect("ip")));
        assert!(policy.allows_resolved("evil.example", "93.184.215.14".parse().expect("ip")));
    }
}
