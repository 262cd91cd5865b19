//! Where the gateway may connect. A provider base URL must be http(s) and reach a public
//! address: private, loopback, link-local, shared, multicast and reserved addresses are refused
//! in every spelling (the URL is parsed by the same WHATWG parser the HTTP client uses, so
//! `2130706433`, `0x7f.1`, `127.0.0.1.` and `[::ffff:127.0.0.1]` are all seen as 127.0.0.1; an
//! IPv6 address that carries an IPv4 one, such as `[::ffff:0:7f00:1]`, `[64:ff9b::7f00:1]` or
//! `[2002:7f00:1::]`, is judged by that IPv4 address, see [`embedded_ipv4`]), and names are
//! checked again on every connection by [`GuardedResolver`], so a name that resolves to a
//! private address (or starts to) is refused too. Redirects are never followed. An admin may
//! allow named endpoints (a local Ollama, say) with `host[:port]` entries.

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

/// Whether an IPv4 address is public unicast: none of the IANA IPv4 special-purpose ranges that
/// are not globally reachable, nor multicast, reserved or broadcast.
fn is_public_v4(address: Ipv4Addr) -> bool {
    let [a, b, c, _] = address.octets();
    !(a == 0                                   // "this network" (0.0.0.0/8)
        || a == 10                             // private
        || a == 127                            // loopback
        || (a == 100 && (64..128).contains(&b)) // shared (CGNAT, 100.64.0.0/10)
        || (a == 169 && b == 254)              // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation (TEST-NET-1)
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168)              // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking (198.18.0.0/15)
        || (a == 198 && b == 51 && c == 100)   // documentation (TEST-NET-2)
        || (a == 203 && b == 0 && c == 113)    // documentation (TEST-NET-3)
        || a >= 224) // multicast (224/4), reserved (240/4), broadcast
}

/// The IPv4 address an IPv6 address stands for, in every form that carries one whole and where
/// a connection ends up at that IPv4 address (or at a translator or relay for it):
/// IPv4-compatible `::a.b.c.d` (`::/96`, also `::` and `::1`), IPv4-mapped `::ffff:a.b.c.d`
/// (`::ffff:0:0/96`), IPv4-translated `::ffff:0:a.b.c.d` (`::ffff:0:0:0/96`, RFC 2765), the
/// well-known NAT64 prefix `64:ff9b::/96` (RFC 6052) and 6to4 `2002:AABB:CCDD::/48` (RFC 3056;
/// the IPv4 address in bits 16..48).
pub fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let join = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match segments {
        [0, 0, 0, 0, 0, 0, high, low]
        | [0, 0, 0, 0, 0, 0xffff, high, low]
        | [0, 0, 0, 0, 0xffff, 0, high, low]
        | [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(join(high, low)),
        [0x2002, high, low, ..] => Some(join(high, low)),
        _ => None,
    }
}

/// Whether an IPv6 address is public unicast. An address that carries an IPv4 address
/// ([`embedded_ipv4`]) is judged by that address alone; every other one must be global unicast
/// (`2000::/3`) outside the IANA IPv6 special-purpose ranges that are not globally reachable.
/// Everything outside `2000::/3` is refused: unique local `fc00::/7`, link-local `fe80::/10`,
/// site-local `fec0::/10`, multicast `ff00::/8`, discard-only `100::/64`, local-use NAT64
/// `64:ff9b:1::/48` (RFC 8215: its IPv4 side is whatever the local translator says), SRv6
/// `5f00::/16`, and the unassigned rest.
fn is_public_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(address) {
        return is_public_v4(v4);
    }
    let [first, second, ..] = address.segments();
    let global_unicast = (first & 0xe000) == 0x2000;
    // IETF protocol assignments, 2001::/23: Teredo 2001::/32, benchmarking, ORCHID and the rest.
    let protocol_assignments = first == 0x2001 && second < 0x0200;
    let documentation = (first == 0x2001 && second == 0x0db8) // 2001:db8::/32
        || (first == 0x3fff && second < 0x1000); // 3fff::/20 (RFC 9637)
    global_unicast && !protocol_assignments && !documentation
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

    /// Every special-purpose form, as an address and whether it is public.
    const ADDRESSES: &[(&str, bool)] = &[
        // IPv4 special-purpose registry, multicast and broadcast.
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("10.0.0.1", false),
        ("100.64.0.1", false),
        ("100.127.255.254", false),
        ("127.0.0.1", false),
        ("169.254.169.254", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("192.0.0.9", false),
        ("192.0.2.1", false),
        ("192.88.99.1", false),
        ("192.168.0.1", false),
        ("198.18.0.1", false),
        ("198.19.255.255", false),
        ("198.51.100.1", false),
        ("203.0.113.1", false),
        ("224.0.0.1", false),
        ("239.255.255.250", false),
        ("240.0.0.1", false),
        ("255.255.255.255", false),
        ("8.8.8.8", true),
        ("100.63.255.255", true),
        ("100.128.0.1", true),
        ("172.32.0.1", true),
        ("198.20.0.1", true),
        // IPv4-compatible ::/96 (with :: and ::1).
        ("::", false),
        ("::1", false),
        ("::127.0.0.1", false),
        ("::10.0.0.1", false),
        ("::8.8.8.8", true),
        // IPv4-mapped ::ffff:0:0/96.
        ("::ffff:127.0.0.1", false),
        ("::ffff:7f00:1", false),
        ("::ffff:169.254.169.254", false),
        ("::ffff:8.8.8.8", true),
        // IPv4-translated ::ffff:0:0:0/96 (RFC 2765).
        ("::ffff:0:7f00:1", false),
        ("::ffff:0:127.0.0.1", false),
        ("::ffff:0:a00:1", false),
        ("::ffff:0:a9fe:a9fe", false),
        ("::ffff:0:808:808", true),
        // Well-known NAT64 prefix 64:ff9b::/96: the embedded address decides.
        ("64:ff9b::127.0.0.1", false),
        ("64:ff9b::a00:1", false),
        ("64:ff9b::c0a8:1", false),
        ("64:ff9b::808:808", true),
        // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): never public.
        ("64:ff9b:1::a00:1", false),
        ("64:ff9b:1::808:808", false),
        ("64:ff9b:1:ffff::1", false),
        // 6to4 2002::/16: the IPv4 address in bits 16..48 decides.
        ("2002:7f00:1::", false),
        ("2002:a00:1::1", false),
        ("2002:c0a8:101::1", false),
        ("2002:808:808::1", true),
        // Teredo and the rest of the IETF protocol assignments (2001::/23).
        ("2001::1", false),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
        ("2001:2::1", false),
        ("2001:1ff::1", false),
        // Documentation, discard-only, SRv6, unique local, link-local, site-local, multicast.
        ("2001:db8::1", false),
        ("3fff::1", false),
        ("3fff:fff::1", false),
        ("100::1", false),
        ("100:0:0:1::1", false),
        ("5f00::1", false),
        ("fc00::1", false),
        ("fd12:3456::1", false),
        ("fe80::1", false),
        ("febf::1", false),
        ("fec0::1", false),
        ("ff02::1", false),
        ("ff0e::1", false),
        // Unassigned space outside 2000::/3.
        ("4000::1", false),
        ("1::1", false),
        // Global unicast.
        ("2606:4700::1111", true),
        ("2001:4860:4860::8888", true),
        ("2001:200::1", true),
        ("3ffe::1", true),
        ("3fff:1000::1", true),
    ];

    #[test]
    fn every_special_purpose_form_is_judged_by_its_rules() {
        for (text, public) in ADDRESSES {
            let address: IpAddr = text.parse().expect(text);
            assert_eq!(is_public(address), *public, "{text}");
        }
    }

    #[test]
    fn embedded_ipv4_addresses_are_found_in_every_form() {
        let loopback = Some(Ipv4Addr::LOCALHOST);
        for text in [
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "2002:7f00:1::",
            "2002:7f00:1:ffff::1",
        ] {
            let address: Ipv6Addr = text.parse().expect(text);
            assert_eq!(embedded_ipv4(address), loopback, "{text}");
        }
        for text in ["2606:4700::1111", "64:ff9b:1::7f00:1", "fe80::7f00:1"] {
            let address: Ipv6Addr = text.parse().expect(text);
            assert_eq!(embedded_ipv4(address), None, "{text}");
        }
    }

    #[test]
    fn every_special_purpose_form_is_judged_in_a_base_url() {
        let policy = AddressPolicy::default();
        for (text, public) in ADDRESSES {
            let host = if text.contains(':') {
                format!("[{text}]")
            } else {
                (*text).to_owned()
            };
            let url = format!("http://{host}/v1");
            let checked = policy.check_url(&url);
            if *public {
                assert!(checked.is_ok(), "{url}");
            } else {
                let error = checked.expect_err(&url);
                assert_eq!(error.kind, ErrorKind::AddressRefused, "{url}");
            }
        }
        for url in [
            "http://[::ffff:0:7f00:1]/",
            "http://[::ffff:0:127.0.0.1]:11434/v1",
            "http://[64:ff9b:1::a00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
            "http://[2002:a9fe:a9fe::]/",
            "http://[::a9fe:a9fe]/",
            "http://[100::1]/",
            "http://[2001:db8::1]/",
        ] {
            let error = policy.check_url(url).expect_err(url);
            assert_eq!(error.kind, ErrorKind::AddressRefused, "{url}");
        }
    }

    #[tokio::test]
    async fn every_special_purpose_form_is_judged_by_the_resolver() {
        use reqwest::dns::Resolve;
        let policy = Arc::new(AddressPolicy::default());
        let resolver = GuardedResolver::new(policy.clone());
        for (text, public) in ADDRESSES {
            let address: IpAddr = text.parse().expect(text);
            assert_eq!(
                policy.allows_resolved("provider.example", address),
                *public,
                "{text}"
            );
            // A literal resolves to itself, without a DNS query.
            let name: reqwest::dns::Name = text.parse().expect(text);
            let resolved = resolver.resolve(name).await;
            assert_eq!(resolved.is_ok(), *public, "{text}");
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
