import MoatApp
import MoatChannels
import MoatConfig
import MoatCore
import Testing

/// `channels.pairing:` in config.yaml: read into the pairing desk's limits, every value in its range or a
/// clear error naming the line, the key and the range.
@Suite struct PairingConfigurationTests {
    func error(_ yaml: String) -> GatewayError? {
        #expect(throws: GatewayError.self) { try ConfigurationLoader.parse(yaml, file: "config.yaml") }
    }

    @Test("channels.pairing's keys are read; left out, each keeps its default")
    func read() throws {
        let yaml = """
            channels:
              pairing:
                code_lifetime: 300
                pending_per_channel: 2
                attempts_per_hour: 50
                wrong_bind_codes: 3
            """
        let pairing = try ConfigurationLoader.parse(yaml, file: "config.yaml").channels.pairing
        #expect(
            pairing == PairingSettings(codeLifetime: 300, pendingPerChannel: 2, attemptsPerHour: 50, wrongBindCodes: 3))
        let defaults = try ConfigurationLoader.parse(
            "channels:\n  pairing:\n    code_lifetime: 120\n", file: "config.yaml")
        #expect(defaults.channels.pairing == PairingSettings(codeLifetime: 120))
        #expect(
            try ConfigurationLoader.parse("log:\n  level: info\n", file: "config.yaml").channels.pairing
                == PairingSettings())
    }

    @Test(
        "a pairing limit out of its range is refused with the range, never clamped",
        arguments: [
            (
                "code_lifetime: 601",
                "config.yaml:3: channels.pairing.code_lifetime: 601 is out of range: must be 60 to 600 seconds: a code lives at most 10 minutes"
            ),
            (
                "code_lifetime: 59",
                "config.yaml:3: channels.pairing.code_lifetime: 59 is out of range: must be 60 to 600 seconds: a code lives at most 10 minutes"
            ),
            (
                "pending_per_channel: 4",
                "config.yaml:3: channels.pairing.pending_per_channel: 4 is out of range: must be 1 to 3 pairings waiting on one channel"
            ),
            (
                "pending_per_channel: 0",
                "config.yaml:3: channels.pairing.pending_per_channel: 0 is out of range: must be 1 to 3 pairings waiting on one channel"
            ),
            (
                "attempts_per_hour: 0",
                "config.yaml:3: channels.pairing.attempts_per_hour: 0 is out of range: must be 1 to 1000 new codes and wrong binding codes per hour"
            ),
            (
                "attempts_per_hour: 1001",
                "config.yaml:3: channels.pairing.attempts_per_hour: 1001 is out of range: must be 1 to 1000 new codes and wrong binding codes per hour"
            ),
            (
                "wrong_bind_codes: 11",
                "config.yaml:3: channels.pairing.wrong_bind_codes: 11 is out of range: must be 1 to 10 wrong binding codes before it is withdrawn"
            ),
        ])
    func outOfRange(line: String, message: String) {
        #expect(error("channels:\n  pairing:\n    \(line)\n")?.message == message)
        #expect(error("channels:\n  pairing:\n    \(line)\n")?.exitCode == 78)
    }

    @Test("a pairing limit that is not a whole number, or an unknown key, is refused naming it")
    func badValues() {
        #expect(
            error("channels:\n  pairing:\n    code_lifetime: 10m\n")?.message
                == "config.yaml:3: channels.pairing.code_lifetime: must be a whole number (60 to 600 seconds: a code lives at most 10 minutes), not \"10m\""
        )
        #expect(
            error("channels:\n  pairing:\n    attempts_per_hour: \"20\"\n")?.message.hasPrefix(
                "config.yaml:3: channels.pairing.attempts_per_hour: must be a whole number") == true)
        #expect(
            error("channels:\n  pairing:\n    code_lifetme: 300\n")?.message.hasPrefix(
                "config.yaml:3: channels.pairing.code_lifetme: unknown key (did you mean channels.pairing.code_lifetime?)"
            )
                == true)
        #expect(
            error("channels:\n  pairing: 300\n")?.message.hasPrefix(
                "config.yaml:2: channels.pairing: must be a mapping") == true)
    }
}
