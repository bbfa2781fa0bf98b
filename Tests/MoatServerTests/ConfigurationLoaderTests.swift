import Foundation
import MoatAdmin
import MoatApp
import MoatAuth
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatTestSupport
import Testing

@Suite struct ConfigurationLoaderTests {
    func error(_ yaml: String) -> GatewayError? {
        #expect(throws: GatewayError.self) { try ConfigurationLoader.parse(yaml, file: "config.yaml") }
    }

    @Test("a misspelled key names the file, the line and the key it probably meant")
    func unknownKeyWithSuggestion() {
        let yaml = """
            # my gateway
            log:
              level: info
            gateway:
              host: 127.0.0.1

              prot: 8080
            """
        #expect(error(yaml)?.message == "config.yaml:7: gateway.prot: unknown key (did you mean gateway.port?)")
        #expect(error(yaml)?.exitCode == 78)
    }

    @Test("an unknown key with no near match lists what is allowed there")
    func unknownKeyListsAllowed() {
        #expect(
            error("gateway:\n  banana: 1\n")?.message
                == "config.yaml:2: gateway.banana: unknown key; allowed under gateway: host, port, allowed_hosts, tls, auth"
        )
        #expect(error("colour: blue\n")?.message.hasPrefix("config.yaml:1: colour: unknown key") == true)
    }

    @Test(
        "a wrong type says what type is expected",
        arguments: [
            (
                "gateway:\n  port: eighty\n",
                "config.yaml:2: gateway.port: must be a whole number (a port from 1 to 65535), not \"eighty\""
            ),
            (
                "gateway:\n  port: \"18789\"\n",
                "config.yaml:2: gateway.port: must be a whole number (a port from 1 to 65535), not \"18789\""
            ),
            ("gateway:\n  host: [a, b]\n", "config.yaml:2: gateway.host: must be a string, not a list"),
            ("gateway: 5\n", "config.yaml:1: gateway: must be a mapping of keys, one per line (key: value)"),
            (
                "gateway:\n  allowed_hosts: laptop\n",
                "config.yaml:2: gateway.allowed_hosts: must be a list, e.g. [laptop.tail1234.ts.net]"
            ),
            ("- a\n- b\n", "config.yaml:1: (top level): must be a mapping of keys, one per line (key: value)"),
        ])
    func wrongType(_ yaml: String, _ expected: String) {
        #expect(error(yaml)?.message == expected)
    }

    @Test(
        "out-of-range and invalid values are refused with what is allowed",
        arguments: [
            (
                "gateway:\n  port: 70000\n",
                "config.yaml:2: gateway.port: 70000 is out of range: must be a port from 1 to 65535"
            ),
            (
                "gateway:\n  port: -1\n",
                "config.yaml:2: gateway.port: -1 is out of range: must be a port from 1 to 65535"
            ),
            (
                "gateway:\n  auth:\n    mode: open\n",
                "config.yaml:3: gateway.auth.mode: \"open\" is not allowed: use one of password, token"
            ),
            (
                "gateway:\n  auth:\n    mode: none\n",
                "config.yaml:3: gateway.auth.mode: none is not accepted: loopback is not trusted (tailscale serve and every local proxy arrive from 127.0.0.1); use password (the default) or token"
            ),
            (
                "gateway:\n  auth:\n    limits:\n      password_failures: 0\n",
                "config.yaml:4: gateway.auth.limits.password_failures: 0 is out of range: must be a whole number from 1 to 10; the default 10 is the loosest Moat allows"
            ),
            (
                "gateway:\n  auth:\n    limits:\n      session_max_hours: 48\n",
                "config.yaml:4: gateway.auth.limits.session_max_hours: 48 is out of range: must be a whole number from 1 to 24 hours; the default 24 is the loosest Moat allows"
            ),
            (
                "gateway:\n  auth:\n    limits:\n      window_minutes: 5\n",
                "config.yaml:4: gateway.auth.limits.window_minutes: 5 is out of range: must be a whole number from 15 to 1440 minutes; the default 15 (shorter is looser) is the loosest Moat allows"
            ),
            (
                "gateway:\n  auth:\n    tailscale:\n      owner: alice\n",
                "config.yaml:4: gateway.auth.tailscale.owner: must be one Tailscale login, e.g. alice@example.com"
            ),
            (
                "gateway:\n  auth:\n    mode: token\n    tailscale:\n      owner: alice@example.com\n",
                "config.yaml: gateway.auth.tailscale.owner: cannot be used with gateway.auth.mode: token, which turns browser identities off; remove one of the two"
            ),
            (
                "gateway:\n  auth:\n    tailscale:\n      proxy_uid: root\n",
                "config.yaml:4: gateway.auth.tailscale.proxy_uid: must be the numeric user id tailscaled runs as (0 for root, the default)"
            ),
            ("log:\n  format: xml\n", "config.yaml:2: log.format: \"xml\" is not allowed: use one of auto, text, json"),
            (
                "gateway:\n  allowed_hosts: [\"https://x.ts.net/\"]\n",
                "config.yaml:2: gateway.allowed_hosts: \"https://x.ts.net/\" is not a host name or host:port (no scheme, path or wildcard), e.g. laptop.tail1234.ts.net"
            ),
            (
                "gateway:\n  allowed_hosts: [\"*.ts.net\"]\n",
                "config.yaml:2: gateway.allowed_hosts: \"*.ts.net\" is not a host name or host:port (no scheme, path or wildcard), e.g. laptop.tail1234.ts.net"
            ),
        ])
    func outOfRange(_ yaml: String, _ expected: String) {
        #expect(error(yaml)?.message == expected)
    }

    @Test("an empty file or one with only comments is an error that says how to run on defaults")
    func emptyFile() {
        for yaml in ["", "\n\n", "# nothing here\n"] {
            #expect(error(yaml)?.message.contains("holds no settings") == true)
        }
    }

    @Test("a duplicate key and half a TLS setting are refused")
    func duplicatesAndHalfTLS() {
        #expect(
            error("gateway:\n  port: 1\n  port: 2\n")?.message.hasPrefix("config.yaml:2: port: appears twice") == true)
        #expect(error("gateway:\n  tls:\n    cert: /a.crt\n")?.message.contains("gateway.tls.key: missing") == true)
    }

    @Test("invalid YAML reports the line and column")
    func invalidYAML() {
        let message = error("gateway:\n  host: [unclosed\n")?.message ?? ""
        #expect(message.hasPrefix("config.yaml: not valid YAML:"))
        #expect(message.contains("line"))
    }

    @Test("YAML anchors and aliases are refused before the tree is built, with file and line")
    func anchorsAndAliases() {
        // Aliases of aliases as mapping keys: hashing the last key walks 2^24 nodes when the tree is built.
        var yaml = "a0: &a0 [x]\n"
        for level in 1...24 { yaml += "a\(level): &a\(level) [*a\(level - 1), *a\(level - 1)]\n" }
        yaml += "gateway: {*a24: 1}\n"
        #expect(
            error(yaml)?.message
                == "config.yaml:1: YAML anchors (&name) are not accepted in a Moat config; "
                + "write each value out in full (quote a value that starts with &, * or !)")
        let alias = error("gateway:\n  host: 127.0.0.1\n  port: *p\n")?.message ?? ""
        #expect(alias.hasPrefix("config.yaml:3: YAML aliases (*name) are not accepted"), "\(alias)")
        let merge = error("base: &b {port: 1}\ngateway:\n  <<: *b\n")?.message ?? ""
        #expect(merge.hasPrefix("config.yaml:1: YAML anchors"), "\(merge)")
    }

    @Test("tags and deep nesting are refused before anything is built (deep flow nesting is quadratic in libyaml)")
    func tagsAndDeepNesting() {
        let tag = error("gateway: !!python/object:os.system\n  port: 1\n")?.message ?? ""
        #expect(tag.hasPrefix("config.yaml:1: YAML tags (!name, !!type) are not accepted"), "\(tag)")
        let typed = error("gateway:\n  port: !!int 28791\n")?.message ?? ""
        #expect(typed.hasPrefix("config.yaml:2: YAML tags"), "\(typed)")
        // 200,000 levels took minutes of CPU in libyaml's scanner; refused at level 33, at once.
        let deep = "x: " + String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000) + "\n"
        let nested = error(deep)?.message ?? ""
        #expect(nested.hasPrefix("config.yaml:1: nested more than 32 levels deep"), "\(nested)")
        let deepMap = "x: " + String(repeating: "{a: ", count: 40) + "1" + String(repeating: "}", count: 40) + "\n"
        #expect(error(deepMap)?.message.contains("nested more than 32 levels deep") == true)
    }

    @Test("& and * inside quoted strings, plain words and comments are text, not anchors")
    func ampersandAsText() throws {
        let yaml = """
            # &not-an-anchor *nor-an-alias
            gateway:
              auth:
                tailscale:
                  owner: "&a*b@example.com"  # *comment
                  socket: /run/a&b*c.sock
            """
        let config = try ConfigurationLoader.parse(yaml, file: "config.yaml")
        #expect(config.tailscaleOwner == "&a*b@example.com")
        #expect(config.tailscaleSocket == "/run/a&b*c.sock")
    }

    @Test("a control character in a bad value is not echoed to the terminal")
    func noControlCharactersEchoed() {
        let message = error("log:\n  level: \"\\e[31mred\"\n")?.message ?? ""
        #expect(!message.contains("\u{1b}"))
    }

    @Test("every documented key parses, and the example file matches the defaults")
    func fullFile() throws {
        let yaml = """
            gateway:
              host: 127.0.0.1
              port: 8443
              allowed_hosts: [Laptop.tail1234.ts.net, "studio.lan:8443"]
              tls:
                cert: /etc/moat/cert.pem
                key: /etc/moat/key.pem
              auth:
                mode: password
                tailscale:
                  owner: alice@example.com
                  proxy_uid: 1001
                limits:
                  password_failures: 5
                  window_minutes: 30
                  session_idle_minutes: 30
            log:
              format: json
              level: debug
            """
        let config = try ConfigurationLoader.parse(yaml, file: "config.yaml")
        #expect(config.port == 8443)
        #expect(config.allowedHosts == ["laptop.tail1234.ts.net", "studio.lan:8443"])
        #expect(config.tls == .init(certificatePath: "/etc/moat/cert.pem", keyPath: "/etc/moat/key.pem"))
        #expect(config.authMode == .password)
        #expect(config.tailscaleOwner == "alice@example.com")
        #expect(config.tailscaleProxyUID == 1001)
        #expect(config.auth.passwordFailuresPerAccount == 5)
        #expect(config.auth.failureWindow == 1800)
        #expect(config.auth.sessionIdleTimeout == 1800)
        #expect(config.logFormat == .json)
        #expect(config.logLevel == .debug)

        let exampleURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../config.yaml.example")
        let example = try String(contentsOf: exampleURL, encoding: .utf8)
        #expect(try ConfigurationLoader.parse(example, file: "config.yaml.example") == GatewayConfiguration())
    }

    @Test("a missing file means defaults unless it was asked for with --config")
    func missingFile() throws {
        let temp = TemporaryDirectory()
        #expect(try ConfigurationLoader.load(path: temp.file("none.yaml"), required: false) == GatewayConfiguration())
        let error = #expect(throws: GatewayError.self) {
            try ConfigurationLoader.load(path: temp.file("none.yaml"), required: true)
        }
        #expect(error?.message.contains("No such file or directory (check the path given to --config)") == true)
    }
}
