import MoatAdmin
import MoatApp
import MoatConfig
import MoatConsole
import MoatCore
import MoatHTTP
import MoatNet
import MoatPolicy
import Testing

@Suite struct PolicyConfigurationTests {
    @Test("policy keys parse into the policy settings")
    func parses() throws {
        let config = try ConfigurationLoader.parse(
            """
            policy:
              trust:
                web: 2
                shell: 0
              evidence_approvals: 20
              approval_expiry_minutes: 30
              ssrf:
                allow_hosts: [homeassistant.lan, 192.168.1.10, "nas.lan:5001", "[fd00::5]:8080"]
                block_hosts: ["*.example.com"]
                allow_ports: [8123]
            """,
            file: "config.yaml"
        )
        #expect(config.policy.defaultLevel(.web) == .suggest)
        #expect(config.policy.defaultLevel(.shell) == TrustLevel.none)
        #expect(config.policy.defaultLevel(.email) == .inform)
        #expect(config.policy.evidenceApprovals == 20)
        #expect(config.policy.approvalLifetime == 1800)
        #expect(
            config.policy.ssrf.allowHosts == ["homeassistant.lan", "192.168.1.10", "nas.lan:5001", "[fd00::5]:8080"])
        #expect(config.policy.ssrf.blockHosts == ["*.example.com"])
        #expect(config.policy.ssrf.allowPorts == [8123])
    }

    @Test(
        "bad policy values are refused with the key and what is allowed",
        arguments: [
            ("policy:\n  trust:\n    web: 5\n", "policy.trust.web: 5 is out of range"),
            ("policy:\n  trust:\n    webb: 1\n", "policy.trust.webb: unknown key (did you mean policy.trust.web?)"),
            ("policy:\n  trust:\n    web: \"2\"\n", "policy.trust.web: must be a whole number"),
            ("policy:\n  evidence_approvals: 0\n", "policy.evidence_approvals: 0 is out of range"),
            ("policy:\n  approval_expiry_minutes: 0\n", "policy.approval_expiry_minutes: 0 is out of range"),
            ("policy:\n  ssrf:\n    allow_hosts: [http://x/]\n", "policy.ssrf.allow_hosts: \"http://x/\" is not"),
            ("policy:\n  ssrf:\n    allow_hosts: [nas.lan:0]\n", "policy.ssrf.allow_hosts: \"nas.lan:0\" is not"),
            ("policy:\n  ssrf:\n    block_hosts: [nas.lan:80]\n", "policy.ssrf.block_hosts: \"nas.lan:80\" is not"),
            ("policy:\n  ssrf:\n    allow_ports: [0]\n", "policy.ssrf.allow_ports: 0 is out of range"),
            ("policy:\n  ssrf:\n    allow_ports: 80\n", "policy.ssrf.allow_ports: must be a list"),
            ("policy:\n  sssrf: {}\n", "policy.sssrf: unknown key (did you mean policy.ssrf?)"),
        ]
    )
    func refuses(_ text: String, _ message: String) {
        do {
            _ = try ConfigurationLoader.parse(text, file: "config.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }
}
