public import MoatCore

extension CheckedURL {
    /// A destination the owner wrote in `config.yaml` (a model server's `base_url`), resolved once and
    /// pinned, for the transport's ``PinnedHTTPTransport/stream(_:method:headers:body:limits:_:)`` and
    /// ``PinnedHTTPTransport/send(_:method:headers:body:)``.
    ///
    /// This is not the SSRF guard. ``URLGuard`` decides about URLs the *model* chose, and refuses
    /// loopback, private and link-local addresses and most ports. An owner-configured destination is the
    /// owner's choice: a model server on `127.0.0.1:11434` or on a LAN host is exactly what they mean,
    /// so any address class and any port is allowed. What stays refused: credentials in the URL
    /// (`user@host`, they hide the real host and would end up in messages) and cloud metadata addresses
    /// (no model server lives there; a config that points there is a mistake or an attack). The name is
    /// resolved here, once; the connection goes to these addresses without a second lookup.
    ///
    /// Never build one from text the model or a message sender wrote: that text goes through
    /// ``URLGuard/check(_:)-(String)``.
    ///
    /// - Throws: ``NetError`` `.urlRefused` for a refused URL, `.connectFailed` when the name does not
    ///   resolve.
    public static func ownerConfigured(_ url: FetchURL, resolver: AddressResolver = .system)
        async throws(NetError) -> CheckedURL
    {
        guard url.userInfo == nil else {
            throw NetError(.urlRefused, "credentials in the URL (user@host) are refused: they hide the real host")
        }
        let addresses: [IPAddress]
        switch url.host {
        case .address(let address):
            addresses = [address]
        case .name(let name):
            addresses = (try? await resolver.resolve(name)) ?? []
            guard !addresses.isEmpty else {
                throw NetError(.connectFailed, "\(name) does not resolve: check the host name in \(url.origin)")
            }
        }
        for address in addresses where AddressClassifier.isMetadata(address) {
            throw NetError(.urlRefused, "\(url.origin) resolves to \(address), a cloud metadata address")
        }
        return CheckedURL(url: url, addresses: addresses)
    }
}
