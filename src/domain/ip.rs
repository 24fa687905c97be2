//! IP allowlists and the client address behind trusted proxies.
use std::net::IpAddr;

use ipnet::IpNet;

/// A CIDR allowlist; empty means unrestricted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist(Vec<IpNet>);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR block")]
pub struct BadCidr(pub String);

/// The most entries one allowlist holds. Every token request and every
/// introspection checks the list; 3,500 entries made both 2 to 4 times
/// dearer. A network with more ranges than this summarises them in CIDR
/// blocks.
pub const MAX_ALLOWLIST_ENTRIES: usize = 100;

/// Why an allowlist is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadAllowlist {
    #[error(transparent)]
    Entry(#[from] BadCidr),
    #[error("at most {MAX_ALLOWLIST_ENTRIES} entries (summarise ranges as CIDR blocks)")]
    TooMany,
}

/// Parses one address or CIDR block. A bare address becomes a /32 or /128.
/// Host bits after the prefix are cleared (`10.1.2.3/24` → `10.1.2.0/24`).
/// IPv4-mapped IPv6 entries are stored as IPv4 so they match either form.
pub fn parse_cidr(s: &str) -> Result<IpNet, BadCidr> {
    let t = s.trim();
    let bad = || BadCidr(s.chars().take(64).collect());
    if t.is_empty() || t.len() > 64 {
        return Err(bad());
    }
    // Parsed by hand rather than by `IpNet::from_str`, which reads
    // `010.0.0.0/8` as 10.0.0.0/8: an address with a leading zero means
    // octal to some tools and decimal to others, so it is refused, and so
    // is a prefix length that is not plain decimal.
    let (addr, prefix) = match t.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (t, None),
    };
    let addr = addr.parse::<IpAddr>().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => {
            let plain = !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'));
            if !plain {
                return Err(bad());
            }
            p.parse::<u8>().map_err(|_| bad())?
        }
    };
    let net = IpNet::new(addr, prefix).map_err(|_| bad())?;
    Ok(match net {
        // `::ffff:a.b.c.d/N` is an IPv4 block written the IPv6 way: exact
        // as IPv4 `/N-96` for N ≥ 96. Below /96 it would be a block of
        // plain IPv6 space (`::ffff:10.0.0.0/8` is `::/8`, which holds
        // `::1` and never 10/8), surely not what was meant: refused.
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                .map_err(|_| bad())?
                .trunc(),
            Some(_) => return Err(bad()),
            None => net.trunc(),
        },
        IpNet::V4(_) => net.trunc(),
    })
}

/// Maps `::ffff:a.b.c.d` to `a.b.c.d` so IPv4 rules apply to it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl IpAllowlist {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadAllowlist> {
        if entries.len() > MAX_ALLOWLIST_ENTRIES {
            return Err(BadAllowlist::TooMany);
        }
        let mut nets: Vec<IpNet> = Vec::with_capacity(entries.len());
        for e in entries {
            let n = parse_cidr(e.as_ref())?;
            if !nets.contains(&n) {
                nets.push(n);
            }
        }
        Ok(Self(nets))
    }

    /// The stored form: comma-separated CIDRs, empty for unrestricted.
    pub fn parse_stored(s: &str) -> Self {
        Self(s.split(',').filter_map(|e| parse_cidr(e).ok()).collect())
    }

    pub fn to_stored(&self) -> String {
        self.entries().join(",")
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(|n| n.to_string()).collect()
    }

    pub fn is_unrestricted(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request from `ip` may use the account. An unknown source
    /// address passes only when there is no allowlist (fail closed).
    pub fn permits(&self, ip: Option<IpAddr>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(ip) = ip.map(canonical) else {
            return false;
        };
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy,
/// the right-most `X-Forwarded-For` hop that is not itself trusted. When
/// every hop is trusted, the right-most hop: the address the trusted peer
/// itself saw and wrote. Everything left of it was written by whoever
/// connected to that proxy, so the left-most hop (what this once returned)
/// is the caller's own choice: any host inside a broad trusted range could
/// name a victim's address and pass its allowlist or lock it out. `None`
/// when a trusted proxy forwarded an unreadable chain.
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut nearest = None;
    for header in forwarded_for.iter().rev() {
        for hop in header.rsplit(',') {
            let ip = canonical(hop.trim().parse::<IpAddr>().ok()?);
            if !is_trusted(&ip) {
                return Some(ip);
            }
            nearest.get_or_insert(ip);
        }
    }
    Some(nearest.unwrap_or(peer))
}

/// Cloud metadata services at addresses no other rule catches: AWS's
/// IPv6 one, and Azure's WireServer.
const METADATA: [IpAddr; 2] = [
    IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V4(std::net::Ipv4Addr::new(168, 63, 129, 16)),
];

/// The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_v4(a: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = a.segments();
    let tail =
        std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compat = s[..6].iter().all(|x| *x == 0) && !(s[6] == 0 && s[7] <= 1);
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
    a.to_ipv4_mapped().or((compat || nat64).then_some(tail))
}

/// May warden connect to `ip` to fetch an issuer's or a client's keys?
/// Never a link-local, unspecified, multicast or broadcast address, nor a
/// cloud metadata service; loopback only when `allow_loopback`
/// (development). Checked at registration for a literal address, and as
/// names resolve at fetch time.
pub fn fetchable(ip: IpAddr, allow_loopback: bool) -> bool {
    if METADATA.contains(&ip) {
        return false;
    }
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if METADATA.contains(&ip) {
        return false;
    }
    match ip {
        IpAddr::V4(a) => {
            let [b0, b1, ..] = a.octets();
            !(a.is_unspecified()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || b0 == 0
                || (b0 == 100 && b1 == 100) // Alibaba Cloud's metadata service.
                || (a.is_loopback() && !allow_loopback))
        }
        IpAddr::V6(a) => {
            let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
            !(a.is_unspecified()
                || a.is_multicast()
                || link_local
                || (a.is_loopback() && !allow_loopback))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn parses_addresses_blocks_and_mapped_forms() {
        let l = IpAllowlist::parse(&[
            "10.0.0.0/8",
            "192.168.1.7",
            "2001:db8::/32",
            "::ffff:172.16.0.0/108",
        ])
        .unwrap_or_default();
        assert_eq!(
            l.entries(),
            vec![
                "10.0.0.0/8",
                "192.168.1.7/32",
                "2001:db8::/32",
                "172.16.0.0/12"
            ]
        );
        assert!(l.permits(Some(ip("10.9.9.9"))));
        assert!(l.permits(Some(ip("::ffff:10.1.2.3"))));
        assert!(l.permits(Some(ip("172.20.0.1"))));
        assert!(l.permits(Some(ip("2001:db8::1"))));
        assert!(!l.permits(Some(ip("11.0.0.1"))));
        assert!(!l.permits(None));
        assert!(IpAllowlist::default().permits(None));
    }

    #[test]
    fn rejects_garbage_and_leading_zeros() {
        for bad in [
            "",
            "10.0.0.256",
            "010.0.0.1",
            "10.0.0.0/33",
            "abc",
            "10.0.0.0/",
            "1.2.3.4/8/8",
            "010.0.0.0/8",
            "10.0.0.0/08",
            "10.0.0.0/+8",
            "::ffff:010.0.0.1",
            "2001:db8::/129",
            "2001:db8::/0x20",
            "::ffff:10.0.0.0/8",
            "::ffff:10.0.0.0/95",
            "::ffff:0.0.0.0/0",
        ] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_cidr("10.1.2.3/24").map(|n| n.to_string()),
            Ok("10.1.2.0/24".to_owned())
        );
        assert_eq!(
            parse_cidr("::ffff:10.0.0.0/104").map(|n| n.to_string()),
            Ok("10.0.0.0/8".to_owned())
        );
        assert_eq!(
            parse_cidr("::ffff:10.1.2.3/96").map(|n| n.to_string()),
            Ok("0.0.0.0/0".to_owned())
        );
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = vec![parse_cidr("10.0.0.0/8").unwrap_or_else(|_| unreachable!())];
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["1.1.1.1"], &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &["1.1.1.1, 198.51.100.4, 10.0.0.2"],
                &trusted
            ),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &[], &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &["garbage"], &trusted), None);
    }

    /// Every hop trusted: the right-most one (what the trusted peer saw),
    /// never the left-most, which whoever connected wrote.
    #[test]
    fn an_exhausted_chain_gives_the_nearest_hop() {
        let trusted = vec![parse_cidr("10.0.0.0/8").unwrap_or_else(|_| unreachable!())];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["10.9.9.9, 10.0.0.7"], &trusted),
            Some(ip("10.0.0.7"))
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &["10.9.9.9", "10.0.0.7"], &trusted),
            Some(ip("10.0.0.7"))
        );
    }
}
