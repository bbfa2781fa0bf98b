import MoatCore
import Testing

@testable import MoatVault

@Suite struct PlaceholderTests {
    static let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"

    /// The fixture owns the temporary directory: keep it alive as long as the vault is used.
    func vault() throws -> (VaultFixture, UnlockedVault) {
        let fixture = VaultFixture()
        let vault = try fixture.create()
        try vault.add(
            "GITHUB_TOKEN",
            value: secret(Self.token),
            policy: SecretPolicy(tools: ["http"], hosts: ["api.github.com", "*.githubusercontent.com"])
        )
        try vault.add("INTERNAL_KEY", value: secret("internal signing key"), policy: .none)
        try vault.add(
            "SHELL_TOKEN", value: secret("shell token value"), policy: SecretPolicy(tools: ["shell"], hosts: ["*"]))
        return (fixture, vault)
    }

    @Test("a placeholder resolves for an allowed tool and host (case and a trailing dot ignored)")
    func allowed() throws {
        let (fixture, vault) = try vault()
        defer { withExtendedLifetime(fixture) {} }  // keeps the vault's directory alive
        let request = "Authorization: Bearer {{secret:GITHUB_TOKEN}}\nX: {{secret:GITHUB_TOKEN}}"
        for host in ["api.github.com", "API.GitHub.com.", "raw.githubusercontent.com"] {
            let resolved = try vault.resolvePlaceholders(in: request, tool: "http", host: host)
            #expect(resolved == "Authorization: Bearer \(Self.token)\nX: \(Self.token)")
        }
        #expect(try vault.resolvePlaceholders(in: "no placeholders", tool: "http", host: nil) == "no placeholders")
        #expect(
            try vault.resolvePlaceholders(in: "echo {{secret:SHELL_TOKEN}}", tool: "shell", host: nil)
                == "echo shell token value")
    }

    @Test("another host, another tool or an unknown secret is refused with the secret and the rule, never the value")
    func refused() throws {
        let (fixture, vault) = try vault()
        defer { withExtendedLifetime(fixture) {} }  // keeps the vault's directory alive
        let cases: [(String, String, String?, VaultError.Code, String)] = [
            ("{{secret:GITHUB_TOKEN}}", "http", "evil.example", .policyDenied, "may not be sent to evil.example"),
            (
                "{{secret:GITHUB_TOKEN}}", "http", "githubusercontent.com", .policyDenied,
                "its policy allows only"
            ),
            ("{{secret:GITHUB_TOKEN}}", "http", "api.github.com.evil.example", .policyDenied, "GITHUB_TOKEN"),
            ("{{secret:GITHUB_TOKEN}}", "http", nil, .policyDenied, "a destination not known in advance"),
            ("{{secret:GITHUB_TOKEN}}", "shell", "api.github.com", .policyDenied, "may not be given to tool 'shell'"),
            ("{{secret:INTERNAL_KEY}}", "http", "api.github.com", .policyDenied, "its policy allows no tool"),
            ("{{secret:NOPE}}", "http", "api.github.com", .unknownSecret, "no secret named NOPE"),
            ("{{secret:lower}}", "http", "api.github.com", .invalidPlaceholder, "does not name a valid secret"),
            ("{{secret:GITHUB_TOKEN", "http", "api.github.com", .invalidPlaceholder, "not closed"),
            ("ok {{secret:GITHUB_TOKEN}} then {{secret:NOPE}}", "http", "api.github.com", .unknownSecret, "NOPE"),
        ]
        for (text, tool, host, code, fragment) in cases {
            let error = vaultError { _ = try vault.resolvePlaceholders(in: text, tool: tool, host: host) }
            #expect(error?.code == code, "\(text) \(tool) \(host ?? "nil")")
            #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains(Self.token) == false)
            #expect(error?.message.contains("internal signing key") == false)
        }
    }

    @Test("policies validate tools and hosts, normalize them, and match wildcards only on subdomains")
    func policyRules() throws {
        let policy = try SecretPolicy(
            tools: ["http", "http"], hosts: ["API.Example.com.", "*.Example.org", "10.0.0.5", "[::1]"])
        #expect(policy.tools == ["http"])
        #expect(policy.hosts == ["*.example.org", "10.0.0.5", "::1", "api.example.com"])
        #expect(policy.allows(host: "a.b.example.org"))
        #expect(!policy.allows(host: "example.org"))
        #expect(!policy.allows(host: "badexample.org"))
        #expect(policy.allows(host: "0:0:0:0:0:0:0:1"))
        #expect(!policy.allows(host: "api.example.com:443"))
        #expect(policy.summary == "tools: http; hosts: *.example.org, 10.0.0.5, ::1, api.example.com")
        for (tools, hosts) in [
            (["HTTP"], []), (["1http"], []), (["ht tp"], []), ([""], []),
            ([], ["bad host"]), ([], ["-x.com"]), ([], ["*.10.0.0.1"]), ([], ["**.x.com"]), ([], [""]),
            ([], ["a..b"]), ([], ["x.com/path"]),
        ] as [([String], [String])] {
            let error = vaultError { _ = try SecretPolicy(tools: tools, hosts: hosts) }
            #expect(error?.code == .invalidPolicy, "\(tools) \(hosts)")
            #expect(error?.exitCode == 64)
        }
    }

    @Test("the names a request's placeholders name: each valid one once, in order; malformed ones left out")
    func placeholderNames() {
        #expect(
            SecretName.placeholders(in: "{{secret:B_KEY}} x {{secret:A_KEY}} {{secret:B_KEY}}") == ["B_KEY", "A_KEY"])
        #expect(SecretName.placeholders(in: "no placeholder, {{secret}} or {secret:A}").isEmpty)
        #expect(SecretName.placeholders(in: "{{secret:lower}} {{secret:GOOD}}") == ["GOOD"])
        #expect(SecretName.placeholders(in: "{{secret:GOOD}} {{secret:UNCLOSED") == ["GOOD"])
        #expect(SecretName.placeholders(in: "{{secret:A}}{{secret:B}}") == ["A", "B"])
    }
}
